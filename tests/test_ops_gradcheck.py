"""Every op's backward agrees with finite differences, on shapes drawn by hypothesis.

The battery (:data:`minigrad.gradcheck.BATTERY`) holds one case per op and variant. Here each
case is gradchecked in float64 on random shapes; the battery is checked to cover every op that
the engine promises, with broadcasting on both sides of every binary op; and gradcheck itself is
checked to catch a wrong backward.
"""

import re
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from minigrad import Tensor, float64, manual_seed
from minigrad.autograd import Context, Function
from minigrad.gradcheck import BATTERY, GradcheckError, OpCase, gradcheck, run_case
from minigrad.nn import functional as F

CASES = {case.name: case for case in BATTERY}


def shape_and_seed(case: OpCase) -> st.SearchStrategy:
    shapes = array_shapes(min_dims=case.min_ndim, max_dims=case.max_ndim,
                          min_side=case.min_side, max_side=4)
    return st.tuples(shapes, st.integers(0, 2**32 - 1))


@pytest.mark.parametrize("case", BATTERY, ids=[case.name for case in BATTERY])
@given(data=st.data())
def test_backward_matches_finite_differences(case: OpCase, data: st.DataObject) -> None:
    shape, seed = data.draw(shape_and_seed(case), label="shape, seed")
    run_case(case, seed, shape)


# --- the battery covers every op -----------------------------------------------------------
def graph_ops(out: Tensor) -> set[str]:
    """Names of the Functions in the graph that made ``out``."""
    names, stack, seen = set(), [out._ctx], set()
    while stack:
        node = stack.pop()
        if not isinstance(node, Context) or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.fn.__name__)
        stack.extend(node.parents)
    return names


def run_forward(case: OpCase, seed: int, shape: tuple[int, ...] | None = None
                ) -> tuple[list[np.ndarray], dict, Tensor]:
    arrays, params = case.build(np.random.default_rng(seed), shape or case.example_shape)
    tensors = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    return arrays, params, case.fn(*tensors, **params)


def draws(case_name: str, n: int = 60, shape: tuple[int, ...] | None = None
          ) -> Iterator[tuple[list[np.ndarray], dict, Tensor]]:
    for seed in range(n):
        yield run_forward(CASES[case_name], seed, shape)


