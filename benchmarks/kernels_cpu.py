"""Each Numba CPU kernel against its NumPy composite and PyTorch, at bert-mini shapes.

    python benchmarks/kernels_cpu.py           # writes benchmarks/results/kernels_cpu.{json,md,png}
    python benchmarks/kernels_cpu.py --reps 5  # fewer repetitions (default 15)

Shapes (float32): bert-mini at batch B=32, sequence S=128: hidden H=256, A=4 heads of D=64,
feed-forward F=1024, so M = B·S = 4096 token rows. Cross-entropy is the masked-LM head's,
(4096, 30522) logits over the vocabulary, measured twice: every row a target (the kernel's
bare speed) and 15% of rows a target, the rest ``ignore_index`` (a real masked-LM batch; the
kernel skips ignored rows, the composite and PyTorch do not). The optimizers update bert-mini's
encoder parameters (11.2 M, 1 + 4·16 + 2 arrays). The key padding mask gives each sequence a
length drawn from [64, 128].

Every figure is the median of ``--reps`` timed calls after 2 warm-up calls; the three
implementations of a kernel take turns call by call, so a change of load on the shared machine
hits them alike. NumPy, OpenBLAS, Numba and PyTorch all run on ``--threads`` threads (set
before they load). GB/s counts the bytes a kernel must move at least (each input read once,
each output written once); GFLOP/s counts the products' flops. "× NumPy" is the NumPy time
over the kernel's (a speedup when above 1), "× torch" the PyTorch time over the kernel's.

Compile times come from two fresh processes sharing an empty NUMBA_CACHE_DIR: the first
compiles each kernel on its first call (float32), the second loads the same machine code from
the cache.
"""

from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--reps", type=int, default=15)
ARGS.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
ARGS.add_argument("--probe-compile", action="store_true", help=argparse.SUPPRESS)

if __name__ == "__main__":
    _threads = str(ARGS.parse_args().threads)
    for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        os.environ[_var] = _threads  # before NumPy, Numba and torch load their thread pools

import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from minigrad.kernels.cpu import attention as att  # noqa: E402
from minigrad.kernels.cpu import cross_entropy as ce  # noqa: E402
from minigrad.kernels.cpu import gelu as ge  # noqa: E402
from minigrad.kernels.cpu import layernorm as ln  # noqa: E402
from minigrad.kernels.cpu import matmul as mm  # noqa: E402
from minigrad.kernels.cpu import optim as opt  # noqa: E402
from minigrad.kernels.cpu import softmax as sm  # noqa: E402

B, S, H, A, FFN, VOCAB, LAYERS = 32, 128, 256, 4, 1024, 30522, 4
D, M = H // A, B * S
F32 = 4  # bytes per float32
MATMUL_SIZES = (256, 512, 1024, 2048)


# --- timing -----------------------------------------------------------------------------------
def race(fns: dict[str, Callable[[], object]], reps: int
         ) -> tuple[dict[str, float], dict[str, float]]:
    """Median and minimum milliseconds of each function, called in turns after 2 warm-ups."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rnd in range(reps + 2):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if rnd >= 2:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return ({name: statistics.median(ts) for name, ts in times.items()},
            {name: min(ts) for name, ts in times.items()})


# --- the inputs -------------------------------------------------------------------------------
def key_mask(rng: np.random.Generator) -> np.ndarray:
    lengths = rng.integers(S // 2, S + 1, B)
    return (np.arange(S)[None, :] < lengths[:, None]).astype(np.int64)  # (B, S)


def encoder_parameter_shapes() -> list[tuple[int, ...]]:
    """bert-mini's encoder (BertModel): embeddings, 4 layers, pooler."""
    shapes = [(VOCAB, H), (512, H), (2, H), (H,), (H,)]
    for _ in range(LAYERS):
        shapes += [(H, H), (H,)] * 4 + [(H,), (H,)]  # Q, K, V, output; LayerNorm
        shapes += [(H, FFN), (FFN,), (FFN, H), (H,), (H,), (H,)]  # FFN in, out; LayerNorm
    return shapes + [(H, H), (H,)]


