"""minigrad's CUDA kernels as the kernel registry hands them to the ops (``"cuda"`` backend).

Each name below is one entry of :data:`minigrad.kernels.registry.TABLE`, in the registry's
signature for its op, on the engine's CuPy arrays. The kernels read CuPy arrays in place; their
outputs are allocated from CuPy's memory pool (:func:`.common.set_allocator`, set when this
module is imported) and handed back wrapped as CuPy arrays (``cupy.asarray`` of a numba device
array: a view, no copy). The kernels index rows, so inputs are made C-contiguous first (no copy
for the contiguous arrays a model makes).

Attention has two paths, and its backward follows its forward's:

* without dropout, flash attention (:mod:`.attention`), every mask kind included: an online
  softmax over key tiles, no (B, A, S, S) array in memory; it saves q, k, v, the output and the
  rows' max and sum;
* with dropout, cuBLAS products around the fused scale + mask + softmax kernel
  (:mod:`.softmax`), which takes the key padding mask; a bias, a bool mask or the causal
  triangle is applied to the scores by CuPy first. It saves q, k, v and the probabilities,
  which the dropout mask multiplies.

The kernels read the keep-mask as bytes (1 = attend): a bool array's view, no copy.

**float16** (the registry hands these kernels float16 arrays too: CuPy has no bfloat16). Softmax
and LayerNorm run in float16 storage with float32 sums (LayerNorm's w and b float16 or float32,
its mean and rstd float32); flash attention's forward likewise, saving its rows' max and sum in
float32. Its backward kernels take float32 only, so a float16 backward casts q, k, v, the output,
dout (and a bias) up, and the gradients back down: three (B, A, S, D) float32 copies more for
the time of the call.
"""

from __future__ import annotations

from typing import Any

import cupy as cp

from ..registry import AttentionMasks, Kernel
from . import attention, layernorm, softmax
from .common import set_allocator

set_allocator(lambda shape, dtype: cp.empty(shape, dtype=dtype))


def softmax_forward(x: Any) -> Any:
    """A warp per row (a block past 1024 columns), max and sum by shuffles."""
    return cp.asarray(softmax.softmax_forward(cp.ascontiguousarray(x)))


def softmax_backward(y: Any, dy: Any) -> Any:
    return cp.asarray(softmax.softmax_backward(y, cp.ascontiguousarray(dy)))


def layernorm_forward(x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any]:
    """A warp per row (a block past 1024 columns); saves the row statistics mean and rstd."""
    return tuple(map(cp.asarray, layernorm.layernorm_forward(cp.ascontiguousarray(x), w, b,
                                                             eps)))


def layernorm_backward(dy: Any, x: Any, w: Any, mean: Any, rstd: Any) -> tuple[Any, Any, Any]:
    grads = layernorm.layernorm_backward(cp.ascontiguousarray(dy), cp.ascontiguousarray(x), w,
                                         mean, rstd)
    return tuple(map(cp.asarray, grads))


def _bytes(keep: Any) -> Any:
    return None if keep is None else keep.view(cp.uint8)


def attention_forward(q: Any, k: Any, v: Any, masks: AttentionMasks, scale: float,
                      dropout_mask: Any, need_backward: bool) -> tuple[Any, tuple[Any, ...]]:
    q, k, v = (cp.ascontiguousarray(a) for a in (q, k, v))
    if dropout_mask is None:  # flash: (out, the rows' max and sum)
        out, row_max, row_sum = map(cp.asarray, attention.attention_forward(
            q, k, v, _bytes(masks.keep), scale, _bytes(masks.attend), masks.bias,
            masks.causal))
        return out, (q, k, v, out, row_max, row_sum)
    scores = q @ k.swapaxes(-1, -2)  # (B, A, S, S), cuBLAS
    square = _square(masks, q.shape[2])
    if square is not None or masks.bias is not None:  # scale, bias and (S, S) masks by CuPy
        scores = scores * q.dtype.type(scale)
        if masks.bias is not None:
            scores += masks.bias
        if square is not None:
            scores = cp.where(square, scores, cp.finfo(q.dtype).min)
        scale = 1.0
    probs = cp.asarray(softmax.softmax_forward(scores, scale, _bytes(masks.keep)))
    return (probs * dropout_mask) @ v, (q, k, v, probs)  # (B, A, S, D)


def attention_backward(dout: Any, masks: AttentionMasks, scale: float, dropout_mask: Any,
                       saved: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    if dropout_mask is None:
        q, k, v, out, row_max, row_sum = saved
        grads = attention.attention_backward(
            _up(cp.ascontiguousarray(dout)), _up(q), _up(k), _up(v), _up(out), row_max,
            row_sum, _bytes(masks.keep), scale, _bytes(masks.attend), _up(masks.bias),
            masks.causal)
        return tuple(cp.asarray(g).astype(q.dtype, copy=False) for g in grads)
    q, k, v, probs = saved
    gp = (dout @ v.swapaxes(-1, -2)) * dropout_mask  # (B, A, S, S)
    gs = cp.asarray(softmax.softmax_backward(probs, gp, scale, _bytes(masks.keep)))
    square = _square(masks, q.shape[2])
    if square is not None:
        gs = cp.where(square, gs, 0)
    return gs @ k, gs.swapaxes(-1, -2) @ q, (probs * dropout_mask).swapaxes(-1, -2) @ dout


def _up(a: Any) -> Any:
    """A float16 array as float32 (for the float32-only attention backward); others as they are."""
    return a.astype(cp.float32) if a is not None and a.dtype == cp.float16 else a


def _square(masks: AttentionMasks, seq: int) -> Any:
    """The bool mask and the causal triangle together, broadcastable to (B, A, S, S), or None:
    the masks the softmax kernel (which takes a key mask only) cannot apply."""
    return masks._replace(keep=None).allowed(cp, seq, seq)


SOFTMAX = Kernel(softmax_forward, softmax_backward)
LAYER_NORM = Kernel(layernorm_forward, layernorm_backward)
ATTENTION = Kernel(attention_forward, attention_backward)
