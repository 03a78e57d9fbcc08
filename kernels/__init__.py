"""minigrad's hand-written kernels, installed as ``minigrad.kernels``.

Kernels are pure array functions: arrays in, arrays out. They know nothing of Tensor or
autograd; the ops in :mod:`minigrad.ops` choose a kernel and wire its forward to its backward.
Each fast kernel sits beside the naive reference it is tested against.
"""
