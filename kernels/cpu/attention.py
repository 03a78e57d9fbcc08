"""Fused multi-head attention, one (batch, head) block at a time, forward and backward.

Math, per batch b and head a, with Q, K, V (S, D), the scores' masks (see
:class:`~minigrad.kernels.registry.AttentionMasks`: the key keep-mask k_b (S,), a bool mask
A (S, S), a float bias F (S, S), causal), and an optional dropout mask M (S, S) of 0 and
1/(1-p):

    kept_ij = k_bj ∧ A_ij ∧ (j ≤ i if causal)
    P = softmax(where(kept, scale·QKᵀ + F, finfo.min))   (row-wise, see .softmax)
    O = (P ⊙ M)·V
backward, from dO:
    dV = (P ⊙ M)ᵀ·dO,   dP = (dO·Vᵀ) ⊙ M,   dS = scale·P ⊙ (dP - rowsum(dP ⊙ P)) (0 where not kept)
    dQ = dS·K,   dK = dSᵀ·Q

Shapes: q, k, v, out (B, A, S, D); mask (B, S) of 1 = keep / 0 = padding, or None; attn_mask
(bool) and attn_bias (float) (B|1, A|1, S, S), a batch or head dim of 1 shared by all; probs and
dropout_mask (B, A, S, S). ``scale`` defaults to 1/√D.

How it is computed: the products go to BLAS (``np.dot`` on the (S, D) and (S, S) blocks, which
Numba hands to OpenBLAS's sgemm/dgemm); everything between them is fused: the (S, S) scores
of one block (64 KiB at S=128) are scaled, biased, masked and softmaxed in cache right after
the product that made them, then multiplied by V. The NumPy composite instead writes the
(B, A, S, S) scores to memory and streams them through 7 more passes. Each row's kept keys are
worked out as the row is reached (a causal mask is never an array). Blocks are split across the
threads with ``prange``, and BLAS is held to 1 thread while they run: two levels of threads on 2
cores fight (measured here: 100x slower at worst).

Layout: the kernels work on (B, S, A, D) buffers, the layout of a (B, S, H) projection. Pass q,
k, v as the free view ``x.reshape(B, S, A, D).transpose(0, 2, 1, 3)`` of such a projection and
nothing is copied (any other layout is copied once). out, dq, dk and dv come back as
(B, A, S, D) views of (B, S, A, D) buffers, so merging the heads again,
``out.transpose(0, 2, 1, 3).reshape(B, S, H)``, is free too. (One layout also means one Numba
compilation per dtype instead of one per combination of layouts.)
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
from numba import prange
from threadpoolctl import ThreadpoolController

from ..registry import AttentionMasks
from .common import check_float, check_shape, jit, jit_parallel, key_mask, most_negative
from .softmax import (
    softmax_backward_reference,
    softmax_forward_reference,
    softmax_in_place,
    softmax_row_backward,
)

_blas_controller: Any = None


def _single_threaded_blas() -> contextlib.AbstractContextManager:
    """BLAS on one thread while the kernel's own threads call it (else they oversubscribe)."""
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller.limit(limits=1)


# --- the naive reference ----------------------------------------------------------------------
def _kept(mask: np.ndarray | None, attn_mask: np.ndarray | None, is_causal: bool,
          seq: int) -> np.ndarray | None:
    """Where a score is kept, broadcastable to (B, A, S, S), or None: nothing masked."""
    keep = None if mask is None else np.asarray(mask) != 0
    return AttentionMasks(keep, attn_mask, None, is_causal).allowed(np, seq, seq)


