"""C = A·B on the GPU, four versions from naive to register-tiled, after Simon Boehm's
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

What limits v4: Numba cannot reinterpret a float32 array as float4, so every load is 32-bit
(the CUDA C kernels load 128 bits at a time), and it cannot use the tensor cores (TF32); nor is
there double buffering of the tiles (async copies) to hide the global loads behind the FMAs.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numba import cuda

from .common import cdiv, check_float, empty, is_host, to_device, to_host

V1_TILE = 16  # v1: 16×16 threads, one C element each
V2_TILE = 16  # v2: 16×16 threads and 16×16 tiles of A and B
V3_BM, V3_BN, V3_BK, V3_TM = 64, 64, 8, 8  # v3: a 64×64 tile of C, 512 threads of 8 rows each
V4_BM, V4_BN, V4_BK, V4_TM, V4_TN = 128, 128, 8, 8, 8  # v4: a 128×128 tile, 256 threads of 8×8


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


# --- host wrappers ----------------------------------------------------------------------------
def _launch(version: int, a: Any, b: Any) -> Any:
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
    else:
        threads = (V4_BM // V4_TM) * (V4_BN // V4_TN)
        _v4(dtype)[(cdiv(N, V4_BN), cdiv(M, V4_BM)), threads](a_d, b_d, c)
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
    """C = A·B by v4, 2-D register tiling: the fastest version."""
    return _launch(4, a, b)


VERSIONS = {1: sgemm_v1, 2: sgemm_v2, 3: sgemm_v3, 4: sgemm_v4}
sgemm = sgemm_v4
