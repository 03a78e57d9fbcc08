"""Adam, and AdamW (Adam with decoupled weight decay)."""

from __future__ import annotations

import math
from typing import Any

from minigrad.kernels import registry
from minigrad.optim.optimizer import Optimizer, ParamsT
from minigrad.tensor import Tensor


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as PyTorch's ``torch.optim.Adam``: same defaults and state.

    With learning rate η, betas (β₁, β₂), eps ε, weight decay λ and gradient g_t = ∇θL(θ_{t−1})
    at step t = 1, 2, ...:

        g_t ← g_t + λ·θ_{t−1}                     (L2 penalty added to the gradient)
        m_t = β₁·m_{t−1} + (1 − β₁)·g_t            (first moment, m_0 = 0)
        v_t = β₂·v_{t−1} + (1 − β₂)·g_t²           (second moment, v_0 = 0)
        m̂_t = m_t / (1 − β₁ᵗ),   v̂_t = v_t / (1 − β₂ᵗ)   (bias corrections)
        θ_t = θ_{t−1} − η·m̂_t / (√v̂_t + ε)

    With ``decoupled_weight_decay=True`` (that is :class:`AdamW`) the decay skips the moments and
    shrinks θ directly: θ_{t−1} ← θ_{t−1}·(1 − η·λ), then the update above with λ = 0.

    ``state[p]`` holds ``"step"`` (t, an int), ``"exp_avg"`` (m_t) and ``"exp_avg_sq"`` (v_t).

    Where the kernel registry has an update for the parameter's device and backend
    (``"adam_step"``, or ``"adamw_step"`` with decoupled decay: the Numba kernel on the CPU, a
    CUDA or CuPy kernel for AdamW on a GPU), it takes one fused pass over θ, g, m and v in
    place; the array code below is the reference it is tested against.
    """

    state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, *, decoupled_weight_decay: bool = False):
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        self._check_nonnegative(group, "lr", "eps", "weight_decay")
        if len(group["betas"]) != 2:
            raise ValueError(f"{name}: betas must be a pair (β₁, β₂), got {group['betas']}")
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta at index {i}: {beta} (must be in [0, 1))")

    def _update_parameter(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        xp = p.xp
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]

        op = "adamw_step" if group["decoupled_weight_decay"] else "adam_step"
        step = registry.kernel(op, p.data, grad, m, v)
        if step is not None and all(a.flags.c_contiguous for a in (p.data, grad, m, v)):
            step(p.data, grad, m, v, lr, beta1, beta2, eps, weight_decay, t)  # one pass, in place
            p._mark_dirty()
            return
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * p.data
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad

        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        denom = xp.sqrt(v) / math.sqrt(bias_correction2) + eps  # √v̂_t + ε
        p.sub_((lr / bias_correction1) * m / denom)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Each step first shrinks the parameter, then takes Adam's step without any L2 term:

        θ_{t−1} ← θ_{t−1}·(1 − η·λ)
        m_t = β₁·m_{t−1} + (1 − β₁)·g_t,   v_t = β₂·v_{t−1} + (1 − β₂)·g_t²
        θ_t = θ_{t−1} − η·(m_t / (1 − β₁ᵗ)) / (√(v_t / (1 − β₂ᵗ)) + ε)

    Unlike Adam's L2 term, the decay is not divided by √v̂_t, so every weight decays at the same
    rate whatever the size of its gradients. The default λ is 1e-2.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
