"""Fused scale + key-padding mask + softmax over rows, forward and backward, on the GPU.

Math, for one row x (S,) of scores with keep-mask k (S,) (1 = attend, 0 = padding):

    s_j = scale·x_j  where k_j,  else the dtype's most negative finite value (masked_fill)
    y_j = e^(s_j - m) / Σ_i e^(s_i - m),   m = max_i s_i
    dx_j = scale · y_j · (dy_j - Σ_i dy_i·y_i)  where k_j,  else 0

The rule for non-finite rows is :mod:`minigrad.kernels.cpu.softmax`'s, the NumPy composite's:
without a mask, exactly its formula, so a row that is all -inf, or holds +inf or NaN, is NaN (as
``torch.softmax``), and a -inf entry of a row with a finite max gets 0. A masked score is
*replaced* by finfo.min, so its gradient is exactly 0, and a row whose every key is masked is
uniform, y_j = 1/S, as ``masked_fill(finfo.min)`` gives in the model: never NaN. The online
softmax of the block kernel skips a -inf score (it adds e^-inf = 0) rather than computing
e^(-inf - m) while its running max m is still -inf, which would be NaN.

Half precision: x (and y, dy, dx) may be float16 or bfloat16 (:mod:`.precision`): each element
is converted to float32 when loaded, the max, the sums and e^(s - m) are float32, and each
output is rounded to the input's dtype once. A masked score is then float32's finfo.min.

Shapes: x (N, ..., S), mask (N, S) or None: every row of x[n] uses mask[n]. For attention scores
x is (B, A, S, S) and the mask the (B, S) key padding mask. The kernels see x as R rows (R, S).

Three kernels for each direction, slowest first:

* **naive** (the reference): one thread per row walks it three times (max, sum, write): no
  cooperation, and neighbouring threads read addresses S apart, so no load is coalesced.
* **block per row** (rows longer than 1024): thread t of a block takes columns t, t + T...,
  so a warp reads 32 neighbouring floats at once, and the block combines its threads' partial
  results with the shared-memory trees of :mod:`.common`: about 20 ``syncthreads`` per row.
* **warp per row** (rows up to 1024, attention's S = 128 among them): a block holds 4 rows, one
  per warp. Lane l keeps the row's columns l, l + 32, ... (⌈S/32⌉ of them, a compile-time
  constant) in registers, so x is read from memory once and e^(s - m) computed once, and the
  warp reduces with register shuffles: no shared memory, no barrier. At S = 128 this does the
  work of a block per row with a quarter of the threads and none of the waiting.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda, uint8

from .common import (
    MAX_COLS_PER_LANE,
    MAX_THREADS,
    WARP,
    WARP_ROWS_THREADS,
    WARPS_PER_BLOCK,
    block_max,
    block_sum,
    cdiv,
    check_contiguous,
    check_shape,
    cols_per_lane,
    empty,
    is_host,
    key_mask,
    row_threads,
    to_device,
    to_host,
    warp_max,
    warp_sum,
)
from .precision import Precision, converters, precision_of

NAIVE_THREADS = 128  # rows per block for the one-thread-per-row kernels


@functools.cache
def _forward_naive(p: Precision) -> Any:
    T = p.compute.type  # noqa: N806 (np.float32 or np.float64: every constant in that precision)
    zero, one, most_negative = T(0), T(1), T(np.finfo(p.compute).min)
    minus_inf = T(-np.inf)
    load, store = converters(p)

    @cuda.jit
    def softmax_forward_naive_kernel(x: Any, keep: Any, rows_per_mask: int, scale: Any,
                                     y: Any) -> None:
        """Reference. Grid ⌈R/128⌉ × 128 threads, one row per thread, three serial passes.

        Traffic: reads x three times and writes y once, 16·R·S bytes (float32), uncoalesced:
        in a warp, thread r reads x[r, j] while its neighbour reads x[r + 1, j], S floats away.
        """
        r = cuda.grid(1)
        if r >= x.shape[0]:
            return
        n, S = r // rows_per_mask, x.shape[1]  # noqa: N806
        m = minus_inf  # m = max_j s_j: -inf for a row of -inf, whose softmax is then NaN
        for j in range(S):
            s = scale * load(x[r, j]) if keep[n, j] != 0 else most_negative
            if s > m:
                m = s
        total = zero
        for j in range(S):
            s = scale * load(x[r, j]) if keep[n, j] != 0 else most_negative
            total += math.exp(s - m)
        for j in range(S):
            s = scale * load(x[r, j]) if keep[n, j] != 0 else most_negative
            y[r, j] = store(math.exp(s - m) * (one / total))

    return softmax_forward_naive_kernel


@functools.cache
def _forward_block(p: Precision) -> Any:
    T, dtype = p.compute.type, p.compute  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)
    minus_inf = T(-np.inf)
    load, store = converters(p)

    @cuda.jit
    def softmax_forward_block_kernel(x: Any, keep: Any, rows_per_mask: int, scale: Any,
                               y: Any) -> None:
        """Grid R blocks × T threads (T = row_threads(S), a power of two ≤ 1024): one row a block.

        Pass 1, an online softmax: thread t walks columns t, t+T, ... keeping its running max m
        and its running sum l = Σ e^(s - m); when a larger s arrives, l is rescaled by
        e^(m_old - m_new), and an s of -inf adds nothing (so m = -inf, l = 0 until a larger s).
        Then two block reductions: M = max_t m_t, L = Σ_t l_t·e^(m_t - M), which is NaN when
        M = -inf (0·e^(-inf + inf)): a row of -inf is NaN, as the composite. Pass 2 writes
        y = e^(s - M) / L.

        Traffic: x is read from memory once (pass 2 finds the row in L1/L2 for rows up to tens
        of KB) and y written once: 8·R·S bytes in float32, the minimum, all coalesced.
        Optimizes: coalescing, one trip to DRAM, no S-long loop on one thread.
        """
        buf = cuda.shared.array(MAX_THREADS, dtype)  # the reductions' scratch
        r, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        n, S = r // rows_per_mask, x.shape[1]  # noqa: N806
        m, l = minus_inf, zero  # noqa: E741 (FlashAttention's name for the running sum)
        for j in range(t, S, threads):
            s = scale * load(x[r, j]) if keep[n, j] != 0 else most_negative
            if s > m:
                l = l * math.exp(m - s) + one  # noqa: E741
                m = s
            elif s != minus_inf:  # -inf adds e^-inf = 0; NaN is added (and spreads)
                l += math.exp(s - m)  # noqa: E741
        row_max = block_max(buf, m)
        row_sum = block_sum(buf, l * math.exp(m - row_max))  # a thread with no column adds 0
        inv = one / row_sum
        for j in range(t, S, threads):
            s = scale * load(x[r, j]) if keep[n, j] != 0 else most_negative
            y[r, j] = store(math.exp(s - row_max) * inv)

    return softmax_forward_block_kernel


@functools.cache
def _forward_warp(p: Precision, cols: int) -> Any:
    T, dtype = p.compute.type, p.compute  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)
    minus_inf = T(-np.inf)
    load, store = converters(p)
    u = np.uint64  # unsigned indices: see .layernorm's module docstring
    LANES, ROWS = u(WARP), u(WARPS_PER_BLOCK)  # noqa: N806

    @cuda.jit
    def softmax_forward_warp_kernel(x: Any, keep: Any, rows_per_mask: int, scale: Any,
                                    y: Any) -> None:
        """Grid ⌈R/4⌉ blocks × 128 threads: warp w of block g owns row r = 4g + w.

        Lane l loads s = scale·x[r, l + 32c] (or finfo.min where masked) for c < cols into the
        registers s[c]; a column past the row's end holds -inf, which adds e^-inf = 0. A warp
        max gives M, then s[c] ← e^(s[c] - M) in place, a warp sum gives L, and y = s[c]/L.

        Traffic: x read once and y written once (8·R·S bytes in float32), coalesced: a warp
        reads 32 consecutive floats per c. The mask (B·S bytes) stays in L2.
        Optimizes: one read of x, one exp per element, no shared memory and no barriers.
        """
        buf = cuda.shared.array(WARP_ROWS_THREADS, dtype)  # the simulator's shuffles
        s = cuda.local.array(cols, dtype)  # this lane's columns of the row (registers)
        kept = cuda.local.array(cols, uint8)
        t = u(cuda.threadIdx.x)
        lane, r = t % LANES, u(cuda.blockIdx.x) * ROWS + t // LANES
        R, S = u(x.shape[0]), u(x.shape[1])  # noqa: N806
        valid = r < R  # the last block's spare warps compute on zeros and write nothing
        n = r // u(rows_per_mask)
        for c in range(cols):  # every load first, none waiting on another: 2·cols in flight
            j = lane + u(c) * LANES
            s[c] = load(x[r, j]) if valid and j < S else zero
            kept[c] = keep[n, j] if valid and j < S else 0
        pad = minus_inf if valid else zero
        m = pad
        for c in range(cols):
            if valid and lane + u(c) * LANES < S:
                s[c] = scale * s[c] if kept[c] != 0 else most_negative
            else:
                s[c] = pad
            if s[c] > m:
                m = s[c]
        row_max = warp_max(buf, m)
        total = zero
        for c in range(cols):
            s[c] = math.exp(s[c] - row_max)
            total += s[c]
        inv = one / warp_sum(buf, total)
        for c in range(cols):
            j = lane + u(c) * LANES
            if valid and j < S:
                y[r, j] = store(s[c] * inv)

    return softmax_forward_warp_kernel


@functools.cache
def _backward_naive(p: Precision) -> Any:
    zero = p.compute.type(0)
    load, store = converters(p)

    @cuda.jit
    def softmax_backward_naive_kernel(y: Any, dy: Any, keep: Any, rows_per_mask: int,
                                      scale: Any, dx: Any) -> None:
        """Reference. Grid ⌈R/128⌉ × 128, one row per thread: a dot product, then the axpy.

        Traffic: reads y and dy twice, writes dx: 20·R·S bytes (float32), uncoalesced.
        """
        r = cuda.grid(1)
        if r >= y.shape[0]:
            return
        n, S = r // rows_per_mask, y.shape[1]  # noqa: N806
        dot = zero
        for j in range(S):
            dot += load(dy[r, j]) * load(y[r, j])
        for j in range(S):
            dx[r, j] = store(scale * load(y[r, j]) * (load(dy[r, j]) - dot)
                             if keep[n, j] != 0 else zero)

    return softmax_backward_naive_kernel


@functools.cache
def _backward_block(p: Precision) -> Any:
    zero, dtype = p.compute.type(0), p.compute
    load, store = converters(p)

    @cuda.jit
    def softmax_backward_block_kernel(y: Any, dy: Any, keep: Any, rows_per_mask: int, scale: Any,
                                dx: Any) -> None:
        """Grid R blocks × T threads, one row a block: Σ dy·y by a block sum, then the axpy.

        Traffic: y and dy read once from memory (the second pass hits L1/L2), dx written once:
        12·R·S bytes in float32, coalesced.
        """
        buf = cuda.shared.array(MAX_THREADS, dtype)
        r, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        n, S = r // rows_per_mask, y.shape[1]  # noqa: N806
        partial = zero
        for j in range(t, S, threads):
            partial += load(dy[r, j]) * load(y[r, j])
        dot = block_sum(buf, partial)
        for j in range(t, S, threads):
            dx[r, j] = store(scale * load(y[r, j]) * (load(dy[r, j]) - dot)
                             if keep[n, j] != 0 else zero)

    return softmax_backward_block_kernel


@functools.cache
def _backward_warp(p: Precision, cols: int) -> Any:
    zero, dtype = p.compute.type(0), p.compute
    load, store = converters(p)
    u = np.uint64  # unsigned indices: see .layernorm's module docstring
    LANES, ROWS = u(WARP), u(WARPS_PER_BLOCK)  # noqa: N806

    @cuda.jit
    def softmax_backward_warp_kernel(y: Any, dy: Any, keep: Any, rows_per_mask: int,
                                     scale: Any, dx: Any) -> None:
        """Grid ⌈R/4⌉ blocks × 128 threads, a warp per row (as the forward warp kernel).

        Lane l keeps y and dy at columns l + 32c in registers, a warp sum gives Σ dy·y, and
        dx = scale·y·(dy - Σ) is written from the registers.
        Traffic: y and dy read once, dx written once (12·R·S bytes in float32), coalesced.
        """
        buf = cuda.shared.array(WARP_ROWS_THREADS, dtype)  # the simulator's shuffles
        y_reg = cuda.local.array(cols, dtype)
        dy_reg = cuda.local.array(cols, dtype)
        t = u(cuda.threadIdx.x)
        lane, r = t % LANES, u(cuda.blockIdx.x) * ROWS + t // LANES
        R, S = u(y.shape[0]), u(y.shape[1])  # noqa: N806
        valid = r < R
        n = r // u(rows_per_mask)
        partial = zero
        for c in range(cols):
            j = lane + u(c) * LANES
            y_reg[c] = load(y[r, j]) if valid and j < S else zero
            dy_reg[c] = load(dy[r, j]) if valid and j < S else zero
        for c in range(cols):
            partial += y_reg[c] * dy_reg[c]
        dot = warp_sum(buf, partial)
        for c in range(cols):
            j = lane + u(c) * LANES
            if valid and j < S:
                dx[r, j] = store(scale * y_reg[c] * (dy_reg[c] - dot) if keep[n, j] != 0
                                     else zero)

    return softmax_backward_warp_kernel


# --- host wrappers ----------------------------------------------------------------------------
def _rows(name: str, x: Any, mask: Any) -> tuple[Any, Any, int]:
    """x as (R, S) rows on the device, the (N, S) keep-mask, and how many rows share a mask row."""
    shape = tuple(x.shape)  # a tuple: a device array's shape may not index from the end
    if len(shape) < 1 or shape[-1] == 0:
        raise ValueError(f"{name}: expected an input with a non-empty last axis, got shape {shape}")
    S = shape[-1]  # noqa: N806
    R = int(np.prod(shape[:-1], dtype=np.int64))  # noqa: N806
    if mask is None:
        N = 1  # noqa: N806
    elif len(x.shape) < 2:
        raise ValueError(f"{name}: a mask (N, S) needs an input (N, ..., S), got {shape}")
    else:
        N = shape[0]  # noqa: N806
    keep = key_mask(name, mask, N, S)
    xd = to_device(x, name)
    check_contiguous(name, "x", xd)
    return xd.reshape(R, S), keep, R // N


def _forward_launch(naive: bool, x: Any, scale: float, mask: Any, bf16_bits: bool) -> Any:
    name = "softmax_forward_naive" if naive else "softmax_forward"
    p = precision_of(name, bf16_bits, x=x)
    x2, keep, rows_per_mask = _rows(name, x, mask)
    R, S = x2.shape  # noqa: N806
    y = empty((R, S), p.storage)
    args = (x2, keep, rows_per_mask, p.compute.type(scale), y)
    if naive:
        _forward_naive(p)[cdiv(R, NAIVE_THREADS), NAIVE_THREADS](*args)
    elif cols_per_lane(S) <= MAX_COLS_PER_LANE:
        _forward_warp(p, cols_per_lane(S))[cdiv(R, WARPS_PER_BLOCK), WARP_ROWS_THREADS](*args)
    else:
        _forward_block(p)[R, row_threads(S)](*args)
    return to_host(y.reshape(tuple(x.shape)), is_host(x), like=x)


def _backward_launch(naive: bool, y: Any, dy: Any, scale: float, mask: Any,
                     bf16_bits: bool) -> Any:
    name = "softmax_backward_naive" if naive else "softmax_backward"
    p = precision_of(name, bf16_bits, y=y, dy=dy)
    check_shape(name, "dy", dy, tuple(y.shape))
    y2, keep, rows_per_mask = _rows(name, y, mask)
    dy_d = to_device(dy, name)
    check_contiguous(name, "dy", dy_d)
    R, S = y2.shape  # noqa: N806
    dx = empty((R, S), p.storage)
    args = (y2, dy_d.reshape(R, S), keep, rows_per_mask, p.compute.type(scale), dx)
    if naive:
        _backward_naive(p)[cdiv(R, NAIVE_THREADS), NAIVE_THREADS](*args)
    elif cols_per_lane(S) <= MAX_COLS_PER_LANE:
        _backward_warp(p, cols_per_lane(S))[cdiv(R, WARPS_PER_BLOCK), WARP_ROWS_THREADS](*args)
    else:
        _backward_block(p)[R, row_threads(S)](*args)
    return to_host(dx.reshape(tuple(y.shape)), is_host(y), like=y)


def softmax_forward(x: Any, scale: float = 1.0, mask: Any = None, bf16_bits: bool = False
                    ) -> Any:
    """y = softmax(masked_fill(scale·x, mask == 0, finfo.min)) over the last axis.

    x (N, ..., S), C-contiguous, float64, float32, float16 or bfloat16 (an ``ml_dtypes``
    NumPy array, or uint16 bit patterns with ``bf16_bits=True``: :mod:`.precision`); the half
    precisions are summed in float32, and a masked score is float32's finfo.min. mask (N, S) of
    1 = keep / 0 = pad, or None. Returns y with x's shape and dtype (NumPy for NumPy input,
    else a device array).
    """
    return _forward_launch(False, x, scale, mask, bf16_bits)


def softmax_forward_naive(x: Any, scale: float = 1.0, mask: Any = None,
                          bf16_bits: bool = False) -> Any:
    """:func:`softmax_forward` by the one-thread-per-row reference kernel."""
    return _forward_launch(True, x, scale, mask, bf16_bits)


def softmax_backward(y: Any, dy: Any, scale: float = 1.0, mask: Any = None,
                     bf16_bits: bool = False) -> Any:
    """dx = scale·y·(dy - Σ_j dy_j·y_j) per row, 0 at masked keys; y is the forward output.
    y, dy and dx share one dtype, as the forward's x (float32 sums for the half precisions)."""
    return _backward_launch(False, y, dy, scale, mask, bf16_bits)


def softmax_backward_naive(y: Any, dy: Any, scale: float = 1.0, mask: Any = None,
                           bf16_bits: bool = False) -> Any:
    """:func:`softmax_backward` by the one-thread-per-row reference kernel."""
    return _backward_launch(True, y, dy, scale, mask, bf16_bits)
