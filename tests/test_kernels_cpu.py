"""The Numba CPU kernels (minigrad.kernels.cpu): each against its oracles, forward and backward.

Every kernel is checked three ways, over hypothesis-drawn shapes (odd sizes, sizes that are not
multiples of the 8-lane unrolling or of the matmul tiles) in float32 and float64:

* against its naive reference beside it (``*_reference``, plain NumPy);
* against the engine's NumPy path, the composite of minigrad ops the kernel will replace, with
  its gradients from minigrad's autograd (optimizers: against torch.optim and minigrad.optim).
  Each ``*_engine`` helper runs under ``set_backend("numpy")`` (:func:`numpy_backend`): under
  the default "numba" backend those ops would call the very kernel under test, and compare it
  with itself. ``test_engine_references_never_call_the_kernels`` fails if one does;
* backward against central differences of the forward, in float64.

Run it twice: as is, and with ``NUMBA_DISABLE_JIT=1`` (the loops as plain Python; the drawn
sizes then shrink so the suite stays fast).
"""

import contextlib
import math
from collections.abc import Iterator

import numba
import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from minigrad.kernels.cpu import attention as att
from minigrad.kernels.cpu import cross_entropy as ce
from minigrad.kernels.cpu import gelu as ge
from minigrad.kernels.cpu import int8 as i8
from minigrad.kernels.cpu import layernorm as ln
from minigrad.kernels.cpu import matmul as mm
from minigrad.kernels.cpu import optim as opt
from minigrad.kernels.cpu import softmax as sm
from minigrad.kernels.cpu import vecmath

import minigrad
import minigrad.nn.functional as F
from minigrad import optim

JIT = not numba.config.DISABLE_JIT
MAX = 37 if JIT else 13  # the largest size drawn for a row-like dimension
DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}

dims = st.integers(1, MAX)
small = st.integers(1, 4)
seeds = st.integers(0, 2**16)


def close(actual, expected, dtype, scale=1.0):
    """assert_allclose at the dtype's tolerance; ``scale`` widens atol for large values."""
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def tensor(a, requires_grad=True):
    return minigrad.tensor(np.array(a), requires_grad=requires_grad)


@contextlib.contextmanager
def numpy_backend() -> Iterator[None]:
    """The engine's NumPy composites inside the block (or the decorated function), whatever the
    backend was, and that backend again after: the reference a kernel is checked against."""
    previous = minigrad.get_backend()
    minigrad.set_backend("numpy")
    try:
        yield
    finally:
        minigrad.set_backend(previous)


def keep_mask(rng, n, s, all_masked_row=True):
    """A (n, s) 1/0 mask with about a third masked and, when n > 1, one fully masked row."""
    mask = (rng.random((n, s)) > 0.3).astype(np.int64)
    if all_masked_row and n > 1:
        mask[rng.integers(n)] = 0
    return mask


def central_difference(f, args, i, dy, eps=1e-6):
    """∂(Σ f(*args)·dy)/∂args[i] by central differences; f returns an array."""
    x = args[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        f_plus = float((f(*args) * dy).sum())
        x[idx] = orig - eps
        f_minus = float((f(*args) * dy).sum())
        x[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradcheck(f, args, grads, dy):
    """Each analytic gradient in ``grads`` (one per arg, None to skip) against f's differences."""
    for i, g in enumerate(grads):
        if g is not None:
            numeric = central_difference(f, args, i, dy)
            np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7,
                                       err_msg=f"gradient of argument {i}")


# --- vecmath: the SIMD-friendly exp and erf ----------------------------------------------------
@numba.njit(cache=True)
def _apply(fn_id, x):
    y = np.empty_like(x)
    for i in range(x.size):
        y[i] = vecmath.exp(x[i]) if fn_id == 0 else vecmath.erf(x[i])
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("fn_id", "oracle", "max_ulp"), [
    (0, np.exp, 1.5), (1, scipy.special.erf, 8)])
