"""How fast are minigrad's CUDA kernels on a real GPU, and a BERT training step on CPU and GPU?

    PYTHONPATH=. python benchmarks/gpu.py                   # everything, about 5 minutes
    PYTHONPATH=. python benchmarks/gpu.py --skip-bert       # the kernels only
    PYTHONPATH=. python benchmarks/gpu.py --cpu-steps 0     # the BERT step on the GPU only
    PYTHONPATH=. python benchmarks/gpu.py --skip-bert --only softmax layernorm attention \
        --precision float32 float16 bfloat16               # the kernels in half precision

Needs an NVIDIA GPU, CuPy and numba.cuda (``pip install 'minigrad[gpu]'``), and PyTorch with
CUDA for its columns. Without a GPU it prints "benchmarks/gpu.py: no GPU found: <why>" and
exits with status 1, before importing anything heavy. It refuses to run under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``), whose timings mean nothing.

**Kernels.** Each of minigrad's kernels (:mod:`minigrad.kernels.cuda`), its naive reference,
the CuPy composite (the array expressions the ops run on CuPy, matmuls on cuBLAS) and PyTorch
CUDA (eager; autograd for the backwards) on the same float32 inputs, at BERT-base shapes
(batch 32, sequence 128, H 768, A 12, D 64) and at a larger shape whose data overflow the
GPU's L2 cache:

* time: the median over repetitions of device time per call, from CUDA events. Each
  repetition first queues a few large matmuls that keep the GPU busy while Python queues the
  timed calls, so that the events measure the GPU's time, not Python's launch overhead (that
  host time per call is reported beside it as ``host_ms``);
* GB/s for the memory-bound kernels, counting the bytes a perfect kernel must move (each input
  read once, each output written once), as a % of the measured device-to-device copy
  bandwidth (a 1 GiB ``cupy.copyto``, bytes read + written);
* TFLOP/s for SGEMM (2·M·N·K), as a % of cuBLAS float32 at the same shape, TF32 off
  (CuPy's default; ``CUPY_TF32`` is set to 0 and PyTorch's ``allow_tf32`` to False);
* attention: TFLOP/s (forward 4·B·A·S²·D, backward 8·B·A·S²·D, the recomputation of the
  scores not counted) and the time as a multiple of PyTorch's ``scaled_dot_product_attention``.

**Half precision** (``--precision float16 bfloat16``, beside float32): the softmax and
LayerNorm kernels (forward and backward) and the attention forward on float16 or bfloat16
inputs of the same shapes (kernels/cuda/precision.py: float32 sums, outputs in the input
dtype), against the CuPy composite in float16 (CuPy has no bfloat16) and PyTorch in the same
dtype. The bytes counted are the half arrays', so GB/s compare directly with float32's; the
report adds a table of each half kernel's time against its float32 time at the same shape. A
memory-bound kernel should take about half the time.

**BERT step.** One training step (forward, cross-entropy, backward, AdamW) of a bert-base
sequence classifier (L=12, H=768, A=12, 2 labels, dropout 0.1) on batch 32 × 128 tokens, with
random ids and padding: minigrad and PyTorch (Hugging Face ``transformers``) on the CPU, then
on the GPU. Wall-clock time, synchronised, median over steps after warm-up. minigrad runs on
the GPU twice: with the ``"cupy"`` backend (CuPy composites) and with the ``"cuda"`` backend (its
own softmax, LayerNorm, attention and AdamW kernels; attention with dropout takes cuBLAS products
around the softmax kernel). A path that cannot run is reported as "not available" with the reason.

Writes ``benchmarks/results/gpu_<device>_<date>.json``, ``.md`` (the tables) and ``.png``.
"""

from __future__ import annotations

import os

os.environ.setdefault("CUPY_TF32", "0")  # before CuPy loads: cuBLAS float32 without TF32

import argparse
import datetime
import json
import math
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]

# BERT-base training shapes
BATCH, SEQ, HIDDEN, HEADS, HEAD_DIM, FFN, VOCAB = 32, 128, 768, 12, 64, 3072, 30522
BERT_BASE_PARAMETERS = 109_483_778  # BertForSequenceClassification, 2 labels


# --- is there a GPU? ------------------------------------------------------------------------
def find_gpu() -> tuple[types.ModuleType, types.ModuleType]:
    """(cupy, numba.cuda), or exit with status 1 and a message saying what is missing."""
    def no_gpu(why: str) -> None:
        sys.exit(f"benchmarks/gpu.py: no GPU found: {why}")

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        no_gpu("NUMBA_ENABLE_CUDASIM=1 runs the kernels in numba's CPU simulator, whose timings "
               "mean nothing; unset it")
    try:
        import cupy as cp
    except ImportError:
        no_gpu("CuPy is not installed (pip install 'minigrad[gpu]' installs cupy-cuda12x and "
               "numba-cuda)")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, or no device
        no_gpu(f"the CUDA runtime finds no device ({exc})")
    if count == 0:
        no_gpu("the CUDA runtime reports 0 devices")
    from numba import cuda

    if not cuda.is_available():
        no_gpu("numba.cuda cannot reach the GPU (is numba-cuda installed?)")
    return cp, cuda


