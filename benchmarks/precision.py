"""Mixed precision on this CPU: what float16 and bfloat16 cost and save in minigrad, against
PyTorch's CPU autocast in the same run (issue 17, item 6).

    python benchmarks/precision.py                   # the experiment (13-50 min on 2 shared cores)
    python benchmarks/precision.py --fast            # CI's smoke run: tiny shapes, a few steps

Three questions, each part in a fresh process (``--worker``), so that each peak resident set
(``VmHWM``) is that part's own. Every OpenMP pool sleeps when idle (``OMP_WAIT_POLICY=PASSIVE``,
see :func:`worker_env`).

1. **Where gradients underflow** (``gradients``): one float32 training step of MiniLM
   (all-MiniLM-L6-v2, a fresh 2-class head, dropout on) on a batch of real rotten-tomatoes
   reviews. Every parameter gradient element g that is not exactly zero is binned by its binary
   exponent ⌊log₂|g|⌋ and compared with float16's range: normal down to 2⁻¹⁴, subnormal (fewer
   significant bits) down to 2⁻²⁴, and zero below about 2⁻²⁵. For each loss scale S = 2^k the
   true gradient times S is cast to float16 and back (what a float16 gradient of the scaled
   loss holds, before the scaler divides by S): the share of elements *flushed* to zero, left
   *subnormal*, or *overflowing* to inf. The same cast to bfloat16 (S = 1) for comparison.
   (These are the parameters' gradients; under autocast the activations' gradients inside the
   backward are half precision too, and underflow the same way.)
2. **A bert-mini training step** (``fp32``, ``bf16``, ``fp16``, and the peers ``torch_fp32``,
   ``torch_bf16``): :mod:`bert_step`'s model (L=4, H=256, A=4), batch 32 × 128 tokens, random
   ids, AdamW; minigrad under ``minigrad.autocast(dtype=...)`` (fp16 with a ``GradScaler``),
   PyTorch under ``torch.autocast("cpu", dtype=torch.bfloat16)``, both with float32 master
   weights. Time (``race``): the five take turns step by step in one process, the order rotating
   each round, so that a change of load on a shared machine hits them alike; after the warm-up,
   each one's median, and the median of its step-by-step ratios to minigrad float32's. Memory:
   each alone in a fresh process, a few steps: the peak RSS and the step's RSS (the peak minus
   the resident set before the first step), and the **activation memory**, defined as the bytes
   of the arrays the graph keeps for backward at the end of a forward pass (loss computed,
   before ``backward()``): for minigrad, every array held by a node of the graph
   (``save_for_backward`` and array attributes such as dropout masks), found by walking the
   graph from the loss, each underlying buffer counted once, the parameters themselves excluded
   (a half-precision *copy* of a weight that backward needs counts); for PyTorch, every tensor
   its autograd saves (``torch.autograd.graph.saved_tensors_hooks``), each storage once, the
   parameters excluded. The RSS growth across that forward is reported beside it (it depends on
   the allocator).
3. **Fine-tuning** (``finetune_fp32``, ``finetune_bf16``, ``finetune_fp16``): MiniLM on the
   rotten-tomatoes reviews with ``minigrad.finetune`` and ``FinetuneConfig(precision=...)``:
   issue 16's split and seed (``benchmarks/efficiency.py``: all 10,246 training reviews, 400 of
   validation, the 1,281 test reviews), 120 optimizer steps of batch 16 at 64 tokens, peak
   learning rate 1e-4 (the rate that left the majority class in efficiency.py's 100-step
   trials), the same batches at every precision; the test accuracy and the loss curves. (Fewer
   steps than efficiency.py's 400: the run had to fit a shared machine's afternoon.)

Writes ``benchmarks/results/precision.json``, ``precision.md`` (the tables, the command, the
targets met or missed) and ``precision.png``. BLAS, OpenMP and Numba get ``--threads`` threads
in every process. No GPU was lent to this run: the GPU rows are "not measured".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from efficiency import peak_rss_mb, splits, thread_env  # noqa: E402

STEP_PARTS = ["fp32", "bf16", "fp16", "torch_fp32", "torch_bf16"]
FINETUNE_PARTS = ["finetune_fp32", "finetune_bf16", "finetune_fp16"]
PARTS = ["gradients", "race"] + STEP_PARTS + FINETUNE_PARTS
LABELS = {"fp32": "minigrad float32", "bf16": "minigrad autocast bfloat16",
          "fp16": "minigrad autocast float16 + GradScaler", "torch_fp32": "PyTorch float32",
          "torch_bf16": "PyTorch CPU autocast bfloat16", "finetune_fp32": "float32",
          "finetune_bf16": "bfloat16 autocast", "finetune_fp16": "float16 autocast + GradScaler"}
# float16: 5 exponent bits (bias 15), 10 fraction bits; bfloat16: 8 and 7 (float32's range).
FP16_MIN_NORMAL_EXP, FP16_MIN_SUBNORMAL_EXP, FP16_MAX_EXP = -14, -24, 15
LOG2_SCALES = list(range(0, 25))  # the loss scales S = 2^k tried on the gradients


def settings(fast: bool) -> dict[str, Any]:
    """The shapes of each part; --fast is CI's smoke run (the numbers mean nothing there)."""
    if fast:
        return {"gradient_batch": 8, "gradient_length": 32, "step_size": "tiny",
                "step_batch": 8, "step_seq": 32, "step_warmup": 1, "step_steps": 2,
                "memory_steps": 1,
                "finetune": {"steps": 4, "batch_size": 8, "max_length": 32, "lr": 1e-4}}
    return {"gradient_batch": 16, "gradient_length": 64, "step_size": "mini", "step_batch": 32,
            "step_seq": 128, "step_warmup": 2, "step_steps": 8, "memory_steps": 2,
            "finetune": {"steps": 120, "batch_size": 16, "max_length": 64, "lr": 1e-4}}


