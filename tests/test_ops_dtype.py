"""Dtypes follow PyTorch: float32 stays float32 through every op, forward and backward.

NumPy promotes freely (``float32_array * np.float64(2)`` used to be float64, and ``bool / 0.7``
is float64), so a careless constant turns a float32 model into a float64 one, twice as slow and
twice as large, with no error. ``backward()`` casts each gradient to its input's dtype, which
would hide such an upcast inside an op's backward; so each node's ``backward`` is also called
directly here and its raw gradients checked.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from minigrad import Tensor, manual_seed
from minigrad.autograd import Context
from minigrad.gradcheck import BATTERY, OpCase, case_shape
from minigrad.nn import functional as F

DTYPES = [np.float32, np.float64]


def shape_and_seed(case: OpCase) -> st.SearchStrategy:
    shapes = array_shapes(min_dims=case.min_ndim, max_dims=case.max_ndim,
                          min_side=case.min_side, max_side=4)
    return st.tuples(shapes, st.integers(0, 2**32 - 1))


def graph(out: Tensor) -> list[Context]:
    """Every node (op) on the way to ``out``."""
    nodes, stack, seen = [], [out._ctx], set()
    while stack:
        node = stack.pop()
        if not isinstance(node, Context) or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node.parents)
    return nodes


def assert_graph_keeps_dtype(out: Tensor, dtype: type) -> None:
    """Each op's output, and each gradient its backward returns, has the inputs' dtype."""
    for node in graph(out):
        op = node.fn.__name__
        shape, made = node.output_meta
        assert made == dtype, f"{op} made a {made} output from {np.dtype(dtype)} inputs"
        grads = node.fn.backward(node, np.ones(shape, dtype))
        grads = grads if isinstance(grads, tuple) else (grads,)
        for i, (parent, g) in enumerate(zip(node.parents, grads, strict=True)):
            if parent is not None and g is not None:
                assert g.dtype == dtype, f"{op}.backward gave a {g.dtype} gradient to input {i}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", BATTERY, ids=[case.name for case in BATTERY])
@given(data=st.data())
def test_every_op_keeps_the_dtype_of_its_inputs(case: OpCase, dtype: type,
                                                data: st.DataObject) -> None:
    shape, seed = data.draw(shape_and_seed(case), label="shape, seed")
    arrays, params = case.build(np.random.default_rng(seed), case_shape(case, shape))
    inputs = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out = case.fn(*inputs, **params)
    assert out.dtype == dtype
    assert_graph_keeps_dtype(out, dtype)
    out.backward(np.ones(out.shape, dtype))
    for i, x in enumerate(inputs):
        assert x.grad is None or x.grad.dtype == dtype, f"input {i} got a {x.grad.dtype} grad"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_functional_dropout_keeps_the_dtype(dtype: type) -> None:
    manual_seed(0)
    x = Tensor(np.ones((4, 5), dtype), requires_grad=True)
    out = F.dropout(x, p=0.3)
    assert out.dtype == dtype
    assert_graph_keeps_dtype(out, dtype)


# --- scalars and mixed dtypes, with PyTorch as the oracle -----------------------------------
SCALAR_EXPRESSIONS: dict[str, Callable[[Any], Any]] = {
    "x * 0.5": lambda x: x * 0.5,
    "0.5 * x": lambda x: 0.5 * x,
    "x + 1": lambda x: x + 1,
    "1 - x": lambda x: 1 - x,
    "x / 3": lambda x: x / 3,
    "3 / x": lambda x: 3 / x,
    "x ** 2": lambda x: x**2,
    "x ** 0.5": lambda x: x**0.5,
    "2.0 ** x": lambda x: 2.0**x,
    "x + True": lambda x: x + True,
    "x * np.float64(0.5)": lambda x: x * np.float64(0.5),
    "np.float64(0.5) * x": lambda x: np.float64(0.5) * x,
    "x * np.float32(0.5)": lambda x: x * np.float32(0.5),
    "x / np.int64(3)": lambda x: x / np.int64(3),
    "np.int64(3) * x": lambda x: np.int64(3) * x,
    "x.clip(-0.5, 0.5)": lambda x: x.clip(-0.5, 0.5),
    "x.masked_fill(mask, -1e9)": lambda x: x.masked_fill(x > 1, -1e9),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("expression", SCALAR_EXPRESSIONS)
def test_python_and_numpy_scalars_take_the_tensor_dtype_as_in_torch(expression: str,
                                                                    dtype: type) -> None:
    data = np.array([0.5, 1.0, 2.0], dtype)
    f = SCALAR_EXPRESSIONS[expression]
    x = Tensor(data, requires_grad=True)
    out = f(x)
    expected = f(torch.tensor(data, requires_grad=True))
    assert str(expected.dtype) == f"torch.{out.dtype}"
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype


def test_float32_plus_float64_promotes_to_float64_and_each_grad_keeps_its_dtype() -> None:
    a32, b64 = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0])
    a, b = Tensor(a32, requires_grad=True), Tensor(b64, requires_grad=True)
    ta = torch.tensor(a32, requires_grad=True)
    tb = torch.tensor(b64, requires_grad=True)
    out, expected = a + b, ta + tb
    assert out.dtype == np.float64
    assert str(expected.dtype) == "torch.float64"
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    assert a.grad.dtype == np.float32 and str(ta.grad.dtype) == "torch.float32"
    assert b.grad.dtype == np.float64 and str(tb.grad.dtype) == "torch.float64"
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-12)
