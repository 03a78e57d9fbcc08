"""The elementwise ops, activations, RMSNorm and losses of issue 15, beyond the battery.

The battery (gradcheck, torch, dtype) checks every differentiable op on random inputs clear of
kinks and jumps. Here: the bool ops, the zero gradient of the rounding ops at their jumps too,
each op exactly at its kinks and far out on its tails, the layers against ``torch.nn`` in
float32, and the losses' reductions and errors against ``torch.nn.functional``.
"""

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from test_ops_gradcheck import EVERY_ROLE, broadcast_roles, draws

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0, 1e38], np.float32)


def assert_like_torch(ours: mg.Tensor, theirs: torch.Tensor, rtol: float = 1e-6,
                      atol: float = 1e-7) -> None:
    expected = theirs.detach().numpy()
    assert ours.shape == tuple(expected.shape)
    assert str(theirs.dtype) == f"torch.{ours.dtype}"
    np.testing.assert_allclose(ours.data, expected, rtol=rtol, atol=atol)


def run_both(ours: Callable[..., mg.Tensor], theirs: Callable[..., torch.Tensor],
             *arrays: np.ndarray, seed: int = 0, rtol: float = 1e-6, atol: float = 1e-7) -> None:
    """Forward and the gradient of every input, against torch, for a random upstream gradient."""
    xs = [mg.tensor(a, requires_grad=True) for a in arrays]
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*xs), theirs(*txs)
    assert_like_torch(out, expected, rtol, atol)
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    for x, tx in zip(xs, txs, strict=True):
        assert x.grad.dtype == x.dtype
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=rtol, atol=atol)


# --- the bool ops ----------------------------------------------------------------------------
BOOL_OPS = ["isnan", "isinf", "isfinite"]


@pytest.mark.parametrize("name", BOOL_OPS)
def test_bool_ops_match_torch_and_stay_outside_the_graph(name: str) -> None:
    x = mg.tensor(SPECIALS, requires_grad=True)
    for out in (getattr(mg, name)(x), getattr(x, name)()):
        assert out.dtype == np.bool_ and not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.data, getattr(torch, name)(torch.from_numpy(SPECIALS)))


@pytest.mark.parametrize("name", BOOL_OPS)
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_bool_ops_of_integers_and_bools_match_torch(name: str, dtype: type) -> None:
    data = np.array([[0, 1], [1, 3]]).astype(dtype)
    out = getattr(mg, name)(mg.tensor(data))
    assert out.dtype == np.bool_ and out.shape == (2, 2)
    np.testing.assert_array_equal(out.data, getattr(torch, name)(torch.from_numpy(data)))


# --- masks: not, and, or, xor ------------------------------------------------------------------
MASK_A = np.array([[True, False, True], [False, False, True]])
MASK_B = np.array([True, True, False])  # broadcasts against MASK_A
INTS = np.array([[5, -3, 0], [12, 7, -1]])