# --- 1. where gradients underflow --------------------------------------------------------------
def step_gradients(model: Any, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Every parameter's float32 gradient after one training step's backward, flattened into
    one vector (the parameters that got no gradient left out)."""
    from minigrad.classifier import forward

    model.train()
    for p in model.parameters():
        p.grad = None
    forward(model, batch).loss.backward()
    return np.concatenate([p.grad.ravel() for p in model.parameters() if p.grad is not None])


def exponent_histogram(g: np.ndarray) -> dict[int, int]:
    """{e: how many nonzero elements have ⌊log₂|g|⌋ = e}. frexp writes g = m·2^x, ½ ≤ |m| < 1,
    so ⌊log₂|g|⌋ = x − 1."""
    _, x = np.frexp(g[g != 0])
    exponents, counts = np.unique(x - 1, return_counts=True)
    return {int(e): int(c) for e, c in zip(exponents, counts, strict=True)}


def cast_losses(g: np.ndarray, log2_scales: list[int]) -> list[dict[str, float]]:
    """For each S = 2^k: the shares of g's nonzero elements that float16(g·S) flushes to zero,
    leaves subnormal (|·| < 2⁻¹⁴) or turns to inf, and the median relative error of
    float16(g·S)/S against g (inf where it overflowed). S is a power of two, so g·S is exact in
    float32 and only the cast to float16 rounds. The shares are exact: only the elements near
    the two ends of float16's range (found in the sorted magnitudes) can land outside its normal
    numbers, and those are cast; the median error is of 10⁶ elements drawn with a fixed seed."""
    a = np.sort(np.abs(g[g != 0]).astype(np.float32))  # (n,) magnitudes, ascending
    n = a.size
    sample = a[np.random.default_rng(0).integers(0, n, min(n, 10**6))]
    rows = []
    for k in log2_scales:
        scale = np.float32(2.0**k)
        small = (a[:np.searchsorted(a, np.float32(2.0**-13) / scale)] * scale).astype(np.float16)
        with np.errstate(over="ignore"):
            large = (a[np.searchsorted(a, np.float32(65504.0) / scale):] * scale).astype(
                np.float16)
            back = (sample * scale).astype(np.float16).astype(np.float32) / scale
        rows.append({"log2_scale": k, "flushed": int(np.sum(small == 0)) / n,
                     "subnormal": int(np.sum((small > 0) & (small < 2.0**-14))) / n,
                     "overflow": int(np.sum(np.isinf(large))) / n,
                     "median_relative_error": float(np.median(np.abs(back - sample) / sample))})
    return rows


def minilm_batch(batch_size: int, max_length: int) -> tuple[Any, dict[str, np.ndarray]]:
    """MiniLM with a fresh 2-class head, and one training batch of rotten-tomatoes reviews (the
    split and encoding of ``minigrad finetune``)."""
    import minigrad
    from minigrad.classifier import Classifier, encode, load_model
    from minigrad.data.datasets import class_names
    from minigrad.data.encoding import training_batches

    minigrad.manual_seed(0)
    train, _, _ = splits(False)
    model, tokenizer = load_model("minilm", "sequence-classification", 2)
    names = class_names(train)
    classifier = Classifier(model, tokenizer, names, max_length=max_length)
    label2id = {name: i for i, name in enumerate(names)}
    encoded = encode(classifier, train.subset(range(batch_size * 4)), label2id)
    batches = training_batches(encoded, batch_size, np.random.default_rng(0))
    return model, batches[0]


def run_gradients(fast: bool) -> dict[str, Any]:
    import ml_dtypes

    s = settings(fast)
    model, batch = minilm_batch(s["gradient_batch"], s["gradient_length"])
    g = step_gradients(model, batch)
    nonzero = g[g != 0]
    as_bf16 = nonzero.astype(ml_dtypes.bfloat16)
    return {"batch": list(batch["input_ids"].shape), "elements": int(g.size),
            "nonzero": int(nonzero.size), "exponents": exponent_histogram(g),
            "casts": cast_losses(g, LOG2_SCALES),
            "bf16_flushed": float(np.mean(as_bf16 == 0)),
            "median_abs": float(np.median(np.abs(nonzero)))}


# --- 2. a bert-mini training step ---------------------------------------------------------------
def buffer_owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def arrays_in(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, tuple | list):
        return [a for v in value for a in arrays_in(v)]
    return []


# A node's bookkeeping, not what backward reads: its edges, its output's and inputs' metadata.
NOT_SAVED = {"fn", "parents", "retained", "input_meta", "output_meta", "saved_versions",
             "checksums", "needs_input_grad", "requires_grad", "freed"}


def saved_bytes(loss: Any, parameters: list[Any]) -> dict[str, int]:
    """The activation memory of a forward pass (the module docstring's definition): the bytes of
    every array a node of ``loss``'s graph keeps for backward, each buffer once, the parameters'
    own arrays left out; by dtype."""
    from minigrad.autograd import Context

    excluded = {id(buffer_owner(p.data)) for p in parameters}
    buffers: dict[int, np.ndarray] = {}
    seen: set[int] = set()
    stack = [loss._ctx]
    while stack:
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for name, value in vars(ctx).items():
            if name not in NOT_SAVED:
                for a in arrays_in(value):
                    owner = buffer_owner(a)
                    if id(owner) not in excluded:
                        buffers[id(owner)] = owner
        stack.extend(p for p in ctx.parents if isinstance(p, Context))
    by_dtype: dict[str, int] = {}
    for a in buffers.values():
        by_dtype[str(a.dtype)] = by_dtype.get(str(a.dtype), 0) + a.nbytes
    return by_dtype


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024


def minigrad_step(part: str, s: dict[str, Any]) -> tuple[Any, Any, Any]:
    """bert_step's model under ``minigrad.autocast`` (none for fp32; fp16 with a GradScaler):
    (step, forward, activations), as :func:`measure` takes them."""
    from contextlib import nullcontext

    from bert_step import inputs, minigrad_model

    import minigrad
    from minigrad import optim
    from minigrad.amp import GradScaler

    batch = inputs(s["step_batch"], s["step_seq"])
    model = minigrad_model(s["step_size"])
    model.train()
    opt = optim.AdamW(model.parameters(), lr=1e-4)
    dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(part)
    dtype = getattr(minigrad, dtype) if dtype is not None else None  # minigrad.bfloat16, ...
    scaler = GradScaler(enabled=part == "fp16")

    def forward() -> Any:
        with minigrad.autocast(dtype=dtype) if dtype is not None else nullcontext():
            return model(batch["input_ids"], batch["attention_mask"],
                         labels=batch["labels"]).loss

    def step() -> None:
        opt.zero_grad()
        scaler.scale(forward()).backward()
        scaler.step(opt)
        scaler.update()

    return step, forward, lambda loss: saved_bytes(loss, list(model.parameters()))


def torch_step(part: str, s: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The same model in PyTorch (bert_step's), float32 or under CPU autocast bfloat16."""
    from contextlib import nullcontext

    import torch
    from bert_step import inputs, torch_model
    from torch.nn import functional as F

    torch.manual_seed(0)
    batch = inputs(s["step_batch"], s["step_seq"])
    ids, mask = torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])
    labels = torch.from_numpy(batch["labels"])
    model = torch_model(s["step_size"], None)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cast = part == "torch_bf16"
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def forward() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16) if cast else nullcontext():
            return F.cross_entropy(model(ids, mask), labels)

    def step() -> None:
        opt.zero_grad()
        forward().backward()
        opt.step()

    def measured_forward() -> dict[int, tuple[str, int]]:
        """The forward, noting each storage autograd saves: {address: (dtype, bytes)}."""
        storages: dict[int, tuple[str, int]] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            ptr = t.untyped_storage().data_ptr()
            if ptr not in params:
                storages[ptr] = (str(t.dtype).removeprefix("torch."), t.untyped_storage().nbytes())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            forward()
        return storages

    def activations(storages: dict[int, tuple[str, int]]) -> dict[str, int]:
        by_dtype: dict[str, int] = {}
        for dtype, nbytes in storages.values():
            by_dtype[dtype] = by_dtype.get(dtype, 0) + nbytes
        return by_dtype

    return step, measured_forward, activations


