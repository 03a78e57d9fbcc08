"""Cross-entropy over logits, fused: log-sum-exp, the loss and its gradient in one pass per row.

Math, for a row of logits z (C,) with class t and label smoothing ε, the target distribution is
q = (1-ε)·onehot(t) + ε/C. With m = max z and ls = log Σ_c e^(z_c - m) (so lse = m + ls and no
exp overflows), and since Σ_c q_c = 1:

    ℓ = -Σ_c q_c·log softmax(z)_c = ls - (1-ε)·(z_t - m) - (ε/C)·Σ_c (z_c - m)
    dℓ/dz_c = softmax(z)_c - q_c = e^((z_c - m) - ls) - ε/C - (1-ε)·[c = t]

Every term is computed from the shifted logits z - m, and m and ls are saved apart, not summed
into lse: in float32 at logits of 1e4 an ulp of lse is 1e-3, which would cost the loss and the
softmax three digits. A row whose target is ``ignore_index`` has ℓ = 0 and gradient 0 (its m
and ls are not computed and are returned as 0). The backward takes the upstream gradient per
row (M,), so a mean over the valid rows is the caller's 1/n_valid.

Shapes: logits (M, C), target (M,) integers; loss, row_max, log_sum (M,); dlogits (M, C).

What the fused kernel saves: the NumPy composite materializes the shifted logits, their exp and
the log-probabilities, three (M, C) arrays (at (4096, 30522) float32 that is 0.5 GB each), and
its backward exps all of them again. The kernel keeps two numbers per row: forward reads each
row from memory once (max, then shift, exp and sum in an L2-resident scratch row) and writes
nothing of size C; backward reads z once and writes dz once. Ignored rows (most rows of a
masked-LM batch) cost nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange

from . import vecmath
from .common import (
    check_float,
    check_shape,
    contiguous,
    jit,
    jit_parallel,
    row_max,
    row_sum,
)

# Rows per parallel task: each task allocates its exp scratch row once.
ROWS_PER_TASK = 16


# --- the naive reference ----------------------------------------------------------------------
def cross_entropy_forward_reference(logits: np.ndarray, target: np.ndarray,
                                    ignore_index: int = -100, label_smoothing: float = 0.0
                                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The NumPy composite (the engine's ops/loss.py): (loss, row_max, log_sum) per row."""
    m, c = logits.shape
    valid = target != ignore_index
    t = np.where(valid, target, 0)
    row_max = logits.max(axis=1, keepdims=True)
    shifted = logits - row_max
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    logp = shifted - log_sum  # (M, C)
    loss = -(1 - label_smoothing) * logp[np.arange(m), t]
    if label_smoothing:
        loss = loss - (label_smoothing / c) * logp.sum(axis=1)
    return (np.where(valid, loss, 0).astype(logits.dtype), np.where(valid, row_max[:, 0], 0),
            np.where(valid, log_sum[:, 0], 0).astype(logits.dtype))


def cross_entropy_backward_reference(dloss: np.ndarray, logits: np.ndarray, target: np.ndarray,
                                     row_max: np.ndarray, log_sum: np.ndarray,
                                     ignore_index: int = -100, label_smoothing: float = 0.0
                                     ) -> np.ndarray:
    """dz = dloss·(softmax(z) - q), 0 on ignored rows."""
    m, c = logits.shape
    valid = target != ignore_index
    t = np.where(valid, target, 0)
    dz = np.exp((logits - row_max[:, None]) - log_sum[:, None])
    dz[np.arange(m), t] -= 1 - label_smoothing
    if label_smoothing:
        dz -= label_smoothing / c
    return np.where(valid[:, None], dz * dloss[:, None], 0).astype(logits.dtype)


# --- the fused kernels ------------------------------------------------------------------------
@jit
def cross_entropy_row(z: np.ndarray, t: int, eps: Any, e: np.ndarray) -> tuple[Any, Any, Any]:
    """(loss, m, ls) of one row z (C,) with class t; e (C,) is scratch."""
    T = type(eps)  # noqa: N806
    C = z.shape[0]  # noqa: N806
    m = row_max(z)
    for c in range(C):  # vectorized
        e[c] = z[c] - m
    shifted_sum = row_sum(e) if eps != T(0.0) else T(0.0)
    for c in range(C):  # vectorized
        e[c] = vecmath.exp(e[c])
    ls = T(math.log(row_sum(e)))
    return ls - (T(1.0) - eps) * (z[t] - m) - eps / T(C) * shifted_sum, m, ls


