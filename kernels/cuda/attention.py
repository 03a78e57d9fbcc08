"""Fused multi-head attention with torch's masks, forward and backward, after FlashAttention
(Dao et al., 2022): the (S, S) scores never leave the chip.

Math, per batch element b and head h, with q, k, v (S, D), scale c (1/√D by default) and the
masks of :class:`~minigrad.kernels.registry.AttentionMasks` (the key keep-mask keep_j, a bool
mask A_ij, a float bias F_ij, causal):

    kept_ij = keep_j ∧ A_ij ∧ (j ≤ i if causal)
    s_ij = c·q_i·k_j + F_ij  where kept_ij,  else the dtype's most negative value (masked_fill)
    m_i = max_j s_ij,   l_i = Σ_j e^(s_ij - m_i)   (the row's max and sum, both saved)
    P_ij = e^(s_ij - m_i) / l_i,   o_i = Σ_j P_ij·v_j

    backward, from dO:  Δ_i = dO_i·o_i  (= Σ_j P_ij·dP_ij),   dP_ij = dO_i·v_j,
                        dS_ij = P_ij·(dP_ij - Δ_i)  where kept_ij,  else 0,
                        dq_i = c·Σ_j dS_ij·k_j,   dk_j = c·Σ_i dS_ij·q_i,   dv_j = Σ_i P_ij·dO_i

The rule for non-finite scores is :mod:`.softmax`'s (the NumPy composite's): a masked score is
*replaced* by finfo.min, so a row whose every key is masked attends uniformly, P_ij = 1/S, as
masked_fill(finfo.min) gives in the model, and never NaN; a score of -inf (from F) gets P = 0 in
a row with a finite max, and a row whose scores are all -inf (or hold +inf or NaN) is NaN, as
the composite. The backward recomputes P_ij = e^(s_ij - m_i)/l_i from the saved m and l, exactly
the forward's numbers. (FlashAttention saves the one number L_i = m_i + log l_i instead; but
where |m_i| is huge, an all-masked row's finfo.min or a float mask's -1e30, log l_i is lost in
rounding and e^(s_ij - L_i) is 1 for every key tied at the max instead of 1/l_i.)

Shapes: q, k, v, o, dO (B, A, S, D), C-contiguous; mask (B, S); A and F (B|1, A|1, S, S), a
batch or head dim of 1 shared by all (indexed with b % size); m, l and Δ (B, A, S).

**Online softmax.** A query row's output is built as its keys stream past: with the running max
m, the running sum l = Σ e^(s - m) and the unnormalised output acc = Σ e^(s - m)·v_j, a key with
s > m first rescales l and acc by e^(m - s). At the end o = acc / l. So the scores are never
stored: each is made, used and dropped in registers. The backward recomputes P_ij from m and l,
instead of reading an (S, S) matrix. A score of -inf adds nothing to l and acc (e^-inf = 0):
computing e^(s - m) while m is still -inf would give NaN and poison a row whose first keys are
-inf. So l = 0 at the end only when every score is -inf: o = acc·(1/0) is NaN, and so is the
row's backward (e^(-inf - (-inf)) is NaN).

**Half precision.** The forward kernels also take q, k, v (and F) in float16 or bfloat16
(:mod:`.precision`): each element is converted to float32 as it is loaded (K and V tiles sit in
shared memory as float32, so the tiles are float32's size), the scores, m, l and the output
accumulator are float32, and o is rounded to q's dtype once; m and l are saved in float32. The
backward kernels take float32 and float64 only.

**Masks.** Which masks a kernel reads is fixed when it compiles (closure constants, like its
dtype): a kernel without a bool mask or a bias has no code for them, and the causal test j ≤ i
is one comparison, no array. The key keep-mask is staged in shared memory with each tile of
keys; the (S, S) masks are read from global memory (one byte, or one float, per score; L2
keeps the tile's rows). Not measured on a GPU: no GPU was lent while they were written.

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
from typing import Any, NamedTuple

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
from .precision import BY_DTYPE, Precision, array_precision, converters, precision_of

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
    tiles of n rows and their n values of m, 1/l and Δ, in 48 KB.
    """
    size = dtype.itemsize
    own_q = QUERY_ROWS * (D + 1) * size
    own_kv = 2 * KEY_ROWS * (D + 1) * size
    forward = next((n for n in TILE_CHOICES if 2 * n * D * size <= 32 * 1024), None)
    dq = next((n for n in TILE_CHOICES
               if own_q + n * (2 * D * size + KEEP.itemsize) <= SMEM_BYTES), None)
    dkdv = next((n for n in TILE_CHOICES if own_kv + n * (2 * D + 3) * size <= SMEM_BYTES), None)
    if forward is None or dq is None or dkdv is None:
        raise ValueError(f"attention: head size D={D} in {dtype} does not fit the kernels' "
                         f"{SMEM_BYTES // 1024} KB of shared memory")
    return forward, dq, dkdv


