"""GELU (erf and tanh forms) and the fused bias + GELU of BERT's feed-forward layer.

Math: GELU(x) = x·Φ(x), Φ the standard normal CDF, φ its density.

    exact ("none"):  Φ(x) = ½(1 + erf(x/√2)),  GELU'(x) = Φ(x) + x·φ(x),  φ(x) = e^(-x²/2)/√(2π)
    "tanh":          GELU(x) ≈ ½x(1 + tanh u),  u = √(2/π)(x + 0.044715x³),
                     GELU'(x) ≈ ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²)

The kernels compute the tanh form as x·σ(2u) (σ the logistic sigmoid, ½(1 + tanh u) = σ(2u)):
the same function, but for negative x it avoids 1 + tanh u ≈ 0, which loses most of float32's
digits (the NumPy composite and PyTorch keep that error; the tests allow for it). With
e = e^(-2u) and s = 1/(1 + e), GELU' = s + 2x·e·s²·u', u' = √(2/π)(1 + 3·0.044715x²).

Fused bias + GELU: y = GELU(x + b) for x (M, F), b (F,) (x is the matmul's output without its
bias). Backward: dx = dy·GELU'(x + b), db = Σ_rows dx. Saving x (not x + b) is enough: the
kernel re-adds b, which costs nothing next to reading x.

Shapes: gelu on any shape; bias_gelu on x (..., F) with b (F,).

What the fused kernels save: the NumPy composite makes ~6 passes (scale, erf, add, multiply,
multiply, plus the bias add before it), each a full array through memory, and SciPy's erf is a
scalar double-precision loop. The kernel makes one pass, split across threads; its erf and exp
are :mod:`.vecmath`'s plain-arithmetic versions, so in float32 the loop is 8-wide SIMD.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special
from numba import prange

from . import vecmath
from .common import (
    CHUNK,
    REDUCE_CHUNKS,
    check_float,
    check_shape,
    contiguous,
    jit,
    jit_inline,
    jit_parallel,
    n_chunks,
)

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TANH_COEF = 0.044715
APPROXIMATIONS = ("none", "tanh")


# --- the naive reference ----------------------------------------------------------------------
def gelu_forward_reference(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """The NumPy composite (the engine's ops/nn.py Gelu.forward)."""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + TANH_COEF * x**3)))
    return (0.5 * x * (1 + scipy.special.erf(x * INV_SQRT_2))).astype(x.dtype)


def gelu_backward_reference(x: np.ndarray, dy: np.ndarray, approximate: str = "none"
                            ) -> np.ndarray:
    """dx = dy·GELU'(x)."""
    if approximate == "tanh":
        t = np.tanh(SQRT_2_OVER_PI * (x + TANH_COEF * x**3))
        du = SQRT_2_OVER_PI * (1 + 3 * TANH_COEF * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
    cdf = 0.5 * (1 + scipy.special.erf(x * INV_SQRT_2))
    pdf = INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return (dy * (cdf + x * pdf)).astype(x.dtype)


def bias_gelu_forward_reference(x: np.ndarray, b: np.ndarray, approximate: str = "none"
                                ) -> np.ndarray:
    """GELU(x + b), b broadcast over the rows."""
    return gelu_forward_reference(x + b, approximate)


def bias_gelu_backward_reference(x: np.ndarray, b: np.ndarray, dy: np.ndarray,
                                 approximate: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """(dx, db) = (dy·GELU'(x + b), Σ_rows dx)."""
    dx = gelu_backward_reference(x + b, dy, approximate)
    return dx, dx.reshape(-1, b.shape[0]).sum(axis=0)


# --- one element, both forms ------------------------------------------------------------------
@jit_inline
def gelu(x: Any, use_tanh: bool) -> Any:
    T = type(x)  # noqa: N806
    if use_tanh:  # ½(1 + tanh u) = σ(2u) = 1/(1 + e^(-2u))
        u = T(SQRT_2_OVER_PI) * (x + T(TANH_COEF) * x * x * x)
        return x / (T(1.0) + vecmath.exp(T(-2.0) * u))
    return T(0.5) * x * (T(1.0) + vecmath.erf(x * T(INV_SQRT_2)))


@jit_inline
def gelu_grad(x: Any, use_tanh: bool) -> Any:
    """GELU'(x)."""
    T = type(x)  # noqa: N806
    if use_tanh:  # d/dx x·σ(2u) = σ + x·2σ(1 - σ)·u',  σ(1 - σ) = e·σ² with e = e^(-2u)
        x2 = x * x
        e = vecmath.exp(T(-2.0 * SQRT_2_OVER_PI) * (x + T(TANH_COEF) * x2 * x))
        sig = T(1.0) / (T(1.0) + e)
        du = T(SQRT_2_OVER_PI) * (T(1.0) + T(3.0 * TANH_COEF) * x2)
        return sig + (e * sig) * sig * T(2.0) * x * du  # e·σ ≤ 1 first: no overflow
    cdf = T(0.5) * (T(1.0) + vecmath.erf(x * T(INV_SQRT_2)))
    pdf = T(INV_SQRT_2PI) * vecmath.exp(T(-0.5) * x * x)
    return cdf + x * pdf


# --- the fused kernels ------------------------------------------------------------------------
# One serial function per span of elements or row, called by a thin parallel loop: ``use_tanh``
# is tested outside the element loops, so each loop body is branch-free and vectorizes (and
# Numba's parallel compiler, slow on big loop bodies, only sees a call).
@jit
def gelu_span(x: np.ndarray, b: np.ndarray, y: np.ndarray, use_tanh: bool) -> None:
    """y = GELU(x + b) over 1-D views; b of length 0 means no bias."""
    if b.shape[0] == 0:
        if use_tanh:
            for i in range(x.shape[0]):
                y[i] = gelu(x[i], True)
        else:
            for i in range(x.shape[0]):
                y[i] = gelu(x[i], False)
    elif use_tanh:
        for i in range(x.shape[0]):
            y[i] = gelu(x[i] + b[i], True)
    else:
        for i in range(x.shape[0]):
            y[i] = gelu(x[i] + b[i], False)


@jit
def gelu_span_backward(x: np.ndarray, b: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                       use_tanh: bool) -> None:
    """dx = dy·GELU'(x + b) over 1-D views; b of length 0 means no bias."""
    if b.shape[0] == 0:
        if use_tanh:
            for i in range(x.shape[0]):
                dx[i] = dy[i] * gelu_grad(x[i], True)
        else:
            for i in range(x.shape[0]):
                dx[i] = dy[i] * gelu_grad(x[i], False)
    elif use_tanh:
        for i in range(x.shape[0]):
            dx[i] = dy[i] * gelu_grad(x[i] + b[i], True)
    else:
        for i in range(x.shape[0]):
            dx[i] = dy[i] * gelu_grad(x[i] + b[i], False)


@jit_parallel
def _forward_kernel(x: np.ndarray, y: np.ndarray, use_tanh: bool) -> None:
    n = x.shape[0]  # x, y (n,) flat
    no_bias = x[:0]
    for task in prange(n_chunks(n)):  # CHUNK-sized views, indexed from 0 (see .common)
        lo, hi = task * CHUNK, min(n, (task + 1) * CHUNK)
        gelu_span(x[lo:hi], no_bias, y[lo:hi], use_tanh)


@jit_parallel
def _backward_kernel(x: np.ndarray, dy: np.ndarray, dx: np.ndarray, use_tanh: bool) -> None:
    n = x.shape[0]
    no_bias = x[:0]
    for task in prange(n_chunks(n)):
        lo, hi = task * CHUNK, min(n, (task + 1) * CHUNK)
        gelu_span_backward(x[lo:hi], no_bias, dy[lo:hi], dx[lo:hi], use_tanh)


@jit_parallel
def _bias_forward_kernel(x: np.ndarray, b: np.ndarray, y: np.ndarray, use_tanh: bool) -> None:
    M = x.shape[0]  # noqa: N806  # x, y (M, F); b (F,)
    for i in prange(M):
        gelu_span(x[i], b, y[i], use_tanh)


@jit_parallel
def _bias_backward_kernel(x: np.ndarray, b: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                          db_part: np.ndarray, use_tanh: bool) -> None:
    M, F = x.shape  # noqa: N806  # x, dy, dx (M, F); b (F,); db_part (chunks, F)
    chunks = db_part.shape[0]
    for c in prange(chunks):  # each chunk of rows sums its own row of db
        dbc = db_part[c]
        for i in range(c * M // chunks, (c + 1) * M // chunks):
            dxi = dx[i]
            gelu_span_backward(x[i], b, dy[i], dxi, use_tanh)
            for j in range(F):
                dbc[j] += dxi[j]


def _use_tanh(name: str, approximate: str) -> bool:
    if approximate not in APPROXIMATIONS:
        raise ValueError(f"{name}: approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate == "tanh"


def gelu_forward(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """y = GELU(x) elementwise, any shape; ``approximate`` is 'none' (erf) or 'tanh'."""
    use_tanh = _use_tanh("gelu_forward", approximate)
    check_float("gelu_forward", x=x)
    shape = x.shape
    x = contiguous(x)  # (a 0-d x comes back 1-d: the result is reshaped to x's shape)
    y = np.empty_like(x)
    _forward_kernel(x.reshape(-1), y.reshape(-1), use_tanh)
    return y.reshape(shape)


def gelu_backward(x: np.ndarray, dy: np.ndarray, approximate: str = "none") -> np.ndarray:
    """dx = dy·GELU'(x), x the forward's input."""
    use_tanh = _use_tanh("gelu_backward", approximate)
    check_float("gelu_backward", x=x, dy=dy)
    check_shape("gelu_backward", "dy", dy, x.shape)
    shape = x.shape
    x, dy = contiguous(x), contiguous(dy)
    dx = np.empty_like(x)
    _backward_kernel(x.reshape(-1), dy.reshape(-1), dx.reshape(-1), use_tanh)
    return dx.reshape(shape)


def _check_bias(name: str, x: np.ndarray, b: np.ndarray) -> None:
    if x.ndim < 1 or b.ndim != 1 or x.shape[-1] != b.shape[0]:
        raise ValueError(f"{name}: expected x (..., F) and b (F,), got x {x.shape} and "
                         f"b {b.shape}")


def bias_gelu_forward(x: np.ndarray, b: np.ndarray, approximate: str = "none") -> np.ndarray:
    """y = GELU(x + b) for x (..., F), b (F,): the bias add fused into the activation."""
    use_tanh = _use_tanh("bias_gelu_forward", approximate)
    check_float("bias_gelu_forward", x=x, b=b)
    _check_bias("bias_gelu_forward", x, b)
    x2 = contiguous(x).reshape(-1, b.shape[0])
    y = np.empty_like(x2)
    _bias_forward_kernel(x2, contiguous(b), y, use_tanh)
    return y.reshape(x.shape)


def bias_gelu_backward(x: np.ndarray, b: np.ndarray, dy: np.ndarray, approximate: str = "none"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(dx, db) = (dy·GELU'(x + b), Σ_rows dx); x and b are the forward's inputs."""
    use_tanh = _use_tanh("bias_gelu_backward", approximate)
    check_float("bias_gelu_backward", x=x, b=b, dy=dy)
    _check_bias("bias_gelu_backward", x, b)
    check_shape("bias_gelu_backward", "dy", dy, x.shape)
    F = b.shape[0]  # noqa: N806
    x2, dy2 = contiguous(x).reshape(-1, F), contiguous(dy).reshape(-1, F)
    dx = np.empty_like(x2)
    db_part = np.zeros((max(1, min(REDUCE_CHUNKS, x2.shape[0])), F), dtype=x.dtype)
    _bias_backward_kernel(x2, contiguous(b), dy2, dx, db_part, use_tanh)
    return dx.reshape(x.shape), db_part.sum(axis=0)
