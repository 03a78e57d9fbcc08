"""float16 and bfloat16 through the engine (issue 17): names and factories, torch's promotion,
every op of the gradcheck battery in both dtypes, the CPU rule (a matmul-like op computes in
float32 and rounds back, saving its half inputs), the gradcheck's half-precision report,
safetensors F16/BF16 files (torch writes the oracle file), and bfloat16 refused on the GPU."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.torch
import torch

import minigrad as mg
from minigrad import checkpoint, dtypes
from minigrad.gradcheck import BATTERY, HalfPrecisionReport, case_shape, half_precision_report
from minigrad.nn import functional as F

HALF = [mg.float16, mg.bfloat16]
TORCH = {mg.float16: torch.float16, mg.bfloat16: torch.bfloat16, mg.float32: torch.float32,
         mg.float64: torch.float64, mg.int64: torch.int64, mg.int32: torch.int32,
         mg.bool_: torch.bool}


def test_names_and_conversions():
    assert mg.bfloat16.name == "bfloat16" and mg.float16 == np.float16
    for name, dtype in [("float16", mg.float16), ("half", mg.float16), ("bfloat16", mg.bfloat16)]:
        assert mg.tensor([1.5], dtype=name).dtype == dtype
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert x.half().dtype == mg.float16 and x.bfloat16().dtype == mg.bfloat16
    assert x.to(mg.bfloat16).float().dtype == mg.float32
    assert x.to("half").dtype == mg.float16
    x.bfloat16().sum().backward()  # the casts are differentiable: float32 gradient
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, 1.0)


@pytest.mark.parametrize("dtype", HALF)
def test_factories_make_half_tensors(dtype):
    mg.manual_seed(0)
    made = [mg.zeros(2, 3, dtype=dtype), mg.ones(2, dtype=dtype), mg.full((2,), 1.5, dtype=dtype),
            mg.randn(4, 5, dtype=dtype), mg.rand(300, dtype=dtype), mg.arange(4, dtype=dtype),
            mg.eye(3, dtype=dtype), mg.zeros_like(mg.ones(2), dtype=dtype),
            mg.tensor([[1.0, 2.0]], dtype=dtype, requires_grad=True)]
    assert all(t.dtype == dtype for t in made)
    u = made[4].data.astype(np.float32)
    assert u.min() >= 0 and u.max() < 1  # rounding never reaches 1


@pytest.mark.parametrize("dtype", HALF)
def test_module_to_half_and_back(dtype):
    layer = mg.nn.Linear(3, 2)
    w = layer.weight.data.copy()
    (layer.half() if dtype == mg.float16 else layer.bfloat16())
    assert layer.weight.dtype == dtype and layer.bias.dtype == dtype
    layer.float()
    assert layer.weight.dtype == np.float32
    np.testing.assert_allclose(layer.weight.data, w, rtol=2 ** -7)


def test_promotion_is_torchs():
    names = [mg.bool_, mg.int32, mg.int64, mg.float16, mg.bfloat16, mg.float32, mg.float64]
    for a in names:
        for b in names:
            expected = torch.promote_types(TORCH[a], TORCH[b])
            ta, tb = mg.ones(2, dtype=a), mg.ones(2, dtype=b)
            assert TORCH[(ta + tb).dtype] == expected, (a, b)
    # a Python float never widens a half tensor; an int tensor meets bfloat16 in bfloat16
    assert (mg.ones(2, dtype=mg.bfloat16) * 2.5).dtype == mg.bfloat16
    assert (mg.ones(2, dtype=mg.int64) * mg.ones(2, dtype=mg.bfloat16)).dtype == mg.bfloat16


@pytest.mark.parametrize("dtype", HALF)
def test_every_battery_op_takes_half_and_keeps_its_dtype(dtype):
    """Each op of the gradcheck battery on half inputs: the output and every gradient in the
    input's dtype, and both within half-precision error of the float64 result."""
    tolerance = {mg.float16: 0.02, mg.bfloat16: 0.1}[dtype]  # relative to the largest value
    for case in BATTERY:
        arrays, params = case.build(np.random.default_rng(0), case_shape(case, case.example_shape))
        half = [mg.Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        out = case.fn(*half, **params)
        assert out.dtype == dtype, case.name
        out.sum().backward()
        assert all(t.grad is None or t.grad.dtype == dtype for t in half), case.name
        report = half_precision_report(lambda *ts: case.fn(*ts, **params),  # noqa: B023
                                       [mg.Tensor(a, requires_grad=True) for a in arrays], dtype)
        assert max((report.output_rel, *report.grads_rel)) <= tolerance, (case.name, str(report))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("kernel_backend", ["numpy", "numba"])
def test_matmul_like_ops_compute_in_float32_and_round_back(dtype, kernel_backend):
    """The CPU rule: the result is the float32 computation rounded once to the half dtype."""
    previous = mg.get_backend("cpu")
    mg.set_backend(kernel_backend)
    try:
        rng = np.random.default_rng(1)
        x32 = rng.standard_normal((4, 6, 8), np.float32)
        w32 = rng.standard_normal((5, 8), np.float32)
        x, w = mg.tensor(x32.astype(dtype)), mg.tensor(w32.astype(dtype))
        wide_x, wide_w = x.data.astype(np.float32), w.data.astype(np.float32)
        np.testing.assert_array_equal(F.linear(x, w).data, (wide_x @ wide_w.T).astype(dtype))
        np.testing.assert_array_equal((x @ w.T).data, (wide_x @ wide_w.T).astype(dtype))
        s = F.softmax(x, -1)
        expected = F.softmax(mg.tensor(wide_x), -1).data.astype(dtype)
        np.testing.assert_array_equal(s.data, expected)
    finally:
        mg.set_backend(previous)


@pytest.mark.parametrize("dtype", HALF)
def test_linear_saves_its_half_input_not_a_float32_copy(dtype):
    x = mg.randn(3, 4, dtype=dtype, requires_grad=True)
    w = mg.randn(2, 4, dtype=dtype, requires_grad=True)
    y = F.linear(x, w)
    saved_x, saved_w = y._ctx.saved
    assert saved_x.dtype == dtype and np.shares_memory(saved_x, x.data)
    assert saved_w.dtype == dtype and np.shares_memory(saved_w, w.data)
    y.sum().backward()
    assert x.grad.dtype == dtype and w.grad.dtype == dtype
    z = F.linear(x, w)
    with mg.no_grad():
        x.add_(1.0)  # the saved input is the tensor's own memory: its version guards it
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


@pytest.mark.parametrize("dtype", HALF)
def test_gradcheck_checks_in_float64_and_reports_the_half_error(dtype):
    rng = np.random.default_rng(0)
    a = mg.Tensor(rng.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    b = mg.Tensor(rng.standard_normal((4, 2)).astype(dtype), requires_grad=True)
    report = mg.gradcheck(lambda a, b: (a @ b).tanh(), [a, b])
    assert isinstance(report, HalfPrecisionReport) and report
    eps = float(dtypes.finfo(dtype).eps)
    assert 0 < report.output_rel <= 4 * eps and all(0 < r <= 8 * eps for r in report.grads_rel)
    assert dtype.name in str(report)
    with pytest.raises(mg.GradcheckError):  # the float64 check still fails a wrong gradient
        mg.gradcheck(lambda a: F.dropout(a, 0.5), [a])


@pytest.mark.parametrize("dtype", HALF)
def test_safetensors_round_trip_keeps_every_bit(tmp_path, dtype):
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((3, 5)).astype(dtype), "b": np.array([np.inf, -0.0, 1e-8],
                                                                            dtype=dtype)}
    checkpoint.save_safetensors(tmp_path / "x.safetensors", arrays)
    back = checkpoint.load_safetensors(tmp_path / "x.safetensors")
    for name, a in arrays.items():
        assert back[name].dtype == dtype
        np.testing.assert_array_equal(back[name].view(np.uint16), a.view(np.uint16))
    code = {mg.float16: "F16", mg.bfloat16: "BF16"}[dtype]
    header = checkpoint._header((tmp_path / "x.safetensors").read_bytes())
    assert header["w"]["dtype"] == code
    loaded = safetensors.torch.load_file(tmp_path / "x.safetensors")  # torch reads ours
    assert loaded["w"].dtype == TORCH[dtype]
    np.testing.assert_array_equal(loaded["w"].view(torch.int16).numpy().view(np.uint16),
                                  arrays["w"].view(np.uint16))


def test_a_torch_written_bf16_file_loads_with_the_same_bits(tmp_path):
    w = torch.randn(4, 6).to(torch.bfloat16)
    safetensors.torch.save_file({"w": w}, tmp_path / "t.safetensors")
    back = checkpoint.load_safetensors(tmp_path / "t.safetensors")["w"]
    assert back.dtype == mg.bfloat16
    np.testing.assert_array_equal(back.view(np.uint16), w.view(torch.int16).numpy().view(np.uint16))


def test_a_bf16_file_without_ml_dtypes_is_a_clear_error(tmp_path, monkeypatch):
    safetensors.torch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)},
                                tmp_path / "t.safetensors")
    monkeypatch.setattr(dtypes, "bfloat16", None)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"t\.safetensors: tensor 'w' is BF16.*pip install ml_dtypes"):
        checkpoint.load_safetensors(tmp_path / "t.safetensors")


