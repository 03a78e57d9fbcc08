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
    embedding,
    gelu,
    layer_norm,
    log_softmax,
    matmul,
    mse_loss,
    relu,
    reshape,
    scaled_dot_product_attention,
    sigmoid,
    softmax,
    tanh,
)
from minigrad.tensor import Tensor

__all__ = [
    "bias_gelu", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "dropout", "embedding", "gelu", "layer_norm", "linear", "linear_gelu", "log_softmax",
    "mse_loss", "relu", "scaled_dot_product_attention", "sigmoid", "softmax", "tanh",
]


def _check_linear(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"{op}: input of shape {x.shape} does not fit weight of shape "
                         f"{weight.shape} (expected input (..., {weight.shape[-1]}))")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected "
                         f"({weight.shape[0]},) for weight {weight.shape}")


def _matmul_rows(x: Tensor, weight: Tensor) -> Tensor:
    """x Wᵀ with the leading dims of x flattened into rows: one (M, in) @ (in, out) product,
    whose weight gradient is one (out, M) @ (M, in) product, not a batch of them summed."""
    if x.ndim <= 2:
        return matmul(x, weight.T)
    rows = matmul(reshape(x, (-1, x.shape[-1])), weight.T)  # (M, out)
    return reshape(rows, x.shape[:-1] + weight.shape[:1])  # (..., out)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with W of shape (out_features, in_features) as in PyTorch.

    x (..., in) @ Wᵀ (in, out) -> (..., out); the gradients come from matmul and add.
    """
    _check_linear("linear", x, weight, bias)
    y = _matmul_rows(x, weight)
    return y if bias is None else y + bias


def linear_gelu(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                approximate: str = "none") -> Tensor:
    """GELU(x Wᵀ + b): a linear layer and its activation, the bias add fused into the GELU
    (:func:`bias_gelu`), as in BERT's feed-forward. The same values as ``gelu(linear(...))``."""
    _check_linear("linear_gelu", x, weight, bias)
    y = _matmul_rows(x, weight)
    return gelu(y, approximate) if bias is None else bias_gelu(y, bias, approximate)
