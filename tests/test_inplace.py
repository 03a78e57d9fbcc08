"""In-place ops and the version counter, as in PyTorch.

An in-place op writes the tensor's own array (the same Tensor object, views and shared arrays
see the change) and bumps its version; backward refuses an array saved before such a write,
naming the op, the shape and both versions. Writes that bypass the counter (``.data``, a NumPy
array shared with ``Tensor(ndarray)``) are caught under ``detect_anomaly``. PyTorch is the
oracle: where it raises, minigrad raises; where it computes, minigrad computes the same.
"""

import contextlib

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def pair(values, requires_grad=False):
    """The same float64 values as a minigrad and a torch tensor."""
    a = np.asarray(values, dtype=np.float64)
    return (mg.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


# --- the optimizer idiom ---------------------------------------------------------------------
def test_manual_sgd_step_updates_the_same_tensor_in_place_as_torch() -> None:
    w, tw = pair([0.5, -1.0, 2.0], requires_grad=True)
    x, tx = pair([1.0, 2.0, 3.0])
    for _ in range(3):  # the README's idiom, three steps: the second failed before
        for p, inp in ((w, x), (tw, tx)):
            ((p * inp).sum() ** 2).backward()
        with mg.no_grad():
            w_id = id(w)
            w -= 0.1 * w.grad
            w.grad = None
        with torch.no_grad():
            tw -= 0.1 * tw.grad
            tw.grad = None
        assert id(w) == w_id and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-12)
    assert w._version == tw._version == 3


@pytest.mark.parametrize("op, args", [
    ("add_", ([1.0, 2.0, 3.0],)), ("sub_", ([1.0, 2.0, 3.0],)), ("mul_", (2.5,)),
    ("div_", ([2.0, 4.0, 8.0],)), ("clamp_", (-0.5, 0.75)), ("fill_", (7.0,)), ("zero_", ()),
    ("copy_", ([9.0, 8.0, 7.0],)), ("add_", (2.0,)),
])
def test_each_inplace_op_matches_torch_and_bumps_the_version(op: str, args: tuple) -> None:
    x, tx = pair([0.25, -1.5, 3.0])
    view, tview = x[1:], tx[1:]
    ours_args = [mg.tensor(a, dtype=mg.float64) if isinstance(a, list) else a for a in args]
    theirs_args = [torch.tensor(a, dtype=torch.float64) if isinstance(a, list) else a
                   for a in args]
    assert getattr(x, op)(*ours_args) is x
    getattr(tx, op)(*theirs_args)
    np.testing.assert_array_equal(x.data, tx.numpy())
    np.testing.assert_array_equal(view.data, tview.numpy())  # the view sees the write
    assert x._version == view._version == tx._version == 1


def test_add_and_sub_take_alpha_as_torch() -> None:
    x, tx = pair([1.0, 2.0])
    x.add_(mg.tensor([1.0, 1.0], dtype=mg.float64), alpha=3).sub_(0.5, alpha=2)
    tx.add_(torch.tensor([1.0, 1.0], dtype=torch.float64), alpha=3).sub_(0.5, alpha=2)
    np.testing.assert_array_equal(x.data, tx.numpy())


def test_augmented_assignment_acts_on_the_same_object_and_its_shared_array() -> None:
    a = np.array([1.0, 2.0, 3.0])
    x = mg.Tensor(a)  # shares a's memory, as torch.from_numpy
    same = x
    x += 1
    x *= 2
    x -= mg.tensor([1.0, 1.0, 1.0], dtype=mg.float64)
    x /= 2
    assert x is same and x._version == 4
    np.testing.assert_array_equal(a, [1.5, 2.5, 3.5])


def test_setitem_outside_the_graph_matches_torch() -> None:
    x, tx = pair(np.arange(24.0).reshape(2, 3, 4))
    mask = np.array([True, False, True])
    x[0, 1] = 5.0
    tx[0, 1] = 5.0
    x[:, mask] = -1.0
    tx[:, torch.from_numpy(mask)] = -1.0
    x[1, :, [0, 2]] = mg.tensor(np.full((3, 2), 9.0))  # torch's dim order: (3, 2), not (2, 3)
    tx[1, :, [0, 2]] = torch.full((3, 2), 9.0, dtype=torch.float64)
    np.testing.assert_array_equal(x.data, tx.numpy())
    assert x._version == 3