# Every op the engine promises -> (the battery case, the Function its graph must contain)
ISSUE_OPS = {
    "+": ("add", "Add"), "-": ("sub", "Sub"), "*": ("mul", "Mul"), "/": ("div", "Div"),
    "** scalar": ("pow_scalar", "PowScalar"), "** tensor": ("pow", "Pow"),
    "@": ("matmul", "MatMul"), "@ 1-d": ("matmul_1d", "MatMul"), "unary -": ("neg", "Neg"),
    "exp": ("exp", "Exp"), "log": ("log", "Log"), "sqrt": ("sqrt", "Sqrt"),
    "tanh": ("tanh", "Tanh"), "sigmoid": ("sigmoid", "Sigmoid"), "relu": ("relu", "Relu"),
    "abs": ("abs", "Abs"), "clip": ("clip", "Clip"),
    "sum": ("sum", "Sum"), "mean": ("mean", "Mean"), "max": ("max", "Max"),
    "min": ("min", "Max"), "var": ("var", "Var"),
    "reshape": ("reshape", "Reshape"), "view": ("view", "Reshape"),
    "transpose": ("transpose", "Permute"), "permute": ("permute", "Permute"),
    "unsqueeze": ("unsqueeze", "Reshape"), "squeeze": ("squeeze", "Reshape"),
    "expand": ("expand", "Expand"),
    "index by slices": ("getitem_slice", "GetItem"),
    "index by integer arrays": ("getitem_int_array", "GetItem"),
    "index by boolean masks": ("getitem_bool_mask", "GetItem"),
    "index by an int, a slice and an array": ("getitem_mixed", "GetItem"),
    "x[index] = value": ("setitem", "SetItem"),
    "F.mse_loss w.r.t. the target": ("mse_loss_target", "Sub"),
    "F.binary_cross_entropy w.r.t. the target": ("binary_cross_entropy_target",
                                                 "BinaryCrossEntropy"),
    "F.binary_cross_entropy_with_logits w.r.t. the target": (
        "binary_cross_entropy_with_logits_target", "BinaryCrossEntropyWithLogits"),
    "cat": ("cat", "Cat"), "stack": ("stack", "Stack"), "where": ("where", "Where"),
    "maximum": ("maximum", "Maximum"), "masked_fill": ("masked_fill", "MaskedFill"),
    "F.softmax": ("softmax", "Softmax"), "F.log_softmax": ("log_softmax", "LogSoftmax"),
    "F.gelu": ("gelu", "Gelu"), "F.gelu tanh": ("gelu_tanh", "Gelu"),
    "F.layer_norm": ("layer_norm", "LayerNorm"), "F.embedding": ("embedding", "Embedding"),
    "F.dropout": ("dropout", "Dropout"), "F.linear": ("linear", "Linear"),
    "F.linear_gelu": ("linear_gelu", "BiasGelu"),
    "F.scaled_dot_product_attention": ("scaled_dot_product_attention",
                                       "ScaledDotProductAttention"),
    "F.mse_loss": ("mse_loss", "Mul"),
    "F.binary_cross_entropy": ("binary_cross_entropy", "BinaryCrossEntropy"),
    "F.binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits",
                                           "BinaryCrossEntropyWithLogits"),
    "F.cross_entropy": ("cross_entropy", "CrossEntropy"),
    # indexing, scans and sorting (issue 15)
    "gather": ("gather", "Gather"), "scatter": ("scatter", "Scatter"),
    "scatter with a value": ("scatter_value", "Scatter"),
    "scatter_add": ("scatter_add", "ScatterAdd"), "index_select": ("index_select", "IndexSelect"),
    "masked_select": ("masked_select", "MaskedSelect"),
    "take_along_dim": ("take_along_dim", "Gather"), "cumsum": ("cumsum", "Cumsum"),
    "cumprod": ("cumprod", "Cumprod"), "sort": ("sort", "Gather"), "topk": ("topk", "Gather"),
    "flip": ("flip", "Flip"), "roll": ("roll", "Roll"),
    "split": ("split", "GetItem"), "chunk": ("chunk", "GetItem"),
    "tril": ("tril", "Triangle"), "triu": ("triu", "Triangle"),
    "repeat": ("repeat", "Repeat"), "repeat_interleave": ("repeat_interleave", "IndexSelect"),
    "F.pad constant": ("pad_constant", "Pad"), "F.pad reflect, replicate": (
        "pad_reflect_replicate", "Pad"),
    "unflatten": ("unflatten", "Reshape"), "movedim": ("movedim", "Permute"),
    "einsum": ("einsum", "Einsum"), "std": ("std", "Var"), "prod": ("prod", "Prod"),
    "logsumexp": ("logsumexp", "LogSumExp"), "amax": ("max", "Max"), "amin": ("min", "Max"),
    "max(dim)": ("max_dim", "MaxAlongDim"), "min(dim)": ("min_dim", "MaxAlongDim"),
    # elementwise ops and losses (issue 15)
    "minimum": ("minimum", "Minimum"), "F.silu": ("silu", "Silu"),
    "F.softplus": ("softplus", "Softplus"), "erf": ("erf", "Erf"), "rsqrt": ("rsqrt", "Rsqrt"),
    "sin": ("sin", "Sin"), "cos": ("cos", "Cos"), "log1p": ("log1p", "Log1p"),
    "expm1": ("expm1", "Expm1"), "sign": ("sign", "PiecewiseConstant"),
    "floor": ("floor", "PiecewiseConstant"), "ceil": ("ceil", "PiecewiseConstant"),
    "round": ("round", "PiecewiseConstant"), "lerp": ("lerp", "Lerp"),
    "lerp with a number as weight": ("lerp_scalar_weight", "Lerp"),
    "F.hardtanh": ("hardtanh", "Hardtanh"), "F.leaky_relu": ("leaky_relu", "LeakyRelu"),
    "F.elu": ("elu", "Elu"), "F.mish": ("mish", "Mish"), "F.rms_norm": ("rms_norm", "RMSNorm"),
    "F.nll_loss": ("nll_loss", "NllLoss"),
    "F.cross_entropy with class probabilities": ("cross_entropy_probabilities",
                                                 "SoftCrossEntropy"),
    "F.kl_div": ("kl_div", "KLDiv"),
    "F.binary_cross_entropy_with_logits with pos_weight": (
        "binary_cross_entropy_with_logits_pos_weight", "BinaryCrossEntropyWithLogits"),
    "F.smooth_l1_loss": ("smooth_l1_loss", "SmoothL1"), "F.huber_loss": ("huber_loss", "SmoothL1"),
    # attention masks (issue 15)
    "F.scaled_dot_product_attention with a bool attn_mask": (
        "scaled_dot_product_attention_bool_mask", "ScaledDotProductAttention"),
    "F.scaled_dot_product_attention with a float attn_mask": (
        "scaled_dot_product_attention_float_mask", "ScaledDotProductAttention"),
    "F.scaled_dot_product_attention is_causal": ("scaled_dot_product_attention_causal",
                                                  "ScaledDotProductAttention"),
}


