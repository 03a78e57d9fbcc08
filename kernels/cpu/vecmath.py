"""exp and erf as plain arithmetic, so that the loops calling them vectorize.

Why: Numba turns ``math.exp(x)`` into a call to the C library's ``expf``, one element at a time.
A loop with a call in it cannot be vectorized (there is no SVML vector library here), so a fused
softmax built on ``math.exp`` loses to NumPy, whose own ``np.exp`` is hand-written SIMD. Written
as multiplies, adds, a floor and a bit-cast, the same function becomes 8 float32 lanes per AVX2
instruction once LLVM inlines it into the loop.

Accuracy (measured by ``tests/test_kernels_cpu.py`` against NumPy/SciPy):

* :func:`exp`: range reduction x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r¹³
  (the next term is below 2⁻⁵³ relative), then 2ⁿ by writing n into the exponent bits. Under
  1 ulp in float32 and float64 alike. Arguments below -87 (float32) or -708 (float64) return 0,
  where the true value is subnormal; arguments above 88 / 709 saturate at e⁸⁸ / e⁷⁰⁹ instead of
  overflowing to inf.
* :func:`erf`: float32 uses the odd rational minimax approximation x·P(x²)/Q(x²) that Eigen
  and XLA use (within 8 float32 ulp, measured over [-10, 10]); float64 calls libm, exact to an
  ulp but not vectorized (float64 is the checking dtype, not the fast one).

``isinstance(x, np.float32)`` is decided when Numba compiles, so each dtype gets only its branch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .common import jit_inline

LOG2E = 1.4426950408889634
# ln 2 split in two: LN2_HI has 16 significant bits, so n·LN2_HI is exact for |n| ≤ 1024 and
# x - n·LN2_HI loses nothing; LN2_LO = ln 2 - LN2_HI carries the rest.
LN2_HI = 6.93145751953125e-1
LN2_LO = 1.42860682030941723212e-6


@jit_inline
def pow2(n: Any) -> Any:
    """2ⁿ for an integer-valued float n in the normal range, by building its bit pattern.

    An IEEE float is sign | exponent + bias | mantissa; with mantissa 0, the number is
    2^(exponent). float32: 8 exponent bits, bias 127, 23 mantissa bits; float64: 11, 1023, 52.
    """
    if isinstance(n, np.float32):
        return np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
    return np.int64((np.int64(np.int32(n)) + np.int64(1023)) << np.int64(52)).view(np.float64)


@jit_inline
def exp(x: Any) -> Any:
    """e^x = 2ⁿ · e^r with n = round(x / ln2), r = x - n·ln2 ∈ [-ln2/2, ln2/2]."""
    T = type(x)  # noqa: N806 (np.float32 or np.float64: every constant takes x's precision)
    big = T(708.0) if isinstance(x, np.float64) else T(87.0)
    xc = min(max(x, -big), big + T(1.0))
    n = np.floor(xc * T(LOG2E) + T(0.5))
    r = (xc - n * T(LN2_HI)) - n * T(LN2_LO)
    p = T(1.0 / 6227020800.0)  # 1/13!, then Horner down to 1/0! = 1
    p = p * r + T(1.0 / 479001600.0)
    p = p * r + T(1.0 / 39916800.0)
    p = p * r + T(1.0 / 3628800.0)
    p = p * r + T(1.0 / 362880.0)
    p = p * r + T(1.0 / 40320.0)
    p = p * r + T(1.0 / 5040.0)
    p = p * r + T(1.0 / 720.0)
    p = p * r + T(1.0 / 120.0)
    p = p * r + T(1.0 / 24.0)
    p = p * r + T(1.0 / 6.0)
    p = p * r + T(0.5)
    p = p * r + T(1.0)
    p = p * r + T(1.0)
    if x < -big:
        return T(0.0)
    return p * pow2(n) if x == x else x  # x != x: NaN, which propagates


@jit_inline
def erf(x: Any) -> Any:
    """erf(x) = 2/√π ∫₀ˣ e^(-t²) dt; float32: x·P(x²)/Q(x²) on [-4, 4] (erf(±4) = ±1 in float32)."""
    if isinstance(x, np.float64):
        return math.erf(x)
    T = type(x)  # noqa: N806
    xc = min(max(x, T(-4.0)), T(4.0))
    x2 = xc * xc
    p = T(-2.72614225801306e-10)
    p = p * x2 + T(2.77068142495902e-08)
    p = p * x2 + T(-2.10102402082508e-06)
    p = p * x2 + T(-5.69250639462346e-05)
    p = p * x2 + T(-7.34990630326855e-04)
    p = p * x2 + T(-2.95459980854025e-03)
    p = p * x2 + T(-1.60960333262415e-02)
    q = T(-1.45660718464996e-05)
    q = q * x2 + T(-2.13374055278905e-04)
    q = q * x2 + T(-1.68282697438203e-03)
    q = q * x2 + T(-7.37332916720468e-03)
    q = q * x2 + T(-1.42647390514189e-02)
    return xc * p / q
