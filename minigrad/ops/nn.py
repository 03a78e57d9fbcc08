"""The neural-network ops: linear, softmax, log-softmax, GELU, bias + GELU, LayerNorm,
attention, embedding, dropout.

Each backward is the O(n) closed form, never a Jacobian. Each op holds its reference math, the
NumPy/CuPy composite through ``xp``. The ops that have fused kernels (softmax, GELU, bias +
GELU, LayerNorm, attention) ask the kernel registry for one in one place, ``ctx.kernel =
registry.kernel("softmax", x)`` (:mod:`minigrad.kernels.registry`: the Numba kernels under the
``"numba"`` backend, the CUDA kernels under ``"cuda"``), then ``if ctx.kernel is not None: ...
else: <the reference>``; the backward follows the same choice through ``ctx.kernel``. Where the
registry has no kernel for the arrays' device and backend, the reference runs: it is what the
kernels are tested against, and what the composite backends compute on NumPy and CuPy arrays.
"""

from __future__ import annotations

import math
from typing import Any

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.kernels import registry

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_COEF = 0.044715


class Linear(Function):
    """y = x·Wᵀ + b for x (..., in), W (out, in), b (out,) or None;  y is (..., out).

    The leading dims of x are flattened into M rows, so each product is one BLAS call:
        forward  Y = X·Wᵀ   (M, in)@(in, out), then Y += b in place
        backward dX = G·W   (M, out)@(out, in),   dW = Gᵀ·X   (out, M)@(M, in),   db = Σ_rows G
    One op instead of matmul, transpose and add: no (M, out) product is kept apart from the
    output, and dW comes out in W's own layout.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any) -> Any:
        x2 = x.reshape(-1, x.shape[-1])  # (M, in), a view when x is contiguous
        y = x2 @ w.T  # (M, out)
        if b is not None:
            y += b
        # dX reads W, dW reads X: a frozen weight (no dW wanted) keeps no activation alive
        ctx.save_for_backward(x2 if ctx.needs_input_grad[1] else None,
                              w if ctx.needs_input_grad[0] else None)
        ctx.x_shape = x.shape
        return y.reshape(x.shape[:-1] + w.shape[:1])

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        x2, w = ctx.saved
        g2 = g.reshape(-1, g.shape[-1])  # (M, out)
        gx = (g2 @ w).reshape(ctx.x_shape) if ctx.needs_input_grad[0] else None
        gw = g2.T @ x2 if ctx.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class Softmax(Function):
    """y_i = exp(x_i - m) / Σ_j exp(x_j - m), m = max_j x_j (so no exp overflows).

    The Jacobian is dy_i/dx_j = y_i(δ_ij - y_j), but it is never formed:
    dx = y ⊙ (g - Σ_j g_j y_j), one pass over the row.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        ctx.kernel = registry.kernel("softmax", x) if dim == x.ndim - 1 else None
        if ctx.kernel is not None:  # one pass per row: max, exp, sum and scale in cache
            y = ctx.kernel.forward(x)
        else:
            xp = backend.array_module(x)
            e = xp.exp(x - x.max(axis=dim, keepdims=True))
            y = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (y,) = ctx.saved
        if ctx.kernel is not None:
            return ctx.kernel.backward(y, g)
        return y * (g - (g * y).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    """z_i = x_i - m - log Σ_j exp(x_j - m)  (the log-sum-exp trick).

    dx = g - softmax(x)·Σ_j g_j, with softmax(x) = exp(z) from the saved output.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

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


def gelu_composite(x: Any, approximate: str) -> Any:
    """GELU(x) from NumPy/CuPy ufuncs (the formulas in :class:`Gelu`)."""
    xp = backend.array_module(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + xp.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEF * x**3)))
    return 0.5 * x * (1 + backend.erf(x * INV_SQRT_2))


def gelu_grad_composite(x: Any, approximate: str) -> Any:
    """GELU'(x) from NumPy/CuPy ufuncs."""
    xp = backend.array_module(x)
    if approximate == "tanh":
        t = xp.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEF * x**3))
        du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_COEF * x * x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
    cdf = 0.5 * (1 + backend.erf(x * INV_SQRT_2))
    pdf = INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    return cdf + x * pdf


