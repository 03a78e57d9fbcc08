"""Matrix product with batch broadcasting."""

from __future__ import annotations

from typing import Any

from minigrad.autograd import Context, Function
from minigrad.ops.common import broadcast_shape, unbroadcast


class MatMul(Function):
    """Z = A @ B for A (..., m, k) and B (..., k, n), batch dims broadcast;  Z is (..., m, n).

    Each Z[i, j] = Σ_k A[i, k]·B[k, j], so dA = G @ Bᵀ (..., m, n)@(..., n, k) and
    dB = Aᵀ @ G (..., k, m)@(..., m, n), then summed over any broadcast batch dims.
    (1-D operands are promoted to matrices by :func:`minigrad.ops.matmul` before this runs.)
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} are not aligned: the last dim of the "
                f"first ({a.shape[-1]}) must equal the second-to-last dim of the second "
                f"({b.shape[-2]})"
            )
        broadcast_shape("matmul (batch dims)", a.shape[:-2], b.shape[:-2])
        need_a, need_b = ctx.needs_input_grad  # dA reads B, dB reads A: save only what is read
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        ctx.shapes = a.shape, b.shape
        return a @ b

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        a, b = ctx.saved
        sa, sb = ctx.shapes
        ga = unbroadcast(g @ b.swapaxes(-1, -2), sa) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(a.swapaxes(-1, -2) @ g, sb) if ctx.needs_input_grad[1] else None
        return ga, gb
