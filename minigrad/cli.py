"""The ``minigrad`` command. It only parses arguments and calls the library.

Each subcommand is a ``cmd_<name>(args) -> int`` function plus a few lines in :func:`build_parser`.
:func:`main` turns the errors a user can cause (a bad file, value, device or checkpoint, a loss
that diverges) into one line, ``minigrad <command>: error: ...``, and exit status 1; a bad
argument exits 2 (argparse); Ctrl-C exits 130 after saying what was saved. ``--debug`` shows
the traceback too. Anything else is a bug in minigrad, and keeps its traceback. Under
``mpiexec -n N``, finetune and distill train data-parallel, one rank per process, and an error
stops every rank (:func:`_exit_world`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Gradcheck every op of the battery in float64 and print one line per op."""
    from minigrad.gradcheck import BATTERY, run_case

    rows = []
    for case in BATTERY:
        start = time.perf_counter()
        try:
            err = run_case(case, seed=args.seed)
            row = {"op": case.name, "ok": True, "max_abs_error": err}
        except Exception as exc:  # report every op, then fail
            row = {"op": case.name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        row["seconds"] = round(time.perf_counter() - start, 4)
        rows.append(row)
        if not args.json:
            detail = f"max |autograd - finite diff| = {row['max_abs_error']:.1e}" if row["ok"] \
                else row["error"]
            print(f"{'OK  ' if row['ok'] else 'FAIL'} {case.name:<34} {detail}")
    failed = [r["op"] for r in rows if not r["ok"]]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"\n{len(rows) - len(failed)}/{len(rows)} ops OK (float64, central differences, "
              f"eps=1e-6, seed {args.seed})" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_derive(args: argparse.Namespace) -> int:
    """Check every claim of the seed documents three ways and print one row per claim."""
    from minigrad.derivations import format_table, inconsistencies, run_all

    claims = run_all()
    if args.json:
        print(json.dumps([c.as_dict() for c in claims], indent=2, ensure_ascii=False))
    else:
        print(format_table(claims))
        differ = sum(c.verdict == "differs" for c in claims)
        gaps = [abs(c.computed - c.finite_difference) for c in claims
                if c.finite_difference is not None]
        print(f"\n{len(claims)} claims: {len(claims) - differ} match, {differ} differ. "
              f"Derivatives: max |computed - finite difference| = {max(gaps):.1e} "
              f"(float64, central differences, eps=1e-6); '—' marks a value, not a derivative.")
    bad = inconsistencies(claims)
    for line in bad:
        print(f"INCONSISTENT {line}", file=sys.stderr)
    return 1 if bad else 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Print sentence embeddings (pooled as the checkpoint says, L2-normalised) and their cosine
    similarities."""
    from minigrad.models.pretrained import embed, minilm_path, read_pooling

    model = None if args.model == "minilm" else args.model
    where = str(minilm_path()) if model is None else model
    pooling = read_pooling(where)
    vectors = embed(args.texts, model=model, batch_size=args.batch_size,
                    max_length=args.max_length)  # (N, H)
    cosine = vectors.astype("float64") @ vectors.T.astype("float64")  # (N, N)
    if args.json:
        print(json.dumps({"model": where, "dimension": vectors.shape[1],
                          "pooling": "+".join(pooling),
                          "normalized": True, "texts": args.texts,
                          "embeddings": vectors.tolist(), "cosine_similarity": cosine.tolist()}))
        return 0
    n_show = 8
    print(f"model: {where}\n{len(args.texts)} text(s) → {vectors.shape[1]}-dimensional "
          f"embeddings ({' + '.join(pooling)} pooling over the tokens, then L2-normalised)")
    norms = cosine.diagonal() ** 0.5  # (N,)
    for i, (text, v, norm) in enumerate(zip(args.texts, vectors, norms, strict=True), start=1):
        head = " ".join(f"{x:+.4f}" for x in v[:n_show])
        print(f"[{i}] {text}\n    norm {norm:.4f}  first {n_show}: {head} ...")
    if len(args.texts) > 1:
        print("\ncosine similarity (the dot product of the normalised embeddings):")
        print("     " + "".join(f"{f'[{j}]':>8}" for j in range(1, len(args.texts) + 1)))
        for i, row in enumerate(cosine, start=1):
            print(f"{f'[{i}]':<5}" + "".join(f"{c:8.4f}" for c in row))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pre-train a BERT from scratch by masked-language modelling on a text file."""
    from minigrad.pretrain import PretrainConfig, describe, pretrain, read_lines

    config = PretrainConfig(config=args.config, max_length=args.max_length, epochs=args.epochs,
                            max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed)
    args.interrupted = lambda: f"nothing was saved to {args.out}"
    result = pretrain(read_lines(args.text), config, out_dir=args.out)
    summary = describe(result)
    print(f"pre-trained {args.config} ({summary['parameters']:,} parameters) on "
          f"{summary['train_sequences']:,} lines of {args.text} in {summary['steps']} steps, "
          f"{summary['seconds']:.0f} s")
    print(f"MLM loss: {summary['first_loss']:.3f} at step 1 -> "
          f"{summary['final_loss_mean_last_50']:.3f} (mean of the last 50 steps)")
    if "val_mlm_loss" in summary:
        print(f"held-out ({summary['valid_sequences']} lines): MLM loss "
              f"{summary['val_mlm_loss']:.3f} (word frequencies alone: "
              f"{summary['unigram_val_mlm_loss']:.3f}), masked-token accuracy "
              f"{summary['val_mlm_accuracy']:.1%}")
    print(f"checkpoint: {args.out} (minigrad finetune --model {args.out} ...)")
    return 0


def _resume_command(args: argparse.Namespace) -> None:
    """Set ``args`` to those of the run that ``--resume DIR`` continues, read from its last
    checkpoint (so the same data and settings are used)."""
    from minigrad.checkpoint import RUN_CHECKPOINTS, TRAINER_STATE_FILE, CheckpointError
    from minigrad.train import latest_checkpoint

    found = latest_checkpoint(Path(args.resume) / RUN_CHECKPOINTS)
    if found is None:
        raise CheckpointError(f"{args.resume}: no complete epoch to resume from (no "
                              f"{RUN_CHECKPOINTS}/checkpoint-*/{TRAINER_STATE_FILE})")
    saved = json.loads((found / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    command = (saved.get("extra") or {}).get("command")
    if not command:
        raise CheckpointError(f"{found}: the checkpoint does not say how its run was started")
    # a run started before --max-grad-norm existed clipped at 1.0, the default then
    command = {"max_grad_norm": 1.0, **command}
    vars(args).update({k: v for k, v in command.items() if k not in ("resume", "debug")})


def _saved_so_far(out: str, command: str = "finetune") -> str:
    """What an interrupted fine-tuning (or distilling) run leaves, for the Ctrl-C message."""
    from minigrad.checkpoint import RUN_CHECKPOINTS
    from minigrad.train import latest_checkpoint

    found = latest_checkpoint(Path(out) / RUN_CHECKPOINTS)
    if found is None:
        return f"no epoch was complete: nothing new was saved to {out}"
    return (f"the last complete epoch is saved in {found}; continue with "
            f"minigrad {command} --resume {out}")


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a BERT on a labelled file or a built-in data set; report on its test set."""
    from minigrad.finetune import FinetuneConfig, finetune

    if args.resume:
        _resume_command(args)
    command = {k: v for k, v in vars(args).items() if k not in ("func", "debug", "resume")}
    config = FinetuneConfig(
        task=args.task, model=args.model, lr=args.lr, batch_size=args.batch_size,
        max_length=args.max_length, epochs=args.epochs, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
        seed=args.seed, patience=args.patience,
        max_train_examples=args.max_train_examples, max_steps=args.max_steps,
        vocab=args.vocab, out_dir=args.out,
        device=args.device, precision=args.precision, resume=bool(args.resume),
        command=command, prune_sparsity=args.prune_sparsity, prune_start=args.prune_start,
        prune_end=args.prune_end,
        peft=args.peft, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout, lora_target_modules=tuple(args.lora_target_modules),
        adapter_size=args.adapter_size, num_virtual_tokens=args.num_virtual_tokens,
        merge=args.merge, dropout=args.dropout, distributed=_join_mpi_world(args.device))
    train, valid, test = _read_data(args)
    args.interrupted = lambda: _saved_so_far(args.out)
    result = finetune(train, valid, test, config)
    if not config.distributed or _mpi_rank() == 0:
        print(format_summary(result, n_examples=args.examples))
    return 0


def _mpi_launched_size() -> int:
    """The size of the MPI world this process was started in by mpiexec (MPICH's, Open MPI's
    or Slurm's environment), 1 if none: read before importing MPI, which may be absent."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def _join_mpi_world(device: str) -> bool:
    """Under ``mpiexec -n N`` with N > 1, join the MPI world (one GPU per rank with --device
    cuda) and say so; a plain run is a world of one."""
    if _mpi_launched_size() <= 1:
        return False
    from minigrad import distributed  # without mpi4py: an ImportError saying how to install it

    distributed.init(device)
    return distributed.world_size() > 1


def _mpi_rank() -> int:
    from minigrad import distributed

    return distributed.rank()


def _read_data(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The train, validation and test examples that the data options name (validation and test
    None when they are to be split off the training set)."""
    from minigrad.data.datasets import load_dataset, read_examples

    if (args.dataset is None) == (args.train is None):
        raise ValueError("give the training data: either --train FILE or --dataset NAME")
    if args.dataset is not None and (args.valid or args.test):
        raise ValueError("--valid and --test go with --train; a built-in data set is split "
                         "into train, validation and test by itself")
    columns = {"text_column": args.text_column, "label_column": args.label_column,
               "text_pair_column": args.text_pair_column}
    if args.dataset is not None:
        train = load_dataset(args.dataset, args.task)
    else:
        train = read_examples(args.train, args.task, **columns)
    valid, test = (None if path is None else read_examples(path, args.task, **columns)
                   for path in (args.valid, args.test))
    return train, valid, test


def cmd_distill(args: argparse.Namespace) -> int:
    """Distil a fine-tuned classifier into a student of fewer of its layers, trained on its
    logits; report on the test set as finetune does."""
    from minigrad.finetune import FinetuneConfig, finetune

    if args.resume:
        _resume_command(args)
    if args.teacher is None:
        raise ValueError("give the teacher: --teacher DIR, a directory written by minigrad "
                         "finetune")
    command = {k: v for k, v in vars(args).items() if k not in ("func", "debug", "resume")}
    config = FinetuneConfig(
        task=args.task, model=args.teacher, teacher=args.teacher, student_layers=args.layers,
        temperature=args.temperature, alpha=args.alpha, lr=args.lr, batch_size=args.batch_size,
        max_length=args.max_length, epochs=args.epochs, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
        seed=args.seed, patience=args.patience,
        max_train_examples=args.max_train_examples, max_steps=args.max_steps,
        out_dir=args.out, device=args.device, dropout=args.dropout,
        precision=args.precision,
        resume=bool(args.resume), command=command, distributed=_join_mpi_world(args.device))
    train, valid, test = _read_data(args)
    args.interrupted = lambda: _saved_so_far(args.out, "distill")
    result = finetune(train, valid, test, config)
    if not config.distributed or _mpi_rank() == 0:
        print(format_summary(result, n_examples=args.examples))
    return 0


def format_summary(result: Any, n_examples: int = 5) -> str:
    """The end of a fine-tuning run (a ``FinetuneResult``), as the command prints it: the
    epochs, the test report, a few test examples with the model's predictions, and where the
    files went."""
    from minigrad.data.datasets import TextExamples

    m = result.metrics
    lines = ["", "epoch  train_loss  " + "  ".join(k for k in result.history.epochs[0]
                                                   if k.startswith("val_"))]
    for e in result.history.epochs:
        lines.append(f"{e['epoch']:>5}  {e['train_loss']:>10.4f}  " + "  ".join(
            f"{e[k]:>{len(k)}.4f}" for k in e if k.startswith("val_")))
    t = m["timing"]
    lines.append(f"\n{t['steps']} steps in {t['train_seconds']:.1f} s "
                 f"({t['seconds_per_step']:.3f} s/step), tokenizing {t['tokenize_seconds']:.2f} "
                 f"s, validation {t['validation_seconds']:.1f} s")
    n = m["parameters"]
    lines.append(f"trainable parameters: {n['trainable']:,} of {n['all']:,} "
                 f"({100 * n['trainable'] / n['all']:.2f}%)")
    d = m["data"]
    lines.append(f"\ntest set: {d['n_test']} examples ({d['test']}), trained on {d['n_train']}")
    lines.append(result.report)
    headline = f"test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    if "entity_f1" in m:
        headline += f", entity F1 (micro) {m['entity_f1']:.4f}"
    if m.get("words_cut_off"):
        headline += f"; {m['words_cut_off']} words past max_length scored as O"
    if "sparsity" in m:
        headline += f"; {m['sparsity']:.1%} of the encoder's Linear weights pruned (zero)"
    lines.append(headline)
    test = result.test
    if n_examples > 0 and isinstance(test, TextExamples):
        shown = list(range(min(n_examples, len(test))))
        pairs = None if test.text_pairs is None else [test.text_pairs[i] for i in shown]
        predictions = result.classifier.predict([test.texts[i] for i in shown], pairs)
        lines.append("\nexample predictions (test set):")
        for i, p in zip(shown, predictions, strict=True):
            mark = "✓" if p["label"] == test.labels[i] else "✗"
            text = p["text"] if len(p["text"]) <= 90 else p["text"][:87] + "..."
            lines.append(f"  {mark} {p['label']:>10} ({p['score']:.2f})  true {test.labels[i]}"
                         f"  {text}")
    elif n_examples > 0:
        lines.append("\nexample predictions (test set; word/predicted tag, [true tag] where it "
                     "differs):")
        for words, tags, pred in list(zip(test.tokens, test.tags, result.predictions,
                                          strict=True))[:n_examples]:
            lines.append("  " + " ".join(
                f"{w}/{p}" if p == t else f"{w}/{p}[{t}]"
                for w, t, p in zip(words, tags, pred, strict=True)))
    if result.out_dir is not None:
        files = sorted(p.name for p in result.out_dir.iterdir() if not p.name.startswith("."))
        lines.append(f"\nsaved to {result.out_dir}/: {', '.join(files)}")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    """Label texts with a fine-tuned model: the label and its probability, one line a text."""
    from minigrad.classifier import Classifier

    if args.text_pair is not None and len(args.text_pair) != len(args.texts):
        raise ValueError(f"{len(args.texts)} texts but {len(args.text_pair)} --text-pair; "
                         "give one --text-pair per text")
    classifier = Classifier.load(args.model, max_length=args.max_length)
    results = classifier.predict(args.texts, args.text_pair)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return 0
    for r in results:
        if "words" in r:
            print(" ".join(f"{w['word']}/{w['label'] or '?'}" for w in r["words"]))
        else:
            print(f"{r['label']}\t{r['score']:.4f}\t{r['text']}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    """Quantise a fine-tuned classifier's Linear layers to int8 (dynamic quantisation) and save
    it as a model directory that ``minigrad predict`` runs."""
    from minigrad.classifier import Classifier
    from minigrad.compress.quantize import linear_nbytes, quantization_config, quantize_dynamic

    if Path(args.out).resolve() == Path(args.model).resolve():
        raise ValueError(f"--out {args.out} is the --model directory: the int8 model would "
                         "replace the float one; give another --out")
    classifier = Classifier.load(args.model)
    before = linear_nbytes(classifier.model)
    try:
        quantize_dynamic(classifier.model, inplace=True)
    except ValueError as exc:  # already quantised, or a weight with inf or NaN
        raise ValueError(f"{args.model}: {exc}") from exc
    after = linear_nbytes(classifier.model)
    out = classifier.save(args.out)
    layers = len(quantization_config(classifier.model)["modules"])
    print(f"{layers} Linear layers to int8: {before / 1e6:.2f} MB of Linear weights and biases "
          f"-> {after / 1e6:.2f} MB ({after / before:.1%})\nsaved to {out}/")
    return 0


def cmd_prune_heads(args: argparse.Namespace) -> int:
    """Remove a fine-tuned classifier's least important attention heads (Michel et al. 2019),
    ranked on labelled data, and save the smaller model."""
    from minigrad import checkpoint
    from minigrad.classifier import Classifier, encode
    from minigrad.compress.prune import (
        check_sparsity,
        head_importance,
        heads_to_prune,
        num_heads,
        prune_heads,
    )
    from minigrad.data.datasets import (
        SPLIT_SEED,
        TokenExamples,
        load_dataset,
        random_split,
        read_examples,
        split_examples,
    )
    from minigrad.data.encoding import length_sorted_batches

    check_sparsity(args.fraction, "--fraction")
    for name in ("batch_size", "max_examples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got "
                             f"{getattr(args, name)}")
    if (args.dataset is None) == (args.data is None):
        raise ValueError("give the data to rank the heads on: either --data FILE or --dataset "
                         "NAME")
    with checkpoint.OutputLock(args.out):
        classifier = Classifier.load(args.model)
        if args.dataset is not None:  # its validation split, as fine-tuning made it
            examples = split_examples(load_dataset(args.dataset, classifier.task))[1]
        else:
            examples = read_examples(args.data, classifier.task, text_column=args.text_column,
                                     label_column=args.label_column,
                                     text_pair_column=args.text_pair_column)
        if args.max_examples is not None and args.max_examples < len(examples):
            examples = random_split(examples, [args.max_examples,
                                               len(examples) - args.max_examples], SPLIT_SEED)[0]
        labels = ({t for tags in examples.tags for t in tags}
                  if isinstance(examples, TokenExamples) else set(examples.labels))
        unknown = sorted(labels - set(classifier.label_names))
        if unknown:
            raise ValueError(f"{examples.source}: label {unknown[0]!r} is not one of the "
                             f"model's labels {classifier.label_names}")
        label2id = {name: i for i, name in enumerate(classifier.label_names)}
        batches = [batch for _, batch in length_sorted_batches(
            encode(classifier, examples, label2id), args.batch_size)]
        model = classifier.model
        before_heads, before_params = num_heads(model), model.num_parameters()
        importance = head_importance(model, batches)  # (L, A)
        chosen = heads_to_prune(importance, args.fraction)
        prune_heads(model, chosen)
        report = {"method": "attention-head pruning (Michel et al. 2019)",
                  "fraction": args.fraction, "data": examples.source,
                  "examples": len(examples), "pruned_now": chosen,
                  "pruned_heads": model.config.pruned_heads,
                  "importance": [[None if math.isnan(v) else float(v) for v in row]
                                 for row in importance]}
        classifier.save(args.out, {"pruning.json": report})

    print(f"head importance on {len(examples)} examples of {examples.source} (mean |dL/dξ_h| "
          "over the batches, each layer divided by its l2 norm; '-' pruned before):")
    print("layer " + "".join(f"{f'h{h}':>8}" for h in range(importance.shape[1])))
    for i, row in enumerate(importance):
        cells = "".join(f"{'-':>8}" if math.isnan(v) else f"{v:8.4f}" for v in row)
        print(f"{i:>5} {cells}")
    removed = sum(map(len, chosen.values()))
    where = "; ".join(f"layer {i}: {', '.join(map(str, h))}" for i, h in chosen.items())
    print(f"\npruned {removed} of {before_heads} heads ({where or 'none'}); "
          f"parameters {before_params:,} -> {model.num_parameters():,}")
    print(f"saved to {args.out}/ (config.json lists pruned_heads; pruning.json the scores)")
    return 0


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``--lr inf`` or ``nan`` would train on garbage)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """The data options of finetune and distill: what to train and test on."""
    data = p.add_argument_group("data")
    data.add_argument("--task", default="sequence-classification",
                      choices=["sequence-classification", "token-classification"],
                      help="a label per text (CSV/TSV/JSONL) or a tag per word (CoNLL)")
    data.add_argument("--train", help="the training file (.csv, .tsv, .jsonl; CoNLL for tags)")
    data.add_argument("--valid", help="the validation file (default: 10%% of --train)")
    data.add_argument("--test", help="the test file (default: 10%% of --train)")
    data.add_argument("--dataset", choices=["rotten-tomatoes", "hironsan"],
                      help="a built-in data set instead of --train: rotten-tomatoes (12.8k "
                           "reviews, fresh/rotten) or hironsan (Japanese NER, token task)")
    data.add_argument("--text-column", default="text", help="the text column (default text)")
    data.add_argument("--text-pair-column", help="the second text of a pair, if any")
    data.add_argument("--label-column", default="label", help="the label column (default label)")
    data.add_argument("--max-train-examples", type=int,
                      help="train on a seeded random subset of this many examples")


def _add_training_options(p: argparse.ArgumentParser, out: str) -> None:
    """The training options of finetune and distill: the update, the loop, the output."""
    p.add_argument("--lr", type=finite_float,
                   help="peak AdamW learning rate (default 2e-5 pretrained, 5e-4 from scratch; "
                        "with --peft lora 5e-4, adapter 3e-4, prompt 3e-2, bitfit 1e-3)")
    p.add_argument("--batch-size", type=int, default=16, help="examples per step (default 16)")
    p.add_argument("--max-length", type=int, default=128,
                   help="tokens per example, [CLS] and [SEP] included (default 128)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the data (default 5)")
    p.add_argument("--max-steps", type=int,
                   help="stop after this many optimizer steps, if the epochs run longer")
    p.add_argument("--warmup-ratio", type=finite_float, default=0.1,
                   help="share of the steps with a rising learning rate (default 0.1)")
    p.add_argument("--weight-decay", type=finite_float, default=0.01,
                   help="AdamW weight decay, on weight matrices only (default 0.01)")
    p.add_argument("--max-grad-norm", type=finite_float, metavar="N",
                   help="clip the global gradient norm at N, 0 never (default: no clipping "
                        "when fine-tuning a pretrained model, which learned better in a short "
                        "run; Hugging Face's 1.0 from scratch or with --peft)")
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a better validation F1, and keep "
                        "the best epoch's weights")
    p.add_argument("--seed", type=int, default=0, help="seed for the head, dropout and order")
    p.add_argument("--out", default=out,
                   help=f"the directory to write the model and metrics to (default {out})")
    p.add_argument("--examples", type=int, default=5,
                   help="test examples to show with their predictions (default 5)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cpu or cuda (default cpu)")
    p.add_argument("--dropout", type=finite_float, metavar="P",
                   help="every dropout rate of the model (hidden, attention, head) set to P, "
                        "e.g. 0 for a run that others can reproduce exactly (default: the "
                        "model's own)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="fp32, or mixed precision: bf16 (autocast to bfloat16) or fp16 "
                        "(autocast to float16 with dynamic loss scaling) (default fp32)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigrad", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show the traceback of an error, not just its message")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", parents=[common],
                       help="check every op's gradient against finite differences")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("derive", parents=[common],
                       help="compute the seed documents' formulas and printed numbers")
    p.add_argument("--json", action="store_true", help="print the claims as JSON")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("embed", parents=[common],
                       help="print sentence embeddings and their cosine similarities")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="the sentences to embed")
    p.add_argument("--model", default="minilm",
                   help="minilm (the installed all-MiniLM-L6-v2) or a checkpoint directory")
    p.add_argument("--max-length", type=int, default=256,
                   help="truncate each text to this many tokens (MiniLM was trained with 256)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="texts per forward pass (default 64)")
    p.add_argument("--json", action="store_true", help="print the full vectors as JSON")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("pretrain", parents=[common],
                       help="pre-train a BERT from scratch by masked-language modelling on a "
                            "text file (one sequence a line)")
    p.add_argument("--text", required=True, help="a UTF-8 text file, one sequence a line")
    p.add_argument("--out", required=True, help="the checkpoint directory to write")
    p.add_argument("--config", default="bert-mini", choices=["bert-tiny", "bert-mini"],
                   help="the model size (default bert-mini)")
    p.add_argument("--max-length", type=int, default=128,
                   help="tokens per sequence, [CLS] and [SEP] included (default 128)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the text (default 1)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many optimizer steps, if sooner")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    p.add_argument("--lr", type=finite_float, default=1e-3,
                   help="peak AdamW learning rate, after warmup (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed for init, masking and order")
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("finetune", parents=[common],
                       help="fine-tune a BERT for text or token classification and report on a "
                            "test set")
    _add_data_options(p)
    p.add_argument("--model", default="minilm",
                   help="minilm (pretrained), bert-tiny or bert-mini (random init), or a "
                        "checkpoint directory (default minilm)")
    p.add_argument("--vocab", help="vocab.txt of a bert-tiny/bert-mini model (default MiniLM's)")
    _add_training_options(p, out="runs/finetune")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the killed or interrupted run whose --out was DIR from its "
                        "last complete epoch, with the same data and settings")
    pruning = p.add_argument_group("magnitude pruning (Zhu & Gupta 2017)")
    pruning.add_argument("--prune-sparsity", type=finite_float, metavar="S",
                         help="zero this fraction of the encoder's Linear weights, smallest "
                              "magnitudes first over all of them, raised on a cubic schedule")
    pruning.add_argument("--prune-start", type=finite_float, default=0.0,
                         help="share of the steps before pruning starts (default 0)")
    pruning.add_argument("--prune-end", type=finite_float, default=0.7,
                         help="share of the steps at which the final sparsity is reached "
                              "(default 0.7)")
    efficient = p.add_argument_group(
        "parameter-efficient fine-tuning",
        "freeze the pretrained model and train a few weights and the head; --out then holds "
        "only those (adapter_model.safetensors), with a reference to the base model")
    efficient.add_argument("--peft", choices=["lora", "adapter", "prompt", "bitfit"],
                           help="LoRA, bottleneck adapters (Houlsby), prompt tuning or BitFit "
                                "(biases only); default: train every weight")
    efficient.add_argument("--lora-r", type=int, default=8, help="LoRA's rank (default 8)")
    efficient.add_argument("--lora-alpha", type=finite_float, default=8.0,
                           help="LoRA's alpha: the update is scaled by alpha / r (default 8)")
    efficient.add_argument("--lora-dropout", type=finite_float, default=0.0,
                           help="dropout on the LoRA branch's input (default 0)")
    efficient.add_argument("--lora-target-modules", nargs="+", default=["query", "value"],
                           metavar="NAME", help="the Linear layers LoRA adapts, by name or "
                                                "dotted suffix (default: query value)")
    efficient.add_argument("--adapter-size", type=int, default=64,
                           help="hidden units of each bottleneck adapter (default 64)")
    efficient.add_argument("--num-virtual-tokens", type=int, default=20,
                           help="prompt tuning's trainable vectors before the text (default 20)")
    efficient.add_argument("--merge", action="store_true",
                           help="lora, bitfit: save the merged plain model instead of the "
                                "adapter")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("distill", parents=[common],
                       help="distil a fine-tuned classifier into a student of fewer of its "
                            "layers, trained on its logits, and report on a test set")
    _add_data_options(p)
    p.add_argument("--teacher", metavar="DIR",
                   help="the fine-tuned classifier: a directory written by minigrad finetune")
    p.add_argument("--layers", type=int, default=3,
                   help="the student's layers, fewer than the teacher's; it starts as the "
                        "teacher with evenly spaced layers kept: 3 of 6 are 0, 2, 4 (every other, "
                        "as DistilBERT), 2 of 6 are 0, 3 (default 3)")
    p.add_argument("--temperature", type=finite_float, default=2.0,
                   help="T of the soft targets softmax(teacher logits / T) (default 2)")
    p.add_argument("--alpha", type=finite_float, default=0.5,
                   help="the weight of the soft targets; 1 - alpha is the labels' (default 0.5)")
    _add_training_options(p, out="runs/distill")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the killed or interrupted run whose --out was DIR from its "
                        "last complete epoch, with the same teacher, data and settings")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("prune-heads", parents=[common],
                       help="remove a fine-tuned model's least important attention heads")
    p.add_argument("--model", required=True, help="a directory written by minigrad finetune")
    p.add_argument("--data", help="labelled examples to rank the heads on (.csv, .tsv, .jsonl; "
                                  "CoNLL for tags)")
    p.add_argument("--dataset", choices=["rotten-tomatoes", "hironsan"],
                   help="a built-in data set instead of --data: its validation split")
    p.add_argument("--fraction", type=finite_float, required=True,
                   help="the share of the heads to remove, in [0, 1); one stays in each layer")
    p.add_argument("--out", required=True, help="the directory to write the pruned model to")
    p.add_argument("--max-examples", type=int, help="rank on a seeded subset of this many")
    p.add_argument("--batch-size", type=int, default=32, help="examples per batch (default 32)")
    p.add_argument("--text-column", default="text", help="the text column (default text)")
    p.add_argument("--text-pair-column", help="the second text of a pair, if any")
    p.add_argument("--label-column", default="label", help="the label column (default label)")
    p.set_defaults(func=cmd_prune_heads)

    p = sub.add_parser("predict", parents=[common], help="label texts with a fine-tuned model")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="the texts to label")
    p.add_argument("--model", required=True, help="a directory written by minigrad finetune")
    p.add_argument("--text-pair", action="append",
                   help="the second text of a pair, once per TEXT, for a model trained on pairs")
    p.add_argument("--max-length", type=int,
                   help="truncate to this many tokens (default: the fine-tuning length)")
    p.add_argument("--json", action="store_true", help="print every class's probability as JSON")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("quantize", parents=[common],
                       help="quantise a fine-tuned classifier's Linear layers to int8 (dynamic "
                            "quantisation, for CPU inference)")
    p.add_argument("--model", required=True, help="a directory written by minigrad finetune")
    p.add_argument("--out", required=True, help="the directory to write the int8 model to")
    p.set_defaults(func=cmd_quantize)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a user's input can cause: each becomes one line and exit status 1."""
    from minigrad.backend import DeviceError
    from minigrad.checkpoint import CheckpointError

    return (ValueError, OSError, ImportError, CheckpointError, DeviceError, FloatingPointError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        saved = getattr(args, "interrupted", lambda: "nothing was saved")()
        print(f"\nminigrad {args.command}: interrupted; {saved}", file=sys.stderr)
        return 130
    except user_errors() as exc:
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        _exit_world(args.command, message, exc)
        print(f"minigrad {args.command}: error: {message}", file=sys.stderr)
        return 1


def _exit_world(command: str, message: str, exc: BaseException) -> None:
    """Under mpiexec, an error must stop every rank: one raised on every rank alike (a
    ``WorldError``: a bad --batch-size, ranks that disagree) is printed by rank 0 and each rank
    returns 1; any other may be this rank's alone, and would leave the others waiting in their
    next collective forever, so it is printed with the rank and aborts the whole world."""
    distributed = sys.modules.get("minigrad.distributed")
    if distributed is None or distributed.world_size() == 1:
        return
    if isinstance(exc, distributed.WorldError):
        if distributed.rank() != 0:
            sys.exit(1)
        return
    print(f"minigrad {command}: error on rank {distributed.rank()}: {message}", file=sys.stderr)
    distributed.abort(1)


if __name__ == "__main__":
    sys.exit(main())
