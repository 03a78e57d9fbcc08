"""The GPU suite, ``pytest -m gpu``: the CUDA kernels at real sizes on a real GPU, the whole op
battery on CuPy under both GPU backends (gradcheck in float64, and forward and gradients against
PyTorch CUDA), the engine's training step on the GPU (the same numbers under both backends and
on the CPU, every parameter and optimizer state on the device, and no host-device copy but the
batch and the loss, counted by the CUDA profiler), and a quick run of ``benchmarks/gpu.py``.

Deselected by default (pyproject's addopts). Run it in a process of its own, on a machine with
an NVIDIA GPU, CuPy, numba-cuda and a CUDA build of PyTorch::

    pytest -m gpu tests/test_gpu.py

Each test skips with the reason when CuPy, a GPU, numba.cuda or PyTorch CUDA is missing, or
when the engine cannot yet put tensors on the GPU.

Six tests here need no GPU and run by default: they check that ``benchmarks/gpu.py`` and
``benchmarks/gpu_sgemm_sweep.py`` say so and exit when there is no GPU (or, for the first, when
the simulator is on), that the CuPy composites of the first compute what PyTorch computes (run on
NumPy and PyTorch CPU), and that both write their reports.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from minigrad.gradcheck import BATTERY, case_shape, check_tolerance, compare_gradients

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "gpu.py"
SEEDS = (0, 1, 2)


def load_bench() -> types.ModuleType:
    """benchmarks/gpu.py as a module (importing it imports nothing heavy)."""
    if "gpu_bench" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_bench"] = module  # before running it: dataclasses look it up
        spec.loader.exec_module(module)
    return sys.modules["gpu_bench"]


def env_without_simulator() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}


def gpu_present() -> bool:
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


# --- needs no GPU: the benchmark script -----------------------------------------------------
@pytest.mark.skipif(gpu_present(), reason="a GPU is present: the benchmark would run")
def test_benchmark_without_a_gpu_says_so_and_exits_with_status_1():
    run = subprocess.run([sys.executable, str(BENCH)], env=env_without_simulator(),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 1
    assert "benchmarks/gpu.py: no GPU found:" in run.stderr
    assert run.stdout == ""


@pytest.mark.skipif(gpu_present(), reason="a GPU is present: the sweep would run")
def test_sgemm_sweep_without_a_gpu_says_so_and_exits_with_status_1():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_sgemm_sweep.py"),
                          "--shapes", "64x64x64"], env=env_without_simulator(),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 1
    assert "benchmarks/gpu_sgemm_sweep.py: no GPU found:" in run.stderr
    assert run.stdout == ""


def test_benchmark_refuses_the_simulator():
    run = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT,
                         env={**env_without_simulator(), "NUMBA_ENABLE_CUDASIM": "1"})
    assert run.returncode == 1
    assert "NUMBA_ENABLE_CUDASIM=1" in run.stderr


def test_benchmark_composites_compute_what_pytorch_computes():
    """The CuPy composites and PyTorch functions the kernels are timed against agree (here on
    NumPy and PyTorch CPU, in float64), so the benchmark compares like with like."""
    bench = load_bench()
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    keep = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    xt, keep_t = torch.tensor(x, requires_grad=True), torch.tensor(keep)
    yt = bench.torch_softmax(torch, xt, keep_t, 0.3)
    y = bench.composite_softmax_forward(np, x, keep, 0.3)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    (dx_t,) = torch.autograd.grad(yt, xt, torch.tensor(dy))
    np.testing.assert_allclose(bench.composite_softmax_backward(np, y, dy, keep, 0.3),
                               dx_t.numpy(), rtol=1e-10, atol=1e-14)

    h, w, b = rng.standard_normal((6, 8)), rng.standard_normal(8), rng.standard_normal(8)
    ht, wt, bt = (torch.tensor(a, requires_grad=True) for a in (h, w, b))
    out_t = torch.nn.functional.layer_norm(ht, (8,), wt, bt, 1e-12)
    out, mean, rstd = bench.composite_layernorm_forward(np, h, w, b)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10)
    dh = rng.standard_normal((6, 8))
    for ours, theirs in zip(bench.composite_layernorm_backward(np, dh, h, w, mean, rstd),
                            torch.autograd.grad(out_t, (ht, wt, bt), torch.tensor(dh)),
                            strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)

    q, k, v, do = (rng.standard_normal((2, 3, 5, 4)) for _ in range(4))
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    o_t = bench.torch_attention(torch, qt, kt, vt, keep_t, 0.5)
    o, p = bench.composite_attention_forward(np, q, k, v, keep, 0.5)
    np.testing.assert_allclose(o, o_t.detach().numpy(), rtol=1e-10)
    for ours, theirs in zip(bench.composite_attention_backward(np, do, q, k, v, p, keep, 0.5),
                            torch.autograd.grad(o_t, (qt, kt, vt), torch.tensor(do)),
                            strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)

    p0, g = rng.standard_normal(10), rng.standard_normal(10)
    p_np, m, v2 = p0.copy(), np.zeros(10), np.zeros(10)
    pt = torch.tensor(p0, requires_grad=True)
    optimizer = torch.optim.AdamW([pt], lr=1e-2, weight_decay=0.1)
    pt.grad = torch.tensor(g)
    optimizer.step()
    bench.composite_adamw(np, p_np, g, m, v2, 1e-2, 0.9, 0.999, 1e-8, 0.1, 1)
    np.testing.assert_allclose(p_np, pt.detach().numpy(), rtol=1e-12)


def test_benchmark_writes_json_markdown_and_a_chart(tmp_path):
    """The report writers, on a made-up report (its numbers are placeholders, not results)."""
    bench = load_bench()
    rows = [bench.Row("softmax forward", "(32, 12, 128, 128)", impl, ms=ms, host_ms=0.05,
                      rate=rate, unit="GB/s", percent=pct, percent_of="% of copy bandwidth")
            for impl, ms, rate, pct in (("minigrad", 2.0, 1.0, 10.0),
                                        ("CuPy composite", 4.0, 0.5, 5.0))]
    rows.append(bench.Row("attention forward", "(1, 1, 8, 8)", "PyTorch", note="failed: x"))
    steps = [bench.StepResult("minigrad", "cpu", 10.0, 3),
             bench.StepResult("minigrad", "cuda", None, 10, "not available: DeviceError: y")]
    report = {"date": "2000-01-01", "command": "test", "device": {"name": "Placeholder GPU 1"},
              "copy_gbps": 100.0, "kernels": [vars(r) for r in rows],
              "bert_step": [vars(s) for s in steps]}
    paths = bench.write_reports(report, tmp_path)
    assert [p.name for p in paths] == ["gpu_placeholder_gpu_1_2000-01-01.json",
                                       "gpu_placeholder_gpu_1_2000-01-01.md",
                                       "gpu_placeholder_gpu_1_2000-01-01.png"]
    assert json.loads(paths[0].read_text()) == report
    text = paths[1].read_text()
    assert "| softmax forward | (32, 12, 128, 128) | minigrad | 2.0000 |" in text
    assert "| minigrad | cuda | not available |" in text
    assert paths[2].stat().st_size > 10_000


def test_benchmark_report_sets_half_precision_times_against_float32(tmp_path):
    """A half-precision row gets a line of the "half against float32" table beside the same
    implementation's float32 row (placeholder numbers, not results)."""
    bench = load_bench()
    rows = [bench.Row("layernorm forward", "(4096, 768)", "minigrad", ms=ms, host_ms=0.05,
                      rate=rate, unit="GB/s", precision=precision)
            for precision, ms, rate in (("float32", 0.04, 630.0), ("float16", 0.025, 504.0),
                                        ("bfloat16", None, None))]
    rows.append(bench.Row("layernorm forward", "(4096, 768)", "CuPy composite", ms=0.08,
                          host_ms=0.05, rate=315.0, unit="GB/s"))  # the chart's baseline
    report = {"date": "2000-01-01", "command": "test", "device": {"name": "Placeholder GPU 2"},
              "copy_gbps": 100.0, "kernels": [vars(r) for r in rows], "bert_step": []}
    text = bench.write_reports(report, tmp_path)[1].read_text()
    assert "| layernorm forward (float16) | (4096, 768) | minigrad | 0.0250 |" in text
    assert ("| layernorm forward | (4096, 768) | minigrad | float16 | 0.0400 | 0.0250 | 0.62 | "
            "630.0 → 504.0 GB/s |") in text
    assert "| bfloat16 |" not in text  # not measured: no line