# --- one benchmark per kernel -----------------------------------------------------------------
class Bench:
    """Races each kernel against its NumPy composite and PyTorch, and keeps the rows."""

    def __init__(self, reps: int):
        import torch

        self.torch = torch
        self.reps = reps
        self.rows: list[dict] = []
        self.rng = np.random.default_rng(0)
        self.mask = key_mask(self.rng)  # (B, S)
        self.pad = torch.from_numpy(self.mask == 0)[:, None, None, :]  # (B, 1, 1, S)

    def record(self, name: str, shape: str, fns: dict, nbytes: float = 0.0,
               flops: float = 0.0, note: str = "") -> None:
        ms, best = race(fns, self.reps)
        row = {"kernel": name, "shape": shape, "note": note,
               "numba_ms": ms["numba"], "numpy_ms": ms["numpy"], "torch_ms": ms["torch"],
               "x_numpy": ms["numpy"] / ms["numba"], "x_torch": ms["torch"] / ms["numba"],
               "min_ms": best}
        if nbytes:
            row["GB_per_s"] = {k: nbytes / v / 1e6 for k, v in ms.items()}
        if flops:
            row["GFLOP_per_s"] = {k: flops / v / 1e6 for k, v in ms.items()}
        self.rows.append(row)
        print(f"{name:40s} numba {ms['numba']:8.2f} ms  numpy {ms['numpy']:8.2f} ms  "
              f"torch {ms['torch']:8.2f} ms  ×numpy {row['x_numpy']:5.2f}  "
              f"×torch {row['x_torch']:5.2f}", flush=True)

    def t(self, a: np.ndarray, grad: bool = False) -> Any:
        return self.torch.from_numpy(a).requires_grad_(grad)

    def torch_backward(self, out: Any, grad: np.ndarray, inputs: list) -> Callable:
        """Replays the backward of a graph built once (retain_graph), grads cleared first."""
        g = self.torch.from_numpy(grad)

        def run() -> None:
            for x in inputs:
                x.grad = None
            out.backward(g, retain_graph=True)
        return run

    def randn(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32)


def bench_softmax(bench: Bench) -> None:
    """Attention scores (B, A, S, S), scaled and key-masked, as BERT's softmax sees them."""
    x, dy = bench.randn(B, A, S, S), bench.randn(B, A, S, S)
    mask, scale, fmin = bench.mask, 1 / math.sqrt(D), float(np.finfo(np.float32).min)
    y = sm.softmax_forward(x, scale, mask)
    xt = bench.t(x, True)
    yt = (xt * scale).masked_fill(bench.pad, fmin).softmax(-1)
    shape = f"({B}, {A}, {S}, {S}) + mask ({B}, {S})"
    with bench.torch.no_grad():
        bench.record("softmax forward (scale+mask)", shape, {
            "numba": lambda: sm.softmax_forward(x, scale, mask),
            "numpy": lambda: sm.softmax_forward_reference(x, scale, mask),
            "torch": lambda: (bench.t(x) * scale).masked_fill(bench.pad, fmin).softmax(-1)},
            nbytes=2 * x.size * F32)
    bench.record("softmax backward", shape, {
        "numba": lambda: sm.softmax_backward(y, dy, scale, mask),
        "numpy": lambda: sm.softmax_backward_reference(y, dy, scale, mask),
        "torch": bench.torch_backward(yt, dy, [xt])}, nbytes=3 * x.size * F32)


def bench_layernorm(bench: Bench) -> None:
    """LayerNorm over the (B·S, H) hidden states."""
    import torch.nn.functional as TF

    x, dy, w, b = bench.randn(M, H), bench.randn(M, H), bench.randn(H), bench.randn(H)
    _, mean, rstd = ln.layernorm_forward(x, w, b)
    xt, wt, bt = bench.t(x, True), bench.t(w, True), bench.t(b, True)
    yt = TF.layer_norm(xt, (H,), wt, bt, 1e-5)
    with bench.torch.no_grad():
        bench.record("layernorm forward", f"({M}, {H})", {
            "numba": lambda: ln.layernorm_forward(x, w, b),
            "numpy": lambda: ln.layernorm_forward_reference(x, w, b),
            "torch": lambda: TF.layer_norm(bench.t(x), (H,), bench.t(w), bench.t(b), 1e-5)},
            nbytes=2 * x.size * F32)
    bench.record("layernorm backward", f"({M}, {H})", {
        "numba": lambda: ln.layernorm_backward(dy, x, w, mean, rstd),
        "numpy": lambda: ln.layernorm_backward_reference(dy, x, w, mean, rstd),
        "torch": bench.torch_backward(yt, dy, [xt, wt, bt])}, nbytes=3 * x.size * F32)


