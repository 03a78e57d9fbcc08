"""Fine-tuning a BERT for text or token classification, and predicting with the result.

Seed 001 (§5.2) fine-tunes BERT for text classification with this recipe: a classification head
on the encoder, AdamW at lr 2e-5, batch 16, 5 epochs, texts cut and padded to 128 tokens with an
attention mask, then a per-class precision/recall/F1 report. Seed 003 adds warmup and seed 002
early stopping on a validation set. :func:`finetune` is that recipe on minigrad:

1. **Labels → ids.** The label set is read from the training data and sorted
   (:func:`minigrad.data.datasets.label_names`), so the same labels always get the same ids;
   ``config.json`` keeps the mapping as Hugging Face does (``id2label``, ``label2id``).
2. **Tokenize once.** Every example is tokenized up front into (N, L) arrays, L the longest
   example (at most ``max_length``). The tokenizer then costs nothing per step.
3. **Dynamic padding.** Each batch is cut to its own longest sequence
   (:func:`trim_to_longest`): a batch of short reviews runs at length 30, not 128, and
   attention's cost grows with the square of the length.
4. **The loss** is the head's cross-entropy over the C classes: of the [CLS] summary for a text
   (``BertForSequenceClassification``), of every word's first piece for a sentence
   (``BertForTokenClassification``).
5. **The update:** AdamW with weight decay on the weight matrices only (not on biases and
   LayerNorm), the learning rate warmed up linearly over the first ``warmup_ratio`` of the steps
   and then decayed linearly to 0, the gradient norm clipped at 1 (Hugging Face's default).
6. **After each epoch:** the validation loss, accuracy and macro-F1 (entity F1 for tags), and,
   with ``patience``, early stopping that restores the best epoch's weights.
7. **At the end:** the test set's classification report, and the checkpoint.

Token classification reads CoNLL sentences, one tag per word. WordPiece cuts a word into pieces;
the word's tag goes on its first piece and every other position gets -100, the label that
cross-entropy skips (:func:`align_labels`)::

    words    Hironsan            lives   in   Tokyo
    tags     B-PER               O       O    B-LOC
    pieces   [CLS] hi ##ron ##san lives  in   tokyo [SEP]
    labels   -100  B-PER -100 -100 O     O    B-LOC -100

A prediction reads each word's tag off its first piece, and the report is entity-level
(seqeval's): an entity counts only when its type, first and last word are all right.

What ``finetune`` writes to ``out_dir``::

    model.safetensors, config.json     the model, in Hugging Face's layout (from_pretrained)
    vocab.txt, tokenizer_config.json   the tokenizer
    metrics.json                       accuracy, macro-F1, the report, the history, timings
    history.json, curves.png           the per-step loss and lr, the per-epoch metrics
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import minigrad
from minigrad import backend, checkpoint, nn
from minigrad.data import datasets
from minigrad.data.datasets import DataError, TextExamples, TokenExamples
from minigrad.data.tokenizer import BertTokenizer
from minigrad.metrics import classification_report, entity_classification_report
from minigrad.models.bert import NAMED_CONFIGS, BertConfig
from minigrad.models.pretrained import TASKS, from_pretrained, load_tokenizer, minilm_path
from minigrad.optim import AdamW, get_linear_schedule_with_warmup, param_groups_for_weight_decay
from minigrad.train import History, TrainConfig, fit, seed_everything

SEQUENCE = "sequence-classification"
TOKEN = "token-classification"
ARCHITECTURES = {SEQUENCE: "BertForSequenceClassification",
                 TOKEN: "BertForTokenClassification"}
IGNORE_INDEX = -100  # the label cross_entropy skips: padding, [CLS]/[SEP], continuation pieces

# Seed 001's learning rate for a pretrained encoder. A randomly initialised one has nothing to
# preserve and far to go: it takes a rate 25 times larger. On rotten-tomatoes (bert-tiny, 2,000
# reviews, 3 epochs, batch 16) 1e-4 never left the majority class in 375 steps, 5e-4 and 1e-3
# both reached 69-70% test accuracy, and 2e-3 failed (51%); 5e-4 is the rate with room on
# both sides.
PRETRAINED_LR = 2e-5
FROM_SCRATCH_LR = 5e-4

# When no validation or test file is given, each is 10% of the training file, split off with
# this seed whatever the training seed, so that every run is scored on the same examples.
SPLIT_FRACTION = 0.1
SPLIT_SEED = 0

METRICS_FILE = "metrics.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

BUILT_IN = {"rotten-tomatoes": (SEQUENCE, datasets.load_rotten_tomatoes),
            "hironsan": (TOKEN, datasets.load_hironsan)}


@dataclasses.dataclass
class FinetuneConfig:
    """Everything that decides how :func:`finetune` trains (seed 001's recipe as defaults)."""

    task: str = SEQUENCE            # or "token-classification"
    model: str = "minilm"           # "minilm", "bert-tiny", "bert-mini" or a checkpoint directory
    lr: float | None = None         # None: PRETRAINED_LR, or FROM_SCRATCH_LR for a named size
    batch_size: int = 16
    max_length: int = 128           # tokens per example, [CLS] and [SEP] included
    epochs: int = 5
    warmup_ratio: float = 0.1       # the share of the steps over which lr rises from 0
    weight_decay: float = 0.01      # AdamW's, on weight matrices only
    max_grad_norm: float | None = 1.0
    seed: int = 0                   # the head's initial weights, dropout, the batch order
    patience: int | None = None     # stop after this many epochs without a better validation
    max_train_examples: int | None = None  # train on a seeded random subset of this size
    vocab: str | Path | None = None  # vocab.txt of a from-scratch model (default: MiniLM's)
    out_dir: str | Path | None = None
    eval_batch_size: int = 64
    device: str = "cpu"
    progress: bool = True           # the progress bar and a line per epoch

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return FROM_SCRATCH_LR if self.model in NAMED_CONFIGS else PRETRAINED_LR

    def check(self) -> None:
        if self.task not in ARCHITECTURES:
            raise ValueError(f"unknown task {self.task!r}; tasks: {list(ARCHITECTURES)}")
        for name in ("batch_size", "max_length", "epochs", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("patience", "max_train_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")


# --- data -------------------------------------------------------------------------------------

Examples = TextExamples | TokenExamples


def read_examples(path: str | Path, task: str = SEQUENCE, text_column: str = "text",
                  label_column: str = "label", text_pair_column: str | None = None,
                  ) -> Examples:
    """A labelled file for ``task``: CSV/TSV/JSONL for sequence classification, CoNLL for
    token classification."""
    if task == TOKEN:
        return datasets.read_conll(path)
    return datasets.read_text_examples(path, text_column, label_column, text_pair_column)


def load_dataset(name: str, task: str = SEQUENCE) -> Examples:
    """A built-in data set by name: ``rotten-tomatoes`` (reviews, fresh/rotten) or
    ``hironsan`` (Japanese named entities, IOB2)."""
    if name not in BUILT_IN:
        raise ValueError(f"unknown data set {name!r}; built-in data sets: {list(BUILT_IN)}")
    kind, load = BUILT_IN[name]
    if kind != task:
        raise ValueError(f"{name} is a {kind} data set, not one for {task}")
    return load()


def split_examples(train: Examples, valid: Examples | None = None, test: Examples | None = None,
                   ) -> tuple[Examples, Examples, Examples]:
    """``(train, valid, test)``: a missing validation or test set is split off the training set,
    ``SPLIT_FRACTION`` of it each, shuffled with ``SPLIT_SEED``."""
    n = len(train)
    cut = max(1, round(SPLIT_FRACTION * n))
    n_valid, n_test = (cut if valid is None else 0), (cut if test is None else 0)
    if n_valid + n_test == 0:
        return train, valid, test
    if n - n_valid - n_test < 1:
        raise DataError(f"{train.source} has {n} examples: too few to split off a validation "
                        "and a test set; give them as files")
    rest, split_valid, split_test = datasets.random_split(train, [n - n_valid - n_test, n_valid,
                                                                  n_test], SPLIT_SEED)
    return rest, split_valid if valid is None else valid, split_test if test is None else test


def check_labels(examples: Examples, label2id: dict[str, int], training: Examples) -> None:
    """Refuse a label that the training data never shows, naming its line."""
    if isinstance(examples, TokenExamples):
        for i, tags in enumerate(examples.tags):
            for j, tag in enumerate(tags):
                if tag not in label2id:
                    where = "" if examples.lines is None else f", line {examples.lines[i] + j}"
                    _unseen(examples.source + where, tag, label2id, training)
        return
    for i, label in enumerate(examples.labels):
        if label not in label2id:
            where = "" if examples.lines is None else f", line {examples.lines[i]}"
            _unseen(examples.source + where, label, label2id, training)


def _unseen(where: str, label: str, label2id: dict[str, int], training: Examples) -> None:
    raise DataError(f"{where}: the label {label!r} does not occur in the training data "
                    f"({training.source}), whose labels are {list(label2id)}; a classifier can "
                    "only predict the labels it was trained on")


# --- encoding ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Encoded:
    """Examples as arrays, one row each, padded to the longest example: ``input_ids``,
    ``token_type_ids``, ``attention_mask`` (N, L) and ``labels`` (N,) or (N, L). For tokens,
    ``word_starts[i][j]`` is the position of word j's first piece in row i (-1 if cut off)."""

    arrays: dict[str, np.ndarray]
    word_starts: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.arrays["input_ids"])


def _pad(rows: Sequence[Sequence[int]], value: int) -> np.ndarray:
    """Lists of ints of different lengths → one int64 array (N, longest), padded on the right."""
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def encode_texts(tokenizer: BertTokenizer, texts: Sequence[str],
                 text_pairs: Sequence[str] | None, max_length: int,
                 labels: Sequence[int] | None = None) -> Encoded:
    """Tokenize texts (or pairs) once, cut to ``max_length`` tokens, padded to the longest."""
    enc = tokenizer(list(texts), None if text_pairs is None else list(text_pairs),
                    truncation=True, max_length=max_length, padding=True, return_tensors="np")
    arrays = {key: enc[key] for key in ("input_ids", "token_type_ids", "attention_mask")}
    if labels is not None:
        arrays["labels"] = np.asarray(labels, dtype=np.int64)  # (N,)
    return Encoded(arrays)


def align_labels(tokenizer: BertTokenizer, words: Sequence[str], tag_ids: Sequence[int],
                 max_length: int) -> tuple[list[int], list[int], list[int]]:
    """One sentence of words and tag ids → ``(input_ids, labels, word_starts)``.

    ``[CLS]`` + the pieces of every word + ``[SEP]``; the labels put each word's tag on its
    first piece and -100 on everything else. A word the tokenizer turns into nothing (a stray
    control character) becomes ``[UNK]``, so that every word has a position. Past
    ``max_length`` the sentence is cut: a word whose first piece does not fit gets
    ``word_starts`` -1 (no position, no loss).
    """
    ids, labels, starts = [tokenizer.cls_token_id], [IGNORE_INDEX], []
    for word, tag in zip(words, tag_ids, strict=True):
        pieces = tokenizer.encode(word, add_special_tokens=False) or [tokenizer.unk_token_id]
        room = max_length - 1 - len(ids)  # one place is kept for [SEP]
        if room <= 0:
            starts.append(-1)
            continue
        pieces = pieces[:room]
        starts.append(len(ids))
        ids += pieces
        labels += [tag] + [IGNORE_INDEX] * (len(pieces) - 1)
    return [*ids, tokenizer.sep_token_id], [*labels, IGNORE_INDEX], starts


def encode_sentences(tokenizer: BertTokenizer, sentences: Sequence[Sequence[str]],
                     max_length: int, tag_ids: Sequence[Sequence[int]] | None = None,
                     ) -> Encoded:
    """Tokenize sentences of words once (:func:`align_labels`), padded to the longest."""
    ids, labels, starts = [], [], []
    for i, words in enumerate(sentences):
        tags = tag_ids[i] if tag_ids is not None else [IGNORE_INDEX] * len(words)
        row_ids, row_labels, row_starts = align_labels(tokenizer, words, tags, max_length)
        ids.append(row_ids)
        labels.append(row_labels)
        starts.append(row_starts)
    input_ids = _pad(ids, tokenizer.pad_token_id)  # (N, L)
    arrays = {"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
              "attention_mask": _pad([[1] * len(r) for r in ids], 0)}
    if tag_ids is not None:
        arrays["labels"] = _pad(labels, IGNORE_INDEX)  # (N, L)
    return Encoded(arrays, starts)


def trim_to_longest(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dynamic padding: cut a batch's (B, L) arrays to its longest sequence, (B, S) with
    S = max attention-mask row sum. Rows were padded on the right, so nothing real is cut."""
    width = int(batch["attention_mask"].sum(axis=1).max())
    return {key: a[:, :width] if a.ndim == 2 else a for key, a in batch.items()}


def _forward(model: nn.Module, batch: dict[str, np.ndarray], device: str) -> Any:
    """The model on one batch (labels too, when the batch has them), on ``device``."""
    on = {key: backend.to_device(a, device) for key, a in trim_to_longest(batch).items()}
    return model(on["input_ids"], on["attention_mask"], on["token_type_ids"],
                 labels=on.get("labels"))


def _eval_batches(model: nn.Module, encoded: Encoded, batch_size: int, device: str,
                  ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], Any]]:
    """(rows, batch, output) over ``encoded`` in eval mode without a graph, longest examples
    first so that each batch pads little."""
    lengths = encoded.arrays["attention_mask"].sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    model.eval()
    with minigrad.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = {key: a[rows] for key, a in encoded.arrays.items()}
            yield rows, batch, _forward(model, batch, device)


def _device_of(model: nn.Module) -> str:
    return next(model.parameters()).device


def predict_logits(model: nn.Module, encoded: Encoded, batch_size: int = 64,
                   ) -> tuple[list[np.ndarray] | np.ndarray, float | None]:
    """The model's logits on ``encoded``, and the mean loss when it holds labels.

    Sequence classification: logits (N, C). Token classification: a list with one (n_words, C)
    array per sentence, the logits of each word's first piece (NaN rows for words cut off).
    The loss is the mean over examples (over labelled tokens for token classification).
    """
    device = _device_of(model)
    tokens = encoded.word_starts is not None
    logits_by_row: dict[int, np.ndarray] = {}
    total, count = 0.0, 0
    for rows, batch, out in _eval_batches(model, encoded, batch_size, device):
        logits = backend.to_device(out.logits.data, "cpu")  # (B, C) or (B, S, C)
        for i, row in enumerate(rows):
            logits_by_row[int(row)] = logits[i]
        if out.loss is not None:
            weight = (int((batch["labels"] != IGNORE_INDEX).sum()) if tokens else len(rows))
            total += out.loss.item() * weight
            count += weight
    loss = total / count if count else None
    if not tokens:
        return np.stack([logits_by_row[i] for i in range(len(encoded))]), loss
    per_sentence = []
    for i, starts in enumerate(encoded.word_starts):
        pieces = logits_by_row[i]  # (S, C)
        words = np.full((len(starts), pieces.shape[-1]), np.nan, dtype=pieces.dtype)
        kept = [j for j, s in enumerate(starts) if s >= 0]
        words[kept] = pieces[[starts[j] for j in kept]]
        per_sentence.append(words)  # (n_words, C)
    return per_sentence, loss


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis, p_c = exp(z_c − max z) / Σ_k exp(z_k − max z)."""
    z = logits - np.max(logits, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# --- the fine-tuned model ----------------------------------------------------------------------

@dataclasses.dataclass
class Classifier:
    """A fine-tuned model with what it takes to use it: the tokenizer, the label names (index =
    class id), the task and the length texts are cut to. :meth:`save` and :meth:`load` go
    through a checkpoint directory; :meth:`predict` labels new text."""

    model: nn.Module
    tokenizer: BertTokenizer
    label_names: list[str]
    task: str = SEQUENCE
    max_length: int = 128
    eval_batch_size: int = 64

    def encode(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
               words: Sequence[Sequence[str]] | None = None) -> Encoded:
        if self.task == TOKEN:
            sentences = words if words is not None else [text.split() for text in texts]
            return encode_sentences(self.tokenizer, sentences, self.max_length)
        return encode_texts(self.tokenizer, texts, text_pairs, self.max_length)

    def logits(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
               ) -> np.ndarray | list[np.ndarray]:
        """(N, C) logits of texts; for tags, one (n_words, C) array per text, whose words are
        its whitespace-separated parts."""
        return predict_logits(self.model, self.encode(texts, text_pairs),
                              self.eval_batch_size)[0]

    def predict(self, texts: str | Sequence[str], text_pairs: Sequence[str] | None = None,
                ) -> list[dict[str, Any]]:
        """One dict per text: ``label`` and its probability ``score`` (and every class's in
        ``scores``); for tags, ``words``, a list of ``{word, label, score}``."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        logits = self.logits(texts, text_pairs)
        results = []
        for i, text in enumerate(texts):
            if self.task == SEQUENCE:
                probs = softmax(logits[i].astype(np.float64))
                best = int(np.argmax(probs))
                results.append({"text": text, "label": self.label_names[best],
                                "score": float(probs[best]),
                                "scores": dict(zip(self.label_names, map(float, probs),
                                                   strict=True))})
                continue
            words = []
            for word, row in zip(text.split(), logits[i], strict=True):
                if np.isnan(row).any():  # cut off by max_length
                    words.append({"word": word, "label": None, "score": None})
                    continue
                probs = softmax(row.astype(np.float64))
                best = int(np.argmax(probs))
                words.append({"word": word, "label": self.label_names[best],
                              "score": float(probs[best])})
            results.append({"text": text, "words": words})
        return results

    def save(self, directory: str | Path) -> None:
        """``model.safetensors`` + ``config.json`` (with ``architectures``, ``id2label`` and
        ``label2id``, as Hugging Face writes them) + the tokenizer's files."""
        directory = Path(directory)
        config = {**self.model.config.to_dict(),
                  "architectures": [ARCHITECTURES[self.task]], "model_type": "bert",
                  "id2label": {str(i): name for i, name in enumerate(self.label_names)},
                  "label2id": {name: i for i, name in enumerate(self.label_names)}}
        checkpoint.save_model(directory, self.model, config)
        self.tokenizer.save_pretrained(directory)
        # the length the model was fine-tuned at, where Hugging Face keeps it
        settings = json.loads((directory / TOKENIZER_CONFIG_FILE).read_text(encoding="utf-8"))
        settings["model_max_length"] = self.max_length
        checkpoint.atomic_write_json(directory / TOKENIZER_CONFIG_FILE, settings)

    @classmethod
    def load(cls, directory: str | Path, max_length: int | None = None) -> Classifier:
        """A classifier saved by :meth:`save` (or any Hugging Face BERT classifier directory:
        ``architectures`` tells the task, ``id2label`` the labels)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise checkpoint.CheckpointError(f"{directory} is not a directory; a fine-tuned "
                                             "model is the directory minigrad finetune wrote")
        config = checkpoint.load_config(directory)
        tasks = {arch: task for task, arch in ARCHITECTURES.items()}
        found = [tasks[a] for a in config.get("architectures") or [] if a in tasks]
        if not found:
            raise checkpoint.CheckpointError(
                f"{directory / checkpoint.CONFIG_FILE}: architectures "
                f"{config.get('architectures')} names no classifier ({', '.join(tasks)}); "
                "fine-tune the model first")
        model = from_pretrained(directory, task=found[0])
        n = model.config.num_labels
        id2label = config.get("id2label") or {}
        names = [id2label.get(str(i), f"LABEL_{i}") for i in range(n)]
        tokenizer = load_tokenizer(directory)
        if max_length is None:
            max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
        _check_max_length(max_length, model.config, str(directory))
        return cls(model, tokenizer, names, found[0], max_length)


# --- fine-tuning ------------------------------------------------------------------------------

@dataclasses.dataclass
class FinetuneResult:
    """What :func:`finetune` gives back: the classifier, its history, the test metrics (the
    dict written to ``metrics.json``), the report as text, and the test set's predictions."""

    classifier: Classifier
    history: History
    metrics: dict[str, Any]
    report: str
    test: Examples
    predictions: list  # the predicted class id of each test text, or tags of each sentence
    out_dir: Path | None = None


def load_model(name: str, task: str, num_labels: int, vocab: str | Path | None = None,
               ) -> tuple[nn.Module, BertTokenizer]:
    """The model to fine-tune, with a fresh ``num_labels`` head, and its tokenizer.

    ``"minilm"``: all-MiniLM-L6-v2 (pretrained). ``"bert-tiny"``, ``"bert-mini"``: random
    weights of that size over ``vocab`` (MiniLM's ``vocab.txt`` by default). Otherwise a
    checkpoint directory that ``from_pretrained`` reads, such as what ``minigrad pretrain``
    or ``minigrad finetune`` wrote.
    """
    if name in NAMED_CONFIGS:
        tokenizer = BertTokenizer(vocab if vocab is not None else minilm_path() / "vocab.txt")
        config = BertConfig.named(name, vocab_size=tokenizer.vocab_size, num_labels=num_labels,
                                  pad_token_id=tokenizer.pad_token_id)
        return TASKS[task](config), tokenizer
    if vocab is not None:
        raise ValueError(f"a vocabulary file is for a model trained from scratch (bert-tiny, "
                         f"bert-mini); {name} brings its own vocab.txt")
    directory = minilm_path() if name == "minilm" else Path(name)
    if not directory.is_dir():
        raise FileNotFoundError(f"model {name!r} is neither minilm, "
                                f"{', '.join(NAMED_CONFIGS)} nor a checkpoint directory")
    return from_pretrained(directory, task=task, num_labels=num_labels), load_tokenizer(directory)


def _check_max_length(max_length: int, config: BertConfig, name: str) -> None:
    if max_length > config.max_position_embeddings:
        raise ValueError(f"max_length {max_length} is above the position limit of model "
                         f"{name}: it has {config.max_position_embeddings} position embeddings "
                         f"(max_position_embeddings), so at most {config.max_position_embeddings}"
                         " tokens")


def _encode(classifier: Classifier, examples: Examples, label2id: dict[str, int]) -> Encoded:
    if isinstance(examples, TokenExamples):
        tag_ids = [[label2id[t] for t in tags] for tags in examples.tags]
        return encode_sentences(classifier.tokenizer, examples.tokens, classifier.max_length,
                                tag_ids)
    return encode_texts(classifier.tokenizer, examples.texts, examples.text_pairs,
                        classifier.max_length, [label2id[y] for y in examples.labels])


def _fallback_label(label_names: Sequence[str]) -> int:
    """The class a word cut off by max_length is given: O (outside any entity) when there is
    one."""
    return label_names.index("O") if "O" in label_names else 0


def _is_bio(label_names: Sequence[str]) -> bool:
    return all(t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2) for t in label_names)


def score(classifier: Classifier, examples: Examples, encoded: Encoded | None = None,
          ) -> dict[str, Any]:
    """Loss, accuracy, macro-F1, the report (text and dict) and the predicted ids.

    Token classification scores every word (a word cut off by max_length counts as predicted
    O); with BIO tags the report and ``entity_f1`` are entity-level (seqeval's micro F1) and
    ``macro_f1`` the mean over entity types, otherwise they are per tag.
    """
    names = classifier.label_names
    label2id = {name: i for i, name in enumerate(names)}
    encoded = encoded or _encode(classifier, examples, label2id)
    logits, loss = predict_logits(classifier.model, encoded, classifier.eval_batch_size)
    out: dict[str, Any] = {"loss": loss, "examples": len(examples)}
    if isinstance(examples, TextExamples):
        true = np.array([label2id[y] for y in examples.labels])
        pred = np.argmax(logits, axis=-1)
        report = classification_report(true, pred, target_names=names, labels=range(len(names)),
                                       digits=4, output_dict=True, zero_division=0)
        text = classification_report(true, pred, target_names=names, labels=range(len(names)),
                                     digits=4, zero_division=0)
        out.update(accuracy=float(np.mean(true == pred)),
                   macro_f1=report["macro avg"]["f1-score"], predictions=pred.tolist())
        return {**out, "report": report, "report_text": text}

    fallback = _fallback_label(names)
    pred_ids = [[fallback if np.isnan(row).any() else int(np.argmax(row)) for row in words]
                for words in logits]
    true_tags = examples.tags
    pred_tags = [[names[i] for i in row] for row in pred_ids]
    flat_true = [t for tags in true_tags for t in tags]
    flat_pred = [t for tags in pred_tags for t in tags]
    out.update(accuracy=float(np.mean([a == b for a, b in zip(flat_true, flat_pred,
                                                              strict=True)])),
               words_cut_off=sum(s < 0 for starts in encoded.word_starts for s in starts),
               predictions=pred_tags)
    has_entities = any(t != "O" for t in flat_true + flat_pred)
    if _is_bio(names) and has_entities:
        report = entity_classification_report(true_tags, pred_tags, digits=4, output_dict=True,
                                              zero_division=0)
        text = entity_classification_report(true_tags, pred_tags, digits=4, zero_division=0)
        out.update(entity_f1=report["micro avg"]["f1-score"],
                   macro_f1=report["macro avg"]["f1-score"])
    else:
        report = classification_report(flat_true, flat_pred, labels=names, digits=4,
                                       output_dict=True, zero_division=0)
        text = classification_report(flat_true, flat_pred, labels=names, digits=4,
                                     zero_division=0)
        out.update(macro_f1=report["macro avg"]["f1-score"])
        if _is_bio(names):
            out["entity_f1"] = 0.0  # no entity anywhere, true or predicted
    return {**out, "report": report, "report_text": text}


def finetune(train: Examples, valid: Examples | None = None, test: Examples | None = None,
             config: FinetuneConfig | None = None) -> FinetuneResult:
    """Fine-tune ``config.model`` on ``train`` and score it on ``test``.

    ``train``/``valid``/``test`` are :class:`~minigrad.data.datasets.TextExamples` (sequence
    classification) or :class:`~minigrad.data.datasets.TokenExamples` (token classification);
    a missing ``valid`` or ``test`` is split off ``train`` (:func:`split_examples`). With
    ``config.out_dir`` the checkpoint, ``metrics.json``, ``history.json`` and ``curves.png``
    are written there.

    Raises:
        DataError: a label of ``valid``/``test`` that ``train`` lacks, too few examples.
        ValueError: a bad setting, such as a ``max_length`` above the model's position limit.
    """
    config = config or FinetuneConfig()
    config.check()
    kind = TokenExamples if config.task == TOKEN else TextExamples
    for name, examples in (("train", train), ("valid", valid), ("test", test)):
        if examples is not None and not isinstance(examples, kind):
            raise TypeError(f"{config.task} takes {kind.__name__} as {name}, got "
                            f"{type(examples).__name__}")
    names = datasets.label_names(train.labels)
    label2id = {name: i for i, name in enumerate(names)}
    for examples in (valid, test):
        if examples is not None:
            check_labels(examples, label2id, train)
    train, valid, test = split_examples(train, valid, test)
    if config.max_train_examples is not None and config.max_train_examples < len(train):
        train = datasets.random_split(train, [config.max_train_examples,
                                              len(train) - config.max_train_examples],
                                      SPLIT_SEED)[0]

    seed_everything(config.seed)  # the new head's weights
    model, tokenizer = load_model(config.model, config.task, len(names), config.vocab)
    _check_max_length(config.max_length, model.config, config.model)
    model.to(config.device)
    classifier = Classifier(model, tokenizer, names, config.task, config.max_length,
                            config.eval_batch_size)

    start = time.perf_counter()
    train_enc, valid_enc = _encode(classifier, train, label2id), _encode(classifier, valid,
                                                                        label2id)
    tokenize_seconds = time.perf_counter() - start

    steps = math.ceil(len(train) / config.batch_size) * config.epochs
    optimizer = AdamW(param_groups_for_weight_decay(model.named_parameters(),
                                                    config.weight_decay),
                      lr=config.learning_rate())
    scheduler = get_linear_schedule_with_warmup(optimizer,
                                                math.ceil(config.warmup_ratio * steps), steps)
    key = "val_entity_f1" if config.task == TOKEN and _is_bio(names) else "val_macro_f1"
    eval_seconds = 0.0

    def evaluate(model: nn.Module) -> dict[str, float]:
        nonlocal eval_seconds
        begin = time.perf_counter()
        scores = score(classifier, valid, valid_enc)
        eval_seconds += time.perf_counter() - begin
        metrics = {"val_loss": scores["loss"], "val_accuracy": scores["accuracy"],
                   "val_macro_f1": scores["macro_f1"]}
        if "entity_f1" in scores:
            metrics["val_entity_f1"] = scores["entity_f1"]
        if config.progress:
            tqdm.write("validation: " + ", ".join(f"{k[4:]} {v:.4f}" for k, v in
                                                  metrics.items()))
        return metrics

    def loss_fn(model: nn.Module, batch: dict[str, np.ndarray]) -> minigrad.Tensor:
        return _forward(model, batch, config.device).loss

    out_dir = Path(config.out_dir) if config.out_dir is not None else None
    train_config = TrainConfig(
        epochs=config.epochs, batch_size=config.batch_size, max_grad_norm=config.max_grad_norm,
        seed=config.seed, early_stopping_metric=key if config.patience else None,
        early_stopping_mode="max", patience=config.patience or 1,
        restore_best=config.patience is not None, out_dir=out_dir, progress=config.progress,
        title=f"fine-tuning {config.model} ({config.task}) on {train.source}")
    start = time.perf_counter()
    history = fit(model, loss_fn, train_enc.arrays, optimizer, train_config,
                  scheduler=scheduler, evaluate=evaluate)
    train_seconds = time.perf_counter() - start - eval_seconds

    test_scores = score(classifier, test)
    model.eval()
    n_steps = len(history.steps)
    metrics = {
        "task": config.task, "model": config.model, "labels": names,
        "accuracy": test_scores["accuracy"], "macro_f1": test_scores["macro_f1"],
        **({"entity_f1": test_scores["entity_f1"]} if "entity_f1" in test_scores else {}),
        "test_loss": test_scores["loss"], "report": test_scores["report"],
        "data": {"train": train.source, "valid": valid.source, "test": test.source,
                 "n_train": len(train), "n_valid": len(valid), "n_test": len(test)},
        "config": {**dataclasses.asdict(config), "lr": config.learning_rate(),
                   "out_dir": None if out_dir is None else str(out_dir),
                   "vocab": None if config.vocab is None else str(config.vocab)},
        "timing": {"tokenize_seconds": tokenize_seconds, "train_seconds": train_seconds,
                   "validation_seconds": eval_seconds, "steps": n_steps,
                   "seconds_per_step": train_seconds / max(n_steps, 1)},
        "history": history.to_dict(),
    }
    if "words_cut_off" in test_scores:
        metrics["words_cut_off"] = test_scores["words_cut_off"]
    if out_dir is not None:
        classifier.save(out_dir)
        checkpoint.atomic_write_json(out_dir / METRICS_FILE, metrics)
    return FinetuneResult(classifier, history, metrics, test_scores["report_text"], test,
                          test_scores["predictions"], out_dir)


def format_summary(result: FinetuneResult, n_examples: int = 5) -> str:
    """The end of a run, as the command prints it: the epochs, the test report, a few test
    examples with the model's predictions, and where the files went."""
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
    d = m["data"]
    lines.append(f"\ntest set: {d['n_test']} examples ({d['test']}), trained on {d['n_train']}")
    lines.append(result.report)
    headline = f"test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    if "entity_f1" in m:
        headline += f", entity F1 (micro) {m['entity_f1']:.4f}"
    if m.get("words_cut_off"):
        headline += f"; {m['words_cut_off']} words past max_length scored as O"
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
        lines.append(f"\nsaved to {result.out_dir}/: model.safetensors, config.json, vocab.txt, "
                     f"{METRICS_FILE}, history.json, curves.png")
    return "\n".join(lines)
