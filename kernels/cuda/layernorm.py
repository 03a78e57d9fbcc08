"""LayerNorm over the last axis, forward and backward, on the GPU, with the row statistics saved.

Math, for a row x (H,) with weight w (H,) and bias b (H,):

    μ = ⟨x⟩,   r = 1/√(⟨(x - μ)²⟩ + eps),   x̂ = (x - μ)·r,   y = x̂·w + b

(⟨·⟩ the mean over the row; the biased variance, as in PyTorch). With ĝ = dy·w:

    dx = r·(ĝ - ⟨ĝ⟩ - x̂·⟨ĝ·x̂⟩),   dw = Σ_rows dy·x̂,   db = Σ_rows dy

Shapes: x (..., H) seen as R rows (R, H); w and b (H,); mean and rstd (R,), returned with shape
x.shape[:-1]. The same functions and conventions as :mod:`minigrad.kernels.cpu.layernorm`.

The naive kernels give a row (dx) or a column (dw, db) to one thread and loop serially. The fast
kernels give a row to a block, whose threads stride along it (coalesced) and meet in shared-memory
tree sums; dw and db are summed in two stages so that no two threads ever add into one address.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda

from .common import (
    MAX_THREADS,
    block_sum,
    cdiv,
    check_contiguous,
    check_float,
    check_shape,
    empty,
    is_host,
    row_threads,
    to_device,
    to_host,
)

NAIVE_THREADS = 128  # rows (or columns) per block for the one-thread-per-row kernels
COLUMN_THREADS = 256  # columns per block for the dw/db column sums
BACKWARD_BLOCKS = 256  # blocks of the fused backward: each sums dw, db over R/256 rows
ROW_THREADS = 256  # at most, per row block: a BERT row (H = 768) is 3 elements a thread, and the
# backward kernel's registers would not fit 1024 threads a block (CUDA_ERROR_LAUNCH_OUT_OF_
# RESOURCES on an H100)


@functools.cache
def _forward_naive(dtype: np.dtype) -> Any:
    T = dtype.type  # noqa: N806 (np.float32 or np.float64: every constant in x's precision)
    zero, one = T(0), T(1)

    @cuda.jit
    def layernorm_forward_naive_kernel(x: Any, w: Any, b: Any, eps: Any, y: Any, mean: Any,
                                       rstd: Any) -> None:
        """Reference. Grid ⌈R/128⌉ × 128, one row per thread: mean, variance, write.

        Traffic: x read three times, y written once, 16·R·H bytes (float32), uncoalesced
        (neighbouring threads read addresses H apart).
        """
        i = cuda.grid(1)
        if i >= x.shape[0]:
            return
        H = x.shape[1]  # noqa: N806
        inv_h = one / T(H)  # a float: dividing by the int64 H would promote to float64
        total = zero
        for j in range(H):
            total += x[i, j]
        mu = total * inv_h
        total = zero
        for j in range(H):
            total += (x[i, j] - mu) * (x[i, j] - mu)
        r = one / math.sqrt(total * inv_h + eps)
        for j in range(H):
            y[i, j] = (x[i, j] - mu) * r * w[j] + b[j]
        mean[i] = mu
        rstd[i] = r

    return layernorm_forward_naive_kernel


@functools.cache
def _forward(dtype: np.dtype) -> Any:
    T = dtype.type  # noqa: N806 (np.float32 or np.float64: every constant in x's precision)
    zero, one = T(0), T(1)

    @cuda.jit
    def layernorm_forward_kernel(x: Any, w: Any, b: Any, eps: Any, y: Any, mean: Any,
                                 rstd: Any) -> None:
        """Grid R blocks × T threads (T = row_threads(H) ≤ ROW_THREADS), one row a block.

        Two block sums give μ = Σx/H, then σ² = Σ(x - μ)²/H (two passes: stabler than
        ⟨x²⟩ - μ², and the second pass reads the row from L1); a third pass writes y.

        Traffic: x read from memory once, y written once, w and b from L2: 8·R·H bytes in
        float32, the minimum, coalesced. Optimizes: coalescing, one trip to DRAM per element.
        """
        buf = cuda.shared.array(MAX_THREADS, dtype)
        i, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        H = x.shape[1]  # noqa: N806
        inv_h = one / T(H)  # a float: dividing by the int64 H would promote to float64
        partial = zero
        for j in range(t, H, threads):
            partial += x[i, j]
        mu = block_sum(buf, partial) * inv_h
        partial = zero
        for j in range(t, H, threads):
            partial += (x[i, j] - mu) * (x[i, j] - mu)
        r = one / math.sqrt(block_sum(buf, partial) * inv_h + eps)
        for j in range(t, H, threads):
            y[i, j] = (x[i, j] - mu) * r * w[j] + b[j]
        if t == 0:
            mean[i] = mu
            rstd[i] = r

    return layernorm_forward_kernel


@functools.cache
def _backward_dx_naive(dtype: np.dtype) -> Any:
    T = dtype.type  # noqa: N806
    zero, one = T(0), T(1)

    @cuda.jit
    def layernorm_backward_dx_naive_kernel(dy: Any, x: Any, w: Any, mean: Any, rstd: Any,
                                           dx: Any) -> None:
        """Reference. Grid ⌈R/128⌉ × 128, one row per thread: ⟨ĝ⟩ and ⟨ĝ·x̂⟩, then dx.

        Traffic: dy and x read twice, dx written: 20·R·H bytes (float32), uncoalesced.
        """
        i = cuda.grid(1)
        if i >= x.shape[0]:
            return
        H = x.shape[1]  # noqa: N806
        inv_h = one / T(H)  # a float: dividing by the int64 H would promote to float64
        mu, r = mean[i], rstd[i]
        g_sum, gx_sum = zero, zero
        for j in range(H):
            g = dy[i, j] * w[j]
            g_sum += g
            gx_sum += g * (x[i, j] - mu) * r
        g_mean, gx_mean = g_sum * inv_h, gx_sum * inv_h
        for j in range(H):
            dx[i, j] = r * (dy[i, j] * w[j] - g_mean - (x[i, j] - mu) * r * gx_mean)

    return layernorm_backward_dx_naive_kernel


@functools.cache
def _backward_dwdb_naive(dtype: np.dtype) -> Any:
    zero = dtype.type(0)

    @cuda.jit
    def layernorm_backward_dwdb_naive_kernel(dy: Any, x: Any, mean: Any, rstd: Any, dw: Any,
                                             db: Any) -> None:
        """Reference. Grid ⌈H/128⌉ × 128, one column per thread, summing over all R rows.

        Traffic: dy and x read once (8·R·H bytes, float32), coalesced across the warp; but only
        H threads run, too few to fill a GPU when H is a few hundred.
        """
        j = cuda.grid(1)
        if j >= x.shape[1]:
            return
        dw_j, db_j = zero, zero
        for i in range(x.shape[0]):
            dw_j += dy[i, j] * (x[i, j] - mean[i]) * rstd[i]
            db_j += dy[i, j]
        dw[j] = dw_j
        db[j] = db_j

    return layernorm_backward_dwdb_naive_kernel


@functools.cache
def _backward(dtype: np.dtype) -> Any:
    T = dtype.type  # noqa: N806
    zero, one = T(0), T(1)

    @cuda.jit
    def layernorm_backward_kernel(dy: Any, x: Any, w: Any, mean: Any, rstd: Any, dx: Any,
                                  dw_part: Any, db_part: Any) -> None:
        """Grid P blocks × T threads (P = min(R, 256)): block p takes rows p, p + P, p + 2P...

        Per row, two block sums give ⟨ĝ⟩ and ⟨ĝ·x̂⟩, then each thread writes dx for its columns
        j = t, t + T... and adds dy·x̂ and dy into row p of dw_part and db_part (P, H). Thread t
        is the only one to touch those columns of that row, so there is no race and no atomic.
        :func:`column_sum_kernel` then adds the P partial rows.

        Traffic: dy and x read from memory once, dx written once (12·R·H bytes, float32),
        coalesced; the partial rows (2·P·H) stay in L2. Optimizes: one pass for dx, dw and db.
        """
        buf = cuda.shared.array(MAX_THREADS, dtype)
        p, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        R, H = x.shape  # noqa: N806
        inv_h = one / T(H)  # a float: dividing by the int64 H would promote to float64
        for j in range(t, H, threads):
            dw_part[p, j] = zero
            db_part[p, j] = zero
        for i in range(p, R, cuda.gridDim.x):
            mu, r = mean[i], rstd[i]
            g_sum, gx_sum = zero, zero
            for j in range(t, H, threads):
                g = dy[i, j] * w[j]
                g_sum += g
                gx_sum += g * (x[i, j] - mu) * r
            g_mean = block_sum(buf, g_sum) * inv_h
            gx_mean = block_sum(buf, gx_sum) * inv_h
            for j in range(t, H, threads):
                xhat = (x[i, j] - mu) * r
                dx[i, j] = r * (dy[i, j] * w[j] - g_mean - xhat * gx_mean)
                dw_part[p, j] += dy[i, j] * xhat
                db_part[p, j] += dy[i, j]

    return layernorm_backward_kernel


@functools.cache
def _column_sum(dtype: np.dtype) -> Any:
    zero = dtype.type(0)

    @cuda.jit
    def column_sum_kernel(part: Any, out: Any) -> None:
        """out[j] = Σ_p part[p, j]. Grid ⌈H/256⌉ × 256, one column per thread; coalesced."""
        j = cuda.grid(1)
        if j >= part.shape[1]:
            return
        total = zero
        for p in range(part.shape[0]):
            total += part[p, j]
        out[j] = total

    return column_sum_kernel


# --- host wrappers ----------------------------------------------------------------------------
def _check(name: str, x: Any, w: Any) -> int:
    """H, after checking x (..., H) against w (H,)."""
    shape, w_shape = tuple(x.shape), tuple(w.shape)  # tuples: a device array's shape may not be
    if len(shape) < 1 or len(w_shape) != 1 or shape[-1] != w_shape[0] or shape[-1] == 0:
        raise ValueError(f"{name}: expected x (..., H) and w (H,) with H ≥ 1, got x {shape} "
                         f"and w {w_shape}")
    return shape[-1]


def _rows(name: str, what: str, a: Any, H: int) -> Any:  # noqa: N803
    d = to_device(a, name)
    check_contiguous(name, what, d)
    return d.reshape(d.size // H, H)


def _forward_launch(naive: bool, x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any]:
    name = "layernorm_forward_naive" if naive else "layernorm_forward"
    dtype = check_float(name, x=x, w=w, b=b)
    H = _check(name, x, w)  # noqa: N806
    check_shape(name, "b", b, tuple(w.shape))
    x2 = _rows(name, "x", x, H)
    R = x2.shape[0]  # noqa: N806
    y, mean, rstd = empty((R, H), dtype), empty((R,), dtype), empty((R,), dtype)
    args = (x2, to_device(w, name), to_device(b, name), dtype.type(eps), y, mean, rstd)
    if naive:
        _forward_naive(dtype)[cdiv(R, NAIVE_THREADS), NAIVE_THREADS](*args)
    else:
        _forward(dtype)[R, min(row_threads(H), ROW_THREADS)](*args)
    host, rows = is_host(x), tuple(x.shape)[:-1]
    return (to_host(y.reshape(tuple(x.shape)), host), to_host(mean.reshape(rows), host),
            to_host(rstd.reshape(rows), host))


def _backward_launch(naive: bool, dy: Any, x: Any, w: Any, mean: Any, rstd: Any
                     ) -> tuple[Any, Any, Any]:
    name = "layernorm_backward_naive" if naive else "layernorm_backward"
    dtype = check_float(name, dy=dy, x=x, w=w, mean=mean, rstd=rstd)
    H = _check(name, x, w)  # noqa: N806
    check_shape(name, "dy", dy, tuple(x.shape))
    check_shape(name, "mean", mean, tuple(x.shape)[:-1])
    check_shape(name, "rstd", rstd, tuple(x.shape)[:-1])
    x2, dy2 = _rows(name, "x", x, H), _rows(name, "dy", dy, H)
    R = x2.shape[0]  # noqa: N806
    w_d = to_device(w, name)
    mean_d = _rows(name, "mean", mean, R).reshape(R)
    rstd_d = _rows(name, "rstd", rstd, R).reshape(R)
    dx, dw, db = empty((R, H), dtype), empty((H,), dtype), empty((H,), dtype)
    if naive:
        _backward_dx_naive(dtype)[cdiv(R, NAIVE_THREADS), NAIVE_THREADS](
            dy2, x2, w_d, mean_d, rstd_d, dx)
        _backward_dwdb_naive(dtype)[cdiv(H, NAIVE_THREADS), NAIVE_THREADS](
            dy2, x2, mean_d, rstd_d, dw, db)
    else:
        P = min(R, BACKWARD_BLOCKS)  # noqa: N806
        dw_part, db_part = empty((P, H), dtype), empty((P, H), dtype)
        _backward(dtype)[P, min(row_threads(H), ROW_THREADS)](dy2, x2, w_d, mean_d, rstd_d, dx,
                                                              dw_part, db_part)
        column_sum = _column_sum(dtype)
        column_sum[cdiv(H, COLUMN_THREADS), COLUMN_THREADS](dw_part, dw)
        column_sum[cdiv(H, COLUMN_THREADS), COLUMN_THREADS](db_part, db)
    host = is_host(x)
    return to_host(dx.reshape(tuple(x.shape)), host), to_host(dw, host), to_host(db, host)


def layernorm_forward(x: Any, w: Any, b: Any, eps: float = 1e-5) -> tuple[Any, Any, Any]:
    """y = (x - μ)·r·w + b over the last axis; returns (y, mean, rstd), mean/rstd x.shape[:-1].

    x (..., H) C-contiguous, w and b (H,), one float dtype. mean and rstd are what
    :func:`layernorm_backward` needs.
    """
    return _forward_launch(False, x, w, b, eps)


def layernorm_forward_naive(x: Any, w: Any, b: Any, eps: float = 1e-5) -> tuple[Any, Any, Any]:
    """:func:`layernorm_forward` by the one-thread-per-row reference kernel."""
    return _forward_launch(True, x, w, b, eps)


def layernorm_backward(dy: Any, x: Any, w: Any, mean: Any, rstd: Any) -> tuple[Any, Any, Any]:
    """(dx, dw, db) for the upstream gradient dy (..., H) and the forward's saved mean, rstd."""
    return _backward_launch(False, dy, x, w, mean, rstd)


def layernorm_backward_naive(dy: Any, x: Any, w: Any, mean: Any, rstd: Any
                             ) -> tuple[Any, Any, Any]:
    """:func:`layernorm_backward` by the one-thread-per-row/column reference kernels."""
    return _backward_launch(True, dy, x, w, mean, rstd)