def test_sgemm_sweep_parses_its_configurations_and_writes_a_table():
    """The sweep's parsers and its Markdown table, on made-up rows (placeholders, not
    results); importing it imports nothing heavy."""
    spec = importlib.util.spec_from_file_location(
        "gpu_sgemm_sweep", ROOT / "benchmarks" / "gpu_sgemm_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    sys.modules["gpu_sgemm_sweep"] = sweep  # before running it: dataclasses look it up
    spec.loader.exec_module(sweep)

    def fields(*values: int) -> tuple[int, ...]:
        return values

    assert sweep.parse_tile("128x64x8/8x4/u2", fields) == (128, 64, 8, 8, 4, 2)
    assert all(len(sweep.parse_tile(config, fields)) == 6 for config in sweep.CONFIGS)
    with pytest.raises(ValueError, match="BMxBNxBK/TMxTN/uU"):
        sweep.parse_tile("128x128x8", fields)
    assert sweep.parse_shape("4096x3072x768") == (4096, 3072, 768)
    rows = [sweep.Row("8x8x8", "cuBLAS", "", ms=1.0, tflops=2.0, percent_of_cublas=100.0,
                      max_rel_error=0.0, within_tolerance=True),
            sweep.Row("8x8x8", "v5", "128x128x8/8x8/u2", ms=2.0, tflops=1.0,
                      percent_of_cublas=50.0, max_rel_error=1e-7, within_tolerance=True,
                      threads=256, registers=123, local_bytes=0, smem_bytes=16640,
                      blocks_per_sm=2),
            sweep.Row("8x8x8", "v5", "256x256x8/8x8/u2", threads=1024,
                      error="CudaAPIError: too many resources requested for launch")]
    report = {"date": "2000-01-01", "command": "test", "device": {"name": "Placeholder GPU"},
              "reference": "cuBLAS", "rows": [vars(r) for r in rows]}
    text = sweep.markdown(report)
    assert "| v5 | 128x128x8/8x8/u2 | 256 | 123 | 0 | 16640 | 2 | 2.000 | 1.0 | 50% |" in text
    assert "failed: CudaAPIError" in text
    assert "Fastest v5: **128x128x8/8x8/u2**, 1.0 TFLOP/s (50% of cuBLAS)." in text


# --- on the GPU -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu() -> Iterator[types.SimpleNamespace]:
    """cupy, numba.cuda and minigrad.kernels.cuda on a real GPU, or a skip saying what is
    missing. The kernels' outputs come from CuPy's memory pool."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or "numba.cuda.simulator_init" in sys.modules:
        pytest.skip("numba.cuda is in simulator mode in this process (tests/test_kernels_cuda.py "
                    "ran first?): run `pytest -m gpu tests/test_gpu.py` on its own")
    try:
        import cupy as cp
    except ImportError:
        pytest.skip("CuPy is not installed (pip install 'minigrad[gpu]')")
    if not gpu_present():
        pytest.skip(f"CuPy {cp.__version__} is installed but the CUDA runtime finds no GPU")
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("numba.cuda cannot reach the GPU (is numba-cuda installed?)")
    kc = load_bench().load_kernels()
    kc.set_allocator(lambda shape, dtype: cp.empty(shape, dtype=dtype))
    yield types.SimpleNamespace(cp=cp, cuda=cuda, kc=kc)
    kc.set_allocator(None)


@pytest.fixture(scope="module")
def refs() -> types.ModuleType:
    """The NumPy references of tests/test_kernels_cuda.py (importing it starts no simulator)."""
    import test_kernels_cuda

    return test_kernels_cuda


def host(a: Any) -> np.ndarray:
    """A kernel's device result as a NumPy array (through CuPy, checking that it wraps it)."""
    import cupy as cp

    return cp.asnumpy(cp.asarray(a))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


@pytest.mark.gpu
@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mnk", [(4096, 3072, 768), (1000, 1537, 333), (1, 129, 7)], ids=str)
def test_sgemm_on_the_gpu(gpu, version, mnk):
    m, n, k = mnk
    rng = np.random.default_rng(version)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n),
                                                                               dtype=np.float32)
    c = host(gpu.kc.SGEMM_VERSIONS[version](gpu.cp.asarray(a), gpu.cp.asarray(b)))
    assert relative_error(c, a.astype(np.float64) @ b) < 2e-6 * math.sqrt(k)
    a64, b64 = a[:300, :100].astype(np.float64), b[:100, :200].astype(np.float64)
    np.testing.assert_allclose(host(gpu.kc.SGEMM_VERSIONS[version](a64, b64)), a64 @ b64,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("shape", [(32, 12, 128, 128), (4, 30522), (3, 1025)], ids=str)
def test_softmax_on_the_gpu(gpu, refs, naive, shape):
    rng = np.random.default_rng(1)
    x, dy = (rng.standard_normal(shape, dtype=np.float32) * 3 for _ in range(2))
    mask = (rng.random((shape[0], shape[-1])) < 0.8).astype(np.int64)
    mask[0] = 0  # a batch element that is all padding
    forward = gpu.kc.softmax_forward_naive if naive else gpu.kc.softmax_forward
    backward = gpu.kc.softmax_backward_naive if naive else gpu.kc.softmax_backward
    cp = gpu.cp
    y = forward(cp.asarray(x), 0.125, cp.asarray(mask))
    np.testing.assert_allclose(host(y), refs.softmax_ref(x, 0.125, mask), rtol=1e-5, atol=1e-7)
    dx = backward(y, cp.asarray(dy), 0.125, cp.asarray(mask))
    y64 = host(y)
    np.testing.assert_allclose(host(dx), refs.softmax_backward_ref(y64, dy, 0.125, mask),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("shape", [(4096, 768), (300, 3, 1025), (5, 1)], ids=str)
def test_layernorm_on_the_gpu(gpu, refs, naive, shape):
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal(shape, dtype=np.float32) * 2 + 1, rng.standard_normal(
        shape, dtype=np.float32)
    w, b = rng.standard_normal(shape[-1], dtype=np.float32), rng.standard_normal(
        shape[-1], dtype=np.float32)
    forward = gpu.kc.layernorm_forward_naive if naive else gpu.kc.layernorm_forward
    backward = gpu.kc.layernorm_backward_naive if naive else gpu.kc.layernorm_backward
    cp = gpu.cp
    y, mean, rstd = forward(cp.asarray(x), cp.asarray(w), cp.asarray(b))
    expected = refs.layernorm_ref(x, w, b, dy)
    for got, want in zip((y, mean, rstd), expected[:3], strict=False):
        np.testing.assert_allclose(host(got), want, rtol=1e-4, atol=1e-5)
    grads = backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w), mean, rstd)
    # With H = 1 the exact dx is 0, and the GPU's fused multiply-adds leave rounding of size
    # r·|dy·w|·ulp there: the error is measured against that scale when it is the larger.
    noise = float(expected[2].max() * np.abs(dy).max() * np.abs(w).max())
    for got, want in zip(grads, expected[3:], strict=True):
        error = np.abs(host(got) - want).max()
        assert error <= 1e-5 * max(float(np.abs(want).max()), noise)


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize(("shape", "dtype"), [((8, 12, 128, 64), np.float32),
                                              ((2, 3, 200, 64), np.float32),
                                              ((2, 2, 77, 32), np.float64)], ids=str)
