"""A fine-tuned classifier: the model with its tokenizer, label names and task, and how to
score it on labelled examples.

:class:`Classifier` labels new text (:meth:`~Classifier.predict`) and goes through a model
directory (:meth:`~Classifier.save`, :meth:`~Classifier.load`): ``config.json`` keeps the labels
as Hugging Face does (``id2label``, ``label2id``) and ``architectures`` tells the task.
:func:`predict_logits` runs the model over encoded examples with the training loop's one
evaluation loop (:func:`minigrad.train.evaluate_batches`); :func:`score` turns the logits into
the loss, accuracy, macro-F1 and the classification report (entity-level, as seqeval's, for BIO
tags: an entity counts only when its type, first and last word are all right).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import minigrad
from minigrad import backend, checkpoint, nn, peft
from minigrad.compress.quantize import QUANTIZATION_CONFIG, load_quantized, quantization_config
from minigrad.data.datasets import SEQUENCE, TOKEN, Examples, TextExamples, TokenExamples
from minigrad.data.encoding import (
    IGNORE_INDEX,
    Encoded,
    encode_sentences,
    encode_texts,
    length_sorted_batches,
)
from minigrad.data.tokenizer import BertTokenizer
from minigrad.metrics import classification_report, entity_classification_report
from minigrad.models.bert import NAMED_CONFIGS, BertConfig
from minigrad.models.pretrained import TASKS, from_pretrained, load_tokenizer, minilm_path
from minigrad.nn import functional as F
from minigrad.train import evaluate_batches

ARCHITECTURES = {SEQUENCE: "BertForSequenceClassification",
                 TOKEN: "BertForTokenClassification"}


def forward(model: nn.Module, batch: dict[str, np.ndarray]) -> Any:
    """The model on one batch (labels too, when the batch has them), on the model's device."""
    device = next(model.parameters()).device
    on = {key: backend.to_device(a, device) for key, a in batch.items()}
    return model(on["input_ids"], on["attention_mask"], on["token_type_ids"],
                 labels=on.get("labels"))


def probabilities(logits: np.ndarray) -> np.ndarray:
    """softmax along the last axis, in float64 (the engine's softmax, on the host)."""
    return F.softmax(minigrad.tensor(np.asarray(logits, dtype=np.float64)), dim=-1).numpy()


