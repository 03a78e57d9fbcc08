"""Finite-difference gradient checking, and the battery of every op it is run on.

:func:`gradcheck` compares the gradient that ``backward()`` computes with central differences,

    ∂f/∂x_i ≈ (f(x + ε·e_i) - f(x - ε·e_i)) / 2ε,       error O(ε²) + O(machine-eps / ε),

in float64, where ε = 1e-6 balances the two error terms. A non-scalar output ``y`` is reduced to
the scalar ``f = Σ y·w`` with fixed random weights ``w``, which checks the vector-Jacobian
product that backward computes in every direction at once (with probability 1).

:data:`BATTERY` lists one :class:`OpCase` per op and variant. Each builds its inputs from a
shape (so tests can draw the shape with hypothesis) and names the op's PyTorch equivalent in the
tests. ``minigrad gradcheck`` runs the whole battery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad import autograd
from minigrad import ops as O
from minigrad.dtypes import is_floating, is_half
from minigrad.nn import functional as F
from minigrad.tensor import Tensor, float64


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3) -> bool | HalfPrecisionReport:
    """Check ``fn``'s gradients w.r.t. every input that requires grad; True or GradcheckError.

    An element passes when |analytic - numeric| ≤ atol + rtol·|numeric|. The check always runs
    in float64 (in float32, rounding swamps a difference quotient with ε = 1e-6; float32 inputs
    are refused). Half-precision inputs (float16, bfloat16) are checked through float64 copies,
    and the answer is then a :class:`HalfPrecisionReport` (true, as True is): how far ``fn``'s
    forward and backward in the half dtype fall from the float64 ones, a report rather than a
    pass/fail. The inputs' ``.grad`` is left as it was.
    """
    name = getattr(fn, "__name__", "fn")
    half = [t for t in inputs if is_half(t.dtype)]
    if half:
        wide = [Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad)
                if is_half(t.dtype) else t for t in inputs]
        check_tolerance(name, wide, compare_gradients(fn, wide, eps), atol, rtol)
        return half_precision_report(fn, wide, half[0].dtype)
    check_tolerance(name, inputs, compare_gradients(fn, inputs, eps), atol, rtol)
    return True


@dataclass(frozen=True)
class HalfPrecisionReport:
    """How far an op computed in a half dtype falls from float64: the largest absolute error,
    and that error relative to the largest |value| of the float64 result (so one tiny reference
    element does not make a huge relative error), for the output and each input's gradient."""

    dtype: str
    output_abs: float
    output_rel: float
    grads_abs: tuple[float, ...]
    grads_rel: tuple[float, ...]

    def __str__(self) -> str:
        grads = ", ".join(f"{a:.3g} ({r:.3g})" for a, r in zip(self.grads_abs, self.grads_rel,
                                                                 strict=True))
        return (f"{self.dtype}: output max abs error {self.output_abs:.3g} (relative "
                f"{self.output_rel:.3g}); gradients {grads}")


def half_precision_report(fn: Callable[..., Tensor], inputs: Sequence[Tensor],
                          dtype: Any) -> HalfPrecisionReport:
    """Run ``fn`` forward and backward on float64 ``inputs`` and on their copies in ``dtype``
    (float16 or bfloat16; non-float inputs stay as they are), with the same output weights,
    and compare (:class:`HalfPrecisionReport`)."""
    dtype = np.dtype(dtype)

    def run(cast: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        ts = [Tensor(t.data.astype(cast), requires_grad=t.requires_grad) if is_floating(t.dtype)
              else t for t in inputs]
        out = fn(*ts)
        weights = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
        (out * Tensor(weights)).sum().backward()
        grads = [np.zeros(t.shape) if t.grad is None else _host(t.grad).astype(np.float64)
                 for t in ts if t.requires_grad]
        return _host(out.data).astype(np.float64), grads

    ref_out, ref_grads = run(np.float64)
    out, grads = run(dtype)

    def errors(a: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
        err = float(np.abs(a - ref).max(initial=0.0))
        return err, err / max(float(np.abs(ref).max(initial=0.0)), np.finfo(np.float64).tiny)

    out_abs, out_rel = errors(out, ref_out)
    pairs = [errors(g, r) for g, r in zip(grads, ref_grads, strict=True)]
    return HalfPrecisionReport(str(dtype), out_abs, out_rel, tuple(a for a, _ in pairs),
                               tuple(r for _, r in pairs))


def check_tolerance(name: str, inputs: Sequence[Tensor],
                    results: list[tuple[int, np.ndarray, np.ndarray]], atol: float,
                    rtol: float) -> None:
    """Raise GradcheckError at the first element where |analytic - numeric| is too large."""
    for i, analytic, numeric in results:
        bad = ~(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric))
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck failed for {name}: input {i} (shape {inputs[i].shape}) at index "
                f"{idx}: analytic {analytic[idx]:.10g}, numeric {numeric[idx]:.10g}"
            )


def compare_gradients(fn: Callable[..., Tensor], inputs: Sequence[Tensor],
                      eps: float = 1e-6) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(input index, autograd gradient, central-difference gradient) per input needing grad."""
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != float64:
            raise TypeError(f"gradcheck: input {i} (shape {inputs[i].shape}) has dtype "
                            f"{inputs[i].dtype}; finite differences need float64")
    out = fn(*inputs)
    if not isinstance(out, Tensor) or not is_floating(out.dtype):
        raise TypeError(f"gradcheck: {getattr(fn, '__name__', 'fn')} must return a "
                        "floating-point Tensor")
    xp = out.xp
    weights = xp.asarray(np.random.default_rng(0).standard_normal(out.shape))

    def f() -> float:
        with autograd.no_grad():
            return float((fn(*inputs).data * weights).sum())

    saved_grads = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        (out * Tensor(weights)).sum().backward()
        analytic = [_host(inputs[i].grad) if inputs[i].grad is not None
                    else np.zeros(inputs[i].shape) for i in checked]
    finally:
        for t, g in zip(inputs, saved_grads, strict=True):
            t.grad = g

    results = []
    for i, grad in zip(checked, analytic, strict=True):
        data = inputs[i].data
        numeric = np.zeros(data.shape)
        for idx in np.ndindex(data.shape):
            orig = float(data[idx])
            data[idx] = orig + eps
            f_plus = f()
            data[idx] = orig - eps
            f_minus = f()
            data[idx] = orig
            numeric[idx] = (f_plus - f_minus) / (2 * eps)
        results.append((i, grad, numeric))
    return results


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


# --- the op battery ------------------------------------------------------------------------
Arrays = list[np.ndarray]
Build = Callable[[np.random.Generator, tuple[int, ...]], tuple[Arrays, dict[str, Any]]]


@dataclass(frozen=True)
class OpCase:
    """One op (or variant) under test.

    ``build(rng, shape)`` returns the input arrays (all differentiated) and constant keyword
    parameters (dims, indices, targets); ``fn(*tensors, **params)`` runs the op. ``shape`` is
    any shape with ``min_ndim``..``max_ndim`` dims of sizes ≥ ``min_side``.
    """

    name: str
    fn: Callable[..., Tensor]
    build: Build
    min_ndim: int = 0
    max_ndim: int = 4
    min_side: int = 1
    example_shape: tuple[int, ...] = (2, 3, 4)


def broadcast_partner(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against ``shape``: some leading dims dropped, some set to 1."""
    drop = int(rng.integers(0, len(shape) + 1))
    return tuple(1 if rng.random() < 0.4 else n for n in shape[drop:])


