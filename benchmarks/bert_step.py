"""A BERT training step (or forward pass) in minigrad against the same model in PyTorch eager.

    python benchmarks/bert_step.py --size mini --batch 32 --seq 128 --threads 2
    python benchmarks/bert_step.py --size mini --threads 2 --mode forward --json
    python benchmarks/bert_step.py --size tiny --threads 1 --backend numpy --profile
    python benchmarks/bert_step.py --seq 128 256 512 --batch 8 16 32 64 --plot scaling.png

Several ``--seq`` or ``--batch`` values make a grid: every (S, batch) point is a race of its own
(the models are built once), the JSON holds one record per point (``points``), and ``--plot``
draws ms per step against tokens per step (batch × S) for both sides, a line per S.

The model is ``BertForSequenceClassification`` (2 labels, vocabulary 30522, post-LN, exact GELU,
dropout 0.1), float32, at bert-tiny (L=2, H=128, A=2, FFN=512) or bert-mini (L=4, H=256, A=4,
FFN=1024). PyTorch runs the same model written below with ``torch.nn`` (its
``F.scaled_dot_product_attention``, ``nn.LayerNorm``, ``F.gelu``...), loaded with minigrad's
initial weights by their Hugging Face names; the script checks that both give the same logits.

* ``--mode train`` (default): one step is ``zero_grad``, forward in train mode (dropout on),
  cross-entropy on the labels, backward, ``AdamW.step()``, on each side.
* ``--mode forward``: inference, ``eval()`` and no graph (``minigrad.no_grad`` /
  ``torch.no_grad``).

Timing: both models live in this process and take turns step by step (minigrad first on even
steps, PyTorch first on odd ones), so a change of load on a shared machine hits both alike;
after ``--warmup`` steps each, the figure is the median of ``--steps`` steps. ``ratio`` is
minigrad's median over PyTorch's; ``ratio_of_pairs`` is the median of the step-by-step ratios.
NumPy's BLAS, Numba, PyTorch and OpenMP all get ``--threads`` threads (set before they load).
Both OpenMP pools wait passively (``OMP_WAIT_POLICY=PASSIVE``, minigrad's default for Numba's):
with torch's default, its idle threads spin after each of its steps and take the cores from
minigrad's next one (a bert-mini forward pass measured 1.6× PyTorch's time that way, 1.0× with
both passive, while PyTorch's own time rose 0-16%). So each side also runs alone in a process
of its own with its own default (``*_solo_ms``, ``solo_ratio``): no contention, and PyTorch's
threads spin as they do by default.

Memory: each side runs again alone in a fresh process (minigrad's without torch imported,
PyTorch's without minigrad), a few steps. ``peak_rss_mb`` is that process's peak resident set
(``VmHWM``: libraries, weights, optimizer state, activations and the allocator's slack);
``step_rss_mb`` is that peak minus the resident set before the first step, with the model
built and the libraries imported (for minigrad, Numba too; the kernels' machine code is loaded
during the first step and counts here). minigrad's figures come from a process whose Numba
cache is warm: compiling makes LLVM allocate, a one-time cost reported apart
(``minigrad_peak_rss_mb_compiling``).

OpenBLAS: NumPy's BLAS picks its kernels for the CPU it finds, unless ``OPENBLAS_CORETYPE``
names them. The development machine's environment sets ``OPENBLAS_CORETYPE=Haswell`` (AVX2), on
a CPU with AVX-512; PyTorch's own CPU kernels (oneDNN, MKL) read no such variable. ``--openblas
env`` (default) runs with the environment as it is; ``--openblas native`` removes the variable
from this process and its children, so OpenBLAS chooses (here: SkylakeX, AVX-512). The JSON
records which kernels ran (``machine.openblas_kernels``). ``--profile`` also measures the BLAS
rate (GFLOP/s of ``np.matmul``) at the step's shapes.

Compile time (Numba backend): two fresh processes share an empty ``NUMBA_CACHE_DIR``; the first
step of the first compiles every kernel the step uses, the second loads them from the cache.
Both first-step times are in the JSON.
"""

