"""Pre-training a BERT from scratch with masked-language modelling (BERT's first stage).

Seed 001 (§4.2.1) gives the objective. Hide some tokens of a text, and ask the model for
them back. Write x_i for the corrupted text around the i-th hidden token, y_i for the token
that was there, z_i for the model's final vector at that position and E for the word-embedding
matrix. Then

    L_MLM = −Σ_i log P(ŷ_i = y_i | x_i) = −Σ_i log( exp(z_i·w_{y_i}) / Σ_{j=1..V} exp(z_i·w_j) )

with w_j = E[j] (the decoder is tied to the embeddings) plus a per-token bias. The sum runs
over the hidden tokens only. Every other position has label −100 and adds nothing. minigrad
minimises the mean over the M hidden tokens of a batch, L_MLM / M. That has the same minimum,
and the gradient is only divided by M.

The recipe (Devlin et al., 2019, §3.1 and appendix A.1), one batch at a time:

1. Each non-empty line of the text is one sequence, ``[CLS] line [SEP]``, tokenized with the
   MiniLM WordPiece vocabulary and cut to ``max_length`` tokens. A batch is padded to its
   longest sequence ("dynamic padding"), and holds sequences of similar lengths
   (:func:`length_grouped_batches`), so that little of each step is spent on padding.
2. :func:`mask_tokens` draws a new mask every time a sequence is seen (RoBERTa's "dynamic
   masking"). Each real, non-special token is selected with probability 15%; [CLS], [SEP],
   [PAD], [UNK] and [MASK] never are. A selected token becomes [MASK] 80% of the time, a
   random token 10% of the time and stays as it is 10% of the time. The labels hold the
   original id where a token was selected and −100 everywhere else.
3. :func:`mlm_loss` runs the encoder on the whole batch. It takes out the M selected
   positions and projects only those onto the vocabulary (Google's BERT does the same:
   ``gather_indexes``). That is the same loss as ``BertForMaskedLM(..., labels=labels)``
   (tested), without computing logits nobody reads: (M, V) instead of (B, S, V).
4. AdamW (no decay on biases and LayerNorm), linear warmup then linear decay, gradient
   clipping at norm 1.

:func:`pretrain` writes a checkpoint in Hugging Face's layout, which ``from_pretrained`` and
``minigrad finetune --model DIR`` load (the encoder is kept, a fresh classifier is added)::

    model.safetensors      bert.* (the encoder) + cls.predictions.* (the MLM head)
    config.json            BertConfig, with "architectures": ["BertForMaskedLM"]
    vocab.txt              the WordPiece vocabulary (+ tokenizer_config.json)
    history.json           per-step loss and lr, held-out MLM loss and accuracy
    curves.png             the loss curves
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import checkpoint
from minigrad.data.datasets import batch_indices
from minigrad.data.encoding import IGNORE_INDEX, pad_rows
from minigrad.data.tokenizer import BertTokenizer
from minigrad.models.bert import BertConfig, BertForMaskedLM
from minigrad.models.pretrained import load_tokenizer, minilm_path
from minigrad.nn import functional as F
from minigrad.optim import AdamW, get_linear_schedule_with_warmup, param_groups_for_weight_decay
from minigrad.tensor import Tensor
from minigrad.train import (
    CURVES_FILE,
    HISTORY_FILE,
    History,
    TrainConfig,
    evaluate_batches,
    fit,
    seed_everything,
)

# --- masking -----------------------------------------------------------------------------------

def mask_tokens(input_ids: np.ndarray, attention_mask: np.ndarray, *, mask_token_id: int,
                special_ids: Sequence[int], vocab_size: int, rng: np.random.Generator,
                mlm_probability: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT's corruption of a batch, (B, S) ids → (corrupted ids, labels), both (B, S).

    * selected: each position with ``attention_mask`` 1 whose id is not in ``special_ids``,
      independently with probability ``mlm_probability``;
    * of the selected: 80% become ``mask_token_id``, 10% a random id drawn uniformly from the
      vocabulary without the special ids, 10% stay as they are;
    * labels: the original id at every selected position, −100 everywhere else.

    If a batch has real tokens but none was drawn, one of them is selected, so that every batch
    has something to predict. ``input_ids`` is not changed.
    """
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mask_tokens: mlm_probability must be in (0, 1), got {mlm_probability}")
    input_ids, attention_mask = np.asarray(input_ids), np.asarray(attention_mask)
    if input_ids.shape != attention_mask.shape or input_ids.ndim != 2:
        raise ValueError(f"mask_tokens: input_ids {input_ids.shape} and attention_mask "
                         f"{attention_mask.shape} must both be (batch, seq_len)")
    special = np.asarray(sorted(set(special_ids)), dtype=input_ids.dtype)
    selectable = (attention_mask == 1) & ~np.isin(input_ids, special)  # (B, S)
    selected = selectable & (rng.random(input_ids.shape) < mlm_probability)  # (B, S)
    if selectable.any() and not selected.any():
        candidates = np.flatnonzero(selectable)
        selected.flat[candidates[rng.integers(len(candidates))]] = True

    labels = np.where(selected, input_ids, IGNORE_INDEX)  # (B, S)
    action = rng.random(input_ids.shape)  # (B, S): < 0.8 mask, < 0.9 random, else keep
    corrupted = input_ids.copy()
    corrupted[selected & (action < 0.8)] = mask_token_id
    to_random = selected & (action >= 0.8) & (action < 0.9)
    ordinary = np.setdiff1d(np.arange(vocab_size, dtype=input_ids.dtype), special)
    corrupted[to_random] = ordinary[rng.integers(len(ordinary), size=int(to_random.sum()))]
    return corrupted, labels


