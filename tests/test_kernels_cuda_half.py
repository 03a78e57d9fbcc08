"""The CUDA softmax, LayerNorm and attention-forward kernels in float16 and bfloat16, under
numba's CUDA simulator (see tests/test_kernels_cuda.py for the simulator and its tiny shapes).

Every kernel, fast and naive, is checked against a float64 NumPy reference computed from the
*same* half inputs (so the inputs' own rounding is not an error): only the kernel's arithmetic
is measured. The tolerances follow the output's precision:

* a half output: |got - ref| ≤ ulp·|ref| + atol, one ulp of the output dtype (2⁻¹⁰ for
  float16, 2⁻⁷ for bfloat16). A kernel that sums in float32 rounds its result once, at most
  half an ulp; its float32 sums are off by ~1e-7 relative, which can tip a value sitting on a
  rounding boundary the other way, never past one ulp. atol = 2⁻²⁰·max|ref| covers the float32
  rounding of results that cancel to near 0 (LayerNorm's x̂·w + b, softmax's dy - Σ dy·y), and
  float16's subnormal spacing (2⁻²⁴) the results below its normal range;
* a float32 output (LayerNorm's mean and rstd, attention's row max and sum): float32's
  tolerance, rtol 2e-5, atol 2e-6·max|ref|, as in tests/test_kernels_cuda.py;
* attention also forms each score in float32 before its softmax: a score of magnitude |s| is
  off by up to 2⁻²⁴·|s|, which the softmax turns into a relative error of twice that in P, so
  o and l get that much more (:func:`attention_forward_ref`'s δ). It is ~1e-7 for ordinary
  scores and matters only for a row under a -65504 bias (HF's float16 mask), where δ ≈ 0.004.

The large cases show that these tolerances would catch a float16 accumulator: a row whose
float16 sum overflows 65504 (LayerNorm of values near 1100, a dot product of values near 40),
a long softmax row whose float16 running sum loses the addends' low bits, and scaled scores
that overflow float16 but not float32. For each, the test computes the float16-accumulated
answer and asserts that it fails the tolerance, then that the kernel passes it.

bfloat16 arrays go in as ``ml_dtypes.bfloat16`` NumPy arrays (and come out so); a device array
of uint16 bit patterns with ``bf16_bits=True`` is the same to the kernels (one test checks it).
The bit conversions are checked exhaustively against ml_dtypes. ``tests/test_gpu.py`` runs the
half kernels on a GPU (``-m gpu``), and the last test here (``-m slow``) compiles them for an
H100.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from minigrad.kernels import registry
from test_kernels_cuda import keep_mask, layernorm_ref, nvvm_available, pick, score_masks

from minigrad import backend

RNG = np.random.default_rng(20261205)
BF16 = np.dtype(ml_dtypes.bfloat16)
HALVES = [np.dtype(np.float16), BF16]
ULP = {np.dtype(np.float16): 2.0 ** -10, BF16: 2.0 ** -7}  # at 1.0: 2·(unit roundoff)
KERNELS = ["warp", "block", "naive"]


@pytest.fixture(scope="module")
def kc(simulated_cuda_kernels: types.ModuleType) -> types.ModuleType:
    return simulated_cuda_kernels


def randn(*shape: int, dtype: np.dtype = np.float32, scale: float = 1.0,
          shift: float = 0.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale + shift).astype(dtype)


def within(got: np.ndarray, ref: np.ndarray, dtype: np.dtype, inputs: Any = 0.0
           ) -> np.ndarray:
    """Where ``got`` (of ``dtype``, half or float32) is within that dtype's tolerance of the
    float64 ``ref`` (the module docstring); ``inputs``: an allowance for the rounding of the
    kernel's float32 inputs to its last step (attention's scores), broadcast to ref."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    peak = float(np.abs(ref).max()) if ref.size else 0.0
    if dtype in ULP:
        bound = ULP[dtype] * np.abs(ref) + 2.0 ** -20 * peak + 2.0 ** -24
    else:
        bound = 2e-5 * np.abs(ref) + 2e-6 * peak
    return np.abs(got - ref) <= bound + inputs