def test_attention_on_the_gpu(gpu, refs, naive, shape, dtype):
    rng = np.random.default_rng(3)
    q, k, v, dout = (rng.standard_normal(shape).astype(dtype) for _ in range(4))
    mask = (rng.random(shape[:1] + shape[2:3]) < 0.8).astype(np.int64)
    mask[:, 0], mask[-1] = 1, 0  # the last batch element is all padding
    forward = gpu.kc.attention_forward_naive if naive else gpu.kc.attention_forward
    backward = gpu.kc.attention_backward_naive if naive else gpu.kc.attention_backward
    cp = gpu.cp
    qd, kd, vd, dd, md = (cp.asarray(a) for a in (q, k, v, dout, mask))
    out, row_max, row_sum = forward(qd, kd, vd, md, 0.125)
    o_ref, _, _, *grads_ref = refs.attention_ref(q, k, v, mask, 0.125, dout)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert relative_error(host(out), o_ref) < tol
    for got, want in zip(backward(dd, qd, kd, vd, out, row_max, row_sum, md, 0.125), grads_ref,
                         strict=True):
        assert relative_error(host(got), want) < 10 * tol


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fused", "naive"])
def test_adamw_on_the_gpu(gpu, naive):
    rng = np.random.default_rng(4)
    n = 3_000_001
    p = rng.standard_normal(n, dtype=np.float32)
    theirs = torch.tensor(p, requires_grad=True)
    optimizer = torch.optim.AdamW([theirs], lr=1e-3, weight_decay=0.01)
    cp = gpu.cp
    pd, md, vd = cp.asarray(p), cp.zeros(n, cp.float32), cp.zeros(n, cp.float32)
    step_fn = gpu.kc.adamw_step_naive if naive else gpu.kc.adamw_step
    for step in (1, 2, 3):
        g = rng.standard_normal(n, dtype=np.float32)
        step_fn(pd, cp.asarray(g), md, vd, 1e-3, 0.9, 0.999, 1e-8, 0.01, step)
        theirs.grad = torch.from_numpy(g)
        optimizer.step()
    np.testing.assert_allclose(cp.asnumpy(pd), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


# --- float16 and bfloat16 kernels (tests/test_kernels_cuda_half.py at real sizes) -------------
HALF_CASES = ["float16", "bfloat16"]


@pytest.fixture(scope="module")
def half_refs() -> types.ModuleType:
    """The references and tolerances of tests/test_kernels_cuda_half.py (no simulator)."""
    import test_kernels_cuda_half

    return test_kernels_cuda_half


def half_inputs(gpu, half_refs, name: str, *arrays: np.ndarray) -> tuple[list, list, dict]:
    """(host arrays in the half dtype, their device arrays, the wrappers' keyword): bfloat16
    goes to the GPU as uint16 bit patterns with ``bf16_bits=True`` (CuPy has no bfloat16)."""
    dtype = np.dtype(np.float16) if name == "float16" else half_refs.BF16
    hosts = [a.astype(dtype) for a in arrays]
    if name == "float16":
        return hosts, [gpu.cp.asarray(a) for a in hosts], {}
    return hosts, [gpu.cp.asarray(a.view(np.uint16)) for a in hosts], {"bf16_bits": True}


def host_half(a: Any, like: np.ndarray) -> np.ndarray:
    """A kernel's device result in the host dtype of ``like`` (bfloat16 from its bits)."""
    return host(a).view(like.dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("name", HALF_CASES)
@pytest.mark.parametrize("shape", [(32, 12, 128, 128), (3, 1025)], ids=str)
def test_half_softmax_on_the_gpu(gpu, half_refs, naive, name, shape):
    rng = np.random.default_rng(5)
    (x, dy), (xd, dyd), flag = half_inputs(gpu, half_refs, name, rng.standard_normal(shape) * 3,
                                           rng.standard_normal(shape))
    mask = (rng.random((shape[0], shape[-1])) < 0.8).astype(np.int64)
    mask[0] = 0
    forward = gpu.kc.softmax_forward_naive if naive else gpu.kc.softmax_forward
    backward = gpu.kc.softmax_backward_naive if naive else gpu.kc.softmax_backward
    y = forward(xd, 0.125, gpu.cp.asarray(mask), **flag)
    y_host = host_half(y, x)
    half_refs.close(y_host, half_refs.softmax_ref(x, 0.125, mask), x.dtype, "y")
    dx = backward(y, dyd, 0.125, gpu.cp.asarray(mask), **flag)
    half_refs.close(host_half(dx, x), half_refs.softmax_backward_ref(y_host, dy, 0.125, mask),
                    x.dtype, "dx")


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("name", HALF_CASES)
@pytest.mark.parametrize("weights", ["half", "float32"])
@pytest.mark.parametrize("shape", [(4096, 768), (300, 3, 1025)], ids=str)
def test_half_layernorm_on_the_gpu(gpu, refs, half_refs, naive, name, weights, shape):
    rng = np.random.default_rng(6)
    (x, dy), (xd, dyd), flag = half_inputs(gpu, half_refs, name,
                                           rng.standard_normal(shape) * 2 + 1,
                                           rng.standard_normal(shape))
    w, b = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    if weights == "half":
        (w, b), (wd, bd), _ = half_inputs(gpu, half_refs, name, w, b)
    else:
        w, b = w.astype(np.float32), b.astype(np.float32)
        wd, bd = gpu.cp.asarray(w), gpu.cp.asarray(b)
    forward = gpu.kc.layernorm_forward_naive if naive else gpu.kc.layernorm_forward
    backward = gpu.kc.layernorm_backward_naive if naive else gpu.kc.layernorm_backward
    y, mean, rstd = forward(xd, wd, bd, **flag)
    expected = refs.layernorm_ref(x, w, b, dy)
    f32 = np.dtype(np.float32)
    half_refs.close(host_half(y, x), expected[0], x.dtype, "y")
    half_refs.close(host(mean), expected[1], f32, "mean")
    half_refs.close(host(rstd), expected[2], f32, "rstd")
    dx, dw, db = backward(dyd, xd, wd, mean, rstd, **flag)
    half_refs.close(host_half(dx, x), expected[3], x.dtype, "dx")
    half_refs.close(host_half(dw, w), expected[4], w.dtype, "dw")
    half_refs.close(host_half(db, w), expected[5], w.dtype, "db")


@pytest.mark.gpu
@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
@pytest.mark.parametrize("name", HALF_CASES)
@pytest.mark.parametrize("shape", [(8, 12, 128, 64), (2, 3, 200, 64)], ids=str)
def test_half_attention_forward_on_the_gpu(gpu, half_refs, naive, name, shape):
    rng = np.random.default_rng(7)
    (q, k, v), devices, flag = half_inputs(gpu, half_refs, name,
                                           *(rng.standard_normal(shape) for _ in range(3)))
    mask = (rng.random(shape[:1] + shape[2:3]) < 0.8).astype(np.int64)
    mask[:, 0], mask[-1] = 1, 0
    forward = gpu.kc.attention_forward_naive if naive else gpu.kc.attention_forward
    out, row_max, row_sum = forward(*devices, gpu.cp.asarray(mask), 0.125, **flag)
    o_ref, m_ref, l_ref, delta = half_refs.attention_forward_ref(q, k, v, mask, 0.125)
    f32 = np.dtype(np.float32)
    half_refs.close(host_half(out, q), o_ref, q.dtype, "out",
                    2 * delta[..., None] * float(np.abs(v.astype(np.float64)).max()))
    half_refs.close(host(row_max), m_ref, f32, "row max")
    half_refs.close(host(row_sum), l_ref, f32, "row sum", 2 * delta * l_ref)


@pytest.mark.gpu
def test_bf16_conversions_on_the_gpu_match_ml_dtypes(gpu):
    """The device's bit casts (libdevice), where the simulator tests NumPy views: every
    bfloat16 pattern to float32, and float32 → bfloat16 on every high half with the low halves
    that decide the rounding."""
    import ml_dtypes
    from minigrad.kernels.cuda import precision

    @gpu.cuda.jit
    def convert(bits, wide, values, rounded):
        i = gpu.cuda.grid(1)
        if i < bits.shape[0]:
            wide[i] = precision.bf16_to_float32(bits[i])
        if i < values.shape[0]:
            rounded[i] = precision.float32_to_bf16(values[i])

    cp = gpu.cp
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    low = np.array([0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32)
    values = (high[:, None] | low).ravel().view(np.float32)
    wide, rounded = cp.empty(bits.size, cp.float32), cp.empty(values.size, cp.uint16)
    convert[-(-values.size // 256), 256](cp.asarray(bits), wide, cp.asarray(values), rounded)
    expected_wide = bits.view(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(host(wide).view(np.uint32), expected_wide.view(np.uint32))
    with np.errstate(invalid="ignore"):
        expected = values.astype(ml_dtypes.bfloat16).view(np.uint16)
    np.testing.assert_array_equal(host(rounded), expected)


@pytest.mark.gpu
def test_float16_attention_through_the_registry_on_the_gpu(gpu, refs):
    """The "cuda" backend's attention on float16 CuPy arrays: the flash forward in float16,
    the backward through the float32 kernels (cast up, and the gradients back to float16)."""
    from minigrad.kernels.cuda import engine
    from minigrad.kernels.registry import AttentionMasks

    rng = np.random.default_rng(8)
    shape = (4, 12, 128, 64)
    q, k, v, dout = (rng.standard_normal(shape).astype(np.float16) for _ in range(4))
    keep = rng.random((4, 128)) < 0.8
    keep[:, 0] = True
    cp = gpu.cp
    masks = AttentionMasks(keep=cp.asarray(keep))
    out, saved = engine.ATTENTION.forward(*(cp.asarray(a) for a in (q, k, v)), masks, 0.125,
                                          None, True)
    grads = engine.ATTENTION.backward(cp.asarray(dout), masks, 0.125, None, saved)
    o_ref, _, _, *grads_ref = refs.attention_ref(q, k, v, keep.astype(np.int64), 0.125, dout)
    assert out.dtype == cp.float16 and [g.dtype for g in grads] == [cp.float16] * 3
    assert relative_error(host(out).astype(np.float64), o_ref) < 2e-3
    for got, want in zip(grads, grads_ref, strict=True):  # float32 sums over 128 keys, then
        assert relative_error(host(got).astype(np.float64), want) < 2e-3  # one float16 rounding


# --- the op battery on CuPy -----------------------------------------------------------------
@pytest.fixture(scope="module")
def engine_on_gpu(gpu) -> Any:
    """minigrad itself on the GPU: skips until the engine can put a tensor on CuPy."""
    import minigrad

    try:
        minigrad.zeros(2, device="cuda").sum().item()
    except Exception as exc:
        pytest.skip(f"the engine cannot run on the GPU yet: {type(exc).__name__}: {exc}")
    return minigrad


def on_device(params: dict[str, Any], convert: Any) -> dict[str, Any]:
    """The case's constant parameters with every NumPy array (masks, indices, targets) moved."""
    def move(x: Any) -> Any:
        if isinstance(x, np.ndarray | np.generic):
            return convert(x)
        if isinstance(x, tuple):
            return tuple(move(i) for i in x)
        if isinstance(x, list):
            return [move(i) for i in x]
        return x

    return {k: move(v) for k, v in params.items()}


@pytest.fixture(params=["cupy", "cuda"])
def gpu_backend(request, engine_on_gpu) -> Iterator[str]:
    """Each GPU kernel backend in turn: CuPy composites, then minigrad's own CUDA kernels."""
    before = engine_on_gpu.get_backend("cuda")
    engine_on_gpu.set_backend(request.param)
    yield request.param
    engine_on_gpu.set_backend(before)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", BATTERY, ids=[case.name for case in BATTERY])
def test_battery_gradcheck_on_cupy(engine_on_gpu, gpu, gpu_backend, case, seed):
    """Every op's float64 gradient on CuPy arrays against central differences."""
    rng = np.random.default_rng(seed)
    arrays, params = case.build(rng, case_shape(case, case.example_shape))
    params = on_device(params, gpu.cp.asarray)
    tensors = [engine_on_gpu.Tensor(a.astype(np.float64), requires_grad=True, device="cuda")
               for a in arrays]

    def fn(*ts: Any) -> Any:
        return case.fn(*ts, **params)

    fn.__name__ = case.name
    check_tolerance(case.name, tensors, compare_gradients(fn, tensors), atol=1e-5, rtol=1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", BATTERY, ids=[case.name for case in BATTERY])
def test_battery_matches_pytorch_cuda(engine_on_gpu, gpu, gpu_backend, case, seed):
    """Every op's forward and gradients on CuPy against PyTorch CUDA, in float64."""
    if not torch.cuda.is_available():
        pytest.skip(f"PyTorch {torch.__version__} has no CUDA here")
    from test_ops_torch import TORCH

    rng = np.random.default_rng(seed)
    arrays, params = case.build(rng, case_shape(case, case.example_shape))
    ours = [engine_on_gpu.Tensor(a.astype(np.float64), requires_grad=True, device="cuda")
            for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, device="cuda", requires_grad=True)
              for a in arrays]
    out = case.fn(*ours, **on_device(params, gpu.cp.asarray))
    expected = TORCH[case.name](*theirs, **on_device(params, lambda a: torch.as_tensor(
        a, device="cuda")))
    np.testing.assert_allclose(host(out.data), expected.detach().cpu().numpy(), rtol=1e-5,
                               atol=1e-12, err_msg="forward")
    upstream = rng.standard_normal(out.shape)
    out.backward(gpu.cp.asarray(upstream))
    expected.backward(torch.as_tensor(upstream, device="cuda"))
    for i, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        mine_grad = host(mine.grad) if mine.grad is not None else np.zeros(mine.shape)
        ref_grad = ref.grad.cpu().numpy() if ref.grad is not None else np.zeros(mine.shape)
        np.testing.assert_allclose(mine_grad, ref_grad, rtol=1e-5, atol=1e-12,
                                   err_msg=f"gradient of input {i}")


@pytest.mark.gpu
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("kind", ["bool", "float", "hf float", "causal", "padding"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_attention_masks_on_every_gpu_backend(engine_on_gpu, gpu, kind, dtype, dropout):
    """F.scaled_dot_product_attention with each mask kind (tests/test_attention_backends.py's
    cases) on the "cupy" backend (the composite) and the "cuda" backend (flash without dropout;
    cuBLAS and the softmax kernel with it): without dropout both give the numpy backend's
    answer (which that file checks against torch); with it, the same seed gives both the same
    dropout mask on the GPU, so they must agree with each other."""
    from test_attention_backends import case

    mg = engine_on_gpu
    arrays, kwargs, _ = case(kind, dtype, seed=5)
    upstream = np.random.default_rng(6).standard_normal(arrays[0].shape).astype(dtype)

    def run(device: str, backend: str) -> list[np.ndarray]:
        before = mg.get_backend(device)
        mg.set_backend(backend)
        try:
            mg.manual_seed(9)
            tensors = [mg.tensor(a, requires_grad=True, device=device) for a in arrays]
            moved = on_device(kwargs, gpu.cp.asarray) if device == "cuda" else kwargs
            out = mg.nn.functional.scaled_dot_product_attention(*tensors, dropout_p=dropout,
                                                                **moved)
            out.backward(gpu.cp.asarray(upstream) if device == "cuda" else upstream)
            return [host(a) for a in (out.data, *(t.grad for t in tensors))]
        finally:
            mg.set_backend(before)

    tol = {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    cupy_answer, cuda_answer = run("cuda", "cupy"), run("cuda", "cuda")
    expected = cupy_answer if dropout else run("cpu", "numpy")
    for name, got, want in zip(("out", "dq", "dk", "dv"), cuda_answer, expected, strict=True):
        np.testing.assert_allclose(got, want, err_msg=f"cuda backend: {name}", **tol)
    if not dropout:
        for name, got, want in zip(("out", "dq", "dk", "dv"), cupy_answer, expected,
                                   strict=True):
            np.testing.assert_allclose(got, want, err_msg=f"cupy backend: {name}", **tol)


# --- the engine's training step on the GPU ---------------------------------------------------
def tiny_bert(mg: Any, dtype: Any, dropout: float) -> Any:
    from minigrad.models import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=32, num_labels=3,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    mg.manual_seed(0)
    model = BertForSequenceClassification(config)
    return model.to(dtype) if dtype == mg.float64 else model


def a_batch(seed: int = 0) -> dict[str, np.ndarray]:
    """Four sequences of 24 ids, three padded at the end, and their labels: NumPy, on the host."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 97, size=(4, 24))
    mask = np.ones_like(ids)
    for row, length in enumerate((24, 17, 9, 1)):
        ids[row, length:], mask[row, length:] = 0, 0
    return {"input_ids": ids, "attention_mask": mask, "labels": rng.integers(0, 3, size=4)}


def train_steps(mg: Any, model: Any, steps: int, device: str) -> tuple[list[float], dict, Any]:
    """``steps`` AdamW steps on the same batch; (losses, gradients of the last step, optimizer)."""
    from minigrad import optim

    model.to(device).train()
    optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    losses = []
    for _ in range(steps):
        mg.manual_seed(1)  # the same dropout masks on every device and backend
        optimizer.zero_grad()
        loss = model(**a_batch()).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    grads = {name: host(p.grad) for name, p in model.named_parameters()}
    return losses, grads, optimizer


@pytest.mark.gpu
@pytest.mark.parametrize("dropout", [0.0, 0.1], ids=["no-dropout", "dropout"])
def test_training_steps_agree_on_both_gpu_backends_and_with_the_cpu(engine_on_gpu, gpu, dropout):
    """Three float64 AdamW steps of a small BERT classifier with padding: the "cuda" backend
    (flash attention without dropout; the softmax kernel with it; LayerNorm and AdamW kernels)
    and the "cupy" composites give the same losses and gradients; without dropout, so does the
    CPU (the GPU's dropout masks come from CuPy's generator, the CPU's from NumPy's)."""
    mg = engine_on_gpu
    before = mg.get_backend("cuda")
    runs = {}
    try:
        for name in ("cupy", "cuda"):
            mg.set_backend(name)
            runs[name] = train_steps(mg, tiny_bert(mg, mg.float64, dropout), 3, "cuda")
    finally:
        mg.set_backend(before)
    compared = [("cupy", runs["cupy"])]
    if dropout == 0.0:
        compared.append(("cpu", train_steps(mg, tiny_bert(mg, mg.float64, dropout), 3, "cpu")))
    losses, grads, _ = runs["cuda"]
    assert losses[-1] < losses[0]
    for other, (their_losses, their_grads, _) in compared:
        np.testing.assert_allclose(losses, their_losses, rtol=1e-7, err_msg=other)
        for name, g in grads.items():
            np.testing.assert_allclose(g, their_grads[name], rtol=1e-5, atol=1e-9,
                                       err_msg=f"{name}: cuda backend against {other}")


@pytest.mark.gpu
def test_the_model_and_the_optimizer_state_live_on_the_gpu(engine_on_gpu, gpu):
    mg = engine_on_gpu
    model = tiny_bert(mg, mg.float32, 0.1)
    _, _, optimizer = train_steps(mg, model, 1, "cuda")
    for name, p in model.named_parameters():
        assert p.device == "cuda" and isinstance(p.data, gpu.cp.ndarray), name
        assert isinstance(p.grad, gpu.cp.ndarray), name
    states = [s for s in optimizer.state.values() if s]
    assert len(states) == len(list(model.parameters()))
    for state in states:
        assert isinstance(state["exp_avg"], gpu.cp.ndarray)
        assert isinstance(state["exp_avg_sq"], gpu.cp.ndarray)


def copies_in_one_step(model: Any, optimizer: Any, monkeypatch: Any
                       ) -> tuple[list[str], list[str], list[str]]:
    """(host-device copies, kernels) that the CUDA profiler (CUPTI, through PyTorch's profiler:
    it records every CUDA activity of the process, CuPy's and numba's too) sees in one step,
    and where CuPy was handed host data in that step (the call stacks, to name a culprit)."""
    import traceback

    import cupy as cp
    from torch.profiler import ProfilerActivity, profile

    from_host: list[str] = []

    def watched(convert: Any) -> Any:
        def wrapper(a: Any, *args: Any, **kwargs: Any) -> Any:
            if not hasattr(a, "__cuda_array_interface__"):  # CuPy's, numba's: no copy
                from_host.append(f"{type(a).__name__}: " + "".join(
                    traceback.format_stack(limit=5)[:-1]))
            return convert(a, *args, **kwargs)
        return wrapper

    torch.cuda.init()
    cp.cuda.Device().synchronize()
    with monkeypatch.context() as patch:
        for name in ("asarray", "array", "ascontiguousarray"):
            patch.setattr(cp, name, watched(getattr(cp, name)))
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            optimizer.zero_grad()
            loss = model(**a_batch()).loss
            loss.backward()
            optimizer.step()
            loss.item()
            cp.cuda.Device().synchronize()
    names = [e.name for e in prof.events()]
    copies = [n for n in names if n.startswith("Memcpy") and ("HtoD" in n or "DtoH" in n)]
    kernels = [n for n in names if not n.startswith(("Memcpy", "Memset"))]
    return copies, kernels, from_host


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cuda", "cupy"])
def test_a_training_step_copies_only_the_batch_in_and_the_loss_out(engine_on_gpu, gpu, name,
                                                                   monkeypatch):
    """Inputs, mask and labels in (three host-to-device copies), the loss out (one copy back):
    parameters, gradients, optimizer state and every intermediate stay on the GPU, and the
    input checks (ids and labels in range) read no flag back until that last copy."""
    from minigrad import optim

    mg = engine_on_gpu
    before = mg.get_backend("cuda")
    mg.set_backend(name)
    try:
        model = tiny_bert(mg, mg.float32, 0.1).to("cuda").train()
        optimizer = optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(2):  # warm-up: kernels compiled, cached masks and optimizer state made
            optimizer.zero_grad()
            model(**a_batch()).loss.backward()
            optimizer.step()
        copies, kernels, from_host = copies_in_one_step(model, optimizer, monkeypatch)
    finally:
        mg.set_backend(before)
    assert len(kernels) > 50, f"the profiler saw too few kernels to trust its count: {kernels}"
    host_to_device = [c for c in copies if "HtoD" in c]
    device_to_host = [c for c in copies if "DtoH" in c]
    assert (len(host_to_device), len(device_to_host)) == (3, 1), (copies, from_host)


@pytest.mark.gpu
def test_a_bad_id_on_the_gpu_fails_at_the_next_copy_to_the_host(engine_on_gpu, gpu):
    mg = engine_on_gpu
    model = tiny_bert(mg, mg.float32, 0.0).to("cuda")
    batch = a_batch()
    batch["input_ids"][1, 3] = 97  # one past the vocabulary
    loss = model(**batch).loss
    with pytest.raises(IndexError, match=r"embedding: id 97 is out of range for a table of 97"):
        loss.item()
    batch = a_batch()
    batch["labels"][2] = 3
    loss = model(**batch).loss
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of range for 3"):
        loss.item()
    assert math.isfinite(model(**a_batch()).loss.item())  # nothing left pending


# --- the benchmark, quickly -----------------------------------------------------------------
@pytest.mark.gpu
def test_benchmark_runs_on_the_gpu(gpu, tmp_path):
    env = {**env_without_simulator(), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(BENCH), "--quick", "--skip-bert", "--out",
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=600,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    (report,) = tmp_path.glob("gpu_*.json")
    rows = json.loads(report.read_text())["kernels"]
    failed = [(r["kernel"], r["impl"], r["note"]) for r in rows if r["ms"] is None]
    assert failed == []
