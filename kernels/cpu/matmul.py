"""An educational matrix multiply, C = A·B, in four numbered versions, naive to packed.

Shapes: a (M, K), b (K, N) → c (M, N), C-contiguous, float32 (float64 works too). It is not the
default anywhere: OpenBLAS (``np.matmul``) is faster. It shows what OpenBLAS does, and how far
Numba gets with each idea (``benchmarks/kernels_cpu.py`` measures every version).

Each version changes one thing:

* v0 :func:`matmul_v0_naive`: c[i, j] = Σ_p a[i, p]·b[p, j], one dot product per element. The
  inner loop walks down a column of B (a stride of N floats: a new cache line every step) and
  is a reduction, which LLVM may not reorder without fastmath: one add at a time.
* v1 :func:`matmul_v1_loop_order`: loops i, p, j. The inner loop is now c[i, :] += a[i, p]·b[p, :],
  along rows: contiguous, independent, so it vectorizes (8 float32 per AVX2 instruction). Rows
  of C are split across the threads.
* v2 :func:`matmul_v2_blocked`: cache blocking. A tile of B, KC rows × NB columns (64 KiB,
  well inside the 512 KiB L2), is used for a block of MB rows of A before moving on, so B is
  read from memory once per block of rows instead of once per row. Each MB × NB block of C is a
  parallel task: no two threads write the same element.
* v3 :func:`matmul_v3_packed`: packing and register tiling. The B tile is first copied into a
  contiguous buffer (its rows are N floats apart in B: packing removes the stride, the TLB
  misses and the cache-set conflicts of power-of-two N). Then each pass of the inner loop works
  on 2 rows of C and 4 rows of B at once: c[i, j] += (a[i,p]·b[p,j] + a[i,p+1]·b[p+1,j]) +
  (a[i,p+2]·b[p+2,j] + a[i,p+3]·b[p+3,j]), for i and i+1. Each load and store of C now serves 4
  multiply-adds instead of 1, and each load of B serves 2 rows: the loop becomes bound by the
  floating-point units instead of by loads and stores. (Summing 4 products before adding them
  to C is an order we chose and wrote down, so fastmath=False allows it.)

What is still missing next to OpenBLAS (about 90% of peak here): hand-written assembly that
keeps a whole 6×16 tile of C in the 16 vector registers for the full depth KC (Numba cannot
be told that C does not alias A or B, so C must go back to L1 every 4 steps), fused
multiply-add instructions (they need fastmath's contraction), and prefetching.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .common import check_float, jit, jit_parallel

# Tile sizes, tried on this machine (AMD EPYC, 32 KiB L1d and 512 KiB L2 per core): a tile of
# 64 × 256 float32 is 64 KiB in L2; the inner loop's 4 rows of it (4 KiB) and 2 rows of C
# (2 KiB) sit in L1, and 256 columns make the vectorized j loop long enough (32 vectors) to pay
# for its setup. 128 × 64, 64 × 128, 32 × 256 and 32 × 512 measured within noise of it.
KC = 64  # rows of a B tile (the depth summed per pass over C)
NB = 256  # columns of a B tile
MB = 128  # rows of A (and C) per parallel task: an n = 256 product still makes 2 tasks


def matmul_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference: NumPy's matmul (OpenBLAS sgemm/dgemm)."""
    return a @ b


@jit
def matmul_v0_naive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """v0: one dot product per element of C, in i, j, p order."""
    M, K = a.shape  # noqa: N806
    N = b.shape[1]  # noqa: N806
    c = np.zeros((M, N), dtype=a.dtype)
    for i in range(M):
        for j in range(N):
            acc = a.dtype.type(0)
            for p in range(K):
                acc += a[i, p] * b[p, j]
            c[i, j] = acc
    return c


@jit_parallel
def matmul_v1_loop_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """v1: i, p, j order: the inner loop runs along rows of B and C and vectorizes."""
    M, K = a.shape  # noqa: N806
    N = b.shape[1]  # noqa: N806
    c = np.zeros((M, N), dtype=a.dtype)
    for i in prange(M):
        ci = c[i]
        for p in range(K):
            aip = a[i, p]
            bp = b[p]
            for j in range(N):
                ci[j] += aip * bp[j]
    return c