def close(got: np.ndarray, ref: np.ndarray, dtype: np.dtype, what: str, inputs: Any = 0.0
          ) -> None:
    assert np.dtype(got.dtype) == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    ok = within(got, ref, dtype, inputs)
    if not ok.all():
        worst = np.unravel_index(np.argmax(np.abs(got.astype(np.float64) - ref)), ref.shape)
        pytest.fail(f"{what} ({dtype}): {np.count_nonzero(~ok)} of {ok.size} outside the "
                    f"tolerance; worst at {worst}: {float(got[worst])} vs {ref[worst]}")


def f16_sum(a: np.ndarray) -> np.ndarray:
    """Σ over the last axis, one float16 addition after another: a float16 accumulator."""
    return np.cumsum(a.astype(np.float16), axis=-1, dtype=np.float16)[..., -1]


# --- NumPy references in float64, from the half inputs --------------------------------------
MOST_NEGATIVE = float(np.finfo(np.float32).min)  # a masked score: the compute dtype's


def softmax_ref(x: np.ndarray, scale: float, mask: np.ndarray | None) -> np.ndarray:
    s = scale * x.astype(np.float64)
    if mask is not None:
        keep = (mask != 0).reshape(mask.shape[:1] + (1,) * (x.ndim - 2) + mask.shape[1:])
        s = np.where(keep, s, MOST_NEGATIVE)
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


def attention_forward_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None,
                          scale: float, attn_mask: np.ndarray | None = None,
                          attn_bias: np.ndarray | None = None, is_causal: bool = False
                          ) -> tuple[np.ndarray, ...]:
    """(o, m, l, δ) in float64: the rows' max m and sum l = Σ e^(s - m), and δ = 2⁻²⁴·max|s|
    per row, half an ulp of float32 at the row's largest score: the kernels form each score in
    float32, so each is off by up to δ, and P = e^(s - m)/l by up to 2δ relative (both tiny,
    but for a row whose scores carry a bias of -65504, HF's mask in float16: δ ≈ 0.004)."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    s = scale * q @ k.swapaxes(-1, -2)  # (B, A, S, S)
    if attn_bias is not None:
        s = s + attn_bias.astype(np.float64)
    keep = np.ones(s.shape, bool) if mask is None else (mask != 0)[:, None, None, :]
    if attn_mask is not None:
        keep = keep & attn_mask
    if is_causal:
        keep = keep & np.tri(s.shape[-1], dtype=bool)
    delta = 2.0 ** -24 * np.abs(np.where(keep, s, 0.0)).max(axis=-1)  # (B, A, S)
    s = np.where(keep, s, MOST_NEGATIVE)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - m)
    return e @ v / e.sum(axis=-1, keepdims=True), m[..., 0], e.sum(axis=-1), delta


# --- bfloat16 bit patterns --------------------------------------------------------------------
def test_bf16_patterns_to_float32_match_ml_dtypes_for_all_65536(kc):
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = np.array([kc.precision.bf16_to_float32(b) for b in bits], dtype=np.float32)
    expected = bits.view(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))  # NaNs too


def test_float32_to_bf16_rounds_as_ml_dtypes_for_every_high_half(kc):
    """Every one of the 65536 high halves, with the low halves that decide the rounding: exact
    (0), just under half an ulp, the tie (to even), just over, and the largest (a carry into
    the exponent; the largest finite floats round to inf). NaNs become the quiet 0x7FC0."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    low = np.array([0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32)
    values = (high[:, None] | low).ravel().view(np.float32)
    got = np.array([kc.precision.float32_to_bf16(x) for x in values], dtype=np.uint16)
    with np.errstate(invalid="ignore"):
        expected = values.astype(ml_dtypes.bfloat16).view(np.uint16)
    mismatched = np.flatnonzero(got != expected)
    assert mismatched.size == 0, [(hex(values[i:i + 1].view(np.uint32)[0]), hex(got[i]),
                                   hex(expected[i])) for i in mismatched[:5]]