def test_vecmath_within_a_few_ulp(dtype, fn_id, oracle, max_ulp):
    lim = 80 if fn_id == 0 else 10
    x = np.linspace(-lim, lim, 20001 if JIT else 801).astype(dtype)
    y = _apply(fn_id, x)
    exact = oracle(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    assert np.max(np.abs(y - exact) / ulp) <= (max_ulp if dtype == np.float32 else 2)
    # beyond their ranges: exp underflows to 0 and saturates, erf reaches ±1, NaN passes
    ends = np.array([-1e4, 1e4, np.nan], dtype=dtype)
    y = _apply(fn_id, ends)
    assert np.isnan(y[2])
    if fn_id == 0:
        assert y[0] == 0 and np.isfinite(y[1]) and y[1] > 1e38
    else:
        assert y[0] == -1 and y[1] == 1


# --- softmax ----------------------------------------------------------------------------------
@numpy_backend()
def softmax_engine(x, scale, mask, dy):
    """The engine's path: scale, masked_fill with finfo.min, F.softmax; y and dx by autograd."""
    xt = tensor(x)
    s = xt * scale
    if mask is not None:
        pad = sm._broadcast_mask(mask, x.ndim) == 0
        s = s.masked_fill(np.broadcast_to(pad, x.shape), float(np.finfo(x.dtype).min))
    y = F.softmax(s, dim=-1)
    y.backward(dy)
    return y.data, xt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@given(n=small, a=small, q=dims, s=dims, masked=st.booleans(), seed=seeds)
def test_softmax_matches_reference_and_engine(dtype, n, a, q, s, masked, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, a, q, s)) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    mask = keep_mask(rng, n, s) if masked else None
    scale = 1 / math.sqrt(s)

    y = sm.softmax_forward(x, scale, mask)
    dx = sm.softmax_backward(y, dy, scale, mask)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
    close(y, sm.softmax_forward_reference(x, scale, mask), dtype)
    close(dx, sm.softmax_backward_reference(y, dy, scale, mask), dtype)
    y_engine, dx_engine = softmax_engine(x, scale, mask, dy)
    close(y, y_engine, dtype)
    close(dx, dx_engine, dtype)


def test_softmax_fully_masked_row_is_uniform_with_zero_gradient():
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    mask = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]])
    y = sm.softmax_forward(x, 0.5, mask)
    np.testing.assert_array_equal(y[0][:, [1, 4]], 0)
    np.testing.assert_allclose(y[1], 0.2)
    dx = sm.softmax_backward(y, np.ones_like(y) + x, 0.5, mask)
    np.testing.assert_array_equal(dx[1], 0)
    np.testing.assert_array_equal(dx[0][:, [1, 4]], 0)


def test_softmax_2d_rows_without_mask():
    x = np.random.default_rng(1).standard_normal((7, 11)).astype(np.float32)
    close(sm.softmax_forward(x), sm.softmax_forward_reference(x), np.float32)


def test_softmax_gradcheck():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 2, 9))
    mask = np.array([[1, 1, 0, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0]])
    dy = rng.standard_normal(x.shape)
    y = sm.softmax_forward(x, 0.7, mask)
    gradcheck(lambda x: sm.softmax_forward(x, 0.7, mask), [x],
              [sm.softmax_backward(y, dy, 0.7, mask)], dy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_stable_at_1e4(dtype):
    x = np.array([[[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4, -1e4, -1e4]]], dtype=dtype)
    y = sm.softmax_forward(x, 1.0, np.array([[1, 1, 1, 1]]))
    assert np.isfinite(y).all()
    close(y, sm.softmax_forward_reference(x.astype(np.float64)), dtype)
    dx = sm.softmax_backward(y, np.ones_like(y), 1.0)
    assert np.isfinite(dx).all()


# --- LayerNorm --------------------------------------------------------------------------------
@numpy_backend()
def layernorm_engine(x, w, b, eps, dy):
    """F.layer_norm over the last dim; (y, dx, dw, db) by autograd."""
    xt, wt, bt = tensor(x), tensor(w), tensor(b)
    out = F.layer_norm(xt, x.shape[-1], wt, bt, eps)
    out.backward(dy)
    return out.data, xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@given(m=small, r=dims, h=dims, seed=seeds)
def test_layernorm_matches_reference_and_engine(dtype, m, r, h, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, r, h)) * 2 + 1).astype(dtype)
    w, b = (rng.standard_normal(h).astype(dtype) for _ in range(2))
    dy = rng.standard_normal(x.shape).astype(dtype)

    y, mean, rstd = ln.layernorm_forward(x, w, b, 1e-5)
    dx, dw, db = ln.layernorm_backward(dy, x, w, mean, rstd)
    assert mean.shape == rstd.shape == (m, r) and y.dtype == dx.dtype == dw.dtype == dtype
    ry, rmean, rrstd = ln.layernorm_forward_reference(x, w, b, 1e-5)
    for actual, expected in zip((y, mean, rstd), (ry, rmean, rrstd), strict=True):
        close(actual, expected, dtype)
    for actual, expected in zip((dx, dw, db),
                                ln.layernorm_backward_reference(dy, x, w, rmean, rrstd),
                                strict=True):
        close(actual, expected, dtype, scale=m * r)

    ey, *egrads = layernorm_engine(x, w, b, 1e-5, dy)
    close(y, ey, dtype)
    for actual, expected in zip((dx, dw, db), egrads, strict=True):
        close(actual, expected, dtype, scale=m * r)