def step_functions(part: str, s: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (torch_step if part.startswith("torch") else minigrad_step)(part, s)


def measure(part: str, fast: bool) -> dict[str, Any]:
    """One side alone in this process: a first step, a few more, then one more forward whose
    graph is measured (the activation memory); the peak RSS is read before that forward."""
    s = settings(fast)
    step, forward, activations = step_functions(part, s)
    resting = rss_mb()
    t0 = time.perf_counter()
    step()
    first_step_s = time.perf_counter() - t0
    for _ in range(s["memory_steps"]):
        step()
    peak = peak_rss_mb()
    before = rss_mb()
    result = forward()
    growth = rss_mb() - before
    by_dtype = activations(result)
    return {"first_step_s": first_step_s, "peak_rss_mb": peak, "step_rss_mb": peak - resting,
            "activation_bytes": sum(by_dtype.values()), "activation_bytes_by_dtype": by_dtype,
            "forward_rss_growth_mb": growth}


def race(fast: bool) -> dict[str, Any]:
    """Every step of STEP_PARTS in this one process, taking turns step by step (the order
    rotating each round), so that a change of load on a shared machine hits them alike; after
    the warm-up rounds, each one's median milliseconds, and the median of its step-by-step
    ratios to minigrad float32's."""
    s = settings(fast)
    steps = {part: step_functions(part, s)[0] for part in STEP_PARTS}
    times: dict[str, list[float]] = {part: [] for part in STEP_PARTS}
    for i in range(s["step_warmup"] + s["step_steps"]):
        for part in STEP_PARTS[i % len(STEP_PARTS):] + STEP_PARTS[:i % len(STEP_PARTS)]:
            t0 = time.perf_counter()
            steps[part]()
            if i >= s["step_warmup"]:
                times[part].append((time.perf_counter() - t0) * 1e3)
    return {part: {"ms": statistics.median(t), "ms_each": [round(x, 1) for x in t],
                   "ratio_of_pairs": statistics.median(
                       a / b for a, b in zip(t, times["fp32"], strict=True))}
            for part, t in times.items()}


# --- 3. fine-tuning MiniLM ---------------------------------------------------------------------
def finetune_part(part: str, workdir: Path, fast: bool) -> dict[str, Any]:
    """MiniLM fine-tuned at one precision: the recipe of ``minigrad finetune``, issue 16's split
    and seed (``efficiency.splits``), the same steps of the same batches at every precision."""
    from efficiency import weight_file_bytes

    from minigrad.finetune import FinetuneConfig, finetune

    precision = part.removeprefix("finetune_")
    s = settings(fast)["finetune"]
    train, valid, test = splits(fast)
    out = workdir / part
    config = FinetuneConfig(model="minilm", batch_size=s["batch_size"],
                            max_length=s["max_length"], epochs=1, max_steps=s["steps"], seed=0,
                            lr=s["lr"], out_dir=out, progress=False, precision=precision)
    result = finetune(train, valid, test, config)
    return {"precision": precision, "accuracy": result.metrics["accuracy"],
            "macro_f1": result.metrics["macro_f1"],
            "seconds_per_step": result.metrics["timing"]["seconds_per_step"],
            "steps": result.metrics["timing"]["steps"],
            "losses": [r["loss"] for r in result.history.steps],
            "recorded_precision": result.metrics.get("precision"),
            "skipped_steps": result.history.skipped_steps,
            "scales": [r["scale"] for r in result.history.steps if "scale" in r],
            "checkpoint_bytes": weight_file_bytes(out)}


# --- the parent: every part in turn, then the tables and the plot -------------------------------
def worker(part: str, workdir: Path, fast: bool) -> None:
    if part == "gradients":
        row = run_gradients(fast)
    elif part == "race":
        row = race(fast)
    elif part in STEP_PARTS:
        row = measure(part, fast)
    else:
        row = finetune_part(part, workdir, fast)
    row.update(part=part, label=LABELS.get(part, part), peak_rss_mb=peak_rss_mb(),
               finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    (workdir / f"{part}.json").write_text(json.dumps(row, indent=1))


def worker_env(threads: int) -> dict[str, str]:
    """``threads`` threads for BLAS, OpenMP and Numba; every OpenMP pool sleeps when idle
    (minigrad's default for Numba's; PyTorch's spins by default, which on a machine shared with
    other jobs made its bert-tiny step 3-4× slower in a trial run of this script)."""
    return {**thread_env(threads), "OMP_WAIT_POLICY": "PASSIVE"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="CI's smoke run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the parts' results and models go (default: a temporary "
                             "directory)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results directory (default: benchmarks/results; --fast: none)")
    parser.add_argument("--reuse", action="store_true",
                        help="read the parts whose results --workdir already holds instead of "
                             "running them again (each part's JSON says when it ran)")
    parser.add_argument("--worker", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.workdir, args.fast)
        return 0
    import tempfile

    import matplotlib

    matplotlib.use("Agg")  # the plot is written to a file, never shown
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="precision-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = {}
    load_before = [round(x, 2) for x in os.getloadavg()]
    for part in [p for p in PARTS if p in args.parts]:
        if args.reuse and (workdir / f"{part}.json").is_file():
            rows[part] = json.loads((workdir / f"{part}.json").read_text())
            when = rows[part].get("finished", "at a time not recorded")
            print(f"{part:14s} read from {workdir} (run {when})", flush=True)
            continue
        begin = time.perf_counter()
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", part,
                   "--workdir", str(workdir), "--threads", str(args.threads)]
        if args.fast:
            command.append("--fast")
        run = subprocess.run(command, env=worker_env(args.threads), capture_output=True,
                             text=True)
        if run.returncode != 0:
            print(run.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"precision: part {part} failed (exit {run.returncode})")
        rows[part] = json.loads((workdir / f"{part}.json").read_text())
        rows[part]["wall_seconds"] = time.perf_counter() - begin
        print(f"{part:14s} done in {rows[part]['wall_seconds']:.0f} s", flush=True)
    for part in STEP_PARTS:  # the race's times beside each side's own memory figures
        if part in rows and "race" in rows:
            rows[part].update(rows["race"][part])
    report = {"command": "python benchmarks/precision.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "date": time.strftime("%Y-%m-%d"), "settings": settings(args.fast),
              "threads": args.threads, "load_before": load_before,
              "load_after": [round(x, 2) for x in os.getloadavg()],
              "gpu": "not measured: no GPU was lent to this run", "parts": rows,
              "targets": targets(rows, settings(args.fast)["step_size"])}
    out = args.out if args.out is not None else (None if args.fast else RESULTS)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "precision.json").write_text(json.dumps(report, indent=1))
        (out / "precision.md").write_text(markdown(report))
        plot(report, out / "precision.png")
    print(markdown(report))
    return 0