@pytest.mark.parametrize("name", ["and", "or", "xor"])
@pytest.mark.parametrize("kind", ["bool", "int64"])
def test_bitwise_and_logical_ops_match_torch_outside_the_graph(name: str, kind: str) -> None:
    a, b = (MASK_A, MASK_B) if kind == "bool" else (INTS, np.array([3, 6, -2]))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    x, y = mg.tensor(a), mg.tensor(b)
    operator = {"and": lambda u, v: u & v, "or": lambda u, v: u | v, "xor": lambda u, v: u ^ v}
    for out, expected in ((operator[name](x, y), operator[name](ta, tb)),
                          (operator[name](x, b), operator[name](ta, tb)),  # an array on the right
                          (getattr(mg, f"bitwise_{name}")(x, y),
                           getattr(torch, f"bitwise_{name}")(ta, tb)),
                          (getattr(x, f"logical_{name}")(y),
                           getattr(torch, f"logical_{name}")(ta, tb))):
        assert not out.requires_grad and out.grad_fn is None
        assert out.dtype == np.dtype(str(expected.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(out.data, expected.numpy())


@pytest.mark.parametrize("kind", ["bool", "int64", "float32"])
def test_invert_and_logical_not_match_torch(kind: str) -> None:
    data = {"bool": MASK_A, "int64": INTS, "float32": INTS.astype(np.float32)}[kind]
    x, tx = mg.tensor(data), torch.from_numpy(data)
    np.testing.assert_array_equal(x.logical_not().data, torch.logical_not(tx).numpy())
    np.testing.assert_array_equal(mg.logical_not(x).data, torch.logical_not(tx).numpy())
    if kind == "float32":
        with pytest.raises(TypeError, match=r"bitwise_not: expected bool or integer tensors, "
                           r"got dtype float32"):
            _ = ~x
        with pytest.raises(TypeError):
            _ = ~tx  # torch refuses it too
        with pytest.raises(TypeError, match=r"bitwise_and: .* got dtype float32"):
            _ = x & x
    else:
        out = ~x
        assert out.dtype == data.dtype and not out.requires_grad
        np.testing.assert_array_equal(out.data, (~tx).numpy())


def test_inverting_a_mask_is_what_the_subtraction_error_suggests() -> None:
    mask = mg.tensor(MASK_A)
    with pytest.raises(TypeError, match=r"use ~mask or mask\.logical_not\(\)"):
        _ = 1 - mask
    np.testing.assert_array_equal((~mask).data, mask.logical_not().data)


# --- rounding: zero gradient everywhere, as torch ----------------------------------------------
ROUNDING = ["sign", "floor", "ceil", "round"]
AT_THE_JUMPS = np.array([-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5, 3.7], np.float32)


@pytest.mark.parametrize("name", ROUNDING)
def test_rounding_ops_give_zero_gradient_even_at_their_jumps(name: str) -> None:
    run_both(lambda x: getattr(x, name)() * 3.0, lambda x: getattr(torch, name)(x) * 3.0,
             AT_THE_JUMPS)
    x = mg.tensor(AT_THE_JUMPS, requires_grad=True)
    getattr(mg, name)(x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros_like(AT_THE_JUMPS))


def test_round_halves_to_even_and_takes_decimals_as_torch() -> None:
    data = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1.25, 2.35, -7.125, 123.456], np.float32)
    x, tx = mg.tensor(data), torch.from_numpy(data)
    np.testing.assert_array_equal(x.round().data, torch.round(tx).numpy())
    for decimals in (1, 2, -1):
        np.testing.assert_allclose(mg.round(x, decimals).data,
                                   torch.round(tx, decimals=decimals).numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ROUNDING)
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_rounding_an_integer_tensor_keeps_its_values_and_dtype(name: str, dtype: type) -> None:
    data = np.array([-3, 0, 2, 7], dtype)
    out = getattr(mg, name)(mg.tensor(data))
    expected = getattr(torch, name)(torch.from_numpy(data))
    assert out.dtype == dtype and str(expected.dtype) == f"torch.{out.dtype}"
    np.testing.assert_array_equal(out.data, expected.numpy())
    assert not out.requires_grad


def test_sign_of_a_bool_tensor_is_itself_and_round_decimals_of_integers_is_refused() -> None:
    mask = np.array([True, False])
    np.testing.assert_array_equal(mg.sign(mg.tensor(mask)).data, mask)
    with pytest.raises(TypeError, match=r"decimals=1 needs a floating-point tensor.*int64"):
        mg.round(mg.tensor([1, 2]), decimals=1)


# --- dtypes: unary float functions of integers, activations refuse them -------------------------
@pytest.mark.parametrize("name", ["sin", "cos", "erf", "rsqrt", "log1p", "expm1"])
def test_float_functions_of_an_integer_tensor_are_float32_as_in_torch(name: str) -> None:
    data = np.array([1, 2, 3])
    out = getattr(mg, name)(mg.tensor(data))
    assert_like_torch(out, getattr(torch, name)(torch.from_numpy(data)))