def test_layernorm_gradcheck():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 11))
    w, b = rng.standard_normal(11), rng.standard_normal(11)
    dy = rng.standard_normal(x.shape)
    _, mean, rstd = ln.layernorm_forward(x, w, b)
    gradcheck(lambda x, w, b: ln.layernorm_forward(x, w, b)[0], [x, w, b],
              ln.layernorm_backward(dy, x, w, mean, rstd), dy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layernorm_stable_at_1e4(dtype):
    rng = np.random.default_rng(4)
    x = (1e4 + rng.standard_normal((4, 64))).astype(dtype)
    w, b = np.ones(64, dtype), np.zeros(64, dtype)
    y, mean, rstd = ln.layernorm_forward(x, w, b)
    exact = ln.layernorm_forward_reference(x.astype(np.float64), w, b)[0]
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, exact, atol=5e-3 if dtype == np.float32 else 1e-9)
    dx, _, _ = ln.layernorm_backward(np.ones_like(x) * 1e4, x, w, mean, rstd)
    assert np.isfinite(dx).all()


# --- GELU and bias + GELU ---------------------------------------------------------------------
@numpy_backend()
def bias_gelu_engine(x, b, approximate, dy):
    """F.gelu(x + b); (y, dx, db) by autograd."""
    xt, bt = tensor(x), tensor(b)
    out = F.gelu(xt + bt, approximate=approximate)
    out.backward(dy)
    return out.data, xt.grad, bt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(m=dims, f=dims, seed=seeds)