from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--size", choices=["tiny", "mini"], default="mini")
ARGS.add_argument("--batch", type=int, nargs="+", default=[32], help="batch size(s)")
ARGS.add_argument("--seq", type=int, nargs="+", default=[128], help="sequence length(s)")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--mode", choices=["train", "forward"], default="train")
ARGS.add_argument("--backend", choices=["numpy", "numba"], default=None,
                  help="minigrad's kernel backend (default: minigrad's default)")
ARGS.add_argument("--steps", type=int, default=10, help="timed steps per side (median)")
ARGS.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
ARGS.add_argument("--json", action="store_true", help="print one JSON object")
ARGS.add_argument("--out", default=None, help="also write the JSON object to this file")
ARGS.add_argument("--no-memory", action="store_true", help="skip the RSS/compile processes")
ARGS.add_argument("--profile", action="store_true",
                  help="print where minigrad's time goes, op by op (cProfile), and BLAS rates")
ARGS.add_argument("--openblas", choices=["env", "native"], default="env",
                  help="native: unset OPENBLAS_CORETYPE so OpenBLAS picks kernels for this CPU")
ARGS.add_argument("--plot", default=None, help="a grid's ms/step against tokens/step (PNG)")
ARGS.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)

if __name__ == "__main__":
    _args = ARGS.parse_args()
    for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        os.environ[_var] = str(_args.threads)  # before NumPy, Numba and torch start threads
    # Both sides' OpenMP pools (torch's libgomp, Numba's) sleep when idle, as minigrad sets
    # for Numba's: an idle pool that spins takes the cores from the other side's next step.
    if _args.child != "torch" and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # (PyTorch alone keeps its default: run_child)
        os.environ["_BERT_STEP_SET_WAIT_POLICY"] = "1"
    if _args.backend:
        os.environ["MINIGRAD_BACKEND"] = _args.backend
    if _args.openblas == "native":
        os.environ.pop("OPENBLAS_CORETYPE", None)  # read when NumPy loads OpenBLAS

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

# The compact BERTs of minigrad.models.NAMED_CONFIGS, here so that PyTorch's process need not
# import minigrad.
SIZES = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2,
             "intermediate_size": 512},
    "mini": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
             "intermediate_size": 1024},
}
VOCAB, LABELS, DROPOUT = 30522, 2, 0.1


