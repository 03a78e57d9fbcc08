"""Numerical stability: logits of ±1e4 give finite, correct values and gradients.

A naive ``exp(x) / Σ exp(x)`` overflows to inf/inf = NaN at x = 1e4 (float32 overflows past
~88.7, float64 past ~709.8). Every op below must give the mathematically correct answer instead,
checked against closed forms and against PyTorch in float64. The softmax-family backward must
also be the O(n) closed form, never an (n, n) Jacobian.
"""

import contextlib
import math
import sys
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad.nn import functional as F

BIG = 1e4
# Rows mixing ±1e4 with moderate gaps, so the answers are neither all 0 nor all 1.
LOGITS = np.array([[BIG, BIG - 1.0, 0.0, -BIG],
                   [-BIG, -BIG, -BIG + 2.0, -BIG],
                   [BIG, -BIG, 3.0, BIG]])
TARGET_CLASSES = np.array([1, 3, 2])
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def run_both(fn_mg, fn_torch, x, *extra, weight=None):
    """Value and d(Σ w·f(x))/dx from minigrad (in x's dtype) and from torch in float64."""
    w = np.random.default_rng(0).normal(size=fn_mg(mg.tensor(x), *extra).shape) \
        if weight is None else weight
    xm = mg.tensor(x, requires_grad=True)
    ym = fn_mg(xm, *extra)
    (ym * mg.tensor(w.astype(x.dtype))).sum().backward()
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = fn_torch(xt, *extra)
    (yt * torch.tensor(w)).sum().backward()
    return ym, xm.grad, yt.detach().numpy(), xt.grad.numpy()


def assert_finite_and_close(ym, gm, yt, gt, dtype):
    assert ym.dtype == dtype and gm.dtype == dtype
    assert np.isfinite(ym.data).all() and np.isfinite(gm).all()
    np.testing.assert_allclose(ym.data, yt, **tol(dtype))
    np.testing.assert_allclose(gm, gt, **tol(dtype))


