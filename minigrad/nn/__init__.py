"""Neural-network building blocks: ``Module``, ``Parameter`` and the layers.

``minigrad.nn.functional`` (imported as ``F``) holds the same math as plain functions.
"""

from minigrad.nn import functional
from minigrad.nn.layers import (
    GELU,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    ModuleList,
    ReLU,
    Sequential,
    Tanh,
)
from minigrad.nn.module import LoadResult, Module, Parameter

__all__ = [
    "GELU", "Dropout", "Embedding", "LayerNorm", "Linear", "LoadResult", "Module", "ModuleList",
    "Parameter", "ReLU", "Sequential", "Tanh", "functional",
]
