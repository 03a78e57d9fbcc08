"""Inference throughput on the CPU: minigrad's ``embed`` and ``predict`` against transformers +
torch, in texts per second, tokenization included (issue 20).

    python benchmarks/inference.py --json --out benchmarks/results/inference_epyc2_2026-12-05
    python benchmarks/inference.py --texts 64 --long-texts 64 --repeats 1 --json   # smoke run
    python benchmarks/inference.py --profile     # also where each side's time goes, by op

The model is all-MiniLM-L6-v2 (6 layers, H=384, 12 heads), float32, batches of ``--batch`` (64)
texts truncated to ``--max-length`` (128) tokens and padded per batch. Two jobs:

* ``embed``: sentence embeddings, mean pooling over the real tokens then L2 normalisation.
  minigrad: :func:`minigrad.models.pretrained.embed` (MiniLM's own pooling, read from its
  sentence-transformers config). Peer: ``BertModel`` + the same pooling in torch.
* ``predict``: a classifier's labels with their probabilities, what ``minigrad predict`` prints.
  minigrad: :meth:`Classifier.predict` of a classifier saved with :meth:`Classifier.save` and
  read back with :meth:`Classifier.load`, as the CLI does. It is MiniLM with a freshly
  initialised 2-class head (``minigrad.manual_seed(0)``), not fine-tuned: the speed is the
  same as a fine-tuned one's, the labels mean nothing. Peer: ``BertForSequenceClassification``
  loaded by transformers from that same directory (so both have the same weights), softmax,
  the same list of ``{text, label, score, scores}`` dicts.

Peers load offline (``local_files_only``), run under ``torch.inference_mode()`` with
``BertTokenizerFast`` (Rust) from :func:`minilm_path`; minigrad's run under ``minigrad.no_grad``
(inside ``embed`` and ``predict``) with its own WordPiece tokenizer. Each peer runs in two
orders:

* ``given``: batches of the texts in the order given, each tokenized with ``padding=True`` (a
  user's loop; what ``pipeline`` does);
* ``sorted``: every text tokenized once (truncated, unpadded), the texts sorted by their token
  count, longest first, and each batch padded to its longest: the least padding there can be,
  what minigrad's ``predict`` does (``embed`` sorts by characters, as sentence-transformers).

The headline ratio is against the ``sorted`` peer (the strict one: the same padding as
minigrad); against ``given`` is reported too. Two sets of texts: ``short``, ``--texts`` real
rotten-tomatoes reviews (a seeded sample; about 30 tokens each); ``long``, ``--long-texts``
texts each made of consecutive reviews joined until it has more than ``--max-length`` tokens,
so every row of every batch is ``--max-length`` long (the issue names max length 128).

Before timing, the outputs are checked against each other: every embedding's cosine with the
peer's > 0.9999, the classifier's probabilities within 1e-4 and its logits (on the first
batches) within 1e-3, the labels the same. Then each repeat runs every side once over the
whole set, the sides' order alternating repeat by repeat; the figures are medians over
``--repeats`` (after one untimed pass each, whose outputs are the ones checked). Each side's
tokenizer time is measured inside the same runs (the tokenizer wrapped in a timer) and
reported as a share. minigrad's tokenizer keeps a cache of words already split into pieces, so
after the first pass it is warm; its cold time (a fresh tokenizer, one pass) is reported too.

NumPy's BLAS, Numba, OpenMP and torch all get ``--threads`` threads (set before they load),
and both OpenMP pools wait passively (``OMP_WAIT_POLICY=PASSIVE``), so that one side's idle
threads do not spin on the cores the other side is using (see benchmarks/bert_step.py).
``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--texts", type=int, default=2048, help="short reviews (default 2048)")
ARGS.add_argument("--long-texts", type=int, default=512,
                  help="texts of more than --max-length tokens (default 512)")
ARGS.add_argument("--batch", type=int, default=64)
ARGS.add_argument("--max-length", type=int, default=128)
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--repeats", type=int, default=3, help="timed passes per side (median)")
ARGS.add_argument("--jobs", default="embed,predict", help="comma-separated: embed, predict")
ARGS.add_argument("--sets", default="short,long", help="comma-separated: short, long")
ARGS.add_argument("--json", action="store_true", help="print one JSON object, last")
ARGS.add_argument("--out", default=None,
                  help="also write OUT.json and OUT.md (the table and the command)")
ARGS.add_argument("--profile", action="store_true",
                  help="also profile one pass of each job and set: minigrad's by op "
                       "(cProfile), the sorted peer's by torch op (torch.profiler)")

if __name__ == "__main__":
    _args = ARGS.parse_args()
    for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        os.environ[_var] = str(_args.threads)  # before NumPy, Numba and torch start threads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # both pools sleep when idle
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the Rust tokenizer: 1 thread
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

LABELS = ["negative", "positive"]  # the fresh head's two classes
ORDERS = ("given", "sorted")
HEADLINE = "sorted"  # the strict peer: as little padding as minigrad


class TimedTokenizer:
    """A tokenizer whose calls are timed: ``seconds`` adds up the time spent inside it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.seconds = tokenizer, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.tokenizer(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


# --- the texts ------------------------------------------------------------------------------------
def text_sets(n_short: int, n_long: int, max_length: int) -> dict[str, list[str]]:
    """``short``: n_short reviews, a seeded sample. ``long``: n_long texts, each consecutive
    reviews (of the rest) joined by spaces until minigrad's tokenizer gives it more than
    ``max_length`` pieces, so that truncation makes every row ``max_length`` long."""
    from minigrad.data.datasets import load_rotten_tomatoes
    from minigrad.models.pretrained import load_tokenizer, minilm_path

    reviews = load_rotten_tomatoes().texts
    order = np.random.default_rng(0).permutation(len(reviews))
    short = [reviews[i] for i in order[:n_short]]
    tokenizer = load_tokenizer(minilm_path())
    rest, long, i = order[n_short:], [], 0
    while len(long) < n_long:
        parts: list[str] = []
        while len(tokenizer.encode(" ".join(parts), add_special_tokens=False)) <= max_length:
            parts.append(reviews[rest[i % len(rest)]])
            i += 1
        long.append(" ".join(parts))
    return {"short": short, "long": long}


# --- minigrad -------------------------------------------------------------------------------------
def minigrad_sides(directory: Path, batch: int, max_length: int,
                   ) -> dict[str, tuple[Callable[[list[str]], Any], TimedTokenizer]]:
    """{job: (run over a list of texts, its timed tokenizer)}. ``predict`` is the classifier
    that :meth:`Classifier.load` reads from ``directory``; ``embed`` is MiniLM with its own
    pooling, handed to :func:`embed` with the timed tokenizer (what ``embed(texts)`` loads)."""
    from minigrad.classifier import Classifier
    from minigrad.models.pretrained import embed, load_tokenizer, minilm, minilm_path

    classifier = Classifier.load(directory, max_length=max_length)
    classifier.eval_batch_size = batch
    classifier.tokenizer = predict_tok = TimedTokenizer(classifier.tokenizer)
    encoder, embed_tok = minilm(), TimedTokenizer(load_tokenizer(minilm_path()))

    def run_embed(texts: list[str]) -> np.ndarray:
        return embed(texts, model=encoder, tokenizer=embed_tok, batch_size=batch,
                     max_length=max_length)  # (N, H)

    return {"embed": (run_embed, embed_tok), "predict": (classifier.predict, predict_tok)}


def save_classifier(directory: Path, max_length: int) -> None:
    """MiniLM with a fresh 2-class head (seed 0), written as ``minigrad finetune`` writes."""
    import minigrad
    from minigrad.classifier import Classifier
    from minigrad.models.pretrained import load_tokenizer, minilm, minilm_path

    minigrad.manual_seed(0)
    model = minilm("sequence-classification", num_labels=len(LABELS))
    Classifier(model, load_tokenizer(minilm_path()), LABELS, max_length=max_length).save(
        directory)


# --- the peer: transformers + torch ---------------------------------------------------------------
def peer_sides(directory: Path, batch: int, max_length: int,
               ) -> dict[str, dict[str, tuple[Callable[[list[str]], Any], TimedTokenizer]]]:
    """{job: {order: (run over a list of texts, its timed tokenizer)}}: transformers' MiniLM
    (``BertModel`` for embed, the saved classifier for predict), ``BertTokenizerFast``."""
    import torch
    import transformers
    from torch.nn import functional as F

    from minigrad.models.pretrained import minilm_path

    transformers.logging.set_verbosity_error()
    encoder = transformers.BertModel.from_pretrained(
        minilm_path(), local_files_only=True, add_pooling_layer=False).eval()
    classifier = transformers.BertForSequenceClassification.from_pretrained(
        directory, local_files_only=True).eval()

    def embed_batch(enc: dict[str, torch.Tensor]) -> np.ndarray:
        hidden = encoder(**enc).last_hidden_state  # (B, S, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, S, 1)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
        return F.normalize(mean, p=2, dim=1).numpy()

    def logits_batch(enc: dict[str, torch.Tensor]) -> np.ndarray:
        return classifier(**enc).logits.numpy()  # (B, C)

    def labelled(texts: list[str], logits: np.ndarray) -> list[dict[str, Any]]:
        probs = torch.softmax(torch.from_numpy(logits).double(), dim=-1).numpy()  # (N, C)
        return [{"text": text, "label": LABELS[int(np.argmax(p))], "score": float(p.max()),
                 "scores": dict(zip(LABELS, map(float, p), strict=True)), "logits": row}
                for text, p, row in zip(texts, probs, logits, strict=True)]

    sides: dict[str, dict[str, Any]] = {"embed": {}, "predict": {}}
    for order in ORDERS:
        for job, per_batch in (("embed", embed_batch), ("predict", logits_batch)):
            tok = TimedTokenizer(transformers.BertTokenizerFast.from_pretrained(
                minilm_path(), local_files_only=True))
            run = _peer_run(tok, per_batch, batch, max_length, order == "sorted")
            if job == "predict":
                sides[job][order] = ((lambda t, run=run: labelled(t, run(t))), tok)
            else:
                sides[job][order] = (run, tok)
    return sides


def _peer_run(tok: TimedTokenizer, per_batch: Callable[[dict], np.ndarray], batch: int,
              max_length: int, sort: bool) -> Callable[[list[str]], np.ndarray]:
    """The peer's loop: batches in the given order, each tokenized with padding; or (sort) all
    texts tokenized once, sorted by length, each batch padded to its longest."""
    import torch

    def given(texts: list[str]) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                enc = tok(texts[start:start + batch], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
                outs.append(per_batch(dict(enc)))
        return np.concatenate(outs)

    def by_length(texts: list[str]) -> np.ndarray:
        enc = tok(texts, truncation=True, max_length=max_length)  # unpadded lists of ids
        lengths = np.array([len(ids) for ids in enc["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        out = None
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                rows = order[start:start + batch]
                width = int(lengths[rows].max())
                ids = np.zeros((len(rows), width), dtype=np.int64)  # (B, S), 0 = [PAD]
                for k, row in enumerate(rows):
                    ids[k, :lengths[row]] = enc["input_ids"][row]
                mask = (np.arange(width) < lengths[rows, None]).astype(np.int64)  # (B, S)
                result = per_batch({"input_ids": torch.from_numpy(ids),
                                    "attention_mask": torch.from_numpy(mask),
                                    "token_type_ids": torch.zeros_like(torch.from_numpy(ids))})
                if out is None:
                    out = np.empty((len(texts), *result.shape[1:]), dtype=result.dtype)
                out[rows] = result
        return out

    return by_length if sort else given


# --- checks ---------------------------------------------------------------------------------------
def agreement(job: str, ours: Any, theirs: Any) -> dict[str, float]:
    """How close the two sides' outputs are; raises SystemExit past the tolerances."""
    if job == "embed":
        cosine = np.sum(ours.astype(np.float64) * theirs.astype(np.float64), axis=1)  # (N,)
        result = {"min_cosine": float(cosine.min())}
        ok = result["min_cosine"] > 0.9999
    else:
        p = np.array([[r["scores"][name] for name in LABELS] for r in ours])  # (N, C)
        q = np.array([[r["scores"][name] for name in LABELS] for r in theirs])  # (N, C)
        same = np.mean([a["label"] == b["label"] for a, b in zip(ours, theirs, strict=True)])
        result = {"max_abs_prob_diff": float(np.abs(p - q).max()),
                  "labels_agree": float(same)}
        ok = result["max_abs_prob_diff"] < 1e-4 and same == 1.0
    if not ok:
        raise SystemExit(f"inference.py: minigrad's and the peer's {job} outputs differ: "
                         f"{result}")
    return result


def logits_agreement(directory: Path, peer_predict: Callable, texts: list[str],
                     max_length: int) -> float:
    """max |logit difference| of the two classifiers on ``texts`` (one batch or two)."""
    from minigrad.classifier import Classifier

    ours = Classifier.load(directory, max_length=max_length).logits(texts)  # (N, C)
    theirs = np.stack([r["logits"] for r in peer_predict(texts)])  # (N, C)
    diff = float(np.abs(ours - theirs).max())
    if diff > 1e-3:
        raise SystemExit(f"inference.py: the classifiers' logits differ by {diff:.2e}")
    return diff


# --- timing and profile ---------------------------------------------------------------------------
def race(sides: dict[str, tuple[Callable, TimedTokenizer]], texts: list[str], repeats: int,
         ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Any]]:
    """(seconds of each side's timed passes, their tokenizer seconds, the untimed first pass's
    outputs), the sides taking turns, their order alternating repeat by repeat."""
    names = list(sides)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    tokenizer: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, Any] = {}
    for i in range(1 + repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            run, tok = sides[name]
            tok.seconds = 0.0
            t0 = time.perf_counter()
            out = run(texts)
            elapsed = time.perf_counter() - t0
            if i == 0:
                outputs[name] = out
            else:
                seconds[name].append(elapsed)
                tokenizer[name].append(tok.seconds)
    return seconds, tokenizer, outputs


def profile(run: Callable[[list[str]], Any], texts: list[str]) -> dict[str, float]:
    """Seconds of one minigrad pass by part: the tokenizer, each op's forward (the Function
    classes, cumulative), the encoder's layers, pooling, and the rest; plus the top functions
    by own time."""
    import cProfile
    import pstats

    import minigrad.models.bert as bert
    from minigrad.autograd import Function
    from minigrad.data.tokenizer import BertTokenizer
    from minigrad.models import pretrained

    where: dict[tuple[str, int], str] = {}
    classes = list(Function.__subclasses__())
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        fn = cls.__dict__.get("forward")
        if fn is not None:
            code = fn.__func__.__code__ if hasattr(fn, "__func__") else fn.__code__
            where[(code.co_filename, code.co_firstlineno)] = f"op {cls.__name__}"
    parts = {"tokenizer": BertTokenizer.__call__,
             "model: BertModel.forward": bert.BertModel.forward,
             "pooling + normalise": pretrained.pool}
    for name, fn in parts.items():
        where[(fn.__code__.co_filename, fn.__code__.co_firstlineno)] = name

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    run(texts)
    profiler.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(profiler).stats
    table: dict[str, float] = {}
    for (file, line, _), (_, _, _, cumulative, _) in stats.items():
        if (file, line) in where:
            table[where[(file, line)]] = table.get(where[(file, line)], 0.0) + cumulative
    own = sorted(((tottime, f"{Path(file).name}:{line} {func}")
                  for (file, line, func), (_, _, tottime, _, _) in stats.items()), reverse=True)
    return {"pass_s (profiled)": round(total, 3),
            **{k: round(v, 3) for k, v in sorted(table.items(), key=lambda kv: -kv[1])},
            "top_own_time": {name: round(t, 3) for t, name in own[:12]}}


def peer_profile(run: Callable[[list[str]], Any], texts: list[str], top: int = 8,
                 ) -> dict[str, float]:
    """Seconds of one pass of the peer by torch op (``torch.profiler``'s self CPU time), the
    ``top`` largest, to set beside minigrad's ops."""
    import torch.profiler

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run(texts)
        total = time.perf_counter() - t0
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return {"pass_s (profiled)": round(total, 3),
            **{e.key: round(e.self_cpu_time_total / 1e6, 3) for e in ops}}


def gemm_rates(rows: int, hidden: int = 384, ffn: int = 1536, n: int = 5,
               ) -> dict[str, dict[str, float]]:
    """GFLOP/s of NumPy's BLAS (minigrad's Linear: ``x @ w.T``) and of torch's
    ``F.linear`` on MiniLM's three Linear shapes with ``rows`` = batch × length rows: the best
    of ``n`` calls each, the two taking turns."""
    import torch

    rng = np.random.default_rng(0)
    rates: dict[str, dict[str, float]] = {}
    for k, m in ((hidden, hidden), (hidden, ffn), (ffn, hidden)):
        x = rng.standard_normal((rows, k), dtype=np.float32)  # (M, in)
        w = rng.standard_normal((m, k), dtype=np.float32)  # (out, in)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        best = {"numpy": float("inf"), "torch": float("inf")}
        for _ in range(n):
            for name in best:
                t0 = time.perf_counter()
                if name == "numpy":
                    x @ w.T  # (M, out)
                else:
                    torch.nn.functional.linear(tx, tw)  # (M, out)
                best[name] = min(best[name], time.perf_counter() - t0)
        flops = 2 * rows * k * m
        rates[f"({rows}, {k}) x ({k}, {m})"] = {name: round(flops / t / 1e9, 1)
                                                for name, t in best.items()}
    return rates


# --- report ---------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import numba
    import tokenizers
    import torch
    import transformers
    from threadpoolctl import threadpool_info

    import minigrad

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bert_step import cpu_model

    cpu, cores = cpu_model()
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "minigrad_backend": minigrad.get_backend(),
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),  # bert_step.py's doc
            "openblas_kernels": next((i.get("architecture") for i in threadpool_info()
                                      if "numpy" in i["filepath"]), None)}


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        "# Inference throughput (CPU): minigrad against transformers + torch",
        "",
        f"`{result['command']}`",
        "",
        f"all-MiniLM-L6-v2, float32, batch {s['batch']}, max length {s['max_length']}, "
        f"{s['threads']} threads each side, median of {s['repeats']} passes over each set, "
        "tokenization included. The peer's `sorted` order (each batch padded to its longest "
        "after sorting by token count, as minigrad does) is the headline; `given` is a plain "
        "loop over the texts in the given order. `predict` is MiniLM with a freshly "
        "initialised 2-class head (speed only).",
        "",
        "| job | set | texts | minigrad texts/s | peer sorted texts/s | ratio (headline) "
        "| peer given texts/s | ratio vs given | minigrad tokenizer share | peer tokenizer share |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['job']} | {row['set']} | {row['texts']} | "
            f"{row['minigrad_texts_per_s']:.1f} | {row['peer_sorted_texts_per_s']:.1f} | "
            f"**{row['ratio_sorted']:.2f}** | {row['peer_given_texts_per_s']:.1f} | "
            f"{row['ratio_given']:.2f} | {row['minigrad_tokenizer_share']:.1%} | "
            f"{row['peer_sorted_tokenizer_share']:.1%} |")
    lines += ["", "Ratio: minigrad's texts/s over the peer's (> 1: minigrad is faster; the "
              "target is ≥ 1.2). Agreement checked before timing: "
              + "; ".join(f"{r['job']}/{r['set']}: "
                          + ", ".join(f"{k} {v:.6g}" for k, v in r["agreement"].items())
                          for r in result["rows"]) + ".",
              "",
              "minigrad's tokenizer caches the WordPiece split of each word it has seen, so in "
              "the timed passes it is warm; cold (a fresh tokenizer, one pass over the set): "
              + "; ".join(f"{k} {v:.3f} s" for k, v in result["minigrad_tokenizer_cold_s"].items())
              + ".",
              "",
              f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; torch "
              f"{result['machine']['torch']}, transformers {result['machine']['transformers']} "
              f"(attention: {result['peer_attn_implementation']}); load average before "
              f"{result['load_before']}, after {result['load_after']}."]
    if "minigrad_profile_s" in result:
        lines += ["", "## Where minigrad's time goes (cProfile, one pass, seconds)", ""]
        for key, table in result["minigrad_profile_s"].items():
            lines.append(f"### {key}")
            lines.append("")
            lines += [f"- {name}: {value}" for name, value in table.items()
                      if name != "top_own_time"]
            lines.append("- top own time: " + ", ".join(
                f"{name} {t}" for name, t in table["top_own_time"].items()))
            lines.append("")
        lines += ["## The peer's time (torch.profiler, self CPU seconds, one pass, sorted)", ""]
        for key, table in result["peer_sorted_profile_s"].items():
            lines.append(f"- {key}: " + ", ".join(f"{name} {t}" for name, t in table.items()))
        lines += ["", "## BLAS rate at MiniLM's Linear shapes (GFLOP/s, best of 5)", "",
                  "| rows | shape | NumPy (minigrad's Linear) | torch F.linear |",
                  "|---|---|---:|---:|"]
        for rows, table in result["gemm_gflops"].items():
            lines += [f"| {rows} | {shape} | {r['numpy']} | {r['torch']} |"
                      for shape, r in table.items()]
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = ARGS.parse_args()
    import torch

    import minigrad  # noqa: F401
    from minigrad.models.pretrained import load_tokenizer, minilm_path

    torch.set_num_threads(args.threads)
    jobs = [j for j in args.jobs.split(",") if j]
    sets = [s for s in args.sets.split(",") if s]
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    texts = text_sets(args.texts if "short" in sets else 0,
                      args.long_texts if "long" in sets else 0, args.max_length)
    rows: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    peer_profiles: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "classifier"
        save_classifier(directory, args.max_length)
        ours = minigrad_sides(directory, args.batch, args.max_length)
        theirs = peer_sides(directory, args.batch, args.max_length)
        for job in jobs:
            for name in sets:
                sides = {"minigrad": ours[job],
                         **{f"peer_{order}": theirs[job][order] for order in ORDERS}}
                seconds, tok_seconds, outputs = race(sides, texts[name], args.repeats)
                check = {}
                for order in ORDERS:
                    agree = agreement(job, outputs["minigrad"], outputs[f"peer_{order}"])
                    check.update({f"{k}_vs_{order}": v for k, v in agree.items()})
                if job == "predict":
                    check["max_abs_logit_diff"] = logits_agreement(
                        directory, theirs["predict"]["sorted"][0],
                        texts[name][:2 * args.batch], args.max_length)
                n = len(texts[name])
                row: dict[str, Any] = {"job": job, "set": name, "texts": n, "agreement": check}
                for side in sides:
                    s, t = statistics.median(seconds[side]), statistics.median(tok_seconds[side])
                    row[f"{side}_texts_per_s"] = round(n / s, 2)
                    row[f"{side}_s_each"] = [round(x, 3) for x in seconds[side]]
                    row[f"{side}_tokenizer_share"] = round(t / s, 4)
                for order in ORDERS:
                    row[f"ratio_{order}"] = round(row["minigrad_texts_per_s"]
                                                  / row[f"peer_{order}_texts_per_s"], 3)
                    row[f"ratio_of_pairs_{order}"] = round(statistics.median(
                        p / m for m, p in zip(seconds["minigrad"], seconds[f"peer_{order}"],
                                              strict=True)), 3)
                rows.append(row)
                print(f"{job}/{name}: minigrad {row['minigrad_texts_per_s']} texts/s; peer "
                      + ", ".join(f"{order} {row[f'peer_{order}_texts_per_s']} (ratio "
                                  f"{row[f'ratio_{order}']})" for order in ORDERS)
                      + f"; {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
                if args.profile:
                    profiles[f"{job}/{name}"] = profile(ours[job][0], texts[name])
                    peer_profiles[f"{job}/{name}"] = peer_profile(
                        theirs[job][HEADLINE][0], texts[name])
    cold = {}
    for name in sets:
        tokenizer = load_tokenizer(minilm_path())
        t0 = time.perf_counter()
        tokenizer(texts[name], truncation=True, max_length=args.max_length)
        cold[name] = round(time.perf_counter() - t0, 3)

    import transformers

    result: dict[str, Any] = {
        "command": "python benchmarks/inference.py " + " ".join(sys.argv[1:]),
        "settings": {"batch": args.batch, "max_length": args.max_length,
                     "threads": args.threads, "repeats": args.repeats,
                     "texts": {k: len(v) for k, v in texts.items()},
                     "predict_head": "MiniLM + freshly initialised 2-class head (seed 0)",
                     "headline_peer_order": HEADLINE},
        "rows": rows,
        "minigrad_tokenizer_cold_s": cold,
        "peer_attn_implementation": transformers.BertModel.from_pretrained(
            minilm_path(), local_files_only=True).config._attn_implementation,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    if profiles:
        result["minigrad_profile_s"] = profiles
        result["peer_sorted_profile_s"] = peer_profiles
        result["gemm_gflops"] = {f"batch of {args.batch} x {n} tokens": gemm_rates(args.batch * n)
                                 for n in (32, args.max_length)}
    # the --json summary: texts/s and the ratio for each job x set x peer order
    result["summary"] = {
        f"{r['job']}/{r['set']}/peer_{order}": {
            "minigrad_texts_per_s": r["minigrad_texts_per_s"],
            "peer_texts_per_s": r[f"peer_{order}_texts_per_s"], "ratio": r[f"ratio_{order}"]}
        for r in rows for order in ORDERS}
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
        Path(args.out + ".md").write_text(markdown(result))
    if args.json:
        print(json.dumps(result))
        return
    print(markdown(result))


if __name__ == "__main__":
    main()
