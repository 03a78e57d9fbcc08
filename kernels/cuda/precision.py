"""The kernels' precisions: the dtype an array is stored in, and the dtype sums are made in.

A kernel reads its inputs in a *storage* dtype and computes in a *compute* dtype:

============  ===============================  =============  ==========================
precision     storage on the device            compute        a NumPy input/output is
============  ===============================  =============  ==========================
float64       float64                          float64        float64
float32       float32                          float32        float32
float16       float16                          float32        float16
bfloat16      uint16 (the bit pattern)         float32        ``ml_dtypes.bfloat16``
============  ===============================  =============  ==========================

Each element is converted once on the way in (:func:`converters`' ``load``) and once on the way
out (``store``); every sum, max and product in between is float32 for the half precisions. A
float16 sum of a row of 1024 values near 300 overflows 65504 to inf, and a float16 running sum
stops growing once its ulp exceeds the addends (2048 + 1 = 2048); in float32 both are exact to
about 1e-7. The tests show both (``tests/test_kernels_cuda_half.py``).

**bfloat16.** Neither CuPy nor Numba has a bfloat16 type, so a bfloat16 array travels as its
16-bit pattern, the top half of a float32 (sign, 8 exponent bits, 7 fraction bits):

* bits → float32 is exact: ``uint32(bits) << 16``, reinterpreted as a float32;
* float32 → bits rounds to nearest, ties to even, on the top 16 bits:
  ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16`` for the float32 bits u (a carry out of the fraction
  bumps the exponent; the largest finite floats round to inf), and a NaN becomes the quiet NaN
  0x7FC0 with its sign, as ``ml_dtypes`` converts.

A host (NumPy) array of ``ml_dtypes.bfloat16`` is recognised by its dtype's name and sent as its
uint16 view, and the results come back as ``ml_dtypes.bfloat16`` arrays (uint16 ones for uint16
input). A *device* array has no
bfloat16 dtype, so a wrapper reads uint16 device arrays as bfloat16 patterns only when told to
(``bf16_bits=True``); a uint16 array without that flag is refused (it could be integers).

Numba's CUDA target converts float16 with ``cvt.f32.f16`` / ``cvt.rn.f16.f32`` and reinterprets
bits with libdevice's ``int_as_float`` / ``float_as_int``; under the simulator libdevice's
functions are stubs (they return None), so there the bit casts go through NumPy views instead
(the same bits; the GPU suite checks the libdevice ones).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np
from numba import cuda, float32, int32, uint16, uint32
from numba.core.types import float16

from .common import SIMULATED


class Precision(NamedTuple):
    """How a kernel stores and computes one group of arrays (see the module docstring)."""

    name: str  # "float64", "float32", "float16" or "bfloat16"
    storage: np.dtype  # the device arrays' dtype
    compute: np.dtype  # the dtype of every sum and product

    @property
    def half(self) -> bool:
        """Stored in 16 bits and computed in float32."""
        return self.storage != self.compute


FLOAT64 = Precision("float64", np.dtype(np.float64), np.dtype(np.float64))
FLOAT32 = Precision("float32", np.dtype(np.float32), np.dtype(np.float32))
FLOAT16 = Precision("float16", np.dtype(np.float16), np.dtype(np.float32))
BFLOAT16 = Precision("bfloat16", np.dtype(np.uint16), np.dtype(np.float32))
BY_DTYPE = {np.dtype(np.float64): FLOAT64, np.dtype(np.float32): FLOAT32,
            np.dtype(np.float16): FLOAT16}

# Under the simulator a device function is called through a wrapper that swaps in its fake
# numba.cuda module on every call, microseconds each: too slow for a call per element loaded (the
# naive attention kernel loads 6·S²·D of them). These functions use nothing of numba.cuda, so
# under the simulator they are plain Python functions; on a GPU, device functions.
device = (lambda f: f) if SIMULATED else cuda.jit(device=True)

SHIFT, ONE = uint32(16), uint32(1)
ROUND = uint32(0x7FFF)  # half an ulp of the kept bits, less one: ties go to the even pattern
ABS, INF = uint32(0x7FFFFFFF), uint32(0x7F800000)  # |u| > INF's bits: a NaN
SIGN, QUIET_NAN = uint32(0x8000), uint32(0x7FC0)


@device
def bf16_round(u: Any) -> Any:
    """The bfloat16 pattern nearest the float32 whose bits are u (uint32): ties to even; a NaN
    becomes the quiet NaN 0x7FC0 (0xFFC0 when negative)."""
    if (u & ABS) > INF:
        return uint16(((u >> SHIFT) & SIGN) | QUIET_NAN)
    return uint16((u + ROUND + ((u >> SHIFT) & ONE)) >> SHIFT)


if SIMULATED:
    @device
    def bf16_to_float32(bits: Any) -> Any:
        """The float32 a bfloat16 pattern stands for: its 16 bits above 16 zero bits."""
        return np.array(uint32(bits) << SHIFT, dtype=np.uint32).view(np.float32)[()]

    @device
    def float32_to_bf16(x: Any) -> Any:
        """x (float32) rounded to the nearest bfloat16 pattern (:func:`bf16_round`)."""
        return bf16_round(np.array(x, dtype=np.float32).view(np.uint32)[()])
else:
    from numba.cuda import libdevice

    @device
    def bf16_to_float32(bits: Any) -> Any:
        """The float32 a bfloat16 pattern stands for: its 16 bits above 16 zero bits."""
        return libdevice.int_as_float(int32(uint32(bits) << SHIFT))

    @device
    def float32_to_bf16(x: Any) -> Any:
        """x (float32) rounded to the nearest bfloat16 pattern (:func:`bf16_round`)."""
        return bf16_round(uint32(libdevice.float_as_int(x)))


@device
def float16_to_float32(x: Any) -> Any:
    return float32(x)


@device
def float32_to_float16(x: Any) -> Any:
    return float16(x)


@device
def same(x: Any) -> Any:
    """float32 and float64 are stored as they are computed: no conversion."""
    return x


@functools.cache
def converters(p: Precision) -> tuple[Any, Any]:
    """(load, store): device functions from p's storage to its compute dtype and back."""
    if p.name == "bfloat16":
        return bf16_to_float32, float32_to_bf16
    if p.name == "float16":
        return float16_to_float32, float32_to_float16
    return same, same