# --- what torch refuses, refused -------------------------------------------------------------
@pytest.mark.parametrize("write", [
    lambda w: w.add_(1.0), lambda w: w.mul_(2.0), lambda w: w.zero_(),
    lambda w: w.__iadd__(1.0), lambda w: w.__setitem__(0, 5.0),
])
def test_inplace_on_a_leaf_that_requires_grad_is_refused_while_recording(write) -> None:
    w, tw = pair([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad \(shape \(2,\)\)"):
        write(w)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        write(tw)
    with mg.no_grad():
        write(w)  # allowed outside the graph, as torch.no_grad()
    assert w._version == 1


def test_an_int_tensor_cannot_take_a_float_result_in_place() -> None:
    x = mg.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"dtype float32.*dtype int64"):
        x += 0.5
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2, 3]).add_(0.5)
    x.copy_(mg.tensor([1.7, 2.2, -3.9]))  # copy_ converts, as torch's does
    assert x.dtype == np.int64 and x.tolist() == torch.tensor([1, 2, 3]).copy_(
        torch.tensor([1.7, 2.2, -3.9])).tolist()


def test_the_result_of_an_inplace_op_cannot_grow_the_tensor() -> None:
    x = mg.zeros(3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*shape \(3,\)"):
        x.add_(mg.ones(2, 3))


def test_an_expanded_view_is_read_only() -> None:
    x = mg.zeros(3).expand(2, 3)
    with pytest.raises(ValueError, match="read-only"):
        x.add_(1.0)


# --- the version check at backward -----------------------------------------------------------
def test_backward_refuses_a_saved_input_modified_in_place_naming_op_shape_and_versions() -> None:
    x, tx = pair([1.0, 2.0, 3.0], requires_grad=True)
    w, tw = pair([2.0, 2.0, 2.0], requires_grad=True)
    y, ty = x * w, tx * tw
    with mg.no_grad():
        x += 1
    with torch.no_grad():
        tx += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match=r"float64 tensor of shape \(3,\) that Mul saved "
                                           r"\(its input 0\) is at version 1; expected version 0"):
        y.sum().backward()


def test_an_op_that_saved_nothing_of_the_tensor_still_backwards_as_torch() -> None:
    x, tx = pair([1.0, 2.0, 3.0], requires_grad=True)
    y, ty = (x + 1) * 2, (tx + 1) * 2  # Add saves no array: a later write does not matter
    with mg.no_grad():
        x.mul_(5)
    with torch.no_grad():
        tx.mul_(5)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_a_saved_output_modified_through_detach_is_caught() -> None:
    x, tx = pair([0.5, 1.0], requires_grad=True)
    y, ty = x.exp(), tx.exp()  # Exp saves its output
    y.detach().zero_()  # detach shares memory and the version counter
    ty.detach().zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match=r"that Exp saved \(its output\) is at version 1"):
        y.sum().backward()


def test_a_saved_tensor_modified_through_a_view_is_caught() -> None:
    x, tx = pair([1.0, 2.0, 3.0], requires_grad=True)
    h, th = x * 1.0, tx * 1.0
    y, ty = h * h, th * th
    with mg.no_grad():
        h[1:].mul_(0.0)  # the view shares h's memory and version counter
    with torch.no_grad():
        th[1:].mul_(0.0)
    assert h._version == th._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match=r"that Mul saved \(its input 0\) is at version 1"):
        y.sum().backward()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("make", [lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: mg.optim.AdamW(ps, lr=0.1)])
def test_an_optimizer_step_between_two_backwards_is_caught(backend: str, make) -> None:
    """The classic: backward of one loss, step, then backward of a second loss on the same
    graph. The step changed the weight that Linear saved for the input's gradient (a fused
    kernel bumps the version too), so the second backward would mix old activations with new
    weights."""
    previous = mg.get_backend("cpu")
    mg.set_backend(backend)
    try:
        mg.manual_seed(0)
        layer = nn.Linear(3, 2)
        opt = make(layer.parameters())
        y = layer(mg.randn(4, 3, requires_grad=True))
        (y * y).sum().backward(retain_graph=True)
        opt.step()
        assert layer.weight._version >= 1  # AdamW's NumPy path: mul_ then sub_, as torch's
        with pytest.raises(RuntimeError, match=r"tensor of shape \(2, 3\) that Linear saved"):
            y.sum().backward()
    finally:
        mg.set_backend(previous)
    tl = torch.nn.Linear(3, 2)
    topt = torch.optim.SGD(tl.parameters(), lr=0.1)
    ty = tl(torch.randn(4, 3, requires_grad=True))
    (ty * ty).sum().backward(retain_graph=True)
    topt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()


def test_load_state_dict_copies_in_place_and_bumps_versions() -> None:
    layer = nn.Linear(2, 2)
    weight = layer.weight
    y = layer(mg.ones(1, 2, requires_grad=True))
    layer.load_state_dict({k: np.zeros(v.shape, np.float32)
                           for k, v in layer.state_dict().items()})
    assert layer.weight is weight and not weight.data.any() and weight._version == 1
    with pytest.raises(RuntimeError, match="Linear saved"):
        y.sum().backward()