@jit_parallel
def matmul_v2_blocked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """v2: v1 on KC × NB tiles of B, each reused by a block of MB rows of A while it is cached."""
    M, K = a.shape  # noqa: N806
    N = b.shape[1]  # noqa: N806
    c = np.zeros((M, N), dtype=a.dtype)
    col_tiles = (N + NB - 1) // NB
    for task in prange(((M + MB - 1) // MB) * col_tiles):  # an MB × NB block of C per task
        i0, j0 = (task // col_tiles) * MB, (task % col_tiles) * NB
        i1, j1 = min(M, i0 + MB), min(N, j0 + NB)
        for p0 in range(0, K, KC):
            for i in range(i0, i1):
                ci = c[i, j0:j1]  # row views indexed from 0, so the j loop vectorizes
                for p in range(p0, min(K, p0 + KC)):
                    aip = a[i, p]
                    bp = b[p, j0:j1]
                    for j in range(j1 - j0):
                        ci[j] += aip * bp[j]
    return c


@jit
def _pack_tile(b: np.ndarray, p0: int, p1: int, j0: int, j1: int, tile: np.ndarray) -> None:
    """tile[:p1-p0, :j1-j0] = b[p0:p1, j0:j1]: the strided tile of B made contiguous."""
    for p in range(p1 - p0):
        src, dst = b[p0 + p, j0:j1], tile[p]
        for j in range(j1 - j0):
            dst[j] = src[j]


@jit
def _tile_2x4(a: np.ndarray, tile: np.ndarray, c: np.ndarray, p0: int, kc: int, j0: int,
              nb: int) -> None:
    """c[:, j0:j0+nb] += a[:, p0:p0+kc] · tile[:kc, :nb], 2 rows of C × 4 rows of B per pass."""
    M = a.shape[0]  # noqa: N806
    k4 = kc - kc % 4
    for i in range(0, M - M % 2, 2):
        c0, c1 = c[i, j0:j0 + nb], c[i + 1, j0:j0 + nb]
        a0, a1 = a[i, p0:p0 + kc], a[i + 1, p0:p0 + kc]
        for p in range(0, k4, 4):
            b0, b1, b2, b3 = tile[p], tile[p + 1], tile[p + 2], tile[p + 3]
            x0, x1, x2, x3 = a0[p], a0[p + 1], a0[p + 2], a0[p + 3]
            y0, y1, y2, y3 = a1[p], a1[p + 1], a1[p + 2], a1[p + 3]
            for j in range(nb):  # vectorized: 8 columns per instruction
                c0[j] += (x0 * b0[j] + x1 * b1[j]) + (x2 * b2[j] + x3 * b3[j])
                c1[j] += (y0 * b0[j] + y1 * b1[j]) + (y2 * b2[j] + y3 * b3[j])
        for p in range(k4, kc):  # the last kc % 4 rows of the tile
            bp = tile[p]
            for j in range(nb):
                c0[j] += a0[p] * bp[j]
                c1[j] += a1[p] * bp[j]
    if M % 2:  # the last row, one multiply-add at a time
        cm, am = c[M - 1, j0:j0 + nb], a[M - 1, p0:p0 + kc]
        for p in range(kc):
            bp = tile[p]
            for j in range(nb):
                cm[j] += am[p] * bp[j]


@jit_parallel
def matmul_v3_packed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """v3: v2 with each B tile packed contiguous and a 2 × 4 register tile in the inner loop."""
    M, K = a.shape  # noqa: N806
    N = b.shape[1]  # noqa: N806
    c = np.zeros((M, N), dtype=a.dtype)
    col_tiles = (N + NB - 1) // NB
    for task in prange(((M + MB - 1) // MB) * col_tiles):
        i0, j0 = (task // col_tiles) * MB, (task % col_tiles) * NB
        i1, j1 = min(M, i0 + MB), min(N, j0 + NB)
        tile = np.empty((KC, NB), dtype=a.dtype)  # (KC, NB), one per task
        for p0 in range(0, K, KC):
            p1 = min(K, p0 + KC)
            _pack_tile(b, p0, p1, j0, j1, tile)
            _tile_2x4(a[i0:i1], tile, c[i0:i1], p0, p1 - p0, j0, j1 - j0)
    return c


VERSIONS = {
    "v0_naive": matmul_v0_naive,
    "v1_loop_order": matmul_v1_loop_order,
    "v2_blocked": matmul_v2_blocked,
    "v3_packed": matmul_v3_packed,
}


def matmul(a: np.ndarray, b: np.ndarray, version: str = "v3_packed") -> np.ndarray:
    """C = A·B with one of :data:`VERSIONS` (a (M, K), b (K, N), one float dtype)."""
    check_float("matmul", a=a, b=b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected a (M, K) and b (K, N), got a {a.shape} and "
                         f"b {b.shape}")
    if version not in VERSIONS:
        raise ValueError(f"matmul: unknown version {version!r}, expected one of "
                         f"{', '.join(VERSIONS)}")
    return VERSIONS[version](np.ascontiguousarray(a), np.ascontiguousarray(b))