def _pair(rng: np.random.Generator, shape: tuple[int, ...],
          sample: Callable[[tuple[int, ...]], np.ndarray]) -> Arrays:
    """Two operands where one, chosen at random, is broadcast against the other."""
    other = broadcast_partner(rng, shape)
    a, b = sample(shape), sample(other)
    return [a, b] if rng.random() < 0.5 else [b, a]


def _normal(rng: np.random.Generator) -> Callable[[tuple[int, ...]], np.ndarray]:
    return lambda s: rng.standard_normal(s)


def _positive(rng: np.random.Generator) -> Callable[[tuple[int, ...]], np.ndarray]:
    return lambda s: rng.uniform(0.5, 2.0, s)


def _away_from_zero(rng: np.random.Generator) -> Callable[[tuple[int, ...]], np.ndarray]:
    """Values with |x| in [0.1, 2]: clear of the kinks of relu and abs, and of division by 0."""
    return lambda s: rng.choice([-1.0, 1.0], s) * rng.uniform(0.1, 2.0, s)


def _distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values 0.1 apart in random order, so max/min have no ties within ε."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape)


def _grid(rng: np.random.Generator, offset: float) -> Callable[[tuple[int, ...]], np.ndarray]:
    """Multiples of 0.02 plus ``offset``: two grids with different offsets never tie."""
    return lambda s: rng.integers(-50, 50, s) * 0.02 + offset


def _unary(sample: Callable[[np.random.Generator], Callable]) -> Build:
    return lambda rng, shape: ([sample(rng)(shape)], {})


def _binary(sample: Callable[[np.random.Generator], Callable]) -> Build:
    return lambda rng, shape: (_pair(rng, shape, sample(rng)), {})


def _dim(rng: np.random.Generator, shape: tuple[int, ...]) -> int:
    return int(rng.integers(-len(shape), len(shape)))


