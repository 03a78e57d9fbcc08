"""Every CUDA kernel, fast and naive, against NumPy, run on the CPU by numba's CUDA simulator.

CI has no GPU. With ``NUMBA_ENABLE_CUDASIM=1``, numba.cuda runs a kernel as one Python thread
per CUDA thread, with real shared memory and ``syncthreads``: slow (a 64×64 matmul takes
seconds), so the shapes are tiny, chosen to cross every tile edge: sizes that are not multiples
of the tiles (ragged edges), more than one tile per dimension, rows of length 1, 31, 33 and 70,
fully padded rows. ``tests/test_gpu.py`` runs the same checks at real sizes on a GPU.

The simulator must be switched on before numba.cuda is first imported in the process. The
``kc`` fixture (conftest.py's ``simulated_cuda_kernels``) does that on first use and then imports
``minigrad.kernels.cuda``; nothing else in the suite imports numba.cuda (the GPU tests do it
inside their bodies, and are deselected by default), so this works alone and inside the whole
suite. The setting stays on for the rest of the process.

The last test compiles every kernel for an H100 (sm_90) in a subprocess, without the simulator:
the simulator would accept Python that Numba cannot compile for a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

RNG = np.random.default_rng(20240607)
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


@pytest.fixture(scope="module")
def kc(simulated_cuda_kernels: types.ModuleType) -> types.ModuleType:
    return simulated_cuda_kernels


def randn(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def close(actual: np.ndarray, expected: np.ndarray, dtype: type, what: str = "") -> None:
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOL[dtype])


def keep_mask(batch: int, keys: int, padded_row: int | None = None) -> np.ndarray:
    """A (B, S) 1/0 mask: random padding, key 0 always kept, and one batch element all padding."""
    mask = (RNG.random((batch, keys)) < 0.7).astype(np.int64)
    mask[:, 0] = 1
    if padded_row is not None:
        mask[padded_row] = 0
    return mask


# --- NumPy references, in float64 -----------------------------------------------------------
def softmax_ref(x: np.ndarray, scale: float, mask: np.ndarray | None) -> np.ndarray:
    s = scale * x.astype(np.float64)
    if mask is not None:
        keep = (mask != 0).reshape(mask.shape[:1] + (1,) * (x.ndim - 2) + mask.shape[1:])
        s = np.where(keep, s, np.finfo(x.dtype).min)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward_ref(y: np.ndarray, dy: np.ndarray, scale: float,
                         mask: np.ndarray | None) -> np.ndarray:
    y, dy = y.astype(np.float64), dy.astype(np.float64)
    dx = scale * y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    if mask is not None:
        keep = (mask != 0).reshape(mask.shape[:1] + (1,) * (y.ndim - 2) + mask.shape[1:])
        dx = np.where(keep, dx, 0.0)
    return dx


def layernorm_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, dy: np.ndarray,
                  eps: float = 1e-5) -> tuple[np.ndarray, ...]:
    """(y, mean, rstd, dx, dw, db) in float64."""
    x, w, b, dy = (a.astype(np.float64) for a in (x, w, b, dy))
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * w
    dx = rstd * (g - g.mean(axis=-1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return (xhat * w + b, mean[..., 0], rstd[..., 0], dx, (dy * xhat).sum(axis=rows),
            dy.sum(axis=rows))


def attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None,
                  scale: float, dout: np.ndarray, attn_mask: np.ndarray | None = None,
                  attn_bias: np.ndarray | None = None, is_causal: bool = False
                  ) -> tuple[np.ndarray, ...]:
    """(o, m, l, dq, dk, dv) in float64, by materialising the (S, S) matrices: m and l are the
    rows' max and Σ e^(s - m)."""
    most_negative = np.finfo(q.dtype).min
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    q, k, v, dout = (a.astype(np.float64) for a in (q, k, v, dout))
    s = scale * q @ k.swapaxes(-1, -2)  # (B, A, S, S)
    if attn_bias is not None:
        s = s + attn_bias
    keep = np.ones(s.shape, bool) if mask is None else (mask != 0)[:, None, None, :]
    if attn_mask is not None:
        keep = keep & attn_mask
    if is_causal:
        keep = keep & np.tri(s.shape[-1], dtype=bool)
    s = np.where(keep, s, most_negative)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - m)
    p = e / e.sum(axis=-1, keepdims=True)
    dp = dout @ v.swapaxes(-1, -2)
    ds = np.where(keep, p * (dp - (dp * p).sum(axis=-1, keepdims=True)), 0.0)
    return (p @ v, m[..., 0], e.sum(axis=-1), scale * ds @ k, scale * ds.swapaxes(-1, -2) @ q,
            p.swapaxes(-1, -2) @ dout)