def load_kernels() -> types.ModuleType:
    """minigrad.kernels.cuda (``import minigrad`` finds kernels/ in a source tree that was not
    ``pip install``-ed too: PYTHONPATH=.)."""
    import minigrad.kernels.cuda as kc

    return kc


# --- the composites: what the ops compute with array expressions (NumPy or CuPy) ------------
def composite_softmax_forward(xp: Any, x: Any, keep: Any, scale: float) -> Any:
    """x (B, A, S, S), keep (B, S) bool: softmax(masked_fill(scale·x, ~keep, min))."""
    s = xp.where(keep[:, None, None, :], x * x.dtype.type(scale), xp.finfo(x.dtype).min)
    e = xp.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def composite_softmax_backward(xp: Any, y: Any, dy: Any, keep: Any, scale: float) -> Any:
    dx = y * (dy - (dy * y).sum(axis=-1, keepdims=True)) * y.dtype.type(scale)
    return xp.where(keep[:, None, None, :], dx, y.dtype.type(0))


def composite_layernorm_forward(xp: Any, x: Any, w: Any, b: Any, eps: float = 1e-12
                                ) -> tuple[Any, Any, Any]:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    rstd = 1 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + x.dtype.type(eps))
    return centered * rstd * w + b, mean[..., 0], rstd[..., 0]


def composite_layernorm_backward(xp: Any, dy: Any, x: Any, w: Any, mean: Any, rstd: Any
                                 ) -> tuple[Any, Any, Any]:
    xhat = (x - mean[..., None]) * rstd[..., None]
    g = dy * w
    dx = rstd[..., None] * (g - g.mean(axis=-1, keepdims=True)
                            - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def composite_attention_forward(xp: Any, q: Any, k: Any, v: Any, keep: Any,
                                scale: float) -> tuple[Any, Any]:
    """(o, P): the (B, A, S, S) probabilities P are materialised and saved for backward."""
    p = composite_softmax_forward(xp, q @ k.swapaxes(-1, -2), keep, scale)
    return p @ v, p


def composite_attention_backward(xp: Any, dout: Any, q: Any, k: Any, v: Any, p: Any, keep: Any,
                                 scale: float) -> tuple[Any, Any, Any]:
    ds = composite_softmax_backward(xp, p, dout @ v.swapaxes(-1, -2), keep, scale)
    return ds @ k, ds.swapaxes(-1, -2) @ q, p.swapaxes(-1, -2) @ dout


def composite_adamw(xp: Any, p: Any, g: Any, m: Any, v: Any, lr: float, beta1: float,
                    beta2: float, eps: float, weight_decay: float, step: int) -> None:
    """minigrad.optim.AdamW's update, line by line, in place."""
    p *= 1 - lr * weight_decay
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    denom = xp.sqrt(v) / math.sqrt(1 - beta2**step) + eps
    p -= (lr / (1 - beta1**step)) * m / denom


# --- PyTorch: the same functions, eager, autograd for the backwards --------------------------
def torch_softmax(torch: Any, x: Any, keep: Any, scale: float) -> Any:
    pad = ~keep[:, None, None, :]
    return torch.softmax((x * scale).masked_fill(pad, torch.finfo(x.dtype).min), dim=-1)


def torch_attention(torch: Any, q: Any, k: Any, v: Any, keep: Any, scale: float) -> Any:
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=keep[:, None, None, :], scale=scale)


# --- timing ---------------------------------------------------------------------------------
@dataclass
class Timing:
    ms: float  # device time per call (median)
    host_ms: float  # Python's time to queue one call (median)
    reps: int
    calls: int


class DeviceTimer:
    """Device time per call by CUDA events, with the GPU kept busy while Python queues calls."""

    def __init__(self, cp: types.ModuleType):
        self.cp = cp
        self.blocker = cp.ones((4096, 4096), dtype=cp.float32)
        self.sync()
        start = time.perf_counter()
        for _ in range(3):
            self.busy()
        self.sync()
        self.blocker_s = (time.perf_counter() - start) / 3

    def busy(self) -> None:
        """Queue a 4096³ float32 matmul: a few ms of GPU work whose result is dropped."""
        self.cp.matmul(self.blocker, self.blocker)

    def sync(self) -> None:
        self.cp.cuda.Device().synchronize()

    MAX_BLOCKERS = 60  # busy matmuls queued ahead of one repetition, at most

    def measure(self, fn: Callable[[], Any], budget_s: float = 1.0) -> Timing:
        """Device ms per call of ``fn``: the median over repetitions of ``calls`` calls each.

        Each repetition is timed by events only if the busy work queued ahead of it outlasted
        Python's queueing of its calls; otherwise the GPU may have idled between the events,
        waiting for Python (a launch that costs the host more than the GPU, as the kernels'
        wrappers do, would look slower than it is), and the repetition is timed again behind
        more busy work.
        """
        cp = self.cp
        fn()  # warm-up: compiles the kernel, fills CuPy's memory pool
        self.sync()
        start = time.perf_counter()
        fn()
        queued = time.perf_counter() - start  # Python's part
        self.sync()
        once = max(time.perf_counter() - start, 1e-6)  # Python's and the GPU's
        calls = max(1, min(50, int(0.005 / once)))
        reps = max(3, min(25, int(budget_s / (once * calls))))
        # enough busy work queued ahead to cover Python queueing the calls (twice over)
        blockers = min(self.MAX_BLOCKERS, math.ceil(2 * queued * calls / self.blocker_s) + 1)
        device, host = [], []
        for _ in range(2 * reps):
            for _ in range(blockers):
                self.busy()
            begin, end = cp.cuda.Event(), cp.cuda.Event()
            begin.record()
            h0 = time.perf_counter()
            for _ in range(calls):
                fn()
            queueing = time.perf_counter() - h0
            end.record()
            end.synchronize()
            if queueing > blockers * self.blocker_s and blockers < self.MAX_BLOCKERS:
                # not covered: time this repetition again behind more busy work
                blockers = min(self.MAX_BLOCKERS,
                               math.ceil(2 * queueing / self.blocker_s) + 1)
                continue
            host.append(queueing / calls * 1e3)
            device.append(cp.cuda.get_elapsed_time(begin, end) / calls)
            if len(device) == reps:
                break
        return Timing(statistics.median(device), statistics.median(host), len(device), calls)


