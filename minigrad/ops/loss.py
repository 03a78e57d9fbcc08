"""Losses with fused, numerically stable forward and closed-form backward.

Each Function returns the per-example loss; :mod:`minigrad.ops` applies the reduction
(``mean``/``sum``/``none``) with the ordinary differentiable ``sum``. Cross-entropy asks the
kernel registry for a fused kernel as the ops of :mod:`minigrad.ops.nn` do (``ctx.kernel``).
"""

from __future__ import annotations

from typing import Any

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.kernels import registry
from minigrad.ops.common import check
from minigrad.ops.elementwise import stable_sigmoid


class CrossEntropy(Function):
    """Per-row loss ℓ_i = -Σ_c q_ic · log softmax(z_i)_c for logits z (M, C), class ids t (M,).

    The target distribution is q_i = (1-ε)·onehot(t_i) + ε/C (label smoothing ε). Rows whose
    target is ``ignore_index`` give ℓ_i = 0. Because Σ_c q_ic = 1, the gradient is the classic
        dℓ_i/dz_i = softmax(z_i) - q_i        (softmax minus one-hot when ε = 0),
    computed from the log-probabilities saved in forward; no Jacobian is formed.
    """

    @staticmethod
    def forward(ctx: Context, z: Any, target: Any, ignore_index: int,
                label_smoothing: float) -> Any:
        xp = backend.array_module(z)
        m, c = z.shape
        valid = target != ignore_index
        t = xp.where(valid, target, 0)
        out_of_range = (t < 0) | (t >= c)

        def error() -> IndexError:
            bad = backend.to_device(t[out_of_range], "cpu")
            return IndexError(
                f"cross_entropy: target {int(bad[0])} is out of range for {c} classes "
                f"(logits of shape {z.shape}, targets must be in [0, {c - 1}] or "
                f"ignore_index={ignore_index})")

        check(out_of_range.any(), error)
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
    """

    @staticmethod
    def forward(ctx: Context, x: Any, y: Any) -> Any:
        xp = backend.array_module(x)
        ctx.save_for_backward(x, y)
        return xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        x, y = ctx.saved
        gx = g * (stable_sigmoid(x) - y) if ctx.needs_input_grad[0] else None
        gy = -g * x if ctx.needs_input_grad[1] else None
        return gx, gy