def test_gelu_matches_reference_and_engine(dtype, approximate, m, f, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, f)) * 3).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)

    # For x < 0, 1 + erf(x/√2) and 1 + tanh(u) lose float32 digits in the oracles (the kernel's
    # tanh form avoids it): an absolute error of a few ulp of 1 times |x|.
    s = 5.0
    y = ge.gelu_forward(x, approximate)
    dx = ge.gelu_backward(x, dy, approximate)
    close(y, ge.gelu_forward_reference(x, approximate), dtype, s)
    close(dx, ge.gelu_backward_reference(x, dy, approximate), dtype, s)
    yb = ge.bias_gelu_forward(x, b, approximate)
    dxb, db = ge.bias_gelu_backward(x, b, dy, approximate)
    close(yb, ge.bias_gelu_forward_reference(x, b, approximate), dtype, s)
    rdx, rdb = ge.bias_gelu_backward_reference(x, b, dy, approximate)
    close(dxb, rdx, dtype, s)
    close(db, rdb, dtype, s * m)

    ey, edx, edb = bias_gelu_engine(x, b, approximate, dy)
    close(yb, ey, dtype, s)
    close(dxb, edx, dtype, s)
    close(db, edb, dtype, s * m)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradcheck(approximate):
    rng = np.random.default_rng(5)
    x, b = rng.standard_normal((3, 7)) * 2, rng.standard_normal(7)
    dy = rng.standard_normal(x.shape)
    gradcheck(lambda x: ge.gelu_forward(x, approximate), [x],
              [ge.gelu_backward(x, dy, approximate)], dy)
    gradcheck(lambda x, b: ge.bias_gelu_forward(x, b, approximate), [x, b],
              ge.bias_gelu_backward(x, b, dy, approximate), dy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_stable_at_1e4(dtype, approximate):
    # exact values underflow to 0 for x ≪ 0; vecmath.exp saturates at e⁸⁸, leaving < 1e-20
    x = np.array([-1e4, -30.0, 30.0, 1e4], dtype=dtype)
    np.testing.assert_allclose(ge.gelu_forward(x, approximate), [0, 0, 30, 1e4], atol=1e-20)
    np.testing.assert_allclose(ge.gelu_backward(x, np.ones_like(x), approximate), [0, 0, 1, 1],
                               atol=1e-20)


# --- attention --------------------------------------------------------------------------------
@numpy_backend()
def attention_engine(q, k, v, mask, scale, drop, dout):
    """QKᵀ·scale, masked_fill, softmax, dropout, ·V with minigrad ops; (out, dq, dk, dv)."""
    qt, kt, vt = tensor(q), tensor(k), tensor(v)
    s = (qt @ kt.transpose(-1, -2)) * scale
    if mask is not None:
        pad = np.broadcast_to((mask == 0)[:, None, None, :], s.shape)
        s = s.masked_fill(pad, float(np.finfo(q.dtype).min))
    p = F.softmax(s, dim=-1)
    if drop is not None:
        p = p * drop
    out = p @ vt
    out.backward(dout)
    return out.data, qt.grad, kt.grad, vt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@given(b=small, a=small, s=st.integers(1, 19 if JIT else 10), d=st.integers(1, 19 if JIT else 10),
       masked=st.booleans(), dropout=st.booleans(), strided=st.booleans(), seed=seeds)
def test_attention_matches_reference_and_engine(dtype, b, a, s, d, masked, dropout, strided,
                                                seed):
    rng = np.random.default_rng(seed)
    if strided:  # heads as the free view of a (B, S, H) projection, as the model makes them
        q, k, v = (rng.standard_normal((b, s, a * d)).astype(dtype)
                   .reshape(b, s, a, d).transpose(0, 2, 1, 3) for _ in range(3))
    else:
        q, k, v = (rng.standard_normal((b, a, s, d)).astype(dtype) for _ in range(3))
    mask = keep_mask(rng, b, s) if masked else None
    drop = ((rng.random((b, a, s, s)) > 0.25) / 0.75).astype(dtype) if dropout else None
    dout = rng.standard_normal((b, a, s, d)).astype(dtype)

    out, probs = att.attention_forward(q, k, v, mask, None, drop)
    grads = att.attention_backward(dout, q, k, v, probs, mask, None, drop)
    scale = 1 / math.sqrt(d)
    rout, rprobs = att.attention_forward_reference(q, k, v, mask, scale, drop)
    close(out, rout, dtype, scale=s)
    inference_out, no_probs = att.attention_forward(q, k, v, mask, None, drop, keep_probs=False)
    assert no_probs is None
    np.testing.assert_array_equal(inference_out, out)  # the same arithmetic, P kept in cache
    close(probs, rprobs, dtype)
    for g, rg in zip(grads, att.attention_backward_reference(dout, q, k, v, rprobs, mask, scale,
                                                             drop), strict=True):
        assert g.shape == q.shape and g.dtype == dtype
        close(g, rg, dtype, scale=s)
    eout, *egrads = attention_engine(q, k, v, mask, scale, drop, dout)
    close(out, eout, dtype, scale=s)
    for g, eg in zip(grads, egrads, strict=True):
        close(g, eg, dtype, scale=s)


def test_attention_heads_merge_without_a_copy():
    q = np.random.default_rng(6).standard_normal((2, 3, 5, 4))
    out, _ = att.attention_forward(q, q, q)
    merged = out.transpose(0, 2, 1, 3).reshape(2, 5, 12)
    assert np.shares_memory(merged, out)


def test_attention_gradcheck():
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, 1, 4, 3)) for _ in range(3))
    mask = np.array([[1, 1, 0, 1], [0, 0, 0, 0]])
    drop = (rng.random((2, 1, 4, 4)) > 0.3) / 0.7
    dout = rng.standard_normal(q.shape)
    _, probs = att.attention_forward(q, k, v, mask, 0.6, drop)
    gradcheck(lambda q, k, v: att.attention_forward(q, k, v, mask, 0.6, drop)[0], [q, k, v],
              att.attention_backward(dout, q, k, v, probs, mask, 0.6, drop), dout)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_stable_at_1e4(dtype):
    rng = np.random.default_rng(8)
    q = (rng.standard_normal((1, 2, 6, 4)) * 1e4).astype(dtype)
    out, probs = att.attention_forward(q, q, q, np.array([[1, 1, 1, 1, 0, 0]]))
    grads = att.attention_backward(np.ones_like(out), q, q, q, probs, np.array([[1] * 4 + [0] * 2]))
    assert np.isfinite(out).all() and np.isfinite(probs).all()
    assert all(np.isfinite(g).all() for g in grads)