# --- the kernel table -----------------------------------------------------------------------
@dataclass
class Row:
    kernel: str
    shape: str
    impl: str  # "minigrad", "minigrad naive", "minigrad v2"..., "CuPy composite", "PyTorch"
    ms: float | None = None
    host_ms: float | None = None
    rate: float | None = None  # GB/s or TFLOP/s
    unit: str = ""
    percent: float | None = None  # of copy bandwidth, of cuBLAS, or × PyTorch SDPA time
    percent_of: str = ""
    reps: int = 0  # timed repetitions (the median is taken over them)
    calls_per_rep: int = 0  # calls between one pair of events
    note: str = ""
    precision: str = "float32"  # the inputs' dtype: float32, float16 or bfloat16


@dataclass
class KernelBench:
    """One kernel at one shape: its implementations and the work one call does."""

    kernel: str
    shape: str
    unit: str  # "GB/s" (work in bytes) or "TFLOP/s" (work in flops)
    work: float
    impls: dict[str, Callable[[], Any]] = field(default_factory=dict)
    precision: str = "float32"


def rate_of(work: float, unit: str, ms: float) -> float:
    return work / (ms * 1e-3) / (1e9 if unit == "GB/s" else 1e12)


class Arrays:
    """Random float32 inputs on the GPU, and their numba and PyTorch views (made once, so that
    no conversion happens inside a timed call)."""

    def __init__(self, cp: Any, torch: Any):
        from numba import cuda

        self.cp, self.torch, self.cuda = cp, torch, cuda
        self.rng = np.random.default_rng(0)

    def randn(self, *shape: int, precision: str = "float32") -> Any:
        """Random normal values of ``precision`` on the GPU: a bfloat16 array as its uint16
        bit patterns (CuPy has no bfloat16; the kernels take them with ``bf16_bits=True``)."""
        a = self.rng.standard_normal(shape, dtype=np.float32)
        if precision == "bfloat16":
            import ml_dtypes

            return self.cp.asarray(a.astype(ml_dtypes.bfloat16).view(np.uint16))
        return self.cp.asarray(a.astype(precision))

    def padding(self, batch: int, seq: int) -> Any:
        """A (B, S) bool keep-mask with real lengths from seq/2 to seq (no row all padding)."""
        lengths = self.rng.integers(seq // 2, seq + 1, size=batch)
        return self.cp.asarray(np.arange(seq)[None, :] < lengths[:, None])

    def nb(self, a: Any) -> Any:
        return self.cuda.as_cuda_array(a, sync=False)

    def th(self, a: Any, precision: str = "float32") -> Any:
        """A PyTorch view of a CuPy array; bfloat16 bit patterns through int16 (a dtype every
        PyTorch takes over ``__cuda_array_interface__``), viewed as torch.bfloat16."""
        if precision == "bfloat16":
            return self.torch.as_tensor(a.view(self.cp.int16), device="cuda").view(
                self.torch.bfloat16)
        return self.torch.as_tensor(a, device="cuda")


def sgemm_bench(arr: Arrays, kc: Any, m: int, n: int, k: int, quick: bool) -> list[KernelBench]:
    cp, torch = arr.cp, arr.torch
    a, b = arr.randn(m, k), arr.randn(k, n)
    an, bn = arr.nb(a), arr.nb(b)
    bench = KernelBench("sgemm", f"{m}x{n}x{k}", "TFLOP/s", 2.0 * m * n * k)
    for version, sgemm in kc.SGEMM_VERSIONS.items():
        if not (version == 1 and quick):
            bench.impls[f"minigrad v{version}"] = lambda sgemm=sgemm: sgemm(an, bn)
    bench.impls["CuPy composite"] = lambda: cp.matmul(a, b)
    if torch is not None:
        at, bt = arr.th(a), arr.th(b)
        bench.impls["PyTorch"] = lambda: torch.matmul(at, bt)
    return [bench]


def softmax_bench(arr: Arrays, kc: Any, batch: int, precision: str = "float32"
                  ) -> list[KernelBench]:
    """Attention scores (B, A, S, S) with the key padding mask and scale 1/√D."""
    cp, torch = arr.cp, arr.torch
    shape, scale = (batch, HEADS, SEQ, SEQ), 1.0 / math.sqrt(HEAD_DIM)
    x, dy = (arr.randn(*shape, precision=precision) for _ in range(2))
    keep = arr.padding(batch, SEQ)
    flag = {"bf16_bits": True} if precision == "bfloat16" else {}
    fwd = KernelBench("softmax forward", str(shape), "GB/s", 2.0 * x.nbytes, precision=precision)
    bwd = KernelBench("softmax backward", str(shape), "GB/s", 3.0 * x.nbytes,
                      precision=precision)
    xn, dyn, keepn = arr.nb(x), arr.nb(dy), arr.nb(keep.astype(cp.uint8))
    yn = kc.softmax_forward(xn, scale, keepn, **flag)
    fwd.impls["minigrad"] = lambda: kc.softmax_forward(xn, scale, keepn, **flag)
    fwd.impls["minigrad naive"] = lambda: kc.softmax_forward_naive(xn, scale, keepn, **flag)
    bwd.impls["minigrad"] = lambda: kc.softmax_backward(yn, dyn, scale, keepn, **flag)
    bwd.impls["minigrad naive"] = lambda: kc.softmax_backward_naive(yn, dyn, scale, keepn,
                                                                    **flag)
    if precision != "bfloat16":  # CuPy has no bfloat16
        y = cp.asarray(yn)
        fwd.impls["CuPy composite"] = lambda: composite_softmax_forward(cp, x, keep, scale)
        bwd.impls["CuPy composite"] = lambda: composite_softmax_backward(cp, y, dy, keep, scale)
    if torch is not None:
        xt, keept = arr.th(x, precision).requires_grad_(True), arr.th(keep)
        yt, dyt = torch_softmax(torch, xt, keept, scale), arr.th(dy, precision)
        fwd.impls["PyTorch"] = lambda: torch_softmax(torch, xt.detach(), keept, scale)
        bwd.impls["PyTorch"] = lambda: torch.autograd.grad(yt, xt, dyt, retain_graph=True)
    return [fwd, bwd]


def layernorm_bench(arr: Arrays, kc: Any, rows: int, precision: str = "float32"
                    ) -> list[KernelBench]:
    """LayerNorm over BERT's hidden size, one row per token; eps 1e-12 as in BERT. x, dy, w, b
    in ``precision``; mean and rstd float32 for the half precisions."""
    cp, torch = arr.cp, arr.torch
    x, dy = arr.randn(rows, HIDDEN, precision=precision), arr.randn(rows, HIDDEN,
                                                                     precision=precision)
    w, b = arr.randn(HIDDEN, precision=precision), arr.randn(HIDDEN, precision=precision)
    flag = {"bf16_bits": True} if precision == "bfloat16" else {}
    xn, dyn, wn, bn = (arr.nb(a) for a in (x, dy, w, b))
    _, mn, rn = kc.layernorm_forward(xn, wn, bn, 1e-12, **flag)
    shape = f"({rows}, {HIDDEN})"  # bytes: x and y (dy, x, dx), not mean and rstd (0.3%)
    fwd = KernelBench("layernorm forward", shape, "GB/s", 2.0 * x.nbytes, precision=precision)
    bwd = KernelBench("layernorm backward", shape, "GB/s", 3.0 * x.nbytes, precision=precision)
    fwd.impls["minigrad"] = lambda: kc.layernorm_forward(xn, wn, bn, 1e-12, **flag)
    fwd.impls["minigrad naive"] = lambda: kc.layernorm_forward_naive(xn, wn, bn, 1e-12, **flag)
    bwd.impls["minigrad"] = lambda: kc.layernorm_backward(dyn, xn, wn, mn, rn, **flag)
    bwd.impls["minigrad naive"] = lambda: kc.layernorm_backward_naive(dyn, xn, wn, mn, rn,
                                                                      **flag)
    if precision != "bfloat16":  # CuPy has no bfloat16
        _, mean, rstd = composite_layernorm_forward(cp, x, w, b)
        fwd.impls["CuPy composite"] = lambda: composite_layernorm_forward(cp, x, w, b)
        bwd.impls["CuPy composite"] = lambda: composite_layernorm_backward(cp, dy, x, w, mean,
                                                                           rstd)
    if torch is not None:
        xt, wt, bt = (arr.th(a, precision).requires_grad_(True) for a in (x, w, b))
        yt = torch.nn.functional.layer_norm(xt, (HIDDEN,), wt, bt, 1e-12)
        dyt = arr.th(dy, precision)
        fwd.impls["PyTorch"] = lambda: torch.nn.functional.layer_norm(
            xt.detach(), (HIDDEN,), wt.detach(), bt.detach(), 1e-12)
        bwd.impls["PyTorch"] = (
            lambda: torch.autograd.grad(yt, (xt, wt, bt), dyt, retain_graph=True))
    return [fwd, bwd]


def attention_bench(arr: Arrays, kc: Any, batch: int, seq: int, precision: str = "float32"
                    ) -> list[KernelBench]:
    """Attention (B, A, S, D) with key padding, scale 1/√D. In half precision the forward only:
    the backward kernels take float32 (the engine casts up for them)."""
    cp, torch = arr.cp, arr.torch
    shape, scale = (batch, HEADS, seq, HEAD_DIM), 1.0 / math.sqrt(HEAD_DIM)
    q, k, v = (arr.randn(*shape, precision=precision) for _ in range(3))
    dout = arr.randn(*shape) if precision == "float32" else None
    keep = arr.padding(batch, seq)
    flag = {"bf16_bits": True} if precision == "bfloat16" else {}
    flops = 4.0 * batch * HEADS * seq * seq * HEAD_DIM
    fwd = KernelBench("attention forward", str(shape), "TFLOP/s", flops, precision=precision)
    qn, kn, vn, keepn = (arr.nb(a) for a in (q, k, v, keep.astype(cp.uint8)))
    fwd.impls["minigrad"] = lambda: kc.attention_forward(qn, kn, vn, keepn, scale, **flag)
    fwd.impls["minigrad naive"] = lambda: kc.attention_forward_naive(qn, kn, vn, keepn, scale,
                                                                     **flag)
    if precision != "bfloat16":  # CuPy has no bfloat16
        fwd.impls["CuPy composite"] = lambda: composite_attention_forward(cp, q, k, v, keep,
                                                                          scale)
    if torch is not None:
        qt, kt, vt = (arr.th(a, precision).requires_grad_(True) for a in (q, k, v))
        keept = arr.th(keep)
        fwd.impls["PyTorch"] = lambda: torch_attention(
            torch, qt.detach(), kt.detach(), vt.detach(), keept, scale)
    if precision != "float32":
        return [fwd]
    bwd = KernelBench("attention backward", str(shape), "TFLOP/s", 2 * flops)
    dn = arr.nb(dout)
    out, row_max, row_sum = kc.attention_forward(qn, kn, vn, keepn, scale)
    _, p = composite_attention_forward(cp, q, k, v, keep, scale)
    bwd.impls["minigrad"] = (
        lambda: kc.attention_backward(dn, qn, kn, vn, out, row_max, row_sum, keepn, scale))
    bwd.impls["minigrad naive"] = (
        lambda: kc.attention_backward_naive(dn, qn, kn, vn, out, row_max, row_sum, keepn,
                                           scale))
    bwd.impls["CuPy composite"] = (
        lambda: composite_attention_backward(cp, dout, q, k, v, p, keep, scale))
    if torch is not None:
        ot, dt = torch_attention(torch, qt, kt, vt, keept, scale), arr.th(dout)
        bwd.impls["PyTorch"] = lambda: torch.autograd.grad(ot, (qt, kt, vt), dt,
                                                           retain_graph=True)
    return [fwd, bwd]


def adamw_bench(arr: Arrays, kc: Any) -> list[KernelBench]:
    """One AdamW step over bert-base's parameters, flattened into one array."""
    cp, torch = arr.cp, arr.torch
    n = BERT_BASE_PARAMETERS
    p, g = arr.randn(n), arr.randn(n) * 1e-3
    m, v = cp.zeros(n, dtype=cp.float32), cp.zeros(n, dtype=cp.float32)
    hyper = (1e-4, 0.9, 0.999, 1e-8, 0.01, 10)  # lr, β₁, β₂, ε, λ, step
    bench = KernelBench("adamw step", f"({n},)", "GB/s", 7.0 * p.nbytes)
    pn, gn, mn, vn = (arr.nb(a) for a in (p, g, m, v))
    bench.impls["minigrad"] = lambda: kc.adamw_step(pn, gn, mn, vn, *hyper)
    bench.impls["minigrad naive"] = lambda: kc.adamw_step_naive(pn, gn, mn, vn, *hyper)
    bench.impls["CuPy composite"] = lambda: composite_adamw(cp, p, g, m, v, *hyper)
    if torch is not None:
        pt = arr.th(p).clone().requires_grad_(True)
        pt.grad = arr.th(g).clone()
        optimizer = torch.optim.AdamW([pt], lr=1e-4, weight_decay=0.01, fused=True)
        bench.impls["PyTorch"] = optimizer.step
    return [bench]


def kernel_benches(cp: Any, kc: Any, torch: Any, quick: bool,
                   precisions: tuple[str, ...] = ("float32",)
                   ) -> list[tuple[str, Callable[[], list[KernelBench]]]]:
    """Every kernel at BERT-base shapes and (unless quick) at one larger than the L2 cache, as
    (name, builder) pairs: each builder allocates its inputs when called, one at a time. SGEMM
    and AdamW run in float32 only (and only when float32 is among ``precisions``); softmax,
    LayerNorm and the attention forward in each precision."""
    arr = Arrays(cp, torch)
    builds = []
    if "float32" in precisions:
        builds += [
            ("sgemm 4096³", lambda: sgemm_bench(arr, kc, 4096, 4096, 4096, quick)),
            ("sgemm FFN", lambda: sgemm_bench(arr, kc, BATCH * SEQ, FFN, HIDDEN, quick)),
        ]
    for p in precisions:
        tag = "" if p == "float32" else f" {p}"
        for scale_up in (1,) if quick else (1, 8):
            builds += [
                (f"softmax ×{scale_up}{tag}",
                 lambda s=scale_up, p=p: softmax_bench(arr, kc, BATCH * s, p)),
                (f"layernorm ×{scale_up}{tag}",
                 lambda s=scale_up, p=p: layernorm_bench(arr, kc, BATCH * SEQ * s, p)),
            ]
        builds.append((f"attention S=128{tag}",
                       lambda p=p: attention_bench(arr, kc, BATCH, SEQ, p)))
        if not quick:
            builds.append((f"attention S=512{tag}",
                           lambda p=p: attention_bench(arr, kc, 8, 512, p)))
    if "float32" in precisions:
        builds.append(("adamw", lambda: adamw_bench(arr, kc)))
    return builds


def copy_bandwidth(cp: Any, timer: DeviceTimer) -> float:
    """GB/s of a 1 GiB device-to-device copy, counting the bytes read and written."""
    src = cp.ones(2**28, dtype=cp.float32)
    dst = cp.empty_like(src)
    t = timer.measure(lambda: cp.copyto(dst, src))
    return 2 * src.nbytes / (t.ms * 1e-3) / 1e9


def measure_bench(bench: KernelBench, timer: DeviceTimer, copy_gbps: float) -> list[Row]:
    """One row per implementation, with its time, rate and comparison."""
    rows: dict[str, Row] = {}
    for impl, fn in bench.impls.items():
        row = Row(bench.kernel, bench.shape, impl, unit=bench.unit, precision=bench.precision)
        try:
            t = timer.measure(fn)
        except Exception as exc:  # report the failure, keep measuring the others
            row.note = f"failed: {type(exc).__name__}: {exc}"[:300]
        else:
            row.ms, row.host_ms, row.reps, row.calls_per_rep = t.ms, t.host_ms, t.reps, t.calls
            row.rate = rate_of(bench.work, bench.unit, t.ms)
        rows[impl] = row
        print(f"{bench.kernel:20} {bench.precision:8} {bench.shape:22} {impl:16} "
              + (f"{row.ms:9.4f} ms {row.rate:8.1f} {bench.unit}" if row.ms else row.note),
              flush=True)
    cublas = rows.get("CuPy composite") if bench.kernel == "sgemm" else None
    sdpa = rows.get("PyTorch") if bench.kernel.startswith("attention") else None
    for row in rows.values():
        if row.ms is None:
            continue
        if bench.unit == "GB/s":
            row.percent, row.percent_of = 100 * row.rate / copy_gbps, "% of copy bandwidth"
        elif cublas is not None and cublas.ms is not None:
            row.percent, row.percent_of = 100 * row.rate / cublas.rate, "% of cuBLAS"
        elif sdpa is not None and sdpa.ms is not None:
            row.percent, row.percent_of = row.ms / sdpa.ms, "× PyTorch SDPA time"
    return list(rows.values())


def run_kernels(cp: Any, kc: Any, torch: Any, quick: bool, only: list[str] | None = None,
                precisions: tuple[str, ...] = ("float32",)) -> tuple[list[Row], float]:
    """Every kernel bench (or those whose name starts with one of ``only``), measured."""
    timer = DeviceTimer(cp)
    copy_gbps = copy_bandwidth(cp, timer)
    print(f"device-to-device copy: {copy_gbps:.0f} GB/s (read + write)", flush=True)
    rows: list[Row] = []
    for name, build in kernel_benches(cp, kc, torch, quick, precisions):
        if only is not None and not name.startswith(tuple(only)):
            continue
        try:
            benches = build()
        except Exception as exc:  # report the failure, keep measuring the others
            rows.append(Row(name, "", "all", note=f"set-up failed: {type(exc).__name__}: "
                                                  f"{exc}"[:300]))
            print(f"{name}: {rows[-1].note}", flush=True)
            continue
        for bench in benches:
            rows += measure_bench(bench, timer, copy_gbps)
        del benches
        cp.get_default_memory_pool().free_all_blocks()
    return rows, copy_gbps


# --- the BERT training step -----------------------------------------------------------------
@dataclass
class StepResult:
    framework: str  # "minigrad" or "PyTorch"
    device: str  # "cpu" or "cuda"
    ms: float | None = None
    steps: int = 0
    note: str = ""
    backend: str = ""  # minigrad's kernel backend on that device


def bert_batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    lengths = rng.integers(SEQ // 2, SEQ + 1, size=BATCH)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1000, VOCAB, size=(BATCH, SEQ)) * mask
    return {"input_ids": ids, "attention_mask": mask,
            "token_type_ids": np.zeros((BATCH, SEQ), dtype=np.int64),
            "labels": rng.integers(0, 2, size=BATCH)}


def time_steps(step: Callable[[], None], sync: Callable[[], None], warmup: int,
               steps: int) -> float:
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def minigrad_step(device: str, steps: int, warmup: int, kernel_backend: str) -> StepResult:
    result = StepResult("minigrad", device, steps=steps, backend=kernel_backend)
    try:
        import minigrad
        from minigrad.models.bert import BertConfig, BertForSequenceClassification
        from minigrad.optim import AdamW

        minigrad.set_backend(kernel_backend)

        minigrad.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(num_labels=2)).to(device)
        model.train()
        optimizer = AdamW(model.parameters(), lr=1e-4)
        batch = bert_batch()

        def step() -> None:
            optimizer.zero_grad()
            model(**batch).loss.backward()  # the batch crosses to the device here
            optimizer.step()

        if device == "cuda":
            import cupy as cp

            def sync() -> None:
                cp.cuda.Device().synchronize()
        else:
            def sync() -> None:
                pass
        result.ms = time_steps(step, sync, warmup, steps)
    except Exception as exc:  # the GPU path depends on the engine's CuPy support
        result.note = f"not available: {type(exc).__name__}: {exc}"[:300]
    return result


def torch_step(torch: Any, device: str, steps: int, warmup: int) -> StepResult:
    result = StepResult("PyTorch", device, steps=steps)
    try:
        import transformers
    except ImportError:
        result.note = "not available: transformers is not installed"
        return result
    try:
        torch.manual_seed(0)
        config = transformers.BertConfig(num_labels=2)  # bert-base defaults
        model = transformers.BertForSequenceClassification(config).to(device)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = {k: torch.as_tensor(a) for k, a in bert_batch().items()}

        def step() -> None:
            optimizer.zero_grad()
            inputs = {k: a.to(device, non_blocking=True) for k, a in batch.items()}
            model(**inputs).loss.backward()
            optimizer.step()

        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        result.ms = time_steps(step, sync, warmup, steps)
        result.note = f"attention: {model.config._attn_implementation}"
    except Exception as exc:
        result.note = f"not available: {type(exc).__name__}: {exc}"[:300]
    return result


# --- reports --------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    copy = ("not measured" if report["copy_gbps"] is None
            else f"{report['copy_gbps']:.0f} GB/s (read + write)")
    lines = [f"# GPU benchmark: {report['device']['name']}, {report['date']}", "",
             f"Command: `{report['command']}`. Device-to-device copy: {copy}.", "",
             "| kernel | shape | implementation | ms | host ms | rate | vs |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in report["kernels"]:
        if r.get("precision", "float32") != "float32":
            r = {**r, "kernel": f"{r['kernel']} ({r['precision']})"}
        if r["ms"] is None:
            lines.append(f"| {r['kernel']} | {r['shape']} | {r['impl']} | | | | {r['note']} |")
            continue
        vs = ""
        if r["percent"] is not None:
            vs = (f"{r['percent']:.2f} {r['percent_of']}" if r["percent_of"].startswith("×")
                  else f"{r['percent']:.0f}{r['percent_of']}")
        lines.append(f"| {r['kernel']} | {r['shape']} | {r['impl']} | {r['ms']:.4f} | "
                     f"{r['host_ms']:.3f} | {r['rate']:.1f} {r['unit']} | {vs} |")
    lines += half_against_float32(report["kernels"])
    lines += ["", f"## BERT-base training step (batch {BATCH}, sequence {SEQ})", "",
              "| framework | device | ms per step | steps | note |", "|---|---|---:|---:|---|"]
    for s in report["bert_step"]:
        ms = f"{s['ms']:.1f}" if s["ms"] is not None else "not available"
        framework = s["framework"] + (f" ({s['backend']} backend)" if s.get("backend") else "")
        lines.append(f"| {framework} | {s['device']} | {ms} | {s['steps']} | {s['note']} |")
    return "\n".join(lines) + "\n"


def half_against_float32(kernels: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: each half-precision time against the same implementation's float32 time
    at the same kernel and shape (none when no half precision was measured)."""
    fp32 = {(r["kernel"], r["shape"], r["impl"]): r for r in kernels
            if r.get("precision", "float32") == "float32" and r["ms"] is not None}
    lines = []
    for r in kernels:
        base = fp32.get((r["kernel"], r["shape"], r["impl"]))
        if r.get("precision", "float32") == "float32" or r["ms"] is None or base is None:
            continue
        lines.append(f"| {r['kernel']} | {r['shape']} | {r['impl']} | {r['precision']} | "
                     f"{base['ms']:.4f} | {r['ms']:.4f} | {r['ms'] / base['ms']:.2f} | "
                     f"{base['rate']:.1f} → {r['rate']:.1f} {r['unit']} |")
    if not lines:
        return []
    return ["", "## Half precision against float32", "",
            "| kernel | shape | implementation | precision | float32 ms | half ms | "
            "half ÷ float32 time | rate |", "|---|---|---|---|---:|---:|---:|---|", *lines]


def chart(report: dict[str, Any], path: Path) -> None:
    """Left: each kernel's time relative to the CuPy composite; right: the BERT step times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 7), width_ratios=(3, 1))
    groups: dict[tuple[str, str], dict[str, float]] = {}
    for r in report["kernels"]:
        if r["ms"] is not None:
            kernel = r["kernel"] + ("" if r.get("precision", "float32") == "float32"
                                    else f" ({r['precision']})")
            groups.setdefault((kernel, r["shape"]), {})[r["impl"]] = r["ms"]
    impls = sorted({impl for g in groups.values() for impl in g})
    width = 0.8 / max(1, len(impls))
    for i, impl in enumerate(impls):
        ys = [g[impl] / g["CuPy composite"] if impl in g and "CuPy composite" in g else 0.0
              for g in groups.values()]
        left.bar(np.arange(len(groups)) + i * width, ys, width, label=impl)
    left.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    left.set_xticklabels([f"{k}\n{s}" for k, s in groups], rotation=60, ha="right", fontsize=7)
    left.set_yscale("log")
    left.axhline(1.0, color="grey", lw=0.8)
    left.set_ylabel("time ÷ CuPy composite time (lower is faster)")
    left.legend(fontsize=8)
    left.set_title(f"kernels on {report['device']['name']}")
    steps = [s for s in report["bert_step"] if s["ms"] is not None]
    right.bar([f"{s['framework']}\n{s['device']} {s.get('backend', '')}" for s in steps],
              [s["ms"] for s in steps],
              color=["tab:blue" if s["device"] == "cpu" else "tab:green" for s in steps])
    right.set_yscale("log")
    right.set_ylabel("ms per training step")
    right.set_title("bert-base step, batch 32 × 128")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(report: dict[str, Any], out: Path) -> list[Path]:
    """The JSON, Markdown and PNG files of one run, named by device and date."""
    out.mkdir(parents=True, exist_ok=True)
    device = "".join(c if c.isalnum() else "_" for c in report["device"]["name"]).strip("_")
    stem = out / f"gpu_{device.lower()}_{report['date']}"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(report, indent=1) + "\n")
    paths[1].write_text(markdown(report))
    chart(report, paths[2])
    return paths


def device_info(cp: Any, cuda: Any) -> dict[str, Any]:
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return {"name": name.decode() if isinstance(name, bytes) else str(name),
            "multiprocessors": props["multiProcessorCount"],
            "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "l2_mib": round(props["l2CacheSize"] / 2**20, 1),
            "compute_capability": f"{props['major']}.{props['minor']}",
            "driver": cp.cuda.runtime.driverGetVersion(),
            "runtime": cp.cuda.runtime.runtimeGetVersion()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-bert", action="store_true", help="the kernels only")
    parser.add_argument("--skip-kernels", action="store_true", help="the BERT step only")
    parser.add_argument("--quick", action="store_true",
                        help="BERT shapes only, no SGEMM v1, fewer steps")
    parser.add_argument("--only", nargs="+", metavar="KERNEL", default=None,
                        help="time only these kernels (sgemm, softmax, layernorm, attention, "
                             "adamw)")
    parser.add_argument("--precision", nargs="+", default=["float32"],
                        choices=["float32", "float16", "bfloat16"],
                        help="the kernels' input dtypes (softmax, LayerNorm and the attention "
                             "forward take all three; SGEMM and AdamW float32 only)")
    parser.add_argument("--cpu-steps", type=int, default=3,
                        help="timed CPU training steps (0 skips the CPU)")
    parser.add_argument("--gpu-steps", type=int, default=10, help="timed GPU training steps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    cp, cuda = find_gpu()
    kc = load_kernels()
    kc.set_allocator(lambda shape, dtype: cp.empty(shape, dtype=dtype))
    try:
        import torch

        if not torch.cuda.is_available():
            raise ImportError("torch.cuda.is_available() is False")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    except ImportError as exc:
        print(f"PyTorch CUDA not available ({exc}): its columns are left out", flush=True)
        torch = None

    import numba

    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": device_info(cp, cuda),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "cupy": cp.__version__, "numba": numba.__version__,
                     "numba.cuda": getattr(cuda, "implementation", "?"),
                     "torch": torch.__version__ if torch is not None else None},
        "cpu": {"processor": platform.processor() or platform.machine(),
                "cores": os.cpu_count()},
        "tf32": False,
        "copy_gbps": None,
        "kernels": [],
        "bert_step": [],
    }
    print(f"{report['device']['name']}: {report['device']}", flush=True)
    if not args.skip_kernels:
        rows, report["copy_gbps"] = run_kernels(cp, kc, torch, args.quick, args.only,
                                                tuple(args.precision))
        report["kernels"] = [asdict(r) for r in rows]
    if not args.skip_bert:
        warmup = 1 if args.quick else 3
        runs: list[StepResult] = []
        if args.cpu_steps > 0:
            runs.append(minigrad_step("cpu", args.cpu_steps, 1, "numba"))
            if torch is not None:
                runs.append(torch_step(torch, "cpu", args.cpu_steps, 1))
        for kernel_backend in ("cupy", "cuda"):  # CuPy composites, then minigrad's kernels
            runs.append(minigrad_step("cuda", args.gpu_steps, warmup, kernel_backend))
        if torch is not None:
            runs.append(torch_step(torch, "cuda", args.gpu_steps, warmup))
        for r in runs:
            print(f"bert-base step {r.framework:8} {r.device:4} {r.backend:5} "
                  + (f"{r.ms:10.1f} ms" if r.ms is not None else r.note), flush=True)
        report["bert_step"] = [asdict(r) for r in runs]
    for path in write_reports(report, args.out):
        print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