class Gelu(Function):
    """GELU(x) = x·Φ(x), Φ the standard normal CDF.

    exact ("none"):  Φ(x) = ½(1 + erf(x/√2)),  dGELU/dx = Φ(x) + x·φ(x), φ(x) = e^(-x²/2)/√(2π).
    "tanh":  GELU(x) ≈ ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³),
             d/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²).
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, x: Any, approximate: str) -> Any:
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        ctx.kernel = registry.kernel("gelu", x)
        if ctx.kernel is not None:  # one pass, vectorized erf/exp
            return ctx.kernel.forward(x, approximate)
        return gelu_composite(x, approximate)

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (x,) = ctx.saved
        if ctx.kernel is not None:
            return ctx.kernel.backward(x, g, ctx.approximate)
        return g * gelu_grad_composite(x, ctx.approximate)


class BiasGelu(Function):
    """y = GELU(x + b) for x (..., F) and a bias b (F,): a linear layer's bias add fused into its
    activation (BERT's feed-forward).

    With z = x + b:  dx = g·GELU'(z),  db = Σ_rows dx  (GELU' as in :class:`Gelu`).
    Only x and b are saved; backward adds them again rather than keeping z as well.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, x: Any, b: Any, approximate: str) -> Any:
        ctx.save_for_backward(x, b)
        ctx.approximate = approximate
        ctx.kernel = registry.kernel("bias_gelu", x, b)
        if ctx.kernel is not None:  # the add and GELU in one pass
            return ctx.kernel.forward(x, b, approximate)
        return gelu_composite(x + b, approximate)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        x, b = ctx.saved
        if ctx.kernel is not None:
            gx, gb = ctx.kernel.backward(x, b, g, ctx.approximate)
        else:
            gx = g * gelu_grad_composite(x + b, ctx.approximate)
            gb = gx.reshape(-1, b.shape[0]).sum(axis=0)
        return gx, gb if ctx.needs_input_grad[1] else None


class LayerNorm(Function):
    """y = x̂·w + b, x̂ = (x - μ)·r, over the last k dims; μ the mean, r = 1/√(σ² + eps).

    With ĝ = g·w and means ⟨·⟩ over the normalized dims, the closed-form backward is
        dx = r·(ĝ - ⟨ĝ⟩ - x̂·⟨ĝ·x̂⟩),   dw = Σ_rows g·x̂,   db = Σ_rows g.
    (μ and r are saved from forward, so backward never recomputes the statistics.)
    A kernel takes one normalized dim (k = 1) with both w and b, as in BERT, and saves its
    backward's arguments: x, w and the row statistics μ, r. The reference saves x̂, r and w.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any, k: int, eps: float) -> Any:
        affine = k == 1 and w is not None and b is not None
        ctx.kernel = registry.kernel("layer_norm", x, w, b) if affine else None
        if ctx.kernel is not None:  # one read of each row
            y, mean, rstd = ctx.kernel.forward(x, w, b, eps)
            ctx.save_for_backward(x, w, mean, rstd)
            return y
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
        if ctx.kernel is not None:  # (dx, dw, db); autograd drops those no input needs
            x, w, mean, rstd = ctx.saved
            return ctx.kernel.backward(g, x, w, mean, rstd)
        xhat, rstd, w = ctx.saved
        axes = ctx.axes
        rows = tuple(range(g.ndim - len(axes)))
        gxhat = g * w if w is not None else g
        gx = rstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                     - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
        gw = (g * xhat).sum(axis=rows) if ctx.needs_input_grad[1] else None
        gb = g.sum(axis=rows) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class ScaledDotProductAttention(Function):
    """Attention per (batch, head): O = (P ⊙ M)·V with
        P = softmax_rows(masked_fill(scale·QKᵀ + F, not attend, finfo.min)),

    for Q (B, A, L, D), K (B, A, S, D), V (B, A, S, Dv) and O (B, A, L, Dv). F is an optional
    float mask added to the scores (``attn_bias``, a constant); "attend" is the key keep-mask
    (B, S), the optional bool ``attn_mask`` (True = attend) and ``is_causal``'s triangle, all
    broadcast to (B, A, L, S) (:class:`~minigrad.kernels.registry.AttentionMasks`). A masked
    score gets weight 0 (a row with every key masked attends uniformly: every score is
    finfo.min; a row that F makes all -inf is NaN). M (B, A, L, S) is an optional dropout mask
    on the weights, keep/(1-p) from a boolean keep-mask (saved as booleans; M is made again for
    backward). With dO given:

        dV = (P ⊙ M)ᵀ·dO,   dP = (dO·Vᵀ) ⊙ M,   dS = P ⊙ (dP - Σ_j dP_j·P_j), 0 where masked
        dQ = scale·dS·K,    dK = scale·dSᵀ·Q                  (the softmax backward of Softmax)

    A kernel (self-attention shapes, L = S and Dv = D) works block by block, every mask kind
    included, instead of streaming (B, A, S, S) arrays through memory as the reference does, op
    by op; it returns the arrays its own backward reads (``saved``: P, or the rows' max and sum
    on the GPU). Every path saves the masks and the dropout keep-mask first, then what its
    backward reads: the reference saves Q, K, V and P.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, q: Any, k: Any, v: Any, key_padding_mask: Any, dropout_keep: Any,
                dropout_p: float, scale: float, attn_mask: Any = None, attn_bias: Any = None,
                is_causal: bool = False) -> Any:
        ctx.scale, ctx.dropout_p, ctx.dtype = scale, dropout_p, q.dtype
        masks = registry.AttentionMasks(
            keep=None if key_padding_mask is None else ~key_padding_mask,  # (B, S)
            attend=attn_mask, bias=attn_bias, causal=is_causal)  # (B|1, A|1, L, S)
        dropout_mask = _dropout_mask(dropout_keep, dropout_p, q.dtype)  # (B, A, L, S) or None
        fused = q.shape == k.shape == v.shape
        ctx.kernel = (registry.kernel("attention", q, k, v, dropout_mask, attn_bias) if fused
                      else None)
        if ctx.kernel is not None:  # QKᵀ, scale, masks, softmax and ·V per (b, a) block
            out, saved = ctx.kernel.forward(q, k, v, masks, scale, dropout_mask,
                                            ctx.requires_grad)
        else:
            xp = backend.array_module(q)
            scores = (q @ k.swapaxes(-1, -2)) * q.dtype.type(scale)  # (B, A, L, S)
            if attn_bias is not None:
                scores = scores + attn_bias
            allowed = masks.allowed(xp, q.shape[2], k.shape[2])
            if allowed is not None:
                scores = xp.where(allowed, scores, xp.finfo(scores.dtype).min)
            e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = e / e.sum(axis=-1, keepdims=True)  # (B, A, L, S)
            out = (probs if dropout_mask is None else probs * dropout_mask) @ v  # (B, A, L, Dv)
            saved = (q, k, v, probs)
        ctx.save_for_backward(masks, dropout_keep, *saved)
        return out

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        masks, dropout_keep, *saved = ctx.saved
        drop = _dropout_mask(dropout_keep, ctx.dropout_p, ctx.dtype)
        if ctx.kernel is not None:
            return ctx.kernel.backward(g, masks, ctx.scale, drop, tuple(saved))
        q, k, v, probs = saved
        xp = backend.array_module(q)
        dropped = probs if drop is None else probs * drop
        gv = dropped.swapaxes(-1, -2) @ g  # (B, A, S, Dv)
        gp = g @ v.swapaxes(-1, -2)  # (B, A, L, S)
        if drop is not None:
            gp = gp * drop
        gs = probs * (gp - (gp * probs).sum(axis=-1, keepdims=True)) * q.dtype.type(ctx.scale)
        allowed = masks.allowed(xp, q.shape[2], k.shape[2])
        if allowed is not None:
            gs = xp.where(allowed, gs, 0)
        return gs @ k, gs.swapaxes(-1, -2) @ q, gv


