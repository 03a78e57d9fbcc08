"""Reductions over ``dim`` (an int, a tuple, or None for all), with ``keepdim`` as in PyTorch.

Backward first restores the reduced dims as size-1 axes, so ``g`` broadcasts against the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Context, Function


def _expand_grad(g: Any, axes: tuple[int, ...], keepdim: bool) -> Any:
    """Put back the reduced axes as size-1 dims so ``g`` broadcasts against the input."""
    if keepdim or not axes:
        return g
    xp = backend.array_module(g)
    return xp.expand_dims(g, axes)


class Sum(Function):
    """z = Σ_dim x;  dz/dx = 1 (each input element appears once in the sum)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool) -> Any:
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        return xp.broadcast_to(_expand_grad(g, ctx.axes, ctx.keepdim), ctx.shape)


class Mean(Function):
    """z = (1/n) Σ_dim x with n the number of reduced elements;  dz/dx = 1/n."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool) -> Any:
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.n = 1
        for a in axes:
            ctx.n *= x.shape[a]
        return x.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        return xp.broadcast_to(_expand_grad(g, ctx.axes, ctx.keepdim) / ctx.n, ctx.shape)


class Max(Function):
    """z = max_dim x (or min);  dz/dx = 1 at the extreme, shared evenly among ties (torch.amax)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool, mode: str) -> Any:
        z = x.max(axis=axes, keepdims=True) if mode == "max" else x.min(axis=axes, keepdims=True)
        is_extreme = x == z
        ctx.save_for_backward(is_extreme)
        ctx.axes, ctx.keepdim = axes, keepdim
        return z if keepdim else z.squeeze(axis=axes)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (is_extreme,) = ctx.saved
        share = is_extreme / is_extreme.sum(axis=ctx.axes, keepdims=True)
        return (_expand_grad(g, ctx.axes, ctx.keepdim) * share).astype(g.dtype)


class Var(Function):
    """z = Σ_dim (x - x̄)² / (n - correction);  dz/dx = 2(x - x̄) / (n - correction).

    The term through x̄ vanishes because Σ (x - x̄) = 0. ``correction=1`` (the default, as
    PyTorch) gives the unbiased estimate; ``correction=0`` the population variance.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool,
                correction: int) -> Any:
        n = 1
        for a in axes:
            n *= x.shape[a]
        if n - correction <= 0:
            raise ValueError(
                f"var: {n} element(s) over dim {axes} of shape {x.shape} with correction="
                f"{correction} leave no degrees of freedom (the variance is undefined)"
            )
        centered = x - x.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdim, ctx.denom = axes, keepdim, n - correction
        return (centered * centered).sum(axis=axes, keepdims=keepdim) / ctx.denom

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (centered,) = ctx.saved
        return _expand_grad(g, ctx.axes, ctx.keepdim) * (2 / ctx.denom) * centered


# --- reductions (issue 15) -------------------------------------------------------------------
class MaxAlongDim(Function):
    """z = x picked at ``index`` along ``dim``: the values of ``max(dim)`` or ``min(dim)``,
    whose ``index`` (argmax or argmin, first of any ties, as torch) the caller computed;
    dx = g at the picked element, 0 elsewhere (a tie's other elements get nothing, as in torch).

    x (..., n, ...), index (..., 1, ...) -> z (..., ...) or, with ``keepdim``, (..., 1, ...).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, index: Any, dim: int, keepdim: bool) -> Any:
        xp = backend.array_module(x)
        ctx.index, ctx.dim, ctx.keepdim, ctx.n = index, dim, keepdim, x.shape[dim]
        z = xp.take_along_axis(x, index, axis=dim)
        return z if keepdim else z.squeeze(axis=dim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        xp = backend.array_module(g)
        positions = xp.arange(ctx.n).reshape((-1,) + (1,) * (ctx.index.ndim - ctx.dim - 1))
        picked = positions == ctx.index  # one-hot along dim: (..., n, ...)
        return xp.where(picked, _expand_grad(g, (ctx.dim,), ctx.keepdim), g.dtype.type(0))


class Prod(Function):
    """z = Π_dim x;  dz/dx_i = Π_{j≠i} x_j, the product of the others.

    That product is computed as (product of the elements before i) · (product of those after
    i), two exclusive cumulative products, never as z / x_i: so a zero in x gives the right
    gradient (the product of the others at the zero, 0 elsewhere; 0 everywhere with two zeros).
    ``dim`` is one axis; the caller flattens x for a product over every element.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int, keepdim: bool) -> Any:
        ctx.save_for_backward(x)
        ctx.dim, ctx.keepdim = dim, keepdim
        return x.prod(axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        xp, d, n = backend.array_module(x), ctx.dim, x.shape[ctx.dim]
        head = (slice(None),) * d  # the dims before dim
        ones = xp.ones(x.shape[:d] + (1,) + x.shape[d + 1:], dtype=x.dtype)

        def exclusive_cumprod(a: Any) -> Any:  # out_i = Π_{j<i} a_j along dim
            return xp.cumprod(xp.concatenate([ones, a], axis=d), axis=d)[head + (slice(0, n),)]

        reverse = head + (slice(None, None, -1),)
        before = exclusive_cumprod(x)  # Π_{j<i} x_j
        after = exclusive_cumprod(x[reverse])[reverse]  # Π_{j>i} x_j
        return _expand_grad(g, (d,), ctx.keepdim) * before * after


class LogSumExp(Function):
    """z = log Σ_dim exp(x), computed stably as m + log Σ exp(x - m) with m = max_dim x
    (m = 0 where it is ±inf: a row of -inf gives -inf, not NaN; a +inf gives +inf);
    dz/dx = exp(x - z), the softmax of x over dim.

    An empty reduction gives log 0 = -inf, as in torch.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool) -> Any:
        xp = backend.array_module(x)
        if x.size and all(x.shape[a] for a in axes):
            m = x.max(axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, x.dtype.type(0))
        else:
            m = xp.zeros((1,) * x.ndim, dtype=x.dtype)
        with np.errstate(divide="ignore"):  # log 0 = -inf is the answer, not a mistake
            z = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        ctx.save_for_backward(x, z)
        ctx.axes, ctx.keepdim = axes, keepdim
        return z if keepdim else z.squeeze(axis=axes)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        x, z = ctx.saved
        xp = backend.array_module(x)
        return _expand_grad(g, ctx.axes, ctx.keepdim) * xp.exp(x - z)