def mlm_loss(model: BertForMaskedLM, input_ids: np.ndarray, attention_mask: np.ndarray,
             labels: np.ndarray) -> Tensor:
    """The mean of −log P(y_i | x_i) over the M positions whose label is not −100.

    The encoder sees the whole batch, (B, S, H); only the M selected rows go through the MLM
    head, (M, H) → (M, V). Equal to ``model(input_ids, attention_mask, labels=labels).loss``.
    """
    labels = np.asarray(labels)
    hidden = model.bert(input_ids, attention_mask).last_hidden_state  # (B, S, H)
    rows, cols = np.nonzero(labels != IGNORE_INDEX)  # the M selected positions
    logits = model.cls(hidden[rows, cols])  # (M, H) -> (M, V)
    return F.cross_entropy(logits, labels[rows, cols])


# --- the text ----------------------------------------------------------------------------------

def read_lines(path: str | Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped: one sequence each."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                         "convert it, e.g. iconv -t UTF-8") from exc
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path} holds no text: every line is empty")
    return lines


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                           group: int = 50) -> list[np.ndarray]:
    """Row indices of batches of similar lengths, in a random order (Hugging Face's
    ``group_by_length``): shuffle the rows, sort each run of ``group`` batches' worth by
    length, cut it into batches, then shuffle the batches. Every row is in exactly one batch.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * group):
        run = order[start:start + batch_size * group]
        run = run[np.argsort(lengths[run], kind="stable")]
        batches += [run[i:i + batch_size] for i in range(0, len(run), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# --- the run -----------------------------------------------------------------------------------

@dataclasses.dataclass
class PretrainConfig:
    """Everything that decides a pre-training run."""

    config: str = "bert-mini"       # a named size (BertConfig.named)
    max_length: int = 128           # tokens per sequence, [CLS] and [SEP] included
    epochs: int = 1                 # passes over the text
    max_steps: int | None = None    # stop after this many optimizer steps, if sooner
    batch_size: int = 32
    lr: float = 1e-3                # peak; small models from scratch take a large rate
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1       # the share of the steps spent warming up
    max_grad_norm: float = 1.0
    mlm_probability: float = 0.15
    valid_fraction: float = 0.05    # held-out lines for the MLM loss and accuracy (at most 1000)
    seed: int = 0
    progress: bool = True


@dataclasses.dataclass
class PretrainResult:
    model: BertForMaskedLM
    tokenizer: BertTokenizer
    history: History
    num_train_sequences: int
    num_valid_sequences: int
    num_train_tokens: int           # real tokens ([CLS]/[SEP] included) in one pass
    seconds: float
    unigram_val_loss: float | None = None  # the held-out loss of word frequencies alone


def _check_config(c: PretrainConfig) -> None:
    positive = {"max_length": c.max_length, "epochs": c.epochs, "batch_size": c.batch_size}
    if c.max_steps is not None:
        positive["max_steps"] = c.max_steps
    bad = {k: v for k, v in positive.items() if not (isinstance(v, int) and v >= 1)}
    if bad:
        raise ValueError(f"pretrain: these must be positive integers: {bad}")
    if c.max_length < 3:
        raise ValueError(f"pretrain: max_length={c.max_length} leaves no room for a token "
                         "between [CLS] and [SEP]")
    if not c.lr > 0 or not 0 <= c.warmup_ratio < 1 or not 0 <= c.valid_fraction < 1:
        raise ValueError(f"pretrain: need lr > 0, 0 <= warmup_ratio < 1 and "
                         f"0 <= valid_fraction < 1, got {c.lr}, {c.warmup_ratio}, "
                         f"{c.valid_fraction}")


def masked_batches(sequences: Sequence[list[int]], batch_size: int, pad_id: int,
                   rng: np.random.Generator, **masking: Any,
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fixed batches for held-out scoring, masked once: ``(corrupted ids, attention mask,
    labels)``, each (B, S). ``masking`` is :func:`mask_tokens`' keyword arguments."""
    batches = []
    for rows in batch_indices(len(sequences), batch_size):
        ids, mask = pad_rows([sequences[i] for i in rows], pad_id)  # (B, S)
        corrupted, labels = mask_tokens(ids, mask, rng=rng, **masking)
        batches.append((corrupted, mask, labels))
    return batches


