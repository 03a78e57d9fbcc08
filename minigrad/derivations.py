"""The seed documents' formulas and printed numbers, each computed three ways by minigrad.

Every claim is one small function that returns a :class:`Claim`: the quantity computed by
minigrad in float64 (its forward value, or its gradient by ``backward()``), the same quantity from
a closed form written with plain ``math``/NumPy, and, for every derivative, its central finite
difference

    f'(x) ≈ (f(x + ε) - f(x - ε)) / 2ε,      ε = 1e-6  (error ~ ε²·f''' + 1e-16/ε ≈ 1e-10).

A *value* (z1, o1, a loss) has no finite difference of its own: its ``finite_difference`` is None,
and the derivative claims built on the same graph carry the check.

The verdict is computed, never written in. A printed number *matches* when it agrees with the
computed value to its printed rounding (0.0606, four decimals, matches when |computed − 0.0606| ≤
0.5e-4). A printed *formula* (shown as "formula") is evaluated exactly as printed and matches when
it gives the computed value to 1e-9; where it cannot be evaluated (the log of a negative number,
a line of code that raises) its value is NaN and it differs. A claim that differs carries a
one-line explanation, built from the numbers.

Seeds 002 and 003 state objectives over data and give code, not worked numbers: their claims
are computed on real data (MiniLM's embeddings of rotten-tomatoes reviews and a linear head on
them, :func:`head_runs`): the computed value comes from minigrad (its forward pass, its SGD in
``train.fit``), the closed form is the same quantity written in NumPy, and a statement about
what a library accepts is checked against that library in ``tests/test_derivations.py``
(minigrad never imports torch, transformers or scikit-learn).

Seed files (in ``shared/seeds/``): 000_89cc9f59a290349c.txt (fine-tuning challenges),
001_b086f2bf45582be4.txt (pre-training, fine-tuning, compute), 002_2e255fb5101a985a.txt
(fine-tuning and optimization), 003_223e24a027a63b6d.txt (price and performance of large
models), 004_0ccfab18954be17c.txt (gradient descent from scratch). ``minigrad derive`` prints
the table; :func:`run_all` returns it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad.autograd import no_grad
from minigrad.nn import functional as F
from minigrad.ops import log, sigmoid
from minigrad.tensor import Tensor, float64

EPS = 1e-6  # finite-difference step, float64

JSON_KEYS = ("id", "seed", "section", "quantity", "printed", "computed", "finite_difference",
             "verdict", "explanation")


@dataclass(frozen=True)
class Claim:
    """One checked claim. ``printed`` is None when the document prints a formula, not a number."""

    id: str                           # stable, "<seed>.<name>"
    seed: str                         # "000" names shared/seeds/000_*.txt
    section: str                      # "§4.3"
    quantity: str
    printed: float | None
    decimals: int | None              # digits the printed number has after the point
    computed: float                   # minigrad: forward value or backward() gradient
    closed_form: float                # plain math / NumPy
    finite_difference: float | None   # central differences; None for a value
    verdict: str                      # "matches" or "differs"
    explanation: str                  # why it differs ("" when it matches)

    def as_dict(self) -> dict[str, Any]:
        """The row as ``minigrad derive --json`` prints it."""
        return {key: getattr(self, key) for key in JSON_KEYS}


# --- the three ways of computing, and the verdict ------------------------------------------
Inputs = Sequence[Any]


def _leaves(inputs: Inputs, requires_grad: bool) -> list[Tensor]:
    return [Tensor(np.array(a, dtype=np.float64), requires_grad=requires_grad, dtype=float64)
            for a in inputs]


def _value(f: Callable[..., Tensor], inputs: Inputs) -> float:
    """f(*inputs) computed by minigrad's forward pass."""
    with no_grad():
        return float(f(*_leaves(inputs, False)).item())


def _autograd(f: Callable[..., Tensor], inputs: Inputs, wrt: int, index: tuple = ()) -> float:
    """∂f/∂inputs[wrt][index] by ``backward()``."""
    leaves = _leaves(inputs, True)
    f(*leaves).backward()
    return float(leaves[wrt].grad[index])


def _finite_difference(f: Callable[..., Tensor], inputs: Inputs, wrt: int,
                       index: tuple = ()) -> float:
    """∂f/∂inputs[wrt][index] by central differences with step EPS."""

    def f_at(delta: float) -> float:
        arrays = [np.array(a, dtype=np.float64) for a in inputs]
        arrays[wrt][index] += delta
        return _value(f, arrays)

    return (f_at(EPS) - f_at(-EPS)) / (2 * EPS)


def _derivative(f: Callable[..., Tensor], inputs: Inputs, wrt: int,
                index: tuple = ()) -> tuple[float, float]:
    """(autograd, finite difference) of ∂f/∂inputs[wrt][index]."""
    return _autograd(f, inputs, wrt, index), _finite_difference(f, inputs, wrt, index)


def agrees_to_printed_rounding(printed: float, decimals: int, computed: float) -> bool:
    """True when ``computed`` rounds to ``printed`` at ``decimals`` digits (half-ulp rule)."""
    return abs(computed - printed) <= 0.5 * 10.0 ** -decimals + 1e-12


def _claim(claim_id: str, section: str, quantity: str, computed: float, closed_form: float,
           finite_difference: float | None = None, *, printed: str | None = None,
           as_printed: float | None = None, why: str = "") -> Claim:
    """Build a Claim and compute its verdict.

    Exactly one of ``printed`` (the number as the document prints it, e.g. ``"0.0606"``) or
    ``as_printed`` (the document's formula evaluated as printed) is given. ``why`` is kept only
    when the verdict is "differs", and must then be given.
    """
    if (printed is None) == (as_printed is None):
        raise ValueError(f"{claim_id}: give exactly one of printed= or as_printed=")
    if printed is not None:
        value, decimals = float(printed), len(printed.partition(".")[2])
        matches = agrees_to_printed_rounding(value, decimals, computed)
    else:
        value, decimals = None, None
        matches = math.isfinite(as_printed) and \
            abs(as_printed - computed) <= 1e-9 * max(1.0, abs(computed))
    if not matches and not why:
        raise ValueError(f"{claim_id}: the printed {printed or 'formula'} differs from the "
                         f"computed {computed:.6g} and no explanation was given")
    return Claim(id=claim_id, seed=claim_id.split(".")[0], section=section, quantity=quantity,
                 printed=value, decimals=decimals, computed=computed, closed_form=closed_form,
                 finite_difference=finite_difference,
                 verdict="matches" if matches else "differs",
                 explanation="" if matches else why)