# --- SGEMM ----------------------------------------------------------------------------------
# A multi-tile shape per version: more than one tile of C in both M and N, and a ragged K
# (v5: three slices of K, so that both shared-memory stages are written and the first reused).
MULTI_TILE = {1: (18, 17, 20), 2: (18, 17, 20), 3: (65, 66, 9), 4: (129, 130, 9),
              5: (129, 130, 20)}


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (5, 7, 3), (17, 9, 13)], ids=str)
def test_sgemm_matches_numpy_on_ragged_shapes(kc, version, mnk):
    m, n, k = mnk
    a, b = randn(m, k), randn(k, n)
    close(kc.SGEMM_VERSIONS[version](a, b), (a.astype(np.float64) @ b).astype(np.float32),
          np.float32, f"sgemm v{version} {mnk}")


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_sgemm_crosses_tile_edges_in_float64(kc, version):
    m, n, k = MULTI_TILE[version]
    a, b = randn(m, k, dtype=np.float64), randn(k, n, dtype=np.float64)
    close(kc.SGEMM_VERSIONS[version](a, b), a @ b, np.float64, f"sgemm v{version}")


# Small v5 configurations (few threads, so the simulator is quick), each over several tiles of C
# and several slices of K: another slice width, unroll factor and patch shape than the default.
V5_TILES = [(32, 32, 4, 4, 4, 2), (32, 64, 16, 8, 4, 4), (64, 32, 2, 8, 8, 1)]


@pytest.mark.parametrize("tile", V5_TILES, ids=lambda t: "x".join(map(str, t)))
def test_sgemm_v5_configurations_cross_tile_edges(kc, tile):
    from minigrad.kernels.cuda.sgemm import V5Tile

    a, b = randn(70, 37, dtype=np.float64), randn(37, 67, dtype=np.float64)
    close(kc.sgemm_v5(a, b, V5Tile(*tile)), a @ b, np.float64, f"sgemm v5 {tile}")


def test_sgemm_v5_rejects_a_tile_its_threads_cannot_split(kc):
    from minigrad.kernels.cuda.sgemm import V5Tile

    with pytest.raises(ValueError, match="does not split evenly"):
        kc.sgemm_v5(randn(4, 4), randn(4, 4), V5Tile(unroll=3))


def test_sgemm_fastest_is_v5(kc):
    assert kc.sgemm is kc.sgemm_v5


# --- softmax --------------------------------------------------------------------------------
KERNELS = ["warp", "block", "naive"]  # a warp per row (rows ≤ 1024), a block per row, reference


def pick(kc, monkeypatch, module: str, kernel: str, name: str) -> tuple:
    """(forward, backward) of ``module`` for ``kernel``: "block" is the path of rows too long for
    a warp's registers, forced here on short rows by allowing no columns per lane."""
    if kernel == "naive":
        return getattr(kc, f"{name}_forward_naive"), getattr(kc, f"{name}_backward_naive")
    if kernel == "block":
        monkeypatch.setattr(getattr(kc, module), "MAX_COLS_PER_LANE", 0)
    return getattr(kc, f"{name}_forward"), getattr(kc, f"{name}_backward")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("length", [1, 31, 33, 70])
