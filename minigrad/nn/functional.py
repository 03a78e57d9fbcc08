"""``minigrad.nn.functional``, imported as ``F``: the layers' math as plain functions.

The ops themselves (forward, backward and their math) live in :mod:`minigrad.ops`; this module
gives them PyTorch's names, so ``F.softmax(x, dim=-1)`` reads as it does there.
"""

from __future__ import annotations

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