# --- cross-entropy ----------------------------------------------------------------------------
@numpy_backend()
def cross_entropy_engine(z, t, smoothing, dloss):
    """F.cross_entropy per row (ignore_index -100); (loss, dz) by autograd."""
    zt = tensor(z)
    out = F.cross_entropy(zt, t, ignore_index=-100, reduction="none", label_smoothing=smoothing)
    out.backward(dloss)
    return out.data, zt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@given(m=dims, c=st.integers(1, 3 * MAX), smoothing=st.sampled_from([0.0, 0.1]), seed=seeds)
def test_cross_entropy_matches_reference_and_engine(dtype, m, c, smoothing, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((m, c)) * 3).astype(dtype)
    t = rng.integers(0, c, m)
    t[rng.random(m) < 0.3] = -100
    dloss = rng.standard_normal(m).astype(dtype)

    loss, zmax, lsum = ce.cross_entropy_forward(z, t, -100, smoothing)
    dz = ce.cross_entropy_backward(dloss, z, t, zmax, lsum, -100, smoothing)
    rloss, rmax, rlsum = ce.cross_entropy_forward_reference(z, t, -100, smoothing)
    close(loss, rloss, dtype)
    close(zmax, rmax, dtype)
    close(lsum, rlsum, dtype)
    close(dz, ce.cross_entropy_backward_reference(dloss, z, t, rmax, rlsum, -100, smoothing),
          dtype)

    eloss, edz = cross_entropy_engine(z, t, smoothing, dloss)
    close(loss, eloss, dtype)
    close(dz, edz, dtype)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_gradcheck(smoothing):
    rng = np.random.default_rng(9)
    z = rng.standard_normal((4, 6)) * 2
    t = np.array([0, 5, -100, 2])
    dloss = rng.standard_normal(4)
    _, zmax, lsum = ce.cross_entropy_forward(z, t, -100, smoothing)
    gradcheck(lambda z: ce.cross_entropy_forward(z, t, -100, smoothing)[0], [z],
              [ce.cross_entropy_backward(dloss, z, t, zmax, lsum, -100, smoothing)], dloss)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_stable_at_1e4(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    t = np.array([1, 0, 2])
    loss, zmax, lsum = ce.cross_entropy_forward(z, t, -100, 0.1)
    dz = ce.cross_entropy_backward(np.ones(3, dtype), z, t, zmax, lsum, -100, 0.1)
    z64 = z.astype(np.float64)
    rloss, rmax, rlsum = ce.cross_entropy_forward_reference(z64, t, -100, 0.1)
    assert np.isfinite(loss).all() and np.isfinite(dz).all()
    np.testing.assert_allclose(loss, rloss, rtol=1e-6)
    np.testing.assert_allclose(
        dz, ce.cross_entropy_backward_reference(np.ones(3), z64, t, rmax, rlsum, -100, 0.1),
        atol=1e-6)


# --- optimizers -------------------------------------------------------------------------------
OPT_SIZES = [(3, 5), (opt.PARALLEL_MIN_SIZE + 7,)]  # the one-thread and the parallel path


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SIZES)
@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_matches_torch_over_steps(dtype, shape, decoupled):
    rng = np.random.default_rng(10)
    hyper = {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}
    p = rng.standard_normal(shape).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ref_p, ref_m, ref_v = p.copy(), m.copy(), v.copy()
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([tp], **hyper)
    for step in range(1, 6):
        g = rng.standard_normal(shape).astype(dtype)
        opt.adam_step(p, g, m, v, hyper["lr"], *hyper["betas"], hyper["eps"],
                      hyper["weight_decay"], step, decoupled)
        opt.adam_step_reference(ref_p, g, ref_m, ref_v, hyper["lr"], *hyper["betas"],
                                hyper["eps"], hyper["weight_decay"], step, decoupled)
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), **TOL[dtype])
        np.testing.assert_allclose(p, ref_p, **TOL[dtype])
        np.testing.assert_allclose(m, topt.state[tp]["exp_avg"].numpy(), **TOL[dtype])
        np.testing.assert_allclose(v, topt.state[tp]["exp_avg_sq"].numpy(), **TOL[dtype])


@numpy_backend()
def optimizer_engine_step(optimizer, params, grads):
    """One step of a minigrad optimizer on the given gradients, by its NumPy code."""
    for param, g in zip(params, grads, strict=True):
        param.grad = g.copy()
    optimizer.step()


