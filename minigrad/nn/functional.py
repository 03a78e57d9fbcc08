"""``minigrad.nn.functional``, imported as ``F``: the layers' math as plain functions.

The ops themselves (forward, backward and their math) live in :mod:`minigrad.ops`; this module
gives them PyTorch's names, so ``F.softmax(x, dim=-1)`` reads as it does there.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from minigrad import backend
from minigrad.dtypes import is_floating
from minigrad.ops import (
    bias_gelu,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    elu,
    embedding,
    gelu,
    hardtanh,
    huber_loss,
    kl_div,
    layer_norm,
    leaky_relu,
    linear,
    log_softmax,
    masked_fill,
    mish,
    mse_loss,
    nll_loss,
    one_hot,
    pad,
    relu,
    rms_norm,
    scaled_dot_product_attention,
    sigmoid,
    silu,
    smooth_l1_loss,
    softmax,
    softplus,
    tanh,
)
from minigrad.tensor import Tensor

__all__ = [
    "bias_gelu", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "distillation_loss",
    "dropout", "elu", "embedding", "gelu", "hardtanh", "huber_loss", "kl_div", "layer_norm",
    "leaky_relu", "linear", "linear_gelu", "log_softmax", "mish", "mse_loss", "nll_loss",
    "one_hot", "pad", "relu", "rms_norm", "scaled_dot_product_attention", "sigmoid", "silu",
    "smooth_l1_loss", "softmax", "softplus", "tanh",
]


def linear_gelu(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                approximate: str = "none") -> Tensor:
    """GELU(x Wᵀ + b): a linear layer and its activation, the bias add fused into the GELU
    (:func:`bias_gelu`), as in BERT's feed-forward. The same values as ``gelu(linear(...))``."""
    if bias is None:
        return gelu(linear(x, weight), approximate)
    if bias.shape != weight.shape[:1]:
        raise ValueError(f"linear_gelu: bias has shape {bias.shape}, expected "
                         f"({weight.shape[0]},) for weight {weight.shape}")
    return bias_gelu(linear(x, weight), bias, approximate)


def distillation_loss(student_logits: Tensor, teacher_logits: Any, target: Any,
                      T: float = 2.0,  # noqa: N803 (Hinton et al.'s name, as in the issue)
                      alpha: float = 0.5, reduction: str = "mean",
                      ignore_index: int = -100) -> Tensor:
    """Knowledge distillation's loss (Hinton, Vinyals and Dean 2015): the student matches the
    teacher's softened class probabilities and, with the rest of the weight, the labels.

    For student logits s and teacher logits t of one example (C classes), its class id y,
    temperature T and weight α:

        p = softmax(t / T),   q = softmax(s / T)                         (soft targets, C,)
        ℓ = α·T²·KL(p ‖ q) + (1 − α)·CE(s, y),   KL(p ‖ q) = Σ_c p_c·(log p_c − log q_c).

    KL is the sum over the classes of ``kl_div(log q, log p, log_target=True)``: the divergence
    of each example, which ``kl_div``'s ``batchmean`` averages (its ``mean`` would divide by C
    too). CE is :func:`cross_entropy` of the unsoftened logits.

    Why T²: ∂KL/∂s_c = (q_c − p_c)/T, and for a T large beside the logits, with logits of zero
    mean, q_c − p_c ≈ (s_c − t_c)/(C·T); so the soft term's gradient shrinks as 1/T². The factor
    T² undoes that, ∂(T²·KL)/∂s_c ≈ (s_c − t_c)/C, and keeps the soft and hard terms in the same
    proportion whatever T is tried (Hinton et al., §2). α = 0 is plain cross-entropy; α = 1
    trains on the teacher alone.

    The teacher's logits are constants: a Tensor is detached, so no gradient reaches the
    teacher. Shapes as :func:`cross_entropy`'s with class ids, the class on dim 1: logits (N, C)
    with target (N,), (C,) with a scalar, or (N, C, d1, ...) with (N, d1, ...). An example whose
    target is ``ignore_index`` counts in neither term (a padding token); ``mean`` averages over
    the others (0 when there are none), ``none`` gives the loss of each (the target's shape).
    """
    op = "distillation_loss"
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be one of ('mean', 'sum', 'none'), got "
                         f"{reduction!r}")
    if not (isinstance(T, numbers.Real) and math.isfinite(T) and T > 0):
        raise ValueError(f"{op}: the temperature T must be a positive finite number, got {T!r}")
    if not (isinstance(alpha, numbers.Real) and 0 <= alpha <= 1):
        raise ValueError(f"{op}: alpha, the weight of the soft targets, must be in [0, 1], got "
                         f"{alpha!r}")
    s = student_logits
    if not is_floating(s.dtype) or s.ndim == 0:
        raise TypeError(f"{op}: student_logits must be floating-point logits with a class dim, "
                        f"got dtype {s.dtype} of shape {s.shape}")
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits
    y = target.data if isinstance(target, Tensor) else target
    for name, a in (("teacher_logits", teacher), ("target", y)):
        if getattr(a, "shape", ()) != () and backend.device_of(a) != s.device:
            raise backend.DeviceError(f"{op}: student_logits are on {s.device} but {name} (shape "
                                      f"{tuple(a.shape)}) is on {backend.device_of(a)}")
    teacher, y = s.xp.asarray(teacher), s.xp.asarray(y)
    if tuple(teacher.shape) != s.shape:
        raise ValueError(f"{op}: student_logits have shape {s.shape} but teacher_logits have "
                         f"shape {tuple(teacher.shape)}; they must match")
    expected = () if s.ndim == 1 else (s.shape[0],) + s.shape[2:]
    if tuple(y.shape) != expected:
        raise ValueError(f"{op}: logits of shape {s.shape} need a target of class ids of shape "
                         f"{expected}, got {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class ids, got dtype {y.dtype}")
    teacher = Tensor(teacher, dtype=s.dtype)  # a constant: the teacher gets no gradient
    dim = 0 if s.ndim == 1 else 1
    log_q = log_softmax(s / T, dim)
    log_p = log_softmax(teacher / T, dim)
    soft = kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim)  # KL(p‖q): y's shape
    hard = cross_entropy(s, y, ignore_index, reduction="none")  # y's shape; 0 where ignored
    valid = y != ignore_index
    loss = masked_fill(alpha * T * T * soft + (1 - alpha) * hard, ~valid, 0.0)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if s.device == "cpu":
        return total / max(int(valid.sum()), 1)
    return total / s.xp.maximum(valid.sum(), 1).astype(s.dtype)  # no copy to the host
