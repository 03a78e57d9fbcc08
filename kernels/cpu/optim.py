"""One-pass fused optimizer updates, in place: AdamW (and Adam with L2) and SGD, as torch.optim.

Adam, step t = 1, 2, ..., learning rate η, betas β₁ β₂, eps ε, weight decay λ, gradient g:

    AdamW (decoupled):  θ ← θ·(1 - ηλ)            Adam (L2):  g ← g + λθ
    m ← m + (1 - β₁)·(g - m)                      (torch's lerp form of β₁m + (1-β₁)g)
    v ← β₂·v + (1 - β₂)·g²
    θ ← θ - (η / (1 - β₁ᵗ)) · m / (√v / √(1 - β₂ᵗ) + ε)

SGD with momentum μ, dampening τ, Nesterov, weight decay λ (buf is the momentum buffer b):

    g ← g + λθ;   b ← g at the first step, else μ·b + (1 - τ)·g
    d = g + μ·b if nesterov else b (d = g without momentum);   θ ← θ - η·d

Shapes: p, g, m, v, buf any one shape, C-contiguous, one float dtype; updated in place.

What the fused kernels save: the NumPy composite (minigrad.optim) runs ~10 whole-array passes
per Adam step, each reading and writing memory and allocating temporaries. Here each element of
θ, g, m, v is loaded once, updated in registers and stored once: 4 loads and 3 stores, the
least an Adam step can do. The elements are split across the threads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange

from .common import CHUNK, check_float, check_shape, jit, jit_parallel, n_chunks

# Below this many elements a parameter is updated on one thread: starting the thread pool costs
# more than the update (bias vectors, LayerNorm weights).
PARALLEL_MIN_SIZE = 1 << 15


# --- the naive references: torch.optim's single-tensor code, in NumPy ------------------------
def adam_step_reference(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float,
                        beta1: float, beta2: float, eps: float, weight_decay: float, step: int,
                        decoupled: bool = True) -> None:
    """The NumPy composite, in place (AdamW when ``decoupled``, else Adam with L2)."""
    if decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * p
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    denom = np.sqrt(v) / math.sqrt(1 - beta2**step) + eps
    p -= lr / (1 - beta1**step) * m / denom


def sgd_step_reference(p: np.ndarray, g: np.ndarray, buf: np.ndarray | None, lr: float,
                       momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                       nesterov: bool = False, step: int = 1) -> None:
    """The NumPy composite, in place."""
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        if step == 1:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


# --- the fused kernels ------------------------------------------------------------------------
@jit
def _adam_range(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lo: int, hi: int,
                lr: Any, beta1: Any, beta2: Any, eps: Any, weight_decay: Any, step_size: Any,
                sqrt_bc2: Any, decoupled: bool) -> None:
    """Elements lo..hi of the flat arrays; the loop has no branch, so it vectorizes."""
    one = type(lr)(1.0)
    shrink = one - lr * weight_decay if decoupled else one
    l2 = weight_decay if not decoupled else type(lr)(0.0)
    ps, gs, ms, vs = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]  # views indexed from 0: see .common
    for i in range(hi - lo):
        theta = ps[i] * shrink
        gi = gs[i] + l2 * theta
        mi = ms[i] + (one - beta1) * (gi - ms[i])
        vi = beta2 * vs[i] + (one - beta2) * gi * gi
        ms[i] = mi
        vs[i] = vi
        ps[i] = theta - step_size * mi / (math.sqrt(vi) / sqrt_bc2 + eps)


@jit_parallel
def _adam_parallel(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: Any,
                   beta1: Any, beta2: Any, eps: Any, weight_decay: Any, step_size: Any,
                   sqrt_bc2: Any, decoupled: bool) -> None:
    n = p.shape[0]
    for task in prange(n_chunks(n)):
        _adam_range(p, g, m, v, task * CHUNK, min(n, (task + 1) * CHUNK), lr, beta1, beta2,
                    eps, weight_decay, step_size, sqrt_bc2, decoupled)


@jit
def _sgd_range(p: np.ndarray, g: np.ndarray, buf: np.ndarray, lo: int, hi: int, lr: Any,
               momentum: Any, dampening: Any, weight_decay: Any, nesterov: bool,
               first: bool) -> None:
    one = type(lr)(1.0)
    ps, gs = p[lo:hi], g[lo:hi]
    if momentum == type(lr)(0.0):
        for i in range(hi - lo):
            ps[i] -= lr * (gs[i] + weight_decay * ps[i])
        return
    bs = buf[lo:hi]
    zero = type(lr)(0.0)
    damp = one if first else one - dampening  # the first buffer is the gradient itself
    g_coef = one if nesterov else zero  # d = g_coef·g + b_coef·b
    b_coef = momentum if nesterov else one
    for i in range(hi - lo):  # the flags became coefficients and a select: it vectorizes
        gi = gs[i] + weight_decay * ps[i]
        b = damp * gi + (zero if first else momentum * bs[i])
        bs[i] = b
        ps[i] -= lr * (g_coef * gi + b_coef * b)


@jit_parallel
def _sgd_parallel(p: np.ndarray, g: np.ndarray, buf: np.ndarray, lr: Any, momentum: Any,
                  dampening: Any, weight_decay: Any, nesterov: bool, first: bool) -> None:
    n = p.shape[0]
    for task in prange(n_chunks(n)):
        _sgd_range(p, g, buf, task * CHUNK, min(n, (task + 1) * CHUNK), lr, momentum,
                   dampening, weight_decay, nesterov, first)


def _flat(name: str, **arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays as flat views (never copies: the update must land in the caller's arrays)."""
    check_float(name, **arrays)
    shape = next(iter(arrays.values())).shape
    flat = []
    for key, a in arrays.items():
        check_shape(name, key, a, shape)
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{name}: {key} (shape {a.shape}) must be a writeable C-contiguous "
                             "array: it is updated in place")
        flat.append(a.reshape(-1))
    return flat