def predict_logits(model: nn.Module, encoded: Encoded, batch_size: int = 64,
                   ) -> tuple[list[np.ndarray] | np.ndarray, float | None]:
    """The model's logits on ``encoded``, and the mean loss when it holds labels.

    Sequence classification: logits (N, C). Token classification: a list with one (n_words, C)
    array per sentence, the logits of each word's first piece (NaN rows for words cut off).
    The loss is the mean over examples (over labelled tokens for token classification).
    """
    tokens = encoded.word_starts is not None
    batches = length_sorted_batches(encoded, batch_size)

    def run(model: nn.Module, item: tuple[np.ndarray, dict]) -> tuple[np.ndarray, float, int]:
        rows, batch = item
        out = forward(model, batch)
        if out.loss is None:
            return backend.to_device(out.logits.data, "cpu"), 0.0, 0
        weight = int((batch["labels"] != IGNORE_INDEX).sum()) if tokens else len(rows)
        return backend.to_device(out.logits.data, "cpu"), out.loss.item() * weight, weight

    results = evaluate_batches(model, batches, run)
    count = sum(r[2] for r in results)
    loss = sum(r[1] for r in results) / count if count else None
    if not tokens:  # each batch's rows back in place, one assignment a batch
        n_classes = results[0][0].shape[-1] if results else 0
        dtype = results[0][0].dtype if results else np.float32
        logits = np.empty((len(encoded), n_classes), dtype=dtype)  # (N, C)
        for (rows, _), (batch_logits, _, _) in zip(batches, results, strict=True):
            logits[rows] = batch_logits  # (B, C)
        return logits, loss
    pieces_by_row: list[np.ndarray] = [np.empty(0)] * len(encoded)
    for (rows, _), (batch_logits, _, _) in zip(batches, results, strict=True):
        for i, row in enumerate(rows):
            pieces_by_row[int(row)] = batch_logits[i]  # (S, C)
    per_sentence = []
    for i, starts in enumerate(encoded.word_starts):
        pieces = pieces_by_row[i]  # (S, C)
        words = np.full((len(starts), pieces.shape[-1]), np.nan, dtype=pieces.dtype)
        kept = [j for j, s in enumerate(starts) if s >= 0]
        words[kept] = pieces[[starts[j] for j in kept]]
        per_sentence.append(words)  # (n_words, C)
    return per_sentence, loss


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
        if not texts:
            return []
        logits = self.logits(texts, text_pairs)
        if self.task == SEQUENCE:  # one softmax over all the rows
            probs = probabilities(logits)  # (N, C), float64
            best = np.argmax(probs, axis=-1).tolist()  # (N,)
            return [{"text": text, "label": self.label_names[k], "score": p[k],
                     "scores": dict(zip(self.label_names, p, strict=True))}
                    for text, p, k in zip(texts, probs.tolist(), best, strict=True)]
        results = []
        for i, text in enumerate(texts):
            words = []
            for word, row in zip(text.split(), logits[i], strict=True):
                if np.isnan(row).any():  # cut off by max_length
                    words.append({"word": word, "label": None, "score": None})
                    continue
                probs = probabilities(row.astype(np.float64))
                best = int(np.argmax(probs))
                words.append({"word": word, "label": self.label_names[best],
                              "score": float(probs[best])})
            results.append({"text": text, "words": words})
        return results

    def save(self, directory: str | Path,
             extra_files: dict[str, bytes | str | dict] | None = None) -> Path:
        """Write the model directory as a unit (:func:`minigrad.checkpoint.save_pretrained`):
        ``model.safetensors``, ``config.json`` (with ``architectures``, ``id2label`` and
        ``label2id``, as Hugging Face writes them, and ``quantization_config`` for an int8
        model), the tokenizer's files with the length the model was fine-tuned at, and
        ``extra_files`` (metrics, history, curves). A :class:`~minigrad.peft.PeftModel` writes
        its adapter instead of ``model.safetensors``
        (:meth:`~minigrad.peft.PeftModel.save_pretrained`)."""
        config = {**self.model.config.to_dict(),
                  "architectures": [ARCHITECTURES[self.task]], "model_type": "bert",
                  "id2label": {str(i): name for i, name in enumerate(self.label_names)},
                  "label2id": {name: i for i, name in enumerate(self.label_names)}}
        quantized = quantization_config(self.model)  # an int8 model: which layers, how
        if quantized is not None:
            config[QUANTIZATION_CONFIG] = quantized
        tokenizer_config = {"model_max_length": self.max_length}
        if isinstance(self.model, peft.PeftModel):  # the adapter alone, with its base named
            return self.model.save_pretrained(directory, self.tokenizer, config, extra_files,
                                              tokenizer_config)
        return checkpoint.save_pretrained(self.model, self.tokenizer, directory, config,
                                          extra_files, tokenizer_config=tokenizer_config)

    @classmethod
    def load(cls, directory: str | Path, max_length: int | None = None) -> Classifier:
        """A classifier saved by :meth:`save` (or any Hugging Face BERT classifier directory:
        ``architectures`` tells the task, ``id2label`` the labels); an int8 one (its config has
        ``quantization_config``) is rebuilt by :func:`minigrad.compress.quantize.load_quantized`,
        an adapter directory as its base model with the adapter
        (:func:`minigrad.peft.load_adapter`)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise checkpoint.CheckpointError(f"{directory} is not a directory; a fine-tuned "
                                             "model is the directory minigrad finetune wrote")
        checkpoint.verify_manifest(directory)
        config = checkpoint.load_config(directory)
        tasks = {arch: task for task, arch in ARCHITECTURES.items()}
        found = [tasks[a] for a in config.get("architectures") or [] if a in tasks]
        if not found:
            raise checkpoint.CheckpointError(
                f"{directory / checkpoint.CONFIG_FILE}: architectures "
                f"{config.get('architectures')} names no classifier ({', '.join(tasks)}); "
                "fine-tune the model first")
        if peft.is_adapter_directory(directory):  # its base model, with the adapter
            model = peft.load_adapter(directory, found[0])
        elif QUANTIZATION_CONFIG in config:
            model = load_quantized(directory, found[0])
        else:
            model = from_pretrained(directory, task=found[0])
        n = model.config.num_labels
        id2label = config.get("id2label") or {}
        names = [id2label.get(str(i), f"LABEL_{i}") for i in range(n)]
        tokenizer = load_tokenizer(directory)
        if max_length is None:
            max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
        check_max_length(max_length, model.config, str(directory))
        return cls(model, tokenizer, names, found[0], max_length)


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


def check_max_length(max_length: int, config: BertConfig, name: str) -> None:
    if max_length > config.max_position_embeddings:
        raise ValueError(f"max_length {max_length} is above the position limit of model "
                         f"{name}: it has {config.max_position_embeddings} position embeddings "
                         f"(max_position_embeddings), so at most {config.max_position_embeddings}"
                         " tokens")


def encode(classifier: Classifier, examples: Examples, label2id: dict[str, int]) -> Encoded:
    """Labelled examples as arrays for this classifier's tokenizer and length."""
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


def is_bio(label_names: Sequence[str]) -> bool:
    return all(t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2) for t in label_names)


def score(classifier: Classifier, examples: Examples, encoded: Encoded | None = None,
          predict: Any = predict_logits) -> dict[str, Any]:
    """Loss, accuracy, macro-F1, the report (text and dict) and the predicted ids.

    ``predict(model, encoded, batch_size) -> (logits, loss)`` is :func:`predict_logits`, or
    one with its signature (a data-parallel run's shares the rows among the ranks).

    Token classification scores every word (a word cut off by max_length counts as predicted
    O); with BIO tags the report and ``entity_f1`` are entity-level (seqeval's micro F1) and
    ``macro_f1`` the mean over entity types, otherwise they are per tag.
    """
    names = classifier.label_names
    label2id = {name: i for i, name in enumerate(names)}
    encoded = encoded or encode(classifier, examples, label2id)
    logits, loss = predict(classifier.model, encoded, classifier.eval_batch_size)
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
    if is_bio(names) and has_entities:
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
        if is_bio(names):
            out["entity_f1"] = 0.0  # no entity anywhere, true or predicted
    return {**out, "report": report, "report_text": text}
