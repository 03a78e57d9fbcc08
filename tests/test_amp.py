"""``minigrad.amp.GradScaler`` against ``torch.amp.GradScaler`` (issue 17): the same scales, the
same skipped steps and the same unscaled gradients over a scripted run of finite and non-finite
gradients, and torch's errors for calls out of order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad.amp import GradScaler

INF, NAN = float("inf"), float("nan")
# One row per iteration: the gradient the backward of the *scaled* loss leaves in a (3,) weight.
SCRIPT = [[1.0, 2.0, 3.0], [INF, 1.0, 0.0], [0.5, -0.5, 2.0], [1.0, 1.0, 1.0], [NAN, 0.0, 0.0],
          [2.0, 0.0, -1.0], [1.0, 2.0, 3.0], [4.0, 4.0, 4.0], [-INF, 1.0, 1.0], [1e-3, 0.0, 7.0],
          [3.0, 3.0, 3.0], [0.25, 0.5, 1.0]]


def run_minigrad(growth_interval: int, unscale_first: bool) -> tuple[list, list, list]:
    w = mg.tensor(np.zeros(3, np.float32), requires_grad=True)
    optimizer = mg.optim.SGD([w], lr=0.1)
    scaler = GradScaler(init_scale=8.0, growth_interval=growth_interval)
    scales, weights, grads = [], [], []
    for row in SCRIPT:
        w.grad = np.array(row, np.float32) * np.float32(scaler.get_scale())
        if unscale_first:
            scaler.unscale_(optimizer)
        scaler.step(optimizer)
        grads.append(w.grad.copy())
        scaler.update()
        scales.append(scaler.get_scale())
        weights.append(w.numpy().copy())
    return scales, weights, grads


def run_torch(growth_interval: int, unscale_first: bool) -> tuple[list, list, list]:
    w = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=growth_interval)
    scales, weights, grads = [], [], []
    for row in SCRIPT:
        scaler.scale(torch.zeros(()))  # torch makes its scale tensor at the first scale()
        w.grad = torch.tensor(row) * scaler.get_scale()
        if unscale_first:
            scaler.unscale_(optimizer)
        scaler.step(optimizer)
        grads.append(w.grad.numpy().copy())
        scaler.update()
        scales.append(scaler.get_scale())
        weights.append(w.detach().numpy().copy())
    return scales, weights, grads


@pytest.mark.parametrize("unscale_first", [False, True], ids=["step unscales", "unscale_ first"])
@pytest.mark.parametrize("growth_interval", [1, 2, 3, 2000])
def test_scales_skipped_steps_and_unscaled_gradients_match_torch(growth_interval, unscale_first):
    ours, theirs = run_minigrad(growth_interval, unscale_first), run_torch(growth_interval,
                                                                          unscale_first)
    assert ours[0] == theirs[0], "scales"
    skipped = [step for step in range(1, len(SCRIPT))
               if np.array_equal(theirs[1][step], theirs[1][step - 1])]
    assert skipped == [step for step in range(1, len(SCRIPT))
                       if np.array_equal(ours[1][step], ours[1][step - 1])], "skipped steps"
    assert skipped == [1, 4, 8], "the steps whose gradient holds an inf or NaN"
    for step, (mine, ref) in enumerate(zip(ours[1], theirs[1], strict=True)):  # SGD's rounding
        np.testing.assert_allclose(mine, ref, rtol=1e-6, err_msg=f"weights after step {step}")
    for step, (mine, ref) in enumerate(zip(ours[2], theirs[2], strict=True)):
        np.testing.assert_array_equal(mine, ref, err_msg=f"unscaled gradient at step {step}")
    assert len(set(ours[0])) >= 2, "the script changes the scale"


def test_defaults_and_state_dict_are_torch_s():
    scaler, reference = GradScaler(), torch.amp.GradScaler("cpu")
    assert scaler.get_scale() == reference.get_scale() == 65536.0
    ours = scaler.state_dict()
    assert ours == reference.state_dict()
    restored = GradScaler(init_scale=1.0)
    restored.load_state_dict({**ours, "scale": 4.0, "_growth_tracker": 7})
    assert restored.get_scale() == 4.0 and restored.state_dict()["_growth_tracker"] == 7


def test_the_scaled_loss_scales_every_gradient():
    x = mg.tensor(np.array([1.5, -2.0], np.float32), requires_grad=True)
    scaler = GradScaler(init_scale=1024.0)
    scaler.scale((x * x).sum()).backward()
    np.testing.assert_array_equal(x.grad, 1024.0 * 2 * x.numpy())
    assert [t.item() for t in scaler.scale([x.sum(), x.sum() * 2])] == [-512.0, -1024.0]


def test_calls_out_of_order_are_refused_as_torch_refuses_them():
    w = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    optimizer = mg.optim.SGD([w], lr=0.1)
    scaler = GradScaler()
    w.grad = np.ones(2, np.float32)
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        scaler.unscale_(optimizer)  # the gradients would be divided twice
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step"):
        scaler.unscale_(optimizer)
    scaler.update()
    with pytest.raises(RuntimeError, match="without unscale_\\(\\) or step\\(\\)"):
        scaler.update()
    with pytest.raises(TypeError, match="expected a Tensor"):
        scaler.scale(3.0)
    for bad in ({"growth_factor": 1.0}, {"backoff_factor": 1.5}, {"growth_interval": 0},
                {"init_scale": float("inf")}):
        with pytest.raises(ValueError):
            GradScaler(**bad)


def test_a_disabled_scaler_passes_everything_through():
    w = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    optimizer = mg.optim.SGD([w], lr=0.5)
    scaler = GradScaler(enabled=False)
    loss = (w * 3.0).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(optimizer)
    scaler.update()
    np.testing.assert_array_equal(w.numpy(), [-0.5, -0.5])
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}