def _dropout_mask(keep: Any, p: float, dtype: Any) -> Any:
    """keep/(1-p) as ``dtype`` (the kernels' dropout mask), or None without a keep-mask."""
    if keep is None:
        return None
    return keep * dtype.type(0.0 if p == 1.0 else 1.0 / (1.0 - p))


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
    """z = x·m/(1-p), with m_i = 1 (kept, probability 1-p) or 0;  dx = g·m/(1-p).

    The keep-mask m is saved as booleans, a quarter of a float32 mask's memory.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, keep: Any, p: float) -> Any:
        ctx.save_for_backward(keep)
        ctx.scale = x.dtype.type(1.0 / (1.0 - p))
        z = x * ctx.scale
        z *= keep
        return z

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        (keep,) = ctx.saved
        gx = g * ctx.scale
        gx *= keep
        return gx


# --- RMSNorm (issue 15) ------------------------------------------------------------------------
class RMSNorm(Function):
    """y = x̂·w, x̂ = x·r, over the last k dims; r = 1/√(⟨x²⟩ + eps), ⟨·⟩ the mean over them.

    No centering and no bias (LayerNorm without μ and b). With ĝ = g·w (g without w):
        dx = r·(ĝ - x̂·⟨ĝ·x̂⟩),   dw = Σ_rows g·x̂.
    r is saved from forward, so backward never recomputes the statistic.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, k: int, eps: float) -> Any:
        xp = backend.array_module(x)
        axes = tuple(range(x.ndim - k, x.ndim))
        rstd = 1 / xp.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
        xhat = x * rstd
        ctx.save_for_backward(xhat, rstd, w)
        ctx.axes = axes
        return xhat if w is None else xhat * w

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        xhat, rstd, w = ctx.saved
        axes = ctx.axes
        gxhat = g if w is None else g * w
        gx = rstd * (gxhat - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
        rows = tuple(range(g.ndim - len(axes)))
        gw = (g * xhat).sum(axis=rows) if ctx.needs_input_grad[1] else None
        return gx, gw
