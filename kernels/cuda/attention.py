"""Fused multi-head attention with a key padding mask, forward and backward, after
FlashAttention (Dao et al., 2022): the (S, S) scores never leave the chip.

Math, per batch element b and head h, with q, k, v (S, D), keep-mask k_j (1 = attend, 0 = pad)
and scale c (1/√D by default):

    s_ij = c·q_i·k_j  where keep_j,  else the dtype's most negative value (masked_fill)
    P_ij = e^(s_ij - L_i),   L_i = log Σ_j e^(s_ij)   (the row's logsumexp, saved)
    o_i  = Σ_j P_ij·v_j

    backward, from dO:  Δ_i = dO_i·o_i  (= Σ_j P_ij·dP_ij),   dP_ij = dO_i·v_j,
                        dS_ij = P_ij·(dP_ij - Δ_i)  where keep_j,  else 0,
                        dq_i = c·Σ_j dS_ij·k_j,   dk_j = c·Σ_i dS_ij·q_i,   dv_j = Σ_i P_ij·dO_i

The rule for non-finite scores is :mod:`.softmax`'s (the NumPy composite's): a padded score is
*replaced* by finfo.min, so a row whose every key is padded attends uniformly, P_ij = 1/S, as
masked_fill(finfo.min) gives in the model, and never NaN; an unpadded score of -inf gets P = 0
in a row with a finite max, and a row whose scores are all -inf (or hold +inf or NaN) is NaN,
as the composite. The backward gives a padded key P_ij = e^(finfo.min - L_i) like any other
(0 in a row with a larger score, NaN in a NaN row) and dS_ij = 0, except in a row whose largest
score is finfo.min itself (every key padded, or every unpadded score -inf): there L_i is
finfo.min too (the log of the count is lost in rounding), and P_ij = 1/(number of padded keys),
1/S when every key is padded.

Shapes: q, k, v, o, dO (B, A, S, D), C-contiguous; mask (B, S); L and Δ (B, A, S).

**Online softmax.** A query row's output is built as its keys stream past: with the running max
m, the running sum l = Σ e^(s - m) and the unnormalised output acc = Σ e^(s - m)·v_j, a key with
s > m first rescales l and acc by e^(m - s). At the end o = acc / l and L = m + log l. So the
scores are never stored: each is made, used and dropped in registers. The backward recomputes
P_ij = e^(s_ij - L_i) from the saved L, instead of reading an (S, S) matrix. A score of -inf
adds nothing to l and acc (e^-inf = 0): computing e^(s - m) while m is still -inf would give NaN
and poison a row whose first keys are -inf. So l = 0 at the end only when every score is -inf:
o = acc·(1/0) is NaN, and L is written as NaN (the composite's m + log Σ e^(s - m), with
s - m = -inf + inf), which makes the row's backward NaN too.

**The kernels.** The naive ones give each query row (and, in the backward, each key row) to one
thread reading everything from global memory, three passes over the keys in the forward. The
fast ones stage tiles of K and V (or of Q and dO) in shared memory, which every thread of the
block then reads by broadcast, and keep their own row and accumulators in registers, or, where
registers would run out, in rows of shared memory padded against bank conflicts. There is no
dropout on the attention probabilities: a training step with attention dropout needs another
path (or a counter-based random generator in these kernels, as FlashAttention has).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda

from .common import (
    cdiv,
    check_contiguous,
    check_float,
    check_shape,
    empty,
    is_host,
    key_mask,
    to_device,
    to_host,
)

SMEM_BYTES = 48 * 1024  # static shared memory a block may use on every GPU since Kepler
QUERY_ROWS = 64  # threads (query rows) per block of the forward and dq kernels
KEY_ROWS = 32  # threads (key rows) per block of the dk/dv kernel
NAIVE_THREADS = 128
TILE_CHOICES = (64, 32, 16, 8)
KEEP = np.dtype(np.int32)  # the dtype of the mask tile in shared memory


def _tiles(D: int, dtype: np.dtype) -> tuple[int, int, int]:  # noqa: N803
    """Tile sizes for head size D: (forward key tile, dq key tile, dk/dv query tile).

    forward: K and V tiles of n rows, at most 32 KB together. dq: the same, beside its 64 rows
    of c·q (padded to D + 1), in 48 KB. dk/dv: its 32 K and V rows (padded) beside Q and dO
    tiles of n rows and their n values of L and Δ, in 48 KB.
    """
    size = dtype.itemsize
    own_q = QUERY_ROWS * (D + 1) * size
    own_kv = 2 * KEY_ROWS * (D + 1) * size
    forward = next((n for n in TILE_CHOICES if 2 * n * D * size <= 32 * 1024), None)
    dq = next((n for n in TILE_CHOICES
               if own_q + n * (2 * D * size + KEEP.itemsize) <= SMEM_BYTES), None)
    dkdv = next((n for n in TILE_CHOICES if own_kv + 2 * n * (D + 1) * size <= SMEM_BYTES), None)
    if forward is None or dq is None or dkdv is None:
        raise ValueError(f"attention: head size D={D} in {dtype} does not fit the kernels' "
                         f"{SMEM_BYTES // 1024} KB of shared memory")
    return forward, dq, dkdv


@functools.cache
def _forward_naive(dtype: np.dtype, D: int) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)
    minus_inf = T(-np.inf)

    @cuda.jit
    def attention_forward_naive_kernel(q: Any, k: Any, v: Any, keep: Any, scale: Any, out: Any,
                                       lse: Any) -> None:
        """Reference. Grid ⌈S/128⌉ × A × B, one query row per thread, three passes over keys.

        Every score is recomputed from global memory in each pass (max, sum, output): reads
        3·S·D floats of K and S·D of V per query row, uncoalesced. No shared memory.
        """
        i, h, b = cuda.grid(1), cuda.blockIdx.y, cuda.blockIdx.z
        S = q.shape[2]  # noqa: N806
        if i >= S:
            return
        m = minus_inf  # m = max_j s_j: a row of -inf makes the sum NaN, and o and L with it
        for j in range(S):
            s = zero
            for d in range(D):
                s += q[b, h, i, d] * k[b, h, j, d]
            s = scale * s if keep[b, j] != 0 else most_negative
            if s > m:
                m = s
        total = zero
        for j in range(S):
            s = zero
            for d in range(D):
                s += q[b, h, i, d] * k[b, h, j, d]
            s = scale * s if keep[b, j] != 0 else most_negative
            total += math.exp(s - m)
        for d in range(D):
            out[b, h, i, d] = zero
        for j in range(S):
            s = zero
            for d in range(D):
                s += q[b, h, i, d] * k[b, h, j, d]
            s = scale * s if keep[b, j] != 0 else most_negative
            p = math.exp(s - m) * (one / total)
            for d in range(D):
                out[b, h, i, d] += p * v[b, h, j, d]
        lse[b, h, i] = m + math.log(total)

    return attention_forward_naive_kernel


@functools.cache
def _forward(dtype: np.dtype, D: int, BK: int) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one, nan = T(0), T(1), T(np.nan)
    most_negative, minus_inf = T(np.finfo(dtype).min), T(-np.inf)
    BQ = QUERY_ROWS  # noqa: N806

    @cuda.jit
    def attention_forward_kernel(q: Any, k: Any, v: Any, keep: Any, scale: Any, out: Any,
                                 lse: Any) -> None:
        """Grid ⌈S/64⌉ × A × B blocks of 64 threads; thread t owns query row i = 64·x + t.

        The thread keeps c·q_i (D registers), its output accumulator (D), m and l. The block
        walks the keys a tile of BK rows at a time: the 64 threads copy the tile of K and V
        (BK×D each, coalesced) and its mask into shared memory, then each thread streams the BK
        keys through the online softmax; every thread reads the same k_j, v_j (a broadcast).

        Traffic: Q read once, O and L written once; K and V read once per block of 64 queries:
        (2 + 2·S/64)·S·D floats per head, against the 2·S² of a materialised score matrix.
        Flops: 4·S²·D per head. Optimizes: no S×S matrix in memory, one pass over the keys.
        """
        k_tile = cuda.shared.array((BK, D), dtype)
        v_tile = cuda.shared.array((BK, D), dtype)
        keep_tile = cuda.shared.array(BK, KEEP)
        q_row = cuda.local.array(D, dtype)
        acc = cuda.local.array(D, dtype)
        t, h, b = cuda.threadIdx.x, cuda.blockIdx.y, cuda.blockIdx.z
        i = cuda.blockIdx.x * BQ + t
        S = q.shape[2]  # noqa: N806
        if i < S:
            for d in range(D):
                q_row[d] = scale * q[b, h, i, d]
                acc[d] = zero
        m, l = minus_inf, zero  # noqa: E741 (FlashAttention's name for the running sum)
        for j0 in range(0, S, BK):
            n_keys = BK if S - j0 > BK else S - j0
            for e in range(t, n_keys * D, BQ):  # the tile is n_keys·D consecutive floats
                r, d = e // D, e % D
                k_tile[r, d] = k[b, h, j0 + r, d]
                v_tile[r, d] = v[b, h, j0 + r, d]
            for e in range(t, n_keys, BQ):
                keep_tile[e] = 1 if keep[b, j0 + e] != 0 else 0
            cuda.syncthreads()
            if i < S:
                for j in range(n_keys):
                    s = zero
                    for d in range(D):
                        s += q_row[d] * k_tile[j, d]
                    if keep_tile[j] == 0:
                        s = most_negative
                    if s > m:  # a new running max: rescale what was summed so far
                        alpha = math.exp(m - s)
                        l *= alpha  # noqa: E741
                        for d in range(D):
                            acc[d] *= alpha
                        m = s
                    p = math.exp(s - m) if s != minus_inf else zero  # (NaN passes)
                    l += p  # noqa: E741
                    for d in range(D):
                        acc[d] += p * v_tile[j, d]
            cuda.syncthreads()  # every thread is done with the tile before it is overwritten
        if i < S:
            inv = one / l  # l = 0 only for a row of -inf scores: o = 0·∞ = NaN
            for d in range(D):
                out[b, h, i, d] = acc[d] * inv
            lse[b, h, i] = m + math.log(l) if l > zero else nan  # l = 0 or NaN: L is NaN

    return attention_forward_kernel


@functools.cache
def _backward_dq_naive(dtype: np.dtype, D: int) -> Any:  # noqa: N803
    zero = dtype.type(0)

    @cuda.jit
    def attention_backward_dq_naive_kernel(q: Any, k: Any, v: Any, keep: Any, out: Any,
                                           dout: Any, lse: Any, scale: Any, dq: Any,
                                           delta: Any) -> None:
        """Reference. Grid ⌈S/128⌉ × A × B, one query row per thread: Δ_i, then dq_i.

        Writes Δ (B, A, S) for the dk/dv kernel. Reads K and V from global memory per query.
        """
        i, h, b = cuda.grid(1), cuda.blockIdx.y, cuda.blockIdx.z
        S = q.shape[2]  # noqa: N806
        if i >= S:
            return
        delta_i = zero
        for d in range(D):
            delta_i += dout[b, h, i, d] * out[b, h, i, d]
            dq[b, h, i, d] = zero
        delta[b, h, i] = delta_i
        for j in range(S):
            if keep[b, j] != 0:  # a padded key has dS = 0: nothing to add
                s, dp = zero, zero
                for d in range(D):
                    s += q[b, h, i, d] * k[b, h, j, d]
                    dp += dout[b, h, i, d] * v[b, h, j, d]
                ds = math.exp(scale * s - lse[b, h, i]) * (dp - delta_i)
                for d in range(D):
                    dq[b, h, i, d] += scale * ds * k[b, h, j, d]

    return attention_backward_dq_naive_kernel


@functools.cache
def _backward_dkdv_naive(dtype: np.dtype, D: int) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)

    @cuda.jit
    def attention_backward_dkdv_naive_kernel(q: Any, k: Any, v: Any, keep: Any, dout: Any,
                                             lse: Any, delta: Any, scale: Any, dk: Any,
                                             dv: Any) -> None:
        """Reference. Grid ⌈S/128⌉ × A × B, one key row j per thread, looping over queries."""
        j, h, b = cuda.grid(1), cuda.blockIdx.y, cuda.blockIdx.z
        S = q.shape[2]  # noqa: N806
        if j >= S:
            return
        kept = keep[b, j] != 0
        padded = 0  # the sequence's padded keys, for P_ij of a padded key j: 1/padded
        if not kept:
            for e in range(S):
                if keep[b, e] == 0:
                    padded += 1
        uniform = one / T(padded) if padded > 0 else zero
        for d in range(D):
            dk[b, h, j, d] = zero
            dv[b, h, j, d] = zero
        for i in range(S):
            if kept:
                s, dp = zero, zero
                for d in range(D):
                    s += q[b, h, i, d] * k[b, h, j, d]
                    dp += dout[b, h, i, d] * v[b, h, j, d]
                p = math.exp(scale * s - lse[b, h, i])
                ds = p * (dp - delta[b, h, i])
                for d in range(D):
                    dk[b, h, j, d] += scale * ds * q[b, h, i, d]
                    dv[b, h, j, d] += p * dout[b, h, i, d]
            else:  # s_ij = finfo.min: dS_ij = 0, P_ij = e^(s_ij - L_i) (1/padded if L_i = s_ij)
                lse_i = lse[b, h, i]
                p = uniform if lse_i == most_negative else math.exp(most_negative - lse_i)
                for d in range(D):
                    dv[b, h, j, d] += p * dout[b, h, i, d]

    return attention_backward_dkdv_naive_kernel


@functools.cache
def _backward_dq(dtype: np.dtype, D: int, BK: int) -> Any:  # noqa: N803
    zero = dtype.type(0)
    BQ, DP = QUERY_ROWS, D + 1  # noqa: N806

    @cuda.jit
    def attention_backward_dq_kernel(q: Any, k: Any, v: Any, keep: Any, out: Any, dout: Any,
                                     lse: Any, scale: Any, dq: Any, delta: Any) -> None:
        """Grid ⌈S/64⌉ × A × B blocks of 64 threads; thread t owns query row i, like the forward.

        The thread computes Δ_i = dO_i·o_i (and saves it for the dk/dv kernel), keeps dO_i and
        its dq_i accumulator in registers (2·D) and c·q_i in shared memory (rows padded to D + 1
        floats, so that the 32 threads of a warp reading element d of their own rows hit 32
        different banks: three rows of registers would spill), and streams tiles of K, V and the
        mask through shared memory: per key, P_ij = e^(s_ij - L_i), dP_ij = dO_i·v_j, and
        dq_i += dS_ij·k_j. Traffic: as the forward, plus dO read and dq, Δ written once.
        """
        k_tile = cuda.shared.array((BK, D), dtype)
        v_tile = cuda.shared.array((BK, D), dtype)
        keep_tile = cuda.shared.array(BK, KEEP)
        q_rows = cuda.shared.array((BQ, DP), dtype)
        do_row = cuda.local.array(D, dtype)
        acc = cuda.local.array(D, dtype)
        t, h, b = cuda.threadIdx.x, cuda.blockIdx.y, cuda.blockIdx.z
        i = cuda.blockIdx.x * BQ + t
        S = q.shape[2]  # noqa: N806
        delta_i, lse_i = zero, zero
        if i < S:
            for d in range(D):
                q_rows[t, d] = scale * q[b, h, i, d]
                do_row[d] = dout[b, h, i, d]
                delta_i += do_row[d] * out[b, h, i, d]
                acc[d] = zero
            delta[b, h, i] = delta_i
            lse_i = lse[b, h, i]
        for j0 in range(0, S, BK):
            n_keys = BK if S - j0 > BK else S - j0
            for e in range(t, n_keys * D, BQ):
                r, d = e // D, e % D
                k_tile[r, d] = k[b, h, j0 + r, d]
                v_tile[r, d] = v[b, h, j0 + r, d]
            for e in range(t, n_keys, BQ):
                keep_tile[e] = 1 if keep[b, j0 + e] != 0 else 0
            cuda.syncthreads()
            if i < S:
                for j in range(n_keys):
                    if keep_tile[j] != 0:  # a padded key has dS = 0
                        s, dp = zero, zero
                        for d in range(D):
                            s += q_rows[t, d] * k_tile[j, d]
                            dp += do_row[d] * v_tile[j, d]
                        ds = math.exp(s - lse_i) * (dp - delta_i)
                        for d in range(D):
                            acc[d] += ds * k_tile[j, d]
            cuda.syncthreads()
        if i < S:
            for d in range(D):
                dq[b, h, i, d] = scale * acc[d]

    return attention_backward_dq_kernel


@functools.cache
def _backward_dkdv(dtype: np.dtype, D: int, BQ: int) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)
    BKV, DP = KEY_ROWS, D + 1  # noqa: N806

    @cuda.jit
    def attention_backward_dkdv_kernel(q: Any, k: Any, v: Any, keep: Any, dout: Any, lse: Any,
                                       delta: Any, scale: Any, dk: Any, dv: Any) -> None:
        """Grid ⌈S/32⌉ × A × B blocks of 32 threads; thread t owns key row j = 32·x + t.

        The thread's k_j and v_j sit in shared memory, rows padded to D + 1 floats so that the
        32 threads reading element d of their own rows hit 32 different banks; its dk_j and dv_j
        accumulators are in registers (2·D). The block streams the queries a tile of BQ rows at a
        time (c·q, dO, L and Δ, coalesced) and each thread recomputes P_ij = e^(s_ij - L_i) for
        its key: dv_j += P_ij·dO_i and dk_j += dS_ij·c·q_i (a padded key: dv_j only, and only
        where P_ij is not 0). No atomics: one thread per key row.

        Traffic: K, V read and dK, dV written once; Q, dO read once per 32 keys.
        """
        k_rows = cuda.shared.array((BKV, DP), dtype)
        v_rows = cuda.shared.array((BKV, DP), dtype)
        q_tile = cuda.shared.array((BQ, D), dtype)  # read by broadcast: no padding needed
        do_tile = cuda.shared.array((BQ, D), dtype)
        lse_tile = cuda.shared.array(BQ, dtype)
        delta_tile = cuda.shared.array(BQ, dtype)
        dk_acc = cuda.local.array(D, dtype)
        dv_acc = cuda.local.array(D, dtype)
        t, h, b = cuda.threadIdx.x, cuda.blockIdx.y, cuda.blockIdx.z
        j = cuda.blockIdx.x * BKV + t
        S = q.shape[2]  # noqa: N806
        uniform = zero  # P_ij of padded key j in a row whose largest score is finfo.min
        kept = False
        if j < S:
            kept = keep[b, j] != 0
            if not kept:  # 1 / (the sequence's padded keys): 1/S when every key is padded
                padded = 0
                for e in range(S):
                    if keep[b, e] == 0:
                        padded += 1
                uniform = one / T(padded)
            for d in range(D):
                k_rows[t, d] = k[b, h, j, d]
                v_rows[t, d] = v[b, h, j, d]
                dk_acc[d] = zero
                dv_acc[d] = zero
        for i0 in range(0, S, BQ):
            n_queries = BQ if S - i0 > BQ else S - i0
            for e in range(t, n_queries * D, BKV):
                r, d = e // D, e % D
                q_tile[r, d] = scale * q[b, h, i0 + r, d]
                do_tile[r, d] = dout[b, h, i0 + r, d]
            for e in range(t, n_queries, BKV):
                lse_tile[e] = lse[b, h, i0 + e]
                delta_tile[e] = delta[b, h, i0 + e]
            cuda.syncthreads()
            if j < S:
                for r in range(n_queries):
                    if kept:
                        s, dp = zero, zero
                        for d in range(D):
                            s += q_tile[r, d] * k_rows[t, d]
                            dp += do_tile[r, d] * v_rows[t, d]
                        p = math.exp(s - lse_tile[r])
                        ds = p * (dp - delta_tile[r])
                        for d in range(D):
                            dk_acc[d] += ds * q_tile[r, d]
                            dv_acc[d] += p * do_tile[r, d]
                    else:  # s_ij = finfo.min: dS_ij = 0, P_ij = e^(s_ij - L_i) ...
                        lse_r = lse_tile[r]  # ... or 1/padded where L_i lost log(padded)
                        p = uniform if lse_r == most_negative else math.exp(most_negative - lse_r)
                        if p != zero:  # 0 in every row with a larger score; NaN in a NaN row
                            for d in range(D):
                                dv_acc[d] += p * do_tile[r, d]
            cuda.syncthreads()
        if j < S:
            for d in range(D):
                dk[b, h, j, d] = dk_acc[d]
                dv[b, h, j, d] = dv_acc[d]

    return attention_backward_dkdv_kernel


# --- host wrappers ----------------------------------------------------------------------------
def _inputs(name: str, q: Any, k: Any, v: Any, mask: Any, scale: float | None,
            **more: Any) -> tuple[Any, ...]:
    """Check shapes and dtypes; (dtype, B, A, S, D, scale, device q, k, v, keep-mask)."""
    dtype = check_float(name, q=q, k=k, v=v, **more)
    if len(q.shape) != 4:
        raise ValueError(f"{name}: expected q, k, v of shape (B, A, S, D), got q {tuple(q.shape)}")
    check_shape(name, "k", k, tuple(q.shape))
    check_shape(name, "v", v, tuple(q.shape))
    B, A, S, D = q.shape  # noqa: N806
    if S == 0 or D == 0:
        raise ValueError(f"{name}: empty sequence or head in q {tuple(q.shape)}")
    arrays = []
    for what, a in (("q", q), ("k", k), ("v", v)):
        d = to_device(a, name)
        check_contiguous(name, what, d)
        arrays.append(d)
    c = 1.0 / math.sqrt(D) if scale is None else scale
    return (dtype, B, A, S, D, dtype.type(c), *arrays, key_mask(name, mask, B, S))


def _forward_launch(naive: bool, q: Any, k: Any, v: Any, mask: Any,
                    scale: float | None) -> tuple[Any, Any]:
    name = "attention_forward_naive" if naive else "attention_forward"
    dtype, B, A, S, D, c, q_d, k_d, v_d, keep = _inputs(name, q, k, v, mask, scale)  # noqa: N806
    out, lse = empty((B, A, S, D), dtype), empty((B, A, S), dtype)
    if naive:
        _forward_naive(dtype, D)[(cdiv(S, NAIVE_THREADS), A, B), NAIVE_THREADS](
            q_d, k_d, v_d, keep, c, out, lse)
    else:
        key_tile, _, _ = _tiles(D, dtype)
        _forward(dtype, D, key_tile)[(cdiv(S, QUERY_ROWS), A, B), QUERY_ROWS](
            q_d, k_d, v_d, keep, c, out, lse)
    host = is_host(q)
    return to_host(out, host), to_host(lse, host)


def _backward_launch(naive: bool, dout: Any, q: Any, k: Any, v: Any, out: Any, lse: Any,
                     mask: Any, scale: float | None) -> tuple[Any, Any, Any]:
    name = "attention_backward_naive" if naive else "attention_backward"
    dtype, B, A, S, D, c, q_d, k_d, v_d, keep = _inputs(  # noqa: N806
        name, q, k, v, mask, scale, dout=dout, out=out, lse=lse)
    check_shape(name, "dout", dout, tuple(q.shape))
    check_shape(name, "out", out, tuple(q.shape))
    check_shape(name, "lse", lse, tuple(q.shape)[:3])
    dout_d, out_d, lse_d = to_device(dout, name), to_device(out, name), to_device(lse, name)
    dq, dk, dv = (empty((B, A, S, D), dtype) for _ in range(3))
    delta = empty((B, A, S), dtype)
    if naive:
        grid = (cdiv(S, NAIVE_THREADS), A, B)
        _backward_dq_naive(dtype, D)[grid, NAIVE_THREADS](
            q_d, k_d, v_d, keep, out_d, dout_d, lse_d, c, dq, delta)
        _backward_dkdv_naive(dtype, D)[grid, NAIVE_THREADS](
            q_d, k_d, v_d, keep, dout_d, lse_d, delta, c, dk, dv)
    else:
        _, key_tile, query_tile = _tiles(D, dtype)
        _backward_dq(dtype, D, key_tile)[(cdiv(S, QUERY_ROWS), A, B), QUERY_ROWS](
            q_d, k_d, v_d, keep, out_d, dout_d, lse_d, c, dq, delta)
        _backward_dkdv(dtype, D, query_tile)[(cdiv(S, KEY_ROWS), A, B), KEY_ROWS](
            q_d, k_d, v_d, keep, dout_d, lse_d, delta, c, dk, dv)
    host = is_host(q)
    return to_host(dq, host), to_host(dk, host), to_host(dv, host)


def attention_forward(q: Any, k: Any, v: Any, mask: Any = None,
                      scale: float | None = None) -> tuple[Any, Any]:
    """(o, L): o = softmax(masked_fill(c·q·kᵀ, mask == 0, finfo.min))·v per head, and the rows'
    logsumexp L (B, A, S) that :func:`attention_backward` needs. q, k, v (B, A, S, D); mask
    (B, S) of 1 = keep / 0 = pad, or None; scale c defaults to 1/√D."""
    return _forward_launch(False, q, k, v, mask, scale)


def attention_forward_naive(q: Any, k: Any, v: Any, mask: Any = None,
                            scale: float | None = None) -> tuple[Any, Any]:
    """:func:`attention_forward` by the one-thread-per-query reference kernel."""
    return _forward_launch(True, q, k, v, mask, scale)


def attention_backward(dout: Any, q: Any, k: Any, v: Any, out: Any, lse: Any, mask: Any = None,
                       scale: float | None = None) -> tuple[Any, Any, Any]:
    """(dq, dk, dv) for the upstream gradient dout (B, A, S, D), from the forward's inputs, its
    output ``out`` and logsumexp ``lse``; the same mask and scale as the forward."""
    return _backward_launch(False, dout, q, k, v, out, lse, mask, scale)


def attention_backward_naive(dout: Any, q: Any, k: Any, v: Any, out: Any, lse: Any,
                             mask: Any = None, scale: float | None = None
                             ) -> tuple[Any, Any, Any]:
    """:func:`attention_backward` by the one-thread-per-row reference kernels."""
    return _backward_launch(True, dout, q, k, v, out, lse, mask, scale)