@pytest.mark.parametrize("name", ["silu", "softplus", "mish", "elu", "leaky_relu", "hardtanh"])
def test_activations_refuse_an_integer_tensor_naming_the_dtype(name: str) -> None:
    with pytest.raises(TypeError, match=rf"{name}: expected a floating-point tensor, got dtype "
                                        r"int64 \(shape \(3,\)\)"):
        getattr(F, name)(mg.tensor([1, 2, 3]))


@pytest.mark.parametrize("name", ["kl_div", "smooth_l1_loss", "huber_loss"])
def test_losses_refuse_an_integer_input_naming_the_dtype(name: str) -> None:
    with pytest.raises(TypeError, match=rf"{name}: expected a floating-point tensor, got dtype "
                                        "int64"):
        getattr(F, name)(mg.tensor([1, 2, 3]), mg.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="nll_loss: expected a floating-point tensor"):
        F.nll_loss(mg.tensor([[1, 2]]), np.array([0]))


# --- kinks, ties and tails, against torch -------------------------------------------------------
AT_THE_KINKS = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], np.float32)
TAILS = np.array([-1e4, -100.0, -30.0, -1e-8, 1e-8, 30.0, 100.0, 1e4], np.float32)

ACTIVATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "silu": (F.silu, TF.silu),
    "mish": (F.mish, TF.mish),
    "softplus": (F.softplus, TF.softplus),
    "softplus beta=2 threshold=1": (lambda x: F.softplus(x, 2.0, 1.0),
                                    lambda x: TF.softplus(x, 2.0, 1.0)),
    "softplus beta=-1": (lambda x: F.softplus(x, -1.0), lambda x: TF.softplus(x, -1.0)),
    "elu": (F.elu, TF.elu),
    "elu alpha=0.5": (lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5)),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu),
    "leaky_relu 0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "hardtanh": (F.hardtanh, TF.hardtanh),
    "hardtanh [-0.5, 1]": (lambda x: F.hardtanh(x, -0.5, 1.0),
                           lambda x: TF.hardtanh(x, -0.5, 1.0)),
    "erf": (mg.erf, torch.erf),
    "sin": (mg.sin, torch.sin),
    "cos": (mg.cos, torch.cos),
    "log1p": (lambda x: mg.log1p(mg.abs(x)), lambda x: torch.log1p(torch.abs(x))),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("values", [AT_THE_KINKS, TAILS], ids=["kinks", "tails"])
def test_activations_match_torch_at_kinks_and_far_out_in_float32(name: str,
                                                                 values: np.ndarray) -> None:
    ours, theirs = ACTIVATIONS[name]
    run_both(ours, theirs, values, rtol=1e-6, atol=1e-30)


def test_softplus_switches_to_the_identity_where_beta_x_passes_the_threshold() -> None:
    data = np.array([0.9, 1.0, 1.1, 5.0], np.float32)
    x = mg.tensor(data, requires_grad=True)
    y = F.softplus(x, beta=2.0, threshold=2.0)
    y.sum().backward()
    np.testing.assert_array_equal(y.data[2:], data[2:])  # βx > 2: the identity, gradient 1
    np.testing.assert_array_equal(x.grad[2:], 1.0)
    np.testing.assert_allclose(y.data[:2], np.log1p(np.exp(2 * data[:2])) / 2, rtol=1e-6)
    np.testing.assert_allclose(x.grad[:2], 1 / (1 + np.exp(-2 * data[:2])), rtol=1e-6)
    run_both(lambda t: F.softplus(t, 2.0, 2.0), lambda t: TF.softplus(t, 2.0, 2.0), data)


