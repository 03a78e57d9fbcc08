"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from minigrad.kernels import registry
from minigrad.optim.optimizer import Optimizer, ParamsT
from minigrad.tensor import Tensor


class SGD(Optimizer):
    r"""Stochastic gradient descent (PyTorch's ``torch.optim.SGD``, same defaults and state).

    With learning rate η and no extras, each step moves θ against its gradient:

        θ_{t+1} = θ_t − η·∇θL

    With weight decay λ, momentum μ, dampening τ and gradient g_t = ∇θL(θ_t):

        g_t ← g_t + λ·θ_t                          (L2 penalty λ/2·‖θ‖², added to the gradient)
        b_1 = g_1;   b_t = μ·b_{t−1} + (1 − τ)·g_t  (momentum buffer, when μ ≠ 0)
        d_t = g_t + μ·b_t   if nesterov,   else  d_t = b_t
        θ_{t+1} = θ_t − η·d_t

    ``state[p]`` holds ``"momentum_buffer"`` (b_t) when μ ≠ 0.

    Where the kernel registry has an ``"sgd_step"`` for the parameter's device and backend (the
    Numba kernel under ``"numba"``), it takes one fused pass in place; the array code below is
    the reference.
    """

    state_keys = ("momentum_buffer",)

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        self._check_nonnegative(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum "
                f"{group['momentum']} and dampening {group['dampening']}"
            )

    def _update_parameter(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        momentum = group["momentum"]
        buf = state.get("momentum_buffer")
        arrays = [a for a in (p.data, grad, buf) if a is not None]
        step = registry.kernel("sgd_step", *arrays)
        if step is not None and all(a.flags.c_contiguous for a in arrays):
            first = buf is None  # one pass, in place
            if momentum != 0 and first:  # the kernel fills it with the first gradient
                buf = state["momentum_buffer"] = p.xp.empty_like(p.data)
            step(p.data, grad, buf if momentum != 0 else None,
                 group["lr"], momentum, group["dampening"], group["weight_decay"],
                 group["nesterov"], 1 if first else 2)  # the kernel asks: first step?
            p._mark_dirty()
            return
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        if momentum != 0:
            if buf is None:  # an array even when 0-d arithmetic gave a NumPy scalar
                buf = state["momentum_buffer"] = p.xp.array(grad, dtype=p.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.sub_(group["lr"] * grad)