def bench_gelu(bench: Bench) -> None:
    """GELU (both forms) and bias + GELU on the feed-forward activations (B·S, F)."""
    import torch.nn.functional as TF

    x, dy, b = bench.randn(M, FFN), bench.randn(M, FFN), bench.randn(FFN)
    shape = f"({M}, {FFN})"
    for approx in ("none", "tanh"):
        xt = bench.t(x, True)
        yt = TF.gelu(xt, approximate=approx)
        with bench.torch.no_grad():
            bench.record(f"gelu forward ({approx})", shape, {
                "numba": lambda a=approx: ge.gelu_forward(x, a),
                "numpy": lambda a=approx: ge.gelu_forward_reference(x, a),
                "torch": lambda a=approx: TF.gelu(bench.t(x), approximate=a)},
                nbytes=2 * x.size * F32)
        bench.record(f"gelu backward ({approx})", shape, {
            "numba": lambda a=approx: ge.gelu_backward(x, dy, a),
            "numpy": lambda a=approx: ge.gelu_backward_reference(x, dy, a),
            "torch": bench.torch_backward(yt, dy, [xt])}, nbytes=3 * x.size * F32)
    xt, bt = bench.t(x, True), bench.t(b, True)
    yt = TF.gelu(xt + bt)
    with bench.torch.no_grad():
        bench.record("bias+gelu forward", f"{shape} + ({FFN},)", {
            "numba": lambda: ge.bias_gelu_forward(x, b),
            "numpy": lambda: ge.bias_gelu_forward_reference(x, b),
            "torch": lambda: TF.gelu(bench.t(x) + bench.t(b))}, nbytes=2 * x.size * F32)
    bench.record("bias+gelu backward", f"{shape} + ({FFN},)", {
        "numba": lambda: ge.bias_gelu_backward(x, b, dy),
        "numpy": lambda: ge.bias_gelu_backward_reference(x, b, dy),
        "torch": bench.torch_backward(yt, dy, [xt, bt])}, nbytes=3 * x.size * F32)


def bench_attention(bench: Bench) -> None:
    """q, k, v as the model makes them: (B, A, S, D) views of (B, S, H) projections."""
    import torch.nn.functional as TF

    q, k, v, dout = (bench.randn(B, S, H).reshape(B, S, A, D).transpose(0, 2, 1, 3)
                     for _ in range(4))
    mask, scale, fmin = bench.mask, 1 / math.sqrt(D), float(np.finfo(np.float32).min)
    _, probs = att.attention_forward(q, k, v, mask)
    qt, kt, vt = bench.t(q, True), bench.t(k, True), bench.t(v, True)

    def torch_attention(q: Any, k: Any, v: Any) -> Any:
        s = (q @ k.transpose(-1, -2)) * scale
        return s.masked_fill(bench.pad, fmin).softmax(-1) @ v

    out_t = torch_attention(qt, kt, vt)
    shape = f"q, k, v ({B}, {A}, {S}, {D}) + mask"
    product_flops = 2 * B * A * S * S * D  # one (S, D)·(D, S) or (S, S)·(S, D) product per head
    with bench.torch.no_grad():
        keep = ~bench.pad
        sdpa, _ = race({"sdpa": lambda: TF.scaled_dot_product_attention(
            bench.t(q), bench.t(k), bench.t(v), attn_mask=keep)}, bench.reps)
        bench.record("attention forward", shape, {
            "numba": lambda: att.attention_forward(q, k, v, mask),
            "numpy": lambda: att.attention_forward_reference(q, k, v, mask),
            "torch": lambda: torch_attention(bench.t(q), bench.t(k), bench.t(v))},
            flops=2 * product_flops, note=f"torch SDPA (fused): {sdpa['sdpa']:.2f} ms")
    bench.record("attention backward", shape, {
        "numba": lambda: att.attention_backward(dout, q, k, v, probs, mask),
        "numpy": lambda: att.attention_backward_reference(dout, q, k, v, probs, mask),
        "torch": bench.torch_backward(out_t, dout, [qt, kt, vt])}, flops=4 * product_flops)


