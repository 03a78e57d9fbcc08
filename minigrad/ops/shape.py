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


# --- shape ops (issue 15) --------------------------------------------------------------------
def _along(axis: int, index: Any) -> tuple:
    """An index that applies ``index`` (a slice or an int) to ``axis`` and keeps the rest."""
    return (slice(None),) * axis + (index,)


class Triangle(Function):
    """z = x on and below (``upper=False``: tril) or on and above (``upper=True``: triu) the
    ``diagonal``-th diagonal of the last two dims, 0 elsewhere;  dx = g with the same mask.

    x (..., n, m) -> z (..., n, m). tril keeps x[..., i, j] where j ≤ i + diagonal, triu where
    j ≥ i + diagonal. A mask chooses with ``where``, so ``inf`` outside it becomes 0, not NaN.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, diagonal: int, upper: bool) -> Any:
        xp = backend.array_module(x)
        n, m = x.shape[-2:]
        below = xp.tri(n, m, diagonal - 1 if upper else diagonal, dtype=bool)  # j ≤ i + k
        ctx.keep = ~below if upper else below  # (n, m), broadcast over the batch dims
        return xp.where(ctx.keep, x, x.dtype.type(0))

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return backend.array_module(g).where(ctx.keep, g, g.dtype.type(0))


class Repeat(Function):
    """z = x tiled ``sizes[d]`` times along each dim d (``Tensor.repeat``, NumPy's ``tile``);
    dx = g summed over the copies.

    x (s_0, ..., s_k) is first viewed with leading 1s to len(sizes) dims; z has shape
    (r_0·s_0, r_1·s_1, ...). Backward views g as (r_0, s_0, r_1, s_1, ...) and sums the r axes.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, sizes: tuple[int, ...]) -> Any:
        ctx.shape = x.shape
        ctx.padded = (1,) * (len(sizes) - x.ndim) + x.shape
        ctx.sizes = sizes
        return backend.array_module(x).tile(x.reshape(ctx.padded), sizes)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        pairs = tuple(n for rs in zip(ctx.sizes, ctx.padded, strict=True) for n in rs)
        copies = tuple(range(0, len(pairs), 2))  # the r axes of (r_0, s_0, r_1, s_1, ...)
        return g.reshape(pairs).sum(axis=copies).reshape(ctx.shape)


_NUMPY_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


class Pad(Function):
    """z = x with ``widths[d] = (before, after)`` elements added at each end of dim d.

    x (s_0, ...) -> z (s_0 + before_0 + after_0, ...). The added elements are ``value``
    (constant), the mirror image of x without its edge element (reflect: x_2 x_1 | x_0 x_1 ...),
    or copies of the edge element (replicate: x_0 x_0 | x_0 x_1 ...). A negative width (constant
    mode only) removes elements instead.

    dx: the gradient of the kept elements is g's interior; reflect and replicate also add each
    padded element's gradient to the element it copies: the mirrored slices of g, reversed,
    onto x_1..x_before and x_{n-1-after}..x_{n-2}; the sums of the padded slices onto x_0 and
    x_{n-1}. Removed elements get 0.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, widths: tuple[tuple[int, int], ...], mode: str,
                value: float) -> Any:
        xp = backend.array_module(x)
        ctx.shape, ctx.widths, ctx.mode = x.shape, widths, mode
        ctx.crop = tuple(slice(max(-b, 0), n - max(-a, 0))
                         for (b, a), n in zip(widths, x.shape, strict=True))
        added = tuple((max(b, 0), max(a, 0)) for b, a in widths)
        extra = {"constant_values": value} if mode == "constant" else {}
        added = added or 0  # a 0-d tensor: NumPy's pad refuses widths ()
        return xp.pad(x[ctx.crop], added, mode=_NUMPY_PAD_MODES[mode], **extra)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        for axis, (b, a) in enumerate(ctx.widths):
            b, a = max(b, 0), max(a, 0)
            n = g.shape[axis] - b - a  # the length of this dim after the crop
            inner = g[_along(axis, slice(b, b + n))]
            if ctx.mode != "constant" and (b or a):
                inner = inner.copy()
                left, right = g[_along(axis, slice(0, b))], g[_along(axis, slice(b + n, None))]
                if ctx.mode == "reflect":  # output i < b copied x_{b-i}; b+n+k copied x_{n-2-k}
                    reverse = _along(axis, slice(None, None, -1))
                    inner[_along(axis, slice(1, b + 1))] += left[reverse]
                    inner[_along(axis, slice(n - 1 - a, n - 1))] += right[reverse]
                else:  # replicate: every padded element copied the edge
                    inner[_along(axis, 0)] += left.sum(axis=axis)
                    inner[_along(axis, n - 1)] += right.sum(axis=axis)
            g = inner
        if g.shape == ctx.shape:
            return g
        gx = xp.zeros(ctx.shape, dtype=g.dtype)
        gx[ctx.crop] = g
        return gx