class Masks(NamedTuple):
    """Which masks a kernel compiles in (closure constants): a bool mask A, a float bias F,
    the causal triangle. The key keep-mask is always read (all ones when absent)."""

    attend: bool = False
    bias: bool = False
    causal: bool = False


@functools.cache
def _rule(prec: Precision, masks: Masks) -> tuple[Any, Any]:
    """(kept, score): device functions of the masks compiled in.

    kept(keep_j, attend, b, h, i, j): whether query i attends to key j (keep_j: key j's
    keep-mask byte); score(s, kept_ij, bias, b, h, i, j): s + F_ij where kept, else finfo.min
    (of the compute dtype; F stored in ``prec``).
    """
    most_negative = prec.compute.type(np.finfo(prec.compute).min)
    use_attend, use_bias, causal = masks
    load, _ = converters(prec)

    @cuda.jit(device=True)
    def kept(keep_j: Any, attend: Any, b: int, h: int, i: int, j: int) -> bool:
        if keep_j == 0:
            return False
        if use_attend and attend[b % attend.shape[0], h % attend.shape[1], i, j] == 0:
            return False
        return not (causal and j > i)

    @cuda.jit(device=True)
    def score(s: Any, kept_ij: bool, bias: Any, b: int, h: int, i: int, j: int) -> Any:
        if not kept_ij:
            return most_negative
        if use_bias:
            return s + load(bias[b % bias.shape[0], h % bias.shape[1], i, j])
        return s

    return kept, score


@functools.cache
def _forward_naive(prec: Precision, D: int, masks: Masks) -> Any:  # noqa: N803
    T, dtype = prec.compute.type, prec.compute  # noqa: N806
    zero, one, minus_inf = T(0), T(1), T(-np.inf)
    kept, score = _rule(prec, masks)
    load, store = converters(prec)

    @cuda.jit
    def attention_forward_naive_kernel(q: Any, k: Any, v: Any, keep: Any, attend: Any,
                                       bias: Any, scale: Any, out: Any, row_max: Any,
                                       row_sum: Any) -> None:
        """Reference. Grid ⌈S/128⌉ × A × B, one query row per thread, three passes over keys.

        Every score is recomputed from global memory in each pass (max, sum, output): reads
        3·S·D floats of K and S·D of V per query row, uncoalesced. No shared memory; the
        output row is summed in a local array of the compute dtype and stored once.
        """
        i, h, b = cuda.grid(1), cuda.blockIdx.y, cuda.blockIdx.z
        S = q.shape[2]  # noqa: N806
        if i >= S:
            return
        m = minus_inf  # m = max_j s_j: a row of -inf makes the sum 0 and o NaN
        for j in range(S):
            s = zero
            for d in range(D):
                s += load(q[b, h, i, d]) * load(k[b, h, j, d])
            s = score(scale * s, kept(keep[b, j], attend, b, h, i, j), bias, b, h, i, j)
            if s > m:
                m = s
        total = zero
        for j in range(S):
            s = zero
            for d in range(D):
                s += load(q[b, h, i, d]) * load(k[b, h, j, d])
            s = score(scale * s, kept(keep[b, j], attend, b, h, i, j), bias, b, h, i, j)
            total += math.exp(s - m)
        acc = cuda.local.array(D, dtype)  # o_i, summed in the compute dtype, stored once
        for d in range(D):
            acc[d] = zero
        for j in range(S):
            s = zero
            for d in range(D):
                s += load(q[b, h, i, d]) * load(k[b, h, j, d])
            s = score(scale * s, kept(keep[b, j], attend, b, h, i, j), bias, b, h, i, j)
            p = math.exp(s - m) * (one / total)
            for d in range(D):
                acc[d] += p * load(v[b, h, j, d])
        for d in range(D):
            out[b, h, i, d] = store(acc[d])
        row_max[b, h, i] = m
        row_sum[b, h, i] = total

    return attention_forward_naive_kernel