# --- in-place ops inside the graph -----------------------------------------------------------
def test_inplace_ops_inside_the_graph_give_torchs_gradients() -> None:
    x, tx = pair([0.5, -1.0, 2.0], requires_grad=True)
    w, tw = pair([3.0, 0.25, -2.0], requires_grad=True)
    v, tv = pair([7.0], requires_grad=True)
    outs = []
    for a, b, c in ((x, w, v), (tx, tw, tv)):
        h = a * 2
        h.mul_(b)   # saves the old h (copied), so its gradient w.r.t. b is the old value
        h += a      # h now depends on a twice
        h.clamp_(-3.0, 3.0)
        h[1] = c[0] * 4  # differentiable in the value
        h.div_(b)
        outs.append(((h * h).sum(), h))
    (ours, h), (theirs, _) = outs
    assert h.grad_fn == "Div" and not h.is_leaf
    ours.backward()
    theirs.backward()
    for mine, ref in ((x, tx), (w, tw), (v, tv)):
        np.testing.assert_allclose(mine.grad, ref.grad.numpy(), rtol=1e-12)


def test_ops_that_read_a_tensor_before_its_inplace_op_send_their_gradient_to_the_old_value(
) -> None:
    """y was computed from h before h.add_(w): y's gradient must reach x, and never w."""
    x, tx = pair([1.0, 2.0], requires_grad=True)
    w, tw = pair([5.0, 6.0], requires_grad=True)
    for a, b in ((x, w), (tx, tw)):
        h = a * 1.0
        y = h * 3.0
        h.add_(b)
        (y * y + h).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())  # 18x + 1
    np.testing.assert_array_equal(w.grad, tw.grad.numpy())  # 1, not 1 + 18x


def test_copy_and_fill_inside_the_graph_match_torch() -> None:
    x, tx = pair([1.0, 2.0, 3.0], requires_grad=True)
    s, ts = pair([4.0], requires_grad=True)
    h, th = x * 1.0, tx * 1.0
    h.copy_(s * s)  # broadcast: h's old values get gradient 0, s gets 3 · 2s
    th.copy_(ts * ts)
    g, tg = x * 1.0, tx * 1.0
    g.fill_(5.0)
    tg.fill_(5.0)
    (h.sum() + (g * x).sum()).backward()
    (th.sum() + (tg * tx).sum()).backward()
    np.testing.assert_allclose(s.grad, ts.grad.numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_a_plain_tensor_written_from_a_tensor_that_requires_grad_joins_the_graph() -> None:
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    buf = mg.zeros(2)
    buf.add_(w * 3)
    assert buf.requires_grad and buf.grad_fn == "Add" and not buf.is_leaf
    buf.sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_inplace_on_a_view_of_a_graph_tensor_is_refused_not_silently_wrong() -> None:
    """torch rewrites the base's graph (CopySlices); minigrad refuses rather than give the base
    a stale gradient."""
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 1.0
    with pytest.raises(RuntimeError, match=r"view \(shape \(2,\)\) of a tensor of shape \(3,\)"):
        h[1:].mul_(2.0)
    h[1:] = h[1:] * 2.0  # what to write instead: setitem on the base itself
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 2.0])


def test_setitem_on_a_leaf_is_refused_while_recording_and_works_in_no_grad() -> None:
    x = mg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="__setitem__: a leaf tensor"):
        x[0] = 1.0
    with mg.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0]


# --- writes the counter cannot see: anomaly mode ---------------------------------------------
@pytest.mark.parametrize("write", ["data", "shared numpy"])
def test_anomaly_mode_catches_a_write_that_bypasses_the_counter(write: str) -> None:
    def run(anomaly: bool) -> np.ndarray:
        a = np.array([1.0, 2.0, 3.0])
        x = mg.Tensor(a, requires_grad=True)  # shares a's memory
        w = mg.tensor([1.0, 1.0, 1.0], dtype=mg.float64, requires_grad=True)
        with mg.detect_anomaly() if anomaly else contextlib.nullcontext():
            y = x * w
            if write == "data":
                x.data[0] = 100.0
            else:
                a[0] = 100.0
            assert x._version == 0  # the counter saw nothing
            y.sum().backward()
        return w.grad

    # without anomaly mode the write goes unseen: the gradient uses the new value (the escape
    # hatch is unchecked, as documented on Tensor)
    assert run(anomaly=False)[0] == 100.0
    with pytest.raises(RuntimeError, match=r"anomaly: saved array \d of Mul \(float64, shape "
                                           r"\(3,\)\) changed between forward and backward"):
        run(anomaly=True)


def test_anomaly_mode_passes_an_untouched_graph() -> None:
    x = mg.randn(4, 3, requires_grad=True)
    with mg.detect_anomaly():
        F.softmax(x * 2, dim=-1).sum().backward()
    assert x.grad is not None
