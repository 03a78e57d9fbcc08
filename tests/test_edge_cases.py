"""The corners where the engine used to differ from PyTorch, each checked against torch.

0-d tensors and their dims; boolean masks whose shape does not match; an int, a slice and an
index array together (torch's order of dims, not NumPy's); power's gradients at zero; losses
differentiated in their targets; and ``import minigrad as mg`` giving its subpackages.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F


# --- 0-d tensors -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, f", [
    ("sum(0)", lambda s: s.sum(0)), ("sum(-1)", lambda s: s.sum(-1)),
    ("sum((0,), keepdim)", lambda s: s.sum((0,), keepdim=True)),
    ("mean(-1)", lambda s: s.mean(-1)), ("amax(0)", lambda s: s.amax(0)),
    ("max(0).values", lambda s: s.max(0).values),
    ("softmax(-1)", lambda s: s.softmax(-1) if hasattr(s, "softmax") else F.softmax(s, -1)),
    ("log_softmax(0)", lambda s: s.log_softmax(0) if hasattr(s, "log_softmax")
     else F.log_softmax(s, 0)),
    ("squeeze(0)", lambda s: s.squeeze(0)), ("squeeze(-1)", lambda s: s.squeeze(-1)),
    ("unsqueeze(-1)", lambda s: s.unsqueeze(-1)),
    ("transpose(0, -1)", lambda s: s.transpose(0, -1)),
])
def test_a_0d_tensor_takes_dim_0_and_minus_1_as_torch(name: str, f) -> None:
    s = mg.tensor(1.5, dtype=mg.float64, requires_grad=True)
    ts = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    out, expected = f(s), f(ts)
    assert out.shape == tuple(expected.shape), name
    np.testing.assert_allclose(out.data, expected.detach().numpy(), err_msg=name)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(s.grad, ts.grad.numpy(), err_msg=name)


def test_a_0d_tensor_refuses_dim_1_naming_the_range() -> None:
    with pytest.raises(IndexError, match=r"dim 1 is out of range for a tensor of shape \(\) "
                                         r"\(expected a dim in \[-1, 0\]\)"):
        mg.tensor(2.0).sum(1)


def test_argmax_of_a_0d_tensor_is_0() -> None:
    assert mg.tensor(3.0).argmax(0).item() == torch.tensor(3.0).argmax(0).item() == 0


# --- boolean masks ---------------------------------------------------------------------------
def test_a_mask_whose_shape_does_not_match_is_refused_naming_both_shapes() -> None:
    x = mg.ones(10, 11, 12)
    mask = [True, False]
    with pytest.raises(IndexError):
        torch.ones(10, 11, 12)[torch.tensor(mask)]
    with pytest.raises(IndexError, match=r"mask of shape \(2,\) does not match the shape \(10,\) "
                                         r"of dims 0..0 of the indexed tensor of shape "
                                         r"\(10, 11, 12\)"):
        x[mg.tensor(mask)]
    with pytest.raises(IndexError, match=r"mask of shape \(11, 3\) does not match the shape "
                                         r"\(11, 12\) of dims 1..2"):
        x[:, np.ones((11, 3), dtype=bool)]


def test_matching_masks_after_a_slice_and_an_ellipsis_match_torch() -> None:
    a = np.arange(60.0).reshape(3, 4, 5)
    mask = a[0] % 3 == 0
    for index in ((slice(None), mask), (Ellipsis, mask[0])):
        torch_index = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i
                            for i in index)
        np.testing.assert_array_equal(mg.tensor(a)[index].data,
                                      torch.tensor(a)[torch_index].numpy())


# --- an int, a slice and an index array ------------------------------------------------------
@pytest.mark.parametrize("index", [
    (0, slice(None), [1, 2]), ([1, 2], slice(None), 0), (slice(None), 0, [1, 2]),
    (0, [1, 2], [3, 0]), (1, Ellipsis, [0, 4, 4]), (None, 0, slice(1, 3), [2]),
    ([0, 1], 2), (-1, slice(None), [[1], [2]]),
])
def test_mixed_indexing_follows_torchs_order_of_dims(index: tuple) -> None:
    a = np.arange(5 * 6 * 7, dtype=np.float64).reshape(5, 6, 7)
    x, tx = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    torch_index = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    ours = x[tuple(np.array(i) if isinstance(i, list) else i for i in index)]
    theirs = tx[torch_index]
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    g = np.random.default_rng(0).standard_normal(ours.shape)
    ours.backward(g)
    theirs.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


# --- power at zero ---------------------------------------------------------------------------
def test_gradient_of_zero_to_the_x_is_torchs_at_the_boundary() -> None:
    x = mg.tensor([0.0, 1.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    tx = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    (0 ** x).sum().backward()
    (0 ** tx).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())
    assert not np.isnan(x.grad).any()


@pytest.mark.parametrize("xs, ys", [
    ([0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 2.5, 0.0]),  # x = 0 with y = 0 and y > 0
    ([0.0, 0.0], [0.5, 3.0]),
])
def test_x_to_the_y_gradients_at_zero_follow_torch(xs, ys) -> None:
    x, y = (mg.tensor(v, dtype=mg.float64, requires_grad=True) for v in (xs, ys))
    tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (xs, ys))
    (x ** y).sum().backward()
    (tx ** ty).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())  # 0 where y = 0, not NaN
    np.testing.assert_array_equal(y.grad, ty.grad.numpy())  # 0 where x = 0, y ≥ 0, not NaN


@pytest.mark.parametrize("p", [0, 1, 2, 0.5, 3.0])
def test_x_to_a_constant_power_at_zero_follows_torch(p: float) -> None:
    x = mg.tensor([0.0, 1.5], dtype=mg.float64, requires_grad=True)
    tx = torch.tensor([0.0, 1.5], dtype=torch.float64, requires_grad=True)
    (x ** p).sum().backward()
    (tx ** p).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)  # 0⁰ = 1; 0^-0.5 = inf


# --- losses differentiated in their targets ----------------------------------------------------
@pytest.mark.parametrize("name, ours, theirs, make_input", [
    ("mse_loss", F.mse_loss, TF.mse_loss, lambda r: r.standard_normal((3, 4))),
    ("binary_cross_entropy", F.binary_cross_entropy, TF.binary_cross_entropy,
     lambda r: r.uniform(0.05, 0.95, (3, 4))),
    ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
     TF.binary_cross_entropy_with_logits, lambda r: r.standard_normal((3, 4)) * 3),
])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_gradients_wrt_the_target_match_torch_and_finite_differences(
        name, ours, theirs, make_input, reduction) -> None:
    rng = np.random.default_rng(1)
    a, b = make_input(rng), rng.random((3, 4))
    x, y = (mg.tensor(v, requires_grad=True) for v in (a, b))
    tx, ty = (torch.tensor(v, requires_grad=True) for v in (a, b))
    out, expected = ours(x, y, reduction), theirs(tx, ty, reduction=reduction)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, err_msg=name)
    x2, y2 = (mg.tensor(v, requires_grad=True) for v in (a, b))
    gradcheck(lambda p, q: ours(p, q, reduction), [x2, y2])


def test_a_target_of_another_shape_is_still_refused() -> None:
    with pytest.raises(ValueError, match=r"input has shape \(3,\) but target has shape \(1,\)"):
        F.mse_loss(mg.zeros(3), mg.zeros(1, requires_grad=True))


# --- the package layout ------------------------------------------------------------------------
def test_import_minigrad_gives_its_subpackages_without_importing_anything_slow() -> None:
    code = (
        "import sys, minigrad as mg\n"
        "assert mg.optim.AdamW and mg.nn.Linear and mg.nn.functional.softmax\n"
        "assert mg.data.tokenizer and mg.models.BertConfig\n"
        "slow = [m for m in ('cupy', 'numba', 'torch', 'matplotlib', 'tqdm', 'minigrad.train',\n"
        "                    'minigrad.kernels.cpu') if m in sys.modules]\n"
        "assert not slow, slow\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_style_imports_resolve() -> None:
    assert mg.nn.functional is F
    assert mg.optim.SGD is mg.optim.sgd.SGD