def test_a_half_model_round_trips_through_the_writer(tmp_path):
    model = mg.nn.Linear(4, 3).bfloat16()
    checkpoint.save_safetensors(tmp_path / "m.safetensors", model.state_dict())
    fresh = mg.nn.Linear(4, 3).bfloat16()
    fresh.load_state_dict(checkpoint.load_safetensors(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(fresh.weight.data.view(np.uint16),
                                  model.weight.data.view(np.uint16))


def test_bfloat16_on_the_gpu_is_refused_in_one_line():
    for make in (lambda: mg.zeros(2, dtype=mg.bfloat16, device="cuda"),
                 lambda: mg.tensor([1.0], dtype="bfloat16", device="cuda"),
                 lambda: mg.autocast("cuda", dtype=mg.bfloat16)):
        with pytest.raises(mg.DeviceError, match="CuPy has no bfloat16 dtype; use float16"):
            make()


def _cupy_gpu() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cupy_gpu(), reason="needs CuPy and a GPU")
def test_float16_linear_and_attention_on_the_gpu_match_the_cpu():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 5, 8)), rng.standard_normal((6, 8))
    q = rng.standard_normal((2, 2, 5, 4))
    for device in ("cpu", "cuda"):
        xt = mg.tensor(x, dtype=mg.float16, device=device, requires_grad=True)
        wt = mg.tensor(w, dtype=mg.float16, device=device, requires_grad=True)
        qt = mg.tensor(q, dtype=mg.float16, device=device, requires_grad=True)
        y = F.linear(xt, wt)
        a = F.scaled_dot_product_attention(qt, qt, qt)
        (y.sum() + a.sum()).backward()
        assert y.dtype == a.dtype == xt.grad.dtype == mg.float16
        if device == "cpu":
            ref = [y.numpy(), a.numpy(), xt.grad, qt.grad]
        else:
            got = [y.cpu().numpy(), a.cpu().numpy(), xt.grad.get(), qt.grad.get()]
            for r, g in zip(ref, got, strict=True):
                np.testing.assert_allclose(g.astype(np.float32), r.astype(np.float32),
                                           rtol=1e-2, atol=1e-2)