def precision_of(name: str, bf16_bits: bool, **arrays: Any) -> Precision:
    """The one precision of ``arrays``; a TypeError naming each array's dtype otherwise.

    float64, float32 and float16 arrays are what they say; a NumPy ``ml_dtypes.bfloat16``
    array is bfloat16, and so is a uint16 array when ``bf16_bits`` is true.
    """
    found = {k: array_precision(a, bf16_bits) for k, a in arrays.items()}
    first = next(iter(found.values()))
    if first is None or any(p != first for p in found.values()):
        listed = ", ".join(f"{k} {_dtype_name(a, bf16_bits)}" for k, a in arrays.items())
        raise TypeError(f"{name}: expected float64, float32, float16 or bfloat16 arrays of one "
                        f"dtype, got {listed}")
    return first


def array_precision(a: Any, bf16_bits: bool) -> Precision | None:
    """The precision of one array, or None for a dtype no kernel takes."""
    dtype = np.dtype(a.dtype)
    if dtype.name == "bfloat16" or (bf16_bits and dtype == np.uint16):
        return BFLOAT16
    return BY_DTYPE.get(dtype)


def _dtype_name(a: Any, bf16_bits: bool) -> str:
    dtype = np.dtype(a.dtype)
    return "bfloat16 (uint16 bits)" if bf16_bits and dtype == np.uint16 else str(dtype)
