"""LayerNorm over the last axis, forward and backward, on the GPU, with the row statistics saved.

Math, for a row x (H,) with weight w (H,) and bias b (H,):

    μ = ⟨x⟩,   r = 1/√(⟨(x - μ)²⟩ + eps),   x̂ = (x - μ)·r,   y = x̂·w + b

(⟨·⟩ the mean over the row; the biased variance, as in PyTorch). With ĝ = dy·w:

    dx = r·(ĝ - ⟨ĝ⟩ - x̂·⟨ĝ·x̂⟩),   dw = Σ_rows dy·x̂,   db = Σ_rows dy

Shapes: x (..., H) seen as R rows (R, H); w and b (H,); mean and rstd (R,), returned with shape
x.shape[:-1]. The same functions and conventions as :mod:`minigrad.kernels.cpu.layernorm`.

Half precision: x, dy, y and dx may be float16 or bfloat16 (:mod:`.precision`), with w and b
(and dw, db) in the same dtype or float32, the master weights of mixed precision. Every
statistic and sum is float32 (μ, r, ⟨ĝ⟩, ⟨ĝ·x̂⟩, the partial rows of dw and db); mean and rstd
are returned in float32, and each output is rounded to its dtype once.

Three kernels for each direction, slowest first:

* **naive** (the reference): a row (dx) or a column (dw, db) per thread, looping serially.
* **block per row** (rows longer than 1024): a block's threads stride along a row (coalesced)
  and meet in shared-memory tree sums.
* **warp per row** (rows up to 1024: BERT's H = 256, 384, 768): lane l keeps the row's columns
  l, l + 32, ... (⌈H/32⌉ of them) in registers, so x is read from memory once and both
  statistics come from registers; the warp reduces with register shuffles, no barrier.

The warp kernels index with unsigned integers (``np.uint64``), as SGEMM v5 does: Numba indexes
an array with a signed integer only after a test for a negative index (Python's wrap-around),
which keeps each of a lane's ⌈H/32⌉ addresses apart in registers; with unsigned indices the
addresses are one base plus constants (167 registers instead of 254 in the backward kernel at
H = 768, so 12 warps fit on an SM instead of 8). A Python int is typed int64, and int64 mixed
with uint64 makes float64, so every integer that meets an index is made a uint64.

In the backward kernels dw and db are sums over rows, made in two stages so that no two threads
ever add into one address: each block sums its share of the rows into its own partial row (in
the warp kernel each warp keeps running sums in registers, and the block's warps add them in
shared memory at the end), and :func:`column_sum_kernel` adds the partial rows.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda

from .common import (
    MAX_COLS_PER_LANE,
    MAX_THREADS,
    WARP,
    WARP_ROWS_THREADS,
    WARPS_PER_BLOCK,
    block_sum,
    cdiv,
    check_contiguous,
    check_shape,
    cols_per_lane,
    empty,
    is_host,
    row_threads,
    to_device,
    to_host,
    warp_sum,
)
from .precision import FLOAT32, Precision, converters, precision_of

NAIVE_THREADS = 128  # rows (or columns) per block for the one-thread-per-row kernels
BACKWARD_BLOCKS = 256  # blocks of the block-per-row backward: each sums dw, db over R/256 rows
BACKWARD_WARPS = 1024  # at most, warps of the warp-per-row backward (all resident on an H100) ...
ROWS_PER_WARP = 4  # ... each taking at least 4 rows, so the partial dw, db rows stay few
COLUMN_SPLIT = 32  # threads that share a column in column_sum_kernel, each summing P/32 rows
COLUMN_UNROLL = 8  # loads each of them keeps in flight
ROW_THREADS = 256  # at most, per row block: a BERT row (H = 768) is 3 elements a thread, and the
# backward kernel's registers would not fit 1024 threads a block (CUDA_ERROR_LAUNCH_OUT_OF_
# RESOURCES on an H100)


@functools.cache
def _forward_naive(px: Precision, pw: Precision) -> Any:
    T = px.compute.type  # noqa: N806 (np.float32 or np.float64: every constant in that precision)
    zero, one = T(0), T(1)
    (load, store), (load_w, _) = converters(px), converters(pw)

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
            total += load(x[i, j])
        mu = total * inv_h
        total = zero
        for j in range(H):
            total += (load(x[i, j]) - mu) * (load(x[i, j]) - mu)
        r = one / math.sqrt(total * inv_h + eps)
        for j in range(H):
            y[i, j] = store((load(x[i, j]) - mu) * r * load_w(w[j]) + load_w(b[j]))
        mean[i] = mu
        rstd[i] = r

    return layernorm_forward_naive_kernel


@functools.cache
def _forward_block(px: Precision, pw: Precision) -> Any:
    T, dtype = px.compute.type, px.compute  # noqa: N806
    zero, one = T(0), T(1)
    (load, store), (load_w, _) = converters(px), converters(pw)

    @cuda.jit
    def layernorm_forward_block_kernel(x: Any, w: Any, b: Any, eps: Any, y: Any, mean: Any,
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
            partial += load(x[i, j])
        mu = block_sum(buf, partial) * inv_h
        partial = zero
        for j in range(t, H, threads):
            partial += (load(x[i, j]) - mu) * (load(x[i, j]) - mu)
        r = one / math.sqrt(block_sum(buf, partial) * inv_h + eps)
        for j in range(t, H, threads):
            y[i, j] = store((load(x[i, j]) - mu) * r * load_w(w[j]) + load_w(b[j]))
        if t == 0:
            mean[i] = mu
            rstd[i] = r

    return layernorm_forward_block_kernel


@functools.cache
def _forward_warp(px: Precision, pw: Precision, cols: int) -> Any:
    T, dtype = px.compute.type, px.compute  # noqa: N806
    zero, one = T(0), T(1)
    (load, store), (load_w, _) = converters(px), converters(pw)
    u = np.uint64  # indices: see the module docstring
    LANES, ROWS = u(WARP), u(WARPS_PER_BLOCK)  # noqa: N806

    @cuda.jit
    def layernorm_forward_warp_kernel(x: Any, w: Any, b: Any, eps: Any, y: Any, mean: Any,
                                      rstd: Any) -> None:
        """Grid ⌈R/4⌉ blocks × 128 threads: warp w of block g owns row i = 4g + w.

        Lane l loads x[i, l + 32c] for c < cols into registers (0 past the row's end); a warp
        sum gives μ, a second one Σ(x - μ)² from the registers (the stable two-pass variance,
        without a second read), and y is written from the registers.

        Traffic: x read once, y written once (8·R·H bytes in float32), w and b from L1/L2,
        coalesced. Optimizes: one read of x, no shared memory, no barriers.
        """
        buf = cuda.shared.array(WARP_ROWS_THREADS, dtype)  # the simulator's shuffles
        v = cuda.local.array(cols, dtype)  # this lane's columns of the row (registers)
        t = u(cuda.threadIdx.x)
        lane, i = t % LANES, u(cuda.blockIdx.x) * ROWS + t // LANES
        R, H = u(x.shape[0]), u(x.shape[1])  # noqa: N806
        valid = i < R  # the last block's spare warps compute on zeros and write nothing
        inv_h = one / T(H)  # a float: dividing by the integer H would promote to float64
        total = zero
        for c in range(cols):
            j = lane + u(c) * LANES
            v[c] = load(x[i, j]) if valid and j < H else zero
            total += v[c]
        mu = warp_sum(buf, total) * inv_h
        total = zero
        for c in range(cols):
            if lane + u(c) * LANES < H:
                total += (v[c] - mu) * (v[c] - mu)
        r = one / math.sqrt(warp_sum(buf, total) * inv_h + eps)
        for c in range(cols):
            j = lane + u(c) * LANES
            if valid and j < H:
                y[i, j] = store((v[c] - mu) * r * load_w(w[j]) + load_w(b[j]))
        if valid and lane == 0:
            mean[i] = mu
            rstd[i] = r

    return layernorm_forward_warp_kernel


@functools.cache
def _backward_dx_naive(px: Precision, pw: Precision) -> Any:
    T = px.compute.type  # noqa: N806
    zero, one = T(0), T(1)
    (load, store), (load_w, _) = converters(px), converters(pw)

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
            g = load(dy[i, j]) * load_w(w[j])
            g_sum += g
            gx_sum += g * (load(x[i, j]) - mu) * r
        g_mean, gx_mean = g_sum * inv_h, gx_sum * inv_h
        for j in range(H):
            dx[i, j] = store(r * (load(dy[i, j]) * load_w(w[j]) - g_mean
                                  - (load(x[i, j]) - mu) * r * gx_mean))

    return layernorm_backward_dx_naive_kernel


@functools.cache
def _backward_dwdb_naive(px: Precision, pw: Precision) -> Any:
    zero = px.compute.type(0)
    (load, _), (_, store_w) = converters(px), converters(pw)

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
            dw_j += load(dy[i, j]) * (load(x[i, j]) - mean[i]) * rstd[i]
            db_j += load(dy[i, j])
        dw[j] = store_w(dw_j)
        db[j] = store_w(db_j)

    return layernorm_backward_dwdb_naive_kernel


@functools.cache
def _backward_block(px: Precision, pw: Precision) -> Any:
    T, dtype = px.compute.type, px.compute  # noqa: N806
    zero, one = T(0), T(1)
    (load, store), (load_w, _) = converters(px), converters(pw)

    @cuda.jit
    def layernorm_backward_block_kernel(dy: Any, x: Any, w: Any, mean: Any, rstd: Any, dx: Any,
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
                g = load(dy[i, j]) * load_w(w[j])
                g_sum += g
                gx_sum += g * (load(x[i, j]) - mu) * r
            g_mean = block_sum(buf, g_sum) * inv_h
            gx_mean = block_sum(buf, gx_sum) * inv_h
            for j in range(t, H, threads):
                xhat, dy_ij = (load(x[i, j]) - mu) * r, load(dy[i, j])
                dx[i, j] = store(r * (dy_ij * load_w(w[j]) - g_mean - xhat * gx_mean))
                dw_part[p, j] += dy_ij * xhat
                db_part[p, j] += dy_ij

    return layernorm_backward_block_kernel


@functools.cache
def _backward_warp(px: Precision, pw: Precision, cols: int) -> Any:
    T, dtype = px.compute.type, px.compute  # noqa: N806
    zero, one = T(0), T(1)
    (load, store), (load_w, _) = converters(px), converters(pw)
    u = np.uint64  # indices: see the module docstring
    LANES, ROWS, THREADS = u(WARP), u(WARPS_PER_BLOCK), u(WARP_ROWS_THREADS)  # noqa: N806
    span = cols * WARP  # a warp's columns, the row's length rounded up to 32
    part_slots = WARPS_PER_BLOCK * span

    @cuda.jit
    def layernorm_backward_warp_kernel(dy: Any, x: Any, w: Any, mean: Any, rstd: Any, dx: Any,
                                       dw_part: Any, db_part: Any) -> None:
        """Grid G blocks × 128 threads; warp w of block g takes rows 4g + w, 4g + w + 4G, ...

        Per row, lane l keeps dy and x̂ at columns l + 32c in registers; two warp sums give ⟨ĝ⟩
        and ⟨ĝ·x̂⟩ and dx is written from the registers. Each lane also adds dy·x̂ and dy into
        its columns' running dw, db in registers. At the end the block's 4 warps add their
        running sums through shared memory and write them to row g of dw_part and db_part
        (G, H): no two blocks share a partial row, so no atomics.

        Traffic: dy and x read once, dx written once (12·R·H bytes in float32), plus 2·G·H for
        the partial rows (G ≤ R/16). The blocks step through the rows together, so every warp of
        a block makes the same number of trips (the simulator's exchanges need the whole block,
        and so do the barriers at the end).
        """
        sums = cuda.shared.array(part_slots, dtype)  # [warp][column] running sums, then added
        buf = cuda.shared.array(WARP_ROWS_THREADS, dtype)  # the simulator's shuffles
        w_reg = cuda.local.array(cols, dtype)
        dy_reg = cuda.local.array(cols, dtype)
        xhat = cuda.local.array(cols, dtype)
        dw_acc = cuda.local.array(cols, dtype)
        db_acc = cuda.local.array(cols, dtype)
        t = u(cuda.threadIdx.x)
        lane, warp = t % LANES, t // LANES
        R, H = u(x.shape[0]), u(x.shape[1])  # noqa: N806
        inv_h = one / T(H)  # a float: dividing by the integer H would promote to float64
        for c in range(cols):
            j = lane + u(c) * LANES
            w_reg[c] = load_w(w[j]) if j < H else zero
            dw_acc[c], db_acc[c] = zero, zero
        for first in range(u(cuda.blockIdx.x) * ROWS, R, u(cuda.gridDim.x) * ROWS):
            i = first + warp
            valid = i < R
            mu = mean[i] if valid else zero
            r = rstd[i] if valid else zero
            for c in range(cols):  # every load first, none waiting on another: 2·cols in flight
                j = lane + u(c) * LANES
                dy_reg[c] = load(dy[i, j]) if valid and j < H else zero
                xhat[c] = load(x[i, j]) if valid and j < H else zero
            g_sum, gx_sum = zero, zero
            for c in range(cols):
                xhat[c] = (xhat[c] - mu) * r  # past the row's end it meets dy = 0 only
                g = dy_reg[c] * w_reg[c]
                g_sum += g
                gx_sum += g * xhat[c]
            g_mean = warp_sum(buf, g_sum) * inv_h
            gx_mean = warp_sum(buf, gx_sum) * inv_h
            for c in range(cols):
                j = lane + u(c) * LANES
                if valid and j < H:
                    dx[i, j] = store(r * (dy_reg[c] * w_reg[c] - g_mean - xhat[c] * gx_mean))
                dw_acc[c] += dy_reg[c] * xhat[c]  # dy = 0 past the row's end and for spare warps
                db_acc[c] += dy_reg[c]
        g = u(cuda.blockIdx.x)
        for c in range(cols):
            sums[warp * u(span) + lane + u(c) * LANES] = dw_acc[c]
        cuda.syncthreads()
        for j in range(t, H, THREADS):  # the 4 warps' sums of column j, in warp order
            total = zero
            for v in range(WARPS_PER_BLOCK):
                total += sums[u(v) * u(span) + j]
            dw_part[g, j] = total
        cuda.syncthreads()  # every sum read before db's overwrite them
        for c in range(cols):
            sums[warp * u(span) + lane + u(c) * LANES] = db_acc[c]
        cuda.syncthreads()
        for j in range(t, H, THREADS):
            total = zero
            for v in range(WARPS_PER_BLOCK):
                total += sums[u(v) * u(span) + j]
            db_part[g, j] = total

    return layernorm_backward_warp_kernel


@functools.cache
def _column_sum(pw: Precision) -> Any:
    zero, dtype = pw.compute.type(0), pw.compute
    _, store = converters(pw)
    split, unroll = COLUMN_SPLIT, COLUMN_UNROLL

    @cuda.jit
    def column_sum_kernel(part: Any, out: Any) -> None:
        """out[q, j] = Σ_p part[q, p, j] for part (Q, P, H), out (Q, H): dw and db in one launch.

        Grid (⌈H/32⌉, Q) blocks of 32 × 32 threads. Thread (tx, ty) sums column j = 32·bx + tx
        over rows ty, ty + 32, ...; it keeps 8 running sums, one per row of each group of 8
        rows it owns, so 8 independent loads are in flight (one sum would wait on each load).
        Then the 32 threads of a column add their sums by a shared-memory tree over ty.
        Traffic: part read once, coalesced (a warp reads 32 consecutive floats of a row).
        """
        sums = cuda.shared.array((split, WARP), dtype)
        acc = cuda.local.array(unroll, dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        q, j = cuda.blockIdx.y, cuda.blockIdx.x * WARP + tx
        P, H = part.shape[1], part.shape[2]  # noqa: N806
        for u in range(unroll):
            acc[u] = zero
        if j < H:
            for first in range(ty, P, split * unroll):
                for u in range(unroll):
                    if first + u * split < P:
                        acc[u] += part[q, first + u * split, j]
        total = zero
        for u in range(unroll):
            total += acc[u]
        sums[ty, tx] = total
        cuda.syncthreads()
        stride = split // 2
        while stride > 0:
            if ty < stride:
                sums[ty, tx] += sums[ty + stride, tx]
            cuda.syncthreads()
            stride //= 2
        if ty == 0 and j < H:
            out[q, j] = store(sums[0, tx])

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


def _precisions(name: str, bf16_bits: bool, x: Any, w: Any, b: Any = None
                 ) -> tuple[Precision, Precision]:
    """(x's precision, w's and b's): one precision, or a half x with float32 w and b (the
    float32 master weights of mixed precision)."""
    px = precision_of(name, bf16_bits, x=x)
    pw = precision_of(name, bf16_bits, w=w) if b is None else precision_of(name, bf16_bits,
                                                                           w=w, b=b)
    if pw != px and not (px.half and pw == FLOAT32):
        raise TypeError(f"{name}: w and b must be of x's dtype ({px.name}), or float32 with a "
                        f"float16 or bfloat16 x; got x {px.name} and w {pw.name}")
    return px, pw


def _forward_launch(naive: bool, x: Any, w: Any, b: Any, eps: float, bf16_bits: bool
                    ) -> tuple[Any, Any, Any]:
    name = "layernorm_forward_naive" if naive else "layernorm_forward"
    px, pw = _precisions(name, bf16_bits, x, w, b)
    H = _check(name, x, w)  # noqa: N806
    check_shape(name, "b", b, tuple(w.shape))
    x2 = _rows(name, "x", x, H)
    R = x2.shape[0]  # noqa: N806
    stats = px.compute  # mean and rstd: float32 for the half precisions
    y, mean, rstd = empty((R, H), px.storage), empty((R,), stats), empty((R,), stats)
    args = (x2, to_device(w, name), to_device(b, name), stats.type(eps), y, mean, rstd)
    if naive:
        _forward_naive(px, pw)[cdiv(R, NAIVE_THREADS), NAIVE_THREADS](*args)
    elif cols_per_lane(H) <= MAX_COLS_PER_LANE:
        _forward_warp(px, pw, cols_per_lane(H))[cdiv(R, WARPS_PER_BLOCK),
                                                WARP_ROWS_THREADS](*args)
    else:
        _forward_block(px, pw)[R, min(row_threads(H), ROW_THREADS)](*args)
    host, rows = is_host(x), tuple(x.shape)[:-1]
    return (to_host(y.reshape(tuple(x.shape)), host, like=x), to_host(mean.reshape(rows), host),
            to_host(rstd.reshape(rows), host))


def _backward_launch(naive: bool, dy: Any, x: Any, w: Any, mean: Any, rstd: Any,
                     bf16_bits: bool) -> tuple[Any, Any, Any]:
    name = "layernorm_backward_naive" if naive else "layernorm_backward"
    px, pw = _precisions(name, bf16_bits, x, w)
    precision_of(name, bf16_bits, dy=dy, x=x)  # dy in x's dtype, or a TypeError
    stats = px.compute
    for what, a in (("mean", mean), ("rstd", rstd)):
        if np.dtype(a.dtype) != stats:
            raise TypeError(f"{name}: {what} has dtype {np.dtype(a.dtype)}, expected {stats} "
                            f"(what the forward returned for {px.name} x)")
    H = _check(name, x, w)  # noqa: N806
    check_shape(name, "dy", dy, tuple(x.shape))
    check_shape(name, "mean", mean, tuple(x.shape)[:-1])
    check_shape(name, "rstd", rstd, tuple(x.shape)[:-1])
    x2, dy2 = _rows(name, "x", x, H), _rows(name, "dy", dy, H)
    R = x2.shape[0]  # noqa: N806
    w_d = to_device(w, name)
    mean_d = _rows(name, "mean", mean, R).reshape(R)
    rstd_d = _rows(name, "rstd", rstd, R).reshape(R)
    dx = empty((R, H), px.storage)
    if naive:
        dw, db = empty((H,), pw.storage), empty((H,), pw.storage)
        _backward_dx_naive(px, pw)[cdiv(R, NAIVE_THREADS), NAIVE_THREADS](
            dy2, x2, w_d, mean_d, rstd_d, dx)
        _backward_dwdb_naive(px, pw)[cdiv(H, NAIVE_THREADS), NAIVE_THREADS](
            dy2, x2, mean_d, rstd_d, dw, db)
    else:
        args = (dy2, x2, w_d, mean_d, rstd_d, dx)
        if cols_per_lane(H) <= MAX_COLS_PER_LANE:
            blocks = cdiv(min(cdiv(R, ROWS_PER_WARP), BACKWARD_WARPS), WARPS_PER_BLOCK)
            part = empty((2, blocks, H), stats)  # dw's and db's partial rows, one per block
            _backward_warp(px, pw, cols_per_lane(H))[blocks, WARP_ROWS_THREADS](
                *args, part[0], part[1])
        else:
            blocks = min(R, BACKWARD_BLOCKS)
            part = empty((2, blocks, H), stats)
            _backward_block(px, pw)[blocks, min(row_threads(H), ROW_THREADS)](
                *args, part[0], part[1])
        sums = empty((2, H), pw.storage)
        _column_sum(pw)[(cdiv(H, WARP), 2), (WARP, COLUMN_SPLIT)](part, sums)
        dw, db = sums[0], sums[1]
    host = is_host(x)
    return (to_host(dx.reshape(tuple(x.shape)), host, like=x), to_host(dw, host, like=w),
            to_host(db, host, like=w))


def layernorm_forward(x: Any, w: Any, b: Any, eps: float = 1e-5, bf16_bits: bool = False
                      ) -> tuple[Any, Any, Any]:
    """y = (x - μ)·r·w + b over the last axis; returns (y, mean, rstd), mean/rstd x.shape[:-1].

    x (..., H) C-contiguous, w and b (H,), one float dtype: float64, float32, float16 or
    bfloat16 (an ``ml_dtypes`` NumPy array, or uint16 bit patterns with ``bf16_bits=True``:
    :mod:`.precision`); with a half x, w and b may also be float32. Half precisions are summed
    in float32; y has x's dtype, and mean and rstd (what :func:`layernorm_backward` needs) are
    float32 for a half x.
    """
    return _forward_launch(False, x, w, b, eps, bf16_bits)


def layernorm_forward_naive(x: Any, w: Any, b: Any, eps: float = 1e-5, bf16_bits: bool = False
                            ) -> tuple[Any, Any, Any]:
    """:func:`layernorm_forward` by the one-thread-per-row reference kernel."""
    return _forward_launch(True, x, w, b, eps, bf16_bits)


def layernorm_backward(dy: Any, x: Any, w: Any, mean: Any, rstd: Any, bf16_bits: bool = False
                       ) -> tuple[Any, Any, Any]:
    """(dx, dw, db) for the upstream gradient dy (..., H) and the forward's saved mean, rstd.
    dy and dx have x's dtype, dw and db w's (float32 sums for the half precisions)."""
    return _backward_launch(False, dy, x, w, mean, rstd, bf16_bits)


def layernorm_backward_naive(dy: Any, x: Any, w: Any, mean: Any, rstd: Any,
                             bf16_bits: bool = False) -> tuple[Any, Any, Any]:
    """:func:`layernorm_backward` by the one-thread-per-row/column reference kernels."""
    return _backward_launch(True, dy, x, w, mean, rstd, bf16_bits)
