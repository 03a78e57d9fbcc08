"""Reductions over ``dim`` (an int, a tuple, or None for all), with ``keepdim`` as in PyTorch.

Backward first restores the reduced dims as size-1 axes, so ``g`` broadcasts against the input.
"""

from __future__ import annotations

from typing import Any

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
