"""Helpers shared by the ops: reducing broadcast gradients, normalizing ``dim`` arguments,
PyTorch's type promotion, checks of input data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.dtypes import is_floating, is_half
from minigrad.kernels import registry


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` back down to ``shape``, undoing NumPy broadcasting.

    If ``x`` of shape ``shape`` was broadcast to ``grad.shape`` in the forward pass, each element
    of ``x`` was used once per copy, so its gradient is the sum over the copies: over the leading
    dimensions that broadcasting added, and over every dimension where ``x`` had size 1.
    Every binary op's backward passes its gradients through this one function.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_dim(dim: int, ndim: int, op: str, shape: tuple[int, ...]) -> int:
    """A dimension index in ``[0, ndim)``, accepting negative ``dim`` as PyTorch does. A 0-d
    tensor accepts dim 0 and -1, as in PyTorch, which reads it as having one dim."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dim {dim} is out of range for a tensor of shape {shape} "
            f"(expected a dim in [{-n}, {n - 1}])"
        )
    return dim % n


def normalize_dims(dim: int | tuple[int, ...] | list[int] | None, ndim: int, op: str,
                   shape: tuple[int, ...]) -> tuple[int, ...]:
    """``dim=None`` means every dimension; otherwise a sorted tuple of distinct dims. A 0-d
    tensor has no axis to reduce: its dims 0 and -1 give ``()`` (the reduction keeps it)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(sorted({normalize_dim(d, ndim, op, shape) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} repeats a dimension (tensor shape {shape})")
    return axes if ndim else ()


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``shapes`` broadcast to, or an error that names the op and every shape."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{op}: shapes {listed} cannot be broadcast together") from None


# --- PyTorch's type promotion --------------------------------------------------------------
_DEFAULT = {0: np.dtype(np.bool_), 1: np.dtype(np.int64), 2: np.dtype(np.float32)}


def category(dtype: np.dtype) -> int:
    """0 for bool, 1 for integers, 2 for floating point (bfloat16 included, whose NumPy kind
    is "V": see :mod:`minigrad.dtypes`)."""
    if is_floating(dtype):
        return 2
    if dtype.kind in "iu":
        return 1
    if dtype.kind == "b":
        return 0
    raise TypeError(f"minigrad has no tensors of dtype {dtype}")


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """The dtype two tensors meet in, as ``torch.promote_types``: across categories the higher
    category's dtype wins whatever its size (int64 with float16 is float16, where NumPy says
    float64; int64 with bfloat16 is bfloat16); within a category the larger type, as NumPy's
    ``promote_types``, but float16 with bfloat16 is float32 (neither holds the other)."""
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    if a != b and is_half(a) and is_half(b):
        return np.dtype(np.float32)
    return np.promote_types(a, b)


def is_scalar(x: Any) -> bool:
    """A Python or NumPy number (not an array, not a tensor)."""
    return isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating))


def result_type(*operands: Any) -> np.dtype:
    """The dtype of an elementwise op on ``operands``, by PyTorch's rules.

    Operands come in three priorities: tensors (and arrays) with dims, 0-d tensors, and
    numbers (Python or NumPy scalars, which PyTorch treats alike). The dims-carrying tensors
    decide the dtype among themselves; a lower-priority operand changes it only if it is of a
    higher category (bool < integer < floating point): a 0-d tensor then brings its own dtype,
    a number the default of its category (float32 for a float, int64 for an int). So a
    number never widens a tensor: ``float32 * 2.5`` is float32, ``int64 * 0.5`` is float32,
    ``float32 ** np.float64(2)`` is float32, and ``int64 + float32`` is float32.
    """
    levels: list[np.dtype | None] = [None, None, None]
    for x in operands:
        if is_scalar(x):
            level, dt = 2, _DEFAULT[category(np.asarray(x).dtype)]
        else:  # a Tensor or an array (a list is read as an array)
            x = x if hasattr(x, "dtype") else np.asarray(x)
            dt, level = np.dtype(x.dtype), 0 if x.ndim > 0 else 1
        levels[level] = dt if levels[level] is None else promote_types(levels[level], dt)
    result = None
    for dt in levels:
        if dt is not None and (result is None or category(dt) > category(result)):
            result = dt
    assert result is not None, "result_type needs at least one operand"
    return result


def check(failed: Any, error: Callable[[], Exception]) -> None:
    """Raise ``error()`` if the 0-d boolean array ``failed`` is true: a check of input data
    (ids, targets in range) that costs a read of the flag.

    On the CPU the flag is read now. On a GPU a read would cost a device→host transfer and a
    wait on every call, so the kernel registry's "check" there keeps the flag on the device and
    raises at the next copy to the host (:mod:`minigrad.kernels.cuda.checks`).
    """
    deferred = registry.lookup("check", backend.device_of(failed))
    if deferred is not None:
        deferred(failed, error)
    elif bool(failed):
        raise error()