def inputs(batch: int, seq: int) -> dict[str, np.ndarray]:
    """Random token ids, lengths in [seq/2, seq] (the rest padding), binary labels."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(seq // 2, seq + 1, batch)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)  # (B, S)
    ids = rng.integers(1000, VOCAB, (batch, seq)) * mask  # (B, S), 0 = [PAD]
    return {"input_ids": ids, "attention_mask": mask, "labels": rng.integers(0, LABELS, batch)}


# --- minigrad --------------------------------------------------------------------------------
def minigrad_model(size: str) -> Any:
    import minigrad
    from minigrad.models import BertConfig, BertForSequenceClassification

    minigrad.manual_seed(0)
    config = BertConfig(**SIZES[size], vocab_size=VOCAB, num_labels=LABELS,
                        hidden_dropout_prob=DROPOUT, attention_probs_dropout_prob=DROPOUT)
    return BertForSequenceClassification(config)


def minigrad_step(model: Any, batch: dict, mode: str) -> Callable[[], None]:
    import minigrad
    from minigrad import optim

    if mode == "forward":
        model.eval()

        def forward() -> None:
            with minigrad.no_grad():
                model(batch["input_ids"], batch["attention_mask"])
        return forward

    model.train()
    opt = optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad()
        model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss.backward()
        opt.step()
    return step


# --- the same model in PyTorch -----------------------------------------------------------------
def torch_model(size: str, weights: dict[str, np.ndarray] | None) -> Any:
    """minigrad's BertForSequenceClassification in torch.nn, with Hugging Face's module names
    (so minigrad's ``named_parameters`` load by name). ``weights=None``: torch's own init."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    cfg = SIZES[size]
    H, A, FFN = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]  # noqa: N806

    def module(**children: nn.Module) -> nn.Module:
        m = nn.Module()
        for name, child in children.items():
            m.add_module(name, child)
        return m

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = module(
                self=module(query=nn.Linear(H, H), key=nn.Linear(H, H), value=nn.Linear(H, H)),
                output=module(dense=nn.Linear(H, H), LayerNorm=nn.LayerNorm(H, eps=1e-12)))
            self.intermediate = module(dense=nn.Linear(H, FFN))
            self.output = module(dense=nn.Linear(FFN, H), LayerNorm=nn.LayerNorm(H, eps=1e-12))

        def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            B, S, _ = x.shape  # noqa: N806
            s = self.attention.self

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.view(B, S, A, H // A).transpose(1, 2)  # (B, A, S, D)

            ctx = F.scaled_dot_product_attention(
                heads(s.query(x)), heads(s.key(x)), heads(s.value(x)), attn_mask=keep,
                dropout_p=DROPOUT if self.training else 0.0)  # (B, A, S, D)
            ctx = ctx.transpose(1, 2).reshape(B, S, H)
            o = self.attention.output
            x = o.LayerNorm(x + F.dropout(o.dense(ctx), DROPOUT, self.training))
            u = F.gelu(self.intermediate.dense(x))
            return self.output.LayerNorm(
                x + F.dropout(self.output.dense(u), DROPOUT, self.training))

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = module(
                embeddings=module(word_embeddings=nn.Embedding(VOCAB, H, padding_idx=0),
                                  position_embeddings=nn.Embedding(512, H),
                                  token_type_embeddings=nn.Embedding(2, H),
                                  LayerNorm=nn.LayerNorm(H, eps=1e-12)),
                encoder=module(layer=nn.ModuleList(
                    Layer() for _ in range(cfg["num_hidden_layers"]))),
                pooler=module(dense=nn.Linear(H, H)))
            self.classifier = nn.Linear(H, LABELS)

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            e = self.bert.embeddings
            x = (e.word_embeddings(ids) + e.position_embeddings(torch.arange(ids.shape[1]))
                 + e.token_type_embeddings(torch.zeros_like(ids)))
            x = F.dropout(e.LayerNorm(x), DROPOUT, self.training)
            keep = (mask != 0)[:, None, None, :]  # (B, 1, 1, S), True = attend
            for layer in self.bert.encoder.layer:
                x = layer(x, keep)
            pooled = torch.tanh(self.bert.pooler.dense(x[:, 0]))
            return self.classifier(F.dropout(pooled, DROPOUT, self.training))

    model = Bert()
    if weights is not None:
        state = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
        model.load_state_dict(state, strict=True)
    return model


def torch_step(model: Any, batch: dict, mode: str) -> Callable[[], None]:
    import torch
    from torch.nn import functional as F

    ids, mask = torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])
    labels = torch.from_numpy(batch["labels"])
    if mode == "forward":
        model.eval()

        def forward() -> None:
            with torch.no_grad():
                model(ids, mask)
        return forward

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(ids, mask), labels).backward()
        opt.step()
    return step


def same_logits(mg_model: Any, th_model: Any, batch: dict) -> float:
    """The largest |logit difference| of the two models in eval mode (they share weights)."""
    import torch

    import minigrad

    mg_model.eval()
    th_model.eval()
    with minigrad.no_grad(), torch.no_grad():
        ours = mg_model(batch["input_ids"], batch["attention_mask"]).logits.data
        theirs = th_model(torch.from_numpy(batch["input_ids"]),
                          torch.from_numpy(batch["attention_mask"])).numpy()
    return float(np.abs(ours - theirs).max())