def test_softmax_forward_and_backward_with_scale_and_mask(kc, monkeypatch, kernel, length):
    x, dy = randn(2, 3, length), randn(2, 3, length)  # 6 rows: the warp kernel's 2nd block
    mask = keep_mask(2, length, padded_row=1)  # batch element 1: every key padded, uniform rows
    forward, backward = pick(kc, monkeypatch, "softmax", kernel, "softmax")
    y = forward(x, 0.125, mask)
    close(y, softmax_ref(x, 0.125, mask).astype(np.float32), np.float32, "y")
    np.testing.assert_allclose(y[1], 1.0 / length, rtol=1e-6)
    close(backward(y, dy, 0.125, mask), softmax_backward_ref(y, dy, 0.125, mask)
          .astype(np.float32), np.float32, "dx")


@pytest.mark.parametrize("kernel", KERNELS)
def test_softmax_float64_without_mask(kc, monkeypatch, kernel):
    x, dy = randn(3, 70, dtype=np.float64), randn(3, 70, dtype=np.float64)
    forward, backward = pick(kc, monkeypatch, "softmax", kernel, "softmax")
    y = forward(x)
    close(y, softmax_ref(x, 1.0, None), np.float64, "y")
    close(backward(y, dy), softmax_backward_ref(y, dy, 1.0, None), np.float64, "dx")


@pytest.mark.parametrize("kernel", ["warp", "block"])
def test_softmax_of_huge_logits_is_finite(kc, monkeypatch, kernel):
    x = np.array([[1e30, -1e30, 0.0, 3e38]], dtype=np.float32)
    forward, _ = pick(kc, monkeypatch, "softmax", kernel, "softmax")
    np.testing.assert_array_equal(forward(x), [[0.0, 0.0, 0.0, 1.0]])


# --- LayerNorm ------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", [(3, 1), (2, 3, 31), (5, 70), (33,)], ids=str)
def test_layernorm_forward_and_backward(kc, monkeypatch, kernel, shape):
    x, dy = randn(*shape) * 3 + 1, randn(*shape)
    w, b = randn(shape[-1]), randn(shape[-1])
    forward, backward = pick(kc, monkeypatch, "layernorm", kernel, "layernorm")
    y, mean, rstd = forward(x, w, b)
    expected = [e.astype(np.float32) for e in layernorm_ref(x, w, b, dy)]
    for name, got, want in zip(("y", "mean", "rstd"), (y, mean, rstd), expected, strict=False):
        close(got, want, np.float32, name)
    for name, got, want in zip(("dx", "dw", "db"), backward(dy, x, w, mean, rstd), expected[3:],
                               strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=name)


@pytest.mark.parametrize("kernel", KERNELS)
def test_layernorm_float64(kc, monkeypatch, kernel):
    x, dy = randn(5, 33, dtype=np.float64), randn(5, 33, dtype=np.float64)
    w, b = randn(33, dtype=np.float64), randn(33, dtype=np.float64)
    forward, backward = pick(kc, monkeypatch, "layernorm", kernel, "layernorm")
    y, mean, rstd = forward(x, w, b)
    expected = layernorm_ref(x, w, b, dy)
    for name, got, want in zip(("y", "mean", "rstd", "dx", "dw", "db"),
                               (y, mean, rstd, *backward(dy, x, w, mean, rstd)), expected,
                               strict=True):
        close(got, want, np.float64, name)


@pytest.mark.parametrize("kernel", ["warp", "block"])
def test_layernorm_backward_sums_several_rows_per_partial_row(kc, monkeypatch, kernel):
    """With fewer blocks (block kernel) or warps (warp kernel) than rows, each walks rows
    p, p + P... and sums their dw, db; here 5 rows meet 2 blocks, or one block of 4 warps that
    make two trips (rows 0-3, then row 4 with three spare warps) and add their sums in shared
    memory."""
    if kernel == "block":
        monkeypatch.setattr(kc.layernorm, "MAX_COLS_PER_LANE", 0)
        monkeypatch.setattr(kc.layernorm, "BACKWARD_BLOCKS", 2)
    else:
        monkeypatch.setattr(kc.layernorm, "BACKWARD_WARPS", 4)
        monkeypatch.setattr(kc.layernorm, "ROWS_PER_WARP", 1)
    x, dy = randn(5, 7, dtype=np.float64), randn(5, 7, dtype=np.float64)
    w, b = randn(7, dtype=np.float64), randn(7, dtype=np.float64)
    _, mean, rstd = kc.layernorm_forward(x, w, b)
    for name, got, want in zip(("dx", "dw", "db"), kc.layernorm_backward(dy, x, w, mean, rstd),
                               layernorm_ref(x, w, b, dy)[3:], strict=True):
        close(got, want, np.float64, name)


