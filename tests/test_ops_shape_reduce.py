"""The shape ops, reductions and einsum of issue 15, beyond what the battery checks.

Bad arguments are refused as torch refuses them, naming the values (minigrad raises ValueError
where torch raises RuntimeError, as everywhere else in minigrad); ``max(dim)``/``min(dim)``
return a named tuple; ``any``/``all`` and every integer output stay outside the graph; float32
inputs agree with torch in float32. The battery's builders are checked to draw every variant.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad.gradcheck import BATTERY, EINSUM_EQUATIONS
from minigrad.nn import functional as F

CASES = {case.name: case for case in BATTERY}
X53 = np.arange(15.0).reshape(5, 3)


# --- errors, as torch's ----------------------------------------------------------------------
# name -> (the call on a module `m` (minigrad or torch) and the array X53 as a tensor `x`,
#          torch's exception, minigrad's exception, what minigrad's message must say)
ERRORS: dict[str, tuple[Callable[[Any, Any], Any], type, type, str]] = {
    "split sizes that do not add up": (
        lambda m, x: m.split(x, [2, 2]), RuntimeError, ValueError,
        r"split sizes \[2, 2\] must sum exactly to 5, the size of dim 0 .*\(5, 3\)"),
    "split a negative size": (
        lambda m, x: m.split(x, [6, -1]), RuntimeError, ValueError, r"non-negative.*\[6, -1\]"),
    "split by 0": (
        lambda m, x: m.split(x, 0), RuntimeError, ValueError, r"0 if dim 0 has size 0.*size 5"),
    "split a 0-d tensor": (
        lambda m, x: m.split(x.sum(), 1), RuntimeError, ValueError, r"1-dimensional.*\(\)"),
    "split along a dim out of range": (
        lambda m, x: m.split(x, 2, dim=2), IndexError, IndexError, r"dim 2 .*\(5, 3\)"),
    "chunk into 0": (
        lambda m, x: m.chunk(x, 0), RuntimeError, ValueError, r"greater than 0, got 0"),
    "tril of a vector": (
        lambda m, x: m.tril(x[0]), RuntimeError, ValueError, r"at least 2 dimensions.*\(3,\)"),
    "repeat with fewer dims": (
        lambda m, x: x.repeat(2), RuntimeError, ValueError, r"\(2,\).*\(5, 3\)"),
    "repeat a negative number of times": (
        lambda m, x: x.repeat(2, -1), RuntimeError, ValueError, r"non-negative.*\(2, -1\)"),
    "repeat_interleave a negative number of times": (
        lambda m, x: m.repeat_interleave(x, -1), RuntimeError, ValueError, r"non-negative.*-1"),
    "repeat_interleave with repeats of the wrong length": (
        lambda m, x: m.repeat_interleave(x, m.tensor([1, 2]), dim=0), RuntimeError, ValueError,
        r"repeats.size\(0\) = 2 and input.size\(0\) = 5"),
    "repeat_interleave with 2-d repeats": (
        lambda m, x: m.repeat_interleave(x, m.tensor([[1, 2, 3, 4, 5]]), dim=0), RuntimeError,
        ValueError, r"0-dim or 1-dim.*\(1, 5\)"),
    "repeat_interleave with negative repeats": (
        lambda m, x: m.repeat_interleave(x, m.tensor([1, 2, -3, 4, 5]), dim=0), RuntimeError,
        ValueError, r"non-negative.*-3"),
    "pad by an odd number of widths": (
        lambda m, x: pad_of(m)(x, (1,)), RuntimeError, ValueError, r"divisible by 2.*\(1,\)"),
    "pad more dims than there are": (
        lambda m, x: pad_of(m)(x, (1, 1, 1, 1, 1, 1)), RuntimeError, ValueError,
        r"\(1, 1, 1, 1, 1, 1\).*\(5, 3\)"),
    "reflect by as much as the dim": (
        lambda m, x: pad_of(m)(x[None], (3, 3), mode="reflect"), RuntimeError, ValueError,
        r"less than .* \(3, 3\) at dim 2 .*\(1, 5, 3\)"),
    "reflect with a value": (
        lambda m, x: pad_of(m)(x[None], (1, 1), mode="reflect", value=1.0), RuntimeError,
        ValueError, r"'reflect' doesn't take in a value"),
    "reflect every dim of a 2-d input": (
        lambda m, x: pad_of(m)(x, (1, 1, 1, 1), mode="reflect"), NotImplementedError,
        NotImplementedError, r"\(1, 1, 1, 1\).*\(5, 3\)"),
    "pad in an unknown mode": (
        lambda m, x: pad_of(m)(x, (1, 1), mode="mirror"), NotImplementedError,
        NotImplementedError, r"'mirror'"),
    "pad cutting more than the dim holds": (
        lambda m, x: pad_of(m)(x, (-3, -1)), RuntimeError, ValueError,
        r"\(-3, -1\) removes more than the 3 elements of dim 1"),
    "unflatten to sizes of another product": (
        lambda m, x: m.unflatten(x, 1, (2, 2)), RuntimeError, ValueError,
        r"sizes \(2, 2\) don't multiply up to the size of dim 1 \(3\)"),
    "unflatten to no sizes": (
        lambda m, x: m.unflatten(x, 1, ()), RuntimeError, ValueError, r"non-empty"),
    "unflatten with two -1": (
        lambda m, x: m.unflatten(x, 1, (-1, -1)), RuntimeError, ValueError, r"\(-1, -1\)"),
    "movedim a dim twice": (
        lambda m, x: m.movedim(x, (0, 0), (0, 1)), RuntimeError, ValueError,
        r"repeated dim in `source` \(\[0, 0\]\)"),
    "movedim with lists of different lengths": (
        lambda m, x: m.movedim(x, (0,), (0, 1)), RuntimeError, ValueError, r"\[0\].*\[0, 1\]"),
    "movedim a dim out of range": (
        lambda m, x: m.movedim(x, 2, 0), IndexError, IndexError, r"dim 2 .*\(5, 3\)"),
    "einsum with more operands than terms": (
        lambda m, x: m.einsum("ij->i", x, x), RuntimeError, ValueError, r"more operands \(2\)"),
    "einsum with fewer operands than terms": (
        lambda m, x: m.einsum("ij,jk->ik", x), RuntimeError, ValueError, r"fewer operands \(1\)"),
    "einsum with more subscripts than dims": (
        lambda m, x: m.einsum("ijk->i", x), RuntimeError, ValueError,
        r"subscripts in the equation \(3\) .* dimensions \(2\) for operand 0 \(shape \(5, 3\)\)"),
    "einsum with an unknown output subscript": (
        lambda m, x: m.einsum("ij->k", x), RuntimeError, ValueError, r"output subscript k"),
    "einsum with an output subscript twice": (
        lambda m, x: m.einsum("ij->ii", x), RuntimeError, ValueError,
        r"output subscript i appears more than once"),
    "einsum with a digit": (
        lambda m, x: m.einsum("i1->i", x), RuntimeError, ValueError, r"invalid subscript '1'"),
    "einsum with mismatched sizes": (
        lambda m, x: m.einsum("ij,jk->ik", x, m.ones(4, 2, dtype=x.dtype)), RuntimeError,
        ValueError, r"subscript j has size 4 for operand 1 \(shape \(4, 2\)\) .* size 3"),
    "einsum diagonal of a non-square": (
        lambda m, x: m.einsum("ii->i", x), RuntimeError, ValueError,
        r"subscript i is repeated for operand 0 \(shape \(5, 3\)\) .* 5 != 3"),
    "einsum with batch dims that do not broadcast": (
        lambda m, x: m.einsum("...i,...i->...", x, m.ones(4, 3, dtype=x.dtype)), RuntimeError,
        ValueError, r"ellipsis has size 4 for operand 1 .* size 5"),
    "einsum of float64 and float32": (
        lambda m, x: m.einsum("ij,j->i", x, m.ones(3)), RuntimeError, TypeError,
        r"float64 \(5, 3\), float32 \(3,\)"),
    "max over an empty dim": (
        lambda m, x: x[:0].max(0), IndexError, IndexError, r"dim 0 .*\(0, 3\)"),
    "max of an empty tensor": (
        lambda m, x: x[:0].max(), RuntimeError, ValueError, r"\(0, 3\) is empty.*'dim'"),
    "max over a tuple of dims": (
        lambda m, x: x.max((0, 1)), TypeError, TypeError, r"\(0, 1\).*amax"),
    "amax over an empty dim": (
        lambda m, x: m.amax(x[:0], 0), IndexError, IndexError, r"\(0,\) of shape \(0, 3\)"),
    "prod over a tuple of dims": (
        lambda m, x: m.prod(x, (0, 1)), TypeError, TypeError, r"\(0, 1\)"),
    "std of integers": (
        lambda m, x: m.std(x.long()), RuntimeError, TypeError, r"int64"),
}


def pad_of(m: Any) -> Callable[..., Any]:
    return TF.pad if m is torch else F.pad


@pytest.mark.parametrize("name", ERRORS)
def test_bad_arguments_are_refused_as_torch_refuses_them_naming_the_values(name: str) -> None:
    call, torch_error, ours, message = ERRORS[name]
    with pytest.raises(torch_error):
        call(torch, torch.tensor(X53))
    with pytest.raises(ours, match=message):
        call(mg, mg.tensor(X53))


# --- max(dim) and min(dim): a named tuple ----------------------------------------------------
TIED = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]])


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_and_min_over_a_dim_return_values_and_indices_as_torch(op: str, dim: int,
                                                                   keepdim: bool) -> None:
    x = mg.tensor(TIED, requires_grad=True)
    tx = torch.tensor(TIED, requires_grad=True)
    result, expected = getattr(x, op)(dim, keepdim), getattr(tx, op)(dim, keepdim)
    assert isinstance(result, mg.ops.ValuesIndices) and result._fields == ("values", "indices")
    values, indices = result  # unpacks as a tuple
    assert values is result.values is result[0] and indices is result[1]
    np.testing.assert_array_equal(values.data, expected.values.detach().numpy())
    np.testing.assert_array_equal(indices.data, expected.indices.numpy())  # first of ties
    assert indices.dtype == mg.int64 and not indices.requires_grad
    assert values.requires_grad
    upstream = np.random.default_rng(0).standard_normal(values.shape)
    values.backward(upstream)
    expected.values.backward(torch.from_numpy(upstream))
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())  # the first of the ties alone


def test_max_without_a_dim_is_a_0d_tensor_and_of_a_0d_tensor_over_dim_0_a_pair() -> None:
    assert mg.tensor(TIED).max().shape == () and mg.tensor(TIED).max().item() == 3.0
    values, indices = mg.tensor(2.5).max(0)
    expected = torch.tensor(2.5).max(0)
    assert values.shape == tuple(expected.values.shape) == ()
    assert indices.item() == expected.indices.item() == 0


def test_max_over_a_dim_of_integers_and_bools_is_outside_the_graph() -> None:
    for data in ([[1, 5], [7, 2]], [[True, False], [False, False]]):
        values, indices = mg.tensor(data).max(1)
        expected = torch.tensor(data).max(1)
        np.testing.assert_array_equal(values.data, expected.values.numpy())
        np.testing.assert_array_equal(indices.data, expected.indices.numpy())
        assert not values.requires_grad and values.grad_fn is None


def test_max_over_a_dim_with_nan_picks_the_nan_as_torch() -> None:
    data = [1.0, float("nan"), 3.0]
    values, indices = mg.tensor(data).max(0)
    expected = torch.tensor(data).max(0)
    assert np.isnan(values.item()) and indices.item() == expected.indices.item() == 1


# --- bool and integer outputs ----------------------------------------------------------------
LOGICAL_INPUTS = {
    "floats with zeros": np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]),
    "bools": np.array([[True, True], [False, True]]),
    "ints": np.array([[1, 0, 3]]),
    "empty": np.zeros((0, 3)),
    "0-d": np.array(0.5),
}


@pytest.mark.parametrize("op", ["any", "all"])
@pytest.mark.parametrize("name", LOGICAL_INPUTS)
def test_any_and_all_give_bool_tensors_outside_the_graph_as_torch(op: str, name: str) -> None:
    data = LOGICAL_INPUTS[name]
    dims: list[Any] = [None, 0, -1] + ([(0, 1)] if data.ndim == 2 else [])
    x = mg.tensor(data, requires_grad=data.dtype.kind == "f")
    for dim in dims:
        for keepdim in (False, True):
            if dim is None and keepdim:
                continue
            out = getattr(x, op)(dim, keepdim) if dim is not None else getattr(x, op)()
            tx = torch.tensor(data)
            expected = getattr(tx, op)(dim, keepdim) if dim is not None else getattr(tx, op)()
            assert out.dtype == mg.bool_ and expected.dtype == torch.bool
            assert not out.requires_grad and out.grad_fn is None
            np.testing.assert_array_equal(out.data, expected.numpy(), err_msg=f"{dim}")


@pytest.mark.parametrize("name, f", [
    ("prod", lambda m, x: x.prod(1)), ("prod of all", lambda m, x: x.prod()),
    ("tril", lambda m, x: x.tril()), ("triu", lambda m, x: x.triu(1)),
    ("repeat", lambda m, x: x.repeat(2, 1)), ("split", lambda m, x: x.split(1, 1)[1]),
    ("repeat_interleave", lambda m, x: x.repeat_interleave(2, dim=0)),
    ("einsum", lambda m, x: m.einsum("ij,kj->ik", x, x)),
    ("pad", lambda m, x: pad_of(m)(x, (1, 1))),
    ("sum to int64", lambda m, x: x.sum(0)), ("amax", lambda m, x: x.amax(0)),
])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integer_and_bool_inputs_give_torchs_dtypes_and_no_graph(name: str, f: Callable,
                                                                 dtype: str) -> None:
    data = np.array([[1, 0, 3], [2, 5, 1]]).astype(dtype)
    if dtype == "bool" and name == "einsum":
        pytest.skip("torch refuses a bool einsum on the CPU (no bool bmm)")
    out, expected = f(mg, mg.tensor(data)), f(torch, torch.tensor(data))
    assert str(expected.dtype) == f"torch.{out.dtype}", name
    np.testing.assert_array_equal(out.data, expected.numpy())
    assert not out.requires_grad and out.grad_fn is None


# --- float32 against torch -------------------------------------------------------------------
FLOAT32: dict[str, tuple[Callable[[Any, Any], Any], tuple[int, ...]]] = {
    "split": (lambda m, x: m.cat([p * 2.0 for p in x.split([1, 2], 1)], 1), (2, 3)),
    "chunk": (lambda m, x: x.chunk(3, 0)[-1], (5, 2)),
    "tril": (lambda m, x: x.tril(-1), (3, 4)),
    "triu": (lambda m, x: x.triu(2), (2, 3, 4)),
    "repeat": (lambda m, x: x.repeat(2, 1, 3), (3, 2)),
    "repeat_interleave": (lambda m, x: x.repeat_interleave(m.tensor([2, 0, 1]), dim=1), (2, 3)),
    "pad constant": (lambda m, x: pad_of(m)(x, (1, -1, 2, 0), value=0.5), (2, 3, 4)),
    "pad reflect": (lambda m, x: pad_of(m)(x, (2, 1), mode="reflect"), (2, 4)),
    "pad replicate": (lambda m, x: pad_of(m)(x, (2, 1, 0, 3), mode="replicate"), (1, 2, 3)),
    "unflatten": (lambda m, x: x.unflatten(-1, (-1, 2)), (3, 4)),
    "movedim": (lambda m, x: x.movedim(-1, 0), (2, 3, 4)),
    "einsum": (lambda m, x: m.einsum("bij,bkj->bik", x, x), (2, 3, 4)),
    "std": (lambda m, x: x.std(1, keepdim=True), (3, 5)),
    "prod": (lambda m, x: x.prod(0), (3, 4)),
    "logsumexp": (lambda m, x: (x * 100).logsumexp((0, 1)), (3, 4)),
    "amax": (lambda m, x: x.amax((0, 1)), (3, 4)),
    "max(dim)": (lambda m, x: x.max(1).values, (3, 4)),
    "min(dim)": (lambda m, x: x.min(0, keepdim=True).values, (3, 4)),
}


@pytest.mark.parametrize("name", FLOAT32)
def test_float32_values_and_gradients_match_torch_in_float32(name: str) -> None:
    f, shape = FLOAT32[name]
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x, tx = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, expected = f(mg, x), f(torch, tx)
    assert out.dtype == mg.float32 and expected.dtype == torch.float32
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_sum_with_a_dtype_adds_in_that_dtype_and_the_gradient_keeps_the_inputs() -> None:
    data = np.array([1e8, 1.0, -1e8], np.float32)
    x, tx = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, expected = x.sum(dtype=mg.float64), tx.sum(dtype=torch.float64)
    assert out.dtype == mg.float64 and out.item() == expected.item() == 1.0
    out.backward()
    expected.backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    ints = mg.tensor([1, 2]).sum(dtype="float32")
    assert ints.dtype == mg.float32 and ints.item() == 3.0


def test_logsumexp_is_stable_where_the_naive_formula_overflows() -> None:
    data = np.array([[1000.0, 1000.0], [-1000.0, -np.inf], [-np.inf, -np.inf]], np.float32)
    out, expected = mg.tensor(data).logsumexp(1), torch.tensor(data).logsumexp(1)
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-6)
    assert out.data[2] == -np.inf
    empty = mg.zeros(0, 3).logsumexp(0)
    np.testing.assert_array_equal(empty.data, torch.zeros(0, 3).logsumexp(0).numpy())


def test_prod_gradient_with_zeros_is_the_product_of_the_others_as_torch() -> None:
    data = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.5, 2.0, 4.0]])
    x, tx = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    x.prod(1).sum().backward()
    tx.prod(1).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    np.testing.assert_array_equal(x.grad[0], [0.0, 6.0, 0.0])


# --- split and chunk: pieces and counts as torch's -------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 5, 6, 7])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
def test_split_and_chunk_make_the_pieces_torch_makes(n: int, k: int) -> None:
    data = np.arange(2.0 * n).reshape(n, 2)
    for f in (lambda m, x: x.chunk(k), lambda m, x: x.split(k), lambda m, x: m.split(x, k, 0)):
        ours, theirs = f(mg, mg.tensor(data)), f(torch, torch.tensor(data))
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a.data, b.numpy())


def test_pad_reads_widths_from_the_last_dim_backwards() -> None:
    out = F.pad(mg.ones(2, 3), (1, 2, 3, 4))
    assert out.shape == (2 + 3 + 4, 3 + 1 + 2)


# --- the battery draws every variant ---------------------------------------------------------
def draw_params(name: str, shape: tuple[int, ...], n: int = 80) -> list[dict]:
    return [CASES[name].build(np.random.default_rng(seed), shape)[1] for seed in range(n)]


def test_einsum_case_draws_every_equation_with_broadcast_batch_dims() -> None:
    seen, broadcast = set(), 0
    for seed in range(200):
        arrays, params = CASES["einsum"].build(np.random.default_rng(seed), (2, 3))
        seen.add(params["equation"])
        if params["equation"] == "...ij,...jk->...ik":
            broadcast += arrays[0].shape[:-2] != arrays[1].shape[:-2]
    assert seen == set(EINSUM_EQUATIONS)
    assert broadcast


def test_pad_cases_draw_every_mode_and_negative_widths() -> None:
    constant = draw_params("pad_constant", (3, 3, 3))
    mirror = draw_params("pad_reflect_replicate", (2, 3, 4))
    assert {p["mode"] for p in mirror} == {"reflect", "replicate"}
    assert {len(p["pad"]) // 2 for p in mirror} == {1, 2}
    assert any(min(p["pad"], default=0) < 0 for p in constant)
    assert {len(p["pad"]) // 2 for p in constant} == {0, 1, 2, 3}


def test_repeat_interleave_case_draws_ints_tensors_and_both_dims() -> None:
    kinds = {(type(p["repeats"]).__name__, getattr(p["repeats"], "size", 0) == 1,
              p["dim"] is None) for p in draw_params("repeat_interleave", (2, 3))}
    assert kinds >= {("int", False, True), ("int", False, False), ("ndarray", True, False),
                     ("ndarray", False, False), ("ndarray", False, True)}


def test_prod_case_draws_zeros() -> None:
    zeros = sum(bool((CASES["prod"].build(np.random.default_rng(s), (3, 4))[0][0] == 0).any())
                for s in range(40))
    assert zeros > 10