# --- timing ------------------------------------------------------------------------------------
def race(steps: dict[str, Callable[[], None]], warmup: int, n: int) -> dict[str, list[float]]:
    """Milliseconds of each side's timed steps, the sides taking turns (order alternating)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for i in range(warmup + n):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            steps[name]()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def profile_minigrad(step: Callable[[], None], n: int = 3) -> dict[str, list[float]]:
    """Milliseconds per step by op: {name: [forward, backward]}, from the cumulative cProfile
    time of each Function's forward and backward; also the dropout masks' random draws, the
    optimizer, and "other" (the rest of the step: Python, the graph walk, small ops)."""
    import cProfile
    import pstats

    from minigrad import backend
    from minigrad.autograd import Function
    from minigrad.optim.optimizer import Optimizer

    where: dict[tuple[str, int], tuple[str, int]] = {}
    classes = list(Function.__subclasses__())
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        for k, meth in enumerate(("forward", "backward")):
            fn = cls.__dict__.get(meth)
            if fn is not None:
                code = fn.__func__.__code__
                where[(code.co_filename, code.co_firstlineno)] = (cls.__name__, k)
    for name, fn in (("optimizer step", Optimizer.step),
                     ("random draws (dropout masks)", backend.random_uniform)):
        where[(fn.__code__.co_filename, fn.__code__.co_firstlineno)] = (name, 0)

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        step()
    profiler.disable()
    total = (time.perf_counter() - t0) * 1e3 / n
    table: dict[str, list[float]] = {}
    for (file, line, _), (_, _, _, cumulative, _) in pstats.Stats(profiler).stats.items():
        if (file, line) in where:
            name, k = where[(file, line)]
            table.setdefault(name, [0.0, 0.0])[k] += cumulative * 1e3 / n
    table = dict(sorted(table.items(), key=lambda kv: -sum(kv[1])))
    table["other"] = [total - sum(map(sum, table.values())), 0.0]
    table["step (profiled)"] = [total, 0.0]
    return {name: [round(f, 1), round(b, 1)] for name, (f, b) in table.items()}


# --- memory and compile time, each side alone in a fresh process ---------------------------------
def status_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, from /proc (Linux).

    Not ``ru_maxrss``: that survives ``exec``, so a child would report its parent's peak."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def child(args: argparse.Namespace) -> None:
    """Build one side's model and run its steps alone; print its memory and first-step time."""
    batch = inputs(args.batch[0], args.seq[0])
    if args.child == "minigrad":
        from minigrad import backend

        if backend.get_backend() == "numba":
            import minigrad.kernels.cpu  # noqa: F401  (Numba now, as torch's libraries are)
        step = minigrad_step(minigrad_model(args.size), batch, args.mode)
    else:
        import torch

        torch.set_num_threads(args.threads)
        step = torch_step(torch_model(args.size, None), batch, args.mode)
    resting = status_mb("VmRSS")
    t0 = time.perf_counter()
    step()  # loads (or compiles) minigrad's kernels; creates the optimizer's state
    first_step_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = status_mb("VmHWM")
    print(json.dumps({"first_step_s": first_step_s, "peak_rss_mb": peak,
                      "step_rss_mb": peak - resting, "solo_ms": statistics.median(times) * 1e3}))


