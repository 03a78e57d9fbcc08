"""The public Tensor API: attributes, methods, factories, dtypes, seeding, operators, indexing.

PyTorch's behaviour is the reference for names, defaults and gradients.
"""

import sys

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import backend
from minigrad.nn import functional as F


# --- attributes ------------------------------------------------------------------------------
def test_a_tensor_exposes_data_grad_shape_dtype_device_requires_grad():
    t = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert isinstance(t.data, np.ndarray)
    np.testing.assert_array_equal(t.data, [[1, 2, 3], [4, 5, 6]])
    assert t.grad is None
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.dtype == mg.float32 == np.float32
    assert t.device == "cpu"
    assert t.requires_grad is True
    assert t.ndim == t.dim() == 2 and t.numel() == 6 and len(t) == 2
    assert t.size() == (2, 3) and t.size(1) == 3


def test_grad_is_a_raw_array_of_the_tensors_shape_and_dtype():
    t = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (t * t).sum().backward()
    assert isinstance(t.grad, np.ndarray)
    assert t.grad.shape == t.shape and t.grad.dtype == t.dtype
    np.testing.assert_array_equal(t.grad, 2 * t.data)


# --- methods ---------------------------------------------------------------------------------
def test_numpy_returns_the_data_and_item_a_python_number():
    t = mg.tensor([2.5])
    assert np.shares_memory(t.numpy(), t.data)  # like torch's .numpy(): no copy
    assert t.item() == 2.5 and isinstance(t.item(), float)
    assert isinstance(mg.tensor(3).item(), int)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        mg.tensor([1.0, 2.0]).item()


def test_detach_shares_data_outside_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), [2.0, 4.0])


def test_backward_without_grad_on_a_scalar_and_with_grad_on_a_vector():
    x, tx = mg.tensor([1.0, -2.0, 3.0], requires_grad=True), torch.tensor([1.0, -2.0, 3.0],
                                                                          requires_grad=True)
    (x * x).sum().backward()  # grad=None means d(scalar)/d(scalar) = 1
    (tx * tx).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())

    x.zero_grad()
    tx.grad = None
    g = np.array([0.5, 1.0, -1.0], dtype=np.float32)
    (x * x).backward(g)  # a vector-Jacobian product, as torch's backward(gradient=g)
    (tx * tx).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_zero_grad_clears_the_grad():
    x = mg.tensor([1.0], requires_grad=True)
    (x * 3.0).sum().backward()
    assert x.grad is not None
    x.zero_grad()
    assert x.grad is None


def test_to_dtype_is_a_differentiable_copy():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(mg.float64)
    assert y.dtype == mg.float64 and x.dtype == mg.float32
    assert x.to("float64").dtype == x.double().dtype == mg.float64
    assert x.to(mg.float32) is x  # same dtype: nothing to copy
    (y * y).sum().backward()
    assert x.grad.dtype == mg.float32  # the gradient comes back in the leaf's dtype
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    assert mg.tensor([1.7, -1.7]).long().tolist() == [1, -1]  # truncates toward 0, as torch


def test_to_cpu_is_a_no_op_and_to_cuda_needs_a_gpu(monkeypatch):
    x = mg.tensor([1.0, 2.0])
    assert x.to("cpu") is x and x.cpu() is x
    monkeypatch.setattr(backend, "_cupy", None)  # play a machine without CuPy
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(mg.DeviceError):
        x.to("cuda")


# --- construction and dtypes -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "dtype"),
    [([1.0, 2.0], mg.float32), (1.5, mg.float32), ([1, 2], mg.int64), (3, mg.int64),
     ([True, False], mg.bool_), (np.zeros(2, dtype=np.float64), mg.float64),
     (np.zeros(2, dtype=np.int32), mg.int32), (np.zeros(2, dtype=np.float32), mg.float32)],
    ids=["float-list", "float", "int-list", "int", "bool-list", "f64-array", "i32-array",
         "f32-array"],
)
def test_default_dtypes_follow_torch(data, dtype):
    expected = torch.tensor(data).dtype
    assert mg.tensor(data).dtype == dtype
    assert str(expected).removeprefix("torch.") == str(dtype)