def bench_cross_entropy(bench: Bench) -> None:
    """The masked-LM head's (B·S, vocab) logits: every row a target, then 15% of rows."""
    import torch.nn.functional as TF

    z = bench.randn(M, VOCAB)
    dloss = np.full(M, 1.0 / M, dtype=np.float32)
    for share in (1.0, 0.15):
        target = bench.rng.integers(0, VOCAB, M)
        target[bench.rng.random(M) >= share] = -100
        _, zmax, lsum = ce.cross_entropy_forward(z, target)
        _, rmax, rlsum = ce.cross_entropy_forward_reference(z, target)
        tt = bench.torch.from_numpy(target)
        zt = bench.t(z, True)
        loss_t = TF.cross_entropy(zt, tt, reduction="none")
        label = "every row" if share == 1.0 else "15% of rows (MLM)"
        with bench.torch.no_grad():
            bench.record(f"cross-entropy forward, {label}", f"({M}, {VOCAB})", {
                "numba": lambda tg=target: ce.cross_entropy_forward(z, tg),
                "numpy": lambda tg=target: ce.cross_entropy_forward_reference(z, tg),
                "torch": lambda tt=tt: TF.cross_entropy(bench.t(z), tt, reduction="none")},
                nbytes=z.size * F32)
        bench.record(f"cross-entropy backward, {label}", f"({M}, {VOCAB})", {
            "numba": lambda tg=target, a=zmax, s=lsum: ce.cross_entropy_backward(
                dloss, z, tg, a, s),
            "numpy": lambda tg=target, a=rmax, s=rlsum: ce.cross_entropy_backward_reference(
                dloss, z, tg, a, s),
            "torch": bench.torch_backward(loss_t, dloss, [zt])}, nbytes=2 * z.size * F32)


def bench_optimizers(bench: Bench) -> None:
    """One update of bert-mini's encoder parameters, array by array."""
    torch = bench.torch
    shapes = encoder_parameter_shapes()
    n_params = sum(math.prod(s) for s in shapes)
    label = f"{len(shapes)} arrays, {n_params / 1e6:.1f} M"

    def state() -> list[list[np.ndarray]]:  # [p, g, m, v] per parameter
        arrays = [[bench.randn(*s) * np.float32(0.02) for _ in range(4)] for s in shapes]
        for a in arrays:
            a[3] = np.abs(a[3])
        return arrays

    ours, ref, theirs = state(), state(), state()
    params = [bench.t(p) for p, _, _, _ in theirs]
    for p, (_, g, _, _) in zip(params, theirs, strict=True):
        p.grad = torch.from_numpy(g)
    hyper = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01}
    fused, _ = race({"fused": torch.optim.AdamW(params, **hyper, fused=True).step}, bench.reps)

    def adamw_all(states: list, step: Callable) -> None:
        for p, g, m, v in states:
            step(p, g, m, v, hyper["lr"], *hyper["betas"], hyper["eps"],
                 hyper["weight_decay"], 10)

    bench.record("AdamW step", label, {
        "numba": lambda: adamw_all(ours, opt.adamw_step),
        "numpy": lambda: adamw_all(ref, opt.adam_step_reference),
        "torch": torch.optim.AdamW(params, **hyper).step}, nbytes=7 * n_params * F32,
        note=f"torch.optim default (for-loop); fused=True: {fused['fused']:.2f} ms")
    sgd = torch.optim.SGD(params, lr=1e-2, momentum=0.9, weight_decay=0.01)
    sgd.step()  # creates the momentum buffers: the timed steps are all past the first

    def sgd_all(states: list, step: Callable) -> None:
        for p, g, m, _ in states:
            step(p, g, m, 1e-2, 0.9, 0.0, 0.01, False, 2)

    bench.record("SGD step (momentum, weight decay)", label, {
        "numba": lambda: sgd_all(ours, opt.sgd_step),
        "numpy": lambda: sgd_all(ref, opt.sgd_step_reference),
        "torch": sgd.step}, nbytes=5 * n_params * F32)