@functools.cache
def _forward(prec: Precision, D: int, BK: int, masks: Masks) -> Any:  # noqa: N803
    T, dtype = prec.compute.type, prec.compute  # noqa: N806
    zero, one, minus_inf = T(0), T(1), T(-np.inf)
    BQ = QUERY_ROWS  # noqa: N806
    kept, score = _rule(prec, masks)
    load, store = converters(prec)

    @cuda.jit
    def attention_forward_kernel(q: Any, k: Any, v: Any, keep: Any, attend: Any, bias: Any,
                                 scale: Any, out: Any, row_max: Any, row_sum: Any) -> None:
        """Grid ⌈S/64⌉ × A × B blocks of 64 threads; thread t owns query row i = 64·x + t.

        The thread keeps c·q_i (D registers), its output accumulator (D), m and l. The block
        walks the keys a tile of BK rows at a time: the 64 threads copy the tile of K and V
        (BK×D each, coalesced) and its keep-mask into shared memory, then each thread streams
        the BK keys through the online softmax; every thread reads the same k_j, v_j (a
        broadcast).

        Traffic: Q read once, O, m and l written once; K and V read once per block of 64
        queries: (2 + 2·S/64)·S·D floats per head, against the 2·S² of a materialised score
        matrix (plus S² bytes or floats of A or F when given). Flops: 4·S²·D per head.
        Optimizes: no S×S matrix in memory, one pass over the keys.
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
                q_row[d] = scale * load(q[b, h, i, d])
                acc[d] = zero
        m, l = minus_inf, zero  # noqa: E741 (FlashAttention's name for the running sum)
        for j0 in range(0, S, BK):
            n_keys = BK if S - j0 > BK else S - j0
            for e in range(t, n_keys * D, BQ):  # the tile is n_keys·D consecutive floats
                r, d = e // D, e % D
                k_tile[r, d] = load(k[b, h, j0 + r, d])
                v_tile[r, d] = load(v[b, h, j0 + r, d])
            for e in range(t, n_keys, BQ):
                keep_tile[e] = 1 if keep[b, j0 + e] != 0 else 0
            cuda.syncthreads()
            if i < S:
                for j in range(n_keys):
                    s = zero
                    for d in range(D):
                        s += q_row[d] * k_tile[j, d]
                    s = score(s, kept(keep_tile[j], attend, b, h, i, j0 + j), bias, b, h, i,
                              j0 + j)
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
                out[b, h, i, d] = store(acc[d] * inv)
            row_max[b, h, i] = m
            row_sum[b, h, i] = l

    return attention_forward_kernel


@functools.cache
def _backward_dq_naive(dtype: np.dtype, D: int, masks: Masks) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one = T(0), T(1)
    kept, score = _rule(BY_DTYPE[dtype], masks)

    @cuda.jit
    def attention_backward_dq_naive_kernel(q: Any, k: Any, v: Any, keep: Any, attend: Any,
                                           bias: Any, out: Any, dout: Any, row_max: Any,
                                           row_sum: Any, scale: Any, dq: Any,
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
        m_i, inv_l = row_max[b, h, i], one / row_sum[b, h, i]
        for j in range(S):
            if kept(keep[b, j], attend, b, h, i, j):  # a masked score has dS = 0
                s, dp = zero, zero
                for d in range(D):
                    s += q[b, h, i, d] * k[b, h, j, d]
                    dp += dout[b, h, i, d] * v[b, h, j, d]
                s = score(scale * s, True, bias, b, h, i, j)
                ds = math.exp(s - m_i) * inv_l * (dp - delta_i)
                for d in range(D):
                    dq[b, h, i, d] += scale * ds * k[b, h, j, d]

    return attention_backward_dq_naive_kernel


@functools.cache
def _backward_dkdv_naive(dtype: np.dtype, D: int, masks: Masks) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)
    kept, score = _rule(BY_DTYPE[dtype], masks)

    @cuda.jit
    def attention_backward_dkdv_naive_kernel(q: Any, k: Any, v: Any, keep: Any, attend: Any,
                                             bias: Any, dout: Any, row_max: Any, row_sum: Any,
                                             delta: Any, scale: Any, dk: Any, dv: Any) -> None:
        """Reference. Grid ⌈S/128⌉ × A × B, one key row j per thread, looping over queries."""
        j, h, b = cuda.grid(1), cuda.blockIdx.y, cuda.blockIdx.z
        S = q.shape[2]  # noqa: N806
        if j >= S:
            return
        for d in range(D):
            dk[b, h, j, d] = zero
            dv[b, h, j, d] = zero
        for i in range(S):
            m_i, inv_l = row_max[b, h, i], one / row_sum[b, h, i]
            if kept(keep[b, j], attend, b, h, i, j):
                s, dp = zero, zero
                for d in range(D):
                    s += q[b, h, i, d] * k[b, h, j, d]
                    dp += dout[b, h, i, d] * v[b, h, j, d]
                p = math.exp(score(scale * s, True, bias, b, h, i, j) - m_i) * inv_l
                ds = p * (dp - delta[b, h, i])
                for d in range(D):
                    dk[b, h, j, d] += scale * ds * q[b, h, i, d]
                    dv[b, h, j, d] += p * dout[b, h, i, d]
            else:  # s_ij = finfo.min: dS_ij = 0, and P_ij = 1/l_i where m_i is finfo.min too
                p = math.exp(most_negative - m_i) * inv_l
                for d in range(D):
                    dv[b, h, j, d] += p * dout[b, h, i, d]

    return attention_backward_dkdv_naive_kernel


@functools.cache
def _backward_dq(dtype: np.dtype, D: int, BK: int, masks: Masks) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one = T(0), T(1)
    BQ, DP = QUERY_ROWS, D + 1  # noqa: N806
    kept, score = _rule(BY_DTYPE[dtype], masks)

    @cuda.jit
    def attention_backward_dq_kernel(q: Any, k: Any, v: Any, keep: Any, attend: Any, bias: Any,
                                     out: Any, dout: Any, row_max: Any, row_sum: Any,
                                     scale: Any, dq: Any, delta: Any) -> None:
        """Grid ⌈S/64⌉ × A × B blocks of 64 threads; thread t owns query row i, like the forward.

        The thread computes Δ_i = dO_i·o_i (and saves it for the dk/dv kernel), keeps dO_i and
        its dq_i accumulator in registers (2·D) and c·q_i in shared memory (rows padded to D + 1
        floats, so that the 32 threads of a warp reading element d of their own rows hit 32
        different banks: three rows of registers would spill), and streams tiles of K, V and the
        keep-mask through shared memory: per kept key, P_ij = e^(s_ij - m_i)/l_i,
        dP_ij = dO_i·v_j, and dq_i += dS_ij·k_j. Traffic: as the forward, plus dO read and dq,
        Δ written once.
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
        delta_i, m_i, inv_l = zero, zero, zero
        if i < S:
            for d in range(D):
                q_rows[t, d] = scale * q[b, h, i, d]
                do_row[d] = dout[b, h, i, d]
                delta_i += do_row[d] * out[b, h, i, d]
                acc[d] = zero
            delta[b, h, i] = delta_i
            m_i, inv_l = row_max[b, h, i], one / row_sum[b, h, i]
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
                    if kept(keep_tile[j], attend, b, h, i, j0 + j):  # a masked key: dS = 0
                        s, dp = zero, zero
                        for d in range(D):
                            s += q_rows[t, d] * k_tile[j, d]
                            dp += do_row[d] * v_tile[j, d]
                        s = score(s, True, bias, b, h, i, j0 + j)
                        ds = math.exp(s - m_i) * inv_l * (dp - delta_i)
                        for d in range(D):
                            acc[d] += ds * k_tile[j, d]
            cuda.syncthreads()
        if i < S:
            for d in range(D):
                dq[b, h, i, d] = scale * acc[d]

    return attention_backward_dq_kernel


