"""The layers: each a Module holding its Parameters, with the math in ``nn.functional``.

Weights are initialised as PyTorch initialises them, from minigrad's own generator, so
``minigrad.manual_seed(s)`` before building a model makes it the same model every time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minigrad import backend
from minigrad.nn import functional as F
from minigrad.nn.module import Module, Parameter
from minigrad.ops import where
from minigrad.tensor import Tensor, float32


def _uniform(shape: tuple[int, ...], bound: float) -> Parameter:
    """A Parameter of draws from U(-bound, bound)."""
    u = backend.random_uniform(shape, float32, "cpu")  # in [0, 1)
    return Parameter((2 * u - 1) * float32.type(bound))


class Linear(Module):
    """y = x Wᵀ + b, with W (out_features, in_features) and b (out_features,).

    Initialised as ``torch.nn.Linear``: kaiming-uniform with a = √5, which for both W and b
    comes to U(-1/√in, 1/√in).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: in_features and out_features must be positive, got "
                             f"({in_features}, {out_features})")
        self.in_features = in_features
        self.out_features = out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = _uniform((out_features, in_features), bound)
        self.bias = _uniform((out_features,), bound) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)  # (..., in) -> (..., out)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: ids (...) -> rows of W (num_embeddings, embedding_dim), shape (..., D).

    Initialised N(0, 1) as ``torch.nn.Embedding``. With ``padding_idx`` that row starts at
    zero and receives no gradient: positions holding it read the row as a constant.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be positive, "
                             f"got ({num_embeddings}, {embedding_dim})")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        w = backend.random_normal((num_embeddings, embedding_dim), float32, "cpu")
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w)

    def forward(self, ids: Any) -> Tensor:
        out = F.embedding(ids, self.weight)  # (..., D)
        if self.padding_idx is None:
            return out
        ids = ids.data if isinstance(ids, Tensor) else self.weight.xp.asarray(ids)
        is_pad = (ids == self.padding_idx)[..., None]  # (..., 1)
        pad_row = self.weight.detach()[self.padding_idx]  # (D,), outside the graph
        return where(is_pad, pad_row, out)  # (..., D): no gradient reaches the padding row

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """y = (x - μ)/√(σ² + eps)·w + b over the last dims (``normalized_shape``); w = 1, b = 0."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(shape)
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.eps = eps
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=float32))
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    """Zero each element with probability p and scale the rest by 1/(1-p); only in training."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GELU(Module):
    """x·Φ(x); ``approximate="tanh"`` uses the tanh formula (Hugging Face's ``gelu_new``).

    Called with a bias, ``GELU()(x, bias)`` is GELU(x + bias) as one op (:func:`F.bias_gelu`):
    a linear layer's bias add fused into its activation, as BERT's feed-forward calls it.
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        if bias is None:
            return F.gelu(x, self.approximate)
        return F.bias_gelu(x, bias, self.approximate)  # (..., F) with bias (F,)

    def extra_repr(self) -> str:
        return f"approximate='{self.approximate}'"


class ReLU(Module):
    """max(x, 0); ``ReLU()(x, bias)`` is max(x + bias, 0), called as :class:`GELU` is."""

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        return F.relu(x if bias is None else x + bias)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


# --- normalization and activations (issue 15) ---
class RMSNorm(Module):
    """y = x/√(mean(x²) + eps)·w over the last dims (``normalized_shape``); w = 1, no bias.

    ``eps=None`` takes the machine epsilon of the input's dtype at each call, as torch's.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float | None = None,
                 elementwise_affine: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(shape)
        if eps is not None and eps <= 0:
            raise ValueError(f"RMSNorm: eps must be positive or None, got {eps}")
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight = (Parameter(np.ones(self.normalized_shape, dtype=float32))
                       if elementwise_affine else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class SiLU(Module):
    """x·σ(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class Mish(Module):
    """x·tanh(softplus(x))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x)


class Softplus(Module):
    """log(1 + e^(βx))/β, and x where βx > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class LeakyReLU(Module):
    """x where x > 0, else negative_slope·x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x where x > 0, else α(eˣ - 1)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Hardtanh(Module):
    """x clipped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val cannot be greater than max_val, got "
                             f"min_val={min_val} and max_val={max_val}")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", ... and indexable."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def forward(self, x: Any) -> Any:
        for module in self.children():
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self.children())
        if isinstance(index, slice):
            return Sequential(*items[index])
        return items[_check_index(index, len(items), "Sequential")]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return self.children()


class ModuleList(Module):
    """A list of modules whose parameters the parent sees (a plain list would hide them)."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self.children())
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[_check_index(index, len(items), "ModuleList")]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return self.children()


def _check_index(index: int, n: int, owner: str) -> int:
    if not -n <= index < n:
        raise IndexError(f"{owner}: index {index} is out of range for {n} modules")
    return index