def test_adamw_step_matches_minigrad_optim():
    rng = np.random.default_rng(11)
    p = rng.standard_normal((4, 6)).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    mp = minigrad.tensor(p.copy(), requires_grad=True)
    mopt = optim.AdamW([mp], lr=3e-3, weight_decay=0.01)
    for step in range(1, 4):
        g = rng.standard_normal(p.shape).astype(np.float32)
        opt.adamw_step(p, g, m, v, 3e-3, 0.9, 0.999, 1e-8, 0.01, step)
        optimizer_engine_step(mopt, [mp], [g])
        close(p, mp.data, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SIZES)
@pytest.mark.parametrize(("momentum", "dampening", "nesterov", "weight_decay"), [
    (0.0, 0.0, False, 0.0), (0.0, 0.0, False, 0.1), (0.9, 0.0, False, 0.0),
    (0.9, 0.3, False, 0.05), (0.9, 0.0, True, 0.05)])
def test_sgd_matches_torch_over_steps(dtype, shape, momentum, dampening, nesterov,
                                      weight_decay):
    rng = np.random.default_rng(12)
    p = rng.standard_normal(shape).astype(dtype)
    buf = np.zeros_like(p) if momentum else None
    ref_p, ref_buf = p.copy(), None if buf is None else buf.copy()
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.05, momentum=momentum, dampening=dampening,
                           nesterov=nesterov, weight_decay=weight_decay)
    for step in range(1, 6):
        g = rng.standard_normal(shape).astype(dtype)
        opt.sgd_step(p, g, buf, 0.05, momentum, dampening, weight_decay, nesterov, step)
        opt.sgd_step_reference(ref_p, g, ref_buf, 0.05, momentum, dampening, weight_decay,
                               nesterov, step)
        tp.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), **TOL[dtype])
        np.testing.assert_allclose(p, ref_p, **TOL[dtype])


# --- matmul -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("version", list(mm.VERSIONS))
@given(m=st.integers(1, 2 * MAX), k=st.integers(1, 300 if JIT else 17),
       n=st.integers(1, 300 if JIT else 17), seed=seeds)