def _reduce_params(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
    """dim=None, one dim, or a tuple of dims; keepdim either way."""
    kind = rng.integers(0, 3) if shape else 0
    if kind == 0:
        dim: Any = None
    elif kind == 1:
        dim = _dim(rng, shape)
    else:
        dim = tuple(int(d) for d in rng.choice(len(shape), size=min(2, len(shape)),
                                               replace=False))
    return {"dim": dim, "keepdim": bool(rng.integers(0, 2))}


def _build_reduce(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [_distinct(rng, shape)], _reduce_params(rng, shape)


def _build_var(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    params = _reduce_params(rng, shape)
    return [rng.standard_normal(shape)], params


def _build_clip(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    # |x| in [0.05, 0.45] or [0.55, 1]: clear of the bounds ±0.5
    mag = np.where(rng.random(shape) < 0.5, rng.uniform(0.05, 0.45, shape),
                   rng.uniform(0.55, 1.0, shape))
    return [rng.choice([-1.0, 1.0], shape) * mag], {"min": -0.5, "max": 0.5}


def _build_maximum(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    a, b = _grid(rng, 0.0)(shape), _grid(rng, 0.01)(broadcast_partner(rng, shape))
    return [a, b] if rng.random() < 0.5 else [b, a], {}


def _build_where(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    a, b = _pair(rng, shape, _normal(rng))
    out = np.broadcast_shapes(a.shape, b.shape)
    return [a, b], {"condition": rng.random(broadcast_partner(rng, out)) < 0.5}


def _build_masked_fill(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {
        "mask": rng.random(broadcast_partner(rng, shape)) < 0.5, "value": -2.5}


def _build_reshape(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    n = int(np.prod(shape))
    return [rng.standard_normal(shape)], {"shape": (n,) if n % 2 else (2, -1)}


def _build_transpose(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"dim0": _dim(rng, shape), "dim1": _dim(rng, shape)}


def _build_permute(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"dims": tuple(int(d) for d in
                                                         rng.permutation(len(shape)))}


def _build_unsqueeze(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"dim": int(rng.integers(-len(shape) - 1,
                                                                  len(shape) + 1))}


def _build_squeeze(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    with_ones = tuple(1 if rng.random() < 0.5 else n for n in shape)
    return [rng.standard_normal(with_ones)], {"dim": _dim(rng, shape)}


def _build_expand(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    small = broadcast_partner(rng, shape)
    target = tuple(-1 if (i >= len(shape) - len(small) and rng.random() < 0.3) else n
                   for i, n in enumerate(shape))
    return [rng.standard_normal(small)], {"sizes": target}


def _build_slice(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    index = tuple(slice(int(rng.integers(0, n)), None, int(rng.integers(1, 3))) for n in shape)
    return [rng.standard_normal(shape)], {"index": (Ellipsis,) + index[1:] if index else ()}


def _build_int_index(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """x[ids] or x[..., ids], ids 1-D or 2-D, negative ids included, one id always repeated
    (the gradients of a repeated id must accumulate)."""
    last = len(shape) > 1 and rng.random() < 0.5
    n = shape[-1] if last else shape[0]
    ids = rng.integers(-n, n, size=int(rng.integers(1, 5)))
    ids = np.append(ids, ids[0])
    if rng.random() < 0.3:
        ids = np.stack([ids, rng.permutation(ids)])
    return [rng.standard_normal(shape)], {"index": (Ellipsis, ids) if last else ids}


def _build_bool_index(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """x[mask] with a mask over all dims or only the leading ones."""
    k = int(rng.integers(1, len(shape) + 1))
    return [rng.standard_normal(shape)], {"index": rng.random(shape[:k]) < 0.5}


def _build_cat(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    d = int(rng.integers(0, len(shape)))
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        s = list(shape)
        s[d] = int(rng.integers(1, 4))
        parts.append(rng.standard_normal(s))
    return parts, {"dim": d}


def _build_stack(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    k = int(rng.integers(1, 4))
    return [rng.standard_normal(shape) for _ in range(k)], {
        "dim": int(rng.integers(-len(shape) - 1, len(shape) + 1))}


def _build_matmul(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """A (..., m, k) @ B (..., k, n), one operand's batch dims broadcast."""
    *batch, m, k = shape
    n = int(rng.integers(1, 5))
    a_batch = tuple(batch)
    b_batch = broadcast_partner(rng, a_batch)
    if rng.random() < 0.5:
        a_batch, b_batch = b_batch, a_batch
    return [rng.standard_normal(a_batch + (m, k)), rng.standard_normal(b_batch + (k, n))], {}


def _build_matvec(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """1-D operands: vector @ matrix, matrix @ vector, or vector @ vector."""
    k = shape[-1]
    kind = int(rng.integers(0, 3))
    mat = rng.standard_normal(shape[:-1] + (k, int(rng.integers(1, 4))))
    vec = rng.standard_normal(k)
    if kind == 0:
        return [vec, mat], {}
    if kind == 1:
        return [rng.standard_normal(shape), vec], {}
    return [vec, rng.standard_normal(k)], {}


def _build_softmax(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape) * 2], {"dim": _dim(rng, shape)}


def _build_layer_norm(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    k = int(rng.integers(1, min(2, len(shape)) + 1))
    norm = shape[len(shape) - k:]
    return [rng.standard_normal(shape), rng.standard_normal(norm), rng.standard_normal(norm)], {
        "normalized_shape": norm}


def _build_embedding(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    v, d = shape
    ids = rng.integers(0, v, size=(int(rng.integers(1, 4)), int(rng.integers(1, 5))))
    return [rng.standard_normal((v, d))], {"idx": ids}  # ids repeat when v is small


def _build_dropout(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"mask": rng.random(shape) >= 0.3, "p": 0.3}


def _build_linear(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    out = int(rng.integers(1, 5))
    return [rng.standard_normal(shape), rng.standard_normal((out, shape[-1])),
            rng.standard_normal(out)], {}


def _build_attention(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """q (B, A, L, D); k, v (B, A, S, D), (B, A, S, Dv): half the time self-attention shapes
    (S = L, Dv = D, which the fused kernel takes), else S and Dv drawn. A key padding mask
    (B, S), or none, that keeps at least one key of each sequence; scale 1/√D or given."""
    b, a, n, d = shape
    s, dv = (n, d) if rng.random() < 0.5 else (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    padding = None
    if rng.random() < 0.7:
        padding = rng.random((b, s)) < 0.4
        padding[np.arange(b), rng.integers(0, s, b)] = False
    return [rng.standard_normal((b, a, n, d)), rng.standard_normal((b, a, s, d)),
            rng.standard_normal((b, a, s, dv))], {
        "key_padding_mask": padding, "scale": None if rng.random() < 0.5 else 0.7}


def _build_attention_dropout(rng: np.random.Generator, shape: tuple[int, ...]
                             ) -> tuple[Arrays, dict]:
    arrays, params = _build_attention(rng, shape)
    q, k = arrays[0], arrays[1]
    return arrays, {**params, "mask": rng.random(q.shape[:3] + k.shape[2:3]) >= 0.3, "p": 0.3}


def _build_regression(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"target": rng.standard_normal(shape),
                                          "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_bce(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.uniform(0.05, 0.95, shape)], {
        "target": rng.random(shape), "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_bce_logits(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape) * 3], {
        "target": rng.random(shape), "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_cross_entropy(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """Logits (C,), (N, C) or (N, C, d...); optional label smoothing; some targets ignored,
    with ignore_index the default -100 or a class id, but never all of them (where PyTorch's
    mean is 0/0 = NaN and minigrad's is 0)."""
    c = shape[1] if len(shape) >= 2 else shape[0]
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = rng.integers(0, c, size=target_shape)
    ignore_index = int(rng.integers(0, c)) if c > 1 and rng.random() < 0.3 else -100
    if target.ndim and rng.random() < 0.5:
        target[rng.random(target_shape) < 0.3] = ignore_index
    if (target == ignore_index).all():
        target.flat[0] = (ignore_index + 1) % c
    return [rng.standard_normal(shape) * 2], {
        "target": target, "ignore_index": ignore_index,
        "label_smoothing": float(rng.choice([0.0, 0.1])),
        "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_loss_and_target(sample_input: Callable, sample_target: Callable) -> Build:
    """A loss whose target is differentiated too (both are inputs), as torch allows."""
    return lambda rng, shape: ([sample_input(rng, shape), sample_target(rng, shape)], {
        "reduction": str(rng.choice(["mean", "sum", "none"]))})


def _build_mixed_index(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """x[i, :, ids]: an int, a slice and an integer array, the case where torch's order of dims
    differs from NumPy's."""
    n = shape[2]
    ids = rng.integers(-n, n, size=int(rng.integers(1, 4)))
    return [rng.standard_normal(shape)], {"index": (int(rng.integers(-shape[0], shape[0])),
                                                    slice(None), ids)}


def _build_setitem(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """x[index] = v for a slice, distinct integer ids (a repeated id's write is undefined in
    torch), a boolean mask, or the mixed index; v the shape of x[index], or broadcast into it."""
    kind = rng.choice(["slice", "ids", "mask"] + (["mixed"] if len(shape) >= 3 else []))
    if kind == "slice":
        index = tuple(slice(int(rng.integers(0, n)), None, int(rng.integers(1, 3))) for n in shape)
    elif kind == "ids":
        index = rng.permutation(shape[0])[:int(rng.integers(1, shape[0] + 1))]
    elif kind == "mask":
        index = rng.random(shape[:int(rng.integers(1, len(shape) + 1))]) < 0.5
    else:
        index = (int(rng.integers(0, shape[0])), slice(None),
                 rng.permutation(shape[2])[:int(rng.integers(1, shape[2] + 1))])
    x = rng.standard_normal(shape)
    picked = Tensor(x)[index].shape
    value_shape = picked[1:] if picked and rng.random() < 0.3 else picked  # broadcast, sometimes
    return [x, rng.standard_normal(value_shape)], {"index": index}


def _setitem(x: Tensor, v: Tensor, index: Any) -> Tensor:
    y = x * 1.0  # a non-leaf copy: x[index] = v on the leaf itself is refused, as in torch
    y[index] = v
    return y


def _build_inplace(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """a.op_(b) with b broadcast into a's shape (the target of an in-place op never grows)."""
    op = str(rng.choice(["add_", "sub_", "mul_", "div_"]))
    sample = _away_from_zero(rng)
    return [sample(shape), sample(broadcast_partner(rng, shape))], {"op": op}


def _inplace(a: Tensor, b: Tensor, op: str) -> Tensor:
    y = a * 1.0
    getattr(y, op)(b)
    return y


def _dropout_with_mask(x: Tensor, mask: np.ndarray, p: float) -> Tensor:
    """Dropout with a given keep-mask, so finite differences see the same mask every call."""
    from minigrad.ops.nn import Dropout

    return Dropout.apply(x, keep=x.xp.asarray(mask), p=p)


def _attention_with_dropout_mask(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Any,
                                 scale: float | None, mask: np.ndarray, p: float) -> Tensor:
    """Attention with a given dropout keep-mask (B, A, L, S), so finite differences see the same
    mask every call."""
    from minigrad.ops.nn import ScaledDotProductAttention

    padding = None if key_padding_mask is None else q.xp.asarray(key_padding_mask)
    return ScaledDotProductAttention.apply(
        q, k, v, key_padding_mask=padding, dropout_keep=q.xp.asarray(mask), dropout_p=p,
        scale=1 / np.sqrt(q.shape[-1]) if scale is None else scale)


# indexing, scans and sorting (issue 15)
def _any_dim(rng: np.random.Generator, shape: tuple[int, ...]) -> int:
    """A dim of ``shape``, negative or not; 0 or -1 for a 0-d shape (torch reads it as (1,))."""
    return _dim(rng, shape) if shape else int(rng.choice([0, -1]))


def _build_gather(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """An index of x's dims, no larger in the others (and any size along dim), values repeating;
    for a 0-d x a 0-d or 1-d index of zeros."""
    d = _any_dim(rng, shape)
    if not shape:
        size: Any = () if rng.random() < 0.5 else int(rng.integers(0, 4))
        return [rng.standard_normal(())], {"dim": d, "index": np.zeros(size, dtype=np.int64)}
    n = shape[d]
    size = [int(rng.integers(0, m + 1)) for m in shape]
    size[d] = int(rng.integers(0, 5)) if n else 0
    return [rng.standard_normal(shape)], {"dim": d, "index": rng.integers(0, max(n, 1), size)}


def _scatter_args(rng: np.random.Generator, shape: tuple[int, ...], distinct: bool
                  ) -> tuple[np.ndarray, dict]:
    """x, an index no larger than x but along dim, and src's shape: the index's (a larger src,
    which minigrad takes, makes torch's backward fail, so the torch tests cannot draw one).
    ``distinct``: no line along dim repeats a position (scatter's write to a repeated one is
    undefined in torch); else positions repeat (scatter_add accumulates them)."""
    d = _any_dim(rng, shape)
    if not shape:
        index = np.zeros(() if rng.random() < 0.5 else 1, dtype=np.int64)
        return rng.standard_normal(()), {"dim": d, "index": index, "src": index.shape}
    n = shape[d]
    size = [int(rng.integers(0, m + 1)) for m in shape]
    if distinct:  # the first positions of a random order of each line
        size[d] = n
        order = np.argsort(rng.random(size), axis=d)
        index = np.take(order, np.arange(int(rng.integers(0, n + 1))), axis=d)
    else:
        size[d] = int(rng.integers(0, 5)) if n else 0
        index = rng.integers(0, max(n, 1), size)
    return rng.standard_normal(shape), {"dim": d, "index": index, "src": index.shape}


def _build_scatter(distinct: bool) -> Build:
    def build(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
        x, params = _scatter_args(rng, shape, distinct)
        return [x, rng.standard_normal(params.pop("src"))], params

    return build


def _build_scatter_value(rng: np.random.Generator, shape: tuple[int, ...]
                         ) -> tuple[Arrays, dict]:
    x, params = _scatter_args(rng, shape, distinct=False)  # one value: repeats write it alike
    del params["src"]
    return [x], {**params, "value": 2.5}


def _build_index_select(rng: np.random.Generator, shape: tuple[int, ...]
                        ) -> tuple[Arrays, dict]:
    """A 1-D index (entries repeating), sometimes 0-d; one entry for a 0-d x."""
    d = _any_dim(rng, shape)
    n = shape[d] if shape else 1
    if (not shape or rng.random() < 0.2) and n:
        index = np.asarray(rng.integers(0, n)) if rng.random() < 0.5 else rng.integers(0, n, 1)
    else:
        index = rng.integers(0, max(n, 1), int(rng.integers(0, 5)) if n else 0)
    return [rng.standard_normal(shape)], {"dim": d, "index": index}


def _build_masked_select(rng: np.random.Generator, shape: tuple[int, ...]
                         ) -> tuple[Arrays, dict]:
    """A mask broadcast against x, or x broadcast against the mask."""
    x_shape, mask_shape = shape, broadcast_partner(rng, shape)
    if rng.random() < 0.5:
        x_shape, mask_shape = mask_shape, x_shape
    return [rng.standard_normal(x_shape)], {"mask": rng.random(mask_shape) < 0.5}


def _build_take_along_dim(rng: np.random.Generator, shape: tuple[int, ...]
                          ) -> tuple[Arrays, dict]:
    """dim=None (indices into the flattened x), or a dim with x and the indices broadcast
    against each other in the other dims."""
    if not shape or rng.random() < 0.25:
        n = int(np.prod(shape))
        size = (int(rng.integers(0, 5)) if n else 0,)
        return [rng.standard_normal(shape)], {"indices": rng.integers(0, max(n, 1), size),
                                              "dim": None}
    d = _dim(rng, shape)
    x_shape, ids_shape = list(shape), list(shape)
    for a in range(len(shape)):
        if a != d % len(shape) and rng.random() < 0.4:
            (x_shape if rng.random() < 0.5 else ids_shape)[a] = 1
    n = shape[d]
    ids_shape[d] = int(rng.integers(0, 5)) if n else 0
    return [rng.standard_normal(x_shape)], {"indices": rng.integers(0, max(n, 1), ids_shape),
                                            "dim": d}


def _build_scan(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"dim": _any_dim(rng, shape)}


def _build_cumprod(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """A quarter of the values exactly 0: the backward must not divide by the input."""
    x = np.where(rng.random(shape) < 0.25, 0.0, _away_from_zero(rng)(shape))
    return [x], {"dim": _any_dim(rng, shape)}


def _build_sort(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [_distinct(rng, shape)], {"dim": _any_dim(rng, shape),
                                     "descending": bool(rng.integers(0, 2)),
                                     "stable": bool(rng.integers(0, 2))}


def _build_topk(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    d = _any_dim(rng, shape)
    n = shape[d] if shape else 1
    return [_distinct(rng, shape)], {"k": int(rng.integers(0, n + 1)), "dim": d,
                                     "largest": bool(rng.integers(0, 2))}


def _build_flip(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """Any subset of the dims (none too), some spelled negative."""
    nd = max(len(shape), 1)
    chosen = rng.permutation(nd)[:int(rng.integers(0, nd + 1))]
    return [rng.standard_normal(shape)], {
        "dims": tuple(int(a) - nd * int(rng.integers(0, 2)) for a in chosen)}


def _build_roll(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """dims=None with one shift, one dim (as ints), or several dims with a shift each; shifts
    beyond the size and negative."""
    x = rng.standard_normal(shape)
    if not shape or rng.random() < 0.3:
        return [x], {"shifts": int(rng.integers(-5, 6)), "dims": None}
    k = int(rng.integers(1, len(shape) + 1))
    dims = tuple(int(d) for d in rng.choice(len(shape), size=k, replace=False))
    shifts = tuple(int(s) for s in rng.integers(-5, 6, k))
    if k == 1 and rng.random() < 0.5:
        return [x], {"shifts": shifts[0], "dims": dims[0]}
    return [x], {"shifts": shifts, "dims": dims}

# --- shape ops, reductions and einsum (issue 15) ---------------------------------------------
def _sections(rng: np.random.Generator, n: int) -> int | list[int]:
    """A split size (1..n+1, or 0..2 for an empty dim), or sizes (some 0) that sum to n."""
    if rng.random() < 0.5:
        return int(rng.integers(1, n + 2)) if n else int(rng.integers(0, 3))
    cuts = np.sort(rng.integers(0, n + 1, size=int(rng.integers(0, 3))))
    return [int(k) for k in np.diff(np.concatenate([[0], cuts, [n]]))]


def _build_split(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    d = _dim(rng, shape)
    return [rng.standard_normal(shape)], {"split_size_or_sections": _sections(rng, shape[d]),
                                          "dim": d}


def _build_chunk(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"chunks": int(rng.integers(1, 5)),
                                          "dim": _dim(rng, shape)}


def _weighted_cat(pieces: Sequence[Tensor], dim: int) -> Tensor:
    """The pieces joined again, piece i times i + 1: a wrong boundary changes the gradient."""
    return O.cat([p * (i + 1.0) for i, p in enumerate(pieces)], dim)


def _build_triangle(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {"diagonal": int(rng.integers(-3, 4))}


def _build_repeat(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    extra = int(rng.integers(0, 2))
    return [rng.standard_normal(shape)], {
        "sizes": tuple(int(r) for r in rng.integers(0, 3, size=len(shape) + extra))}


def _build_repeat_interleave(rng: np.random.Generator, shape: tuple[int, ...]
                             ) -> tuple[Arrays, dict]:
    """An int or a tensor of repeats (one per slice, or a single one), over a dim or over the
    flattened input (dim None)."""
    dim = _dim(rng, shape) if shape and rng.random() < 0.7 else None
    n = int(np.prod(shape)) if dim is None else shape[dim]
    kind = rng.integers(0, 3)
    repeats: Any = (int(rng.integers(0, 3)) if kind == 0 else rng.integers(0, 3, size=n)
                    if kind == 1 else rng.integers(0, 3, size=1))
    return [rng.standard_normal(shape)], {"repeats": repeats, "dim": dim}


def _repeat_interleave(x: Tensor, repeats: Any, dim: int | None) -> Tensor:
    r = repeats if isinstance(repeats, int) else Tensor(repeats)
    return x.repeat_interleave(r, dim)


def _build_pad_constant(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """(before, after) widths in -1..2 for the last k dims (a width never cuts more than the
    dim holds), any fill value."""
    pad: list[int] = []
    for n in reversed(shape[len(shape) - int(rng.integers(0, len(shape) + 1)):]):
        b = int(rng.integers(-min(n, 1), 3))
        pad += [b, int(rng.integers(-min(n + min(b, 0), 1), 3))]
    return [rng.standard_normal(shape)], {"pad": tuple(pad), "mode": "constant",
                                          "value": float(rng.choice([0.0, -1.5]))}


def _build_pad_mirror(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """reflect or replicate over the last k = ndim - 1 or ndim - 2 dims (1 ≤ k ≤ 3), as torch
    allows; reflect widths below the dim's size."""
    mode = str(rng.choice(["reflect", "replicate"]))
    k = int(rng.choice([c for c in (len(shape) - 1, len(shape) - 2) if 1 <= c <= 3]))
    pad: list[int] = []
    for n in reversed(shape[len(shape) - k:]):
        top = n if mode == "reflect" else 4
        pad += [int(rng.integers(0, top)), int(rng.integers(0, top))]
    return [rng.standard_normal(shape)], {"pad": tuple(pad), "mode": mode, "value": None}


def _build_unflatten(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    d = _dim(rng, shape)
    n = shape[d]
    f = int(rng.choice([f for f in range(1, 5) if n % f == 0]))
    sizes = [(f, n // f), (n // f, 1, f), (n,)][int(rng.integers(0, 3))]
    if np.prod(sizes[1:]) and rng.random() < 0.4:  # -1 is inferred only beside no 0
        sizes = (-1,) + sizes[1:]
    return [rng.standard_normal(shape)], {"dim": d, "sizes": sizes}


def _build_movedim(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    ndim = max(len(shape), 1)  # a 0-d tensor takes dim 0 (or -1), as torch
    k = int(rng.integers(1, ndim + 1))
    source = [int(d) - (ndim if rng.random() < 0.3 else 0) for d in rng.permutation(ndim)[:k]]
    destination = [int(d) for d in rng.permutation(ndim)[:k]]
    if k == 1 and rng.random() < 0.5:
        return [rng.standard_normal(shape)], {"source": source[0],
                                              "destination": destination[0]}
    return [rng.standard_normal(shape)], {"source": tuple(source),
                                          "destination": tuple(destination)}


EINSUM_EQUATIONS = (
    "bij,bjk->bik",        # batch matmul
    "...ij,...jk->...ik",  # batch matmul, the batch dims broadcast
    "i,j->ij",             # outer product
    "ii->",                # trace
    "ii->i",               # diagonal
    "iij,jk->ki",          # a diagonal inside a product
    "ij->j",               # a sum
    "...i,i",              # implicit output: '...' first
    "ba,ca",               # implicit output: b c
    "bn,anm,bm->ba",       # bilinear form, three operands
    "i...->...",           # a sum over a named dim, '...' kept
    "...->",               # everything summed
)


def _build_einsum(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """One of :data:`EINSUM_EQUATIONS`; ``shape`` is the batch shape under '...', which one
    operand (chosen at random) has in full and the others broadcast (dims dropped or 1)."""
    equation = str(rng.choice(EINSUM_EQUATIONS))
    terms = equation.split("->")[0].split(",")
    size = {c: int(rng.integers(1, 4)) for c in set(equation) if c.isalpha()}
    full = int(rng.integers(0, len(terms)))
    arrays = []
    for i, term in enumerate(terms):
        batch = shape if i == full else broadcast_partner(rng, shape)
        dims: list[int] = []
        for part in term.split("..."):
            dims += [size[c] for c in part] + list(batch)
        arrays.append(rng.standard_normal(tuple(dims[:len(dims) - len(batch)])))
    return arrays, {"equation": equation}


def _build_std(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [rng.standard_normal(shape)], {**_reduce_params(rng, shape),
                                          "correction": int(rng.integers(0, 2))}


def _build_prod(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """One dim or all; half the time with one or two exact zeros (the gradient must not
    divide by x)."""
    x = np.array(_away_from_zero(rng)(shape))
    if x.size and rng.random() < 0.5:
        x.flat[rng.integers(0, x.size, size=int(rng.integers(1, 3)))] = 0.0
    if rng.random() < 0.3:
        return [x], {"dim": None, "keepdim": False}
    dim = _dim(rng, shape) if shape else int(rng.choice([0, -1]))
    return [x], {"dim": dim, "keepdim": bool(rng.integers(0, 2))}


def _build_logsumexp(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    params = _reduce_params(rng, shape)
    if params["dim"] is None:  # logsumexp needs a dim: every dim, as a tuple
        params["dim"] = tuple(range(len(shape))) if shape else 0
    return [rng.standard_normal(shape) * 3], params


def _build_max_dim(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    dim = _dim(rng, shape) if shape else int(rng.choice([0, -1]))
    return [_distinct(rng, shape)], {"dim": dim, "keepdim": bool(rng.integers(0, 2))}
def _off_integers(rng: np.random.Generator) -> Callable[[tuple[int, ...]], np.ndarray]:
    """An integer plus a fraction in [0.1, 0.4] or [0.6, 0.9]: 0.1 clear of the jumps of floor,
    ceil, round (at integers and halves) and sign (at 0)."""
    return lambda s: (rng.integers(-3, 3, s) + rng.choice([0.1, 0.6], s)
                      + rng.uniform(0.0, 0.3, s))


def _build_softplus(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """Values k·0.02 + 0.01 in (-1, 1): with β ∈ {1, 2} and threshold 1, βx is 0.01 or more
    from the threshold, where softplus jumps to the identity (threshold 20: never reached)."""
    return [_grid(rng, 0.01)(shape)], {"beta": float(rng.choice([1.0, 2.0])),
                                       "threshold": float(rng.choice([1.0, 20.0]))}


def _build_leaky_relu(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    return [_away_from_zero(rng)(shape)], {"negative_slope": float(rng.choice([0.01, 0.2]))}


def _build_elu(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    # away from 0: for α ≠ 1 the derivative jumps there
    return [_away_from_zero(rng)(shape)], {"alpha": float(rng.choice([1.0, 0.5]))}


def _build_lerp(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """input, end and weight, each either of ``shape`` or broadcast against it (one of them at
    least full-shaped), the weight in [-0.5, 1.5]: both of torch's branches (|w| < ½ or not)."""
    shapes = [shape] + [broadcast_partner(rng, shape) for _ in range(2)]
    shapes = [shapes[i] for i in rng.permutation(3)]
    return [rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1]),
            rng.uniform(-0.5, 1.5, shapes[2])], {}


def _build_lerp_scalar(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    a, b = _pair(rng, shape, _normal(rng))
    return [a, b], {"weight": float(rng.choice([0.3, 0.8]))}


def _build_rms_norm(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    k = int(rng.integers(1, min(2, len(shape)) + 1))
    norm = shape[len(shape) - k:]
    return [rng.standard_normal(shape), rng.standard_normal(norm)], {
        "normalized_shape": norm, "eps": None if rng.random() < 0.5 else 1e-5}


def _build_nll_loss(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """Log-probabilities and targets as for cross_entropy (some ignored, never all), with or
    without class weights."""
    arrays, params = _build_cross_entropy(rng, shape)
    c = shape[1] if len(shape) >= 2 else shape[0]
    weight = rng.uniform(0.5, 2.0, c) if rng.random() < 0.5 else None
    return arrays, {"target": params["target"], "weight": weight,
                    "ignore_index": params["ignore_index"], "reduction": params["reduction"]}


def _build_soft_cross_entropy(rng: np.random.Generator, shape: tuple[int, ...]
                              ) -> tuple[Arrays, dict]:
    """Logits and class probabilities of one shape, (C,), (N, C) or (N, C, d...), both
    differentiated; the probabilities sum to 1 over the class dim, or not (torch allows it)."""
    dim = 0 if len(shape) == 1 else 1
    q = rng.random(shape)
    if rng.random() < 0.5:
        q = q / q.sum(axis=dim, keepdims=True)
    return [rng.standard_normal(shape) * 2, q], {
        "label_smoothing": float(rng.choice([0.0, 0.1])),
        "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_kl_div(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """Log-probabilities and a target in (0, 1] (or its log, with log_target), both
    differentiated; every reduction, batchmean included."""
    log_target = bool(rng.integers(0, 2))
    target = rng.uniform(0.05, 1.0, shape)
    return [rng.standard_normal(shape), np.log(target) if log_target else target], {
        "reduction": str(rng.choice(["mean", "batchmean", "sum", "none"])),
        "log_target": log_target}


def _build_bce_pos_weight(rng: np.random.Generator, shape: tuple[int, ...]
                          ) -> tuple[Arrays, dict]:
    """Logits and targets (both differentiated) with a pos_weight of the last dim's shape (one
    weight per class) or broadcast from fewer dims."""
    weight_shape = shape[-1:] if shape and rng.random() < 0.5 else broadcast_partner(rng, shape)
    return [rng.standard_normal(shape) * 3, rng.random(shape)], {
        "pos_weight": rng.uniform(0.2, 3.0, weight_shape),
        "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_smooth_l1(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """input and target (both differentiated) at least 0.1 apart: clear of the kink of |d| at 0
    (β = 0); β ∈ {0, 0.5, 1} puts |d| on both sides of β."""
    x = rng.standard_normal(shape)
    return [x, x + _away_from_zero(rng)(shape)], {
        "beta": float(rng.choice([0.0, 0.5, 1.0])),
        "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_huber(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    x = rng.standard_normal(shape)
    return [x, x + rng.standard_normal(shape) * 1.5], {
        "delta": float(rng.choice([0.5, 1.0, 2.0])),
        "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _build_distillation(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
    """Student logits (differentiated) and the teacher's (a constant) of one shape, (C,), (N, C)
    or (N, C, d...); class ids as for cross_entropy (some ignored, never all); T on both sides
    of 1 and α anywhere in [0, 1], its ends included."""
    arrays, params = _build_cross_entropy(rng, shape)
    return arrays, {
        "teacher_logits": rng.standard_normal(shape) * 2, "target": params["target"],
        "T": float(rng.choice([0.5, 1.0, 2.0, 4.0])),
        "alpha": float(rng.choice([0.0, rng.random(), 1.0])),
        "ignore_index": params["ignore_index"], "reduction": params["reduction"]}


# attention masks (issue 15)
def _build_attention_masked(kind: str) -> Build:
    """q, k, v as :func:`_build_attention`, with a mask of ``kind``: "bool" or "float"
    ``attn_mask`` of a shape that broadcasts to (B, A, L, S) (leading dims dropped, some set to
    1; the float one holds some -inf), or "causal". Some key, unpadded, is attended by every
    query row, so no row is fully masked (where torch's rule and minigrad's differ)."""

    def build(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[Arrays, dict]:
        arrays, params = _build_attention(rng, shape)
        q, k = arrays[0], arrays[1]
        b, a, n, s = q.shape[:3] + k.shape[2:3]
        seen = 0 if kind == "causal" else int(rng.integers(0, s))  # a key every row attends
        if params["key_padding_mask"] is not None:
            params["key_padding_mask"][:, seen] = False
        if kind == "causal":
            return arrays, {**params, "is_causal": True}
        mask_shape = broadcast_partner(rng, (b, a, n, s))
        column = (..., seen if mask_shape[-1:] == (s,) else 0)  # () for a 0-d mask: all of it
        if kind == "bool":
            mask = np.asarray(rng.random(mask_shape) < 0.6)
            mask[column if mask.ndim else ()] = True
        else:
            mask = np.asarray(rng.standard_normal(mask_shape))
            mask[rng.random(mask_shape) < 0.2] = -np.inf
            mask[column if mask.ndim else ()] = 0.5
        return arrays, {**params, "attn_mask": mask}

    return build


def _attention_masked(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Any,
                      scale: float | None, attn_mask: Any = None, is_causal: bool = False
                      ) -> Tensor:
    """F.scaled_dot_product_attention with a float attn_mask cast to q's dtype (as torch, it
    takes bool or q's dtype)."""
    if attn_mask is not None and attn_mask.dtype != bool:
        attn_mask = attn_mask.astype(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=is_causal, scale=scale,
                                          key_padding_mask=key_padding_mask)


BATTERY: list[OpCase] = [
    OpCase("add", lambda a, b: a + b, _binary(_normal)),
    OpCase("sub", lambda a, b: a - b, _binary(_normal)),
    OpCase("mul", lambda a, b: a * b, _binary(_normal)),
    OpCase("div", lambda a, b: a / b, _binary(_away_from_zero)),
    OpCase("pow_scalar", lambda x: x**2.5, _unary(_positive)),
    OpCase("pow", lambda a, b: a**b, _binary(_positive)),
    OpCase("neg", lambda x: -x, _unary(_normal)),
    OpCase("exp", lambda x: x.exp(), _unary(_normal)),
    OpCase("log", lambda x: x.log(), _unary(_positive)),
    OpCase("sqrt", lambda x: x.sqrt(), _unary(_positive)),
    OpCase("tanh", lambda x: x.tanh(), _unary(_normal)),
    OpCase("sigmoid", lambda x: x.sigmoid(), _unary(_normal)),
    OpCase("relu", lambda x: x.relu(), _unary(_away_from_zero)),
    OpCase("abs", lambda x: x.abs(), _unary(_away_from_zero)),
    OpCase("clip", lambda x, min, max: x.clip(min, max), _build_clip),
    OpCase("maximum", lambda a, b: O.maximum(a, b), _build_maximum),
    OpCase("where", lambda a, b, condition: O.where(condition, a, b), _build_where),
    OpCase("masked_fill", lambda x, mask, value: x.masked_fill(mask, value), _build_masked_fill),
    OpCase("sum", lambda x, dim, keepdim: x.sum(dim, keepdim), _build_reduce),
    OpCase("mean", lambda x, dim, keepdim: x.mean(dim, keepdim), _build_reduce),
    OpCase("max", lambda x, dim, keepdim: x.amax(dim, keepdim), _build_reduce),
    OpCase("min", lambda x, dim, keepdim: x.amin(dim, keepdim), _build_reduce),
    OpCase("var", lambda x, dim, keepdim: x.var(dim, keepdim), _build_var, min_ndim=1,
           min_side=2),
    OpCase("reshape", lambda x, shape: x.reshape(shape), _build_reshape),
    OpCase("view", lambda x, shape: x.view(shape), _build_reshape),
    OpCase("transpose", lambda x, dim0, dim1: x.transpose(dim0, dim1), _build_transpose,
           min_ndim=1),
    OpCase("permute", lambda x, dims: x.permute(dims), _build_permute),
    OpCase("unsqueeze", lambda x, dim: x.unsqueeze(dim), _build_unsqueeze),
    OpCase("squeeze", lambda x, dim: x.squeeze(dim), _build_squeeze, min_ndim=1),
    OpCase("expand", lambda x, sizes: x.expand(*sizes), _build_expand),
    OpCase("getitem_slice", lambda x, index: x[index], _build_slice, min_ndim=1),
    OpCase("getitem_int_array", lambda x, index: x[index], _build_int_index, min_ndim=1),
    OpCase("getitem_bool_mask", lambda x, index: x[index], _build_bool_index, min_ndim=1),
    OpCase("getitem_mixed", lambda x, index: x[index], _build_mixed_index, min_ndim=3),
    OpCase("setitem", _setitem, _build_setitem, min_ndim=1),
    OpCase("inplace_arithmetic", _inplace, _build_inplace),
    OpCase("cat", lambda *xs, dim: O.cat(xs, dim), _build_cat, min_ndim=1),
    OpCase("stack", lambda *xs, dim: O.stack(xs, dim), _build_stack),
    OpCase("matmul", lambda a, b: a @ b, _build_matmul, min_ndim=2),
    OpCase("matmul_1d", lambda a, b: a @ b, _build_matvec, min_ndim=1, max_ndim=3),
    OpCase("softmax", lambda x, dim: F.softmax(x, dim), _build_softmax, min_ndim=1),
    OpCase("log_softmax", lambda x, dim: F.log_softmax(x, dim), _build_softmax, min_ndim=1),
    OpCase("gelu", lambda x: F.gelu(x), _unary(_normal)),
    OpCase("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), _unary(_normal)),
    OpCase("layer_norm", lambda x, w, b, normalized_shape: F.layer_norm(
        x, normalized_shape, w, b, eps=1e-5), _build_layer_norm, min_ndim=1, min_side=2),
    OpCase("embedding", lambda w, idx: F.embedding(idx, w), _build_embedding, min_ndim=2,
           max_ndim=2, example_shape=(3, 4)),
    OpCase("dropout", _dropout_with_mask, _build_dropout),
    OpCase("linear", lambda x, w, b: F.linear(x, w, b), _build_linear, min_ndim=1),
    OpCase("linear_gelu", lambda x, w, b: F.linear_gelu(x, w, b), _build_linear, min_ndim=1),
    OpCase("linear_gelu_tanh", lambda x, w, b: F.linear_gelu(x, w, b, approximate="tanh"),
           _build_linear, min_ndim=1),
    OpCase("scaled_dot_product_attention", lambda q, k, v, key_padding_mask, scale:
           F.scaled_dot_product_attention(q, k, v, scale=scale,
                                          key_padding_mask=key_padding_mask),
           _build_attention, min_ndim=4, max_ndim=4, example_shape=(2, 2, 3, 4)),
    OpCase("scaled_dot_product_attention_dropout", _attention_with_dropout_mask,
           _build_attention_dropout, min_ndim=4, max_ndim=4, example_shape=(2, 2, 3, 4)),
    OpCase("mse_loss", lambda x, target, reduction: F.mse_loss(x, target, reduction),
           _build_regression),
    OpCase("binary_cross_entropy", lambda x, target, reduction: F.binary_cross_entropy(
        x, target, reduction), _build_bce),
    OpCase("binary_cross_entropy_with_logits",
           lambda x, target, reduction: F.binary_cross_entropy_with_logits(x, target, reduction),
           _build_bce_logits),
    OpCase("mse_loss_target", lambda x, y, reduction: F.mse_loss(x, y, reduction),
           _build_loss_and_target(lambda r, s: r.standard_normal(s),
                                  lambda r, s: r.standard_normal(s))),
    OpCase("binary_cross_entropy_target", lambda p, y, reduction: F.binary_cross_entropy(
        p, y, reduction), _build_loss_and_target(lambda r, s: r.uniform(0.05, 0.95, s),
                                                 lambda r, s: r.random(s))),
    OpCase("binary_cross_entropy_with_logits_target",
           lambda x, y, reduction: F.binary_cross_entropy_with_logits(x, y, reduction),
           _build_loss_and_target(lambda r, s: r.standard_normal(s) * 3,
                                  lambda r, s: r.random(s))),
    OpCase("cross_entropy", lambda x, target, ignore_index, label_smoothing, reduction:
           F.cross_entropy(x, target, ignore_index, reduction, label_smoothing),
           _build_cross_entropy, min_ndim=1, max_ndim=3),
    # indexing, scans and sorting (issue 15)
    OpCase("gather", lambda x, dim, index: x.gather(dim, index), _build_gather, min_side=0),
    OpCase("scatter", lambda x, src, dim, index: x.scatter(dim, index, src),
           _build_scatter(distinct=True), min_side=0),
    OpCase("scatter_value", lambda x, dim, index, value: x.scatter(dim, index, value),
           _build_scatter_value, min_side=0),
    OpCase("scatter_add", lambda x, src, dim, index: x.scatter_add(dim, index, src),
           _build_scatter(distinct=False), min_side=0),
    OpCase("index_select", lambda x, dim, index: x.index_select(dim, index),
           _build_index_select, min_side=0),
    OpCase("masked_select", lambda x, mask: x.masked_select(mask), _build_masked_select,
           min_side=0),
    OpCase("take_along_dim", lambda x, indices, dim: O.take_along_dim(x, indices, dim),
           _build_take_along_dim, min_side=0),
    OpCase("cumsum", lambda x, dim: x.cumsum(dim), _build_scan, min_side=0),
    OpCase("cumprod", lambda x, dim: x.cumprod(dim), _build_cumprod, min_side=0),
    OpCase("sort", lambda x, dim, descending, stable: x.sort(dim, descending, stable).values,
           _build_sort, min_side=0),
    OpCase("topk", lambda x, k, dim, largest: x.topk(k, dim, largest).values, _build_topk,
           min_side=0),
    OpCase("flip", lambda x, dims: x.flip(dims), _build_flip, min_side=0),
    OpCase("roll", lambda x, shifts, dims: x.roll(shifts, dims), _build_roll, min_side=0),
    # shape ops, reductions and einsum (issue 15)
    OpCase("split", lambda x, split_size_or_sections, dim: _weighted_cat(
        x.split(split_size_or_sections, dim), dim), _build_split, min_ndim=1, min_side=0),
    OpCase("chunk", lambda x, chunks, dim: _weighted_cat(x.chunk(chunks, dim), dim),
           _build_chunk, min_ndim=1, min_side=0),
    OpCase("tril", lambda x, diagonal: x.tril(diagonal), _build_triangle, min_ndim=2,
           min_side=0),
    OpCase("triu", lambda x, diagonal: x.triu(diagonal), _build_triangle, min_ndim=2,
           min_side=0),
    OpCase("repeat", lambda x, sizes: x.repeat(sizes), _build_repeat, max_ndim=3, min_side=0),
    OpCase("repeat_interleave", _repeat_interleave, _build_repeat_interleave, min_side=0),
    OpCase("pad_constant", lambda x, pad, mode, value: F.pad(x, pad, mode, value),
           _build_pad_constant, min_side=0),
    OpCase("pad_reflect_replicate", lambda x, pad, mode, value: F.pad(x, pad, mode, value),
           _build_pad_mirror, min_ndim=2, min_side=1),
    OpCase("unflatten", lambda x, dim, sizes: x.unflatten(dim, sizes), _build_unflatten,
           min_ndim=1, min_side=0),
    OpCase("movedim", lambda x, source, destination: x.movedim(source, destination),
           _build_movedim, min_side=0),
    OpCase("einsum", lambda *xs, equation: O.einsum(equation, *xs), _build_einsum,
           max_ndim=3, min_side=0),
    OpCase("std", lambda x, dim, keepdim, correction: x.std(dim, correction=correction,
                                                           keepdim=keepdim),
           _build_std, min_ndim=1, min_side=3),
    OpCase("prod", lambda x, dim, keepdim: x.prod(dim, keepdim), _build_prod, min_side=0),
    OpCase("logsumexp", lambda x, dim, keepdim: x.logsumexp(dim, keepdim), _build_logsumexp,
           min_side=0),
    OpCase("max_dim", lambda x, dim, keepdim: x.max(dim, keepdim).values, _build_max_dim),
    OpCase("min_dim", lambda x, dim, keepdim: x.min(dim, keepdim).values, _build_max_dim),
    # elementwise ops and losses (issue 15)
    OpCase("minimum", lambda a, b: O.minimum(a, b), _build_maximum),
    OpCase("silu", lambda x: F.silu(x), _unary(_normal)),
    OpCase("softplus", lambda x, beta, threshold: F.softplus(x, beta, threshold),
           _build_softplus),
    OpCase("erf", lambda x: x.erf(), _unary(_normal)),
    OpCase("rsqrt", lambda x: x.rsqrt(), _unary(_positive)),
    OpCase("sin", lambda x: x.sin(), _unary(_normal)),
    OpCase("cos", lambda x: x.cos(), _unary(_normal)),
    OpCase("log1p", lambda x: x.log1p(), _unary(lambda rng: lambda s: rng.uniform(-0.5, 2.0, s))),
    OpCase("expm1", lambda x: x.expm1(), _unary(_normal)),
    OpCase("sign", lambda x: x.sign(), _unary(_off_integers)),
    OpCase("floor", lambda x: x.floor(), _unary(_off_integers)),
    OpCase("ceil", lambda x: x.ceil(), _unary(_off_integers)),
    OpCase("round", lambda x: x.round(), _unary(_off_integers)),
    OpCase("lerp", lambda a, b, w: a.lerp(b, w), _build_lerp),
    OpCase("lerp_scalar_weight", lambda a, b, weight: a.lerp(b, weight), _build_lerp_scalar),
    OpCase("hardtanh", lambda x, min, max: F.hardtanh(x, min, max), _build_clip),
    OpCase("leaky_relu", lambda x, negative_slope: F.leaky_relu(x, negative_slope),
           _build_leaky_relu),
    OpCase("elu", lambda x, alpha: F.elu(x, alpha), _build_elu),
    OpCase("mish", lambda x: F.mish(x), _unary(_normal)),
    OpCase("rms_norm", lambda x, w, normalized_shape, eps: F.rms_norm(x, normalized_shape, w, eps),
           _build_rms_norm, min_ndim=1, min_side=2),
    OpCase("nll_loss", lambda x, target, weight, ignore_index, reduction: F.nll_loss(
        x, target, weight, ignore_index, reduction), _build_nll_loss, min_ndim=1, max_ndim=3),
    OpCase("cross_entropy_probabilities", lambda z, y, label_smoothing, reduction:
           F.cross_entropy(z, y, reduction=reduction, label_smoothing=label_smoothing),
           _build_soft_cross_entropy, min_ndim=1, max_ndim=3),
    OpCase("kl_div", lambda x, t, reduction, log_target: F.kl_div(x, t, reduction, log_target),
           _build_kl_div),
    OpCase("binary_cross_entropy_with_logits_pos_weight", lambda x, y, pos_weight, reduction:
           F.binary_cross_entropy_with_logits(x, y, reduction, pos_weight), _build_bce_pos_weight),
    OpCase("smooth_l1_loss", lambda x, y, beta, reduction: F.smooth_l1_loss(x, y, reduction, beta),
           _build_smooth_l1),
    OpCase("huber_loss", lambda x, y, delta, reduction: F.huber_loss(x, y, reduction, delta),
           _build_huber),
    # attention masks (issue 15)
    OpCase("scaled_dot_product_attention_bool_mask", _attention_masked,
           _build_attention_masked("bool"), min_ndim=4, max_ndim=4, example_shape=(2, 2, 3, 4)),
    OpCase("scaled_dot_product_attention_float_mask", _attention_masked,
           _build_attention_masked("float"), min_ndim=4, max_ndim=4, example_shape=(2, 2, 3, 4)),
    OpCase("scaled_dot_product_attention_causal", _attention_masked,
           _build_attention_masked("causal"), min_ndim=4, max_ndim=4, example_shape=(2, 2, 3, 4)),
    # knowledge distillation (issue 16)
    OpCase("distillation_loss", lambda s, **params: F.distillation_loss(s, **params),
           _build_distillation, min_ndim=1, max_ndim=3),
]


def case_shape(case: OpCase, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Fit an arbitrary shape to a case's limits on dims and sizes."""
    shape = tuple(max(n, case.min_side) for n in shape[:case.max_ndim])
    while len(shape) < case.min_ndim:
        shape = shape + (max(2, case.min_side),)
    return shape


def run_case(case: OpCase, seed: int, shape: tuple[int, ...] | None = None,
             device: str = "cpu") -> float:
    """Gradcheck one case in float64; returns the largest |analytic - numeric| seen."""
    rng = np.random.default_rng(seed)
    shape = case.example_shape if shape is None else shape  # () is a shape: 0-d tensors
    arrays, params = case.build(rng, case_shape(case, shape))
    tensors = [Tensor(a.astype(np.float64), requires_grad=True, device=device) for a in arrays]

    def fn(*ts: Tensor) -> Tensor:
        return case.fn(*ts, **params)

    results = compare_gradients(fn, tensors)
    check_tolerance(case.name, tensors, results, atol=1e-5, rtol=1e-3)
    return max(float(np.abs(a - n).max(initial=0.0)) for _, a, n in results)