@functools.cache
def _backward_dkdv(dtype: np.dtype, D: int, BQ: int, masks: Masks) -> Any:  # noqa: N803
    T = dtype.type  # noqa: N806
    zero, one, most_negative = T(0), T(1), T(np.finfo(dtype).min)
    BKV, DP = KEY_ROWS, D + 1  # noqa: N806
    kept, score = _rule(BY_DTYPE[dtype], masks)

    @cuda.jit
    def attention_backward_dkdv_kernel(q: Any, k: Any, v: Any, keep: Any, attend: Any,
                                       bias: Any, dout: Any, row_max: Any, row_sum: Any,
                                       delta: Any, scale: Any, dk: Any, dv: Any) -> None:
        """Grid ⌈S/32⌉ × A × B blocks of 32 threads; thread t owns key row j = 32·x + t.

        The thread's k_j and v_j sit in shared memory, rows padded to D + 1 floats so that the
        32 threads reading element d of their own rows hit 32 different banks; its dk_j and dv_j
        accumulators are in registers (2·D). The block streams the queries a tile of BQ rows at a
        time (c·q, dO, m, 1/l and Δ, coalesced) and each thread recomputes
        P_ij = e^(s_ij - m_i)/l_i for its key: dv_j += P_ij·dO_i and dk_j += dS_ij·c·q_i (a
        masked score: dv_j only, and only where P_ij is not 0). No atomics: one thread per key.

        Traffic: K, V read and dK, dV written once; Q, dO read once per 32 keys.
        """
        k_rows = cuda.shared.array((BKV, DP), dtype)
        v_rows = cuda.shared.array((BKV, DP), dtype)
        q_tile = cuda.shared.array((BQ, D), dtype)  # read by broadcast: no padding needed
        do_tile = cuda.shared.array((BQ, D), dtype)
        max_tile = cuda.shared.array(BQ, dtype)
        inv_sum_tile = cuda.shared.array(BQ, dtype)
        delta_tile = cuda.shared.array(BQ, dtype)
        dk_acc = cuda.local.array(D, dtype)
        dv_acc = cuda.local.array(D, dtype)
        t, h, b = cuda.threadIdx.x, cuda.blockIdx.y, cuda.blockIdx.z
        j = cuda.blockIdx.x * BKV + t
        S = q.shape[2]  # noqa: N806
        keep_j = 0
        if j < S:
            keep_j = keep[b, j]
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
                max_tile[e] = row_max[b, h, i0 + e]
                inv_sum_tile[e] = one / row_sum[b, h, i0 + e]
                delta_tile[e] = delta[b, h, i0 + e]
            cuda.syncthreads()
            if j < S:
                for r in range(n_queries):
                    if kept(keep_j, attend, b, h, i0 + r, j):
                        s, dp = zero, zero
                        for d in range(D):
                            s += q_tile[r, d] * k_rows[t, d]
                            dp += do_tile[r, d] * v_rows[t, d]
                        s = score(s, True, bias, b, h, i0 + r, j)
                        p = math.exp(s - max_tile[r]) * inv_sum_tile[r]
                        ds = p * (dp - delta_tile[r])
                        for d in range(D):
                            dk_acc[d] += ds * q_tile[r, d]
                            dv_acc[d] += p * do_tile[r, d]
                    else:  # s_ij = finfo.min: dS_ij = 0, P_ij = e^(s_ij - m_i)/l_i
                        p = math.exp(most_negative - max_tile[r]) * inv_sum_tile[r]
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
@functools.lru_cache(maxsize=4)
def _placeholder(dtype: np.dtype) -> Any:
    """A (1, 1, 1, 1) device array for an absent bool mask or bias (its kernel never reads it)."""
    return cuda.to_device(np.zeros((1, 1, 1, 1), dtype))