def attention_forward_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                                mask: np.ndarray | None = None, scale: float | None = None,
                                dropout_mask: np.ndarray | None = None,
                                attn_mask: np.ndarray | None = None,
                                attn_bias: np.ndarray | None = None, is_causal: bool = False
                                ) -> tuple[np.ndarray, np.ndarray]:
    """The NumPy composite: batched matmul, scale, bias, where, softmax, (dropout), matmul."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.swapaxes(-1, -2)) * q.dtype.type(scale)  # (B, A, S, S)
    if attn_bias is not None:
        scores = scores + attn_bias
    kept = _kept(mask, attn_mask, is_causal, q.shape[2])
    if kept is not None:
        scores = np.where(kept, scores, np.finfo(q.dtype).min)
    probs = softmax_forward_reference(scores)
    dropped = probs if dropout_mask is None else probs * dropout_mask
    return dropped @ v, probs


def attention_backward_reference(dout: np.ndarray, q: np.ndarray, k: np.ndarray,
                                 v: np.ndarray, probs: np.ndarray,
                                 mask: np.ndarray | None = None, scale: float | None = None,
                                 dropout_mask: np.ndarray | None = None,
                                 attn_mask: np.ndarray | None = None, is_causal: bool = False
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv) from the formulas in the module docstring (a bias has no gradient)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    dropped = probs if dropout_mask is None else probs * dropout_mask
    dv = dropped.swapaxes(-1, -2) @ dout
    dp = dout @ v.swapaxes(-1, -2)
    if dropout_mask is not None:
        dp = dp * dropout_mask
    ds = softmax_backward_reference(probs, dp, scale)  # (B, A, S, S), scale included
    kept = _kept(mask, attn_mask, is_causal, q.shape[2])
    if kept is not None:
        ds = np.where(kept, ds, 0).astype(q.dtype)
    return ds @ k, ds.swapaxes(-1, -2) @ q, dv


# --- the fused kernels ------------------------------------------------------------------------
@jit
def kept_keys(keep: np.ndarray, attend: np.ndarray, use_attend: bool, causal: bool, i: int,
              out: np.ndarray) -> None:
    """Row i's kept keys: out_j = keep_j ∧ attend_j ∧ (j ≤ i if causal); attend is row i of
    the bool mask (read only when ``use_attend``)."""
    for j in range(keep.shape[0]):
        out[j] = keep[j] and (not use_attend or attend[j]) and (not causal or j <= i)


@jit
def masked_softmax_row(x: np.ndarray, kept: np.ndarray, bias: np.ndarray, use_bias: bool,
                       scale: Any, y: np.ndarray) -> None:
    """One row: y = softmax(where(kept, scale·x + bias, finfo.min)); y may be x. bias is read
    only when ``use_bias``."""
    masked = most_negative(scale)
    for j in range(x.shape[0]):
        s = scale * x[j] + bias[j] if use_bias else scale * x[j]
        y[j] = s if kept[j] else masked
    softmax_in_place(y)


@jit
def attention_block(q: np.ndarray, k: np.ndarray, v: np.ndarray, keep: np.ndarray,
                    attend: np.ndarray, use_attend: bool, bias: np.ndarray, use_bias: bool,
                    causal: bool, scale: Any, drop: np.ndarray, use_dropout: bool,
                    probs: np.ndarray, keep_probs: bool, out: np.ndarray) -> None:
    """One (batch, head): p = masked softmax(scale·qkᵀ + bias), out = (p ⊙ drop)·v; q, k, v
    contiguous. attend and bias are this block's (S, S) masks (unread unless used).

    p is written to ``probs`` when ``keep_probs`` (for backward), else left in the scores'
    own buffer, in cache (inference)."""
    S = q.shape[0]  # noqa: N806  # q, k, v, out (S, D); keep (S,); probs, drop (S, S)
    scores = np.dot(q, k.T)  # (S, S), BLAS
    p = probs if keep_probs else scores
    kept = np.empty(S, dtype=np.bool_)
    for i in range(S):  # fused scale + bias + mask + softmax, row by row, in cache
        kept_keys(keep, attend[i if use_attend else 0], use_attend, causal, i, kept)
        masked_softmax_row(scores[i], kept, bias[i if use_bias else 0], use_bias, scale, p[i])
    if use_dropout:
        for i in range(S):  # reuse the scores' buffer for p ⊙ drop
            for j in range(S):
                scores[i, j] = p[i, j] * drop[i, j]
        out[:, :] = np.dot(scores, v)  # (S, D), BLAS
    else:
        out[:, :] = np.dot(p, v)


@jit
def attention_block_backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                             p: np.ndarray, keep: np.ndarray, attend: np.ndarray,
                             use_attend: bool, causal: bool, scale: Any, drop: np.ndarray,
                             use_dropout: bool, dq: np.ndarray, dk: np.ndarray,
                             dv: np.ndarray) -> None:
    """One (batch, head): dq, dk, dv from dout and the forward's p; inputs contiguous."""
    S = q.shape[0]  # noqa: N806
    dp = np.dot(dout, v.T)  # (S, S) = dO·Vᵀ, BLAS
    if use_dropout:
        pd = np.empty_like(p)
        for i in range(S):
            for j in range(S):
                pd[i, j] = p[i, j] * drop[i, j]
                dp[i, j] *= drop[i, j]
        dv[:, :] = np.dot(pd.T, dout)  # (S, D)
    else:
        dv[:, :] = np.dot(p.T, dout)
    kept = np.empty(S, dtype=np.bool_)
    for i in range(S):  # dS = scale·P ⊙ (dP - rowsum(dP ⊙ P)), in place in dp
        kept_keys(keep, attend[i if use_attend else 0], use_attend, causal, i, kept)
        softmax_row_backward(p[i], dp[i], kept, scale, dp[i])
    dq[:, :] = np.dot(dp, k)
    dk[:, :] = np.dot(dp.T, q)


