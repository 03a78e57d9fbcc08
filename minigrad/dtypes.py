"""The floating-point dtypes minigrad knows, and the one test of "is this floating point".

float16 is NumPy's own; bfloat16 comes from ``ml_dtypes`` (a light, NumPy-only package), which
registers NumPy ufuncs for it. Two facts shape this module:

* ``np.dtype(ml_dtypes.bfloat16).kind`` is ``"V"``, not ``"f"``, and
  ``np.issubdtype(bfloat16, np.floating)`` is False: every "is it a float?" question in minigrad
  goes through :func:`is_floating`, never ``dtype.kind == "f"``.
* float16 and bfloat16 meet in float32 (neither holds the other), as ``torch.promote_types``.

The half-precision formats, bit by bit (sign, exponent, mantissa):

    float16   1 + 5 + 10: largest 65504, smallest normal 2⁻¹⁴ ≈ 6.1e-5, eps 2⁻¹⁰ ≈ 9.8e-4
    bfloat16  1 + 8 + 7:  float32's range (largest ≈ 3.4e38), eps 2⁻⁷ ≈ 7.8e-3
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import ml_dtypes
except ImportError:  # a core dependency; tolerated missing so that float32 work still runs
    ml_dtypes = None

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
bfloat16: np.dtype | None = None if ml_dtypes is None else np.dtype(ml_dtypes.bfloat16)

HALF_DTYPES: tuple[np.dtype, ...] = (float16,) if bfloat16 is None else (float16, bfloat16)
FLOATING_DTYPES: tuple[np.dtype, ...] = HALF_DTYPES + (float32, float64)


def is_floating(dtype: Any) -> bool:
    """Whether ``dtype`` is a floating-point dtype: float16/32/64 or bfloat16."""
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or (bfloat16 is not None and dtype == bfloat16)


def is_half(dtype: Any) -> bool:
    """Whether ``dtype`` is float16 or bfloat16."""
    return np.dtype(dtype) in HALF_DTYPES


def need_bfloat16(what: str) -> np.dtype:
    """bfloat16, or a clear error naming ``what`` needed it when ml_dtypes is missing."""
    if bfloat16 is None:
        raise ImportError(f"{what} needs the bfloat16 dtype, which comes from the ml_dtypes "
                          "package: pip install ml_dtypes")
    return bfloat16


def finfo(dtype: Any) -> Any:
    """``np.finfo`` that also knows bfloat16 (through ml_dtypes)."""
    dtype = np.dtype(dtype)
    return ml_dtypes.finfo(dtype) if bfloat16 is not None and dtype == bfloat16 else np.finfo(dtype)
