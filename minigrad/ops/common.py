"""Helpers shared by the ops: reducing broadcast gradients, normalizing ``dim`` arguments."""

from __future__ import annotations

from typing import Any

import numpy as np


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
    """A dimension index in ``[0, ndim)``, accepting negative ``dim`` as PyTorch does."""
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(
            f"{op}: dim {dim} is out of range for a tensor of shape {shape} "
            f"(expected a dim in [{-max(ndim, 1)}, {max(ndim, 1) - 1}])"
        )
    return dim % ndim if ndim else 0


def normalize_dims(dim: int | tuple[int, ...] | list[int] | None, ndim: int, op: str,
                   shape: tuple[int, ...]) -> tuple[int, ...]:
    """``dim=None`` means every dimension; otherwise a sorted tuple of distinct dims."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(sorted({normalize_dim(d, ndim, op, shape) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} repeats a dimension (tensor shape {shape})")
    return axes


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``shapes`` broadcast to, or an error that names the op and every shape."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{op}: shapes {listed} cannot be broadcast together") from None