def _block_mask(name: str, what: str, x: Any, shape: tuple[int, ...], prec: Precision | None,
                bf16_bits: bool = False) -> Any:
    """attn_mask (as bytes; ``prec`` None) or attn_bias (of precision ``prec``) on the device,
    checked to be (B|1, A|1, S, S)."""
    if x is None:
        return _placeholder(np.dtype(np.uint8) if prec is None else prec.storage)
    B, A, S = shape[:3]  # noqa: N806
    found = tuple(x.shape)
    if len(found) != 4 or found[0] not in (1, B) or found[1] not in (1, A) or found[2:] != (S, S):
        raise ValueError(f"{name}: {what} has shape {found}, expected (B|1, A|1, S, S) with "
                         f"(B, A, S) = {(B, A, S)}")
    if prec is None:  # a bool mask: NumPy's is copied as bytes, a device one viewed as is
        return cuda.to_device((np.asarray(x) != 0).astype(np.uint8)) if is_host(x) \
            else to_device(x, name)
    if array_precision(x, bf16_bits) != prec:
        raise TypeError(f"{name}: {what} has dtype {np.dtype(x.dtype)}, expected {prec.name}")
    device = to_device(x, name)
    check_contiguous(name, what, device)
    return device


def _inputs(name: str, prec: Precision, q: Any, k: Any, v: Any, mask: Any,
            scale: float | None, attn_mask: Any, attn_bias: Any, bf16_bits: bool = False
            ) -> tuple[Any, ...]:
    """Check shapes (``prec``: the dtypes' precision, checked); (B, A, S, D, scale, device
    q, k, v, keep-mask, bool mask, bias)."""
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
    attend = _block_mask(name, "attn_mask", attn_mask, tuple(q.shape), None)
    bias = _block_mask(name, "attn_bias", attn_bias, tuple(q.shape), prec, bf16_bits)
    return (B, A, S, D, prec.compute.type(c), *arrays, key_mask(name, mask, B, S), attend, bias)


