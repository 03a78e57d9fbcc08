"""Explicit regularization: an L1 penalty for the loss, and weight-decay parameter groups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from minigrad.tensor import Tensor


def l1_penalty(params: Iterable[Tensor], weight: float) -> Tensor:
    r"""The L1 penalty λ·Σ_θ Σ_i |θ_i|, a scalar Tensor to add to the loss.

    Its gradient λ·sign(θ) (0 at θ = 0) pushes every weight toward zero by the same amount
    whatever its size, so small weights reach exactly zero: L1 favours sparse models, where L2
    (``weight_decay``) only shrinks weights in proportion to their size. Usage::

        loss = F.cross_entropy(logits, y) + l1_penalty(model.parameters(), 1e-4)
    """
    if not weight >= 0:
        raise ValueError(f"l1_penalty: weight must be >= 0, got {weight}")
    params = list(params)
    if not params:
        raise ValueError("l1_penalty got no parameters")
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"l1_penalty takes Tensors, got a {type(p).__name__}")
    total = params[0].abs().sum()
    for p in params[1:]:
        total = total + p.abs().sum()
    return weight * total


def _decays(name: str) -> bool:
    """Hugging Face's rule: no weight decay on biases and LayerNorm weights."""
    return not (name.endswith("bias") or "LayerNorm.weight" in name)


def param_groups_for_weight_decay(
    named_parameters: Iterable[tuple[str, Tensor]] | Mapping[str, Tensor], weight_decay: float
) -> list[dict[str, Any]]:
    """The two usual parameter groups: decay for the weights, none for biases and LayerNorm.

    A parameter whose name ends in ``"bias"`` or contains ``"LayerNorm.weight"`` (Hugging Face's
    BERT names) goes to the group with ``weight_decay=0.0``; every other one to the group with
    ``weight_decay``. Decaying a bias or a LayerNorm gain only pulls the model toward a
    zero offset or a zero scale, which is not the simplicity prior weight decay stands for::

        AdamW(param_groups_for_weight_decay(model.named_parameters(), 0.01), lr=2e-5)

    Both groups are always returned (one may be empty), so the group count does not depend on
    the model.
    """
    if not weight_decay >= 0:
        raise ValueError(f"param_groups_for_weight_decay: weight_decay must be >= 0, got "
                         f"{weight_decay}")
    pairs = named_parameters.items() if isinstance(named_parameters, Mapping) else named_parameters
    decay, no_decay = [], []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], Tensor)):
            raise TypeError(
                "param_groups_for_weight_decay takes (name, Tensor) pairs such as "
                f"model.named_parameters(), got {pair!r:.80}"
            )
        name, p = pair
        (decay if _decays(name) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
