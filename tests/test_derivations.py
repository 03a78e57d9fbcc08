"""The seed documents' claims (``minigrad.derivations``, ``minigrad derive``).

Each claim's computed value is checked against a closed form written here in plain NumPy (never
by calling minigrad), against its finite difference, and its verdict against the rounding rule
applied here to the document's printed number or to its formula evaluated here.
"""

import dataclasses
import json
import math

import numpy as np
import pytest

from minigrad import cli
from minigrad.derivations import JSON_KEYS, agrees_to_printed_rounding, inconsistencies, run_all

CLAIMS = run_all()
BY_ID = {c.id: c for c in CLAIMS}

STABLE_IDS = [
    "000.z1", "000.z2", "000.o1", "000.o2", "000.do1_dz1", "000.do2_dz2",
    "000.do1_dx1", "000.do1_dx2", "000.do2_dx1", "000.do2_dx2",
    "000.neuron_chain_rule", "000.mse_loss", "000.mse_chain_rule",
    "000.gd_step_w11", "000.gd_step_w12", "000.gd_step_w21", "000.gd_step_w22",
    "000.gd_step_b1", "000.gd_step_b2",
    "001.mlm_loss", "001.dmlm_dlogit_target", "001.dmlm_dlogit_other", "001.ce_gradient",
    "004.bce", "004.dbce_dy_pos", "004.dbce_dy_neg", "004.sigmoid_bce_dlogit",
    "004.gd_step_w1", "004.ce_as_printed", "004.dce_dy_as_printed",
]
VALUES = {"000.z1", "000.z2", "000.o1", "000.o2", "000.mse_loss", "001.mlm_loss", "004.bce",
          "004.ce_as_printed"}


# --- the truth, in plain NumPy ---------------------------------------------------------------
def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


w = np.array([[0.5, 0.7], [0.3, 0.8]])
b = np.array([0.2, 0.4])
x = np.array([1.0, 2.0])
y = np.array([1.0, 0.0])  # the stated target of the MSE and the gradient step
alpha = 0.01
z = w @ x + b
o = sig(z)
ds = o * (1 - o)
delta = -(y - o) * ds                          # ∂J/∂z for J = ½Σ(y − o)²
grad_w, grad_b = np.outer(delta, x), delta

H = np.array([[1.0, 0.5, -0.5], [0.2, -1.0, 0.8]])
WJ = np.array([[0.5, -0.2, 0.1], [0.3, 0.8, -0.5], [-0.6, 0.1, 0.4], [0.2, 0.2, 0.2]])
labels = np.array([1, 2])
s = H @ WJ.T
p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
onehot = np.eye(4)[labels]
dl_ds = p - onehot                              # ∂/∂s of −Σ log softmax(s)_y
dl_dwj = dl_ds.T @ H                            # (C, d)

probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
probs_star = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

TRUE = {
    "000.z1": z[0], "000.z2": z[1], "000.o1": o[0], "000.o2": o[1],
    "000.do1_dz1": ds[0], "000.do2_dz2": ds[1],
    "000.do1_dx1": ds[0] * w[0, 0], "000.do1_dx2": ds[0] * w[0, 1],
    "000.do2_dx1": ds[1] * w[1, 0], "000.do2_dx2": ds[1] * w[1, 1],
    "000.neuron_chain_rule": ds[0] * x[0],
    "000.mse_loss": 0.5 * np.sum((y - o) ** 2),
    "000.mse_chain_rule": grad_w[0, 0],
    "000.gd_step_w11": w[0, 0] - alpha * grad_w[0, 0],
    "000.gd_step_w12": w[0, 1] - alpha * grad_w[0, 1],
    "000.gd_step_w21": w[1, 0] - alpha * grad_w[1, 0],
    "000.gd_step_w22": w[1, 1] - alpha * grad_w[1, 1],
    "000.gd_step_b1": b[0] - alpha * grad_b[0],
    "000.gd_step_b2": b[1] - alpha * grad_b[1],
    "001.mlm_loss": -np.sum(np.log(p[[0, 1], labels])),
    "001.dmlm_dlogit_target": dl_ds[0, labels[0]],
    "001.dmlm_dlogit_other": dl_ds[0, 0],
    "001.ce_gradient": dl_dwj[1, 0],
    "004.bce": -np.log(0.7),
    "004.dbce_dy_pos": -1 / 0.7,
    "004.dbce_dy_neg": 1 / 0.3,
    "004.sigmoid_bce_dlogit": sig(2.1) - 0.0,
    "004.gd_step_w1": 0.5 - alpha * (sig(2.1) - 0.0) * 1.0,
    "004.ce_as_printed": -np.sum(probs_star * np.log(probs)) / 2,
    "004.dce_dy_as_printed": -1.0 / (2 * 0.7),
}