def _sigma(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _sigma_prime(z: float) -> float:
    return _sigma(z) * (1.0 - _sigma(z))


def _logit(p: float) -> float:
    """σ⁻¹(p): the z whose sigmoid is p."""
    return math.log(p / (1.0 - p))


CLAIMS: list[Callable[[], Claim]] = []


def _register(fn: Callable[[], Claim]) -> Callable[[], Claim]:
    CLAIMS.append(fn)
    return fn


def run_all() -> list[Claim]:
    """Every claim, in document order: seed 000, then 001, 002, 003 and 004."""
    return [fn() for fn in CLAIMS]


def inconsistencies(claims: Sequence[Claim], fd_tol: float = 1e-6) -> list[str]:
    """Claims whose three computations disagree: autograd vs closed form beyond 1e-9
    (relative), or autograd vs finite difference beyond ``fd_tol``. Empty when all is well."""
    bad = []
    for c in claims:
        if abs(c.computed - c.closed_form) > 1e-9 * max(1.0, abs(c.closed_form)):
            bad.append(f"{c.id}: computed {c.computed!r} != closed form {c.closed_form!r}")
        if c.finite_difference is not None and abs(c.computed - c.finite_difference) > fd_tol:
            bad.append(f"{c.id}: computed {c.computed!r} != finite difference "
                       f"{c.finite_difference!r}")
    return bad


def format_table(claims: Sequence[Claim]) -> str:
    """The claims as a text table, one row per claim; a differing claim's explanation follows
    its row on an indented line."""
    header = ("id", "seed §", "quantity", "printed", "computed", "finite diff", "verdict")
    rows = [(c.id, f"{c.seed} {c.section}", c.quantity,
             "formula" if c.printed is None else f"{c.printed:.{c.decimals}f}",
             f"{c.computed:.8g}",
             "—" if c.finite_difference is None else f"{c.finite_difference:.8g}",
             c.verdict) for c in claims]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)).rstrip()]
    for c, row in zip(claims, rows, strict=True):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip())
        if c.explanation:
            lines.append(f"    ↳ {c.explanation}")
    return "\n".join(lines)


# --- seed 000 §4.3: the worked example -----------------------------------------------------
# o_i = σ(z_i), z_i = Σ_j w_ij·x_j + b_i: w_ij is the weight from input j to neuron i.
W = [[0.5, 0.7], [0.3, 0.8]]    # [[w11, w12], [w21, w22]]
B = [0.2, 0.4]                  # [b1, b2]
X = [1.0, 2.0]                  # [x1, x2]
EXAMPLE = (W, B, X)