def bench_matmul(reps: int) -> list[dict]:
    import torch

    rows = []
    rng = np.random.default_rng(1)
    for n in MATMUL_SIZES:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        fns = {"numpy (OpenBLAS)": lambda a=a, b=b: a @ b,
               "torch": lambda at=at, bt=bt: at @ bt}
        for version, fn in mm.VERSIONS.items():
            if version == "v0_naive" and n > 512:
                continue  # minutes per call: its speed is clear at 256 and 512
            fns[version] = lambda fn=fn, a=a, b=b: fn(a, b)
        ms, _ = race(fns, reps if n <= 1024 else max(3, reps // 3))
        blas = ms["numpy (OpenBLAS)"]
        for name, v in ms.items():
            rows.append({"n": n, "impl": name, "ms": v, "GFLOP_per_s": 2 * n**3 / v / 1e6,
                         "pct_of_numpy": 100 * blas / v})
        print(f"matmul n={n}: " + ", ".join(
            f"{name} {2 * n**3 / v / 1e6:.1f} GF/s ({100 * blas / v:.0f}%)"
            for name, v in ms.items()), flush=True)
    return rows


# --- compile and cache-load times -------------------------------------------------------------
def probe_compile() -> None:
    """In a child process: seconds of each kernel's first call on tiny float32 inputs."""
    rng = np.random.default_rng(2)
    f = np.float32
    x4 = rng.standard_normal((2, 2, 8, 8)).astype(f)
    mask = np.ones((2, 8))
    x2 = rng.standard_normal((8, 16)).astype(f)
    w = np.ones(16, f)
    q = rng.standard_normal((2, 2, 8, 4)).astype(f)
    target = np.arange(8) % 16
    p = rng.standard_normal(64).astype(f)
    calls: dict[str, Callable[[], object]] = {
        "softmax_forward": lambda: sm.softmax_forward(x4, 0.5, mask),
        "softmax_backward": lambda: sm.softmax_backward(x4, x4, 0.5, mask),
        "layernorm_forward": lambda: ln.layernorm_forward(x2, w, w),
        "layernorm_backward": lambda: ln.layernorm_backward(x2, x2, w, w[:8], w[:8]),
        "gelu_forward": lambda: ge.gelu_forward(x2),
        "gelu_backward": lambda: ge.gelu_backward(x2, x2),
        "bias_gelu_forward": lambda: ge.bias_gelu_forward(x2, w),
        "bias_gelu_backward": lambda: ge.bias_gelu_backward(x2, w, x2),
        "attention_forward": lambda: att.attention_forward(q, q, q, mask),
        "attention_backward": lambda: att.attention_backward(q, q, q, q, x4, mask),
        "cross_entropy_forward": lambda: ce.cross_entropy_forward(x2, target),
        "cross_entropy_backward": lambda: ce.cross_entropy_backward(w[:8], x2, target, w[:8],
                                                                    w[:8]),
        "adamw_step": lambda: opt.adamw_step(p, p.copy(), p.copy(), p * p, 1e-3, 0.9, 0.999,
                                             1e-8, 0.01, 1),
        "sgd_step": lambda: opt.sgd_step(p, p.copy(), p.copy(), 1e-2, 0.9, 0.0, 0.0, False, 2),
        "matmul_v3_packed": lambda: mm.matmul(x2, x2.T.copy()),
    }
    seconds = {}
    for name, call in calls.items():
        t0 = time.perf_counter()
        call()
        seconds[name] = time.perf_counter() - t0
    print(json.dumps(seconds))


def compile_times() -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cmd = [sys.executable, __file__, "--probe-compile"]
        runs = [json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                          text=True).stdout) for _ in range(2)]
    return {name: {"compile_s": runs[0][name], "cached_s": runs[1][name]} for name in runs[0]}


# --- the report -------------------------------------------------------------------------------
def machine() -> dict:
    import numba
    import torch

    model = platform.processor()
    cores = os.cpu_count()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = int(fields.get("CPU(s)", cores))
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    return {"cpu": model, "cores": cores, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "torch": torch.__version__,
            "numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
            "numba_threading_layer": _threading_layer()}


def _threading_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return "not started"


