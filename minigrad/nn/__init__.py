"""Neural-network building blocks. ``minigrad.nn.functional`` holds the functions (``F``)."""

from minigrad.nn import functional

__all__ = ["functional"]