def run_child(args: argparse.Namespace, side: str, env: dict[str, str]) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--size", args.size, "--batch",
           str(args.batch[0]), "--seq", str(args.seq[0]), "--threads", str(args.threads),
           "--mode", args.mode, "--warmup", str(args.warmup), "--steps", str(args.steps),
           "--openblas", args.openblas]
    if args.backend:
        cmd += ["--backend", args.backend]
    environ = {**os.environ, **env}
    if side == "torch" and environ.pop("_BERT_STEP_SET_WAIT_POLICY", None):
        del environ["OMP_WAIT_POLICY"]  # this script's setting, not PyTorch's default
    out = subprocess.run(cmd, env=environ, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_and_compile(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cold = run_child(args, "minigrad", {"NUMBA_CACHE_DIR": cache})
        warm = run_child(args, "minigrad", {"NUMBA_CACHE_DIR": cache})
    theirs = run_child(args, "torch", {})
    return {
        "minigrad_peak_rss_mb": round(warm["peak_rss_mb"], 1),
        "torch_peak_rss_mb": round(theirs["peak_rss_mb"], 1),
        "minigrad_step_rss_mb": round(warm["step_rss_mb"], 1),
        "torch_step_rss_mb": round(theirs["step_rss_mb"], 1),
        "minigrad_peak_rss_mb_compiling": round(cold["peak_rss_mb"], 1),
        "minigrad_first_step_s_empty_cache": round(cold["first_step_s"], 2),
        "minigrad_first_step_s_cached": round(warm["first_step_s"], 2),
        "torch_first_step_s": round(theirs["first_step_s"], 2),
        "minigrad_solo_ms": round(warm["solo_ms"], 1),
        "torch_solo_ms": round(theirs["solo_ms"], 1),
        "solo_ratio": round(warm["solo_ms"] / theirs["solo_ms"], 3),
    }


def cpu_model() -> tuple[str, int]:
    """(the CPU's model name, its logical CPUs), from lscpu when it runs (the other CPU
    benchmarks read it from here)."""
    cpu, cores = platform.processor(), os.cpu_count()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        cpu, cores = fields.get("Model name", cpu).strip(), int(fields.get("CPU(s)", cores))
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    return cpu, cores


def machine() -> dict:
    import numba
    import torch

    import minigrad

    cpu, cores = cpu_model()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran (numpy backend)
        layer = "not started"
    from threadpoolctl import threadpool_info

    numpy_blas = [i for i in threadpool_info() if "numpy" in i["filepath"]]
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_blas": "mkl" if torch.backends.mkl.is_available() else "not mkl",
            "minigrad_backend": minigrad.get_backend(), "numba_threading_layer": layer,
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "openblas_kernels": numpy_blas[0].get("architecture") if numpy_blas else None}


def race_point(ours: Any, theirs: Any, args: argparse.Namespace, batch_size: int,
               seq: int) -> dict[str, Any]:
    """One (batch, S) point: both sides' steps raced, with fresh optimizers."""
    batch = inputs(batch_size, seq)
    steps = {"minigrad": minigrad_step(ours, batch, args.mode),
             "torch": torch_step(theirs, batch, args.mode)}
    times = race(steps, args.warmup, args.steps)
    mg_ms, th_ms = statistics.median(times["minigrad"]), statistics.median(times["torch"])
    point = {
        "batch": batch_size, "seq": seq, "tokens": batch_size * seq,
        "minigrad_ms": round(mg_ms, 1), "torch_ms": round(th_ms, 1),
        "ratio": round(mg_ms / th_ms, 3),
        "ratio_of_pairs": round(statistics.median(
            m / t for m, t in zip(times["minigrad"], times["torch"], strict=True)), 3),
        "minigrad_ms_each": [round(t, 1) for t in times["minigrad"]],
        "torch_ms_each": [round(t, 1) for t in times["torch"]],
    }
    if args.profile:
        point["minigrad_profile_ms"] = profile_minigrad(steps["minigrad"])
        point["blas_gflops"] = blas_rates(args.size, batch_size, seq)
    return point


def blas_rates(size: str, batch: int, seq: int) -> dict[str, float]:
    """GFLOP/s of ``np.matmul`` (NumPy's BLAS, this process's threads) at the step's shapes,
    the best of 5 timings each: the Linear layers' products as ``minigrad.ops.nn.Linear`` makes
    them, with T = batch·S tokens (forward Y = X·Wᵀ, backward dX = G·W and dW = Gᵀ·X, the
    transposes free views), and attention's per-head (S, D)·(D, S), batched over batch·heads."""
    cfg = SIZES[size]
    H, F, A = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"]  # noqa: N806
    T, D = batch * seq, H // A  # noqa: N806
    rng = np.random.default_rng(0)

    def randn(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    products = {}
    for k_in, n_out in ((H, H), (H, F), (F, H)):
        x, w, g = randn(T, k_in), randn(n_out, k_in), randn(T, n_out)
        products[f"Y = X·Wᵀ ({T}, {k_in})·({k_in}, {n_out})"] = (x, w.T)
        products[f"dX = G·W ({T}, {n_out})·({n_out}, {k_in})"] = (g, w)
        products[f"dW = Gᵀ·X ({n_out}, {T})·({T}, {k_in})"] = (g.T, x)
    products[f"per head ({seq}, {D})·({D}, {seq}) ×{batch * A}"] = (randn(batch * A, seq, D),
                                                                  randn(batch * A, D, seq))
    rates = {}
    for name, (a, b) in products.items():
        flops = 2 * a.size * b.shape[-1]
        a @ b  # warm-up
        best = min(_seconds(lambda a=a, b=b: a @ b) for _ in range(5))
        rates[name] = round(flops / best / 1e9, 1)
    return rates


def _seconds(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def plot_grid(points: list[dict], title: str, path: str) -> None:
    """ms per step against tokens per step (log-log), a line per S and side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, seq in enumerate(sorted({p["seq"] for p in points})):
        row = sorted((p for p in points if p["seq"] == seq), key=lambda p: p["tokens"])
        tokens = [p["tokens"] for p in row]
        color = f"C{i}"
        ax.plot(tokens, [p["minigrad_ms"] for p in row], "o-", color=color,
                label=f"minigrad, S={seq}")
        ax.plot(tokens, [p["torch_ms"] for p in row], "s--", color=color, alpha=0.7,
                label=f"PyTorch, S={seq}")
        for p in row:
            ax.annotate(f"{p['ratio']:.2f}", (p["tokens"], p["minigrad_ms"]),
                        textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens per step (batch × S)")
    ax.set_ylabel("ms per step (median)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = ARGS.parse_args()
    if args.child:
        child(args)
        return
    import torch

    import minigrad

    torch.set_num_threads(args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    ours = minigrad_model(args.size)
    weights = {name: p.data for name, p in ours.named_parameters()}
    theirs = torch_model(args.size, weights)
    logit_diff = same_logits(ours, theirs, inputs(args.batch[0], args.seq[0]))
    points = [race_point(ours, theirs, args, b, s) for s in args.seq for b in args.batch]
    grid = len(points) > 1
    result: dict[str, Any] = {
        "command": "python benchmarks/bert_step.py " + " ".join(sys.argv[1:]),
        "size": f"bert-{args.size}", "threads": args.threads, "mode": args.mode,
        "backend": minigrad.get_backend(), "steps": args.steps, "warmup": args.warmup,
        **({"points": points} if grid else points[0]),
        "max_abs_logit_diff": logit_diff,
    }
    result["load_before"] = load_before
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine()
    if not args.no_memory and not grid:  # a grid's points are timed only
        result.update(memory_and_compile(args))
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot_grid(points, f"bert-{args.size} {args.mode} step, {args.threads} threads, OpenBLAS "
                  f"{result['machine']['openblas_kernels']} (numbers: minigrad ÷ PyTorch)",
                  args.plot)
    if args.json:
        print(json.dumps(result))
        return
    if grid:
        print(f"{'S':>5} {'batch':>5} {'tokens':>7} {'minigrad ms':>12} {'PyTorch ms':>11} "
              f"{'ratio':>6}")
        for p in points:
            print(f"{p['seq']:5d} {p['batch']:5d} {p['tokens']:7d} {p['minigrad_ms']:12.1f} "
                  f"{p['torch_ms']:11.1f} {p['ratio']:6.3f}")
        return
    for key in ("minigrad_ms", "torch_ms", "ratio", "ratio_of_pairs", "minigrad_peak_rss_mb",
                "torch_peak_rss_mb", "minigrad_step_rss_mb", "torch_step_rss_mb",
                "minigrad_first_step_s_empty_cache", "minigrad_first_step_s_cached",
                "max_abs_logit_diff", "load_before", "load_after"):
        if key in result:
            print(f"{key:36s} {result[key]}")
    if args.profile:
        print(f"\nminigrad, ms per {args.mode} step      forward  backward")
        for name, (f, b) in result["minigrad_profile_ms"].items():
            print(f"  {name:32s} {f:8.1f} {b:9.1f}")
        print(f"\nBLAS (np.matmul, {args.threads} threads, OpenBLAS "
              f"{result['machine']['openblas_kernels']}), GFLOP/s")
        for name, rate in result["blas_gflops"].items():
            print(f"  {name:44s} {rate:7.1f}")


if __name__ == "__main__":
    main()