def test_an_explicit_dtype_wins_and_names_are_accepted():
    assert mg.tensor([1, 2], dtype=mg.float64).dtype == mg.float64
    assert mg.tensor([1.0], dtype="float64").dtype == mg.float64
    assert mg.tensor([1.0], dtype="half").dtype == mg.float16
    assert mg.tensor([1.0], dtype="bfloat16").dtype == mg.bfloat16
    with pytest.raises(TypeError, match="'float8'"):
        mg.tensor([1.0], dtype="float8")


def test_tensor_copies_while_Tensor_wraps():  # noqa: N802 (the class's name)
    a = np.array([1.0, 2.0], dtype=np.float32)
    copied, wrapped = mg.tensor(a), mg.Tensor(a)
    a[0] = 100.0
    assert copied.data[0] == 1.0
    assert wrapped.data is a and wrapped.data[0] == 100.0
    src = mg.tensor([1.0, 2.0])
    assert not np.shares_memory(mg.tensor(src).data, src.data)


@pytest.mark.parametrize(
    ("make", "shape", "dtype", "check"),
    [(lambda: mg.zeros(2, 3), (2, 3), mg.float32, lambda d: (d == 0).all()),
     (lambda: mg.zeros((2, 3), dtype=mg.float64), (2, 3), mg.float64, lambda d: (d == 0).all()),
     (lambda: mg.ones(4), (4,), mg.float32, lambda d: (d == 1).all()),
     (lambda: mg.ones(2, 2, dtype=mg.int64), (2, 2), mg.int64, lambda d: (d == 1).all()),
     (lambda: mg.randn(3, 4), (3, 4), mg.float32, lambda d: d.std() > 0),
     (lambda: mg.randn(3, dtype="float64"), (3,), mg.float64, lambda d: d.std() > 0),
     (lambda: mg.arange(5), (5,), mg.int64, lambda d: (d == np.arange(5)).all()),
     (lambda: mg.arange(1, 7, 2), (3,), mg.int64, lambda d: (d == [1, 3, 5]).all()),
     (lambda: mg.arange(0.0, 1.0, 0.25), (4,), mg.float32,
      lambda d: np.allclose(d, [0, 0.25, 0.5, 0.75])),
     (lambda: mg.eye(3), (3, 3), mg.float32, lambda d: (d == np.eye(3)).all()),
     (lambda: mg.eye(2, 3, dtype=mg.float64), (2, 3), mg.float64,
      lambda d: (d == np.eye(2, 3)).all())],
    ids=["zeros", "zeros-f64", "ones", "ones-i64", "randn", "randn-f64", "arange", "arange-step",
         "arange-float", "eye", "eye-rect"],
)
def test_factories_shapes_dtypes_and_values(make, shape, dtype, check):
    t = make()
    assert t.shape == shape and t.dtype == dtype and t.device == "cpu"
    assert not t.requires_grad and t.is_leaf
    assert check(t.data)


def test_factory_dtype_defaults_match_torch():
    assert str(torch.zeros(2).dtype) == "torch." + str(mg.zeros(2).dtype)
    assert str(torch.arange(3).dtype) == "torch." + str(mg.arange(3).dtype)
    assert str(torch.arange(0.0, 1.0, 0.5).dtype) == "torch." + str(mg.arange(0.0, 1.0, 0.5).dtype)


def test_like_factories_keep_shape_and_dtype_unless_told():
    base = mg.zeros(2, 3, dtype=mg.float64)
    for like in (mg.zeros_like, mg.ones_like, mg.randn_like):
        t = like(base)
        assert t.shape == (2, 3) and t.dtype == mg.float64
    assert mg.ones_like(base, dtype=mg.float32).dtype == mg.float32
    np.testing.assert_array_equal(mg.ones_like(base).data, np.ones((2, 3)))
    assert mg.zeros_like(mg.arange(4)).dtype == mg.int64


def test_factories_accept_requires_grad():
    w = mg.randn(3, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])


