"""One rule for non-finite and fully masked softmax rows, on every backend.

The rule (stated in kernels/cpu/softmax.py, the CUDA kernels' docstrings point to it):

* a plain softmax is the NumPy composite's formula, y = e^(x - max) / Σ e^(x - max), nothing
  special-cased: a row that is all -inf, or holds +inf or NaN, is NaN throughout (as
  ``torch.softmax`` gives), and a -inf entry of a row with a finite max gets 0;
* a masked score (attention's key padding) is *replaced* by the dtype's finfo.min, as the
  composite in ScaledDotProductAttention does, so a row whose every key is masked is uniform,
  1/S, with a gradient of exactly 0 (HF BERT's additive finfo.min mask): never NaN.

Each case runs through the NumPy references (``*_reference`` in minigrad.kernels.cpu), the Numba
kernels, the CUDA kernels under numba's CUDA simulator (tiny shapes; skipped where the simulator
cannot be imported), PyTorch as an oracle, and the engine under ``set_backend("numpy")`` and
``set_backend("numba")``. "The same" is :func:`same`: NaN in exactly the same places, and every
other value equal to the dtype's tolerance. Each test also states the expected pattern itself,
so a rule broken in the references and the kernels alike still fails.
"""

import types
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from minigrad.kernels.cpu import attention as att
from minigrad.kernels.cpu import cross_entropy as ce
from minigrad.kernels.cpu import softmax as sm

import minigrad
import minigrad.nn.functional as F

# NaN and ±inf are this file's inputs: NumPy's warnings about them are expected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

inf, nan = np.inf, np.nan
DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}
CUDA_SOFTMAX = ["warp", "block", "naive"]  # a warp per row, a block per row, the reference

# Rows of scores, one case of the rule each, and whether the rule makes the row NaN.
ROWS = np.array([
    [-inf, -inf, -inf, -inf, -inf],  # all -inf: m = -inf and -inf - m = NaN
    [-inf, 0.5, -inf, 2.0, -1.0],  # partly -inf, a -inf first (an online softmax's first key)
    [0.0, inf, 1.0, -inf, 2.0],  # +inf: inf - inf = NaN
    [0.5, nan, 1.0, 2.0, -inf],  # NaN
    [0.3, -1.2, 2.5, 0.0, -0.7],  # finite
])
ROWS_NAN = [True, False, True, True, False]
# 37 columns: two per lane of a CUDA warp, or per thread of a 32-thread block (see cuda_softmax),
# and in row 1 a thread's first column -inf, its second finite.
LONG_ROWS = np.stack([np.full(37, -inf), np.r_[np.full(33, -inf), [0.5, 1.0, -2.0, 0.0]],
                      np.r_[np.linspace(-3, 3, 35), [inf, 0.0]]])
LONG_ROWS_NAN = [True, False, True]

# Scores (2, 3, 5) under a key mask (2, 5), 1 = keep: sequence 0 pads keys 1 and 4, sequence 1
# every key. Padded scores are replaced whatever they are, NaN and +inf included.
MASK = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]])
MASKED_SCORES = np.array([
    [[0.3, nan, -1.0, 2.0, inf],  # NaN and +inf at padded keys: no trace of them
     [-inf, 1.0, -inf, -inf, -2.0],  # every kept score -inf: uniform over the padded keys
     [-inf, 0.0, 1.5, -inf, 0.0]],  # partly -inf among the kept keys
    [[0.3, nan, -1.0, 2.0, inf],  # every key padded: 1/5 whatever the scores
     [-inf, -inf, -inf, -inf, -inf],
     [1.0, 2.0, 3.0, 4.0, 5.0]],
])
SCALE = 0.5


