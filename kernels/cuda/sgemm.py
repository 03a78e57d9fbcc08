"""C = A·B on the GPU, five versions from naive to register-tiled, after Simon Boehm's
"How to optimize a CUDA matmul kernel" and llm.c's numbered kernels.

A (M, K), B (K, N), C (M, N), row-major. C_ij = Σ_k A_ik·B_kj: 2·M·N·K flops. Every version
handles any M, N, K (ragged edges): a tile that hangs over an edge loads zeros and stores
nothing past it. The same code compiles for float64 (a DGEMM), which the tests use for tight
checks; "SGEMM" is the float32 case that is benchmarked.

Each version says what it changes:

* **v1, naive**: one thread per C element, K multiply-adds from global memory (L1/L2).
  2·K loads per 2·K flops: an arithmetic intensity of 0.25 flop/byte, far below the ~20 that a
  GPU needs to be compute-bound. This is the reference the others are tested against.
* **v2, shared-memory tiling**: a 16×16 block stages 16×16 tiles of A and B in shared memory and
  each element loaded from global memory is used 16 times: global traffic ÷16. Each thread still
  makes two shared-memory loads per multiply-add, so shared-memory bandwidth now limits it.
* **v3, 1-D register tiling**: each thread computes TM = 8 elements of a column of C; one value
  of B, held in a register, serves 8 multiply-adds: shared loads per FMA from 2 to 1.125.
* **v4, 2-D register tiling**: each thread computes an 8×8 patch of C from 8 values of A and 8 of
  B held in registers: 16 shared loads per 64 FMAs (0.25 per FMA). A's tile is stored transposed
  in shared memory, so the 8 values a thread needs for one k are a contiguous column; each
  thread's 8 rows and 8 columns are spread with a stride of 16, so the 16 threads that share a
  row of a warp read 16 consecutive words (no bank conflicts) and store 16 consecutive floats.
* **v5, v4 made cheap to issue**: the same tiles, but v4 spent most of its instructions on
  indices, not on FMAs. Per 8-wide slice of K, a warp of v4 executes 512 FMAs among about 1,560
  instructions (Nsight Compute, H100): Numba tests every signed index for a negative value
  (Python's wrap-around), divides signed integers with sign corrections, and recomputes the 2-D
  shared addresses in 64-bit arithmetic; 202 registers let only one block of 256 threads on an
  SM, and the next slice's global loads wait behind a ``syncthreads``. v5 makes every index an
  unsigned integer (no wrap-around test; // and % become shifts and masks), keeps the tiles in
  flat 1-D shared arrays so that a shared load is a base register plus a constant, has LLVM
  unroll the outer products two at a time, and prefetches the next slice into registers during
  the FMAs, with two shared stages and one ``syncthreads`` per slice: 512 FMAs among about 800
  instructions, 123 registers, two blocks per SM. On an H100 (4096³): 32.7 TFLOP/s, 63% of
  cuBLAS float32, against v4's 7.8 (15%) (``benchmarks/gpu_sgemm_sweep.py``).

What limits v5: shared memory. Each of its loads is 32-bit: Numba cannot reinterpret a float32
array as float4, and it aligns shared arrays to 4 bytes, so LLVM cannot merge loads into the
128-bit ones of the CUDA C kernels (numba-cuda's ``alignment=`` might let it; untried). With 16
loads per 64 FMAs, a warp's loads take as many of the SM's clocks as its FMAs (one 32-lane load
against four FMA instructions per clock), so the two must overlap perfectly to reach the FMA
peak. Then the per-slice bookkeeping: the global loads' bounds tests and 64-bit address
arithmetic are about 120 of the 800 instructions of a slice. It does not use the tensor cores
(TF32), nor asynchronous copies (cp.async, TMA) that would move the tiles into shared memory
without the registers and instructions of the prefetch.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np
from numba import cuda

from .common import cdiv, check_float, empty, is_host, to_device, to_host

V1_TILE = 16  # v1: 16×16 threads, one C element each
V2_TILE = 16  # v2: 16×16 threads and 16×16 tiles of A and B
V3_BM, V3_BN, V3_BK, V3_TM = 64, 64, 8, 8  # v3: a 64×64 tile of C, 512 threads of 8 rows each
V4_BM, V4_BN, V4_BK, V4_TM, V4_TN = 128, 128, 8, 8, 8  # v4: a 128×128 tile, 256 threads of 8×8


class V5Tile(NamedTuple):
    """A configuration of v5: the block's bm × bn tile of C, the bk-wide slice of K staged in
    shared memory per step, each thread's tm × tn patch of C, and how many of a slice's bk
    outer products the compiler unrolls into one straight run of code (``unroll`` divides bk)."""

    bm: int = 128
    bn: int = 128
    bk: int = 8
    tm: int = 8
    tn: int = 8
    unroll: int = 2

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    def check(self) -> None:
        """A ValueError unless the block's threads split the tiles evenly (see ``_v5``)."""
        if min(self) < 1:
            raise ValueError(f"sgemm_v5: tile {self} has a size below 1")
        t = self.threads
        ok = (self.bm % self.tm == 0 and self.bn % self.tn == 0 and 32 <= t <= 1024
              and self.bk in (1, 2, 4, 8, 16, 32)
              and t % self.bk == 0 and (self.bm * self.bk) % t == 0
              and t % self.bn == 0 and (self.bk * self.bn) % t == 0
              and self.bk % self.unroll == 0)
        if not ok:
            raise ValueError(f"sgemm_v5: tile {self} does not split evenly over its {t} threads "
                             "(need tm | bm, tn | bn, bk a power of two up to 32, "
                             "bk | threads, threads | bm·bk, bn | threads, threads | bk·bn, "
                             "unroll | bk, 32 to 1024 threads)")