@settings(max_examples=10)
def test_matmul_versions_match_blas(dtype, version, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = mm.matmul(a, b, version)
    assert c.dtype == dtype and c.shape == (m, n)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    close(c, mm.matmul_reference(a, b), dtype, scale=k)
    close(c, exact, dtype, scale=k)


@pytest.mark.parametrize("version", list(mm.VERSIONS))
def test_matmul_crosses_tile_edges(version):
    """Sizes past the tiles and the 2 × 4 register tile (rows too, with the JIT on)."""
    rng = np.random.default_rng(13)
    a = rng.standard_normal((mm.MB + 3 if JIT else 3, mm.KC + 5)).astype(np.float32)
    b = rng.standard_normal((mm.KC + 5, mm.NB + 3)).astype(np.float32)
    close(mm.matmul(a, b, version), a.astype(np.float64) @ b, np.float32, scale=mm.KC)


# --- int8 matmul: exact, so compared with ==, never a tolerance --------------------------------
def int8_arrays(rng, m, k, n):
    """a (m, k) and b (k, n) int8 over the whole range -128..127, with the extremes forced in."""
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    if k:
        a.flat[0], b.flat[-1] = -128, 127
    return a, b


@given(m=st.integers(1, 2 * i8.MB + 5 if JIT else 9), k=st.integers(0, 300 if JIT else 17),
       n=st.integers(1, 2 * i8.NB + 5 if JIT else 9), seed=seeds)
@settings(max_examples=15)
def test_int8_matmul_equals_its_reference_exactly(m, k, n, seed):
    """Ragged sizes (past the MB × NB blocks with the JIT on; K = 0 too): every int32 equal."""
    a, b = int8_arrays(np.random.default_rng(seed), m, k, n)
    c = i8.int8_matmul(a, b)
    assert c.dtype == np.int32 and c.shape == (m, n)
    np.testing.assert_array_equal(c, i8.int8_matmul_reference(a, b))


def test_int8_matmul_takes_strided_and_transposed_operands():
    """A linear layer passes Wᵀ, a transposed view; a sliced activation is not contiguous."""
    rng = np.random.default_rng(21)
    a, _ = int8_arrays(rng, 2 * i8.MB + 3 if JIT else 7, 45, 1)
    w = rng.integers(-127, 128, (i8.NB + 9 if JIT else 5, 45), dtype=np.int8)  # (out, in)
    expected = i8.int8_matmul_reference(a, w.T)
    np.testing.assert_array_equal(i8.int8_matmul(a, w.T), expected)
    np.testing.assert_array_equal(i8.int8_matmul(a[::2], w.T), expected[::2])


@pytest.mark.parametrize(("x", "y"), [(-128, -128), (-128, 127), (127, 127)])
def test_int8_matmul_at_the_largest_k_does_not_overflow(x, y):
    """At K = MAX_K every product at an extreme sums to the edge of int32, exactly: 131071·2¹⁴ =
    2,147,467,264 for (−128)·(−128), the largest sum there is. One more row of K is refused."""
    a = np.full((2 if JIT else 1, i8.MAX_K), x, dtype=np.int8)
    b = np.full((i8.MAX_K, 3 if JIT else 1), y, dtype=np.int8)
    c = i8.int8_matmul(a, b)
    assert (c == i8.MAX_K * x * y).all()  # Python integers: the exact sum
    assert i8.MAX_K * 128 * 128 <= np.iinfo(np.int32).max < (i8.MAX_K + 1) * 128 * 128
    with pytest.raises(ValueError, match=f"K = {i8.MAX_K + 1} could overflow"):
        i8.int8_matmul(np.zeros((1, i8.MAX_K + 1), np.int8), np.zeros((i8.MAX_K + 1, 1), np.int8))


# --- the engine references are the NumPy path, never the kernels -----------------------------
class KernelCalledError(Exception):
    """Raised by a kernel that an engine reference must not reach."""


def test_engine_references_never_call_the_kernels(watch_kernels):
    """With every kernel the registry hands out made to raise, and the backend set to
    "numba": each ``*_engine`` helper still
    computes, by the NumPy composites under :func:`numpy_backend`, and leaves the backend as it
    found it; while the same helper without numpy_backend (``__wrapped__``) does reach a kernel.
    So a helper that stops switching to "numpy" would compare a kernel with itself, and fails
    here."""
    def trap(name):
        raise KernelCalledError(name)

    watch_kernels(trap)
    rng = np.random.default_rng(14)
    x, dy = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((2, 1, 3, 4))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    param = minigrad.tensor(rng.standard_normal(4), requires_grad=True)
    references = {
        softmax_engine: (x, 0.5, np.array([[1, 1, 0, 1], [0, 0, 0, 0]]), dy),
        layernorm_engine: (x, w, b, 1e-5, dy),
        bias_gelu_engine: (x, b, "none", dy),
        attention_engine: (x, x, x, None, 0.5, None, dy),
        cross_entropy_engine: (x[0, 0], np.array([1, -100, 3]), 0.1, dy[0, 0, :, 0]),
        optimizer_engine_step: (optim.AdamW([param], lr=1e-3), [param], [w]),
    }
    previous = minigrad.get_backend()
    minigrad.set_backend("numba")
    try:
        for helper, args in references.items():
            with pytest.raises(KernelCalledError):
                helper.__wrapped__(*args)
            helper(*args)
            assert minigrad.get_backend() == "numba", helper.__name__
    finally:
        minigrad.set_backend(previous)


# --- bad input gets a clear error -------------------------------------------------------------
def test_errors_name_shapes_and_dtypes():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(TypeError, match="float16"):
        sm.softmax_forward(x.astype(np.float16))
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        sm.softmax_forward(x, 1.0, np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"float32.*float64"):
        ln.layernorm_forward(x, np.ones(4), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        ln.layernorm_forward(x, np.ones(5, np.float32), np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="approximate"):
        ge.gelu_forward(x, "sigmoid")
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        ce.cross_entropy_forward(x[0, :2], np.array([0, 4]))
    with pytest.raises(ValueError, match=r"q \(2, 3, 4\)"):
        att.attention_forward(x, x, x)
    with pytest.raises(ValueError, match="in place"):
        opt.adamw_step(x.T, x.T, x.T, x.T, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match=r"a \(2, 3\) and b \(4, 4\)"):
        mm.matmul(np.zeros((2, 3), np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="a int8 and b float32"):
        i8.int8_matmul(np.zeros((2, 3), np.int8), np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"a \(2, 3\) and b \(4, 4\)"):
        i8.int8_matmul(np.zeros((2, 3), np.int8), np.zeros((4, 4), np.int8))