def test_column_sum_over_more_partial_rows_than_one_pass_of_loads(kc):
    """600 partial rows: each of a column's 32 threads sums 19 rows, in 3 groups of 8 loads."""
    part = randn(2, 600, 3, dtype=np.float64)
    from numba import cuda
    out = cuda.device_array((2, 3), dtype=np.float64)
    kc.layernorm._column_sum(kc.precision.FLOAT64)[(1, 2), (32, kc.layernorm.COLUMN_SPLIT)](
        cuda.to_device(part), out)
    close(out.copy_to_host(), part.sum(axis=1), np.float64, "column sums")


# --- attention ------------------------------------------------------------------------------
ATTENTION_CASES = [
    # (B, A, S, D), dtype, the batch element with every key padded
    ((1, 1, 1, 4), np.float32, None),
    ((2, 1, 5, 3), np.float32, 1),  # a fully padded sequence: m = finfo.min, l = S
    ((1, 2, 70, 8), np.float32, None),  # 70 keys: two 64-row query tiles, three 32-key blocks
    ((2, 2, 33, 5), np.float64, 0),
    ((1, 1, 9, 64), np.float32, None),  # BERT's head size: the tiles the GPU runs
]


def check_attention(kc, naive: bool, q, k, v, dout, mask, scale, **masks) -> None:
    """Forward (o, m, l) and backward (dq, dk, dv) against :func:`attention_ref`."""
    dtype = q.dtype.type
    forward = kc.attention_forward_naive if naive else kc.attention_forward
    backward = kc.attention_backward_naive if naive else kc.attention_backward
    out, row_max, row_sum = forward(q, k, v, mask, scale, **masks)
    o_ref, m_ref, l_ref, *grads_ref = attention_ref(q, k, v, mask, scale, dout, **masks)
    close(out, o_ref.astype(dtype), dtype, "out")
    close(row_max, m_ref.astype(dtype), dtype, "row max")
    close(row_sum, l_ref.astype(dtype), dtype, "row sum")
    for name, got, want in zip(("dq", "dk", "dv"),
                               backward(dout, q, k, v, out, row_max, row_sum, mask, scale,
                                        **masks),
                               grads_ref, strict=True):
        np.testing.assert_allclose(got, want, err_msg=name, rtol=TOL[dtype]["rtol"] * 10,
                                   atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize(("shape", "dtype", "padded_row"), ATTENTION_CASES,
                         ids=[f"{c[0]}-{c[1].__name__}" for c in ATTENTION_CASES])
def test_attention_forward_and_backward_with_padding(kc, naive, shape, dtype, padded_row):
    batch, _, length, _ = shape
    q, k, v, dout = (randn(*shape, dtype=dtype) for _ in range(4))
    check_attention(kc, naive, q, k, v, dout, keep_mask(batch, length, padded_row), 0.3)


MASK_KINDS = ["bool", "float", "causal", "all"]


def score_masks(kind: str, b: int, a: int, s: int, dtype: type) -> dict:
    """attn_mask / attn_bias / is_causal of one kind, (B|1, A|1, S, S) as the kernels take
    them; the bool mask leaves query 1 with no key (a uniform row), the float one holds -inf
    and the HF-style finfo.min (a row of ties at finfo.min: P = 1/l, not 1)."""
    masks: dict = {}
    if kind in ("bool", "all"):
        attend = RNG.random((1, a, s, s)) < 0.6
        attend[..., 0] = True
        attend[:, :, min(1, s - 1)] = False
        masks["attn_mask"] = attend
    if kind in ("float", "all"):
        bias = RNG.standard_normal((b, 1, s, s)).astype(dtype)
        bias[RNG.random(bias.shape) < 0.2] = -np.inf
        bias[..., 0] = 0.5
        bias[0, :, s - 1] = np.finfo(dtype).min  # every key of the last query: HF's mask
        masks["attn_bias"] = bias
    if kind in ("causal", "all"):
        masks["is_causal"] = True
    return masks


@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize(("shape", "dtype"), [((2, 2, 6, 4), np.float32),
                                              ((1, 2, 70, 3), np.float64)], ids=str)
def test_attention_with_bool_float_and_causal_masks(kc, naive, kind, shape, dtype):
    """Every mask kind, with key padding too, against the float64 reference: the rows' max and
    sum exactly where the reference has them (a fully masked row: m = finfo.min, l = S)."""
    b, a, s, _ = shape
    q, k, v, dout = (randn(*shape, dtype=dtype) for _ in range(4))
    check_attention(kc, naive, q, k, v, dout, keep_mask(b, s), 0.4,
                    **score_masks(kind, b, a, s, dtype))


def test_attention_default_scale_and_no_mask(kc):
    q, k, v, dout = (randn(1, 2, 6, 4, dtype=np.float64) for _ in range(4))
    check_attention(kc, False, q, k, v, dout, None, None)  # scale 1/√4


def test_attention_mask_shapes_and_dtypes_are_checked(kc):
    q = randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(2, 2, 4, 4\), expected "
                       r"\(B\|1, A\|1, S, S\) with \(B, A, S\) = \(2, 3, 4\)"):
        kc.attention_forward(q, q, q, attn_mask=np.ones((2, 2, 4, 4), bool))
    with pytest.raises(TypeError, match="attn_bias has dtype float64, expected float32"):
        kc.attention_forward(q, q, q, attn_bias=np.zeros((1, 1, 4, 4)))