# --- seeding ---------------------------------------------------------------------------------
def test_manual_seed_makes_randn_reproducible():
    mg.manual_seed(123)
    a = mg.randn(4, 5).numpy().copy()
    b = mg.randn(4, 5).numpy().copy()
    mg.manual_seed(123)
    np.testing.assert_array_equal(mg.randn(4, 5).numpy(), a)
    np.testing.assert_array_equal(mg.randn(4, 5).numpy(), b)
    assert not np.array_equal(a, b)  # the stream moves on between draws
    mg.manual_seed(124)
    assert not np.array_equal(mg.randn(4, 5).numpy(), a)


def test_manual_seed_makes_dropout_reproducible():
    x = mg.ones(1000)
    mg.manual_seed(7)
    first = F.dropout(x, p=0.5).numpy().copy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, p=0.5).numpy(), first)
    assert set(np.unique(first)) == {0.0, 2.0}  # kept elements are scaled by 1/(1-p)
    mg.manual_seed(8)
    assert not np.array_equal(F.dropout(x, p=0.5).numpy(), first)


def test_rng_state_round_trips():
    mg.manual_seed(0)
    state = mg.get_rng_state()
    a = mg.randn(3).numpy().copy()
    mg.set_rng_state(state)
    np.testing.assert_array_equal(mg.randn(3).numpy(), a)


# --- operators -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "expected"),
    [(lambda a, b: a < b, [True, False, False]), (lambda a, b: a <= b, [True, True, False]),
     (lambda a, b: a > b, [False, False, True]), (lambda a, b: a >= b, [False, True, True]),
     (lambda a, b: a == b, [False, True, False]), (lambda a, b: a != b, [True, False, True])],
    ids=["lt", "le", "gt", "ge", "eq", "ne"],
)
def test_comparisons_give_bool_tensors_outside_the_graph(op, expected):
    a = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for other in (mg.tensor([2.0, 2.0, 2.0]), 2.0, np.full(3, 2.0)):
        out = op(a, other)
        assert isinstance(out, mg.Tensor)
        assert out.dtype == mg.bool_
        assert not out.requires_grad and out.grad_fn is None
        assert out.tolist() == expected


@pytest.mark.parametrize(
    ("op", "expected"),
    [(lambda n, t: n + t, [11.0, 22.0]), (lambda n, t: n - t, [9.0, 18.0]),
     (lambda n, t: n * t, [10.0, 40.0]), (lambda n, t: n / t, [10.0, 10.0]),
     (lambda n, t: n < t, [False, False])],
    ids=["add", "sub", "mul", "div", "lt"],
)
def test_numpy_array_on_the_left_of_a_tensor_returns_a_tensor(op, expected):
    n = np.array([10.0, 20.0])
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    out = op(n, t)
    assert isinstance(out, mg.Tensor)
    assert out.tolist() == expected


def test_numpy_array_operand_is_differentiated_through():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    (np.array([3.0, 4.0]) * t).sum().backward()
    np.testing.assert_allclose(t.grad, [3.0, 4.0])
    (np.eye(2) @ t).sum().backward()
    np.testing.assert_allclose(t.grad, [4.0, 5.0])


def test_python_scalars_keep_the_tensors_dtype():
    x = mg.tensor([1.0, 2.0])
    assert (x * 0.5).dtype == (2 - x).dtype == (x**2).dtype == mg.float32
    assert (mg.tensor([1.0], dtype=mg.float64) + 1).dtype == mg.float64


# --- indexing --------------------------------------------------------------------------------
GRID = np.arange(12.0).reshape(3, 4)
INDICES = {  # name: an index into GRID, in NumPy form
    "slice": slice(1, 3),
    "int": 1,
    "int-slice": (0, slice(None, None, 2)),
    "negative-int": (-1, -2),
    "none": (None, slice(None), 1),
    "ellipsis": (Ellipsis, 0),
    "ellipsis-none": (Ellipsis, None),
    "int-array-repeats": np.array([0, 2, 0, 0]),
    "int-list": [1, 1, 2],
    "two-int-arrays": (np.array([0, 0, 2]), np.array([1, 1, 3])),
    "int-array-and-slice": (np.array([2, 2]), slice(1, 3)),
    "slice-and-int-array": (slice(None), np.array([3, 3, 0])),
    "bool-mask-rows": np.array([True, False, True]),
    "bool-mask-full": GRID % 3 == 1,
}