def write_markdown(path: Path, result: dict) -> None:
    m = result["machine"]
    lines = [
        "# Numba CPU kernels vs NumPy composites vs PyTorch",
        "",
        f"`{result['command']}` · {m['cpu']}, {m['cores']} cores · {result['threads']} threads "
        f"(Numba {m['numba']} `{m['numba_threading_layer']}`, NumPy {m['numpy']}, "
        f"torch {m['torch']}) · float32 · median of {result['reps']} · load average "
        f"{result['load_before']} before, {result['load_after']} after (the machine is shared)",
        "",
        "| kernel | shape | Numba ms | NumPy ms | torch ms | × NumPy | × torch | Numba GB/s "
        "or GFLOP/s | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["kernels"]:
        rate = (f"{r['GB_per_s']['numba']:.1f} GB/s" if "GB_per_s" in r
                else f"{r['GFLOP_per_s']['numba']:.1f} GFLOP/s")
        lines.append(f"| {r['kernel']} | {r['shape']} | {r['numba_ms']:.2f} | "
                     f"{r['numpy_ms']:.2f} | {r['torch_ms']:.2f} | {r['x_numpy']:.2f} | "
                     f"{r['x_torch']:.2f} | {rate} | {r['note']} |")
    lines += ["", "## Matmul (float32, n × n), GFLOP/s and % of NumPy's OpenBLAS", "",
              "| n | " + " | ".join(_impls(result)) + " |",
              "|---:|" + "---:|" * len(_impls(result))]
    for n in MATMUL_SIZES:
        cells = []
        for impl in _impls(result):
            r = next((r for r in result["matmul"] if r["n"] == n and r["impl"] == impl), None)
            cells.append("-" if r is None else f"{r['GFLOP_per_s']:.1f} "
                         f"({r['pct_of_numpy']:.0f}%)")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "## Compile time (first call, float32) and cached load (second process)", "",
              "| kernel | compile s | cached s |", "|---|---:|---:|"]
    for name, c in result["compile"].items():
        lines.append(f"| {name} | {c['compile_s']:.2f} | {c['cached_s']:.3f} |")
    path.write_text("\n".join(lines) + "\n")


def _impls(result: dict) -> list[str]:
    return list(dict.fromkeys(r["impl"] for r in result["matmul"]))


def write_chart(path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6.5),
                                      gridspec_kw={"width_ratios": [3, 2]})
    rows = result["kernels"]
    y = np.arange(len(rows))
    left.barh(y - 0.2, [r["x_numpy"] for r in rows], height=0.4, label="NumPy composite time")
    left.barh(y + 0.2, [r["x_torch"] for r in rows], height=0.4, label="PyTorch time")
    left.axvline(1.0, color="black", lw=0.8)
    left.axvline(1.5, color="gray", ls="--", lw=0.8, label="1.5×")
    left.set_yticks(y, [r["kernel"] for r in rows], fontsize=8)
    left.invert_yaxis()
    left.set_xscale("log")
    left.set_xlabel("time over the Numba kernel's (> 1: the kernel is faster)")
    left.set_title(f"bert-mini shapes, float32, {result['threads']} threads")
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    for impl in _impls(result):
        pts = [(r["n"], r["GFLOP_per_s"]) for r in result["matmul"] if r["impl"] == impl]
        right.plot(*zip(*pts, strict=True), marker="o", label=impl)
    right.set_xscale("log", base=2)
    right.set_xticks(MATMUL_SIZES, [str(n) for n in MATMUL_SIZES])
    right.set_xlabel("n")
    right.set_ylabel("GFLOP/s")
    right.set_title("float32 matmul, n × n")
    right.legend(fontsize=8)
    fig.suptitle(f"{result['machine']['cpu']}, {result['machine']['cores']} cores "
                 f"(load {result['load_before'][0]:.1f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = ARGS.parse_args()
    if args.probe_compile:
        probe_compile()
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    print("compile and cache-load times (two child processes)...", flush=True)
    compiled = compile_times()
    bench = Bench(args.reps)
    for family in (bench_softmax, bench_layernorm, bench_gelu, bench_attention,
                   bench_cross_entropy, bench_optimizers):
        family(bench)
    kernels = bench.rows
    matmul = bench_matmul(args.reps)
    result = {
        "command": "python benchmarks/kernels_cpu.py " + " ".join(sys.argv[1:]),
        "threads": args.threads, "reps": args.reps, "dtype": "float32",
        "shapes": {"B": B, "S": S, "H": H, "A": A, "D": D, "FFN": FFN, "vocab": VOCAB},
        "machine": machine(), "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "kernels": kernels, "matmul": matmul, "compile": compiled,
    }
    (out / "kernels_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(out / "kernels_cpu.md", result)
    write_chart(out / "kernels_cpu.png", result)
    print(f"wrote {out}/kernels_cpu.{{json,md,png}}")


if __name__ == "__main__":
    main()
