"""What every CPU kernel shares: the JIT decorators, argument checks and row reductions.

Every kernel is compiled with ``fastmath=False``: LLVM keeps IEEE semantics, so it may not
reorder a floating-point sum or fuse a multiply and an add. The speed of a kernel is then
whether LLVM vectorizes its loops (8 float32 lanes to an AVX2 instruction), and these rules,
each found by reading the generated assembly, decide it:

* A loop whose iterations are independent (``y[j] = f(x[j])``) vectorizes as long as ``f`` is
  plain arithmetic inlined into the loop: a call into libm (``math.exp``) cannot be vectorized,
  which is why :mod:`.vecmath` exists, and a helper LLVM declines to inline stays a call, which
  is why the scalar helpers use :func:`jit_inline`.
* The loop index must start from 0 over a view (``xs = x[lo:hi]; for i in range(hi - lo)``),
  not run from ``lo`` to ``hi``: Numba wraps negative indices around (``x[-1]``), and when LLVM
  cannot prove an index is ≥ 0 that check makes the addresses non-affine and the loop stays
  scalar. A ``prange`` loop starts each thread at a runtime offset, so elementwise kernels loop
  over chunks in parallel and over each chunk's view from 0.
* ``error_model="numpy"``: x / 0 gives inf or NaN as in NumPy. Numba's default, Python's
  model, tests every divisor to raise ZeroDivisionError, and that branch alone keeps a loop
  with a division in it from vectorizing.
* A reduction (``s += x[j]``) may not be reordered, so it runs one add at a time, each waiting
  ~3 cycles for the previous one. :func:`row_sum`, :func:`row_max` and :func:`row_dot` keep 8
  independent partial results instead: a fixed, documented summation order whose 8 chains run
  at once (about 5x faster than one chain on this machine).

``cache=True`` writes the machine code to ``__pycache__`` so a second process loads it instead of
compiling. Numba checks only the cached function's own file for changes: after editing this file
or :mod:`.vecmath`, delete ``kernels/cpu/__pycache__`` so the kernels that call them recompile.
With ``NUMBA_DISABLE_JIT=1`` every kernel runs as the plain Python it is written in (``prange``
becomes ``range``), which is how the tests check the loops' semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Elements per parallel task of the elementwise kernels (64 KiB of float32 per array).
CHUNK = 1 << 14

# Rows of work for the reductions across rows (LayerNorm dW, bias gradients): a fixed count of
# chunks, not the thread count, so the summation order and result do not depend on the machine.
REDUCE_CHUNKS = 8


def jit(fn: Callable) -> Callable:
    """Compile ``fn`` for the CPU: cached, IEEE-exact (no fastmath), single-threaded."""
    return njit(cache=True, fastmath=False, error_model="numpy")(fn)


def jit_inline(fn: Callable) -> Callable:
    """Like :func:`jit`, for scalar helpers (exp, erf, GELU): inlined into every caller.

    LLVM's own inliner declines a helper past a size threshold; the loop then holds a call and
    stays scalar. Numba's ``inline="always"`` pastes the helper in before LLVM sees it.
    """
    return njit(cache=True, fastmath=False, error_model="numpy", inline="always")(fn)


def jit_parallel(fn: Callable) -> Callable:
    """Like :func:`jit`, and each ``prange`` loop is split across the Numba threads."""
    return njit(cache=True, fastmath=False, error_model="numpy", parallel=True)(fn)


def check_float(name: str, **arrays: Any) -> np.dtype:
    """The common float32/float64 dtype of ``arrays``; a TypeError naming them otherwise."""
    dtypes = {k: np.asarray(a).dtype for k, a in arrays.items() if a is not None}
    first = next(iter(dtypes.values()))
    if first not in FLOAT_DTYPES or any(d != first for d in dtypes.values()):
        listed = ", ".join(f"{k} {d}" for k, d in dtypes.items())
        raise TypeError(f"{name}: expected float32 or float64 arrays of one dtype, got {listed}")
    return first


def check_shape(name: str, what: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: {what} has shape {a.shape}, expected {tuple(shape)}")


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it is C-contiguous, else a C-contiguous copy (kernels index rows)."""
    return np.ascontiguousarray(a)


def key_mask(name: str, mask: Any, batch: int, keys: int) -> np.ndarray:
    """A (B, S) keep-mask (1 = attend, 0 = padding) as bool, or all-True when ``mask`` is None."""
    if mask is None:
        return np.ones((batch, keys), dtype=np.bool_)
    mask = np.asarray(mask)
    if mask.shape != (batch, keys):
        raise ValueError(f"{name}: mask has shape {mask.shape}, expected (B, S) = "
                         f"{(batch, keys)}: one row of keys per batch element")
    return mask != 0


# finfo.min of each kernel dtype, as Python floats (each is exact in its dtype): the value a
# masked score is replaced by, so that a fully masked row is uniform instead of NaN.
FLOAT32_MIN = float(np.finfo(np.float32).min)
FLOAT64_MIN = float(np.finfo(np.float64).min)


@jit_inline
def most_negative(like: Any) -> Any:
    """finfo.min, the most negative finite value, of the float type of the scalar ``like``."""
    if isinstance(like, np.float32):
        return np.float32(FLOAT32_MIN)
    return np.float64(FLOAT64_MIN)


@jit
def n_chunks(n: int) -> int:
    """How many CHUNK-sized tasks cover n elements."""
    return (n + CHUNK - 1) // CHUNK


@jit
def row_sum(v: np.ndarray) -> Any:
    """Σ_j v_j of a 1-D array, as 8 interleaved partial sums added pairwise at the end."""
    n = v.shape[0]
    zero = v.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
    n8 = n - n % 8
    for j in range(0, n8, 8):
        s0 += v[j]
        s1 += v[j + 1]
        s2 += v[j + 2]
        s3 += v[j + 3]
        s4 += v[j + 4]
        s5 += v[j + 5]
        s6 += v[j + 6]
        s7 += v[j + 7]
    for j in range(n8, n):
        s0 += v[j]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@jit
def row_dot(a: np.ndarray, b: np.ndarray) -> Any:
    """Σ_j a_j·b_j of two 1-D arrays, as 8 interleaved partial sums (see :func:`row_sum`)."""
    n = a.shape[0]
    zero = a.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
    n8 = n - n % 8
    for j in range(0, n8, 8):
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
        s4 += a[j + 4] * b[j + 4]
        s5 += a[j + 5] * b[j + 5]
        s6 += a[j + 6] * b[j + 6]
        s7 += a[j + 7] * b[j + 7]
    for j in range(n8, n):
        s0 += a[j] * b[j]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@jit
def row_max(v: np.ndarray) -> Any:
    """max_j v_j of a non-empty 1-D array, as 8 interleaved running maxima."""
    n = v.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = v[0]
    n8 = n - n % 8
    for j in range(0, n8, 8):
        m0 = max(m0, v[j])
        m1 = max(m1, v[j + 1])
        m2 = max(m2, v[j + 2])
        m3 = max(m3, v[j + 3])
        m4 = max(m4, v[j + 4])
        m5 = max(m5, v[j + 5])
        m6 = max(m6, v[j + 6])
        m7 = max(m7, v[j + 7])
    for j in range(n8, n):
        m0 = max(m0, v[j])
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