V5_TILE = V5Tile()  # v5's default: 128×128×8, 8×8 per thread (256 threads), unrolled by 2


@functools.cache
def _v1(dtype: np.dtype) -> Any:
    zero = dtype.type(0)

    @cuda.jit
    def sgemm_v1_kernel(a: Any, b: Any, c: Any) -> None:
        """v1, naive. Grid ⌈N/16⌉ × ⌈M/16⌉ blocks of 16×16 threads, one C element per thread.

        threadIdx.x walks the columns, so a warp reads 16 consecutive floats of a row of B and
        one A_ik (a broadcast). Traffic from L1/L2: 2·M·N·K loads of 4 bytes.
        """
        col, row = cuda.grid(2)
        if row >= c.shape[0] or col >= c.shape[1]:
            return
        acc = zero
        for k in range(a.shape[1]):
            acc += a[row, k] * b[k, col]
        c[row, col] = acc

    return sgemm_v1_kernel


@functools.cache
def _v2(dtype: np.dtype) -> Any:
    zero, tile = dtype.type(0), V2_TILE

    @cuda.jit
    def sgemm_v2_kernel(a: Any, b: Any, c: Any) -> None:
        """v2, shared-memory tiles. Grid ⌈N/16⌉ × ⌈M/16⌉ blocks of 16×16 threads.

        For each 16-wide slice of K, every thread loads one element of A's tile and one of B's
        (coalesced), the block synchronises, and each thread runs 16 multiply-adds out of shared
        memory. Global traffic: 2·M·N·K/16 loads. Shared: 2 loads per FMA.
        """
        a_tile = cuda.shared.array((tile, tile), dtype)
        b_tile = cuda.shared.array((tile, tile), dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row, col = cuda.blockIdx.y * tile + ty, cuda.blockIdx.x * tile + tx
        M, K = a.shape  # noqa: N806
        N = b.shape[1]  # noqa: N806
        acc = zero
        for k0 in range(0, K, tile):
            a_tile[ty, tx] = a[row, k0 + tx] if row < M and k0 + tx < K else zero
            b_tile[ty, tx] = b[k0 + ty, col] if k0 + ty < K and col < N else zero
            cuda.syncthreads()
            for kk in range(tile):
                acc += a_tile[ty, kk] * b_tile[kk, tx]
            cuda.syncthreads()  # the tiles are read before the next slice overwrites them
        if row < M and col < N:
            c[row, col] = acc

    return sgemm_v2_kernel


@functools.cache
def _v3(dtype: np.dtype) -> Any:
    zero = dtype.type(0)
    BM, BN, BK, TM = V3_BM, V3_BN, V3_BK, V3_TM  # noqa: N806

    @cuda.jit
    def sgemm_v3_kernel(a: Any, b: Any, c: Any) -> None:
        """v3, 1-D register tiling. Grid ⌈N/64⌉ × ⌈M/64⌉ blocks of 512 threads.

        Thread t owns column t % 64 and rows 8·(t // 64) .. +8 of the block's 64×64 tile of C,
        accumulated in 8 registers. Per 8-wide slice of K, the block stages A (64×8) and B (8×64),
        one element per thread; then for each k one B value in a register meets 8 A values.
        Global traffic: M·N·K·(1/64 + 1/64) loads. Shared: 9 loads per 8 FMAs.
        """
        a_tile = cuda.shared.array((BM, BK), dtype)
        b_tile = cuda.shared.array((BK, BN), dtype)
        acc = cuda.local.array(TM, dtype)
        t = cuda.threadIdx.x
        m0, n0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
        M, K = a.shape  # noqa: N806
        N = b.shape[1]  # noqa: N806
        t_row, t_col = (t // BN) * TM, t % BN  # this thread's first row, its column
        a_row, a_col = t // BK, t % BK  # the element of A's tile this thread loads
        b_row, b_col = t // BN, t % BN  # ... and of B's
        for i in range(TM):
            acc[i] = zero
        for k0 in range(0, K, BK):
            in_a = m0 + a_row < M and k0 + a_col < K
            a_tile[a_row, a_col] = a[m0 + a_row, k0 + a_col] if in_a else zero
            in_b = k0 + b_row < K and n0 + b_col < N
            b_tile[b_row, b_col] = b[k0 + b_row, n0 + b_col] if in_b else zero
            cuda.syncthreads()
            for kk in range(BK):
                b_value = b_tile[kk, t_col]
                for i in range(TM):
                    acc[i] += a_tile[t_row + i, kk] * b_value
            cuda.syncthreads()
        for i in range(TM):
            if m0 + t_row + i < M and n0 + t_col < N:
                c[m0 + t_row + i, n0 + t_col] = acc[i]

    return sgemm_v3_kernel


@functools.cache
def _v4(dtype: np.dtype) -> Any:
    zero = dtype.type(0)
    BM, BN, BK, TM, TN = V4_BM, V4_BN, V4_BK, V4_TM, V4_TN  # noqa: N806
    SM, SN = BM // TM, BN // TN  # noqa: N806 (16 × 16 threads; the stride between a thread's rows)
    THREADS = SM * SN  # noqa: N806

    @cuda.jit
    def sgemm_v4_kernel(a: Any, b: Any, c: Any) -> None:
        """v4, 2-D register tiling. Grid ⌈N/128⌉ × ⌈M/128⌉ blocks of 256 threads.

        Thread t = 16·ty + tx owns the 8×8 elements of the block's 128×128 tile of C at rows
        ty + 16·i and columns tx + 16·j (i, j < 8), in 64 registers. Per 8-wide slice of K the
        block stages A's 128×8 tile transposed (a_tile[k, m]) and B's 8×128 tile, 4 elements per
        thread, coalesced reads; then for each k a thread loads 8 A and 8 B values into
        registers and does their 64 products (an outer product).
        Global traffic: M·N·K·(1/128 + 1/128) loads. Shared: 16 loads per 64 FMAs. The
        transposed store into a_tile is an 8-way bank conflict, paid once per slice (4 stores
        per thread against 512 FMAs).
        """
        a_tile = cuda.shared.array((BK, BM), dtype)  # transposed: a_tile[k, m] = A[m0 + m, k0 + k]
        b_tile = cuda.shared.array((BK, BN), dtype)
        a_reg = cuda.local.array(TM, dtype)
        b_reg = cuda.local.array(TN, dtype)
        acc = cuda.local.array((TM, TN), dtype)
        t = cuda.threadIdx.x
        ty, tx = t // SN, t % SN
        m0, n0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
        M, K = a.shape  # noqa: N806
        N = b.shape[1]  # noqa: N806
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = zero
        for k0 in range(0, K, BK):
            for e in range(t, BM * BK, THREADS):  # A (128×8): 8 threads read a row's 8 floats
                r, k = e // BK, e % BK
                in_a = m0 + r < M and k0 + k < K
                a_tile[k, r] = a[m0 + r, k0 + k] if in_a else zero
            for e in range(t, BK * BN, THREADS):  # B (8×128): a warp reads 32 floats of a row
                k, col = e // BN, e % BN
                in_b = k0 + k < K and n0 + col < N
                b_tile[k, col] = b[k0 + k, n0 + col] if in_b else zero
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(TM):
                    a_reg[i] = a_tile[kk, ty + SM * i]
                for j in range(TN):
                    b_reg[j] = b_tile[kk, tx + SN * j]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += a_reg[i] * b_reg[j]
            cuda.syncthreads()
        for i in range(TM):
            row = m0 + ty + SM * i
            for j in range(TN):
                col = n0 + tx + SN * j
                if row < M and col < N:
                    c[row, col] = acc[i, j]

    return sgemm_v4_kernel


@functools.cache
def _v5(dtype: np.dtype, tile: V5Tile) -> Any:
    tile.check()
    zero, u = dtype.type(0), np.uint64
    # Shapes of the arrays, as plain ints (Numba needs them so).
    a_slots = 2 * tile.bk * (tile.bm + 32 // tile.bk)  # two stages of A's tile, padded rows
    b_slots = 2 * tile.bk * tile.bn  # two stages of B's tile
    a_loads, b_loads = tile.bm * tile.bk // tile.threads, tile.bk * tile.bn // tile.threads
    frag_m, frag_n = tile.tm, tile.tn
    # Every index below is a uint64: Numba indexes an array with an unsigned integer as it is,
    # but a signed one first gets the wrap-around test for negative indices; and // and % on
    # unsigned integers are shifts and masks. A Python int would be typed int64, and int64 mixed
    # with uint64 makes float64, so each constant that meets an index is a uint64 too.
    BM, BN, BK, TM, TN, UNROLL = (u(x) for x in tile)  # noqa: N806
    SM, SN = BM // TM, BN // TN  # noqa: N806 (threads down and across; the stride of a patch)
    THREADS = u(tile.threads)  # noqa: N806
    A_ROW = BM + u(32 // tile.bk)  # noqa: N806 (a row of the transposed A tile, padded)
    A_STAGE, B_STAGE = BK * A_ROW, BK * BN  # noqa: N806
    A_STEP, B_STEP = THREADS // BK, THREADS // BN  # noqa: N806 (rows apart of one thread's loads)
    A_LOADS, B_LOADS = u(a_loads), u(b_loads)  # noqa: N806
    ZERO, ONE = u(0), u(1)  # noqa: N806

    @cuda.jit(device=True)
    def fetch(a: Any, b: Any, m0: Any, n0: Any, k0: Any, a_next: Any, b_next: Any) -> None:
        """This thread's share of the slice k0 .. k0 + bk of A and B, into registers (zeros
        past the edges). A: rows t // bk + A_STEP·q, column t % bk (bk threads read a row's bk
        consecutive floats); B: row t // bn + B_STEP·q, column t % bn (a warp reads 32)."""
        t = u(cuda.threadIdx.x)
        M, K, N = u(a.shape[0]), u(a.shape[1]), u(b.shape[1])  # noqa: N806
        k, col = k0 + t % BK, n0 + t % BN
        for q in range(A_LOADS):
            row = m0 + t // BK + A_STEP * q
            a_next[q] = a[row, k] if row < M and k < K else zero
        for q in range(B_LOADS):
            row = k0 + t // BN + B_STEP * q
            b_next[q] = b[row, col] if row < K and col < N else zero

    @cuda.jit(device=True)
    def stash(a_s: Any, b_s: Any, stage: Any, a_next: Any, b_next: Any) -> None:
        """The registers of ``fetch`` into shared-memory stage 0 or 1, A transposed."""
        t = u(cuda.threadIdx.x)
        a_at = stage * A_STAGE + (t % BK) * A_ROW + t // BK  # a_s[stage][k][m]
        b_at = stage * B_STAGE + (t // BN) * BN + t % BN  # b_s[stage][k][n]
        for q in range(A_LOADS):
            a_s[a_at + A_STEP * q] = a_next[q]
        for q in range(B_LOADS):
            b_s[b_at + B_STEP * BN * q] = b_next[q]

    @cuda.jit
    def sgemm_v5_kernel(a: Any, b: Any, c: Any) -> None:
        """v5, v4 made cheap to issue. Grid ⌈N/bn⌉ × ⌈M/bm⌉ blocks of (bm/tm)·(bn/tn) threads;
        by default 128×128 tiles, 256 threads of 8×8, as v4.

        Thread t = SN·ty + tx owns rows ty + SM·i and columns tx + SN·j of the block's tile
        (SM = bm/tm, SN = bn/tn), as in v4. Global traffic: M·N·K·(1/bn + 1/bm) loads; shared:
        tm + tn loads per tm·tn FMAs, and 2·bk·(bm + 32/bk + bn) floats per block (16.6 KB by
        default, float32). What changes from v4:

        * every index is a uint64 (see above) and the shared tiles are flat 1-D arrays, so a
          shared load is ``[base + constant]`` once the loops are unrolled: no negative-index
          wrap-around, no signed division, no 2-D address arithmetic in the inner loop;
        * the bk outer products of a slice run ``unroll`` at a time: LLVM fully unrolls the
          short inner loop (its size budget stops it at about 2 products of 8×8), so the inner
          loop is tm + tn shared loads and tm·tn FMAs per product with one branch per run;
        * two shared-memory stages and a register prefetch: the global loads of slice s + 1 are
          issued before the FMAs of slice s and stored into the other stage after them, so
          their latency hides behind the arithmetic and one ``syncthreads`` per slice suffices;
        * A's transposed tile has rows padded by 32/bk floats: the bk threads that store one
          row of A write to distinct banks (v4's store was an 8-way conflict);
        * 123 registers instead of 202 (ptxas, sm_90), so two blocks of 256 threads fit on an
          SM, each one's FMAs covering the other's ``syncthreads``.

        Per slice and warp (default tile, counted by Nsight Compute on an H100): 512 FMAs, 128
        shared loads and about 160 other instructions (v4: 512, 128 and about 920).
        """
        a_s = cuda.shared.array(a_slots, dtype)  # [stage][k][m], rows of A_ROW
        b_s = cuda.shared.array(b_slots, dtype)  # [stage][k][n]
        a_next = cuda.local.array(a_loads, dtype)  # the next slice, in flight
        b_next = cuda.local.array(b_loads, dtype)
        a_reg = cuda.local.array(frag_m, dtype)
        b_reg = cuda.local.array(frag_n, dtype)
        acc = cuda.local.array((frag_m, frag_n), dtype)
        t = u(cuda.threadIdx.x)
        ty, tx = t // SN, t % SN
        m0, n0 = u(cuda.blockIdx.y) * BM, u(cuda.blockIdx.x) * BN
        M, K, N = u(a.shape[0]), u(a.shape[1]), u(b.shape[1])  # noqa: N806
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = zero
        fetch(a, b, m0, n0, ZERO, a_next, b_next)
        stash(a_s, b_s, ZERO, a_next, b_next)
        cuda.syncthreads()
        stage = ZERO
        for k0 in range(ZERO, K, BK):
            fetch(a, b, m0, n0, k0 + BK, a_next, b_next)  # zeros past the last slice
            a_at, b_at = stage * A_STAGE + ty, stage * B_STAGE + tx
            for k1 in range(ZERO, BK, UNROLL):
                for kk in range(k1, k1 + UNROLL):  # unrolled: constant trip count
                    for i in range(TM):
                        a_reg[i] = a_s[a_at + kk * A_ROW + SM * i]
                    for j in range(TN):
                        b_reg[j] = b_s[b_at + kk * BN + SN * j]
                    for i in range(TM):
                        for j in range(TN):
                            acc[i, j] += a_reg[i] * b_reg[j]
            stage = ONE - stage
            stash(a_s, b_s, stage, a_next, b_next)  # the other stage: read two slices ago
            cuda.syncthreads()
        for i in range(TM):
            row = m0 + ty + SM * i
            for j in range(TN):
                col = n0 + tx + SN * j
                if row < M and col < N:
                    c[row, col] = acc[i, j]

    return sgemm_v5_kernel


# --- host wrappers ----------------------------------------------------------------------------
def _launch(version: int, a: Any, b: Any, tile: V5Tile = V5_TILE) -> Any:
    name = f"sgemm_v{version}"
    dtype = check_float(name, a=a, b=b)
    if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"{name}: expected A (M, K) and B (K, N), got A {tuple(a.shape)} and "
                         f"B {tuple(b.shape)}")
    M, N = a.shape[0], b.shape[1]  # noqa: N806
    c = empty((M, N), dtype)
    a_d, b_d = to_device(a, name), to_device(b, name)
    if version == 1:
        _v1(dtype)[(cdiv(N, V1_TILE), cdiv(M, V1_TILE)), (V1_TILE, V1_TILE)](a_d, b_d, c)
    elif version == 2:
        _v2(dtype)[(cdiv(N, V2_TILE), cdiv(M, V2_TILE)), (V2_TILE, V2_TILE)](a_d, b_d, c)
    elif version == 3:
        threads = (V3_BM // V3_TM) * V3_BN
        _v3(dtype)[(cdiv(N, V3_BN), cdiv(M, V3_BM)), threads](a_d, b_d, c)
    elif version == 4:
        threads = (V4_BM // V4_TM) * (V4_BN // V4_TN)
        _v4(dtype)[(cdiv(N, V4_BN), cdiv(M, V4_BM)), threads](a_d, b_d, c)
    else:
        _v5(dtype, tile)[(cdiv(N, tile.bn), cdiv(M, tile.bm)), tile.threads](a_d, b_d, c)
    return to_host(c, is_host(a))


def sgemm_v1(a: Any, b: Any) -> Any:
    """C = A·B by v1, the naive kernel (the reference). A (M, K), B (K, N), one float dtype."""
    return _launch(1, a, b)


def sgemm_v2(a: Any, b: Any) -> Any:
    """C = A·B by v2, shared-memory tiling."""
    return _launch(2, a, b)


def sgemm_v3(a: Any, b: Any) -> Any:
    """C = A·B by v3, 1-D register tiling."""
    return _launch(3, a, b)


def sgemm_v4(a: Any, b: Any) -> Any:
    """C = A·B by v4, 2-D register tiling."""
    return _launch(4, a, b)


def sgemm_v5(a: Any, b: Any, tile: V5Tile = V5_TILE) -> Any:
    """C = A·B by v5, v4's register tiling with unsigned indices, unrolled inner loop and
    prefetched, double-buffered tiles: the fastest version. ``tile`` picks another
    configuration (``benchmarks/gpu_sgemm_sweep.py`` times several)."""
    return _launch(5, a, b, tile)


VERSIONS = {1: sgemm_v1, 2: sgemm_v2, 3: sgemm_v3, 4: sgemm_v4, 5: sgemm_v5}
sgemm = sgemm_v5
