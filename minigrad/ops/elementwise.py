"""Elementwise ops: arithmetic with broadcasting, and the unary functions.

Notation: ``g`` is the gradient arriving from the output, ``z`` the output. Binary ops pass each
input's gradient through :func:`unbroadcast`, so broadcasting works in backward as in forward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.ops.common import broadcast_shape, unbroadcast


def _check_shapes(op: str, a: Any, b: Any) -> None:
    if a.shape != b.shape:
        broadcast_shape(op, a.shape, b.shape)


class Add(Function):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("add", a, b)
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("sub", a, b)
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(-g, sb)


class Mul(Function):
    """z = a * b;  dz/da = b, dz/db = a. Each factor is saved only if the other's gradient is
    wanted (``x * 2`` keeps nothing of x, so a later in-place write to x does not matter)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("mul", a, b)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(b if need_a else None, a if need_b else None)
        ctx.shapes = a.shape, b.shape
        return a * b

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        b, a = ctx.saved
        sa, sb = ctx.shapes
        ga = unbroadcast(g * b, sa) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(g * a, sb) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """z = a / b;  dz/da = 1/b, dz/db = -a/b² = -z/b (so a itself is never saved)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("div", a, b)
        z = a / b
        ctx.save_for_backward(b, z if ctx.needs_input_grad[1] else None)
        ctx.shapes = a.shape, b.shape
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        b, z = ctx.saved
        sa, sb = ctx.shapes
        ga = unbroadcast(g / b, sa) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-g * z / b, sb) if ctx.needs_input_grad[1] else None
        return ga, gb


class PowScalar(Function):
    """z = x^p for a constant p (a Python number: it never widens x's dtype);
    dz/dx = p·x^(p-1), and 0 for p = 0 (x⁰ = 1 everywhere, 0⁰ included, as in torch)."""

    @staticmethod
    def forward(ctx: Context, x: Any, p: float) -> Any:
        ctx.save_for_backward(x)
        ctx.p = p
        return x**p

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        p = ctx.p
        if p == 0:
            return g * 0
        with np.errstate(divide="ignore", invalid="ignore"):  # 0^(p-1) = inf for p < 1
            return g * p * x ** (p - 1)


class Pow(Function):
    """z = a^b, both tensors;  dz/da = b·a^(b-1), dz/db = z·ln a.

    At the boundary, PyTorch's conventions (0⁰ = 1, no NaN where the limit exists):
    dz/da = 0 where b = 0 (a^0 is constant in a, even at a = 0, where b·a^(b-1) is 0·∞), and
    dz/db = 0 where a = 0 and b ≥ 0 (z·ln a → 0·(-∞); the limit of 0^b for b → 0⁺ and the
    zero of 0^b beyond).
    """

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("pow", a, b)
        z = a**b
        ctx.save_for_backward(a, b, z)
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        a, b, z = ctx.saved
        xp = backend.array_module(a)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                ga = unbroadcast(xp.where(b == 0, 0, g * b * a ** (b - 1)), a.shape)
            if ctx.needs_input_grad[1]:
                gb = unbroadcast(xp.where((a == 0) & (b >= 0), 0, g * z * xp.log(a)), b.shape)
        return ga, gb


class Maximum(Function):
    """z = max(a, b);  the gradient goes to the larger input, split evenly on a tie (as torch)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("maximum", a, b)
        ctx.save_for_backward(a, b)
        xp = backend.array_module(a)
        return xp.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        a, b = ctx.saved
        share_a = (a > b).astype(g.dtype) + 0.5 * (a == b).astype(g.dtype)
        return unbroadcast(g * share_a, a.shape), unbroadcast(g * (1 - share_a), b.shape)


class Neg(Function):
    """z = -x;  dz/dx = -1."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return -x

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return -g


class Exp(Function):
    """z = eˣ;  dz/dx = eˣ = z."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        z = backend.array_module(x).exp(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (z,) = ctx.saved
        return g * z


class Log(Function):
    """z = ln x;  dz/dx = 1/x."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.array_module(x).log(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return g / x


class Sqrt(Function):
    """z = √x;  dz/dx = 1/(2√x) = 1/(2z)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        z = backend.array_module(x).sqrt(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (z,) = ctx.saved
        return g / (2 * z)


class Tanh(Function):
    """z = tanh x;  dz/dx = 1 - z²."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        z = backend.array_module(x).tanh(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (z,) = ctx.saved
        return g * (1 - z * z)


def stable_sigmoid(x: Any) -> Any:
    """σ(x) = 1/(1+e⁻ˣ), computed from e^(-|x|) ≤ 1 so that no exp overflows for large |x|."""
    xp = backend.array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    """z = σ(x) = 1/(1+e⁻ˣ);  dz/dx = σ(x)(1-σ(x)) = z(1-z)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        z = stable_sigmoid(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (z,) = ctx.saved
        return g * z * (1 - z)


class Relu(Function):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x > 0)
        return backend.array_module(x).maximum(x, 0)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (positive,) = ctx.saved
        return g * positive


class Abs(Function):
    """z = |x|;  dz/dx = sign(x) (0 at x = 0, as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.array_module(x).abs(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return g * backend.array_module(x).sign(x)


class Clip(Function):
    """z = min(max(x, lo), hi);  dz/dx = 1 where lo ≤ x ≤ hi, else 0 (as torch.clamp)."""

    @staticmethod
    def forward(ctx: Context, x: Any, lo: float | None, hi: float | None) -> Any:
        xp = backend.array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        ctx.save_for_backward(inside)
        return xp.clip(x, lo, hi).astype(x.dtype, copy=False)  # NumPy clips bfloat16 in float32

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (inside,) = ctx.saved
        return g * inside


class Where(Function):
    """z = cond ? a : b;  dz/da = cond, dz/db = not cond (``cond`` is constant)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any, cond: Any) -> Any:
        broadcast_shape("where", cond.shape, a.shape, b.shape)
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return backend.array_module(a).where(cond, a, b)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        (cond,) = ctx.saved
        sa, sb = ctx.shapes
        xp = backend.array_module(g)
        ga = unbroadcast(xp.where(cond, g, 0), sa) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(xp.where(cond, 0, g), sb) if ctx.needs_input_grad[1] else None
        return ga, gb


class MaskedFill(Function):
    """z = value where mask, else x;  dz/dx = not mask. ``mask`` broadcasts to x's shape."""

    @staticmethod
    def forward(ctx: Context, x: Any, mask: Any, value: float) -> Any:
        if broadcast_shape("masked_fill", x.shape, mask.shape) != x.shape:
            raise ValueError(
                f"masked_fill: mask of shape {mask.shape} does not broadcast to the tensor's "
                f"shape {x.shape}"
            )
        ctx.save_for_backward(mask)
        xp = backend.array_module(x)
        return xp.where(mask, x.dtype.type(value), x)  # a scalar: no copy to a GPU

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (mask,) = ctx.saved
        return backend.array_module(g).where(mask, 0, g)


class Cast(Function):
    """z = x converted to another dtype;  the gradient is converted back."""

    @staticmethod
    def forward(ctx: Context, x: Any, dtype: Any) -> Any:
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return g.astype(ctx.dtype)


class ToDevice(Function):
    """z = x copied to another device;  the gradient is copied back."""

    @staticmethod
    def forward(ctx: Context, x: Any, device: str) -> Any:
        ctx.device = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return backend.to_device(g, ctx.device)


# --- elementwise ops (issue 15) ----------------------------------------------------------------
class Minimum(Function):
    """z = min(a, b);  the gradient goes to the smaller input, split evenly on a tie (as torch)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        _check_shapes("minimum", a, b)
        ctx.save_for_backward(a, b)
        return backend.array_module(a).minimum(a, b)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        a, b = ctx.saved
        share_a = (a < b).astype(g.dtype) + 0.5 * (a == b).astype(g.dtype)
        return unbroadcast(g * share_a, a.shape), unbroadcast(g * (1 - share_a), b.shape)


def softplus_of(x: Any) -> Any:
    """log(1 + eˣ) = max(x, 0) + log(1 + e^(-|x|)): no exp overflows, no log of 0."""
    xp = backend.array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class Silu(Function):
    """z = x·σ(x) (SiLU, "swish");  dz/dx = σ(x)·(1 + x·(1 - σ(x)))."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        s = stable_sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        x, s = ctx.saved
        return g * s * (1 + x * (1 - s))


class Softplus(Function):
    """z = log(1 + e^(βx))/β, and z = x where βx > threshold (torch's switch to the identity);
    dz/dx = σ(βx), and 1 where βx > threshold. The log is taken in the stable form
    max(βx, 0) + log(1 + e^(-|βx|)), so no exp overflows whatever the threshold."""

    @staticmethod
    def forward(ctx: Context, x: Any, beta: float, threshold: float) -> Any:
        bx = x * beta
        linear = bx > threshold
        ctx.save_for_backward(bx, linear)
        return backend.array_module(x).where(linear, x, softplus_of(bx) / beta)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        bx, linear = ctx.saved
        return backend.array_module(g).where(linear, g, g * stable_sigmoid(bx))


class Mish(Function):
    """z = x·tanh(softplus(x));  with t = tanh(softplus(x)),  dz/dx = t + x·σ(x)·(1 - t²)
    (d softplus/dx = σ(x)). softplus in its stable form, so large |x| give x and -0."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        t = backend.array_module(x).tanh(softplus_of(x))
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        x, t = ctx.saved
        return g * (t + x * stable_sigmoid(x) * (1 - t * t))


TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Erf(Function):
    """z = erf(x) = 2/√π ∫₀ˣ e^(-u²) du;  dz/dx = 2/√π · e^(-x²)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.erf(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return g * TWO_OVER_SQRT_PI * backend.array_module(x).exp(-x * x)


class Rsqrt(Function):
    """z = 1/√x;  dz/dx = -½·x^(-3/2) = -½·z³."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        with np.errstate(divide="ignore"):  # rsqrt(0) = inf, as torch
            z = 1 / backend.array_module(x).sqrt(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (z,) = ctx.saved
        return g * (-0.5 * z * z * z)


class Sin(Function):
    """z = sin x;  dz/dx = cos x."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.array_module(x).sin(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return g * backend.array_module(x).cos(x)


class Cos(Function):
    """z = cos x;  dz/dx = -sin x."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.array_module(x).cos(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return -g * backend.array_module(x).sin(x)


class Log1p(Function):
    """z = ln(1 + x), exact for tiny x (where 1 + x rounds to 1);  dz/dx = 1/(1 + x)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.array_module(x).log1p(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return g / (1 + x)


class Expm1(Function):
    """z = eˣ - 1, exact for tiny x;  dz/dx = eˣ, taken as such: z + 1 would cancel to 0 for
    x ≪ 0 (torch's does: its gradient at x = -30 is 0 in float32, this one e⁻³⁰)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.array_module(x).expm1(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        return g * backend.array_module(x).exp(x)


class PiecewiseConstant(Function):
    """z = sign(x), floor(x), ceil(x) or round(x, decimals) (``kind``; round halves to even, as
    torch and NumPy);  dz/dx = 0: the derivative is 0 between the jumps and torch gives 0 at
    them too, so these ops pass no gradient back."""

    @staticmethod
    def forward(ctx: Context, x: Any, kind: str, decimals: int) -> Any:
        xp = backend.array_module(x)
        if kind == "round":
            return xp.round(x, decimals)
        return getattr(xp, kind)(x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        return backend.array_module(g).zeros_like(g)


class Lerp(Function):
    """z = a + w·(b - a), all three broadcast;  dz/da = 1 - w, dz/db = w, dz/dw = b - a.

    Computed as torch does, a + w·(b - a) for |w| < ½ and b - (b - a)·(1 - w) otherwise, so
    w = 1 gives b exactly. ``w`` may be a number (a constant: no gradient).
    """

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any, w: Any) -> Any:
        broadcast_shape("lerp", a.shape, b.shape, w.shape)
        need_w = ctx.needs_input_grad[2]
        ctx.save_for_backward(a if need_w else None, b if need_w else None, w)
        ctx.shapes = a.shape, b.shape, w.shape
        d = b - a
        return backend.array_module(a).where(abs(w) < 0.5, a + w * d, b - d * (1 - w))

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        a, b, w = ctx.saved
        sa, sb, sw = ctx.shapes
        need_a, need_b, need_w = ctx.needs_input_grad
        ga = unbroadcast(g * (1 - w), sa) if need_a else None
        gb = unbroadcast(g * w, sb) if need_b else None
        gw = unbroadcast(g * (b - a), sw) if need_w else None
        return ga, gb, gw


class Hardtanh(Function):
    """z = min(max(x, lo), hi);  dz/dx = 1 where lo < x < hi, else 0 (strictly inside, as
    torch's hardtanh, where ``clamp`` passes the gradient at the bounds too)."""

    @staticmethod
    def forward(ctx: Context, x: Any, lo: float, hi: float) -> Any:
        ctx.save_for_backward((x > lo) & (x < hi))
        z = backend.array_module(x).clip(x, x.dtype.type(lo), x.dtype.type(hi))
        return z.astype(x.dtype, copy=False)  # NumPy clips bfloat16 in float32

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (inside,) = ctx.saved
        return g * inside


class LeakyRelu(Function):
    """z = x where x > 0, else s·x (s the negative slope);  dz/dx = 1 where x > 0, else s."""

    @staticmethod
    def forward(ctx: Context, x: Any, negative_slope: float) -> Any:
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return backend.array_module(x).where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (positive,) = ctx.saved
        return backend.array_module(g).where(positive, g, g * ctx.negative_slope)


class Elu(Function):
    """z = x where x > 0, else α(eˣ - 1);  dz/dx = 1 where x > 0, else αeˣ.
    eˣ - 1 is taken as expm1(min(x, 0)): exact near 0, no overflow for large x; and αeˣ as
    such, not as z + α, which cancels to 0 for x ≪ 0."""

    @staticmethod
    def forward(ctx: Context, x: Any, alpha: float) -> Any:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        xp = backend.array_module(x)
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        xp = backend.array_module(g)
        return xp.where(x > 0, g, g * ctx.alpha * xp.exp(xp.minimum(x, 0)))