def same(actual: np.ndarray, expected: np.ndarray, dtype: type, what: str,
         tol_scale: float = 1.0) -> None:
    """NaN (and ±inf) in exactly the same places, every other value within the dtype's
    tolerance; atol is relative to the largest finite expected value."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected),
                                  err_msg=f"{what}: NaN pattern")
    size = max(1.0, float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype]["rtol"] * tol_scale,
                               atol=TOL[dtype]["atol"] * tol_scale * size, err_msg=what)


def all_agree(results: dict[str, tuple], dtype: type, tol_scale: float = 1.0) -> None:
    """Every entry's arrays are :func:`same` as the first entry's."""
    (ref_name, expected), *others = results.items()
    for name, arrays in others:
        for i, (a, e) in enumerate(zip(arrays, expected, strict=True)):
            same(a, e, dtype, f"{name} against {ref_name}, output {i}", tol_scale)


def rng_like(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def restore_backend() -> Iterator[None]:
    previous = minigrad.get_backend()
    yield
    minigrad.set_backend(previous)


@pytest.fixture(scope="module")
def kc(simulated_cuda_kernels: types.ModuleType) -> types.ModuleType:
    return simulated_cuda_kernels


def cuda_softmax(kc: types.ModuleType, monkeypatch: pytest.MonkeyPatch, kernel: str) -> tuple:
    """(forward, backward) of the CUDA softmax ``kernel``. "block", the path of rows longer than
    1024, is forced on short rows by allowing a warp no columns per lane, and given blocks of 32
    threads, so that a thread walks several columns of a row longer than 32, as on a long row."""
    if kernel == "naive":
        return kc.softmax_forward_naive, kc.softmax_backward_naive
    if kernel == "block":
        monkeypatch.setattr(kc.softmax, "MAX_COLS_PER_LANE", 0)
        monkeypatch.setattr(kc.softmax, "row_threads", lambda n: 32)
    return kc.softmax_forward, kc.softmax_backward


# --- plain softmax: the composite's formula --------------------------------------------------
def torch_softmax(x: np.ndarray, dy: np.ndarray, scale: float = 1.0,
                  mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(y, dx) from torch.softmax, masked scores replaced by finfo.min (torch.where)."""
    xt = torch.tensor(x, requires_grad=True)
    s = xt * scale
    if mask is not None:
        keep = torch.tensor(sm._broadcast_mask(mask, x.ndim))
        s = torch.where(keep, s, torch.finfo(s.dtype).min)
    y = torch.softmax(s, dim=-1)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), xt.grad.numpy()


def assert_rule_without_mask(y: np.ndarray, rows_nan: list[bool], x: np.ndarray) -> None:
    """NaN throughout the rows the rule makes NaN, no NaN elsewhere, and exactly 0 at the -inf
    entries of the other rows."""
    assert np.isnan(y).all(axis=-1).tolist() == rows_nan
    finite = ~np.array(rows_nan)
    assert not np.isnan(y[finite]).any()
    np.testing.assert_array_equal(y[finite][np.isneginf(x[finite])], 0)


ROW_SETS = {"5 columns": (ROWS, ROWS_NAN), "37 columns": (LONG_ROWS, LONG_ROWS_NAN)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROW_SETS)
def test_softmax_is_the_composite_formula_without_a_mask(dtype, rows):
    x, rows_nan = ROW_SETS[rows]
    x = x.astype(dtype)
    dy = rng_like(x.shape, dtype, 0)
    y_ref = sm.softmax_forward_reference(x)
    y = sm.softmax_forward(x)
    results = {
        "reference": (y_ref, sm.softmax_backward_reference(y_ref, dy)),
        "numba": (y, sm.softmax_backward(y, dy)),
        "torch": torch_softmax(x, dy),
    }
    all_agree(results, dtype)
    assert_rule_without_mask(y, rows_nan, x)