@jit_parallel
def _forward_kernel(q: np.ndarray, k: np.ndarray, v: np.ndarray, keep: np.ndarray,
                    attend: np.ndarray, use_attend: bool, bias: np.ndarray, use_bias: bool,
                    causal: bool, scale: Any, drop: np.ndarray, use_dropout: bool,
                    probs: np.ndarray, keep_probs: bool, out: np.ndarray) -> None:
    B, _, A, _ = q.shape  # noqa: N806  # q, k, v, out (B, S, A, D); probs, drop (B, A, S, S)
    for ba in prange(B * A):  # probs is (1, 1, 1, 1) unless keep_probs; so are unused masks
        b, a = ba // A, ba % A
        attention_block(np.ascontiguousarray(q[b, :, a]), np.ascontiguousarray(k[b, :, a]),
                        np.ascontiguousarray(v[b, :, a]), keep[b],
                        attend[b % attend.shape[0], a % attend.shape[1]], use_attend,
                        bias[b % bias.shape[0], a % bias.shape[1]], use_bias, causal, scale,
                        drop[b, a] if use_dropout else drop[0, 0], use_dropout,
                        probs[b, a] if keep_probs else probs[0, 0], keep_probs, out[b, :, a])


@jit_parallel
def _backward_kernel(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                     probs: np.ndarray, keep: np.ndarray, attend: np.ndarray, use_attend: bool,
                     causal: bool, scale: Any, drop: np.ndarray, use_dropout: bool,
                     dq: np.ndarray, dk: np.ndarray, dv: np.ndarray) -> None:
    B, _, A, _ = q.shape  # noqa: N806  # dout, q, k, v, dq, dk, dv (B, S, A, D)
    for ba in prange(B * A):
        b, a = ba // A, ba % A
        attention_block_backward(np.ascontiguousarray(dout[b, :, a]),
                                 np.ascontiguousarray(q[b, :, a]),
                                 np.ascontiguousarray(k[b, :, a]),
                                 np.ascontiguousarray(v[b, :, a]), probs[b, a], keep[b],
                                 attend[b % attend.shape[0], a % attend.shape[1]], use_attend,
                                 causal, scale, drop[b, a] if use_dropout else drop[0, 0],
                                 use_dropout, dq[b, :, a], dk[b, :, a], dv[b, :, a])


def _bsad(x: np.ndarray) -> np.ndarray:
    """A (B, A, S, D) array as the C-contiguous (B, S, A, D) array the kernels take.

    Free for the view ``y.reshape(B, S, A, D).transpose(0, 2, 1, 3)`` of a (B, S, H)
    projection; a copy for any other layout. One layout means one compilation per dtype.
    """
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3))


def _check(name: str, q: np.ndarray, k: np.ndarray, v: np.ndarray,
           dropout_mask: np.ndarray | None) -> None:
    check_float(name, q=q, k=k, v=v, dropout_mask=dropout_mask)
    if q.ndim != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"{name}: expected q, k, v of one shape (B, A, S, D), got q {q.shape}, "
                         f"k {k.shape}, v {v.shape}")
    if dropout_mask is not None:
        check_shape(name, "dropout_mask", dropout_mask, q.shape[:3] + (q.shape[2],))


