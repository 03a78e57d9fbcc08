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
it gives the computed value to 1e-9. A claim that differs carries a one-line explanation, built
from the numbers.

Seed files (in ``shared/seeds/``): 000_89cc9f59a290349c.txt (fine-tuning challenges),
001_b086f2bf45582be4.txt (pre-training, fine-tuning, compute), 004_0ccfab18954be17c.txt
(gradient descent from scratch). ``minigrad derive`` prints the table; :func:`run_all` returns it.
"""

from __future__ import annotations

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
    """Every claim, in document order: seed 000, then 001, then 004."""
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
