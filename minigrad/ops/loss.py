"""Losses with fused, numerically stable forward and closed-form backward.

Each Function returns the per-example loss; :mod:`minigrad.ops` applies the reduction
(``mean``/``sum``/``none``) with the ordinary differentiable ``sum``. Cross-entropy asks the
kernel registry for a fused kernel as the ops of :mod:`minigrad.ops.nn` do (``ctx.kernel``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.kernels import registry
from minigrad.ops.common import check
from minigrad.ops.elementwise import softplus_of, stable_sigmoid


def _class_ids(op: str, shape: tuple[int, int], target: Any, ignore_index: int) -> tuple:
    """``(valid, t)`` for class-id targets (M,) of scores (M, C): which rows count, and the ids
    with ignored rows set to class 0; an id outside [0, C) is refused, naming it (read at the
    next copy to the host on a GPU)."""
    xp = backend.array_module(target)
    c = shape[1]
    valid = target != ignore_index
    t = xp.where(valid, target, 0)
    out_of_range = (t < 0) | (t >= c)

    def error() -> IndexError:
        bad = backend.to_device(t[out_of_range], "cpu")
        return IndexError(f"{op}: target {int(bad[0])} is out of range for {c} classes "
                          f"(scores of shape {shape}, targets must be in [0, {c - 1}] or "
                          f"ignore_index={ignore_index})")

    check(out_of_range.any(), error)
    return valid, t

class CrossEntropy(Function):
    """Per-row loss ℓ_i = -Σ_c q_ic · log softmax(z_i)_c for logits z (M, C), class ids t (M,).

    The target distribution is q_i = (1-ε)·onehot(t_i) + ε/C (label smoothing ε). Rows whose
    target is ``ignore_index`` give ℓ_i = 0. Because Σ_c q_ic = 1, the gradient is the classic
        dℓ_i/dz_i = softmax(z_i) - q_i        (softmax minus one-hot when ε = 0),
    computed from the log-probabilities saved in forward; no Jacobian is formed.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, z: Any, target: Any, ignore_index: int,
                label_smoothing: float) -> Any:
        xp = backend.array_module(z)
        m, c = z.shape
        valid, t = _class_ids("cross_entropy", z.shape, target, ignore_index)
        ctx.label_smoothing, ctx.ignore_index = label_smoothing, ignore_index
        ctx.kernel = registry.kernel("cross_entropy", z)
        if ctx.kernel is not None:  # one read of each row; keeps its max and log-sum only
            loss, row_max, log_sum = ctx.kernel.forward(z, target, ignore_index,
                                                        label_smoothing)
            ctx.save_for_backward(z, target, row_max, log_sum)
            return loss
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))  # (M, C)
        loss = -(1 - label_smoothing) * logp[xp.arange(m), t]  # (M,)
        if label_smoothing:
            loss = loss - (label_smoothing / c) * logp.sum(axis=1)
        ctx.save_for_backward(logp, t, valid)
        return xp.where(valid, loss, 0)  # not loss·valid: an ignored row's NaN·0 is NaN

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        eps = ctx.label_smoothing
        if ctx.kernel is not None:
            z, target, row_max, log_sum = ctx.saved
            return ctx.kernel.backward(g, z, target, row_max, log_sum, ctx.ignore_index, eps)
        logp, t, valid = ctx.saved
        xp = backend.array_module(logp)
        m, c = logp.shape
        dz = xp.exp(logp)  # softmax
        dz[xp.arange(m), t] -= 1 - eps
        if eps:
            dz -= eps / c
        return xp.where(valid[:, None], dz * g[:, None], 0)


class BinaryCrossEntropy(Function):
    """ℓ = -(y·log p + (1-y)·log(1-p)) for probabilities p and targets y.

    dℓ/dp = -y/p + (1-y)/(1-p) = (p - y) / (p(1-p)),   dℓ/dy = log(1-p) - log p.
    As in PyTorch, each log is clamped at -100 and the denominator at 1e-12, so p = 0 or 1
    gives a finite loss and gradient (dℓ/dy uses the same clamped logs).
    """

    @staticmethod
    def forward(ctx: Context, p: Any, y: Any) -> Any:
        xp = backend.array_module(p)
        log_p = xp.maximum(xp.log(p), -100.0)
        log_1mp = xp.maximum(xp.log(1 - p), -100.0)
        ctx.save_for_backward(p, y, log_p, log_1mp)
        return -(y * log_p + (1 - y) * log_1mp)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        p, y, log_p, log_1mp = ctx.saved
        xp = backend.array_module(p)
        gp = g * (p - y) / xp.maximum(p * (1 - p), 1e-12) if ctx.needs_input_grad[0] else None
        gy = g * (log_1mp - log_p) if ctx.needs_input_grad[1] else None
        return gp, gy


