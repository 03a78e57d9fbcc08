"""A finished graph holds nothing: after ``backward()`` a node keeps neither its inputs nor its
saved arrays, so a loss tensor that outlives backward keeps no activations alive.

Measured with ``tracemalloc`` (NumPy reports its allocations to it): eight 2048×512 tanh layers
held 72 MiB after backward while ``loss`` was referenced, against 8 MiB of gradients.
"""

import gc
import tracemalloc

import numpy as np
import pytest

import minigrad as mg

MIB = 2**20


def eight_tanh_layers() -> tuple[list[mg.Tensor], mg.Tensor]:
    mg.manual_seed(0)
    weights = [(mg.randn(512, 512) * 0.04).requires_grad_() for _ in range(8)]
    return weights, mg.randn(2048, 512)  # one activation: 2048 × 512 float32 = 4 MiB


def forward(weights: list[mg.Tensor], x: mg.Tensor) -> mg.Tensor:
    h = x
    for w in weights:
        h = (h @ w).tanh()
    return (h * h).mean()


@pytest.fixture
def traced():
    gc.collect()
    tracemalloc.start()
    yield lambda: tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()


def test_after_backward_a_live_loss_holds_gradients_and_at_most_one_activation(traced) -> None:
    weights, x = eight_tanh_layers()
    before = traced()
    loss = forward(weights, x)
    during = traced() - before
    loss.backward()
    held = traced() - before  # ``loss`` is still referenced here
    grads = sum(w.grad.nbytes for w in weights)
    activation = x.data.nbytes
    assert grads == 8 * MIB
    assert during > 8 * activation  # the graph did hold every layer's activations
    assert held <= grads + activation, (
        f"{held / MIB:.1f} MiB held after backward: gradients are {grads / MIB:.0f} MiB")
    assert loss._ctx.freed and loss._ctx.parents == () and loss._ctx.saved == ()


def test_retain_graph_keeps_the_graph_for_a_second_backward(traced) -> None:
    weights, x = eight_tanh_layers()
    before = traced()
    loss = forward(weights, x)
    loss.backward(retain_graph=True)
    assert traced() - before > 8 * x.data.nbytes  # kept, as asked
    first = [w.grad.copy() for w in weights]
    loss.backward()
    for w, g in zip(weights, first, strict=True):
        np.testing.assert_allclose(w.grad, 2 * g, rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_a_training_loop_holds_one_graph_at_a_time(traced) -> None:
    """The previous step's loss is still referenced while the next forward runs; its graph is
    gone, so the peak of a step is one graph, not two."""
    weights, x = eight_tanh_layers()
    opt = mg.optim.SGD(weights, lr=0.01)
    peaks = []
    loss = None
    for _ in range(3):
        tracemalloc.reset_peak()
        start = traced()
        loss = forward(weights, x)  # the old ``loss`` lives until this assignment
        opt.zero_grad()
        loss.backward()
        opt.step()
        peaks.append(tracemalloc.get_traced_memory()[1] - start)
    one_graph = 8 * x.data.nbytes
    assert max(peaks) < 2 * one_graph, [p / MIB for p in peaks]
