"""The integer matrix multiply of int8 inference: C = A·B, int8 × int8 → int32, exactly.

Shapes: a (M, K) int8, b (K, N) int8 → c (M, N) int32 with c[i, j] = Σ_p a[i, p]·b[p, j].
A dynamically quantised linear layer (:mod:`minigrad.compress.quantize`) calls it with the
quantised activations as ``a`` and the transposed int8 weight ``Wᵀ`` as ``b``; the float result
is then ``c`` times the two scales.

**Why int32 cannot overflow.** A product of two int8 lies in [−128·127, (−128)·(−128)] =
[−16,256, 16,384], so any sum of K of them, every partial sum included, has magnitude at most
K·2¹⁴. int32 holds up to 2³¹ − 1 = 2,147,483,647, so every K ≤ :data:`MAX_K` = 2¹⁷ − 1 =
131,071 is safe (131,071·16,384 = 2,147,467,264), and K = 2¹⁷ is not: with every product
(−128)·(−128) its sum is 2³¹, one past the maximum. :func:`int8_matmul` refuses a larger K.
Quantised weights are symmetric, in [−127, 127], so a linear layer's products are at most
127·128 in magnitude and its sums at most K·127·128: MiniLM's widest layer, K = 1536, reaches
24,969,216, 86 times below the limit.

The accumulator is int32 in the source too: Numba types an int32 product as int64, so each
step is cut back with ``np.int32(...)``, which by the bound above never changes a value.

**How it is fast.** The kernel takes the dot-product form, c[i, j] = row i of A · row j of Bᵀ,
both contiguous along p. Integer addition is associative (no rounding, and no overflow by the
bound above), so unlike the float kernels (:mod:`.common`: a float sum may not be reordered
without fastmath) LLVM may split the reduction over p into vector lanes: it sign-extends 16
int8 of each row to int16 (``vpmovsxbw``) and multiplies and sums adjacent pairs into 8 int32
lanes (``vpmaddwd``, on 256-bit registers: LLVM's choice for this CPU). The result is exact
whatever the order. The loops run over blocks of :data:`MB` rows of A by :data:`NB` rows of
Bᵀ, one block of C per parallel task: the NB rows of Bᵀ (24 KiB for K = 384) stay in L1 while
the MB rows of A pass them.

Bᵀ is free when ``b`` is the transpose of a C-contiguous weight W (out, in), as in a linear
layer: ``b.T`` is then W itself, and ``np.ascontiguousarray`` copies nothing.

What this does not do, next to a production int8 GEMM (fbgemm, oneDNN), and why it is no
faster than float32 here: on this CPU (AMD EPYC, 2 cores) it runs at about the speed of
OpenBLAS's float32 sgemm for MiniLM's shapes (each pair of products needs its operands loaded
and sign-extended: no tile of C is kept in registers), while torch's fbgemm int8 GEMM ran 6 to 13
times faster than both (runs on a shared, busy machine). fbgemm uses the AVX-512 VNNI instruction
``vpdpbusd`` (4 unsigned×signed int8 products summed into each int32 lane: 4 times
``vpmaddwd``'s work per instruction, which needs one operand unsigned and which LLVM does not
derive from this loop) and keeps a tile of C in registers (see :mod:`.matmul`, v3).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .common import jit_parallel

INT8 = np.dtype(np.int8)

# The largest depth K whose sums cannot overflow int32 (see the module docstring).
MAX_K = (2**31 - 1) // (128 * 128)  # 131071 = 2**17 - 1

MB = 64  # rows of A per parallel task
NB = 64  # rows of Bᵀ (columns of C) per task: 64·K bytes, in L1 for K up to 768


def int8_matmul_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference: NumPy's integer matmul in int64 (no overflow for any K below 2⁴⁹),
    cast to int32 (exact for K ≤ MAX_K)."""
    return (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)


@jit_parallel
def _int8_matmul_dot(a: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """c[i, j] = Σ_p a[i, p]·bt[j, p] in int32, a block of MB × NB outputs per task."""
    M, K = a.shape  # noqa: N806
    N = bt.shape[0]  # noqa: N806
    c = np.empty((M, N), dtype=np.int32)
    col_blocks = (N + NB - 1) // NB
    for task in prange(((M + MB - 1) // MB) * col_blocks):
        i0, j0 = (task // col_blocks) * MB, (task % col_blocks) * NB
        i1, j1 = min(M, i0 + MB), min(N, j0 + NB)
        for i in range(i0, i1):
            ai = a[i]  # (K,)
            for j in range(j0, j1):
                bj = bt[j]  # (K,)
                acc = np.int32(0)
                for p in range(K):  # vectorized: sign-extend to int16, vpmaddwd into int32
                    acc = np.int32(acc + np.int32(ai[p]) * np.int32(bj[p]))
                c[i, j] = acc
    return c


def int8_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A·B exactly: a (M, K) int8, b (K, N) int8 → (M, N) int32, for K ≤ :data:`MAX_K`."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != INT8 or b.dtype != INT8:
        raise TypeError(f"int8_matmul: expected int8 arrays, got a {a.dtype} and b {b.dtype}")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"int8_matmul: expected a (M, K) and b (K, N), got a {a.shape} and "
                         f"b {b.shape}")
    if a.shape[1] > MAX_K:
        raise ValueError(f"int8_matmul: K = {a.shape[1]} could overflow the int32 sums: "
                         f"K·128·128 must stay below 2**31, so K ≤ {MAX_K}")
    return _int8_matmul_dot(np.ascontiguousarray(a), np.ascontiguousarray(b.T))
