"""Gradient hooks: ``Tensor.register_hook`` and ``register_post_accumulate_grad_hook``, with
PyTorch as the oracle (the same calls must see the same gradients, in the same number), and the
order backward visits leaves in (a leaf's gradient is final as soon as its last reader ran)."""

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn


def leaf(values):
    a = np.asarray(values, dtype="float64")
    return mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def test_a_hook_sees_the_gradient_of_a_leaf_and_of_a_non_leaf_as_in_torch():
    (x, tx), seen, tseen = leaf([0.5, -1.5, 2.0]), [], []
    h, th = x * x, tx * tx
    x.register_hook(lambda g: seen.append(("x", g.numpy().copy())))
    h.register_hook(lambda g: seen.append(("h", g.numpy().copy())))
    tx.register_hook(lambda g: tseen.append(("x", g.numpy().copy())))
    th.register_hook(lambda g: tseen.append(("h", g.numpy().copy())))
    (h * 3.0).sum().backward()
    (th * 3.0).sum().backward()
    assert [k for k, _ in seen] == [k for k, _ in tseen] == ["h", "x"]
    for (_, a), (_, b) in zip(seen, tseen, strict=True):
        np.testing.assert_allclose(a, b)


def test_a_hook_that_returns_a_tensor_replaces_the_gradient_downstream_as_in_torch():
    x, tx = leaf([0.5, -1.5, 2.0])
    h, th = x.exp(), tx.exp()
    h.register_hook(lambda g: g * 2.0)
    th.register_hook(lambda g: g * 2.0)
    x.register_hook(lambda g: g + 1.0)
    tx.register_hook(lambda g: g + 1.0)
    (h * h).sum().backward()
    (th * th).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_retain_grad_sees_the_hooked_gradient_as_in_torch():
    x, tx = leaf([1.0, 2.0])
    h, th = x * 3.0, tx * 3.0
    h.retain_grad()
    th.retain_grad()
    h.register_hook(lambda g: g * 10.0)
    th.register_hook(lambda g: g * 10.0)
    h.sum().backward()
    th.sum().backward()
    np.testing.assert_allclose(h.grad, th.grad.numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_a_removed_hook_no_longer_runs():
    x, _ = leaf([1.0, 2.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2.0).sum().backward()
    handle.remove()
    (x * 2.0).sum().backward()
    assert calls == [1]


def test_a_hook_returning_the_wrong_shape_is_refused():
    x, _ = leaf([1.0, 2.0])
    x.register_hook(lambda g: mg.tensor(np.zeros(3)))
    with pytest.raises(RuntimeError, match=r"shape \(3,\) for a tensor of shape \(2,\)"):
        (x * 2.0).sum().backward()


def test_post_accumulate_hook_runs_once_per_backward_after_grad_is_summed_as_in_torch():
    x, tx = leaf([0.5, -1.5, 2.0])
    seen, tseen = [], []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    tx.register_post_accumulate_grad_hook(lambda t: tseen.append(t.grad.numpy().copy()))
    for _ in range(2):  # x read three times in one graph; .grad accumulates across the calls
        (x * x + x.sin()).sum().backward()
        (tx * tx + tx.sin()).sum().backward()
    assert len(seen) == len(tseen) == 2
    for a, b in zip(seen, tseen, strict=True):
        np.testing.assert_allclose(a, b)


def test_post_accumulate_hook_is_refused_on_a_non_leaf_and_hooks_without_grad():
    x, tx = leaf([1.0])
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError):
        (tx * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: None)


def test_a_leaf_is_final_right_after_its_last_reader_so_the_last_layer_comes_first():
    """What DistributedDataParallel relies on: in an MLP the last layer's weights are done
    first, while the earlier layers are still being differentiated."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 2))
    order = []
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(lambda t, name=name: order.append(name))
    model(mg.tensor(np.ones((3, 4), dtype=np.float32))).sum().backward()
    names = [name for name, _ in model.named_parameters()]
    layer = [int(name.split(".")[0]) for name in order]
    assert sorted(order) == sorted(names)
    assert layer == sorted(layer, reverse=True), order


def test_a_callback_queued_by_a_hook_runs_after_backward():
    x, _ = leaf([1.0, 2.0])
    y, _ = leaf([3.0])
    events = []

    def hook(t):
        events.append("x")
        mg.autograd.queue_callback(lambda: events.append(("end", y.grad is not None)))

    x.register_post_accumulate_grad_hook(hook)
    ((x * 2.0).sum() * y).sum().backward()
    assert events == ["x", ("end", True)]
    with pytest.raises(RuntimeError, match="only valid during a backward"):
        mg.autograd.queue_callback(lambda: None)
