"""minigrad's hand-written kernels, installed as ``minigrad.kernels``.

Kernels are pure array functions: arrays in, arrays out. They know nothing of Tensor or
autograd. The ops in :mod:`minigrad.ops` and the optimizers ask one registry,
:mod:`.registry`, for the implementation of an op on a device under its kernel backend, and
wire its forward to its backward; the registry documents each op's signature once. Each fast
kernel sits beside the naive reference it is tested against: :mod:`.cpu` (Numba), :mod:`.cuda`
(numba.cuda, and the GPU's input checks and CuPy elementwise kernel).
"""

import numpy as np

if not hasattr(np, "row_stack"):
    # Numba 0.68.0 registers a typing overload for np.row_stack, which NumPy 2.5 removed, the
    # first time it compiles anything ("module 'numpy' has no attribute 'row_stack'", seen on a
    # GPU machine with numba 0.68.0, numba-cuda 0.30.4 and NumPy 2.5.2); Numba 0.68.1 checks
    # first. row_stack was NumPy's alias of vstack: the alias gives that Numba what it expects.
    np.row_stack = np.vstack