# --- AdamW ----------------------------------------------------------------------------------
@pytest.mark.parametrize("naive", [False, True], ids=["fused", "naive"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adamw_matches_torch_optim_adamw_over_three_steps(kc, naive, dtype):
    step_fn = kc.adamw_step_naive if naive else kc.adamw_step
    p = randn(3, 7, dtype=dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    theirs = torch.tensor(p, requires_grad=True)
    opt = torch.optim.AdamW([theirs], lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    for step in (1, 2, 3):
        g = randn(3, 7, dtype=dtype)
        step_fn(p, g, m, v, lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1,
                step=step)
        theirs.grad = torch.from_numpy(g)
        opt.step()
    state = opt.state[theirs]
    close(p, theirs.detach().numpy(), dtype, "param")
    close(m, state["exp_avg"].numpy(), dtype, "exp_avg")
    close(v, state["exp_avg_sq"].numpy(), dtype, "exp_avg_sq")


def test_adamw_grid_stride_loop_covers_more_elements_than_threads(kc, monkeypatch):
    monkeypatch.setattr(kc.adamw, "MAX_BLOCKS", 1)  # 256 threads for 600 elements
    p, g = randn(600, dtype=np.float64), randn(600, dtype=np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    expected = p * (1 - 1e-3 * 1e-2) - 1e-3 * g / (np.abs(g) + 1e-8)  # step 1: m̂ = g, v̂ = g²
    kc.adamw_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 1)
    close(p, expected, np.float64, "param")


# --- device arrays in, device arrays out ----------------------------------------------------
def test_device_arrays_stay_on_the_device(kc):
    from numba import cuda

    a, b = randn(5, 3), randn(3, 4)
    c = kc.sgemm(cuda.to_device(a), cuda.to_device(b))
    assert not isinstance(c, np.ndarray) and hasattr(c, "copy_to_host")
    close(c.copy_to_host(), (a.astype(np.float64) @ b).astype(np.float32), np.float32)
    x = cuda.to_device(randn(2, 9))
    y = kc.softmax_forward(x)
    assert y.shape == (2, 9) and not isinstance(y, np.ndarray)
    p, g = cuda.to_device(randn(4)), cuda.to_device(randn(4))
    m, v = cuda.to_device(np.zeros(4, np.float32)), cuda.to_device(np.zeros(4, np.float32))
    before = p.copy_to_host()
    kc.adamw_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 1)
    assert not np.array_equal(p.copy_to_host(), before)  # updated in place, on the device


# --- bad input ------------------------------------------------------------------------------
def test_bad_input_names_the_shapes_and_dtypes(kc):
    with pytest.raises(ValueError, match=r"A \(2, 3\) and B \(4, 5\)"):
        kc.sgemm(randn(2, 3), randn(4, 5))
    with pytest.raises(TypeError, match="a float32, b float64"):
        kc.sgemm(randn(2, 3), randn(3, 2, dtype=np.float64))
    with pytest.raises(TypeError, match="int64"):
        kc.softmax_forward(np.arange(4))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4\), expected \(B, S\) = \(2, 4\)"):
        kc.softmax_forward(randn(2, 3, 4), mask=np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"x \(2, 5\) and w \(4,\)"):
        kc.layernorm_forward(randn(2, 5), randn(4), randn(4))
    with pytest.raises(ValueError, match=r"k has shape \(1, 1, 3, 4\), expected \(1, 1, 2, 4\)"):
        kc.attention_forward(randn(1, 1, 2, 4), randn(1, 1, 3, 4), randn(1, 1, 2, 4))
    with pytest.raises(ValueError, match="D=1024 in float64 does not fit"):
        kc.attention_forward(*(randn(1, 1, 2, 1024, dtype=np.float64) for _ in range(3)))
    with pytest.raises(ValueError, match="step counts from 1"):
        kc.adamw_step(randn(2), randn(2), randn(2), randn(2), 1e-3, 0.9, 0.999, 1e-8, 0, 0)


def test_non_contiguous_device_arrays_are_refused(kc):
    from numba import cuda

    x = cuda.to_device(randn(4, 6)).T
    with pytest.raises(ValueError, match=r"x of shape \(6, 4\) must be C-contiguous"):
        kc.softmax_forward(x)


# --- compiled for a real GPU ----------------------------------------------------------------
def nvvm_available() -> bool:
    """Whether numba finds libNVVM (the CUDA toolkit's compiler library), without a GPU."""
    probe = "from numba.cuda.cudadrv import nvvm; nvvm.NVVM()"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-c", probe], env=env,
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not nvvm_available(), reason="needs the CUDA toolkit's libNVVM "
                    "(e.g. /usr/local/cuda or CUDA_HOME); no GPU needed")
def test_every_float32_kernel_compiles_for_sm90_without_float64_arithmetic():
    """Every kernel compiles to H100 code, and no float32 kernel computes in float64."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    run = subprocess.run([sys.executable, "-m", "minigrad.kernels.cuda.ptx", "--arch", "90",
                          "--dtype", "float32", "--json"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    reports = json.loads(run.stdout)
    compiled = {r["kernel"] for r in reports}
    expected = {
        "sgemm_v1_kernel", "sgemm_v2_kernel", "sgemm_v3_kernel", "sgemm_v4_kernel",
        "sgemm_v5_kernel",
        "softmax_forward_warp_kernel", "softmax_backward_warp_kernel",
        "softmax_forward_block_kernel", "softmax_backward_block_kernel",
        "softmax_forward_naive_kernel", "softmax_backward_naive_kernel",
        "layernorm_forward_warp_kernel", "layernorm_backward_warp_kernel",
        "layernorm_forward_block_kernel", "layernorm_backward_block_kernel",
        "column_sum_kernel", "layernorm_forward_naive_kernel",
        "layernorm_backward_dx_naive_kernel", "layernorm_backward_dwdb_naive_kernel",
        "attention_forward_kernel", "attention_backward_dq_kernel",
        "attention_backward_dkdv_kernel", "attention_forward_naive_kernel",
        "attention_backward_dq_naive_kernel", "attention_backward_dkdv_naive_kernel",
        "adamw_kernel", "decay_kernel", "first_moment_kernel", "second_moment_kernel",
        "update_kernel",
    }
    assert compiled == expected
    promoted = {r["kernel"]: r["f64_instructions"] for r in reports if r["f64_instructions"]}
    assert promoted == {}, f"float64 instructions in float32 kernels: {promoted}"