def test_log1p_and_expm1_are_exact_for_tiny_x_and_expm1_keeps_its_gradient_far_out() -> None:
    tiny = np.array([1e-10, -1e-10, 1e-30], np.float32)
    np.testing.assert_allclose(mg.log1p(mg.tensor(tiny)).data, tiny, rtol=1e-6)
    np.testing.assert_allclose(mg.expm1(mg.tensor(tiny)).data, tiny, rtol=1e-6)
    run_both(mg.expm1, torch.expm1, np.array([-3.0, -1e-8, 0.0, 1e-8, 2.0, 80.0], np.float32),
             rtol=1e-5)
    x = mg.tensor(np.array([-30.0, -80.0], np.float32), requires_grad=True)
    x.expm1().sum().backward()  # eˣ itself, where torch's (expm1(x) + 1) is 0 in float32
    np.testing.assert_allclose(x.grad, np.exp(np.array([-30.0, -80.0])), rtol=1e-6)


def test_minimum_splits_ties_evenly_and_broadcasts_as_torch() -> None:
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    b = np.array([2.0, 2.0, 2.0], np.float32)
    run_both(mg.minimum, torch.minimum, a, b)
    run_both(lambda x, y: x.minimum(y), torch.minimum, a, a.copy())


@pytest.mark.parametrize("name", ["minimum", "lerp"])
def test_binary_ops_of_the_issue_broadcast_either_operand(name: str) -> None:
    roles = set()
    for arrays, _, _ in draws(name, shape=(2, 3, 4)):
        roles |= broadcast_roles([a.shape for a in arrays[:2]])
    assert roles == EVERY_ROLE


def test_lerp_weight_broadcasts_too() -> None:
    roles = set()
    for arrays, _, _ in draws("lerp", shape=(2, 3, 4)):
        roles |= broadcast_roles([a.shape for a in arrays])
    assert {"2 gains dims", "2 stretches size-1 dims"} <= roles


# --- lerp ---------------------------------------------------------------------------------------
def test_lerp_with_weight_one_gives_end_exactly_and_a_number_weight_takes_no_gradient() -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((3, 4)).astype(np.float32) * 1e3 for _ in range(2))
    assert np.array_equal(mg.lerp(mg.tensor(a), mg.tensor(b), 1.0).data, b)
    run_both(lambda x, y: mg.lerp(x, y, 0.75), lambda x, y: torch.lerp(x, y, 0.75), a, b)
    w = rng.uniform(-1, 2, (4,)).astype(np.float32)
    run_both(mg.lerp, torch.lerp, a, b, w, rtol=1e-5, atol=1e-3)


def test_lerp_converts_a_0d_weight_and_refuses_mixed_dtypes_as_torch() -> None:
    a, b = mg.ones(3), mg.zeros(3)
    out = mg.lerp(a, b, mg.tensor(0.25, dtype=mg.float64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, 0.75)
    with pytest.raises(TypeError, match=r"expected dtype float32 for end \(shape \(3,\)\), but got "
                                        "dtype float64"):
        mg.lerp(a, b.double(), 0.5)
    with pytest.raises(TypeError, match="expected dtype float32 for weight"):
        mg.lerp(a, b, mg.ones(3, dtype=mg.float64))
    with pytest.raises(TypeError, match="expected a floating-point tensor, got dtype int64"):
        mg.lerp(mg.tensor([1, 2]), mg.tensor([3, 4]), 0.5)
    with pytest.raises(ValueError, match=r"lerp: shapes \(3,\) and \(2,\) and \(\) cannot be "
                                         "broadcast"):
        mg.lerp(a, mg.zeros(2), 0.5)


# --- layers against torch.nn, float32 ---------------------------------------------------------
def torch_twin(layer: nn.Module, ref: torch.nn.Module) -> torch.nn.Module:
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
    return ref


def check_layer(layer: nn.Module, ref: torch.nn.Module, x: np.ndarray) -> None:
    """Same repr, output, input gradient and parameter gradients as torch's layer (float32)."""
    assert repr(layer) == repr(ref)
    ref = torch_twin(layer, ref)
    mx, tx = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = layer(mx), ref(tx)
    assert_like_torch(y, ty, rtol=1e-5, atol=1e-6)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    torch_params = dict(ref.named_parameters())
    assert [n for n, _ in layer.named_parameters()] == list(torch_params)
    for name, p in layer.named_parameters():
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, torch_params[name].grad.numpy(), rtol=1e-5,
                                   atol=1e-5, err_msg=name)