# --- closed forms ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax_of_huge_logits_match_closed_forms(dtype):
    x = mg.tensor(np.array([BIG, BIG - 1.0, -BIG], dtype=dtype), requires_grad=True)
    e = math.exp(-1.0)
    np.testing.assert_allclose(F.softmax(x, -1).data, [1 / (1 + e), e / (1 + e), 0.0],
                               **tol(dtype))
    log_z = math.log1p(e)  # log(e^0 + e^-1), after shifting by the max
    np.testing.assert_allclose(F.log_softmax(x, -1).data, [-log_z, -1.0 - log_z, -2 * BIG - log_z],
                               **tol(dtype))

    # d log_softmax(x)_0 / dx = onehot(0) - softmax(x)
    F.log_softmax(x, -1)[0].backward()
    np.testing.assert_allclose(x.grad, [1 - 1 / (1 + e), -e / (1 + e), 0.0], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_to_exact_zero_and_one_with_zero_gradient(dtype):
    x = mg.tensor(np.array([BIG, -BIG, 0.0], dtype=dtype), requires_grad=True)
    with np.errstate(over="raise"):  # no exp may overflow, even on the branch np.where drops
        y = x.sigmoid()
        y.sum().backward()
    np.testing.assert_array_equal(y.data, [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.25])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_of_huge_logits_is_linear_with_unit_gradient(dtype):
    # ℓ(x, y) = max(x, 0) - x·y + log(1 + e^-|x|);  dℓ/dx = σ(x) - y.
    x = mg.tensor(np.array([BIG, -BIG, BIG, -BIG], dtype=dtype), requires_grad=True)
    y = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.data, [BIG, BIG, 0.0, 0.0], **tol(dtype))
    np.testing.assert_allclose(x.grad, [1.0, -1.0, 0.0, 0.0], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_huge_logits_is_the_logit_gap_with_softmax_minus_onehot_gradient(dtype):
    x = mg.tensor(np.array([[BIG, 0.0, -BIG]], dtype=dtype), requires_grad=True)
    loss = F.cross_entropy(x, np.array([2]))
    loss.backward()
    np.testing.assert_allclose(loss.data, 2 * BIG, **tol(dtype))  # -log softmax = 1e4 - (-1e4)
    np.testing.assert_allclose(x.grad, [[1.0, 0.0, -1.0]], **tol(dtype))


# --- against torch in float64 ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize(
    ("mg_fn", "torch_fn"),
    [(F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)],
    ids=["softmax", "log_softmax"],
)
def test_softmax_family_matches_torch_float64(mg_fn, torch_fn, dim, dtype):
    x = LOGITS.astype(dtype)
    assert_finite_and_close(*run_both(mg_fn, torch_fn, x, dim), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_torch_float64(dtype):
    x = LOGITS.astype(dtype)
    assert_finite_and_close(*run_both(mg.sigmoid, torch.sigmoid, x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_with_logits_matches_torch_float64(reduction, dtype):
    x = LOGITS.astype(dtype)
    y = np.random.default_rng(1).random(x.shape)  # soft targets in [0, 1)
    ym, gm, yt, gt = run_both(
        lambda a: F.binary_cross_entropy_with_logits(a, y.astype(dtype), reduction=reduction),
        lambda a: TF.binary_cross_entropy_with_logits(a, torch.tensor(y), reduction=reduction),
        x,
    )
    assert_finite_and_close(ym, gm, yt, gt, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_matches_torch_float64(reduction, label_smoothing, dtype):
    x = LOGITS.astype(dtype)
    ym, gm, yt, gt = run_both(
        lambda a: F.cross_entropy(a, TARGET_CLASSES, reduction=reduction,
                                  label_smoothing=label_smoothing),
        lambda a: TF.cross_entropy(a, torch.tensor(TARGET_CLASSES), reduction=reduction,
                                   label_smoothing=label_smoothing),
        x,
    )
    assert_finite_and_close(ym, gm, yt, gt, dtype)


# --- O(n) backward ---------------------------------------------------------------------------
@contextlib.contextmanager
def address_space_capped(extra_bytes):
    """Cap the process's address space at its current size plus ``extra_bytes`` (Linux only).

    A runaway allocation (a 10 GB Jacobian) then raises MemoryError in this test instead of
    waking the kernel's OOM killer. Elsewhere the block runs uncapped.
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    import resource

    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + extra_bytes if hard == resource.RLIM_INFINITY else min(size + extra_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


WIDE_TARGETS = np.array([0, 7, 49_999, 123])


@pytest.mark.parametrize(
    ("mg_fn", "torch_fn"),
    [(lambda x: F.softmax(x, -1), lambda x: torch.softmax(x, -1)),
     (lambda x: F.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1)),
     (lambda x: F.cross_entropy(x, WIDE_TARGETS, reduction="none"),
      lambda x: TF.cross_entropy(x, torch.tensor(WIDE_TARGETS), reduction="none"))],
    ids=["softmax", "log_softmax", "cross_entropy"],
)
def test_backward_over_50000_classes_never_builds_a_jacobian(mg_fn, torch_fn):
    """A (50000, 50000) float32 Jacobian is 10 GB; the closed form needs a few (4, 50000) rows.

    NumPy reports its allocations to tracemalloc, so the peak bounds every array made by the
    forward and the backward pass together; the address-space cap turns a Jacobian-sized
    allocation into a MemoryError rather than an out-of-memory kill.
    """
    mg.manual_seed(0)
    x = mg.randn(4, 50_000, requires_grad=True)
    tracemalloc.start()
    try:
        with address_space_capped(extra_bytes=2**30):
            y = mg_fn(x)
            y.backward(np.ones(y.shape, dtype=np.float32))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * x.data.nbytes, f"peak {peak / 2**20:.1f} MiB for a 0.8 MB input"

    xt = torch.tensor(x.data.astype(np.float64), requires_grad=True)
    yt = torch_fn(xt)
    yt.backward(torch.ones_like(yt))
    # float32 sums over 50000 terms: rounding error ~1e-6
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