def _forward_launch(naive: bool, q: Any, k: Any, v: Any, mask: Any, scale: float | None,
                    attn_mask: Any, attn_bias: Any, is_causal: bool, bf16_bits: bool
                    ) -> tuple[Any, Any, Any]:
    name = "attention_forward_naive" if naive else "attention_forward"
    prec = precision_of(name, bf16_bits, q=q, k=k, v=v)
    B, A, S, D, c, q_d, k_d, v_d, keep, attend, bias = _inputs(  # noqa: N806
        name, prec, q, k, v, mask, scale, attn_mask, attn_bias, bf16_bits)
    masks = Masks(attn_mask is not None, attn_bias is not None, bool(is_causal))
    stats = prec.compute  # the rows' max and sum: float32 for the half precisions
    out, row_max, row_sum = empty((B, A, S, D), prec.storage), empty((B, A, S), stats), \
        empty((B, A, S), stats)
    if naive:
        _forward_naive(prec, D, masks)[(cdiv(S, NAIVE_THREADS), A, B), NAIVE_THREADS](
            q_d, k_d, v_d, keep, attend, bias, c, out, row_max, row_sum)
    else:
        key_tile, _, _ = _tiles(D, stats)
        _forward(prec, D, key_tile, masks)[(cdiv(S, QUERY_ROWS), A, B), QUERY_ROWS](
            q_d, k_d, v_d, keep, attend, bias, c, out, row_max, row_sum)
    host = is_host(q)
    return to_host(out, host, like=q), to_host(row_max, host), to_host(row_sum, host)


def _backward_launch(naive: bool, dout: Any, q: Any, k: Any, v: Any, out: Any, row_max: Any,
                     row_sum: Any, mask: Any, scale: float | None, attn_mask: Any,
                     attn_bias: Any, is_causal: bool) -> tuple[Any, Any, Any]:
    name = "attention_backward_naive" if naive else "attention_backward"
    half = [what for what, a in (("q", q), ("k", k), ("v", v), ("dout", dout), ("out", out))
            if np.dtype(a.dtype) == np.float16 or np.dtype(a.dtype).name == "bfloat16"]
    if half:
        raise TypeError(f"{name}: {', '.join(half)} in half precision: the backward kernels run "
                        f"in float32 or float64 only; cast q, k, v, out and dout to float32 "
                        f"(the engine's attention does)")
    dtype = check_float(name, q=q, k=k, v=v, dout=dout, out=out, row_max=row_max,
                        row_sum=row_sum)
    B, A, S, D, c, q_d, k_d, v_d, keep, attend, bias = _inputs(  # noqa: N806
        name, BY_DTYPE[dtype], q, k, v, mask, scale, attn_mask, attn_bias)
    masks = Masks(attn_mask is not None, attn_bias is not None, bool(is_causal))
    check_shape(name, "dout", dout, tuple(q.shape))
    check_shape(name, "out", out, tuple(q.shape))
    check_shape(name, "row_max", row_max, tuple(q.shape)[:3])
    check_shape(name, "row_sum", row_sum, tuple(q.shape)[:3])
    dout_d, out_d = to_device(dout, name), to_device(out, name)
    max_d, sum_d = to_device(row_max, name), to_device(row_sum, name)
    dq, dk, dv = (empty((B, A, S, D), dtype) for _ in range(3))
    delta = empty((B, A, S), dtype)
    if naive:
        grid = (cdiv(S, NAIVE_THREADS), A, B)
        _backward_dq_naive(dtype, D, masks)[grid, NAIVE_THREADS](
            q_d, k_d, v_d, keep, attend, bias, out_d, dout_d, max_d, sum_d, c, dq, delta)
        _backward_dkdv_naive(dtype, D, masks)[grid, NAIVE_THREADS](
            q_d, k_d, v_d, keep, attend, bias, dout_d, max_d, sum_d, delta, c, dk, dv)
    else:
        _, key_tile, query_tile = _tiles(D, dtype)
        _backward_dq(dtype, D, key_tile, masks)[(cdiv(S, QUERY_ROWS), A, B), QUERY_ROWS](
            q_d, k_d, v_d, keep, attend, bias, out_d, dout_d, max_d, sum_d, c, dq, delta)
        _backward_dkdv(dtype, D, query_tile, masks)[(cdiv(S, KEY_ROWS), A, B), KEY_ROWS](
            q_d, k_d, v_d, keep, attend, bias, dout_d, max_d, sum_d, delta, c, dk, dv)
    host = is_host(q)
    return to_host(dq, host), to_host(dk, host), to_host(dv, host)