def _block_mask(name: str, what: str, x: np.ndarray | None, q: np.ndarray,
                dtype: Any) -> np.ndarray:
    """attn_mask or attn_bias as the C-contiguous (B|1, A|1, S, S) array the kernels index
    with b % size, or a (1, 1, 1, 1) placeholder when absent (never read)."""
    if x is None:
        return np.zeros((1, 1, 1, 1), dtype)
    B, A, S, _ = q.shape  # noqa: N806
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] not in (1, B) or x.shape[1] not in (1, A) \
            or x.shape[2:] != (S, S):
        raise ValueError(f"{name}: {what} has shape {x.shape}, expected (B|1, A|1, S, S) with "
                         f"(B, A, S) = {(B, A, S)}")
    if x.dtype != dtype:
        raise TypeError(f"{name}: {what} has dtype {x.dtype}, expected {np.dtype(dtype)}")
    return np.ascontiguousarray(x)


def _drop(dropout_mask: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    return np.ones((1, 1, 1, 1), dtype) if dropout_mask is None else dropout_mask


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                      mask: np.ndarray | None = None, scale: float | None = None,
                      dropout_mask: np.ndarray | None = None, keep_probs: bool = True,
                      attn_mask: np.ndarray | None = None, attn_bias: np.ndarray | None = None,
                      is_causal: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(out, probs): out = (P ⊙ dropout_mask)·V, P = masked softmax(scale·QKᵀ + bias), per
    (b, a).

    q, k, v (B, A, S, D), any strides (the module docstring names the free one); mask (B, S)
    1 = keep / 0 = padding, or None; attn_mask (bool, True = attend) and attn_bias (q's dtype)
    (B|1, A|1, S, S), or None; ``is_causal``: query i attends to keys j ≤ i; scale defaults to
    1/√D; dropout_mask (B, A, S, S) of 0 and 1/(1-p), or None. probs (B, A, S, S) is P before
    dropout, for :func:`attention_backward`; with ``keep_probs=False`` (inference) it is never
    written to memory and None is returned in its place.
    """
    _check("attention_forward", q, k, v, dropout_mask)
    B, A, S, D = q.shape  # noqa: N806
    keep = key_mask("attention_forward", mask, B, S)
    attend = _block_mask("attention_forward", "attn_mask", attn_mask, q, np.bool_)
    bias = _block_mask("attention_forward", "attn_bias", attn_bias, q, q.dtype)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    probs = np.empty((B, A, S, S) if keep_probs else (1, 1, 1, 1), dtype=q.dtype)
    out = np.empty((B, S, A, D), dtype=q.dtype)
    with _single_threaded_blas():
        _forward_kernel(_bsad(q), _bsad(k), _bsad(v), keep, attend, attn_mask is not None, bias,
                        attn_bias is not None, is_causal, q.dtype.type(scale),
                        _drop(dropout_mask, q.dtype), dropout_mask is not None, probs,
                        keep_probs, out)
    return out.transpose(0, 2, 1, 3), probs if keep_probs else None


def attention_backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                       probs: np.ndarray, mask: np.ndarray | None = None,
                       scale: float | None = None, dropout_mask: np.ndarray | None = None,
                       attn_mask: np.ndarray | None = None, is_causal: bool = False
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv), each (B, A, S, D), from dout (B, A, S, D) and the forward's probs; the
    forward's masks (its attn_bias is not needed: it has no gradient and is inside probs)."""
    _check("attention_backward", q, k, v, dropout_mask)
    check_float("attention_backward", dout=dout, q=q, probs=probs)
    check_shape("attention_backward", "dout", dout, q.shape)
    B, A, S, D = q.shape  # noqa: N806
    check_shape("attention_backward", "probs", probs, (B, A, S, S))
    keep = key_mask("attention_backward", mask, B, S)
    attend = _block_mask("attention_backward", "attn_mask", attn_mask, q, np.bool_)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    dq, dk, dv = (np.empty((B, S, A, D), dtype=q.dtype) for _ in range(3))
    with _single_threaded_blas():
        _backward_kernel(_bsad(dout), _bsad(q), _bsad(k), _bsad(v), np.ascontiguousarray(probs),
                         keep, attend, attn_mask is not None, is_causal, q.dtype.type(scale),
                         _drop(dropout_mask, q.dtype), dropout_mask is not None, dq, dk, dv)
    return dq.transpose(0, 2, 1, 3), dk.transpose(0, 2, 1, 3), dv.transpose(0, 2, 1, 3)