def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float, step: int,
              decoupled: bool = True) -> None:
    """One Adam update of p, m, v in place (AdamW when ``decoupled``, Adam with L2 otherwise).

    ``step`` is t ≥ 1, counted like torch.optim's ``state["step"]`` after its increment.
    """
    if step < 1:
        raise ValueError(f"adam_step: step counts from 1, got {step}")
    fp, fg, fm, fv = _flat("adam_step", p=p, g=g, m=m, v=v)
    T = p.dtype.type  # noqa: N806
    args = (T(lr), T(beta1), T(beta2), T(eps), T(weight_decay),
            T(lr / (1 - beta1**step)), T(math.sqrt(1 - beta2**step)), decoupled)
    if fp.shape[0] < PARALLEL_MIN_SIZE:
        _adam_range(fp, fg, fm, fv, 0, fp.shape[0], *args)
    else:
        _adam_parallel(fp, fg, fm, fv, *args)


def adamw_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float,
               beta1: float, beta2: float, eps: float, weight_decay: float, step: int) -> None:
    """One AdamW update (decoupled weight decay) of p, m, v in place, as torch.optim.AdamW."""
    adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled=True)


def sgd_step(p: np.ndarray, g: np.ndarray, buf: np.ndarray | None, lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, step: int = 1) -> None:
    """One SGD update of p (and the momentum buffer) in place, as torch.optim.SGD.

    ``buf`` is needed when momentum ≠ 0; at ``step`` 1 it is overwritten with the gradient
    (torch.optim creates the buffer as a copy of the first gradient).
    """
    if momentum and buf is None:
        raise ValueError("sgd_step: momentum needs a buffer array like p, got buf=None")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"sgd_step: Nesterov momentum needs momentum > 0 and dampening = 0, "
                         f"got momentum {momentum} and dampening {dampening}")
    arrays = {"p": p, "g": g} if buf is None else {"p": p, "g": g, "buf": buf}
    flat = _flat("sgd_step", **arrays)
    fbuf = flat[2] if buf is not None else flat[0][:0]
    if buf is None:
        momentum = 0.0
    T = p.dtype.type  # noqa: N806
    args = (T(lr), T(momentum), T(dampening), T(weight_decay), nesterov, step == 1)
    if flat[0].shape[0] < PARALLEL_MIN_SIZE:
        _sgd_range(flat[0], flat[1], fbuf, 0, flat[0].shape[0], *args)
    else:
        _sgd_parallel(flat[0], flat[1], fbuf, *args)
