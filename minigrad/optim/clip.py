"""Gradient clipping by the global norm (PyTorch's ``torch.nn.utils.clip_grad_norm_``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from minigrad import backend
from minigrad.tensor import Tensor


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    r"""Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm treats every gradient as one long vector g (an ∞ norm is the largest |gᵢ|):

        ‖g‖_p = (Σ_params ‖g_param‖_pᵖ)^(1/p)
        g ← g · min(1, max_norm / (‖g‖_p + 1e-6))

    Gradients are scaled in place; parameters whose ``.grad`` is None are skipped. Returns the
    total norm before clipping, as a float. A NaN or infinite norm raises RuntimeError when
    ``error_if_nonfinite``; otherwise, as in PyTorch, it is used as is (an infinite norm zeroes
    the finite gradients, a NaN one makes them all NaN).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    devices = {backend.device_of(g) for g in grads}
    if len(devices) > 1:
        raise backend.DeviceError(f"clip_grad_norm_: gradients on several devices {devices}")
    xp = backend.array_module(grads[0])

    nonempty = [g for g in grads if g.size > 0]  # an empty gradient adds nothing to any norm
    if not nonempty:
        return 0.0
    if norm_type == math.inf:
        norms = xp.stack([xp.abs(g).max() for g in nonempty])  # one 0-d array per parameter
        total_norm = float(norms.max())
    else:
        norms = xp.stack([xp.sum(xp.abs(g) ** norm_type) ** (1 / norm_type) for g in nonempty])
        total_norm = float(xp.sum(norms**norm_type) ** (1 / norm_type))

    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients of {len(grads)} parameters is "
            f"{total_norm}, so they cannot be clipped; set error_if_nonfinite=False to scale them "
            "by it anyway"
        )
    clip_coef = max_norm / (total_norm + 1e-6)
    if clip_coef < 1.0 or math.isnan(clip_coef):
        for g in grads:
            g *= clip_coef
    return total_norm
