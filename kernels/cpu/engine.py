"""The Numba kernels as the kernel registry hands them to the ops (``"numba"`` backend).

Each name below is one entry of :data:`minigrad.kernels.registry.TABLE`, in the registry's
signature for its op. Most kernels take that signature as they are; attention's forward returns
the arrays its backward reads (q, k, v and the probabilities P) as the tuple the registry
passes back, and Adam with an L2 term is :func:`.optim.adam_step` without decoupled decay.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..registry import AttentionMasks, Kernel
from . import attention, cross_entropy, gelu, int8, layernorm, optim, softmax

SOFTMAX = Kernel(softmax.softmax_forward, softmax.softmax_backward)
LAYER_NORM = Kernel(layernorm.layernorm_forward, layernorm.layernorm_backward)
GELU = Kernel(gelu.gelu_forward, gelu.gelu_backward)
BIAS_GELU = Kernel(gelu.bias_gelu_forward, gelu.bias_gelu_backward)
CROSS_ENTROPY = Kernel(cross_entropy.cross_entropy_forward,
                       cross_entropy.cross_entropy_backward)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, masks: AttentionMasks,
                      scale: float, dropout_mask: np.ndarray | None, need_backward: bool
                      ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """(out, (q, k, v, P)); without ``need_backward`` (inference) P stays in cache, block by
    block, and nothing is saved."""
    out, probs = attention.attention_forward(q, k, v, masks.keep, scale, dropout_mask,
                                             keep_probs=need_backward, attn_mask=masks.attend,
                                             attn_bias=masks.bias, is_causal=masks.causal)
    return out, (q, k, v, probs) if need_backward else ()


def attention_backward(dout: np.ndarray, masks: AttentionMasks, scale: float,
                       dropout_mask: np.ndarray | None, saved: tuple[np.ndarray, ...]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q, k, v, probs = saved
    return attention.attention_backward(dout, q, k, v, probs, masks.keep, scale, dropout_mask,
                                        attn_mask=masks.attend, is_causal=masks.causal)


ATTENTION = Kernel(attention_forward, attention_backward)

ADAM_STEP: Any = functools.partial(optim.adam_step, decoupled=False)
ADAMW_STEP = optim.adamw_step
SGD_STEP = optim.sgd_step
INT8_MATMUL = int8.int8_matmul
