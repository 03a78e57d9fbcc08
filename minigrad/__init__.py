"""minigrad: a small, readable reverse-mode autograd over NumPy (CPU) and CuPy (GPU) arrays.

Start reading at :mod:`minigrad.tensor` (the Tensor), then :mod:`minigrad.autograd` (how
``backward()`` walks the graph) and :mod:`minigrad.ops` (every op, forward beside backward).

As ``import torch`` does, ``import minigrad as mg`` also gives ``mg.nn`` (and
``mg.nn.functional``), ``mg.optim``, ``mg.data`` and ``mg.models``, without importing CuPy,
Numba, matplotlib or the training loop: those load on first use.
"""

import minigrad._kernels  # noqa: F401  (first: minigrad.kernels in an uninstalled source tree)
from minigrad import data, models, nn, optim  # as torch.nn, torch.optim
from minigrad.autograd import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from minigrad.backend import (
    DeviceError,
    get_backend,
    get_rng_state,
    manual_seed,
    set_backend,
    set_rng_state,
)
from minigrad.gradcheck import GradcheckError, gradcheck
from minigrad.ops import (
    abs,
    cat,
    ceil,
    clip,
    cos,
    erf,
    exp,
    expm1,
    floor,
    isfinite,
    isinf,
    isnan,
    lerp,
    log,
    log1p,
    masked_fill,
    matmul,
    maximum,
    minimum,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sqrt,
    stack,
    tanh,
    where,
)
from minigrad.tensor import (
    Tensor,
    arange,
    bool_,
    eye,
    float32,
    float64,
    full,
    int32,
    int64,
    ones,
    ones_like,
    rand,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "DeviceError", "GradcheckError", "Tensor", "abs", "arange", "bool_", "cat", "ceil", "clip",
    "cos", "data", "detect_anomaly", "enable_grad", "erf", "exp", "expm1", "eye", "float32",
    "float64", "floor", "full", "get_backend", "get_rng_state", "gradcheck", "int32", "int64",
    "is_grad_enabled", "isfinite", "isinf", "isnan", "lerp", "log", "log1p", "manual_seed",
    "masked_fill", "matmul", "maximum", "minimum", "models", "nn", "no_grad", "ones",
    "ones_like", "optim", "rand", "randn", "randn_like", "relu", "round", "rsqrt",
    "set_backend", "set_rng_state", "sigmoid", "sign", "sin", "sqrt", "stack", "tanh", "tensor",
    "where", "zeros", "zeros_like",
]