@pytest.mark.parametrize("op", ISSUE_OPS)
def test_battery_has_a_case_that_runs_the_op(op: str) -> None:
    case_name, function = ISSUE_OPS[op]
    assert case_name in CASES, f"no battery case for {op}"
    # over a few draws: squeeze, for one, is a no-op (no graph) on a dim that is not 1
    ops = set().union(*(graph_ops(out) for _, _, out in draws(case_name, 10)))
    assert function in ops, f"the {case_name} case runs {sorted(ops)}, not {function}"


def test_every_battery_case_has_a_unique_name() -> None:
    assert len(CASES) == len(BATTERY)


def test_int_array_indices_repeat_and_go_negative() -> None:
    repeats = negatives = last_dim = two_dim = 0
    for _, params, _ in draws("getitem_int_array"):
        index = params["index"]
        ids = index[-1] if isinstance(index, tuple) else index
        assert ids.dtype.kind == "i"
        repeats += len(np.unique(ids)) < ids.size
        negatives += bool((ids < 0).any())
        last_dim += isinstance(index, tuple)
        two_dim += ids.ndim == 2
    assert repeats == 60
    assert negatives and last_dim and two_dim


def test_boolean_masks_cover_all_dims_and_leading_dims() -> None:
    full = partial = 0
    for arrays, params, _ in draws("getitem_bool_mask"):
        mask = params["index"]
        assert mask.dtype == np.bool_
        full += mask.shape == arrays[0].shape
        partial += mask.shape != arrays[0].shape
    assert full and partial


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var"])
def test_reductions_draw_every_kind_of_dim(name: str) -> None:
    kinds = {(type(p["dim"]).__name__, p["keepdim"]) for _, p, _ in draws(name)}
    assert kinds == {(k, keep) for k in ("NoneType", "int", "tuple") for keep in (False, True)}


def test_cross_entropy_draws_every_variant() -> None:
    seen = set()
    for shape in [(4,), (3, 4), (3, 4, 2)]:
        for arrays, p, _ in draws("cross_entropy", 100, shape):
            assert arrays[0].shape[:2] == shape[:2]  # the class dim is dim 1, as in PyTorch
            ignored = p["target"] == p["ignore_index"]
            assert not ignored.all()
            seen |= {("logits dims", len(shape)), ("reduction", p["reduction"]),
                     ("label_smoothing", p["label_smoothing"] > 0),
                     ("ignore_index", "default" if p["ignore_index"] == -100 else "a class"),
                     ("some ignored", bool(ignored.any()))}
    assert seen == {("logits dims", 1), ("logits dims", 2), ("logits dims", 3),
                    ("reduction", "mean"), ("reduction", "sum"), ("reduction", "none"),
                    ("label_smoothing", True), ("label_smoothing", False),
                    ("ignore_index", "default"), ("ignore_index", "a class"),
                    ("some ignored", True), ("some ignored", False)}


def test_gelu_cases_use_both_forms() -> None:
    x = Tensor(np.linspace(-3, 3, 7), requires_grad=True)
    exact, approx = CASES["gelu"].fn(x), CASES["gelu_tanh"].fn(x)
    assert not np.allclose(exact.data, approx.data, rtol=0, atol=1e-6)


