"""LayerNorm over the last axis, forward and backward, with the row statistics saved.

Math, for a row x (H,) with weight w (H,) and bias b (H,):

    μ = ⟨x⟩,   r = 1/√(⟨(x - μ)²⟩ + eps),   x̂ = (x - μ)·r,   y = x̂·w + b

(⟨·⟩ the mean over the row; the variance is the biased one, as in PyTorch). With ĝ = dy·w:

    dx = r·(ĝ - ⟨ĝ⟩ - x̂·⟨ĝ·x̂⟩),   dw = Σ_rows dy·x̂,   db = Σ_rows dy

Shapes: x (..., H), w and b (H,); y like x; mean and rstd one per row, x.shape[:-1].

What the fused kernel saves: the NumPy composite streams the (M, H) activations through memory
about 8 times (mean, subtract, square, mean, rsqrt, scale, ·w, +b) and allocates as many
temporaries. A 256-float row fits in L1, so the kernel reads it once from memory, computes μ,
then the variance of x - μ (two passes over L1: stabler than ⟨x²⟩ - μ²), and writes y once.
The backward recomputes x̂ from the saved μ, r (cheaper than saving x̂) and sums dw, db into one
partial row per chunk of rows, added at the end (no write conflicts between threads).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange

from .common import (
    REDUCE_CHUNKS,
    check_float,
    check_shape,
    contiguous,
    jit_parallel,
    row_dot,
    row_sum,
)


# --- the naive reference ----------------------------------------------------------------------
def layernorm_forward_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                                eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The NumPy composite: (y, mean, rstd) with mean and rstd of shape x.shape[:-1]."""
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    rstd = 1 / np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    y = centered * rstd * w + b
    return y.astype(x.dtype), mean[..., 0], rstd[..., 0].astype(x.dtype)


def layernorm_backward_reference(dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                                 mean: np.ndarray, rstd: np.ndarray
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) from the closed form in the module docstring."""
    xhat = (x - mean[..., None]) * rstd[..., None]
    g = dy * w
    dx = rstd[..., None] * (g - g.mean(axis=-1, keepdims=True)
                            - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return dx.astype(x.dtype), (dy * xhat).sum(axis=rows), dy.sum(axis=rows)


# --- the fused kernels ------------------------------------------------------------------------
@jit_parallel
def _forward_kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: Any, y: np.ndarray,
                    mean: np.ndarray, rstd: np.ndarray) -> None:
    M, H = x.shape  # noqa: N806  # x, y (M, H); w, b (H,); mean, rstd (M,)
    T = type(eps)  # noqa: N806
    for i in prange(M):
        xi, yi = x[i], y[i]
        mu = row_sum(xi) / T(H)
        for j in range(H):  # y holds x - μ for a moment
            yi[j] = xi[j] - mu
        r = T(1.0) / T(math.sqrt(row_dot(yi, yi) / T(H) + eps))
        for j in range(H):
            yi[j] = yi[j] * r * w[j] + b[j]
        mean[i] = mu
        rstd[i] = r


@jit_parallel
def _backward_kernel(dy: np.ndarray, x: np.ndarray, w: np.ndarray, mean: np.ndarray,
                     rstd: np.ndarray, dx: np.ndarray, dw_part: np.ndarray,
                     db_part: np.ndarray) -> None:
    M, H = x.shape  # noqa: N806  # dy, x, dx (M, H); dw_part, db_part (chunks, H)
    chunks = dw_part.shape[0]
    T = type(x[0, 0])  # noqa: N806
    for c in prange(chunks):
        xhat = np.empty(H, dtype=x.dtype)  # scratch rows, one pair per chunk
        g = np.empty(H, dtype=x.dtype)
        dwc, dbc = dw_part[c], db_part[c]
        for i in range(c * M // chunks, (c + 1) * M // chunks):
            xi, dyi, dxi = x[i], dy[i], dx[i]
            mu, r = mean[i], rstd[i]
            for j in range(H):
                xhat[j] = (xi[j] - mu) * r
                g[j] = dyi[j] * w[j]
                dwc[j] += dyi[j] * xhat[j]
                dbc[j] += dyi[j]
            g_mean = row_sum(g) / T(H)
            gx_mean = row_dot(g, xhat) / T(H)
            for j in range(H):
                dxi[j] = r * (g[j] - g_mean - xhat[j] * gx_mean)


def _check(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> None:
    check_float(name, x=x, w=w, b=b)
    if x.ndim < 1 or w.ndim != 1 or x.shape[-1] != w.shape[0] or x.shape[-1] == 0:
        raise ValueError(f"{name}: expected x (..., H) and w (H,) with H ≥ 1, got x {x.shape} "
                         f"and w {w.shape}")
    if b is not None:
        check_shape(name, "b", b, w.shape)


def layernorm_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = (x - μ)·r·w + b over the last axis; returns (y, mean, rstd), mean/rstd x.shape[:-1].

    x (..., H), w and b (H,), one float dtype. mean and rstd are what :func:`layernorm_backward`
    needs.
    """
    _check("layernorm_forward", x, w, b)
    x, w, b = contiguous(x), contiguous(w), contiguous(b)
    H = x.shape[-1]  # noqa: N806
    x2 = x.reshape(-1, H)
    y = np.empty_like(x2)
    mean = np.empty(x2.shape[0], dtype=x.dtype)
    rstd = np.empty(x2.shape[0], dtype=x.dtype)
    _forward_kernel(x2, w, b, x.dtype.type(eps), y, mean, rstd)
    return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])


def layernorm_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, mean: np.ndarray,
                       rstd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for the upstream gradient dy (..., H) and the forward's saved mean, rstd."""
    _check("layernorm_backward", x, w, None)
    check_float("layernorm_backward", dy=dy, x=x, mean=mean, rstd=rstd)
    check_shape("layernorm_backward", "dy", dy, x.shape)
    check_shape("layernorm_backward", "mean", mean, x.shape[:-1])
    check_shape("layernorm_backward", "rstd", rstd, x.shape[:-1])
    H = x.shape[-1]  # noqa: N806
    x2, dy2 = contiguous(x).reshape(-1, H), contiguous(dy).reshape(-1, H)
    chunks = max(1, min(REDUCE_CHUNKS, x2.shape[0]))
    dx = np.empty_like(x2)
    dw_part = np.zeros((chunks, H), dtype=x.dtype)
    db_part = np.zeros((chunks, H), dtype=x.dtype)
    _backward_kernel(dy2, x2, contiguous(w), contiguous(mean).reshape(-1),
                     contiguous(rstd).reshape(-1), dx, dw_part, db_part)
    return dx.reshape(x.shape), dw_part.sum(axis=0), db_part.sum(axis=0)
