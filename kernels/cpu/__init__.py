"""Numba CPU kernels (@njit), each beside its naive reference."""
