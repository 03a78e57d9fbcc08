"""Indexing, scans and sorting (issue 15), beyond the battery's float64 gradchecks.

The ops with no gradient (nonzero, one_hot, argsort, argmin, the indices of sort and topk) and
their integer outputs, the named tuples of sort and topk, float32 against PyTorch, the errors
(PyTorch's kind, naming the bad value), and what minigrad defines where torch does not.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad import Tensor
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F

X = np.array([[3.0, 1.0, 2.0, 1.0], [0.0, 5.0, 4.0, 5.0], [2.0, 2.0, -1.0, 0.0]], np.float32)
DISTINCT = X + np.arange(X.size, dtype=np.float32).reshape(X.shape) * 0.01  # no ties


def both(data: np.ndarray, requires_grad: bool = False) -> tuple[Tensor, torch.Tensor]:
    return (mg.tensor(data, requires_grad=requires_grad),
            torch.tensor(data, requires_grad=requires_grad))


def same(ours: Tensor, theirs: torch.Tensor) -> None:
    expected = theirs.detach().numpy()
    assert ours.shape == tuple(expected.shape)
    assert str(theirs.dtype) == f"torch.{ours.dtype}"
    np.testing.assert_array_equal(ours.numpy(), expected)


# --- ops without a gradient: integer outputs, as torch ------------------------------------
INTEGER_OPS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "nonzero": (lambda x: x.nonzero(), lambda x: x.nonzero()),
    "nonzero of a 0-d": (lambda x: x[0, 0].nonzero(), lambda x: x[0, 0].nonzero()),
    "nonzero of an empty": (lambda x: x[:, :0].nonzero(), lambda x: x[:, :0].nonzero()),
    "argsort": (lambda x: x.argsort(), lambda x: x.argsort(stable=True)),
    "argsort dim 0 descending": (lambda x: mg.argsort(x, 0, descending=True),
                                 lambda x: torch.argsort(x, dim=0, descending=True, stable=True)),
    "sort indices (ties keep their order)": (lambda x: x.sort(stable=True).indices,
                                             lambda x: x.sort(stable=True).indices),
    "sort indices descending": (lambda x: x.sort(0, descending=True).indices,
                                lambda x: x.sort(dim=0, descending=True, stable=True).indices),
    "topk indices": (lambda x: x.topk(2, 0).indices, lambda x: x.topk(2, 0).indices),  # no ties
    "argmin": (lambda x: x.argmin(), lambda x: x.argmin()),
    "argmin keepdim": (lambda x: x.argmin(keepdim=True), lambda x: x.argmin(keepdim=True)),
    "argmin dim (first of ties)": (lambda x: x.argmin(1), lambda x: x.argmin(1)),
    "argmin dim keepdim": (lambda x: mg.argmin(x, 0, True), lambda x: torch.argmin(x, 0, True)),
    "argmin of a 0-d": (lambda x: x[1, 1].argmin(0), lambda x: x[1, 1].argmin(0)),
    "one_hot": (lambda x: F.one_hot(x.argmin(1)), lambda x: TF.one_hot(x.argmin(1))),
    "one_hot num_classes": (lambda x: F.one_hot(x.argmin(1), 6),
                            lambda x: TF.one_hot(x.argmin(1), 6)),
    "one_hot of a 0-d": (lambda x: F.one_hot(x.argmin(), 12), lambda x: TF.one_hot(x.argmin(), 12)),
    "one_hot of an empty": (lambda x: F.one_hot(x.argmin(1)[:0], 3),
                            lambda x: TF.one_hot(x.argmin(1)[:0], 3)),
}


@pytest.mark.parametrize("name", INTEGER_OPS)
def test_integer_outputs_match_torch_and_never_require_grad(name: str) -> None:
    ours, theirs = INTEGER_OPS[name]
    x, tx = both(X, requires_grad=True)
    out = ours(x)
    same(out, theirs(tx))
    assert out.dtype == mg.int64 and not out.requires_grad and out.grad_fn is None


def test_nonzero_as_tuple_gives_one_int64_tensor_per_dim_as_torch() -> None:
    for data in (X, X[0, 0], np.zeros((2, 0), np.float32)):
        x, tx = both(data)
        ours, theirs = x.nonzero(as_tuple=True), tx.nonzero(as_tuple=True)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            same(a, b)


def test_sort_puts_nan_last_ascending_and_first_descending_as_torch() -> None:
    x, tx = both(np.array([1.0, np.nan, 0.0, np.nan, 2.0], np.float32))
    for descending in (False, True):
        ours, theirs = x.sort(descending=descending), tx.sort(descending=descending, stable=True)
        same(ours.indices, theirs.indices)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())


def test_integer_inputs_keep_integer_outputs_outside_the_graph() -> None:
    x, tx = both(np.array([[3, 1, 2], [0, 5, 4]], np.int64))
    for ours, theirs in [(x.cumsum(1), tx.cumsum(1)), (x.cumprod(0), tx.cumprod(0)),
                         (x.sort().values, tx.sort().values), (x.topk(2).values, tx.topk(2).values),
                         (x.gather(1, mg.tensor([[0, 0]])), tx.gather(1, torch.tensor([[0, 0]]))),
                         (x.flip(0), tx.flip(0)), (x.roll(1), tx.roll(1))]:
        same(ours, theirs)
        assert not ours.requires_grad
    bools = mg.tensor([True, False, True])
    same(bools.cumsum(0), torch.tensor([True, False, True]).cumsum(0))  # int64, as torch


# --- named tuples ----------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["sort", "topk"])
def test_sort_and_topk_return_named_tuples_of_values_and_indices(op: str) -> None:
    x, tx = both(DISTINCT, requires_grad=True)  # torch orders topk's ties as it likes
    args = () if op == "sort" else (2,)
    result, expected = getattr(x, op)(*args), getattr(tx, op)(*args)
    values, indices = result  # unpacks as torch's return_types do
    assert isinstance(result, tuple) and result._fields == ("values", "indices")
    assert result.values is values and result.indices is indices
    assert result[0] is values and result[1] is indices
    same(values, expected.values)
    same(indices, expected.indices)
    assert values.requires_grad and values.grad_fn == "Gather"
    assert indices.dtype == mg.int64 and not indices.requires_grad


# --- float32 against torch: values and gradients -------------------------------------------
IDX = np.array([[2, 0, 0, 1], [1, 1, 0, 3]])
FLOAT_OPS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "gather": (lambda x: x.gather(1, IDX), lambda x: x.gather(1, torch.tensor(IDX))),
    "scatter": (lambda x: x.scatter(1, IDX[:, :1], x[:2, 2:3] * 3),
                lambda x: x.scatter(1, torch.tensor(IDX[:, :1]), x[:2, 2:3] * 3)),
    "scatter a value": (lambda x: mg.scatter(x, 0, IDX[:1], -7.0),
                        lambda x: torch.scatter(x, 0, torch.tensor(IDX[:1]), -7.0)),
    "scatter_add": (lambda x: x.scatter_add(1, IDX, x[:2] * 2),
                    lambda x: x.scatter_add(1, torch.tensor(IDX), x[:2] * 2)),
    "index_select": (lambda x: x.index_select(0, [2, 0, 2]),
                     lambda x: x.index_select(0, torch.tensor([2, 0, 2]))),
    "masked_select": (lambda x: x.masked_select(X[0] > 1), lambda x: x.masked_select(
        torch.tensor(X[0] > 1))),
    "take_along_dim": (lambda x: mg.take_along_dim(x, IDX[:1], 0),
                       lambda x: torch.take_along_dim(x, torch.tensor(IDX[:1]), 0)),
    "take_along_dim flat": (lambda x: x.take_along_dim(IDX), lambda x: x.take_along_dim(
        torch.tensor(IDX))),
    "cumsum": (lambda x: mg.cumsum(x, -1), lambda x: torch.cumsum(x, -1)),
    "cumprod": (lambda x: x.cumprod(0), lambda x: x.cumprod(0)),
    "sort": (lambda x: x.sort(0, descending=True).values,
             lambda x: x.sort(0, descending=True).values),
    "topk smallest": (lambda x: mg.topk(x, 3, largest=False).values,
                      lambda x: torch.topk(x, 3, largest=False).values),
    "flip": (lambda x: mg.flip(x, (0, -1)), lambda x: torch.flip(x, (0, -1))),
    "roll": (lambda x: x.roll((1, -5), (0, 1)), lambda x: x.roll((1, -5), (0, 1))),
}


@pytest.mark.parametrize("name", FLOAT_OPS)
def test_float32_values_and_gradients_match_torch(name: str) -> None:
    ours, theirs = FLOAT_OPS[name]
    x, tx = both(DISTINCT, requires_grad=True)
    out, expected = ours(x), theirs(tx)
    assert out.dtype == mg.float32
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-6)
    upstream = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cumprod_gradient_is_exact_where_the_input_holds_zeros() -> None:
    x, tx = both(np.array([2.0, 0.0, 3.0, 0.0, 4.0], np.float32), requires_grad=True)
    x.cumprod(0).sum().backward()
    tx.cumprod(0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 8.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


@pytest.mark.parametrize("op", ["scatter", "scatter_add"])
def test_a_src_larger_than_the_index_gives_its_leading_block_and_gradient(op: str) -> None:
    """torch reads only the leading block too, but its backward fails on such a src."""
    rng = np.random.default_rng(0)
    index = np.array([[1, 0], [2, 2]])
    x, src = rng.standard_normal((3, 3)), rng.standard_normal((3, 4))
    out = getattr(mg, op)(mg.tensor(x), 1, index, mg.tensor(src))
    expected = getattr(torch, op)(torch.tensor(x), 1, torch.tensor(index), torch.tensor(src))
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    a, b = Tensor(x, requires_grad=True), Tensor(src, requires_grad=True)
    assert gradcheck(lambda a, b: getattr(mg, op)(a, 1, index, b), [a, b])


def test_scatter_with_a_repeated_index_writes_the_last_and_gives_it_the_gradient() -> None:
    """torch leaves the written value undefined (its CPU kernel writes the last) and gives every
    src element aimed there the gradient; minigrad defines both: the last wins, alone."""
    index = np.array([1, 1, 0, 1])
    src = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    out = mg.zeros(3).scatter(0, index, src)
    np.testing.assert_array_equal(out.numpy(), [3.0, 4.0, 0.0])
    out.backward(np.array([10.0, 20.0, 30.0], np.float32))
    np.testing.assert_array_equal(src.grad, [0.0, 0.0, 10.0, 20.0])
    tsrc = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    torch.zeros(3).scatter(0, torch.tensor(index), tsrc).backward(torch.tensor([10.0, 20, 30]))
    assert tsrc.grad.tolist() == [20.0, 20.0, 10.0, 20.0]
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    s = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert gradcheck(lambda x, s: x.scatter(1, [[2, 2, 2], [0, 1, 0]], s), [x, s])


def test_take_along_dim_counts_negative_indices_from_the_end() -> None:
    ids = np.array([[-1], [-4], [3]])
    out = mg.tensor(X).take_along_dim(ids, 1)
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(X, ids % 4, 1))


def test_flip_and_roll_return_copies_as_torch() -> None:
    x = mg.tensor(X)
    for out in (x.flip(0), x.roll(1, 0)):
        out.add_(1.0)
    np.testing.assert_array_equal(x.numpy(), X)


def test_zero_d_tensors_read_as_one_element() -> None:
    x, tx = both(np.array(2.5, np.float32))
    cases = [(x.gather(0, [0, 0]), tx.gather(0, torch.tensor([0, 0]))),
             (x.index_select(0, 0), tx.index_select(0, torch.tensor(0))),
             (x.masked_select(True), tx.masked_select(torch.tensor(True))),
             (x.cumsum(0), tx.cumsum(0)), (x.sort().values, tx.sort().values),
             (x.topk(1).values, tx.topk(1).values), (x.flip(0), tx.flip(0)),
             (x.roll(3), tx.roll(3)), (x.scatter(0, 0, 7.0), tx.scatter(0, torch.tensor(0), 7.0))]
    for ours, theirs in cases:
        same(ours, theirs)


# --- errors: torch's kind, naming the bad value ---------------------------------------------
def _x(lib: Any) -> Any:
    return lib.tensor(X)


def _i(lib: Any, data: Any) -> Any:
    return lib.tensor(data)


ERRORS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "gather index out of range": (lambda m: m.gather(_x(m), 1, _i(m, [[0, 5]])),
                                  r"index 5 is out of bounds for dim 1 with size 4"),
    "gather negative index": (lambda m: m.gather(_x(m), 0, _i(m, [[-1]])),
                              r"index -1 is out of bounds for dim 0 with size 3"),
    "gather float index": (lambda m: m.gather(_x(m), 1, _i(m, [[0.0]])), r"float32"),
    "gather index of other dims": (lambda m: m.gather(_x(m), 1, _i(m, [0])),
                                   r"\(1,\).*\(3, 4\)"),
    "gather index larger": (lambda m: m.gather(_x(m), 1, m.zeros((4, 1), dtype=m.int64)),
                            r"\(4, 1\).*\(3, 4\) in dim 0"),
    "gather dim out of range": (lambda m: m.gather(_x(m), 2, _i(m, [[0]])), r"dim 2"),
    "scatter src of another dtype": (
        lambda m: m.scatter(_x(m), 1, _i(m, [[0]]), m.ones((1, 1), dtype=m.float64)),
        r"float64.*float32"),
    "scatter index out of range": (lambda m: m.scatter(_x(m), 1, _i(m, [[7]]), 1.0),
                                   r"index 7 is out of bounds for dim 1 with size 4"),
    "scatter src smaller than the index": (
        lambda m: m.scatter(_x(m), 1, _i(m, [[0, 1]]), m.ones((1, 1))), r"\(1, 2\).*src"),
    "scatter_add of a number": (lambda m: m.scatter_add(_x(m), 1, _i(m, [[0]]), 1.0), r"float"),
    "index_select out of range": (lambda m: m.index_select(_x(m), 1, _i(m, [0, 4])),
                                  r"index 4 is out of bounds for dim 1 with size 4"),
    "index_select 2-D index": (lambda m: m.index_select(_x(m), 1, _i(m, [[0]])),
                               r"\(1, 1\)"),
    "masked_select of a float mask": (lambda m: m.masked_select(_x(m), _i(m, [1.0, 0, 1, 0])),
                                      r"float32"),
    "masked_select mask shape": (lambda m: m.masked_select(_x(m), _i(m, [True, False])),
                                 r"\(2,\).*\(3, 4\)"),
    "take_along_dim dims": (lambda m: m.take_along_dim(_x(m), _i(m, [0]), 1), r"\(1,\)"),
    "take_along_dim float indices": (lambda m: m.take_along_dim(_x(m), _i(m, [[0.0]]), 1),
                                     r"float32"),
    "take_along_dim broadcast": (lambda m: m.take_along_dim(_x(m), _i(m, [[0]] * 2), 1),
                                 r"\(2, 1\)"),
    "take_along_dim flat out of range": (lambda m: m.take_along_dim(_x(m), _i(m, [12])),
                                         r"index 12 is out of bounds for dim 0 with size 12"),
    "cumsum dim out of range": (lambda m: m.cumsum(_x(m), 2), r"dim 2"),
    "sort dim out of range": (lambda m: m.sort(_x(m), -3), r"dim -3"),
    "topk k too large": (lambda m: m.topk(_x(m), 5), r"k=5.*size 4"),
    "topk k negative": (lambda m: m.topk(_x(m), -1), r"k=-1"),
    "topk of bools": (lambda m: m.topk(_i(m, [True, False]), 1), r"bool"),
    "argmin of an empty": (lambda m: m.argmin(m.zeros(0)), r"\(0,\)"),
    "argmin over an empty dim": (lambda m: m.argmin(m.zeros((2, 0)), 1), r"dim 1"),
    "argmin of bools": (lambda m: m.argmin(_i(m, [True, False])), r"bool"),
    "flip a dim twice": (lambda m: m.flip(_x(m), (0, -2)), r"dim 0 appears more than once"),
    "flip dim out of range": (lambda m: m.flip(_x(m), (2,)), r"dim 2"),
    "roll shifts and dims disagree": (lambda m: m.roll(_x(m), (1, 2), 0), r"\(1, 2\).*0"),
    "roll two shifts without dims": (lambda m: m.roll(_x(m), (1, 2)), r"dims=None"),
    "roll dim out of range": (lambda m: m.roll(_x(m), 1, 2), r"dim 2"),
    "one_hot of floats": (lambda m: _f(m).one_hot(_i(m, [1.0])), r"float32"),
    "one_hot negative": (lambda m: _f(m).one_hot(_i(m, [2, -1]), 3), r"non-negative, got -1"),
    "one_hot too large": (lambda m: _f(m).one_hot(_i(m, [0, 3]), 3),
                          r"smaller than num_classes=3, got 3"),
    "one_hot empty without num_classes": (lambda m: _f(m).one_hot(m.zeros(0, dtype=m.int64)),
                                          r"empty"),
}


def _f(lib: Any) -> Any:
    return F if lib is mg else TF


@pytest.mark.parametrize("name", ERRORS)
def test_errors_are_of_torchs_kind_and_name_the_bad_value(name: str) -> None:
    call, message = ERRORS[name]
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value), match=message):
        call(mg)