def targets(rows: dict[str, dict], size: str) -> list[dict]:
    """Issue 17's CPU targets, each with the figures it was judged on (only those whose parts
    ran; ``size``: the step's model, "mini" but in --fast mode); the GPU targets are not
    measured."""
    found = []

    def target(name: str, met: bool, detail: str) -> None:
        found.append({"target": name, "met": bool(met), "detail": detail})

    if "finetune_fp32" in rows:
        for part in ("finetune_bf16", "finetune_fp16"):
            if part in rows:
                gap = 100 * (rows[part]["accuracy"] - rows["finetune_fp32"]["accuracy"]) + 0.0
                target(f"{LABELS[part]} fine-tuning within 0.5 accuracy point of float32",
                       abs(gap) <= 0.5, f"{gap:+.2f} points from float32")
    if "fp32" in rows:
        for part in ("bf16", "fp16"):
            if part in rows:
                ratio = rows[part]["activation_bytes"] / rows["fp32"]["activation_bytes"]
                target(f"{LABELS[part]}: activation memory of a bert-{size} training step ≤ "
                       f"0.65× float32's",
                       ratio <= 0.65, f"{ratio:.3f}× ({rows[part]['activation_bytes'] / 2**20:.0f}"
                       f" MB against {rows['fp32']['activation_bytes'] / 2**20:.0f} MB)")
    return found


def mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def markdown(report: dict) -> str:
    rows = report["parts"]
    lines = [f"# Mixed precision on this CPU ({report['date']})", "",
             f"`{report['command']}`, {report['threads']} threads, load average before "
             f"{report['load_before']} and after {report['load_after']}; settings: "
             f"{json.dumps(report['settings'])}", ""]
    steps = [p for p in STEP_PARTS if p in rows]
    if steps:
        base = {"minigrad": rows.get("fp32"), "torch": rows.get("torch_fp32")}
        lines += ["## A training step", "",
                  "| run | ms/step | × minigrad fp32 (median of pairs) | peak RSS | step RSS "
                  "| activation memory | × its side's fp32 | by dtype | RSS growth over the "
                  "forward |", "|---|---|---|---|---|---|---|---|---|"]
        for p in steps:
            r = rows[p]
            mine = base["torch" if p.startswith("torch") else "minigrad"]
            lines.append(" | ".join([
                f"| {r['label']}", f"{r['ms']:,.0f}" if "ms" in r else "—",
                f"{r['ratio_of_pairs']:.2f}×" if "ratio_of_pairs" in r else "—",
                f"{r['peak_rss_mb']:,.0f} MB", f"{r['step_rss_mb']:,.0f} MB",
                mb(r["activation_bytes"]),
                f"{r['activation_bytes'] / mine['activation_bytes']:.2f}×" if mine else "—",
                ", ".join(f"{k} {mb(v)}" for k, v in sorted(r["activation_bytes_by_dtype"].items(),
                                                            key=lambda kv: -kv[1])),
                f"{r['forward_rss_growth_mb']:,.0f} MB |"]))
        if {"bf16", "torch_bf16", "race"} <= rows.keys():
            ours, theirs = rows["bf16"], rows["torch_bf16"]
            lines += ["", f"minigrad bfloat16 autocast against PyTorch's: "
                      f"{ours['ms'] / theirs['ms']:.2f}× the time, "
                      f"{ours['activation_bytes'] / theirs['activation_bytes']:.2f}× the "
                      f"activation memory."]
        lines.append("")
    if "gradients" in rows:
        g = rows["gradients"]
        lines += ["## Where gradients underflow in float16", "",
                  f"One float32 MiniLM training step, batch {g['batch'][0]} × {g['batch'][1]} "
                  f"tokens of rotten-tomatoes reviews: {g['elements']:,} parameter gradient "
                  f"elements, {g['nonzero']:,} of them nonzero (most of the word embeddings' rows "
                  f"get none), median |g| {g['median_abs']:.2e} (float16's smallest normal is "
                  f"2⁻¹⁴ ≈ 6.1e-05). Shares of the nonzero elements after float16(g·S):", "",
                  "| loss scale S | flushed to 0 | subnormal | overflow (inf) | median relative "
                  "error |", "|---|---|---|---|---|"]
        for c in g["casts"]:
            if c["log2_scale"] in (0, 4, 8, 12, 16, 20, 24):
                lines.append(f"| 2^{c['log2_scale']} | {100 * c['flushed']:.4f}% | "
                             f"{100 * c['subnormal']:.4f}% | {100 * c['overflow']:.5f}% | "
                             f"{c['median_relative_error']:.2e} |")
        lines += ["", f"Cast to bfloat16 (S = 1): {100 * g['bf16_flushed']:.4f}% flushed.", ""]
    tunes = [p for p in FINETUNE_PARTS if p in rows]
    if tunes:
        lines += ["## Fine-tuning MiniLM on rotten-tomatoes", "",
                  "| precision | test accuracy | from float32 | macro-F1 | s/step | steps | "
                  "skipped (overflow) | last 50 steps' mean loss | weight files | recorded in "
                  "metrics.json |", "|---|---|---|---|---|---|---|---|---|---|"]
        for p in tunes:
            r = rows[p]
            gap = (f"{100 * (r['accuracy'] - rows['finetune_fp32']['accuracy']) + 0.0:+.2f} points"
                   if "finetune_fp32" in rows else "—")
            lines.append(f"| {r['label']} | {r['accuracy']:.4f} | {gap} | {r['macro_f1']:.4f} | "
                         f"{r['seconds_per_step']:.3f} | {r['steps']} | {r['skipped_steps']} | "
                         f"{np.mean(r['losses'][-50:]):.4f} | {mb(r['checkpoint_bytes'])} | "
                         f"{r['recorded_precision']} |")
        lines.append("")
    lines += ["## Targets", "", "| target | met? | measured |", "|---|---|---|"]
    lines += [f"| {t['target']} | {'yes' if t['met'] else '**no**'} | {t['detail']} |"
              for t in report["targets"]]
    lines += ["| GPU: fp16 bert-base step ≤ 0.6× minigrad's fp32 and ≤ 1.5× PyTorch AMP's | "
              "not measured | no GPU was lent |", ""]
    return "\n".join(lines)


