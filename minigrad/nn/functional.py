"""``minigrad.nn.functional``, imported as ``F``: the layers' math as plain functions.

The ops themselves (forward, backward and their math) live in :mod:`minigrad.ops`; this module
gives them PyTorch's names, so ``F.softmax(x, dim=-1)`` reads as it does there.
"""

from __future__ import annotations

from minigrad.ops import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    embedding,
    gelu,
    layer_norm,
    log_softmax,
    matmul,
    mse_loss,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from minigrad.tensor import Tensor

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout",
    "embedding", "gelu", "layer_norm", "linear", "log_softmax", "mse_loss", "relu", "sigmoid",
    "softmax", "tanh",
]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with W of shape (out_features, in_features) as in PyTorch.

    x (..., in) @ Wᵀ (in, out) -> (..., out); the gradients come from matmul and add.
    """
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                         f"{weight.shape} (expected input (..., {weight.shape[-1]}))")
    y = matmul(x, weight.T)
    if bias is not None:
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"linear: bias has shape {bias.shape}, expected "
                             f"({weight.shape[0]},) for weight {weight.shape}")
        y = y + bias
    return y
