"""Scans along a dim (cumsum, cumprod) and ops that reorder elements (flip, roll), with the
order that sort, argsort and topk share.

sort and topk are :class:`~minigrad.ops.indexing.Gather` by the order :func:`sort_indices`
finds: their values' gradient goes back to the positions the values came from. The ops get their
arguments checked and in canonical form from :mod:`minigrad.ops` (dims in ``[0, ndim)``, 0-d
tensors read as shape (1,)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.dtypes import is_floating


def _scan_dtype(x: Any) -> np.dtype:
    """A float tensor keeps its dtype; integers and bools add up in int64, as in torch."""
    return x.dtype if is_floating(x.dtype) else np.dtype(np.int64)


class Cumsum(Function):
    """z_i = Σ_{k≤i} x_k along ``dim``;  dx_j = Σ_{i≥j} g_i, the cumulative sum of g taken from
    the end (flip, cumsum, flip back). x (..., n, ...) -> z of the same shape."""

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        ctx.dim = dim
        return backend.array_module(x).cumsum(x, axis=dim, dtype=_scan_dtype(x))

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        return xp.flip(xp.cumsum(xp.flip(g, ctx.dim), axis=ctx.dim), ctx.dim)


class Cumprod(Function):
    """z_i = Π_{k≤i} x_k along ``dim``;  dx_j = Σ_{i≥j} g_i ∂z_i/∂x_j = E_j·r_j with

        E_j = Π_{k<j} x_k        (the product before j, an exclusive cumprod)
        r_j = Σ_{i≥j} g_i Π_{j<k≤i} x_k,   computed from the end: r_{n-1} = g_{n-1},
                                            r_j = g_j + x_{j+1}·r_{j+1}.

    No division by x: the usual dx_j = Σ_{i≥j} g_i z_i / x_j is 0/0 wherever x_j = 0, and
    here a zero only zeroes the products that contain it. The recurrence runs one step per
    element of ``dim`` (each step vectorized over the other dims). x (..., n, ...) -> z of the
    same shape.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        ctx.save_for_backward(x)
        ctx.dim = dim
        return backend.array_module(x).cumprod(x, axis=dim, dtype=_scan_dtype(x))

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        xp = backend.array_module(g)
        xs, gs = xp.moveaxis(x, ctx.dim, 0), xp.moveaxis(g, ctx.dim, 0)  # (n, ...)
        before = xp.ones(xs.shape, dtype=g.dtype)  # E
        before[1:] = xp.cumprod(xs[:-1], axis=0)
        after = xp.empty(gs.shape, dtype=g.dtype)  # r
        n = xs.shape[0]
        if n:
            after[n - 1] = gs[n - 1]
        for j in range(n - 2, -1, -1):
            after[j] = gs[j] + xs[j + 1] * after[j + 1]
        return xp.moveaxis(before * after, 0, ctx.dim)


def sort_indices(a: Any, dim: int, descending: bool) -> Any:
    """The int64 indices that sort ``a`` along ``dim``, stably: equal values keep their order,
    NaN sorts as the largest value (last ascending, first descending), as in torch.

    Descending: sort the reversed array stably, then reverse the result (that puts the largest
    first and keeps equal values in their first-to-last order) and map positions in the
    reversed array back (p -> n-1-p). Negating instead would put NaN last and overflow int64's
    smallest value.
    """
    xp = backend.array_module(a)
    if a.ndim == 0:
        return xp.zeros((), dtype=np.int64)
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable").astype(np.int64, copy=False)
    order = xp.argsort(xp.flip(a, dim), axis=dim, kind="stable")
    return (a.shape[dim] - 1 - xp.flip(order, dim)).astype(np.int64, copy=False)


class Flip(Function):
    """z = x with the order of each dim in ``dims`` reversed (a copy, as torch's flip);
    dx = g flipped the same way (flip is its own inverse). x -> z of the same shape."""

    @staticmethod
    def forward(ctx: Context, x: Any, dims: tuple[int, ...]) -> Any:
        ctx.dims = dims
        return backend.array_module(x).flip(x, dims).copy()

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return backend.array_module(g).flip(g, ctx.dims)


class Roll(Function):
    """z = x with the elements of each dim in ``dims`` shifted by ``shifts`` (those pushed off
    the end come back at the start; dims None: x flattened, rolled, reshaped);
    dx = g rolled back by -shifts. x -> z of the same shape."""

    @staticmethod
    def forward(ctx: Context, x: Any, shifts: int | tuple[int, ...],
                dims: tuple[int, ...] | None) -> Any:
        ctx.shifts, ctx.dims = shifts, dims
        return backend.array_module(x).roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        back = -ctx.shifts if isinstance(ctx.shifts, int) else tuple(-s for s in ctx.shifts)
        return backend.array_module(g).roll(g, back, axis=ctx.dims)