def unigram_loss(train: Sequence[list[int]], batches: Sequence[tuple[np.ndarray, ...]],
                 vocab_size: int) -> float:
    """The held-out MLM loss of a model that ignores the context: −mean log p(y) with p the
    token frequencies of the training text (add-one smoothed). A pre-trained model has learnt
    something from the context only when it scores below this."""
    counts = np.ones(vocab_size)
    for ids in train:
        np.add.at(counts, ids[1:-1], 1)  # the text's tokens, not [CLS] and [SEP]
    log_p = np.log(counts / counts.sum())
    targets = np.concatenate([labels[labels != IGNORE_INDEX] for _, _, labels in batches])
    return float(-log_p[targets].mean())


def evaluate_mlm(model: BertForMaskedLM, batches: Sequence[tuple[np.ndarray, ...]]
                 ) -> dict[str, float]:
    """Held-out MLM loss (mean over the selected tokens) and accuracy (the share of selected
    tokens whose most likely id is the original one), over the batches of
    :func:`masked_batches`: the model reads the corrupted ids, never the originals."""

    def score(model: BertForMaskedLM, batch: tuple[np.ndarray, ...]) -> tuple[float, int, int]:
        ids, mask, labels = batch
        rows, cols = np.nonzero(labels != IGNORE_INDEX)
        hidden = model.bert(ids, mask).last_hidden_state  # (B, S, H)
        logits = model.cls(hidden[rows, cols])  # (M, V)
        targets = labels[rows, cols]  # (M,)
        loss = F.cross_entropy(logits, targets, reduction="sum").item()
        return loss, int((logits.data.argmax(axis=-1) == targets).sum()), len(targets)

    losses, correct, counts = zip(*evaluate_batches(model, batches, score), strict=True)
    return {"val_mlm_loss": sum(losses) / sum(counts),
            "val_mlm_accuracy": sum(correct) / sum(counts)}


def pretrain(texts: Sequence[str], config: PretrainConfig | None = None,
             out_dir: str | Path | None = None,
             tokenizer: BertTokenizer | None = None) -> PretrainResult:
    """Pre-train a BERT of size ``config.config`` from random weights on ``texts`` by masked
    language modelling, and write the checkpoint to ``out_dir`` (if given).

    ``texts`` are the sequences, one per example (e.g. :func:`read_lines`). The tokenizer
    defaults to all-MiniLM-L6-v2's vocabulary, so the checkpoint shares its 30,522 ids. A run
    takes ``epochs`` passes over the training lines, or stops after ``max_steps`` optimizer
    steps if that comes first. A share ``valid_fraction`` of the lines (at most 1000), masked
    once with a fixed seed, is held out and scored at the end of each epoch and of the run.
    The same seed gives the same weights and the same numbers.
    """
    config = config or PretrainConfig()
    _check_config(config)
    if out_dir is None:
        return _pretrain(texts, config, None, tokenizer)
    with checkpoint.OutputLock(out_dir):  # writable, and ours: a second run is refused at once
        return _pretrain(texts, config, Path(out_dir), tokenizer)