# What the documents print: a number (as a string, so its rounding is known) or the formula
# evaluated here exactly as printed.
with np.errstate(divide="ignore"):
    swapped_ce = -np.sum(probs * np.log(probs_star)) / 2      # −(1/N)Σ y log y*, §4.1
PRINTED = {
    "000.z1": "2.1", "000.z2": "2.5", "000.o1": "0.8788", "000.o2": "0.9130",
    "000.do1_dz1": "0.1212", "000.do2_dz2": "0.0869",
    "000.do1_dx1": "0.1212", "000.do1_dx2": "0.0606", "000.do2_dx1": "0.0260",
    "000.do2_dx2": "0.0695",
    "000.neuron_chain_rule": ds[0] * x[0],                  # ∂o/∂z · ∂z/∂θ
    "000.mse_loss": 0.5 * np.sum((y - o) ** 2),
    "000.mse_chain_rule": 0.5 * (-1.0) * ds[0] * x[0],      # ½Σ ∂(y−ŷ)/∂ŷ · ∂ŷ/∂θ
    "000.gd_step_w11": w[0, 0] - alpha * grad_w[0, 0],      # θ − α ∂J/∂θ
    "000.gd_step_w12": w[0, 1] - alpha * grad_w[0, 1],
    "000.gd_step_w21": w[1, 0] - alpha * grad_w[1, 0],
    "000.gd_step_w22": w[1, 1] - alpha * grad_w[1, 1],
    "000.gd_step_b1": b[0] - alpha * grad_b[0],
    "000.gd_step_b2": b[1] - alpha * grad_b[1],
    "001.mlm_loss": -np.sum([np.log(np.exp(s[i, labels[i]]) / np.exp(s[i]).sum())
                             for i in range(2)]),
    "001.dmlm_dlogit_target": p[0, labels[0]] - 1,          # softmax − one-hot
    "001.dmlm_dlogit_other": p[0, 0],
    "001.ce_gradient": dl_dwj[1, 0] / 2,                    # −(1/N)Σ∇θ log P with N = 2
    "004.bce": -(1 * np.log(0.7) + 0 * np.log(0.3)),
    "004.dbce_dy_pos": -1 / 0.7 + 0 / 0.3,
    "004.dbce_dy_neg": -0 / 0.7 + 1 / 0.3,
    "004.sigmoid_bce_dlogit": (-0 / sig(2.1) + 1 / (1 - sig(2.1))) * sig(2.1) * (1 - sig(2.1)),
    "004.gd_step_w1": 0.5 - alpha * (1 / (1 - sig(2.1))) * sig(2.1) * (1 - sig(2.1)) * 1.0,
    "004.ce_as_printed": swapped_ce,
    "004.dce_dy_as_printed": -np.log(1.0) / 2,              # ∂/∂y_11 of −(1/N)Σ y log y*
}


def expected_verdict(claim_id):
    printed, true = PRINTED[claim_id], TRUE[claim_id]
    if isinstance(printed, str):
        decimals = len(printed.split(".")[1])
        ok = abs(true - float(printed)) <= 0.5 * 10 ** -decimals
    else:
        ok = bool(np.isfinite(printed)) and abs(printed - true) <= 1e-9 * max(1, abs(true))
    return "matches" if ok else "differs"


# --- ids ---------------------------------------------------------------------------------------
def test_ids_are_stable_unique_and_in_document_order():
    ids = [c.id for c in CLAIMS]
    assert ids == STABLE_IDS
    assert len(set(ids)) == len(ids)
    for c in CLAIMS:
        assert c.seed == c.id.split(".")[0]
        assert c.section.startswith("§")


