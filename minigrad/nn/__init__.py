"""Neural-network building blocks: ``Module``, ``Parameter`` and the layers.

``minigrad.nn.functional`` (imported as ``F``) holds the same math as plain functions.
"""

from minigrad.nn import functional
from minigrad.nn.layers import (
    ELU,
    GELU,
    Dropout,
    Embedding,
    Hardtanh,
    LayerNorm,
    LeakyReLU,
    Linear,
    Mish,
    ModuleList,
    ReLU,
    RMSNorm,
    Sequential,
    SiLU,
    Softplus,
    Tanh,
)
from minigrad.nn.module import LoadResult, Module, Parameter

__all__ = [
    "ELU", "GELU", "Dropout", "Embedding", "Hardtanh", "LayerNorm", "LeakyReLU", "Linear",
    "LoadResult", "Mish", "Module", "ModuleList", "Parameter", "RMSNorm", "ReLU", "Sequential",
    "SiLU", "Softplus", "Tanh", "functional",
]