# --- plots (tutorial 11 draws some of them too) -------------------------------------------------
def plot_exponents(ax: Any, exponents: dict, log2_scale: int | None = None) -> None:
    """The gradient exponents' histogram against float16's normal and subnormal ranges; with
    ``log2_scale`` k, the same gradients times 2^k beside them."""
    e = np.array(sorted(int(k) for k in exponents))
    n = np.array([exponents[k] if k in exponents else exponents[str(k)] for k in e])
    ax.axvspan(FP16_MIN_NORMAL_EXP, FP16_MAX_EXP + 1, color="tab:green", alpha=0.12,
               label="float16 normal: 2⁻¹⁴ … 65504")
    ax.axvspan(FP16_MIN_SUBNORMAL_EXP, FP16_MIN_NORMAL_EXP, color="tab:orange", alpha=0.15,
               label="float16 subnormal: 2⁻²⁴ … 2⁻¹⁴")
    ax.axvspan(e.min() - 1, FP16_MIN_SUBNORMAL_EXP, color="tab:red", alpha=0.08,
               label="rounds to 0 in float16")
    ax.bar(e, n, width=1.0, align="edge", color="tab:blue", alpha=0.8, label="true gradients")
    if log2_scale:
        ax.bar(e + log2_scale, n, width=1.0, align="edge", color="tab:purple", alpha=0.55,
               label=f"× loss scale 2^{log2_scale}")
    ax.set_yscale("log")
    ax.set_xlabel("binary exponent ⌊log₂|g|⌋ of a nonzero gradient element")
    ax.set_ylabel("elements")
    ax.legend(fontsize=8, loc="upper left")


