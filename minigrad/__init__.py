"""minigrad: a small, readable reverse-mode autograd over NumPy (CPU) and CuPy (GPU) arrays.

Start reading at :mod:`minigrad.tensor` (the Tensor), then :mod:`minigrad.autograd` (how
``backward()`` walks the graph) and :mod:`minigrad.ops` (every op, forward beside backward).

As ``import torch`` does, ``import minigrad as mg`` also gives ``mg.nn`` (and
``mg.nn.functional``), ``mg.optim``, ``mg.amp``, ``mg.data`` and ``mg.models``, without
importing CuPy, Numba, matplotlib or the training loop: those load on first use.
"""

import minigrad._kernels  # noqa: F401  (first: minigrad.kernels in an uninstalled source tree)
from minigrad import amp, data, models, nn, optim  # as torch.amp, torch.nn, torch.optim
from minigrad.amp import autocast
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
    all,
    amax,
    amin,
    any,
    argmin,
    argsort,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    cat,
    ceil,
    chunk,
    clip,
    cos,
    cumprod,
    cumsum,
    einsum,
    erf,
    exp,
    expm1,
    flip,
    floor,
    gather,
    index_select,
    isfinite,
    isinf,
    isnan,
    lerp,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    masked_fill,
    masked_select,
    matmul,
    maximum,
    minimum,
    movedim,
    nonzero,
    prod,
    relu,
    repeat_interleave,
    roll,
    round,
    rsqrt,
    scatter,
    scatter_add,
    sigmoid,
    sign,
    sin,
    sort,
    split,
    sqrt,
    stack,
    std,
    take_along_dim,
    tanh,
    topk,
    tril,
    triu,
    unflatten,
    where,
)
from minigrad.tensor import (
    Tensor,
    arange,
    bfloat16,
    bool_,
    eye,
    float16,
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
    "DeviceError", "GradcheckError", "Tensor", "abs", "all", "amax", "amin", "amp", "any", "arange",
    "argmin", "argsort", "autocast", "bfloat16", "bitwise_and", "bitwise_not", "bitwise_or",
    "bitwise_xor", "bool_", "cat",
    "ceil", "chunk", "clip", "cos", "cumprod", "cumsum", "data", "detect_anomaly", "einsum",
    "enable_grad", "erf", "exp", "expm1", "eye", "flip", "float16", "float32", "float64", "floor",
    "full",
    "gather", "get_backend", "get_rng_state", "gradcheck", "index_select", "int32", "int64",
    "is_grad_enabled", "isfinite", "isinf", "isnan", "lerp", "log", "log1p", "logical_and",
    "logical_not", "logical_or", "logical_xor", "logsumexp", "manual_seed", "masked_fill",
    "masked_select", "matmul", "maximum", "minimum", "models", "movedim", "nn", "no_grad",
    "nonzero", "ones", "ones_like", "optim", "prod", "rand", "randn", "randn_like", "relu",
    "repeat_interleave", "roll", "round", "rsqrt", "scatter", "scatter_add", "set_backend",
    "set_rng_state", "sigmoid", "sign", "sin", "sort", "split", "sqrt", "stack", "std",
    "take_along_dim", "tanh", "tensor", "topk", "tril", "triu", "unflatten", "where", "zeros",
    "zeros_like",
]