@pytest.mark.parametrize("kernel", CUDA_SOFTMAX)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROW_SETS)
def test_cuda_softmax_is_the_composite_formula_without_a_mask(kc, monkeypatch, kernel, dtype,
                                                              rows):
    x, rows_nan = ROW_SETS[rows]
    x = x.astype(dtype)
    dy = rng_like(x.shape, dtype, 0)
    forward, backward = cuda_softmax(kc, monkeypatch, kernel)
    y_ref = sm.softmax_forward_reference(x)
    y = forward(x)
    all_agree({"reference": (y_ref, sm.softmax_backward_reference(y_ref, dy)),
               f"cuda {kernel}": (y, backward(y, dy))}, dtype)
    assert_rule_without_mask(y, rows_nan, x)


# --- masked softmax: finfo.min replaces a masked score -----------------------------------------
def assert_rule_with_mask(y: np.ndarray, dx: np.ndarray) -> None:
    """Never NaN; uniform where every key is masked (or every kept score is -inf), with an
    exact 0 gradient at masked keys and in those rows."""
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    fifth = y.dtype.type(1) / y.dtype.type(5)
    np.testing.assert_array_equal(y[1], fifth)  # sequence 1: every key padded
    np.testing.assert_array_equal(y[0, 1], [0, 0.5, 0, 0, 0.5])  # the padded keys share it
    np.testing.assert_array_equal(y[0][[0, 2]][:, [1, 4]], 0)
    np.testing.assert_array_equal(dx[1], 0)
    np.testing.assert_array_equal(dx[0][:, [1, 4]], 0)
    np.testing.assert_array_equal(dx[0, 1], 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_softmax_replaces_masked_scores_by_finfo_min(dtype):
    x = MASKED_SCORES.astype(dtype)
    dy = rng_like(x.shape, dtype, 1)
    y_ref = sm.softmax_forward_reference(x, SCALE, MASK)
    y = sm.softmax_forward(x, SCALE, MASK)
    results = {
        "reference": (y_ref, sm.softmax_backward_reference(y_ref, dy, SCALE, MASK)),
        "numba": (y, sm.softmax_backward(y, dy, SCALE, MASK)),
        "torch": torch_softmax(x, dy, SCALE, MASK),
    }
    all_agree(results, dtype)
    assert_rule_with_mask(*results["numba"])


@pytest.mark.parametrize("kernel", CUDA_SOFTMAX)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_masked_softmax_replaces_masked_scores_by_finfo_min(kc, monkeypatch, kernel, dtype):
    x = MASKED_SCORES.astype(dtype)
    dy = rng_like(x.shape, dtype, 1)
    forward, backward = cuda_softmax(kc, monkeypatch, kernel)
    y_ref = sm.softmax_forward_reference(x, SCALE, MASK)
    y = forward(x, SCALE, MASK)
    dx = backward(y, dy, SCALE, MASK)
    all_agree({"reference": (y_ref, sm.softmax_backward_reference(y_ref, dy, SCALE, MASK)),
               f"cuda {kernel}": (y, dx)}, dtype)
    assert_rule_with_mask(y, dx)


# --- attention ---------------------------------------------------------------------------------
def padded_attention(dtype: type) -> tuple:
    """(q, k, v, dout, keep-mask, scale): sequence 0 pads keys 2 and 4, sequence 1 every key."""
    q, k, v, dout = (rng_like((2, 2, 5, 3), dtype, seed) for seed in range(4))
    return q, k, v, dout, np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]]), 0.4