def randn32(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(("shape", "eps", "affine"), [
    (4, None, True), ((3, 4), None, True), (4, 1e-6, True), ((3, 4), 1e-5, False)])
def test_rms_norm_layer_matches_torch(shape: Any, eps: float | None, affine: bool) -> None:
    layer = nn.RMSNorm(shape, eps=eps, elementwise_affine=affine)
    ref = torch.nn.RMSNorm(shape, eps=eps, elementwise_affine=affine)
    if affine:
        layer.weight.data[...] = randn32(*layer.weight.shape, seed=2)
    check_layer(layer, ref, randn32(2, 3, 4) * 5)


def test_rms_norm_eps_none_is_the_machine_epsilon_of_the_input_dtype() -> None:
    x = np.full((2, 4), 1e-4)  # mean(x²) = 1e-8: eps of float64 (2e-16) or float32 (1e-7) shows
    for dtype in (np.float32, np.float64):
        out = F.rms_norm(mg.tensor(x.astype(dtype)), 4)
        expected = TF.rms_norm(torch.from_numpy(x.astype(dtype)), (4,))
        assert_like_torch(out, expected, rtol=1e-6)


def test_rms_norm_refuses_a_shape_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match=r"normalized_shape \(3,\) does not match the last dims "
                                         r"of the input's shape \(2, 4\)"):
        F.rms_norm(mg.randn(2, 4), 3)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected normalized_shape "
                                         r"\(4,\)"):
        F.rms_norm(mg.randn(2, 4), 4, mg.ones(3))


@pytest.mark.parametrize(("layer", "ref"), [
    (nn.SiLU(), torch.nn.SiLU()), (nn.Mish(), torch.nn.Mish()),
    (nn.Softplus(), torch.nn.Softplus()), (nn.Softplus(2.0, 3.0), torch.nn.Softplus(2.0, 3.0)),
    (nn.LeakyReLU(), torch.nn.LeakyReLU()), (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.5), torch.nn.ELU(0.5)),
    (nn.Hardtanh(), torch.nn.Hardtanh()), (nn.Hardtanh(-0.5, 2.0), torch.nn.Hardtanh(-0.5, 2.0)),
], ids=lambda m: repr(m))
def test_activation_layers_match_torch(layer: nn.Module, ref: torch.nn.Module) -> None:
    check_layer(layer, ref, randn32(3, 5) * 3)


def test_layers_of_the_issue_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(mg.randn(3), 2.0, 1.0)
    with pytest.raises(ValueError, match="eps must be positive or None, got 0"):
        nn.RMSNorm(4, eps=0)


