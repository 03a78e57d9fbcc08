"""numba.cuda kernels, numbered naive to fastest, each beside its reference."""