def _pretrain(texts: Sequence[str], config: PretrainConfig, out_dir: Path | None,
              tokenizer: BertTokenizer | None) -> PretrainResult:
    started = time.perf_counter()
    tokenizer = tokenizer or load_tokenizer(minilm_path())
    texts = list(texts)
    if not texts:
        raise ValueError("pretrain: no text to train on")

    # --- the data: token ids, split into train and held-out lines ----------------------------
    encoded = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
    encoded = [ids for ids in encoded if len(ids) > 2]  # a line with no token: [CLS] [SEP]
    if not encoded:
        raise ValueError(f"pretrain: none of the {len(texts)} line(s) holds a token")
    order = np.random.default_rng(config.seed).permutation(len(encoded))
    n_valid = min(int(len(encoded) * config.valid_fraction), 1000)
    train = [encoded[i] for i in order[n_valid:]]
    if not train:
        raise ValueError(f"pretrain: {len(encoded)} line(s) leave nothing to train on after "
                         f"holding out {n_valid}")
    masking = {"mask_token_id": tokenizer.mask_token_id, "special_ids": tokenizer.all_special_ids,
               "vocab_size": tokenizer.vocab_size, "mlm_probability": config.mlm_probability}
    valid_batches = masked_batches([encoded[i] for i in order[:n_valid]], config.batch_size,
                                   tokenizer.pad_token_id, np.random.default_rng([config.seed, 1]),
                                   **masking)

    # --- the model and the optimizer ----------------------------------------------------------
    seed_everything(config.seed)
    bert_config = BertConfig.named(config.config, vocab_size=tokenizer.vocab_size,
                                   pad_token_id=tokenizer.pad_token_id)
    if config.max_length > bert_config.max_position_embeddings:
        raise ValueError(f"pretrain: max_length {config.max_length} exceeds the "
                         f"{bert_config.max_position_embeddings} positions of {config.config}")
    model = BertForMaskedLM(bert_config)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizer = AdamW(param_groups_for_weight_decay(model.named_parameters(),
                                                    config.weight_decay), lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps),
                                                total_steps)

    # --- the loop (minigrad.train.fit): new masks every epoch, the held-out set scored ---------
    mask_rng = np.random.default_rng([config.seed, 2])
    train_lengths = [len(s) for s in train]

    def epoch_batches(epoch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The epoch's batches of similar lengths, masked anew: (corrupted, mask, labels)."""
        batches = []
        for rows in length_grouped_batches(train_lengths, config.batch_size,
                                           np.random.default_rng([config.seed, 3, epoch])):
            ids, mask = pad_rows([train[i] for i in rows], tokenizer.pad_token_id)  # (B, S)
            corrupted, labels = mask_tokens(ids, mask, rng=mask_rng, **masking)
            batches.append((corrupted, mask, labels))
        return batches

    title = f"MLM pre-training of {config.config} on {len(train)} lines"
    history = fit(model, lambda m, batch: mlm_loss(m, *batch), epoch_batches, optimizer,
                  TrainConfig(epochs=math.ceil(total_steps / steps_per_epoch),
                              max_steps=total_steps, max_grad_norm=config.max_grad_norm,
                              seed=config.seed, progress=config.progress, title=title),
                  scheduler=scheduler,
                  evaluate=(lambda m: evaluate_mlm(m, valid_batches)) if valid_batches else None)
    if out_dir is not None:  # Hugging Face's layout; the tied decoder stored once, as HF does
        checkpoint.save_pretrained(
            model, tokenizer, out_dir,
            {**model.config.to_dict(), "architectures": ["BertForMaskedLM"], "model_type": "bert"},
            {HISTORY_FILE: history.to_dict(), CURVES_FILE: history.png(title)})
    return PretrainResult(model=model.eval(), tokenizer=tokenizer, history=history,
                          num_train_sequences=len(train), num_valid_sequences=n_valid,
                          num_train_tokens=sum(len(s) for s in train),
                          seconds=time.perf_counter() - started,
                          unigram_val_loss=unigram_loss(train, valid_batches,
                                                        tokenizer.vocab_size)
                          if valid_batches else None)


def describe(result: PretrainResult) -> dict[str, Any]:
    """A JSON-ready summary of a run: sizes, the first and last losses, the held-out scores."""
    steps, last = result.history.steps, result.history.epochs[-1]
    tail = steps[-min(50, len(steps)):]
    return {
        "config": result.model.config.to_dict(),
        "parameters": result.model.num_parameters(),
        "train_sequences": result.num_train_sequences,
        "valid_sequences": result.num_valid_sequences,
        "train_tokens_per_epoch": result.num_train_tokens,
        "steps": len(steps),
        "first_loss": steps[0]["loss"],
        "final_loss_mean_last_50": float(np.mean([s["loss"] for s in tail])),
        **{k: v for k, v in last.items() if k.startswith("val_")},
        "unigram_val_mlm_loss": result.unigram_val_loss,
        "seconds": result.seconds,
    }