@jit_parallel
def _forward_kernel(z: np.ndarray, target: np.ndarray, ignore_index: int, eps: Any,
                    loss: np.ndarray, zmax: np.ndarray, lsum: np.ndarray) -> None:
    M, C = z.shape  # noqa: N806  # z (M, C); target, loss, zmax, lsum (M,)
    T = type(eps)  # noqa: N806
    for task in prange((M + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        e = np.empty(C, dtype=z.dtype)  # scratch row, one per task
        for i in range(task * ROWS_PER_TASK, min(M, (task + 1) * ROWS_PER_TASK)):
            if target[i] == ignore_index:
                loss[i] = zmax[i] = lsum[i] = T(0.0)
            else:
                loss[i], zmax[i], lsum[i] = cross_entropy_row(z[i], target[i], eps, e)


@jit_parallel
def _backward_kernel(dloss: np.ndarray, z: np.ndarray, target: np.ndarray, zmax: np.ndarray,
                     lsum: np.ndarray, ignore_index: int, eps: Any, dz: np.ndarray) -> None:
    M, C = z.shape  # noqa: N806
    T = type(eps)  # noqa: N806
    for i in prange(M):
        dzi = dz[i]
        t = target[i]
        if t == ignore_index:
            for c in range(C):
                dzi[c] = T(0.0)
            continue
        zi, g, m, ls = z[i], dloss[i], zmax[i], lsum[i]
        smooth = eps / T(C)
        for c in range(C):  # vectorized
            dzi[c] = g * (vecmath.exp((zi[c] - m) - ls) - smooth)
        dzi[t] -= g * (T(1.0) - eps)


def _check(name: str, logits: np.ndarray, target: np.ndarray, ignore_index: int,
           label_smoothing: float) -> np.ndarray:
    """target as int64, after checking shapes, the class range and ε."""
    check_float(name, logits=logits)
    target = np.asarray(target)
    if logits.ndim != 2 or target.shape != logits.shape[:1] or logits.shape[1] == 0:
        raise ValueError(f"{name}: expected logits (M, C) with C ≥ 1 and target (M,), got logits "
                         f"{logits.shape} and target {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class ids, got dtype {target.dtype}")
    c = logits.shape[1]
    bad = (target != ignore_index) & ((target < 0) | (target >= c))
    if bad.any():
        raise IndexError(f"{name}: target {int(target[bad][0])} is out of range for {c} classes "
                         f"(logits of shape {logits.shape}, targets must be in [0, {c - 1}] "
                         f"or ignore_index={ignore_index})")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    return target.astype(np.int64, copy=False)


def cross_entropy_forward(logits: np.ndarray, target: np.ndarray, ignore_index: int = -100,
                          label_smoothing: float = 0.0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loss, row_max, log_sum), each (M,), for logits (M, C) and class ids target (M,).

    loss is 0 on rows whose target is ``ignore_index``; row_max and log_sum (lse = row_max +
    log_sum) are what :func:`cross_entropy_backward` needs.
    """
    target = _check("cross_entropy_forward", logits, target, ignore_index, label_smoothing)
    logits = contiguous(logits)
    loss, row_max, log_sum = (np.empty(logits.shape[0], dtype=logits.dtype) for _ in range(3))
    _forward_kernel(logits, target, ignore_index, logits.dtype.type(label_smoothing), loss,
                    row_max, log_sum)
    return loss, row_max, log_sum


def cross_entropy_backward(dloss: np.ndarray, logits: np.ndarray, target: np.ndarray,
                           row_max: np.ndarray, log_sum: np.ndarray, ignore_index: int = -100,
                           label_smoothing: float = 0.0) -> np.ndarray:
    """dlogits (M, C) = dloss[:, None]·(softmax(logits) - q), from the forward's statistics."""
    name = "cross_entropy_backward"
    target = _check(name, logits, target, ignore_index, label_smoothing)
    check_float(name, logits=logits, dloss=dloss, row_max=row_max, log_sum=log_sum)
    for what, a in (("dloss", dloss), ("row_max", row_max), ("log_sum", log_sum)):
        check_shape(name, what, a, logits.shape[:1])
    dz = np.empty(logits.shape, dtype=logits.dtype)
    _backward_kernel(contiguous(dloss), contiguous(logits), target, contiguous(row_max),
                     contiguous(log_sum), ignore_index, logits.dtype.type(label_smoothing), dz)
    return dz