def overflowing_attention(dtype: type) -> tuple:
    """Finite (q, k, v, dout, keep-mask, scale) whose scores overflow to ±inf in query row 0.

    scale = finfo.max/10⁹ and q·k = ±10¹⁰ make a score of ±10·finfo.max, that is ±inf; q = 0
    elsewhere makes the other rows' scores 0 (uniform over the kept keys). Row 0 of
      (b0, h0): every score -inf, no padding: NaN, and NaN gradients through the whole head;
      (b0, h1): -inf at keys 0 and 2, the first key included: 1/3 at keys 1, 3 and 4;
      (b1, h0): every kept score -inf, keys 3 and 4 padded: their finfo.min is the max, 1/2;
      (b1, h1): +inf at key 1: NaN.
    """
    big = 1e5
    q = np.zeros((2, 2, 5, 3))
    q[:, :, 0, 0] = big
    k, v, dout = (rng_like((2, 2, 5, 3), np.float64, seed) for seed in (4, 5, 6))
    k[0, 0, :, 0] = -big
    k[0, 1, :, 0] = [-big, 0, -big, 0, 0]
    k[1, 0, :, 0] = -big
    k[1, 1, :, 0] = [0, big, 0, 0, 0]
    keep = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    scale = float(np.finfo(dtype).max) / 1e9
    return (*(a.astype(dtype) for a in (q, k, v, dout)), keep, scale)


def assert_overflow_pattern(out: np.ndarray, dq: np.ndarray, dk: np.ndarray,
                            dv: np.ndarray, v: np.ndarray) -> None:
    """The NaN of the rule where :func:`overflowing_attention` says, and nowhere else."""
    nan_out = np.zeros(out.shape, bool)
    nan_out[0, 0, 0] = nan_out[1, 1, 0] = True
    np.testing.assert_array_equal(np.isnan(out), nan_out, err_msg="out")
    nan_dq = nan_out  # the NaN rows' own gradient
    nan_dk = np.zeros(dk.shape, bool)
    nan_dk[0, 0] = True  # (b0, h0): every key takes a NaN dS from row 0
    nan_dk[1, 1, :3] = True  # (b1, h1): every kept key; a padded key's dS is 0
    nan_dv = np.zeros(dv.shape, bool)
    nan_dv[0, 0] = nan_dv[1, 1] = True  # P of row 0 is NaN at every key, padded ones too
    for name, g, pattern in (("dq", dq, nan_dq), ("dk", dk, nan_dk), ("dv", dv, nan_dv)):
        np.testing.assert_array_equal(np.isnan(g), pattern, err_msg=f"{name} NaN pattern")
        assert np.isfinite(g[~pattern]).all(), name
    tol = {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(out[0, 1, 0], v[0, 1, [1, 3, 4]].mean(axis=0), **tol)
    np.testing.assert_allclose(out[1, 0, 0], v[1, 0, [3, 4]].mean(axis=0), **tol)


def assert_padded_pattern(out: np.ndarray, dq: np.ndarray, dk: np.ndarray, dv: np.ndarray,
                          v: np.ndarray, dout: np.ndarray) -> None:
    """No NaN; sequence 1 (every key padded) attends uniformly with dq = dk = 0 exactly."""
    assert all(np.isfinite(a).all() for a in (out, dq, dk, dv))
    tol = {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(out[1], np.broadcast_to(v[1].mean(axis=1, keepdims=True),
                                                       out[1].shape), **tol)
    np.testing.assert_allclose(dv[1], np.broadcast_to(dout[1].mean(axis=1, keepdims=True),
                                                      dv[1].shape), **tol)
    np.testing.assert_array_equal(dq[1], 0)
    np.testing.assert_array_equal(dk[1], 0)
    np.testing.assert_array_equal(dk[0][:, [2, 4]], 0)


ATTENTION_CASES = {"fully padded sequence": padded_attention,
                   "scores overflowing to inf": overflowing_attention}


def torch_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, dout: np.ndarray,
                    keep: np.ndarray, scale: float) -> tuple[np.ndarray, ...]:
    """(out, dq, dk, dv): masked_fill(scale·QKᵀ, padded, finfo.min), softmax, ·V, in torch."""
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    s = (qt @ kt.transpose(-1, -2)) * scale
    s = s.masked_fill(torch.tensor(keep == 0)[:, None, None, :], torch.finfo(s.dtype).min)
    out = torch.softmax(s, dim=-1) @ vt
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), qt.grad.numpy(), kt.grad.numpy(), vt.grad.numpy()