# --- softmax --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("length", [1, 33, 70])
def test_softmax_half_forward_and_backward(kc, monkeypatch, dtype, kernel, length):
    x, dy = randn(2, 3, length, dtype=dtype, scale=3), randn(2, 3, length, dtype=dtype)
    mask = keep_mask(2, length, padded_row=1)  # batch element 1: every key padded, uniform rows
    forward, backward = pick(kc, monkeypatch, "softmax", kernel, "softmax")
    y = forward(x, 0.125, mask)
    close(y, softmax_ref(x, 0.125, mask), dtype, "y")
    dx = backward(y, dy, 0.125, mask)
    close(dx, softmax_backward_ref(y, dy, 0.125, mask), dtype, "dx")


@pytest.mark.parametrize("kernel", ["warp", "naive"])
def test_softmax_long_row_needs_a_float32_sum(kc, monkeypatch, kernel):
    """S = 1024 scores in [-0.5, 0.5]: Σ e^(s - m) ≈ 780, where float16's ulp is 0.5, so a
    float16 running sum drops most of each addend's low bits; float32 does not."""
    x = RNG.uniform(-0.5, 0.5, (2, 1024)).astype(np.float16)
    ref = softmax_ref(x, 1.0, None)
    e = np.exp(x.astype(np.float64) - x.astype(np.float64).max(axis=-1, keepdims=True))
    in_f16 = (e / f16_sum(e)[:, None].astype(np.float64)).astype(np.float16)
    assert not within(in_f16, ref, np.dtype(np.float16)).all()  # the tolerance would catch it
    forward, _ = pick(kc, monkeypatch, "softmax", kernel, "softmax")
    close(forward(x), ref, np.dtype(np.float16), "y")


@pytest.mark.parametrize("kernel", KERNELS)
def test_softmax_scaled_scores_beyond_float16s_range(kc, monkeypatch, kernel):
    """4·x reaches ±2.4e5, past float16's 65504: the kernels scale in float32."""
    x = np.array([[60000.0, -60000.0, 0.0, 59000.0], [1.0, 2.0, 3.0, 4.0]], dtype=np.float16)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.float16(4) * x).all()
    forward, _ = pick(kc, monkeypatch, "softmax", kernel, "softmax")
    y = forward(x, 4.0)
    close(y, softmax_ref(x, 4.0, None), np.dtype(np.float16), "y")
    assert y[0, 0] == 1.0 and y[0, 3] == 0.0  # e^(4·(59008 - 60000)) underflows to 0


def test_softmax_takes_uint16_device_arrays_as_bfloat16_patterns(kc):
    from numba import cuda

    x = randn(3, 40, dtype=BF16)
    bits = cuda.to_device(x.view(np.uint16))
    y = kc.softmax_forward(bits, 0.5, bf16_bits=True)
    assert np.dtype(y.dtype) == np.uint16 and not isinstance(y, np.ndarray)
    close(y.copy_to_host().view(BF16), softmax_ref(x, 0.5, None), BF16, "y")
    with pytest.raises(TypeError, match=r"got x uint16"):  # integers, unless told otherwise
        kc.softmax_forward(bits)


