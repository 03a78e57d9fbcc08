"""The neural-network ops: softmax, log-softmax, GELU, LayerNorm, embedding, dropout.

Each backward is the O(n) closed form, never a Jacobian.
"""

from __future__ import annotations

import math
from typing import Any

from minigrad import backend
from minigrad.autograd import Context, Function

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_COEF = 0.044715


class Softmax(Function):
    """y_i = exp(x_i - m) / Σ_j exp(x_j - m), m = max_j x_j (so no exp overflows).

    The Jacobian is dy_i/dx_j = y_i(δ_ij - y_j), but it is never formed:
    dx = y ⊙ (g - Σ_j g_j y_j), one pass over the row.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        xp = backend.array_module(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        y = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (y,) = ctx.saved
        return y * (g - (g * y).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    """z_i = x_i - m - log Σ_j exp(x_j - m)  (the log-sum-exp trick).

    dx = g - softmax(x)·Σ_j g_j, with softmax(x) = exp(z) from the saved output.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        xp = backend.array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        z = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(z)
        ctx.dim = dim
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (z,) = ctx.saved
        xp = backend.array_module(z)
        return g - xp.exp(z) * g.sum(axis=ctx.dim, keepdims=True)


class Gelu(Function):
    """GELU(x) = x·Φ(x), Φ the standard normal CDF.

    exact ("none"):  Φ(x) = ½(1 + erf(x/√2)),  dGELU/dx = Φ(x) + x·φ(x), φ(x) = e^(-x²/2)/√(2π).
    "tanh":  GELU(x) ≈ ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³),
             d/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, approximate: str) -> Any:
        xp = backend.array_module(x)
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEF * x**3)))
        return 0.5 * x * (1 + backend.erf(x * INV_SQRT_2))

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        xp = backend.array_module(x)
        if ctx.approximate == "tanh":
            t = xp.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEF * x**3))
            du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEF * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        cdf = 0.5 * (1 + backend.erf(x * INV_SQRT_2))
        pdf = INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return g * (cdf + x * pdf)


class LayerNorm(Function):
    """y = x̂·w + b, x̂ = (x - μ)·r, over the last k dims; μ the mean, r = 1/√(σ² + eps).

    With ĝ = g·w and means ⟨·⟩ over the normalized dims, the closed-form backward is
        dx = r·(ĝ - ⟨ĝ⟩ - x̂·⟨ĝ·x̂⟩),   dw = Σ_rows g·x̂,   db = Σ_rows g.
    (μ and r are saved from forward, so backward never recomputes the statistics.)
    """

    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any, k: int, eps: float) -> Any:
        xp = backend.array_module(x)
        axes = tuple(range(x.ndim - k, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        centered = x - mu
        rstd = 1 / xp.sqrt((centered * centered).mean(axis=axes, keepdims=True) + eps)
        xhat = centered * rstd
        ctx.save_for_backward(xhat, rstd, w)
        ctx.axes = axes
        y = xhat
        if w is not None:
            y = y * w
        if b is not None:
            y = y + b
        return y

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        xhat, rstd, w = ctx.saved
        axes = ctx.axes
        rows = tuple(range(g.ndim - len(axes)))
        gxhat = g * w if w is not None else g
        gx = rstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                     - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
        gw = (g * xhat).sum(axis=rows) if ctx.needs_input_grad[1] else None
        gb = g.sum(axis=rows) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class Embedding(Function):
    """z = W[idx], rows of W (V, D) picked by integer ids idx (...,);  z is (..., D).

    dW = zeros (V, D), then dW[idx] += g: a row picked n times collects n gradients.
    """

    @staticmethod
    def forward(ctx: Context, weight: Any, idx: Any) -> Any:
        ctx.save_for_backward(idx)
        ctx.shape = weight.shape
        return weight[idx]

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (idx,) = ctx.saved
        xp = backend.array_module(g)
        gw = xp.zeros(ctx.shape, dtype=g.dtype)
        backend.scatter_add(gw, idx, g)
        return gw


class Dropout(Function):
    """z = x·m, with m_i = 1/(1-p) kept with probability 1-p and 0 otherwise;  dx = g·m."""

    @staticmethod
    def forward(ctx: Context, x: Any, mask: Any) -> Any:
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (mask,) = ctx.saved
        return g * mask