def attention_forward(q: Any, k: Any, v: Any, mask: Any = None, scale: float | None = None,
                      attn_mask: Any = None, attn_bias: Any = None, is_causal: bool = False,
                      bf16_bits: bool = False) -> tuple[Any, Any, Any]:
    """(o, m, l): o = softmax(where(kept, c·q·kᵀ + F, finfo.min))·v per head, and the rows'
    max m and sum l (B, A, S) that :func:`attention_backward` needs. q, k, v (B, A, S, D); mask
    (B, S) of 1 = keep / 0 = pad, or None; attn_mask (bool or bytes, 1 = attend) and attn_bias
    F (q's dtype) (B|1, A|1, S, S), or None; ``is_causal``: query i attends to keys j ≤ i;
    scale c defaults to 1/√D.

    q, k, v (and F) are float64, float32, float16 or bfloat16 (an ``ml_dtypes`` NumPy array,
    or uint16 bit patterns with ``bf16_bits=True``: :mod:`.precision`). The half precisions are
    computed in float32 (scores, max, sum and the output's sum) and o is stored in q's dtype;
    m and l stay float32, and a masked score is float32's finfo.min. The backward takes
    float32 or float64 only: cast the half arrays up for it."""
    return _forward_launch(False, q, k, v, mask, scale, attn_mask, attn_bias, is_causal,
                           bf16_bits)


def attention_forward_naive(q: Any, k: Any, v: Any, mask: Any = None,
                            scale: float | None = None, attn_mask: Any = None,
                            attn_bias: Any = None, is_causal: bool = False,
                            bf16_bits: bool = False) -> tuple[Any, Any, Any]:
    """:func:`attention_forward` by the one-thread-per-query reference kernel."""
    return _forward_launch(True, q, k, v, mask, scale, attn_mask, attn_bias, is_causal,
                           bf16_bits)


def attention_backward(dout: Any, q: Any, k: Any, v: Any, out: Any, row_max: Any, row_sum: Any,
                       mask: Any = None, scale: float | None = None, attn_mask: Any = None,
                       attn_bias: Any = None, is_causal: bool = False
                       ) -> tuple[Any, Any, Any]:
    """(dq, dk, dv) for the upstream gradient dout (B, A, S, D), from the forward's inputs, its
    output ``out`` and row statistics ``row_max``, ``row_sum``; the forward's masks and scale."""
    return _backward_launch(False, dout, q, k, v, out, row_max, row_sum, mask, scale,
                            attn_mask, attn_bias, is_causal)


def attention_backward_naive(dout: Any, q: Any, k: Any, v: Any, out: Any, row_max: Any,
                             row_sum: Any, mask: Any = None, scale: float | None = None,
                             attn_mask: Any = None, attn_bias: Any = None,
                             is_causal: bool = False) -> tuple[Any, Any, Any]:
    """:func:`attention_backward` by the one-thread-per-row reference kernels."""
    return _backward_launch(True, dout, q, k, v, out, row_max, row_sum, mask, scale, attn_mask,
                            attn_bias, is_causal)
