"""Ops that pick or place elements by integer index or mask: gather, scatter, scatter_add,
index_select, masked_select.

Each backward sends the gradient back along the same index: what a forward picks, its backward
scatters (adding where an element was picked twice); what a forward places, its backward picks.
The ops get their arguments checked and in canonical form from :mod:`minigrad.ops` (indices
integer and in range, dims in ``[0, ndim)``, 0-d tensors read as shape (1,)).
"""

from __future__ import annotations

import math
from typing import Any

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.ops.common import unbroadcast


def along(index: Any, dim: int) -> tuple[Any, ...]:
    """The advanced index that pairs each element of ``index`` with its own position in every
    other dim: for a 3-D ``index`` and dim 1, element (i, j, k) names (i, index[i, j, k], k).
    Indexing an array with it gives an array of ``index``'s shape."""
    xp = backend.array_module(index)
    grid = [xp.arange(n).reshape(tuple(n if a == d else 1 for a in range(index.ndim)))
            for d, n in enumerate(index.shape)]
    grid[dim] = index
    return tuple(grid)


def _leading(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The slice that keeps the first shape[d] elements of every dim d."""
    return tuple(slice(0, n) for n in shape)


class Gather(Function):
    """z[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (the index replaces the coordinate of
    ``dim``), z of index's shape;  dx = zeros, then dx[..., index, ...] += g.

    x (..., n, ...), index (..., m, ...) with index.shape[d] ≤ x.shape[d] for d ≠ dim ->
    z of index's shape. An element picked twice gets both gradients (a scatter-add).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, index: Any, dim: int) -> Any:
        ctx.shape, ctx.picked = x.shape, along(index, dim)
        return x[ctx.picked]

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        gx = backend.array_module(g).zeros(ctx.shape, dtype=g.dtype)
        backend.scatter_add(gx, ctx.picked, g)
        return gx


def _src_part(src: Any, shape: tuple[int, ...]) -> Any:
    """The leading block of ``src`` that the index covers (a number becomes that block)."""
    if src.ndim == 0:
        return backend.array_module(src).broadcast_to(src, shape)
    return src[_leading(shape)]


def _linear(position: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    """The row-major offset in an array of ``shape`` of each position (an advanced index)."""
    offset, stride = 0, 1
    for p, n in zip(reversed(position), reversed(shape), strict=True):
        offset = offset + p * stride
        stride *= n
    return offset


class Scatter(Function):
    """z = x with z[i][index[i][j]] = src[i][j] for dim 1 (out of place);
    dx = g where nothing was written, 0 where src was;  dsrc[i][j] = g[i][index[i][j]] for the
    element that was written, 0 for the rest.

    x (..., n, ...), index (..., m, ...) with index.shape[d] ≤ x.shape[d] for d ≠ dim, and src
    at least index's size in every dim (only its leading block of index's shape is read), or a
    number -> z of x's shape.

    A repeated index: torch leaves undefined which of the src elements aimed at one position is
    written (and its backward gives each of them the gradient there, as though each had won).
    minigrad defines it: the last of them in index's row-major order is written, on NumPy and on
    CuPy alike, and only that element gets the gradient, the true derivative of this forward.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, src: Any, index: Any, dim: int) -> Any:
        xp = backend.array_module(x)
        offsets = _linear(along(index, dim), x.shape).reshape(-1)
        # the last write to each offset: sort the offsets stably, keep the end of each run
        order = xp.argsort(offsets, kind="stable")
        ends = xp.ones(order.shape, dtype=bool)
        ends[:-1] = offsets[order][1:] != offsets[order][:-1]
        ctx.winners = order[ends]  # positions in the flattened index (and src block)
        ctx.written = offsets[ctx.winners]  # distinct offsets in z
        ctx.index_shape, ctx.src_shape = index.shape, src.shape
        z = x.copy()  # C order, so reshape(-1) is a view
        z.reshape(-1)[ctx.written] = _src_part(src, index.shape).reshape(-1)[ctx.winners]
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        xp = backend.array_module(g)
        g_written = g.reshape(-1)[ctx.written]
        gx = gsrc = None
        if ctx.needs_input_grad[0]:
            gx = g.copy()
            gx.reshape(-1)[ctx.written] = 0
        if ctx.needs_input_grad[1]:
            block = xp.zeros(math.prod(ctx.index_shape), dtype=g.dtype)
            block[ctx.winners] = g_written
            gsrc = xp.zeros(ctx.src_shape, dtype=g.dtype)
            gsrc[_leading(ctx.index_shape)] = block.reshape(ctx.index_shape)
        return gx, gsrc


class ScatterAdd(Function):
    """z = x with z[i][index[i][j]] += src[i][j] for dim 1 (out of place; repeated indices
    accumulate);  dx = g,  dsrc[i][j] = g[i][index[i][j]] (a gather).

    Shapes as :class:`Scatter`; src must be a tensor.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, src: Any, index: Any, dim: int) -> Any:
        ctx.placed, ctx.index_shape, ctx.src_shape = along(index, dim), index.shape, src.shape
        z = x.copy()
        backend.scatter_add(z, ctx.placed, _src_part(src, index.shape))
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        gsrc = None
        if ctx.needs_input_grad[1]:
            gsrc = backend.array_module(g).zeros(ctx.src_shape, dtype=g.dtype)
            gsrc[_leading(ctx.index_shape)] = g[ctx.placed]
        return g, gsrc


class IndexSelect(Function):
    """z = x with its dim ``dim`` replaced by the entries index[0], index[1], ... of that dim;
    dx = zeros, then dx[..., index[k], ...] += g[..., k, ...] (a repeated entry accumulates).

    x (..., n, ...), index (m,) -> z (..., m, ...).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, index: Any, dim: int) -> Any:
        ctx.shape, ctx.index, ctx.dim = x.shape, index, dim
        return backend.array_module(x).take(x, index, axis=dim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        gx = xp.zeros(ctx.shape, dtype=g.dtype)
        # with dim moved to the front, entries are rows: the row-wise scatter-add
        backend.scatter_add(xp.moveaxis(gx, ctx.dim, 0), ctx.index, xp.moveaxis(g, ctx.dim, 0))
        return gx


class MaskedSelect(Function):
    """z = the elements of x where mask is True, in row-major order, x and mask broadcast to
    one shape first;  dx = zeros of that shape with g put back where mask is True, then summed
    back to x's shape (an element broadcast to several selected places gets each gradient).

    x and a bool mask that broadcast together to ``shape`` -> z (the number of True in the
    broadcast mask,).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, mask: Any, shape: tuple[int, ...]) -> Any:
        xp = backend.array_module(x)
        ctx.shape, ctx.mask = x.shape, xp.broadcast_to(mask, shape)
        return xp.broadcast_to(x, shape)[ctx.mask]

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        full = backend.array_module(g).zeros(ctx.mask.shape, dtype=g.dtype)
        full[ctx.mask] = g
        return unbroadcast(full, ctx.shape)