class BinaryCrossEntropyWithLogits(Function):
    """ℓ = BCE(σ(x), y) computed from the logit x without forming σ(x):

        ℓ = max(x, 0) - x·y + log(1 + e^(-|x|)),     dℓ/dx = σ(x) - y,     dℓ/dy = -x.

    Exact for every x (no exp overflows, no log of 0), so ±1e4 give finite values.

    With a positive-class weight p (``pos_weight``, a constant broadcast to x's shape) the
    positive term -y·log σ(x) = y·softplus(-x) is weighted by p, as in torch:

        ℓ_p = ℓ + (p - 1)·y·softplus(-x),
        dℓ_p/dx = (1 + (p - 1)·y)·σ(x) - p·y,     dℓ_p/dy = -x + (p - 1)·softplus(-x).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, y: Any, pos_weight: Any) -> Any:
        xp = backend.array_module(x)
        ctx.save_for_backward(x, y, pos_weight)
        loss = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))
        if pos_weight is None:
            return loss
        return loss + (pos_weight - 1) * y * softplus_of(-x)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        x, y, p = ctx.saved
        gx = gy = None
        if ctx.needs_input_grad[0]:
            s = stable_sigmoid(x)
            gx = g * (s - y if p is None else (1 + (p - 1) * y) * s - p * y)
        if ctx.needs_input_grad[1]:
            gy = -g * x if p is None else g * ((p - 1) * softplus_of(-x) - x)
        return gx, gy


# --- losses (issue 15) -------------------------------------------------------------------------
class NllLoss(Function):
    """Per-row loss ℓ_i = -w_{t_i}·x_{i,t_i} for log-probabilities x (M, C), class ids t (M,)
    and class weights w (C,) (all 1 without ``weight``); rows whose target is ``ignore_index``
    give 0. dℓ_i/dx_{i,c} = -w_{t_i} for c = t_i, else 0 (a scatter of the upstream gradient).
    """

    @staticmethod
    def forward(ctx: Context, x: Any, target: Any, weight: Any, ignore_index: int) -> Any:
        xp = backend.array_module(x)
        m, _ = x.shape
        valid, t = _class_ids("nll_loss", x.shape, target, ignore_index)
        w_t = xp.ones(m, dtype=x.dtype) if weight is None else weight[t]  # (M,)
        w_t = xp.where(valid, w_t, 0)
        ctx.save_for_backward(t, w_t)
        ctx.shape = x.shape
        return -w_t * x[xp.arange(m), t]

    @staticmethod
    def backward(ctx: Context, g: Any) -> Any:
        t, w_t = ctx.saved
        xp = backend.array_module(g)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)  # (M, C)
        dx[xp.arange(t.shape[0]), t] = -g * w_t
        return dx


class SoftCrossEntropy(Function):
    """ℓ = -Σ_c q_c·log softmax(z)_c along ``dim``, for logits z and class probabilities y of
    the same shape (soft labels), with q = (1-ε)·y + ε/C under label smoothing ε.

        dℓ/dz = softmax(z)·Σ_c q_c - q      (softmax(z) - q when q sums to 1),
        dℓ/dy = -(1-ε)·log softmax(z).

    torch does not require y to sum to 1, so neither does this: Σ_c q_c stays in the gradient.
    """

    @staticmethod
    def forward(ctx: Context, z: Any, y: Any, dim: int, label_smoothing: float) -> Any:
        xp = backend.array_module(z)
        c = z.shape[dim]
        shifted = z - z.max(axis=dim, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        q = y if not label_smoothing else (1 - label_smoothing) * y + label_smoothing / c
        ctx.save_for_backward(logp, q)
        ctx.dim, ctx.label_smoothing = dim, label_smoothing
        return -(q * logp).sum(axis=dim)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        logp, q = ctx.saved
        xp = backend.array_module(g)
        g = xp.expand_dims(g, ctx.dim)
        gz = gy = None
        if ctx.needs_input_grad[0]:
            gz = g * (xp.exp(logp) * q.sum(axis=ctx.dim, keepdims=True) - q)
        if ctx.needs_input_grad[1]:
            gy = -(1 - ctx.label_smoothing) * g * logp
        return gz, gy


class KLDiv(Function):
    """Pointwise KL divergence for log-probabilities x and a target t (torch's ``kl_div``):

        ℓ = t·(log t - x),  0 where t = 0 (0·log 0 = 0);  dℓ/dx = -t,  dℓ/dt = log t + 1 - x;
        with ``log_target`` (t given as log t):
        ℓ = eᵗ·(t - x);  dℓ/dx = -eᵗ,  dℓ/dt = eᵗ·(t - x + 1).

    At t = 0 the derivative in t is -∞ (log t → -∞), where torch's is NaN.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, t: Any, log_target: bool) -> Any:
        xp = backend.array_module(x)
        ctx.log_target = log_target
        if log_target:
            et = xp.exp(t)
            ctx.save_for_backward(x, t, et)
            return et * (t - x)
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = -inf, 0·(-inf) = NaN
            log_t = xp.log(t)
            ctx.save_for_backward(x, t, log_t)
            return xp.where(t == 0, 0, t * log_t) - t * x

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        x, t, aux = ctx.saved
        gx = gt = None
        if ctx.log_target:  # aux = eᵗ
            gx = -g * aux if ctx.needs_input_grad[0] else None
            gt = g * aux * (t - x + 1) if ctx.needs_input_grad[1] else None
        else:  # aux = log t, -inf where t = 0
            gx = -g * t if ctx.needs_input_grad[0] else None
            gt = g * (aux + 1 - x) if ctx.needs_input_grad[1] else None
        return gx, gt


class SmoothL1(Function):
    """With d = x - y:  ℓ = ½d²/β where |d| < β, else |d| - ½β  (β = 0: ℓ = |d|);
    dℓ/dx = clip(d/β, -1, 1) (sign d for β = 0) = -dℓ/dy."""

    @staticmethod
    def forward(ctx: Context, x: Any, y: Any, beta: float) -> Any:
        xp = backend.array_module(x)
        d = x - y
        ad = xp.abs(d)
        ctx.save_for_backward(d)
        ctx.beta = beta
        if beta == 0:
            return ad
        return xp.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        (d,) = ctx.saved
        xp = backend.array_module(d)
        slope = xp.sign(d) if ctx.beta == 0 else xp.clip(d / ctx.beta, -1, 1)
        gx = g * slope
        return gx, -gx