def plot_losses(ax: Any, rows: dict[str, dict], window: int = 20) -> None:
    """The fine-tuning loss curves overlaid (a moving average of ``window`` steps)."""
    colours = {"finetune_fp32": "tab:blue", "finetune_bf16": "tab:orange",
               "finetune_fp16": "tab:green"}
    for part in FINETUNE_PARTS:
        if part not in rows:
            continue
        losses = np.array(rows[part]["losses"])
        w = min(window, len(losses))
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(1, len(losses) + 1), losses, color=colours[part], alpha=0.15, lw=0.8)
        ax.plot(np.arange(w, len(losses) + 1), smooth, color=colours[part], lw=1.8,
                label=f"{LABELS[part]}: accuracy {rows[part]['accuracy']:.3f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"training loss ({window}-step moving average)")
    ax.legend(fontsize=8)


def plot(report: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = report["parts"]
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    steps = [p for p in STEP_PARTS if p in rows]
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:gray", "tab:red"]
    names = [LABELS[p].replace("minigrad ", "").replace("PyTorch ", "torch ").replace(
        " + GradScaler", "") for p in steps]
    x = np.arange(len(steps))
    axes[0, 0].bar(x, [rows[p].get("ms", 0) for p in steps], color=colours[:len(steps)])
    axes[0, 0].set_ylabel("ms per training step (median)")
    axes[0, 0].set_title("bert-mini training step time on this CPU")
    dtypes = sorted({d for p in steps for d in rows[p]["activation_bytes_by_dtype"]})
    bottom = np.zeros(len(steps))
    for i, d in enumerate(dtypes):
        heights = np.array([rows[p]["activation_bytes_by_dtype"].get(d, 0) / 2**20
                            for p in steps])
        axes[0, 1].bar(x, heights, bottom=bottom, label=d, color=plt.get_cmap("tab10")(i))
        bottom += heights
    axes[0, 1].set_ylabel("MB saved for backward")
    axes[0, 1].set_title("activation memory of one forward pass, by dtype")
    axes[0, 1].legend(fontsize=8)
    for ax in axes[0]:
        ax.set_xticks(x, names, rotation=20, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    if "gradients" in rows:
        plot_exponents(axes[1, 0], rows["gradients"]["exponents"], 16)
        axes[1, 0].set_title("MiniLM step's gradients against float16's range")
    if any(p in rows for p in FINETUNE_PARTS):
        plot_losses(axes[1, 1], rows)
        axes[1, 1].set_title("MiniLM fine-tuned on rotten-tomatoes, same steps")
    fig.suptitle("Mixed precision in minigrad on this CPU (benchmarks/precision.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