# --- LayerNorm ------------------------------------------------------------------------------
def check_layernorm(kc, monkeypatch, kernel: str, x, w, b, dy) -> None:
    forward, backward = pick(kc, monkeypatch, "layernorm", kernel, "layernorm")
    y, mean, rstd = forward(x, w, b)
    y_ref, mean_ref, rstd_ref, dx_ref, dw_ref, db_ref = layernorm_ref(x, w, b, dy)
    f32, x_dtype, w_dtype = np.dtype(np.float32), np.dtype(x.dtype), np.dtype(w.dtype)
    close(y, y_ref, x_dtype, "y")
    close(mean, mean_ref, f32, "mean")
    close(rstd, rstd_ref, f32, "rstd")
    dx, dw, db = backward(dy, x, w, mean, rstd)
    close(dx, dx_ref, x_dtype, "dx")
    close(dw, dw_ref, w_dtype, "dw")
    close(db, db_ref, w_dtype, "db")


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("weights", ["half", "float32"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", [(3, 1), (2, 3, 31), (5, 40)], ids=str)
def test_layernorm_half_forward_and_backward(kc, monkeypatch, dtype, weights, kernel, shape):
    """x and dy in the half dtype; w and b in it too, or float32 (the master weights)."""
    w_dtype = dtype if weights == "half" else np.dtype(np.float32)
    x, dy = randn(*shape, dtype=dtype, scale=3, shift=1), randn(*shape, dtype=dtype)
    w, b = randn(shape[-1], dtype=w_dtype), randn(shape[-1], dtype=w_dtype)
    check_layernorm(kc, monkeypatch, kernel, x, w, b, dy)


@pytest.mark.parametrize("kernel", KERNELS)
def test_layernorm_of_large_values_needs_a_float32_sum(kc, monkeypatch, kernel):
    """Rows of 64 values near 1100: Σx ≈ 70400 overflows float16 (65504) to inf, and so the
    mean (and every output) of a float16 accumulator; float32 sums are exact to ~1e-7."""
    x = randn(3, 64, dtype=np.float16, scale=8, shift=1100)
    dy, w, b = randn(3, 64, dtype=np.float16), randn(64, dtype=np.float16), randn(
        64, dtype=np.float16)
    mean_ref = layernorm_ref(x, w, b, dy)[1]
    with np.errstate(over="ignore"):
        in_f16 = f16_sum(x) / np.float16(64)
    assert np.isinf(in_f16).all() and not within(in_f16, mean_ref, np.dtype(np.float16)).any()
    check_layernorm(kc, monkeypatch, kernel, x, w, b, dy)


def test_layernorm_rejects_mixed_precisions_other_than_float32_weights(kc):
    x = randn(2, 8, dtype=np.float16)
    with pytest.raises(TypeError, match=r"w and b must be of x's dtype \(float16\), or float32"):
        kc.layernorm_forward(x, randn(8, dtype=BF16), randn(8, dtype=BF16))
    with pytest.raises(TypeError, match=r"w and b must be of x's dtype \(float32\)"):
        kc.layernorm_forward(randn(2, 8), randn(8, dtype=np.float16), randn(8, dtype=np.float16))
    _, mean, rstd = kc.layernorm_forward(x, randn(8), randn(8))
    with pytest.raises(TypeError, match=r"mean has dtype float16, expected float32"):
        kc.layernorm_backward(x, x, randn(8), mean.astype(np.float16), rstd)


# --- attention forward ----------------------------------------------------------------------
def check_attention_forward(kc, naive: bool, q, k, v, mask, scale, **masks) -> None:
    forward = kc.attention_forward_naive if naive else kc.attention_forward
    out, row_max, row_sum = forward(q, k, v, mask, scale, **masks)
    o_ref, m_ref, l_ref, delta = attention_forward_ref(q, k, v, mask, scale, **masks)
    f32, v_peak = np.dtype(np.float32), float(np.abs(v.astype(np.float64)).max())
    close(out, o_ref, np.dtype(q.dtype), "out", 2 * delta[..., None] * v_peak)
    close(row_max, m_ref, f32, "row max")
    close(row_sum, l_ref, f32, "row sum", 2 * delta * l_ref)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize(("shape", "padded_row"), [((2, 1, 5, 3), 1), ((1, 1, 70, 8), None),
                                                   ((1, 1, 9, 64), None)], ids=str)
def test_attention_forward_half_with_padding(kc, dtype, naive, shape, padded_row):
    """A fully padded sequence (m = float32's finfo.min, l = S), 70 keys over two query tiles
    and three key tiles, and BERT's head size."""
    q, k, v = (randn(*shape, dtype=dtype) for _ in range(3))
    check_attention_forward(kc, naive, q, k, v, keep_mask(shape[0], shape[2], padded_row), 0.3)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("kind", ["bool", "float", "causal", "all"])
def test_attention_forward_half_with_bool_float_and_causal_masks(kc, dtype, naive, kind):
    """torch's masks; the float bias in q's dtype holds -inf and float16's / bfloat16's own
    most negative value (HF's mask in a half model)."""
    b, a, s, d = 2, 2, 6, 4
    q, k, v = (randn(b, a, s, d, dtype=dtype) for _ in range(3))
    masks = score_masks(kind, b, a, s, np.float32)
    if "attn_bias" in masks:
        bias = masks["attn_bias"]
        bias[0, :, s - 1] = float(ml_dtypes.finfo(dtype).min)
        masks["attn_bias"] = bias.astype(dtype)
    check_attention_forward(kc, naive, q, k, v, keep_mask(b, s), 0.4, **masks)


@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
def test_attention_scores_beyond_float16s_range(kc, naive):
    """q, k near 40 with D = 64: each q·k ≈ 1e5 overflows a float16 accumulator (65504); the
    kernels sum in float32 (scale 1, so the scores themselves are that large)."""
    q, k = (randn(1, 1, 8, 64, dtype=np.float16, shift=40) for _ in range(2))
    v = randn(1, 1, 8, 64, dtype=np.float16)
    with np.errstate(over="ignore"):
        assert np.isinf(f16_sum(q[0, 0, :, None, :] * k[0, 0, None, :, :])).all()
    check_attention_forward(kc, naive, q, k, v, None, 1.0)


def test_attention_backward_refuses_half_inputs_with_a_clear_error(kc):
    q = randn(1, 1, 4, 8, dtype=np.float16)
    out, row_max, row_sum = kc.attention_forward(q, q, q)
    with pytest.raises(TypeError, match=r"attention_backward: q, k, v, dout, out in half "
                                        r"precision: the backward kernels run in float32"):
        kc.attention_backward(q, q, q, q, out, row_max, row_sum)


def test_attention_half_bias_must_be_of_qs_dtype(kc):
    q = randn(1, 1, 4, 8, dtype=BF16)
    with pytest.raises(TypeError, match="attn_bias has dtype float16, expected bfloat16"):
        kc.attention_forward(q, q, q, attn_bias=np.zeros((1, 1, 4, 4), np.float16))


# --- the registry ---------------------------------------------------------------------------
def test_the_registry_hands_float16_cuda_arrays_to_the_half_kernels(monkeypatch):
    """On a GPU (faked here: no CuPy), softmax, layer_norm and attention take float16, and
    layer_norm float32 w and b beside a float16 x; other ops and other mixes run their
    references. On the CPU no kernel takes float16 or bfloat16."""
    cpu = {"softmax": registry.kernel("softmax", randn(3, dtype=np.float16)),
           "bf16": registry.kernel("softmax", randn(3, dtype=BF16))}
    assert cpu == {"softmax": None, "bf16": None}
    monkeypatch.setattr(backend, "device_of", lambda a: "cuda")
    monkeypatch.setattr(registry, "lookup", lambda op, device: f"{op} on {device}")
    h, f = randn(3, dtype=np.float16), randn(3)
    assert registry.kernel("softmax", h) == "softmax on cuda"
    assert registry.kernel("attention", h, h, h, None, h) == "attention on cuda"
    assert registry.kernel("layer_norm", h, h, h) == "layer_norm on cuda"
    assert registry.kernel("layer_norm", h, f, f) == "layer_norm on cuda"
    assert registry.kernel("layer_norm", f, h, h) is None  # a float32 x with float16 weights
    assert registry.kernel("attention", h, f, h) is None
    assert registry.kernel("gelu", h) is None  # no half GELU kernel
    assert registry.kernel("softmax", f) == "softmax on cuda"  # float32 as before


# --- compiled for a real GPU ----------------------------------------------------------------
@pytest.mark.slow  # about 35 s of compiling
@pytest.mark.skipif(not nvvm_available(), reason="needs the CUDA toolkit's libNVVM "
                    "(e.g. /usr/local/cuda or CUDA_HOME); no GPU needed")
def test_every_half_kernel_compiles_for_sm90_without_float64_arithmetic():
    """The simulator runs Python; this proves that Numba compiles the float16 conversions and
    the bfloat16 bit casts for an H100, with float32 arithmetic only."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    run = subprocess.run([sys.executable, "-m", "minigrad.kernels.cuda.ptx", "--arch", "90",
                          "--dtype", "float16", "bfloat16", "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    reports = json.loads(run.stdout)
    expected = {
        "softmax_forward_warp_kernel", "softmax_backward_warp_kernel",
        "softmax_forward_block_kernel", "softmax_backward_block_kernel",
        "softmax_forward_naive_kernel", "softmax_backward_naive_kernel",
        "layernorm_forward_warp_kernel", "layernorm_backward_warp_kernel",
        "layernorm_forward_block_kernel", "layernorm_backward_block_kernel",
        "column_sum_kernel", "layernorm_forward_naive_kernel",
        "layernorm_backward_dx_naive_kernel", "layernorm_backward_dwdb_naive_kernel",
        "attention_forward_kernel", "attention_forward_naive_kernel",
    }
    for dtype in ("float16", "bfloat16"):
        assert {r["kernel"] for r in reports if r["dtype"] == dtype} == expected, dtype
    promoted = {(r["kernel"], r["dtype"]): r["f64_instructions"] for r in reports
                if r["f64_instructions"]}
    assert promoted == {}, f"float64 instructions in half kernels: {promoted}"


# --- benchmarks/gpu.py's half-precision benches -----------------------------------------------
@pytest.mark.parametrize(("precision", "stored"), [("float32", np.float32),
                                                   ("float16", np.float16),
                                                   ("bfloat16", np.uint16)])
def test_gpu_benchmark_benches_run_in_every_precision_under_the_simulator(kc, monkeypatch,
                                                                          precision, stored):
    """benchmarks/gpu.py's softmax, LayerNorm and attention benches in float32, float16 and
    bfloat16 (stored as uint16 bits), at tiny shapes, every implementation called once. No CuPy
    here: NumPy stands in for it (the kernels copy host arrays in and out) and PyTorch's columns
    are left out. This checks that the half paths are wired (which implementations, which
    dtypes), not speed."""
    from test_gpu import load_bench

    bench = load_bench()
    for name, value in (("BATCH", 1), ("SEQ", 4), ("HEADS", 1), ("HEAD_DIM", 4), ("HIDDEN", 8)):
        monkeypatch.setattr(bench, name, value)

    class HostArrays(bench.Arrays):
        def __init__(self) -> None:  # no numba.cuda, no CuPy, no PyTorch
            self.cp, self.torch, self.rng = np, None, np.random.default_rng(0)

        def nb(self, a: np.ndarray) -> np.ndarray:
            return a

    arr = HostArrays()
    benches = (bench.softmax_bench(arr, kc, 1, precision)
               + bench.layernorm_bench(arr, kc, 2, precision)
               + bench.attention_bench(arr, kc, 1, 4, precision))
    expected = ["softmax forward", "softmax backward", "layernorm forward", "layernorm backward",
                "attention forward"] + (["attention backward"] if precision == "float32" else [])
    assert [b.kernel for b in benches] == expected
    impls = {"minigrad", "minigrad naive"} | (
        set() if precision == "bfloat16" else {"CuPy composite"})  # CuPy has no bfloat16
    for b in benches:
        assert b.precision == ("float32" if b.kernel == "attention backward" else precision)
        assert set(b.impls) == impls, b.kernel
        for impl, fn in b.impls.items():
            result = fn()
            first = result[0] if isinstance(result, tuple) else result
            if impl.startswith("minigrad"):
                assert first.dtype == stored, (b.kernel, impl, first.dtype)