def assert_case_pattern(case: str, out: np.ndarray, grads: tuple, v: np.ndarray,
                        dout: np.ndarray) -> None:
    if case == "fully padded sequence":
        assert_padded_pattern(out, *grads, v, dout)
    else:
        assert_overflow_pattern(out, *grads, v)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_attention_follows_the_rule(dtype, case):
    q, k, v, dout, keep, scale = ATTENTION_CASES[case](dtype)
    ref_out, ref_probs = att.attention_forward_reference(q, k, v, keep, scale)
    out, probs = att.attention_forward(q, k, v, keep, scale)
    grads = att.attention_backward(dout, q, k, v, probs, keep, scale)
    results = {
        "reference": (ref_out, *att.attention_backward_reference(dout, q, k, v, ref_probs, keep,
                                                                 scale)),
        "numba": (out, *grads),
        "torch": torch_attention(q, k, v, dout, keep, scale),
    }
    all_agree(results, dtype, tol_scale=10)
    same(probs, ref_probs, dtype, "probs")
    assert_case_pattern(case, out, grads, v, dout)


@pytest.mark.parametrize("naive", [False, True], ids=["flash", "naive"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_cuda_attention_follows_the_rule(kc, naive, dtype, case):
    """The online softmax of the flash kernel: uniform for a fully padded row, NaN for a row of
    -inf, and no NaN from a -inf first key."""
    q, k, v, dout, keep, scale = ATTENTION_CASES[case](dtype)
    forward = kc.attention_forward_naive if naive else kc.attention_forward
    backward = kc.attention_backward_naive if naive else kc.attention_backward
    out, row_max, row_sum = forward(q, k, v, keep, scale)
    grads = backward(dout, q, k, v, out, row_max, row_sum, keep, scale)
    ref_out, ref_probs = att.attention_forward_reference(q, k, v, keep, scale)
    all_agree({"reference": (ref_out, *att.attention_backward_reference(dout, q, k, v, ref_probs,
                                                                        keep, scale)),
               "cuda": (out, *grads)}, dtype, tol_scale=10)
    assert_case_pattern(case, out, grads, v, dout)


# --- cross-entropy: the composite's NaN on valid rows --------------------------------------------
CE_LOGITS = np.array([
    [-inf, -inf, -inf, -inf],  # all -inf: NaN loss and gradient
    [-inf, 0.5, -inf, 2.0],  # partly -inf, the target finite: finite (+inf with smoothing)
    [0.0, inf, 1.0, -inf],  # +inf: NaN
    [1.0, -inf, 0.0, 2.0],  # the target at -inf: loss +inf, gradient finite
    [0.0, nan, 1.0, 2.0],  # NaN: NaN
])
CE_TARGET = np.array([1, 3, 0, 1, 2])


def torch_cross_entropy(z: np.ndarray, t: np.ndarray, dloss: np.ndarray, smoothing: float,
                        ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray]:
    zt = torch.tensor(z, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(zt, torch.tensor(t), reduction="none",
                                             ignore_index=ignore_index,
                                             label_smoothing=smoothing)
    loss.backward(torch.tensor(dloss))
    return loss.detach().numpy(), zt.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_of_non_finite_logits_matches_the_composite(dtype, smoothing,
                                                                  restore_backend):
    z = CE_LOGITS.astype(dtype)
    dloss = rng_like((5,), dtype, 7)
    loss, zmax, lsum = ce.cross_entropy_forward(z, CE_TARGET, -100, smoothing)
    rloss, rmax, rlsum = ce.cross_entropy_forward_reference(z, CE_TARGET, -100, smoothing)
    minigrad.set_backend("numpy")
    zt = minigrad.tensor(z, requires_grad=True)
    engine = F.cross_entropy(zt, CE_TARGET, reduction="none", label_smoothing=smoothing)
    engine.backward(dloss)
    all_agree({
        "composite (numpy backend)": (engine.data, zt.grad),
        "kernel": (loss, ce.cross_entropy_backward(dloss, z, CE_TARGET, zmax, lsum, -100,
                                                   smoothing)),
        "reference": (rloss, ce.cross_entropy_backward_reference(dloss, z, CE_TARGET, rmax,
                                                                 rlsum, -100, smoothing)),
        "torch": torch_cross_entropy(z, CE_TARGET, dloss, smoothing),
    }, dtype)
    assert np.isnan(loss).tolist() == [True, False, True, False, True]
    assert loss[3] == inf and (loss[1] == inf) == (smoothing > 0)


def test_cross_entropy_kernel_gives_an_ignored_row_zero_loss_and_gradient_whatever_its_logits():
    """As for every ignored row, the kernel never reads it (torch's loss is 0 too)."""
    z, t = CE_LOGITS.copy(), np.full(5, -100)
    loss, zmax, lsum = ce.cross_entropy_forward(z, t)
    np.testing.assert_array_equal(loss, 0)
    np.testing.assert_array_equal(ce.cross_entropy_backward(np.ones(5), z, t, zmax, lsum), 0)
    np.testing.assert_array_equal(torch_cross_entropy(z, t, np.ones(5), 0.0)[0], 0)


def test_composite_cross_entropy_gives_an_ignored_row_zero_loss_and_gradient(restore_backend):
    minigrad.set_backend("numpy")
    z = minigrad.tensor(CE_LOGITS.copy(), requires_grad=True)
    loss = F.cross_entropy(z, np.full(5, -100), reduction="none")
    loss.backward(np.ones(5))
    np.testing.assert_array_equal(loss.data, 0)
    np.testing.assert_array_equal(z.grad, 0)


# --- through the engine: set_backend("numpy") and set_backend("numba") agree ---------------------
def engine_run(name: str, fn: Callable, arrays: list[np.ndarray], upstream: np.ndarray,
               calls: list[str]) -> tuple[tuple[np.ndarray, ...], list[str]]:
    """((output, gradient of each input), the kernels called) under backend ``name``;
    ``calls`` is the list the test's ``watch_kernels`` appends to."""
    calls.clear()
    minigrad.set_backend(name)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(upstream)
    return (out.data, *(t.grad for t in tensors)), list(calls)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROW_SETS)
def test_engine_softmax_has_the_same_nan_pattern_on_both_backends(dtype, rows, watch_kernels,
                                                                  restore_backend):
    x, rows_nan = ROW_SETS[rows]
    x = x.astype(dtype)
    dy = rng_like(x.shape, dtype, 2)

    def softmax(t):
        return F.softmax(t, dim=-1)

    calls: list[str] = []
    watch_kernels(calls.append)
    composite, composite_calls = engine_run("numpy", softmax, [x], dy, calls)
    fused, fused_calls = engine_run("numba", softmax, [x], dy, calls)
    assert composite_calls == [] and fused_calls == ["softmax forward", "softmax backward"]
    all_agree({"numpy backend": composite, "numba backend": fused,
               "torch": torch_softmax(x, dy)}, dtype)
    assert_rule_without_mask(fused[0], rows_nan, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_engine_attention_is_the_same_on_both_backends(dtype, case, watch_kernels,
                                                       restore_backend):
    q, k, v, dout, keep, scale = ATTENTION_CASES[case](dtype)

    def attention(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, key_padding_mask=keep == 0, scale=scale)

    calls: list[str] = []
    watch_kernels(calls.append)
    composite, composite_calls = engine_run("numpy", attention, [q, k, v], dout, calls)
    fused, fused_calls = engine_run("numba", attention, [q, k, v], dout, calls)
    assert composite_calls == [] and fused_calls == ["attention forward", "attention backward"]
    all_agree({"numpy backend": composite, "numba backend": fused}, dtype, tol_scale=10)
    assert_case_pattern(case, fused[0], fused[1:], v, dout)
