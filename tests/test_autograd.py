"""The semantics of ``backward()``: accumulation, freed graphs, deep graphs, grad modes, anomalies.

PyTorch is the oracle wherever it defines the behaviour: the same sequence of calls must leave
the same ``.grad`` on both sides.
"""

import numpy as np
import pytest
import torch

import minigrad as mg


def leaf(values, dtype="float64"):
    """A minigrad leaf and a torch leaf holding the same float64 values."""
    a = np.asarray(values, dtype=dtype)
    return mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


# --- accumulation ----------------------------------------------------------------------------
def test_grad_accumulates_across_backward_calls_until_zero_grad_as_in_torch():
    x, tx = leaf([0.5, -1.5, 2.0])

    (x * x).sum().backward()
    (tx * tx).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())

    (x**3).sum().backward()  # adds 3x² to the 2x already there
    (tx**3).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
    np.testing.assert_allclose(x.grad, 2 * x.data + 3 * x.data**2)

    x.zero_grad()
    tx.grad = None
    assert x.grad is None

    (x * 4.0).sum().backward()  # only the new gradient remains
    (tx * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
    np.testing.assert_allclose(x.grad, np.full(3, 4.0))


def test_grad_never_aliases_the_gradient_passed_in():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], dtype=np.float32)
    x.backward(g)
    x.grad *= 0.5  # an in-place update, as gradient clipping makes
    np.testing.assert_array_equal(g, [1.0, 1.0])  # the caller's array is left alone
    x.backward(g)
    np.testing.assert_array_equal(x.grad, [1.5, 1.5])


# --- freed graphs ----------------------------------------------------------------------------
def test_second_backward_through_a_freed_graph_raises_and_says_why():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    first = x.grad.copy()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, first)  # nothing was added by the failed call


def test_ops_without_saved_arrays_are_freed_too():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1.0).sum()  # Add and Sum save no arrays, but the graph is still spent
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_reusing_part_of_a_freed_graph_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 3.0).sum().backward()


def test_retain_graph_allows_a_second_backward_that_doubles_the_grad():
    x, tx = leaf([0.3, -0.7, 1.1])
    y = (x.tanh() * x).sum()
    ty = (tx.tanh() * tx).sum()
    y.backward(retain_graph=True)
    ty.backward(retain_graph=True)
    once = x.grad.copy()
    y.backward()
    ty.backward()
    np.testing.assert_allclose(x.grad, 2 * once)
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


# --- deep graphs -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "expected"),
    [(lambda y: y * 1.0000001, 1.0000001**100_000), (lambda y: y + 0.0, 1.0)],
    ids=["mul", "add"],
)
def test_a_chain_of_100k_ops_backpropagates_without_recursion(step, expected):
    x = mg.tensor(1.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(100_000):
        y = step(y)
    y.backward()  # a recursive topological sort would raise RecursionError here
    assert x.grad == pytest.approx(expected, rel=1e-9)
    del y  # freeing the 100k-node chain must not recurse either


# --- graph shapes ----------------------------------------------------------------------------
def test_a_tensor_used_on_several_paths_sums_their_gradients():
    x, tx = leaf([0.5, -2.0, 3.0])
    y = x * 2.0
    z = (y * y + y.exp() - y).sum()  # y feeds three paths, x feeds one
    ty = tx * 2.0
    (ty * ty + ty.exp() - ty).sum().backward()
    z.backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
    np.testing.assert_allclose(x.grad, 2 * (2 * y.data + np.exp(y.data) - 1))


def test_x_times_x_gets_both_halves_of_its_gradient():
    x = mg.tensor([3.0, -1.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, -2.0])


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x, tx = leaf([1.0, 2.0, -3.0])
    h, th = x * 3.0, tx * 3.0
    h.retain_grad()
    th.retain_grad()
    (h * h).sum().backward()
    (th * th).sum().backward()
    np.testing.assert_allclose(h.grad, th.grad.numpy())
    np.testing.assert_allclose(h.grad, 2 * h.data)
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_a_non_leaf_without_retain_grad_keeps_no_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    (h * h).sum().backward()
    assert h.grad is None
    assert not h.is_leaf and x.is_leaf


def test_detach_cuts_the_graph():
    x = mg.tensor([2.0, -1.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d.data, x.data)
    (d * x).sum().backward()  # only the path through x counts: d/dx = d
    np.testing.assert_allclose(x.grad, [2.0, -1.0])


# --- grad modes ------------------------------------------------------------------------------
def test_no_grad_records_nothing():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        y = (x * 2.0).exp().sum()
    assert not y.requires_grad
    assert y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_nests_and_restores():
    assert mg.is_grad_enabled()
    with mg.no_grad():
        with mg.no_grad():
            assert not mg.is_grad_enabled()
        assert not mg.is_grad_enabled()  # leaving the inner block keeps the outer one's mode
    assert mg.is_grad_enabled()
    x = mg.tensor([1.0], requires_grad=True)
    assert (x * 2.0).requires_grad


def test_no_grad_restores_the_mode_when_an_exception_escapes():
    with pytest.raises(ValueError, match="boom"), mg.no_grad():
        raise ValueError("boom")
    assert mg.is_grad_enabled()
    assert (mg.tensor([1.0], requires_grad=True) * 2.0).requires_grad


def test_enable_grad_inside_no_grad_records_and_then_restores():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        with mg.enable_grad():
            y = (x * x).sum()
        z = x * 2.0
    assert y.requires_grad and not z.requires_grad
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_enable_grad_restores_no_grad_on_exception():
    with mg.no_grad():
        with pytest.raises(KeyError), mg.enable_grad():
            raise KeyError("x")
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


# --- anomaly mode ----------------------------------------------------------------------------
def test_detect_anomaly_names_the_first_forward_that_makes_a_nan():
    x = mg.tensor([-1.0, 2.0], requires_grad=True)
    with np.errstate(all="ignore"), mg.detect_anomaly(), \
            pytest.raises(FloatingPointError, match=r"Log\.forward holds NaN"):
        (x * 2.0).log().exp()  # Log makes the NaN; Exp, after it, is never reached


def test_detect_anomaly_names_the_backward_that_makes_an_inf():
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    with mg.detect_anomaly():
        y = (x.sqrt() * 3.0).sum()  # finite forward: sqrt(0) = 0
        with np.errstate(all="ignore"), \
                pytest.raises(FloatingPointError, match=r"Sqrt\.backward holds Inf"):
            y.backward()  # d sqrt(x)/dx = 1/(2·sqrt(x)) is inf at 0


def test_outside_detect_anomaly_nothing_is_checked():
    x = mg.tensor([-1.0, 0.0, 4.0], requires_grad=True)
    with np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError), mg.detect_anomaly():
            x.log()
        y = x.log()  # the mode ended with its block: no check now
        assert np.isnan(y.data[0])
        x.sqrt().sum().backward()
    assert np.isinf(x.grad[1])