# --- losses: every reduction against torch ------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]
rng0 = np.random.default_rng(0)
LOGITS = rng0.standard_normal((4, 5, 3)).astype(np.float32) * 2  # (N, C, d)
CLASSES = rng0.integers(0, 5, (4, 3))
PROBS = rng0.random((4, 5, 3)).astype(np.float32)
PRED, TARGET = (rng0.standard_normal((3, 4)).astype(np.float32) * 2 for _ in range(2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(reduction: str, weighted: bool) -> None:
    weight = np.array([0.5, 1.0, 2.0, 0.0, 3.0], np.float32) if weighted else None
    target = CLASSES.copy()
    target[0, 0] = -100  # ignored: no loss, no weight in the mean
    run_both(lambda x: F.nll_loss(F.log_softmax(x, 1), target, weight, reduction=reduction),
             lambda x: TF.nll_loss(TF.log_softmax(x, 1), torch.from_numpy(target),
                                   None if weight is None else torch.from_numpy(weight),
                                   reduction=reduction), LOGITS, rtol=1e-5, atol=1e-6)


def test_nll_loss_of_a_1d_input_takes_a_scalar_target() -> None:
    run_both(lambda x: F.nll_loss(x, np.array(2)), lambda x: TF.nll_loss(x, torch.tensor(2)),
             LOGITS[0, :, 0])


def test_nll_loss_with_every_target_ignored_is_zero_where_torch_gives_nan() -> None:
    x = mg.tensor(LOGITS[:, :, 0], requires_grad=True)
    loss = F.nll_loss(x, np.full(4, -100))
    loss.backward()
    assert loss.item() == 0.0 and not x.grad.any()
    assert torch.isnan(TF.nll_loss(torch.from_numpy(LOGITS[:, :, 0]), torch.full((4,), -100)))


def test_nll_loss_errors_name_the_target_the_classes_and_the_shapes() -> None:
    x = mg.randn(3, 4)
    with pytest.raises(IndexError, match=r"target 5 is out of range for 4 classes.*\(3, 4\)"):
        F.nll_loss(x, np.array([0, 5, 1]))
    with pytest.raises(ValueError, match=r"input of shape \(3, 4\) needs a target of shape "
                                         r"\(3,\), got \(2,\)"):
        F.nll_loss(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class ids, got dtype float64"):
        F.nll_loss(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.nll_loss(x, np.array([0, 1, 2]), weight=mg.ones(3))
    with pytest.raises(RuntimeError, match="not differentiable with respect to weight"):
        F.nll_loss(x, np.array([0, 1, 2]), weight=mg.ones(4, requires_grad=True))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.nll_loss(x, np.array([0, 1, 2]), reduction="batchmean")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_with_class_probabilities_matches_torch(reduction: str,
                                                              label_smoothing: float) -> None:
    run_both(lambda z, y: F.cross_entropy(z, y, reduction=reduction,
                                          label_smoothing=label_smoothing),
             lambda z, y: TF.cross_entropy(z, y, reduction=reduction,
                                           label_smoothing=label_smoothing),
             LOGITS, PROBS, rtol=1e-5, atol=1e-6)


def test_cross_entropy_with_probabilities_of_a_1d_input_and_its_errors() -> None:
    run_both(F.cross_entropy, TF.cross_entropy, LOGITS[0, :, 0], PROBS[0, :, 0])
    with pytest.raises(TypeError, match=r"target of the input's shape \(4, 5\) holds class "
                                        "probabilities and must be floating point, got dtype "
                                        "int64"):
        F.cross_entropy(mg.randn(4, 5), np.zeros((4, 5), np.int64))
    with pytest.raises(ValueError, match="ignore_index=1 is not supported for class-probability"):
        F.cross_entropy(mg.randn(4, 5), mg.rand(4, 5), ignore_index=1)


def test_cross_entropy_with_class_ids_still_takes_its_fused_path() -> None:
    loss = F.cross_entropy(mg.tensor(LOGITS, requires_grad=True), CLASSES)
    assert loss.grad_fn is not None
    expected = TF.cross_entropy(torch.from_numpy(LOGITS), torch.from_numpy(CLASSES))
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction: str, log_target: bool) -> None:
    logp = TF.log_softmax(torch.from_numpy(LOGITS), 1).numpy()
    target = np.log(PROBS) if log_target else PROBS
    with pytest.warns(UserWarning) if reduction == "mean" else contextlib.nullcontext():
        run_both(lambda x, t: F.kl_div(x, t, reduction, log_target),
                 lambda x, t: TF.kl_div(x, t, reduction=reduction, log_target=log_target),
                 logp, target, rtol=1e-5, atol=1e-6)


def test_kl_div_takes_0_log_0_as_0_where_the_target_is_0() -> None:
    logp = np.log(np.array([[0.5, 0.25, 0.25]], np.float32))
    target = np.array([[0.0, 0.5, 0.5]], np.float32)
    x = mg.tensor(logp, requires_grad=True)
    loss = F.kl_div(x, target, reduction="sum")
    loss.backward()
    tx = torch.tensor(logp, requires_grad=True)
    expected = TF.kl_div(tx, torch.from_numpy(target), reduction="sum")
    expected.backward()
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_kl_div_refuses_an_unknown_reduction_and_a_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"kl_div: reduction must be one of \('mean', "
                                         r"'batchmean', 'sum', 'none'\), got 'avg'"):
        F.kl_div(mg.randn(2, 3), mg.rand(2, 3), reduction="avg")
    with pytest.raises(ValueError, match=r"kl_div: input has shape \(2, 3\) but target has "
                                         r"shape \(3,\)"):
        F.kl_div(mg.randn(2, 3), mg.rand(3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_pos_weight_matches_torch(reduction: str) -> None:
    pos_weight = np.array([0.5, 1.0, 2.0, 4.0], np.float32)
    targets = (np.random.default_rng(2).random((3, 4)) < 0.5).astype(np.float32)
    run_both(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction, pos_weight),
             lambda x, y: TF.binary_cross_entropy_with_logits(
                 x, y, reduction=reduction, pos_weight=torch.from_numpy(pos_weight)),
             PRED, targets, rtol=1e-5, atol=1e-6)


def test_bce_with_logits_pos_weight_is_stable_for_huge_logits() -> None:
    x = mg.tensor(np.array([1e4, -1e4, 1e4, -1e4], np.float32), requires_grad=True)
    y = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    loss = F.binary_cross_entropy_with_logits(x, y, "none", pos_weight=mg.full((4,), 3.0))
    loss.sum().backward()
    np.testing.assert_allclose(loss.data, [1e4, 3e4, 0.0, 0.0])
    np.testing.assert_allclose(x.grad, [1.0, -3.0, 0.0, 0.0])


def test_bce_with_logits_pos_weight_errors() -> None:
    x, y = mg.randn(3, 4), mg.rand(3, 4)
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(3, 4\) cannot be broadcast"):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=mg.ones(3))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2, 1, 4\) does not broadcast "
                                         r"to the input's shape \(3, 4\)"):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=mg.ones(2, 1, 4))
    with pytest.raises(RuntimeError, match="not differentiable with respect to pos_weight"):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=mg.ones(4, requires_grad=True))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_smooth_l1_loss_matches_torch(reduction: str, beta: float) -> None:
    run_both(lambda x, y: F.smooth_l1_loss(x, y, reduction, beta),
             lambda x, y: TF.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
             PRED, TARGET, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
def test_huber_loss_matches_torch(reduction: str, delta: float) -> None:
    run_both(lambda x, y: F.huber_loss(x, y, reduction, delta),
             lambda x, y: TF.huber_loss(x, y, reduction=reduction, delta=delta),
             PRED, TARGET, rtol=1e-5, atol=1e-6)


def test_smooth_l1_and_huber_refuse_bad_beta_delta_and_shapes() -> None:
    x = mg.randn(3)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be non-negative, got -1"):
        F.smooth_l1_loss(x, mg.randn(3), beta=-1.0)
    for delta in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"huber_loss: delta must be positive, got {delta}"):
            F.huber_loss(x, mg.randn(3), delta=delta)
    with pytest.raises(ValueError, match=r"input has shape \(3,\) but target has shape \(3, 1\)"):
        F.huber_loss(x, mg.randn(3, 1))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.smooth_l1_loss(x, mg.randn(3), reduction="batchmean")


# --- exports ------------------------------------------------------------------------------------
def test_the_new_ops_are_exported_where_torch_has_them() -> None:
    for name in ["minimum", "erf", "rsqrt", "sin", "cos", "log1p", "expm1", "isnan", "isinf",
                 "isfinite", "sign", "floor", "ceil", "round", "lerp"]:
        assert hasattr(torch, name) and name in mg.__all__ and hasattr(mg.Tensor, name), name
    for name in ["silu", "softplus", "mish", "hardtanh", "leaky_relu", "elu", "rms_norm",
                 "nll_loss", "kl_div", "smooth_l1_loss", "huber_loss"]:
        assert hasattr(TF, name) and name in F.__all__, name
    for name in ["RMSNorm", "SiLU", "Softplus", "LeakyReLU", "ELU", "Mish", "Hardtanh"]:
        assert hasattr(torch.nn, name) and name in nn.__all__, name