def torch_index(index):
    """The same index for a torch tensor (arrays and lists become torch tensors)."""
    if isinstance(index, tuple):
        return tuple(torch_index(i) for i in index)
    return torch.tensor(index) if isinstance(index, (np.ndarray, list)) else index


@pytest.mark.parametrize("name", list(INDICES))
def test_indexing_matches_torch_in_value_and_gradient(name):
    index = INDICES[name]
    x = mg.tensor(GRID, requires_grad=True)
    tx = torch.tensor(GRID, requires_grad=True)
    y, ty = x[index], tx[torch_index(index)]
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())

    w = np.random.default_rng(0).normal(size=y.shape)
    (y * w).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_repeated_integer_indices_accumulate_like_np_add_at():
    x = mg.tensor(np.zeros(5), requires_grad=True)
    idx = np.array([1, 3, 1, 1, 4])
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x[idx].backward(g)
    expected = np.zeros(5)
    np.add.at(expected, idx, g)
    np.testing.assert_array_equal(x.grad, expected)  # [0, 8, 0, 2, 5], not [0, 4, 0, 2, 5]


def test_a_tensor_can_index_a_tensor():
    x = mg.tensor(np.arange(6.0), requires_grad=True)
    y = x[mg.tensor([5, 0, 5])]
    np.testing.assert_array_equal(y.data, [5.0, 0.0, 5.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 0, 0, 0, 0, 2])
    mask = x > 2.5
    np.testing.assert_array_equal(x[mask].data, [3.0, 4.0, 5.0])


def test_an_out_of_range_index_names_the_shape():
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        mg.zeros(3, 4)[5]


# --- shape methods ---------------------------------------------------------------------------
SHAPE_CASES = {  # name: (method call, resulting shape) on a (3, 1, 4) tensor
    "squeeze": (lambda t: t.squeeze(), (3, 4)),
    "squeeze-1": (lambda t: t.squeeze(1), (3, 4)),
    "squeeze-non-1": (lambda t: t.squeeze(0), (3, 1, 4)),  # size 3: left alone, as torch
    "squeeze-neg": (lambda t: t.squeeze(-2), (3, 4)),
    "unsqueeze-0": (lambda t: t.unsqueeze(0), (1, 3, 1, 4)),
    "unsqueeze-neg": (lambda t: t.unsqueeze(-1), (3, 1, 4, 1)),
    "unsqueeze-mid": (lambda t: t.unsqueeze(2), (3, 1, 1, 4)),
    "expand": (lambda t: t.expand(2, 3, 5, 4), (2, 3, 5, 4)),
    "expand-keep": (lambda t: t.expand(3, -1, 4), (3, 1, 4)),
    "flatten": (lambda t: t.flatten(), (12,)),
    "flatten-1": (lambda t: t.flatten(1), (3, 4)),
    "flatten-0-1": (lambda t: t.flatten(0, 1), (3, 4)),
    "reshape": (lambda t: t.reshape(-1, 2), (6, 2)),
    "view": (lambda t: t.view(4, 3), (4, 3)),
    "transpose": (lambda t: t.transpose(0, 2), (4, 1, 3)),
    "permute": (lambda t: t.permute(1, 2, 0), (1, 4, 3)),
}


@pytest.mark.parametrize("name", list(SHAPE_CASES))
def test_shape_methods_match_torch_in_shape_value_and_gradient(name):
    fn, shape = SHAPE_CASES[name]
    data = np.arange(12.0).reshape(3, 1, 4)
    x = mg.tensor(data, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    y, ty = fn(x), fn(tx)
    assert y.shape == shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    w = np.random.default_rng(0).normal(size=shape)
    (y * w).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_T_reverses_all_dims():  # noqa: N802 (the attribute's name, as NumPy's .T)
    data = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(mg.tensor(data).T.numpy(), data.T)
    m = mg.tensor(data[0], requires_grad=True)
    assert m.T.shape == (4, 3)
    (m.T * np.arange(12.0).reshape(4, 3)).sum().backward()
    np.testing.assert_array_equal(m.grad, np.arange(12.0).reshape(4, 3).T)