def test_every_claim_is_covered_here():
    assert set(TRUE) == set(BY_ID) == set(PRINTED)


# --- values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("claim_id", STABLE_IDS)
def test_computed_and_closed_form_equal_the_independent_numpy_value(claim_id):
    c = BY_ID[claim_id]
    assert c.computed == pytest.approx(TRUE[claim_id], rel=1e-12, abs=1e-12)
    assert c.closed_form == pytest.approx(TRUE[claim_id], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("claim_id", STABLE_IDS)
def test_every_derivative_equals_its_finite_difference_to_1e_6(claim_id):
    c = BY_ID[claim_id]
    if claim_id in VALUES:
        assert c.finite_difference is None  # a value has no finite difference of its own
    else:
        assert abs(c.computed - c.finite_difference) <= 1e-6
        assert abs(TRUE[claim_id] - c.finite_difference) <= 1e-6


def test_inconsistencies_is_empty_and_catches_a_broken_claim():
    assert inconsistencies(CLAIMS) == []
    c = BY_ID["000.do1_dx1"]
    broken = dataclasses.replace(c, finite_difference=c.computed + 1e-5)
    assert inconsistencies([broken]) != []
    broken = dataclasses.replace(c, closed_form=c.computed * (1 + 1e-6))
    assert inconsistencies([broken]) != []


# --- verdicts --------------------------------------------------------------------------------
@pytest.mark.parametrize("claim_id", STABLE_IDS)
def test_verdict_follows_from_the_printed_number_or_formula(claim_id):
    c = BY_ID[claim_id]
    assert c.verdict == expected_verdict(claim_id)
    printed = PRINTED[claim_id]
    if isinstance(printed, str):
        assert c.printed == float(printed)
        assert c.decimals == len(printed.split(".")[1])
    else:
        assert c.printed is None and c.decimals is None
    if c.verdict == "matches":
        assert c.explanation == ""
    else:
        assert c.explanation


def test_the_documents_errors_are_exactly_these():
    differs = {c.id for c in CLAIMS if c.verdict == "differs"}
    assert differs == {
        "000.z2", "000.o1", "000.o2", "000.do1_dz1", "000.do2_dz2", "000.do1_dx1",
        "000.do1_dx2", "000.do2_dx1", "000.do2_dx2", "000.mse_chain_rule", "001.ce_gradient",
        "004.ce_as_printed", "004.dce_dy_as_printed",
    }


@pytest.mark.parametrize("claim_id", sorted(set(STABLE_IDS) - VALUES - {"000.z2"}))
def test_a_differing_explanation_states_the_true_value(claim_id):
    c = BY_ID[claim_id]
    if c.verdict == "differs":
        assert f"{TRUE[claim_id]:.4f}" in c.explanation


def test_the_worked_example_explanations_name_what_the_document_did():
    # z2: the printed sum is 2.3; 2.5 is what x1's weight w11 in place of w21 gives.
    assert "is 2.3, not 2.5" in BY_ID["000.z2"].explanation
    assert math.isclose(0.5 * 1 + 0.8 * 2 + 0.4, 2.5)
    # o1, o2: the printed values are sigmoids of z's that do not occur in the example.
    assert np.log(0.8788 / 0.1212) == pytest.approx(1.981, abs=5e-4)
    assert "σ(1.981)" in BY_ID["000.o1"].explanation
    assert np.log(0.9130 / 0.0870) == pytest.approx(2.351, abs=5e-4)
    assert "σ(2.351)" in BY_ID["000.o2"].explanation
    assert f"{sig(2.5):.4f}" in BY_ID["000.o2"].explanation
    # σ'(z1) printed 0.1212 is 1 − printed o1 (σ(1−σ) without the factor σ); 0.0869 ≈ 1 − 0.9130.
    assert math.isclose(1 - 0.8788, 0.1212, abs_tol=1e-12)
    assert "1 − 0.8788 = 0.1212" in BY_ID["000.do1_dz1"].explanation
    assert abs((1 - 0.9130) - 0.0869) <= 1e-4 + 1e-12
    assert "1 − 0.9130 = 0.0870" in BY_ID["000.do2_dz2"].explanation
    # ∂o1/∂x1 drops w11; ∂o1/∂x2 uses w11 = 0.5 where w12 = 0.7 belongs.
    assert math.isclose(0.1212 * 0.5, 0.0606)
    assert "drops the weight w11" in BY_ID["000.do1_dx1"].explanation
    assert "instead of w12 = 0.7" in BY_ID["000.do1_dx2"].explanation
    # 0.0869·0.3 = 0.02607 rounds to 0.0261; 0.0869·0.8 = 0.06952 rounds to the printed 0.0695.
    assert round(0.0869 * 0.3, 4) == 0.0261
    assert "rounds to 0.0261" in BY_ID["000.do2_dx1"].explanation
    assert round(0.0869 * 0.8, 4) == 0.0695


def test_the_printed_mse_chain_rule_ignores_the_error_and_misses_the_factor_2_error():
    c = BY_ID["000.mse_chain_rule"]
    as_printed = PRINTED[c.id]
    # The printed rule gives −½Σ∂ŷ/∂θ, the true gradient −Σ(y−ŷ)∂ŷ/∂θ: the ratio is 2(y1 − o1).
    assert c.computed / as_printed == pytest.approx(2 * (y[0] - o[0]))
    assert f"{as_printed:.4f}" in c.explanation


def test_the_printed_ce_gradient_is_the_sum_losses_gradient_divided_by_n():
    c = BY_ID["001.ce_gradient"]
    assert PRINTED[c.id] * 2 == pytest.approx(c.computed)
    assert "N = 2" in c.explanation


def test_the_swapped_cross_entropy_is_infinite_and_carries_no_gradient():
    assert swapped_ce == math.inf
    assert "+∞" in BY_ID["004.ce_as_printed"].explanation
    assert PRINTED["004.dce_dy_as_printed"] == 0.0


def test_one_gradient_step_lowers_the_loss():
    stepped_w = np.array([[BY_ID[f"000.gd_step_w{i}{j}"].computed for j in (1, 2)]
                          for i in (1, 2)])
    stepped_b = np.array([BY_ID["000.gd_step_b1"].computed, BY_ID["000.gd_step_b2"].computed])
    after = 0.5 * np.sum((y - sig(stepped_w @ x + stepped_b)) ** 2)
    assert after < BY_ID["000.mse_loss"].computed


@pytest.mark.parametrize(("printed", "decimals", "computed", "ok"), [
    (0.0606, 4, 0.06064, True), (0.0606, 4, 0.06056, True), (0.0606, 4, 0.06066, False),
    (2.1, 1, 2.1, True), (2.5, 1, 2.3, False), (0.9130, 4, 0.90888, False),
])
def test_a_printed_number_matches_within_half_its_last_digit(printed, decimals, computed, ok):
    assert agrees_to_printed_rounding(printed, decimals, computed) is ok


# --- the command -----------------------------------------------------------------------------
def test_derive_prints_one_row_per_claim_with_its_verdict_and_explanation(capsys):
    assert cli.main(["derive"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["id", "seed", "§"]
    for c in CLAIMS:
        (k,) = [k for k, line in enumerate(lines) if line.split()[:1] == [c.id]]
        row = lines[k]
        assert f"{c.seed} {c.section}" in row and c.quantity in row
        assert row.split()[-1] == c.verdict
        assert ("formula" if c.printed is None else f"{c.printed:.{c.decimals}f}") in row
        assert f"{c.computed:.8g}" in row
        if c.finite_difference is not None:
            assert f"{c.finite_difference:.8g}" in row
        if c.verdict == "differs":
            assert lines[k + 1].strip() == f"↳ {c.explanation}"
    differ = sum(c.verdict == "differs" for c in CLAIMS)
    assert f"{len(CLAIMS)} claims: {len(CLAIMS) - differ} match, {differ} differ" in lines[-1]


def test_derive_json_has_exactly_the_documented_keys(capsys):
    assert cli.main(["derive", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in rows] == STABLE_IDS
    for row in rows:
        assert tuple(row) == JSON_KEYS
        c = BY_ID[row["id"]]
        assert row == c.as_dict()
        assert row["verdict"] in ("matches", "differs")
        assert (row["printed"] is None) == (not isinstance(PRINTED[row["id"]], str))
