"""Ops that move elements without changing them: reshape, permute, expand, indexing, cat, stack.

Their backward passes move the gradient back to where each element came from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.ops.common import unbroadcast


class Reshape(Function):
    """z = x viewed with another shape (same elements, same order);  g is reshaped back."""

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) as "
                f"shape {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return g.reshape(ctx.shape)


class Permute(Function):
    """z = x with its axes reordered by ``dims``;  g is permuted by the inverse order."""

    @staticmethod
    def forward(ctx: Context, x: Any, dims: tuple[int, ...]) -> Any:
        ctx.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return g.transpose(ctx.inverse)


class Expand(Function):
    """z = x broadcast to ``shape`` (no copy);  g is summed back over the broadcast axes."""

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = x.shape
        return backend.array_module(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return unbroadcast(g, ctx.shape)


def _is_basic(index: tuple) -> bool:
    """True when the index has only ints, slices, None and Ellipsis (no element is repeated)."""
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in index)


class GetItem(Function):
    """z = x[index];  dx = zeros, then dx[index] += g.

    With integer arrays an element may be picked twice; its gradient is then the sum of both
    picks, which ``np.add.at`` (``scatter_add``) accumulates and plain ``dx[index] = g`` would not.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, index: tuple) -> Any:
        ctx.shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as exc:
            raise IndexError(f"index into a tensor of shape {x.shape}: {exc}") from None

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        gx = xp.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic(ctx.index):
            gx[ctx.index] = g
        else:
            backend.scatter_add(gx, ctx.index, g)
        return gx


class Cat(Function):
    """z = the inputs joined along ``dim``;  each input gets its slice of g back."""

    @staticmethod
    def forward(ctx: Context, *xs: Any, dim: int) -> Any:
        first = xs[0].shape
        for x in xs[1:]:
            if x.ndim != len(first) or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, first, strict=True)) if i != dim
            ):
                shapes = ", ".join(str(y.shape) for y in xs)
                raise ValueError(
                    f"cat: tensors must match in every dim except dim {dim}; got shapes {shapes}"
                )
        ctx.dim = dim
        ctx.splits = np.cumsum([x.shape[dim] for x in xs])[:-1]
        return backend.array_module(xs[0]).concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        return tuple(backend.array_module(g).split(g, ctx.splits, axis=ctx.dim))


class Stack(Function):
    """z = the inputs stacked along a new axis ``dim``;  input i gets g[..., i, ...] back."""

    @staticmethod
    def forward(ctx: Context, *xs: Any, dim: int) -> Any:
        if any(x.shape != xs[0].shape for x in xs):
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(f"stack: every tensor must have the same shape; got {shapes}")
        ctx.dim = dim
        return backend.array_module(xs[0]).stack(xs, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        xp = backend.array_module(g)
        return tuple(xp.take(g, i, axis=ctx.dim) for i in range(g.shape[ctx.dim]))


def _select(a: Any, stages: tuple[tuple, ...]) -> Any:
    """``a`` indexed by each stage in turn; every stage but the last is basic, so a view."""
    for stage in stages[:-1]:
        a = a[stage]
    return a


class SetItem(Function):
    """z = x with z[index] = v (v broadcast to the shape of x[index]);
    dx = g with dx[index] = 0 (those elements were overwritten),  dv = g[index] summed back to
    v's shape. ``stages`` is the index as :func:`minigrad.ops._canonical_index` splits it.
    (With an integer array that names an element twice, the last write wins, in forward and in
    backward alike, as NumPy assigns.)"""

    @staticmethod
    def forward(ctx: Context, x: Any, v: Any, stages: tuple[tuple, ...]) -> Any:
        z = x.copy()
        target = _select(z, stages)
        try:
            target[stages[-1]] = v
        except (IndexError, ValueError) as exc:
            raise type(exc)(f"setting items of a tensor of shape {x.shape} to a value of shape "
                            f"{tuple(v.shape)}: {exc}") from None
        ctx.stages, ctx.v_shape = stages, v.shape
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        stages = ctx.stages
        gv = None
        if ctx.needs_input_grad[1]:
            gv = unbroadcast(_select(g, stages)[stages[-1]], ctx.v_shape)
        gx = g.copy()
        _select(gx, stages)[stages[-1]] = 0
        return gx, gv