def z_of(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """z = W x + b: (2, 2) @ (2,) + (2,) -> (2,)."""
    return w @ x + b


def o_of(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """o = σ(W x + b), the two neurons' outputs (2,)."""
    return sigmoid(z_of(w, b, x))


def _z(i: int) -> float:
    """z_i in closed form."""
    return W[i][0] * X[0] + W[i][1] * X[1] + B[i]


@_register
def z1() -> Claim:
    return _claim("000.z1", "§4.3", "z1 = w11·x1 + w12·x2 + b1",
                  _value(lambda w, b, x: z_of(w, b, x)[0], EXAMPLE), _z(0), printed="2.1")


@_register
def z2() -> Claim:
    computed = _value(lambda w, b, x: z_of(w, b, x)[1], EXAMPLE)
    with_w11 = W[0][0] * X[0] + W[1][1] * X[1] + B[1]
    return _claim(
        "000.z2", "§4.3", "z2 = w21·x1 + w22·x2 + b2", computed, _z(1), printed="2.5",
        why=f"the printed sum 0.3·1 + 0.8·2 + 0.4 is {computed:.1f}, not 2.5: an addition slip "
            f"(2.5 is what w11 = 0.5 in place of w21 = 0.3 gives: {with_w11:.1f})")


@_register
def o1() -> Claim:
    computed = _value(lambda w, b, x: o_of(w, b, x)[0], EXAMPLE)
    return _claim(
        "000.o1", "§4.3", "o1 = σ(z1)", computed, _sigma(_z(0)), printed="0.8788",
        why=f"σ(2.1) = 1/(1 + e^-2.1) = {computed:.4f}; the printed 0.8788 is "
            f"σ({_logit(0.8788):.3f}), the sigmoid of no z in the example")


@_register
def o2() -> Claim:
    computed = _value(lambda w, b, x: o_of(w, b, x)[1], EXAMPLE)
    return _claim(
        "000.o2", "§4.3", "o2 = σ(z2)", computed, _sigma(_z(1)), printed="0.9130",
        why=f"σ(z2) = σ(2.3) = {computed:.4f}; the printed 0.9130 is neither that nor σ(2.5) = "
            f"{_sigma(2.5):.4f} for the printed z2 (it is σ({_logit(0.9130):.3f}))")


def _dsigma(i: int) -> tuple[float, float, float]:
    """σ'(z_i) = ∂o_i/∂z_i: (autograd, closed form, finite difference) at the true z_i."""
    auto, fd = _derivative(lambda z: sigmoid(z), [_z(i)], wrt=0)
    return auto, _sigma_prime(_z(i)), fd


@_register
def do1_dz1() -> Claim:
    auto, closed, fd = _dsigma(0)
    s = _sigma(_z(0))
    return _claim(
        "000.do1_dz1", "§4.3", "σ'(z1) = ∂o1/∂z1", auto, closed, fd, printed="0.1212",
        why=f"σ'(2.1) = σ(1−σ) = {s:.4f}·{1 - s:.4f} = {auto:.4f}; the printed 0.1212 is "
            f"1 − 0.8788 = {1 - 0.8788:.4f}: 1 − o1 (with the wrong printed o1), the factor σ "
            f"dropped")


@_register
def do2_dz2() -> Claim:
    auto, closed, fd = _dsigma(1)
    s = _sigma(_z(1))
    return _claim(
        "000.do2_dz2", "§4.3", "σ'(z2) = ∂o2/∂z2", auto, closed, fd, printed="0.0869",
        why=f"σ'(2.3) = σ(1−σ) = {s:.4f}·{1 - s:.4f} = {auto:.4f}; the printed 0.0869 is about "
            f"1 − 0.9130 = {1 - 0.9130:.4f} (1 − printed o2, the factor σ dropped); even "
            f"σ'(2.5) at the printed z2 is {_sigma_prime(2.5):.4f}")


def _do_dx(i: int, j: int) -> tuple[float, float, float]:
    """∂o_i/∂x_j = σ'(z_i)·w_ij: (autograd, closed form, finite difference)."""
    auto, fd = _derivative(lambda w, b, x: o_of(w, b, x)[i], EXAMPLE, wrt=2, index=(j,))
    return auto, _sigma_prime(_z(i)) * W[i][j], fd


@_register
def do1_dx1() -> Claim:
    auto, closed, fd = _do_dx(0, 0)
    return _claim(
        "000.do1_dx1", "§4.3", "∂o1/∂x1 = σ'(z1)·w11", auto, closed, fd, printed="0.1212",
        why=f"∂o1/∂x1 = σ'(z1)·w11 = {_sigma_prime(_z(0)):.4f}·0.5 = {auto:.4f}; the printed "
            f"σ'(z1) drops the weight w11, and its 0.1212 is not σ'(2.1) (see 000.do1_dz1)")


@_register
def do1_dx2() -> Claim:
    auto, closed, fd = _do_dx(0, 1)
    return _claim(
        "000.do1_dx2", "§4.3", "∂o1/∂x2 = σ'(z1)·w12", auto, closed, fd, printed="0.0606",
        why=f"∂o1/∂x2 = σ'(z1)·w12 = {_sigma_prime(_z(0)):.4f}·0.7 = {auto:.4f}; the printed "
            f"σ'(z1)·w11 = 0.1212·0.5 uses x1's weight w11 = 0.5 instead of w12 = 0.7, and the "
            f"wrong σ'(z1) = 0.1212")


@_register
def do2_dx1() -> Claim:
    auto, closed, fd = _do_dx(1, 0)
    d = _sigma_prime(_z(1))
    return _claim(
        "000.do2_dx1", "§4.3", "∂o2/∂x1 = σ'(z2)·w21", auto, closed, fd, printed="0.0260",
        why=f"the formula σ'(z2)·w21 is right but σ'(z2) = σ'(2.3) = {d:.4f}, not 0.0869 (see "
            f"000.do2_dz2): {d:.4f}·0.3 = {auto:.4f}; and 0.0869·0.3 = {0.0869 * 0.3:.5f} "
            f"rounds to {0.0869 * 0.3:.4f}, not 0.0260")


@_register
def do2_dx2() -> Claim:
    auto, closed, fd = _do_dx(1, 1)
    d = _sigma_prime(_z(1))
    return _claim(
        "000.do2_dx2", "§4.3", "∂o2/∂x2 = σ'(z2)·w22", auto, closed, fd, printed="0.0695",
        why=f"the formula σ'(z2)·w22 is right but σ'(z2) = σ'(2.3) = {d:.4f}, not 0.0869 (see "
            f"000.do2_dz2): {d:.4f}·0.8 = {auto:.4f}")


# --- seed 000 §4.2: the neuron's and the loss's chain rules, and one step (§4.3) ------------
# J = ½ Σ_i (y_i − ŷ_i)² over the example's two outputs ŷ = (o1, o2), for the target y = (1, 0).
TARGET = [1.0, 0.0]
ALPHA = 0.01


def mse_of(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """J = ½ Σ_i (y_i − o_i)², from minigrad's mse_loss (a sum of squares, halved)."""
    return 0.5 * F.mse_loss(o_of(w, b, x), Tensor(TARGET, dtype=float64), reduction="sum")


def _dj(param: int, index: tuple) -> float:
    """∂J/∂θ in closed form: −(y_i − o_i)·σ'(z_i)·x_j for w_ij, −(y_i − o_i)·σ'(z_i) for b_i."""
    i = index[0]
    delta = -(TARGET[i] - _sigma(_z(i))) * _sigma_prime(_z(i))
    return delta * X[index[1]] if param == 0 else delta


@_register
def neuron_chain_rule() -> Claim:
    auto, fd = _derivative(lambda w, b, x: o_of(w, b, x)[0], EXAMPLE, wrt=0, index=(0, 0))
    dz_dw11 = X[0]
    return _claim("000.neuron_chain_rule", "§4.2", "∂o1/∂w11 = ∂o1/∂z1·∂z1/∂w11",
                  auto, _sigma_prime(_z(0)) * X[0], fd,
                  as_printed=_sigma_prime(_z(0)) * dz_dw11)


@_register
def mse_loss() -> Claim:
    closed = 0.5 * sum((y - _sigma(_z(i))) ** 2 for i, y in enumerate(TARGET))
    return _claim("000.mse_loss", "§4.2", "J = ½Σ(y−ŷ)², ŷ = (o1, o2), y = (1, 0)",
                  _value(mse_of, EXAMPLE), closed,
                  as_printed=0.5 * ((TARGET[0] - _sigma(_z(0))) ** 2
                                    + (TARGET[1] - _sigma(_z(1))) ** 2))


@_register
def mse_chain_rule() -> Claim:
    auto, fd = _derivative(mse_of, EXAMPLE, wrt=0, index=(0, 0))
    # As printed: ½ Σ_i ∂(y_i − ŷ_i)/∂ŷ_i · ∂ŷ_i/∂θ, with ∂(y − ŷ)/∂ŷ = −1 and ∂ŷ/∂w11 = σ'(z1)·x1
    # for ŷ = o1 (o2 does not depend on w11).
    as_printed = 0.5 * (-1.0) * _sigma_prime(_z(0)) * X[0]
    error = TARGET[0] - _sigma(_z(0))
    return _claim(
        "000.mse_chain_rule", "§4.2", "∂J/∂w11 by ½Σ ∂(y−ŷ)/∂ŷ·∂ŷ/∂θ", auto, _dj(0, (0, 0)),
        fd, as_printed=as_printed,
        why=f"as printed, ½Σ ∂(y−ŷ)/∂ŷ·∂ŷ/∂θ = −½Σ ∂ŷ/∂θ = {as_printed:.4f}, whatever the error "
            f"y−ŷ: it differentiates y−ŷ, not (y−ŷ)². ∂(y−ŷ)²/∂ŷ = −2(y−ŷ) and the ½ cancels "
            f"the 2: ∂J/∂θ = −Σ(y−ŷ)∂ŷ/∂θ = −{error:.4f}·{_sigma_prime(_z(0)):.4f}·1 = "
            f"{auto:.4f}")


def _gd_step(name: str, param: int, index: tuple) -> Claim:
    """θ_new = θ_old − α·∂J/∂θ for one of the worked example's weights or biases."""
    theta = np.array(EXAMPLE[param], dtype=np.float64)[index]
    auto, fd = _derivative(mse_of, EXAMPLE, wrt=param, index=index)
    closed = _dj(param, index)
    return _claim(f"000.gd_step_{name}", "§4.3", f"{name} − α·∂J/∂{name}, α = 0.01",
                  theta - ALPHA * auto, theta - ALPHA * closed, theta - ALPHA * fd,
                  as_printed=theta - ALPHA * closed)


@_register
def gd_step_w11() -> Claim:
    return _gd_step("w11", 0, (0, 0))


@_register
def gd_step_w12() -> Claim:
    return _gd_step("w12", 0, (0, 1))


@_register
def gd_step_w21() -> Claim:
    return _gd_step("w21", 0, (1, 0))


@_register
def gd_step_w22() -> Claim:
    return _gd_step("w22", 0, (1, 1))


@_register
def gd_step_b1() -> Claim:
    return _gd_step("b1", 1, (0,))


@_register
def gd_step_b2() -> Claim:
    return _gd_step("b2", 1, (1,))


# --- seed 001 §4.1–§4.2: the MLM softmax loss and the fine-tuning gradient ------------------
# N = 2 masked positions with representations z_i (d = 3) and C = 4 output vectors w_j; the
# logits are s_ij = z_i·w_j and the class ids are LABELS = (1, 2), counted from 0 (the quantities
# below count positions and classes from 1, as the document does). The same numbers serve as a
# fine-tuning batch: z_i a sentence vector, w_j the classification head.
Z = [[1.0, 0.5, -0.5], [0.2, -1.0, 0.8]]                                     # (N, d)
WJ = [[0.5, -0.2, 0.1], [0.3, 0.8, -0.5], [-0.6, 0.1, 0.4], [0.2, 0.2, 0.2]]  # (C, d)
LABELS = [1, 2]


def _logits() -> np.ndarray:
    return np.array(Z) @ np.array(WJ).T  # (N, C)


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _nll_sum(logits: Tensor) -> Tensor:
    """−Σ_i log softmax(s_i)_{y_i}, by minigrad's cross_entropy."""
    return F.cross_entropy(logits, Tensor(LABELS), reduction="sum")


def _head_loss(z: Tensor, wj: Tensor) -> Tensor:
    """L_CE = −Σ_i log P(y_i | x_i) with P = softmax(z_i·w_j) (N, C)."""
    return _nll_sum(z @ wj.T)


@_register
def mlm_loss() -> Claim:
    s = _logits()
    rows = np.arange(len(LABELS))
    closed = float(-(s[rows, LABELS] - s.max(1) - np.log(np.exp(s - s.max(1)[:, None]).sum(1)))
                   .sum())
    as_printed = float(-np.sum(np.log(np.exp(s[rows, LABELS]) / np.exp(s).sum(axis=1))))
    return _claim("001.mlm_loss", "§4.2.1", "L_MLM = −Σ log(e^(z·w_y) / Σ_j e^(z·w_j))",
                  _value(_head_loss, (Z, WJ)), closed, as_printed=as_printed)


def _dloss_dlogit(c: int) -> Claim:
    """∂L/∂s_1c for the first position: softmax(s_1)_c − onehot(y_1)_c."""
    auto, fd = _derivative(_nll_sum, [_logits()], wrt=0, index=(0, c))
    closed = float(_softmax(_logits())[0, c] - (c == LABELS[0]))
    name = "target" if c == LABELS[0] else "other"
    return _claim(f"001.dmlm_dlogit_{name}", "§4.2.1",
                  f"∂L/∂s_1{c + 1} = softmax − one-hot ({name} class)", auto, closed, fd,
                  as_printed=closed)


@_register
def dmlm_dlogit_target() -> Claim:
    return _dloss_dlogit(LABELS[0])


@_register
def dmlm_dlogit_other() -> Claim:
    return _dloss_dlogit(0)


@_register
def ce_gradient() -> Claim:
    # θ = w_2[0] = WJ[1][0], the head's weight from feature 1 to class 2.
    auto, fd = _derivative(_head_loss, (Z, WJ), wrt=1, index=(1, 0))
    p = _softmax(_logits())
    closed = float(sum((p[i, 1] - (LABELS[i] == 1)) * Z[i][0] for i in range(len(LABELS))))
    n = len(LABELS)
    as_printed = closed / n  # −(1/N) Σ_i ∇θ log P(y_i|x_i), and −Σ_i ∇θ log P = closed
    return _claim(
        "001.ce_gradient", "§4.2.2", "∂L_CE/∂θ = −(1/N)Σ∇θ log P(y|x), θ = (w_2)_1", auto,
        closed, fd, as_printed=as_printed,
        why=f"−(1/N)Σ∇θ log P = {as_printed:.4f} is the gradient of the mean −(1/N)Σ log P, but "
            f"§4.1.2 defines L_CE as the sum −Σ log P, whose gradient is N = {n} times that: "
            f"{auto:.4f}")


# --- a classifier on real reviews, for seeds 002 and 003 ------------------------------------
# Seeds 002 and 003 state objectives over a data set, so their claims are computed on real
# data: rotten-tomatoes reviews (minigrad.data.datasets), each as MiniLM's sentence embedding x
# (384 numbers, frozen), and a linear head on it: logits s = W x + b, W (2, 384), b (2,),
# P(y|x) = softmax(s)_y, the labels "fresh" (0) and "rotten" (1). Training only the head keeps
# every objective convex, so its argmin exists (with an L2 term), is unique, and NumPy can find
# it exactly; MiniLM itself would take minutes per run on a CPU. The probabilities are a
# classifier's log P(y|x), not a masked-LM pseudo-log-likelihood: the installed MiniLM is a
# sentence encoder whose checkpoint has no MLM head (no `cls.predictions`), and a fresh head
# would give random numbers.
REVIEWS = (96, 32, 16)  # train, validation, test reviews, drawn by random_split(seed=0)
L2 = 1e-3               # SGD's weight_decay on W: the L2 term (L2/2)·‖W‖² (none on b)
L1 = 1e-3               # the L1 term L1·‖W‖₁ (optim.l1_penalty)
SGD_STEPS = 600         # full-batch steps to the argmin (Nesterov momentum 0.9, η = 1/L)
L1_STEPS = 600          # the same steps on the L1 objective, with its subgradient
PROXIMAL_STEPS = 2000   # the L1 reference's proximal steps (NumPy), before Newton's
ES_EPOCHS, ES_PATIENCE = 400, 10  # early stopping: plain SGD, one full batch an epoch


@dataclass(frozen=True)
class Reviews:
    """The embedded reviews of one split: x (n, 384) float64, y (n,) class ids, the texts."""

    x: np.ndarray
    y: np.ndarray
    texts: list[str]


@dataclass(frozen=True)
class HeadRuns:
    """What the claims of seeds 002 and 003 are computed from (:func:`head_runs`)."""

    train: Reviews
    val: Reviews
    test: Reviews
    label_names: list[str]
    smoothness: float          # L: the largest curvature of the L2 objective; η = 1/L
    sgd: dict[str, np.ndarray]  # the head after SGD on the L2 objective ("weight", "bias")
    argmin: dict[str, np.ndarray]  # the L2 objective's argmin, by Newton's method (NumPy)
    l1_sgd: dict[str, np.ndarray]  # the head after SGD on the L1 objective (subgradient)
    l1_argmin: dict[str, np.ndarray]  # the L1 objective's argmin, by proximal steps (NumPy)
    early: dict[str, np.ndarray]  # the head that early stopping returned
    early_best_epoch: int
    early_epochs: int          # epochs run before stopping


def _embed_reviews() -> tuple[Reviews, Reviews, Reviews, list[str]]:
    from minigrad.data.datasets import label_names, load_rotten_tomatoes, random_split
    from minigrad.models.pretrained import embed

    reviews = load_rotten_tomatoes()
    names = label_names(reviews.labels)
    parts = random_split(reviews, [*REVIEWS, len(reviews) - sum(REVIEWS)], seed=0)[:3]
    x = embed([text for part in parts for text in part.texts]).astype(np.float64)  # (Σn, 384)
    splits, start = [], 0
    for part in parts:
        y = np.array([names.index(label) for label in part.labels])
        splits.append(Reviews(x[start:start + len(part)], y, list(part.texts)))
        start += len(part)
    return *splits, names


def objective(weight: Any, bias: Any, data: Reviews, l2: float = 0.0, l1: float = 0.0) -> float:
    """L(θ) = (1/n)Σ_i −log softmax(W x_i + b)_{y_i} + (l2/2)·‖W‖² + l1·‖W‖₁, in NumPy."""
    s = data.x @ np.asarray(weight).T + np.asarray(bias)                  # (n, 2)
    log_p = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    ce = -log_p[np.arange(len(data.y)), data.y].mean()
    return float(ce + l2 / 2 * np.sum(np.asarray(weight) ** 2)
                 + l1 * np.abs(np.asarray(weight)).sum())


def _binary_design(data: Reviews) -> np.ndarray:
    return np.column_stack([data.x, np.ones(len(data.y))])               # (n, 385)


def _newton_argmin(data: Reviews, l2: float) -> dict[str, np.ndarray]:
    """argmin_(W,b) of the L2 objective by Newton's method, in the two classes' difference.

    With two classes only u = w₁ − w₀ and β = b₁ − b₀ change the loss (softmax is unchanged by
    adding a vector to both rows), and at the argmin w₀ = −w₁ (the loss's gradient along
    w₀ + w₁ is 0, the penalty's is l2·(w₀ + w₁)), so (l2/2)‖W‖² = (l2/4)‖u‖²: a logistic
    regression in (u, β), strongly convex, which Newton solves to machine precision.
    """
    a, y = _binary_design(data), data.y.astype(np.float64)
    penalty = np.r_[np.full(a.shape[1] - 1, l2 / 2), 0.0]  # ∇²(l2/4)‖u‖² = (l2/2)·I; none on β
    theta = np.zeros(a.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(a @ theta)))                                 # P(rotten | x)
        grad = a.T @ (p - y) / len(y) + penalty * theta
        if np.abs(grad).max() < 1e-15:
            break
        hessian = (a * (p * (1 - p))[:, None]).T @ a / len(y) + np.diag(penalty)
        theta -= np.linalg.solve(hessian, grad)
    else:
        raise ArithmeticError(f"Newton's method left a gradient of {np.abs(grad).max():.1e}")
    u, beta = theta[:-1], theta[-1]
    return {"weight": np.stack([-u / 2, u / 2]), "bias": np.array([-beta / 2, beta / 2])}


def _proximal_argmin(data: Reviews, l1: float) -> dict[str, np.ndarray]:
    """argmin of the L1 objective by proximal gradient steps (FISTA), then Newton on the
    weights those steps left nonzero, in (u, β).

    For a given u = w₁ − w₀ the smallest ‖W‖₁ is ‖u‖₁ (w₀ = 0, w₁ = u is one such W), so the
    L1 objective is the logistic loss in (u, β) plus l1·‖u‖₁. Each proximal step takes the
    gradient step of the smooth part, then shrinks every u_j toward 0 by η·l1, setting to
    exactly 0 those that would cross it (soft-thresholding, as tutorial 04's proximal step).
    Those steps find which u_j are 0 but converge slowly; on the others, with their signs
    fixed, l1·‖u‖₁ is linear, and Newton's method finishes the job to machine precision.
    """
    a, y = _binary_design(data), data.y.astype(np.float64)
    eta = 1 / (0.25 * float(np.linalg.eigvalsh(a.T @ a / len(y)).max()))  # 1/L, σ' ≤ ¼
    theta = np.zeros(a.shape[1])
    look, t = theta.copy(), 1.0
    for _ in range(PROXIMAL_STEPS):
        p = 1 / (1 + np.exp(-(a @ look)))
        step = look - eta * a.T @ (p - y) / len(y)
        new = np.r_[np.sign(step[:-1]) * np.maximum(np.abs(step[:-1]) - eta * l1, 0), step[-1]]
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        look, theta, t = new + (t - 1) / t_new * (new - theta), new, t_new
    keep = np.flatnonzero(theta)                       # the nonzero u_j, and β (always kept)
    sign = np.r_[np.sign(theta[keep[:-1]]), 0.0]
    for _ in range(50):
        p = 1 / (1 + np.exp(-(a[:, keep] @ theta[keep])))
        grad = a[:, keep].T @ (p - y) / len(y) + l1 * sign
        if np.abs(grad).max() < 1e-15:
            break
        hessian = (a[:, keep] * (p * (1 - p))[:, None]).T @ a[:, keep] / len(y)
        theta[keep] -= np.linalg.solve(hessian, grad)
    # The optimality conditions: the signs held, and |∂CE/∂u_j| ≤ l1 wherever u_j = 0.
    p = 1 / (1 + np.exp(-(a @ theta)))
    off = np.abs(np.delete(a.T @ (p - y) / len(y), keep)).max(initial=0.0)
    if np.abs(grad).max() > 1e-12 or np.any(np.sign(theta[keep[:-1]]) != sign[:-1]) or off > l1:
        raise ArithmeticError("the L1 argmin's proximal steps and Newton did not converge")
    u, beta = theta[:-1], theta[-1]
    return {"weight": np.stack([np.zeros_like(u), u]), "bias": np.array([0.0, beta])}


def _fit_head(train: Reviews, lr: float, steps: int, *, momentum: float = 0.0,
              l2: float = 0.0, l1: float = 0.0, val: Reviews | None = None,
              patience: int | None = None) -> tuple[dict[str, np.ndarray], Any]:
    """Train the head from zero with minigrad's SGD in the one loop, train.fit: one full
    batch per epoch (so SGD is gradient descent), the L2 term as weight_decay on W, the L1
    term as optim.l1_penalty added to the loss, early stopping on the validation loss when
    ``patience`` is given (the best epoch's weights restored). Returns the head and history."""
    from minigrad import nn, optim
    from minigrad.train import TrainConfig, fit

    head = nn.Linear(train.x.shape[1], 2).double()
    head.weight.data[...] = 0.0
    head.bias.data[...] = 0.0

    def loss_fn(model: Any, batch: tuple[np.ndarray, np.ndarray]) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(model(Tensor(x, dtype=float64)), Tensor(y))
        return loss + optim.l1_penalty([model.weight], l1) if l1 else loss

    optimizer = optim.SGD([{"params": [head.weight], "weight_decay": l2},
                           {"params": [head.bias], "weight_decay": 0.0}],
                          lr=lr, momentum=momentum, nesterov=momentum > 0)
    config = TrainConfig(epochs=steps, batch_size=len(train.y), shuffle=False, progress=False,
                         early_stopping_metric="val_loss" if patience else None,
                         patience=patience or 1, restore_best=bool(patience))
    history = fit(head, loss_fn, (train.x, train.y), optimizer, config,
                  val_data=None if val is None else (val.x, val.y))
    return {name: a.copy() for name, a in head.state_dict().items()}, history


@functools.cache
def head_runs() -> HeadRuns:
    """Embed the reviews and train the head every way the claims need (a few seconds on a
    CPU, most of them MiniLM's; computed once per process, its arrays read-only since every
    caller shares them)."""
    train_set, val_set, test_set, names = _embed_reviews()
    a = _binary_design(train_set)
    # The CE's curvature in (W, b) is at most ½·λmax(AᵀA/n) (softmax's Hessian over two
    # classes has eigenvalues 0 and 2p(1−p) ≤ ½), plus the L2 term's.
    smoothness = 0.5 * float(np.linalg.eigvalsh(a.T @ a / len(a)).max()) + L2
    sgd, _ = _fit_head(train_set, 1 / smoothness, SGD_STEPS, momentum=0.9, l2=L2)
    l1_sgd, _ = _fit_head(train_set, 1 / smoothness, L1_STEPS, momentum=0.9, l1=L1)
    early, history = _fit_head(train_set, 1 / smoothness, ES_EPOCHS, l2=L2, val=val_set,
                               patience=ES_PATIENCE)
    runs = HeadRuns(train_set, val_set, test_set, names, smoothness, sgd,
                    _newton_argmin(train_set, L2), l1_sgd, _proximal_argmin(train_set, L1),
                    early, history.best_epoch, len(history.epochs))
    for part in (train_set, val_set, test_set):
        part.x.setflags(write=False)
        part.y.setflags(write=False)
    for params in (runs.sgd, runs.argmin, runs.l1_sgd, runs.l1_argmin, runs.early):
        for array in params.values():
            array.setflags(write=False)
    return runs


def _head_value(params: dict[str, np.ndarray], data: Reviews, l2: float = 0.0,
                l1: float = 0.0) -> float:
    """The objective at a head's parameters, by minigrad's forward pass (cross_entropy,
    the penalties as Tensor sums)."""
    with no_grad():
        weight = Tensor(params["weight"], dtype=float64)
        loss = F.cross_entropy(F.linear(Tensor(data.x, dtype=float64), weight,
                                        Tensor(params["bias"], dtype=float64)), Tensor(data.y))
        return float((loss + l2 / 2 * (weight * weight).sum() + l1 * weight.abs().sum()).item())


def _zero_features(weight: np.ndarray) -> int:
    """Embedding dimensions j the head ignores: W[:, j] = 0 exactly."""
    return int(np.sum(np.all(weight == 0, axis=0)))


# --- seed 002 §3: θ* = argmin_θ L(·; θ), by SGD, with L1/L2 and early stopping --------------
# §3.1: "θ* = argmin_θ L(·; θ) … 这个优化问题通常通过随机梯度下降（SGD）或其变种来求解" (this
# problem is usually solved by SGD or its variants); §3.2: "正则化 … L1正则化、L2正则化" (L1 and
# L2 regularisation), "早停 … 在验证集上的性能不再提高时停止训练" (early stopping: stop when the
# validation performance no longer improves).
@_register
def argmin_by_sgd() -> Claim:
    runs = head_runs()
    computed = _head_value(runs.sgd, runs.train, l2=L2)
    return _claim("002.argmin_sgd", "§3.1",
                  f"θ* = argmin_θ L(·;θ) by SGD, L = CE + (λ/2)‖W‖², λ = {L2:g}", computed,
                  objective(runs.sgd["weight"], runs.sgd["bias"], runs.train, l2=L2),
                  as_printed=objective(runs.argmin["weight"], runs.argmin["bias"], runs.train,
                                       l2=L2),
                  why=f"SGD's L = {computed:.12f} after {SGD_STEPS} steps is not yet the "
                      f"argmin's")


@_register
def l1_by_sgd() -> Claim:
    runs = head_runs()
    computed = float(_zero_features(runs.l1_sgd["weight"]))
    at_sgd = objective(runs.l1_sgd["weight"], runs.l1_sgd["bias"], runs.train, l1=L1)
    at_min = objective(runs.l1_argmin["weight"], runs.l1_argmin["bias"], runs.train, l1=L1)
    left_out = np.all(runs.l1_argmin["weight"] == 0, axis=0)               # (384,)
    median = float(np.median(np.abs(runs.l1_sgd["weight"][:, left_out])))
    return _claim(
        "002.l1_sgd", "§3.2", "θ* = argmin L by SGD, L = CE + λ‖W‖₁: W[:, j] = 0 count",
        computed, float(np.count_nonzero(~runs.l1_sgd["weight"].any(axis=0))),
        as_printed=float(_zero_features(runs.l1_argmin["weight"])),
        why=f"the argmin of the L1 objective leaves {int(left_out.sum())} of the "
            f"{len(left_out)} embedding features out (W[:, j] = 0; proximal steps, i.e. "
            f"soft-thresholding, then Newton); SGD on the loss plus optim.l1_penalty (the "
            f"subgradient λ·sign(w), the same η and momentum, {L1_STEPS} steps) sets "
            f"{computed:.0f} to 0: a step moves a weight across 0 rather than onto it (median "
            f"|w| on those features {median:.1e}), and its objective {at_sgd:.6f} is above "
            f"the minimum {at_min:.6f}. The L1 argmin needs SGD's proximal variant")


@_register
def early_stopping() -> Claim:
    runs = head_runs()
    computed = _head_value(runs.early, runs.train, l2=L2)
    at_min = objective(runs.argmin["weight"], runs.argmin["bias"], runs.train, l2=L2)
    val_early = objective(runs.early["weight"], runs.early["bias"], runs.val)
    val_min = objective(runs.argmin["weight"], runs.argmin["bias"], runs.val)
    return _claim(
        "002.early_stopping", "§3.2", "θ* = argmin L, with early stopping: L(θ)",
        computed, objective(runs.early["weight"], runs.early["bias"], runs.train, l2=L2),
        as_printed=at_min,
        why=f"early stopping (patience {ES_PATIENCE}) ran {runs.early_epochs} epochs and gave "
            f"back epoch {runs.early_best_epoch}'s θ, the lowest validation loss "
            f"({val_early:.4f}); its L = {computed:.4f} is above min L = {at_min:.4f}, whose θ* "
            f"scores {val_min:.4f} on the {len(runs.val.y)} validation reviews: it stops short "
            f"of argmin L on purpose, so the fine-tuned θ is not θ* = argmin L")


# --- seed 003 §4.2: the pre-training and fine-tuning objectives ------------------------------
# As printed: 预训练 max_θ log P(x, y) = log Σ_y P(x, y) ≈ log (1/N) Σ_i log P(x_i, y_i);
# 微调 max_θ log P(x, y|t) = log (1/N) Σ_i log P(y_i|x_i, t).
# On the N test reviews, log P(y_i|x_i, t) is the head's (trained to 002.argmin_sgd's argmin).
# For the pre-training line's joint P(x, y) we take the empirical distribution of the N
# reviews for x (P(x_i) = 1/N) with the head's P(y|x): a proper joint over (x, y), so
# log P(x_i, y_i) = log P(y_i|x_i) − log N, and its marginal Σ_y P(x_i, y) = 1/N.
def _log_p_test() -> Tensor:
    """log P(y_i|x_i) of the N test reviews (N,), by minigrad's cross_entropy."""
    runs = head_runs()
    with no_grad():
        logits = F.linear(Tensor(runs.test.x, dtype=float64),
                          Tensor(runs.sgd["weight"], dtype=float64),
                          Tensor(runs.sgd["bias"], dtype=float64))              # (N, 2)
        return -F.cross_entropy(logits, Tensor(runs.test.y), reduction="none")


def _log_p_numpy() -> np.ndarray:
    runs = head_runs()
    s = runs.test.x @ runs.sgd["weight"].T + runs.sgd["bias"]
    return (s - np.logaddexp.reduce(s, axis=1, keepdims=True))[np.arange(len(runs.test.y)),
                                                                runs.test.y]


def _log(v: float) -> float:
    """log v, or NaN where it is undefined (v ≤ 0), as the printed formulas would need."""
    return math.log(v) if v > 0 else math.nan


@_register
def pretrain_joint() -> Claim:
    log_p = _log_p_test().numpy()
    n = len(log_p)
    computed = float(np.mean(log_p - math.log(n)))
    marginal = float(np.mean(np.full(n, -math.log(n))))  # log Σ_y P(x_i, y) = log(1/N)
    return _claim(
        "003.pretrain_joint", "§4.2", f"log P(x,y) = log Σ_y P(x,y), N = {n} reviews",
        computed, float(np.mean(_log_p_numpy() - math.log(n))), as_printed=marginal,
        why=f"Σ_y P(x,y) = P(x) sums the label out: it is the marginal, log(1/{n}) = "
            f"{marginal:.4f} here, not the joint log P(x,y) = log P(x) + log P(y|x) = "
            f"{computed:.4f}; they differ by log P(y|x) (mean {np.mean(log_p):.4f}), which is 0 "
            f"only for a model certain of every label")


@_register
def pretrain_objective() -> Claim:
    log_p = _log_p_test().numpy()
    n = len(log_p)
    computed = float(np.mean(log_p - math.log(n)))
    return _claim(
        "003.pretrain_objective", "§4.2", f"log (1/N)Σ log P(x_i,y_i), N = {n} reviews",
        computed, float(np.mean(_log_p_numpy() - math.log(n))), as_printed=_log(computed),
        why=f"every log P(x_i,y_i) ≤ 0, so their mean is negative ({computed:.4f}) and its log "
            f"is undefined (log of a negative number); the objective is the average "
            f"log-likelihood (1/N)Σ log P(x_i,y_i) = {computed:.4f} itself, without the outer log")


@_register
def finetune_objective() -> Claim:
    log_p = _log_p_test().numpy()
    n = len(log_p)
    computed = float(np.mean(log_p))
    mean_probability = float(np.mean(np.exp(log_p)))
    return _claim(
        "003.finetune_objective", "§4.2", f"log (1/N)Σ log P(y_i|x_i,t), N = {n} reviews",
        computed, float(np.mean(_log_p_numpy())), as_printed=_log(computed),
        why=f"each log P(y_i|x_i) ≤ 0 (here {log_p.min():.4f} to {log_p.max():.4f}), so their "
            f"mean {computed:.4f} is negative and its log is undefined; the average "
            f"log-likelihood (1/N)Σ log P(y_i|x_i) = {computed:.4f} (= −cross-entropy) is the "
            f"objective; log (1/N)Σ P(y_i|x_i) = {math.log(mean_probability):.4f}, the log of "
            f"the mean probability, is a different quantity")


# --- seed 003 §5.2: the ResNet fine-tuning code ----------------------------------------------
# As printed: model = ResNetForImageClassification.from_pretrained('resnet50'); in train_epoch
# and evaluate, model(input_ids, attention_mask=attention_mask[, labels=labels]); then
# outputs.logits.argmax(dim=2), preds.append(pred_tokens[:len(label_tokens)]) per example, and
# classification_report(labels, preds).
# ResNetForImageClassification.forward(pixel_values, labels, output_hidden_states,
# return_dict, **kwargs) in transformers' modeling_resnet.py: pixel_values is a float image
# batch (batch_size, num_channels, height, width), num_channels = 3, and the first thing the
# model does is refuse pixel_values.shape[1] != num_channels (ValueError). minigrad does not
# import transformers: tests/test_derivations.py checks these facts against the installed source.
RESNET_FORWARD = ("pixel_values", "labels", "output_hidden_states", "return_dict")
RESNET_PIXEL_VALUES = ("batch_size", "num_channels", "height", "width")


@_register
def resnet_inputs() -> Claim:
    from minigrad.models.pretrained import load_tokenizer, minilm_path

    runs = head_runs()
    ids = load_tokenizer(minilm_path())(runs.test.texts, padding=True,
                                        return_tensors="np")["input_ids"]            # (N, T)
    dims = float(len(RESNET_PIXEL_VALUES))
    return _claim(
        "003.resnet_inputs", "§5.2",
        "ResNetForImageClassification(input_ids, …): input dims",
        dims, float(len(RESNET_PIXEL_VALUES)), as_printed=float(ids.ndim),
        why=f"forward takes ({', '.join(RESNET_FORWARD)}): the positional input_ids become "
            f"pixel_values, which must be a float image batch ({', '.join(RESNET_PIXEL_VALUES)}"
            f"), {dims:.0f} dims; the {len(ids)} reviews' input_ids are {ids.ndim}-D {ids.shape}, "
            f"and the model's first check (shape[1] = {ids.shape[1]} is not 3 channels) raises "
            f"ValueError; attention_mask is no parameter of it (transformers 5 swallows it "
            f"in **kwargs, unused): a ResNet takes images, not tokens")


@_register
def argmax_dim2() -> Claim:
    from minigrad.metrics import accuracy

    runs = head_runs()
    logits = F.linear(Tensor(runs.test.x, dtype=float64), Tensor(runs.sgd["weight"], dtype=float64),
                      Tensor(runs.sgd["bias"], dtype=float64))                   # (N, C)
    try:
        as_printed, error = accuracy(runs.test.y, logits.argmax(dim=2).numpy()), ""
    except IndexError as e:
        as_printed, error = math.nan, f"IndexError: {e}"
    computed = accuracy(runs.test.y, logits.argmax(dim=-1).numpy())
    closed = float(np.mean(np.argmax(logits.numpy(), axis=1) == runs.test.y))
    return _claim(
        "003.argmax_dim2", "§5.2", f"accuracy of logits.argmax(dim=2), logits "
        f"{tuple(logits.shape)}", computed, closed, as_printed=as_printed,
        why=f"a classifier's logits are (B, C): argmax(dim=2) raises ({error}; torch raises "
            f"IndexError too), dim=2 is the class axis of a token classifier's (B, T, C); the "
            f"class axis here is dim=1 (= −1), whose predictions score {computed:.4f} on the "
            f"{len(runs.test.y)} reviews")


def _evaluate_as_printed(preds: list[int], labels: list[int]) -> tuple[list, list]:
    """The lines of §5.2's evaluate() that build what it hands classification_report, applied
    to one batch of a classifier's predictions and labels (each a list of ints)."""
    out_preds, out_labels = [], []
    for pred_tokens, label_tokens in zip(preds, labels, strict=True):
        out_preds.append(pred_tokens[:len(label_tokens)])
        out_labels.append(label_tokens)
    return out_labels, out_preds


@_register
def classification_report_nested() -> Claim:
    from minigrad.metrics import classification_report

    runs = head_runs()
    preds = np.argmax(runs.test.x @ runs.sgd["weight"].T + runs.sgd["bias"], axis=1)
    labels = runs.test.y
    try:
        nested = _evaluate_as_printed(preds.tolist(), labels.tolist())
        as_printed = classification_report(*nested, output_dict=True)["macro avg"]["f1-score"]
        error = ""
    except (TypeError, ValueError) as e:
        as_printed, error = math.nan, f"{type(e).__name__}: {e}"
    computed = classification_report(labels.tolist(), preds.tolist(),
                                      output_dict=True)["macro avg"]["f1-score"]
    f1 = []
    for c in range(len(runs.label_names)):
        tp = np.sum((preds == c) & (labels == c))
        f1.append(2 * tp / (np.sum(preds == c) + np.sum(labels == c)))
    return _claim(
        "003.classification_report", "§5.2",
        "classification_report(labels, preds): macro-F1", computed,
        float(np.mean(f1)), as_printed=as_printed,
        why=f"evaluate() builds one list per example (pred_tokens[:len(label_tokens)], a token "
            f"classifier's per-token labels); a classifier's labels are one int per example, so "
            f"it stops there ({error}). Given lists of lists, scikit-learn's "
            f"classification_report refuses ragged ones (ValueError: legacy multi-label "
            f"representation) and equal-length multiclass ones (ValueError: multiclass-"
            f"multioutput is not supported), and reads equal-length 0/1 ones as a multilabel "
            f"indicator, one 'class' per position; flat lists, one label per image, give the "
            f"report: macro-F1 {computed:.4f} here")


# --- seed 004 §4.1–§4.2: binary cross-entropy, its derivative, and §4.1's cross-entropy -----
# y is the model's output (a probability), y* the label, as the document defines them.
Y_OUT = 0.7


def _bce(y: Tensor, y_star: float) -> Tensor:
    return F.binary_cross_entropy(y, Tensor(y_star, dtype=float64))


def _bce_printed(y: float, y_star: float) -> float:
    return -(y_star * math.log(y) + (1 - y_star) * math.log(1 - y))


def _dbce_dy_printed(y: float, y_star: float) -> float:
    return -y_star / y + (1 - y_star) / (1 - y)


@_register
def bce() -> Claim:
    return _claim("004.bce", "§4.2", "L = −(y* log y + (1−y*) log(1−y)), y = 0.7, y* = 1",
                  _value(lambda y: _bce(y, 1.0), [Y_OUT]), -math.log(Y_OUT),
                  as_printed=_bce_printed(Y_OUT, 1.0))


def _dbce_dy(name: str, y_star: float, closed: float) -> Claim:
    auto, fd = _derivative(lambda y: _bce(y, y_star), [Y_OUT], wrt=0)
    return _claim(f"004.dbce_dy_{name}", "§4.2",
                  f"∂L/∂y = −y*/y + (1−y*)/(1−y), y = 0.7, y* = {y_star:g}", auto, closed, fd,
                  as_printed=_dbce_dy_printed(Y_OUT, y_star))


@_register
def dbce_dy_pos() -> Claim:
    return _dbce_dy("pos", 1.0, -1.0 / Y_OUT)


@_register
def dbce_dy_neg() -> Claim:
    return _dbce_dy("neg", 0.0, 1.0 / (1.0 - Y_OUT))


LOGIT = 2.1  # the worked example's z1, as a logit f = z, y = σ(z), with the label y* = 0


@_register
def sigmoid_bce_dlogit() -> Claim:
    auto, fd = _derivative(lambda z: _bce(sigmoid(z), 0.0), [LOGIT], wrt=0)
    y = _sigma(LOGIT)
    chain = _dbce_dy_printed(y, 0.0) * y * (1 - y)  # ∂L/∂y · ∂y/∂z as §4.2 chains them
    return _claim("004.sigmoid_bce_dlogit", "§4.2", "∂L/∂z = ∂L/∂y·σ'(z) = y − y*, z = 2.1, "
                  "y* = 0", auto, y - 0.0, fd, as_printed=chain)


@_register
def gd_step_logistic() -> Claim:
    # The model f(x, θ) = σ(w·x + b) is the example's first neuron (w = (0.5, 0.7), b = 0.2,
    # x = (1, 2)); its output y = f is scored against the label y* = 0; η = 0.01, θ = w1.
    def loss(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
        return _bce(sigmoid(w @ x + b), 0.0)

    inputs = (W[0], B[0], X)
    auto, fd = _derivative(loss, inputs, wrt=0, index=(0,))
    f = _z(0)
    y = _sigma(f)
    printed_rule = W[0][0] - ALPHA * _dbce_dy_printed(y, 0.0) * y * (1 - y) * X[0]
    return _claim("004.gd_step_w1", "§4.2", "θ − η·∂L/∂f·∂f/∂θ, θ = w1, η = 0.01",
                  W[0][0] - ALPHA * auto, W[0][0] - ALPHA * (y - 0.0) * X[0],
                  W[0][0] - ALPHA * fd, as_printed=printed_rule)


# Two examples, three classes: model outputs y (probabilities) and one-hot labels y*.
Y_PROBS = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]
Y_ONEHOT = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def _ce_standard(y: Tensor) -> Tensor:
    """−(1/N) Σ_i Σ_c y*_ic log y_ic: the label weights the log of the model's output."""
    y_star = Tensor(Y_ONEHOT, dtype=float64)
    return -(y_star * log(y)).sum() / len(Y_PROBS)


def _ce_swapped(y: np.ndarray, y_star: np.ndarray) -> float:
    """−(1/N) Σ_i Σ_c y_ic log y*_ic, §4.1 as printed (log of a one-hot label: log 0 = −∞)."""
    with np.errstate(divide="ignore"):
        return float(-(y * np.log(y_star)).sum() / len(y))


@_register
def ce_as_printed() -> Claim:
    y, y_star = np.array(Y_PROBS), np.array(Y_ONEHOT)
    closed = float(-np.mean([math.log(y[i, int(np.argmax(y_star[i]))]) for i in range(len(y))]))
    as_printed = _ce_swapped(y, y_star)
    shown = "+∞" if as_printed == math.inf else f"{as_printed:.4f}"
    return _claim(
        "004.ce_as_printed", "§4.1", "L = −(1/N)Σ y log y* (y output, y* label)",
        _value(_ce_standard, [Y_PROBS]), closed, as_printed=as_printed,
        why=f"as printed the label is inside the log: with a one-hot y*, log y* = log 0 = −∞ "
            f"for every wrong class, so L = {shown} for any softmax output; the standard "
            f"−(1/N)Σ y* log y (as §4.2's BCE has it) is {closed:.4f}")


@_register
def dce_dy_as_printed() -> Claim:
    auto, fd = _derivative(_ce_standard, [Y_PROBS], wrt=0, index=(0, 0))
    n = len(Y_PROBS)
    as_printed = -math.log(Y_ONEHOT[0][0]) / n + 0.0  # ∂/∂y_11 of −(1/N)Σ y log y* = −log(y*_11)/N
    return _claim(
        "004.dce_dy_as_printed", "§4.1", "∂L/∂y_11 (true class) of −(1/N)Σ y log y*", auto,
        -Y_ONEHOT[0][0] / (n * Y_PROBS[0][0]), fd, as_printed=as_printed,
        why=f"as printed ∂L/∂y = −log(y*)/N: {as_printed:.4f} for the true class (log 1) and +∞ "
            f"for the others, whatever the model outputs, so no signal reaches the model; the "
            f"standard form gives −y*/(N·y) = −1/(2·0.7) = {auto:.4f}")
