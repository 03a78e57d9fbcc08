"""The kernel registry: (op, device, backend) → implementation, one signature per op.

An op in :mod:`minigrad.ops` holds the reference math (the NumPy/CuPy composite) and asks here,
in one place, for a faster implementation of itself: ``ctx.kernel = registry.kernel("softmax",
x)``. The answer depends on the arrays' device ("cpu" or "cuda") and that device's kernel
backend (:func:`minigrad.backend.set_backend`: "numpy" or "numba", "cupy" or "cuda"). When the
table below has no entry for (op, device, backend), or the arrays are not float32 or float64
(int8 for ``int8_matmul``) arrays of one dtype on one device, the answer is None and the op runs
its reference. The backward follows the forward's choice: the op keeps the implementation it
was given on ``ctx``. (float16 and bfloat16 NumPy arrays never ask: on the CPU the ops with
kernels compute them in float32, :class:`minigrad.autograd.Function`'s ``half_in_float32``.)

Every implementation of an op takes and returns the same things: arrays in, arrays out, pure
functions that know nothing of Tensor or autograd (the optimizer steps and the check update
their arguments in place instead). A differentiable op's implementation is a :class:`Kernel`,
a forward and the backward that reads what that forward returned. The signatures, once for all
implementations (shapes: B batch, A heads, S sequence, D head size, M rows, C classes):

softmax        forward(x) -> y                       softmax over the last axis of x (..., S)
               backward(y, dy) -> dx                 y: the forward's output
layer_norm     forward(x, w, b, eps) -> (y, mean, rstd)
                                                     over the last axis: x (..., H), w, b (H,),
                                                     mean and rstd (...)
               backward(dy, x, w, mean, rstd) -> (dx, dw, db)
gelu           forward(x, approximate) -> y          approximate: "none" (erf) or "tanh"
               backward(x, dy, approximate) -> dx    x: the forward's input
bias_gelu      forward(x, b, approximate) -> y       y = GELU(x + b), x (..., F), b (F,)
               backward(x, b, dy, approximate) -> (dx, db)
attention      forward(q, k, v, masks, scale, dropout_mask, need_backward) -> (out, saved)
                   q, k, v, out (B, A, S, D); masks: an :class:`AttentionMasks` (which scores
                   are kept); dropout_mask (B, A, S, S) of 0 and 1/(1-p), or None; saved: the
                   tuple of arrays this implementation's backward reads (it may be empty when
                   need_backward is false: inference)
               backward(dout, masks, scale, dropout_mask, saved) -> (dq, dk, dv)
cross_entropy  forward(z, target, ignore_index, label_smoothing) -> (loss, row_max, log_sum)
                   z (M, C), integer target (M,); loss, row_max, log_sum (M,), loss 0 where
                   target == ignore_index
               backward(dloss, z, target, row_max, log_sum, ignore_index, label_smoothing) -> dz
adam_step      step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step) -> None
                   Adam with an L2 term: p, m, v updated in place, all C-contiguous; step t ≥ 1
adamw_step     step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step) -> None
                   the same with decoupled weight decay (AdamW)
sgd_step       step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, step) -> None
                   p and the momentum buffer buf (None without momentum) in place; at step 1
                   buf is overwritten with the first gradient
int8_matmul    matmul(a, b) -> c                     c = a·b exactly, a (M, K) and b (K, N)
                   int8 (not float), c (M, N) int32; K ≤ 2**17 - 1, so no sum overflows. Not
                   differentiable: the matmul of int8 inference (minigrad.compress.quantize's
                   QuantizedLinear holds its reference)
check          check(failed, error) -> None
                   raise error() if the 0-d boolean array ``failed`` is true, now or at the next
                   copy to the host (looked up by device only: :func:`lookup`)

The implementations live in the kernel packages and are imported on first use, so ``import
minigrad`` imports neither Numba nor numba.cuda nor CuPy: :mod:`minigrad.kernels.cpu.engine`
(the Numba kernels), :mod:`minigrad.kernels.cuda.engine` (the CUDA kernels on CuPy arrays),
:mod:`minigrad.kernels.cuda.adamw` (the AdamW step, also as one CuPy elementwise kernel) and
:mod:`minigrad.kernels.cuda.checks` (input checks that wait on the GPU).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from minigrad import backend


class AttentionMasks(NamedTuple):
    """Which attention scores count, for queries (B, A, L, ·) and keys (B, A, S, ·), as the
    attention op and every attention kernel take them (each field may be absent):

    keep    (B, S) bool, True = attend: the key padding mask, shared by every head and query
    attend  (B|1, A|1, L, S) bool, True = attend: torch's bool ``attn_mask``
    bias    (B|1, A|1, L, S) of the scores' dtype, added to the scaled scores: torch's float
            ``attn_mask`` (a constant: no gradient)
    causal  query i attends to keys j ≤ i only (``is_causal``: the top-left aligned triangle)

    score_ij = scale·q_i·k_j + bias_ij, replaced by the dtype's finfo.min where any of keep,
    attend and causal says no (a row with every key masked attends uniformly; see
    ``kernels/cpu/softmax.py``). A batch or head dim of 1 in attend and bias is shared by
    every batch element or head: the kernels index it with b % size.
    """

    keep: Any = None
    attend: Any = None
    bias: Any = None
    causal: bool = False

    def allowed(self, xp: Any, queries: int, keys: int) -> Any:
        """keep, attend and causal as one bool array of the array module ``xp`` (NumPy or
        CuPy), broadcastable to (B, A, L, S), True = attend; None when nothing is masked."""
        parts = [] if self.keep is None else [self.keep[:, None, None, :]]  # (B, 1, 1, S)
        if self.attend is not None:
            parts.append(self.attend)
        if self.causal:
            parts.append(xp.tri(queries, keys, dtype=bool))  # (L, S): key j ≤ query i
        if not parts:
            return None
        allowed = parts[0]
        for part in parts[1:]:
            allowed = allowed & part
        return allowed


class Kernel(NamedTuple):
    """A differentiable op's implementation: its forward, and the backward that reads what
    that forward returned (see the module docstring for each op's signatures)."""

    forward: Callable[..., Any]
    backward: Callable[..., Any]


_CPU = "minigrad.kernels.cpu.engine"
_CUDA = "minigrad.kernels.cuda.engine"
_ADAMW = "minigrad.kernels.cuda.adamw"
_CHECKS = "minigrad.kernels.cuda.checks"

# (op, device, backend) -> "module:attribute" of the implementation. The "numpy" backend has no
# entry: it is every op's reference. GELU, cross-entropy, Adam with L2 and SGD have no GPU
# kernel: on a GPU they run their references (CuPy composites) under both backends.
TABLE: dict[tuple[str, str, str], str] = {
    ("softmax", "cpu", "numba"): f"{_CPU}:SOFTMAX",
    ("layer_norm", "cpu", "numba"): f"{_CPU}:LAYER_NORM",
    ("gelu", "cpu", "numba"): f"{_CPU}:GELU",
    ("bias_gelu", "cpu", "numba"): f"{_CPU}:BIAS_GELU",
    ("attention", "cpu", "numba"): f"{_CPU}:ATTENTION",
    ("cross_entropy", "cpu", "numba"): f"{_CPU}:CROSS_ENTROPY",
    ("adam_step", "cpu", "numba"): f"{_CPU}:ADAM_STEP",
    ("adamw_step", "cpu", "numba"): f"{_CPU}:ADAMW_STEP",
    ("sgd_step", "cpu", "numba"): f"{_CPU}:SGD_STEP",
    ("int8_matmul", "cpu", "numba"): f"{_CPU}:INT8_MATMUL",
    ("adamw_step", "cuda", "cupy"): f"{_ADAMW}:adamw_step_cupy",
    ("check", "cuda", "cupy"): f"{_CHECKS}:defer",
    ("softmax", "cuda", "cuda"): f"{_CUDA}:SOFTMAX",
    ("layer_norm", "cuda", "cuda"): f"{_CUDA}:LAYER_NORM",
    ("attention", "cuda", "cuda"): f"{_CUDA}:ATTENTION",
    ("adamw_step", "cuda", "cuda"): f"{_ADAMW}:adamw_step",
    ("check", "cuda", "cuda"): f"{_CHECKS}:defer",
}

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# The ops whose kernels take other dtypes than KERNEL_DTYPES.
OP_DTYPES = {"int8_matmul": (np.dtype(np.int8),)}


def lookup(op: str, device: str, kernel_backend: str | None = None) -> Any:
    """The implementation registered for (op, device, backend), imported on first use, or None.

    ``kernel_backend`` defaults to the device's current backend (:func:`backend.get_backend`).
    """
    name = kernel_backend or backend.get_backend(device)
    where = TABLE.get((op, device, name))
    return None if where is None else _load(where)


@functools.cache
def _load(where: str) -> Any:
    module, attribute = where.split(":")
    return getattr(importlib.import_module(module), attribute)


def kernel(op: str, *arrays: Any) -> Any:
    """The implementation of ``op`` for these arrays, or None: the op then runs its reference.

    The arrays (``None`` entries, such as an absent bias, are skipped) must be NumPy or CuPy
    arrays on one device, of one dtype, float32 or float64 (int8 for ``int8_matmul``:
    :data:`OP_DTYPES`), as every kernel takes them; the implementation is then the one
    registered for (op, their device, its backend).
    """
    present = [a for a in arrays if a is not None]
    devices = {backend.device_of(a) for a in present}
    if len(devices) != 1:
        return None
    (device,) = devices
    if device == "cpu" and not all(isinstance(a, np.ndarray) for a in present):
        return None  # a list or a NumPy scalar: no kernel takes those
    dtypes = {np.dtype(a.dtype) for a in present}
    if len(dtypes) != 1 or not dtypes <= set(OP_DTYPES.get(op, KERNEL_DTYPES)):
        return None
    return lookup(op, device)