# --- broadcasting on both sides --------------------------------------------------------------
def broadcast_roles(shapes: list[tuple[int, ...]]) -> set[str]:
    """Which operands (0, 1, ...) were broadcast, and how: dims added and/or size-1 dims."""
    out = np.broadcast_shapes(*shapes)
    roles = set()
    for i, s in enumerate(shapes):
        if len(s) < len(out):
            roles.add(f"{i} gains dims")
        if any(n == 1 and m != 1 for n, m in zip(s, out[len(out) - len(s):], strict=True)):
            roles.add(f"{i} stretches size-1 dims")
    return roles


EVERY_ROLE = {"0 gains dims", "0 stretches size-1 dims", "1 gains dims", "1 stretches size-1 dims"}


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum"])
def test_binary_ops_broadcast_either_operand(name: str) -> None:
    roles = set()
    for arrays, _, _ in draws(name, shape=(2, 3, 4)):
        roles |= broadcast_roles([a.shape for a in arrays])
    assert roles == EVERY_ROLE


def test_where_broadcasts_condition_and_both_branches() -> None:
    roles = set()
    for arrays, params, _ in draws("where", shape=(2, 3, 4)):
        roles |= broadcast_roles([arrays[0].shape, arrays[1].shape, params["condition"].shape])
    assert roles >= EVERY_ROLE | {"2 gains dims", "2 stretches size-1 dims"}


def test_masked_fill_broadcasts_the_mask() -> None:
    roles = set()
    for arrays, params, _ in draws("masked_fill", shape=(2, 3, 4)):
        roles |= broadcast_roles([arrays[0].shape, params["mask"].shape])
    assert roles == {"1 gains dims", "1 stretches size-1 dims"}


def test_matmul_broadcasts_batch_dims_of_either_operand() -> None:
    roles = set()
    for arrays, _, _ in draws("matmul", shape=(2, 3, 4, 5)):
        roles |= broadcast_roles([a.shape[:-2] for a in arrays])
    assert roles == EVERY_ROLE


def test_matmul_1d_covers_vector_matrix_and_vector_vector() -> None:
    kinds = {tuple(a.ndim for a in arrays) for arrays, _, _ in draws("matmul_1d", shape=(2, 3))}
    assert kinds == {(1, 3), (2, 1), (1, 1)}  # vector @ batched matrices, matrix @ vector, v @ v


# --- gradcheck catches wrong gradients -------------------------------------------------------
class MulWithBadGradAt12(Function):
    """z = a * b, but the gradient of b is doubled at element (1, 2)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = ctx.saved
        gb = g * a
        gb[1, 2] *= 2
        return g * b, gb


def test_gradcheck_names_the_input_element_and_both_values_of_a_wrong_gradient() -> None:
    rng = np.random.default_rng(0)
    a = Tensor(rng.uniform(1, 2, (3, 4)), requires_grad=True)
    b = Tensor(rng.uniform(1, 2, (3, 4)), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: MulWithBadGradAt12.apply(a, b), [a, b])
    message = str(info.value)
    match = re.search(r"input 1 \(shape \(3, 4\)\) at index \(1, 2\): "
                      r"analytic (\S+), numeric (\S+)", message)
    assert match, message
    analytic, numeric = float(match[1]), float(match[2])
    assert abs(numeric) > 1e-3
    assert analytic == pytest.approx(2 * numeric, rel=1e-6)


def test_gradcheck_passes_a_right_gradient_and_leaves_grad_alone() -> None:
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    b.grad = np.full(4, 7.0)
    assert gradcheck(lambda a, b: (a * b).tanh(), [a, b])
    assert a.grad is None
    np.testing.assert_array_equal(b.grad, np.full(4, 7.0))


def test_functional_dropout_backward_uses_its_forward_mask() -> None:
    manual_seed(0)
    x = Tensor(np.ones((50, 40)), requires_grad=True)
    y = F.dropout(x, p=0.3)
    assert set(np.unique(y.data)) == {0.0, 1 / 0.7}
    assert 0.25 < (y.data == 0).mean() < 0.35
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad, g * y.data, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32])  # half inputs: a report (tests/test_dtypes_half.py)
def test_gradcheck_refuses_inputs_that_are_not_float64(dtype: type) -> None:
    a = Tensor(np.ones((2, 3)), requires_grad=True, dtype=float64)
    b = Tensor(np.ones((2, 3)), requires_grad=True, dtype=dtype)
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"input 1 \(shape \(2, 3\)\) has dtype {name}"):
        gradcheck(lambda a, b: a * b, [a, b])
