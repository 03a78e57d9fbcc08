"""Fused scale + key-padding mask + softmax over the last axis, forward and backward.

Math, for one row x (S,) of scores with keep-mask k (S,) (1 = attend, 0 = padding):

    s_j = scale·x_j  where k_j,  else the dtype's most negative finite value (masked_fill)
    y_j = e^(s_j - m) / Σ_i e^(s_i - m),   m = max_i s_i
    dx_j = scale · y_j · (dy_j - Σ_i dy_i·y_i)  where k_j,  else 0

One rule for non-finite rows, the same on every backend: the NumPy composites, these kernels
(and :mod:`.attention`, which calls them) and the CUDA kernels (``minigrad.kernels.cuda``
softmax and attention), checked by ``tests/test_masked_softmax.py``:

* Without a mask the kernel is exactly the composite's formula, nothing special-cased, so it
  gives NaN where the composite and ``torch.softmax`` do: a row that is all -inf (m = -inf and
  -inf - m = NaN), or holds +inf (+inf - m = NaN) or NaN, is NaN throughout; -inf entries of a
  row with a finite max get y_j = 0 (e^-inf = 0).
* A masked score is *replaced* by finfo.min, the dtype's most negative finite value (not offset,
  and not -inf), as the composite does in attention. Its gradient is exactly 0, and a row whose
  every key is masked is all finfo.min, so s_j - m = 0 and its softmax is uniform, y_j = 1/S,
  with dx = 0: what PyTorch gives for HF BERT's additive ``finfo.min`` mask. Never NaN.

Shapes: x (N, ..., S), mask (N, S) or None: row r of x[n] uses mask[n]. For attention scores x
is (B, A, S, S) and the mask the (B, S) key padding mask, shared by every head and query.

What the fused kernel saves: the NumPy composite makes 7 passes over the (B, A, S, S) scores
(scale, where, max, subtract, exp, sum, divide), each allocating and streaming an array through
memory. The kernel reads each row once into L1, does all five steps there, and writes it once;
its exp is :func:`.vecmath.exp`, so the exp loop is 8-wide SIMD. Rows are split across threads.
The backward is one pass too: a dot product and an axpy per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from . import vecmath
from .common import (
    check_float,
    check_shape,
    contiguous,
    jit,
    jit_parallel,
    key_mask,
    most_negative,
    row_dot,
    row_max,
    row_sum,
)


# --- the naive reference: plain NumPy, one line per step of the math --------------------------
def softmax_forward_reference(x: np.ndarray, scale: float = 1.0,
                              mask: np.ndarray | None = None) -> np.ndarray:
    """The NumPy composite: scale, masked_fill, max, subtract, exp, sum, divide."""
    s = x * x.dtype.type(scale)
    if mask is not None:
        keep = _broadcast_mask(mask, x.ndim)
        s = np.where(keep, s, np.finfo(x.dtype).min)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward_reference(y: np.ndarray, dy: np.ndarray, scale: float = 1.0,
                               mask: np.ndarray | None = None) -> np.ndarray:
    """dx = scale·y·(dy - Σ dy·y), zero where masked."""
    dx = y * (dy - (dy * y).sum(axis=-1, keepdims=True)) * y.dtype.type(scale)
    if mask is not None:
        dx = np.where(_broadcast_mask(mask, y.ndim), dx, 0).astype(y.dtype)
    return dx


def _broadcast_mask(mask: np.ndarray, ndim: int) -> np.ndarray:
    """(N, S) → (N, 1, ..., 1, S), broadcasting over the middle axes of an ndim-D input."""
    mask = np.asarray(mask) != 0
    return mask.reshape(mask.shape[:1] + (1,) * (ndim - 2) + mask.shape[1:])


# --- the fused kernels ------------------------------------------------------------------------
@jit
def softmax_row(x: np.ndarray, keep: np.ndarray, scale: Any, y: np.ndarray) -> None:
    """One row: y = softmax(where(keep, scale·x, finfo.min)), the composite's formula (uniform
    if nothing is kept, NaN where the composite is NaN). y may be x."""
    masked = most_negative(scale)
    for j in range(x.shape[0]):  # vectorized: a multiply and a select
        y[j] = scale * x[j] if keep[j] else masked
    softmax_in_place(y)


@jit
def softmax_in_place(y: np.ndarray) -> None:
    """One row of scores, already scaled and masked: y = e^(y - max y) / Σ e^(y - max y)."""
    S = y.shape[0]  # noqa: N806
    m = row_max(y)
    for j in range(S):  # vectorized: vecmath.exp is plain arithmetic (exp(-∞) = 0, NaN stays)
        y[j] = vecmath.exp(y[j] - m)
    inv = type(m)(1.0) / row_sum(y)
    for j in range(S):
        y[j] *= inv


@jit
def softmax_row_backward(y: np.ndarray, dy: np.ndarray, keep: np.ndarray, scale: Any,
                         dx: np.ndarray) -> None:
    """One row: dx = scale·y·(dy - y·dy), 0 where masked. dx may be dy."""
    d = row_dot(y, dy)
    T = type(scale)  # noqa: N806
    for j in range(y.shape[0]):
        dx[j] = scale * y[j] * (dy[j] - d) if keep[j] else T(0.0)


@jit_parallel
def _forward_kernel(x: np.ndarray, keep: np.ndarray, scale: Any, y: np.ndarray) -> None:
    N, R, _ = x.shape  # noqa: N806  # x, y (N, R, S), keep (N, S)
    for row in prange(N * R):
        n, r = row // R, row % R
        softmax_row(x[n, r], keep[n], scale, y[n, r])


@jit_parallel
def _backward_kernel(y: np.ndarray, dy: np.ndarray, keep: np.ndarray, scale: Any,
                     dx: np.ndarray) -> None:
    N, R, _ = y.shape  # noqa: N806
    for row in prange(N * R):
        n, r = row // R, row % R
        softmax_row_backward(y[n, r], dy[n, r], keep[n], scale, dx[n, r])


def _rows(name: str, x: np.ndarray, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """x as (N, R, S) rows and the (N, S) keep-mask (N = 1 and all True without a mask)."""
    if x.ndim < 1 or x.shape[-1] == 0:
        raise ValueError(f"{name}: expected an input with a non-empty last axis, got {x.shape}")
    if mask is None:
        return x.reshape(1, -1, x.shape[-1]), np.ones((1, x.shape[-1]), dtype=np.bool_)
    if x.ndim < 2:
        raise ValueError(f"{name}: a mask (N, S) needs an input (N, ..., S), got {x.shape}")
    keep = key_mask(name, mask, x.shape[0], x.shape[-1])
    return x.reshape(x.shape[0], -1, x.shape[-1]), keep


def softmax_forward(x: np.ndarray, scale: float = 1.0,
                    mask: np.ndarray | None = None) -> np.ndarray:
    """y = softmax(masked_fill(scale·x, mask == 0, finfo.min)) over the last axis.

    x (N, ..., S) float32/float64; mask (N, S) of 1 = keep / 0 = masked, or None. Returns y with
    x's shape and dtype.
    """
    check_float("softmax_forward", x=x)
    x = contiguous(x)
    x3, keep = _rows("softmax_forward", x, mask)
    y = np.empty_like(x)
    _forward_kernel(x3, keep, x.dtype.type(scale), y.reshape(x3.shape))
    return y


def softmax_backward(y: np.ndarray, dy: np.ndarray, scale: float = 1.0,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """dx = scale·y·(dy - Σ_j dy_j·y_j) per row, 0 at masked keys; y is the forward output."""
    check_float("softmax_backward", y=y, dy=dy)
    check_shape("softmax_backward", "dy", dy, y.shape)
    y, dy = contiguous(y), contiguous(dy)
    y3, keep = _rows("softmax_backward", y, mask)
    dx = np.empty_like(y)
    _backward_kernel(y3, dy.reshape(y3.shape), keep, y.dtype.type(scale), dx.reshape(y3.shape))
    return dx
