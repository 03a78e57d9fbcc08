"""Examples to arrays, and arrays to batches: the step between the tokenizer and the model.

Text classification tokenizes each text (or pair) once, up front, into (N, L) arrays, L the
longest example (at most ``max_length``), so the tokenizer costs nothing per step. Token
classification reads sentences of words with one tag each. WordPiece cuts a word into pieces;
the word's tag goes on its first piece and every other position gets -100 (``IGNORE_INDEX``),
the label that cross-entropy skips (:func:`align_labels`)::

    words    Hironsan            lives   in   Tokyo
    tags     B-PER               O       O    B-LOC
    pieces   [CLS] hi ##ron ##san lives  in   tokyo [SEP]
    labels   -100  B-PER -100 -100 O     O    B-LOC -100

Batches are cut to their own longest sequence (:func:`trim_to_longest`, "dynamic padding"): a
batch of short reviews runs at length 30, not 128, and attention's cost grows with the square
of the length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from minigrad.data.datasets import batch_indices
from minigrad.data.tokenizer import BertTokenizer

IGNORE_INDEX = -100  # the label cross_entropy skips: padding, [CLS]/[SEP], continuation pieces


@dataclasses.dataclass
class Encoded:
    """Examples as arrays, one row each, padded to the longest example: ``input_ids``,
    ``token_type_ids``, ``attention_mask`` (N, L) and ``labels`` (N,) or (N, L). For tokens,
    ``word_starts[i][j]`` is the position of word j's first piece in row i (-1 if cut off)."""

    arrays: dict[str, np.ndarray]
    word_starts: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.arrays["input_ids"])

    def batch(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The given rows of every array, cut to their longest sequence."""
        return trim_to_longest({key: a[rows] for key, a in self.arrays.items()})


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ints of different lengths → ``(ids, attention_mask)``, both int64 (N, longest),
    padded with ``value`` on the right; the mask is 1 on the real entries."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), value, dtype=np.int64)  # (N, L)
    mask = np.zeros((len(rows), width), dtype=np.int64)  # (N, L)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask


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
    input_ids, attention_mask = pad_rows(ids, tokenizer.pad_token_id)  # (N, L)
    arrays = {"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
              "attention_mask": attention_mask}
    if tag_ids is not None:
        arrays["labels"] = pad_rows(labels, IGNORE_INDEX)[0]  # (N, L)
    return Encoded(arrays, starts)


def trim_to_longest(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dynamic padding: cut a batch's (B, L) arrays to its longest sequence, (B, S) with
    S = max attention-mask row sum. Rows were padded on the right, so nothing real is cut."""
    width = int(batch["attention_mask"].sum(axis=1).max())
    return {key: a[:, :width] if a.ndim == 2 else a for key, a in batch.items()}


def training_batches(encoded: Encoded, batch_size: int, rng: np.random.Generator | None,
                     ) -> list[dict[str, np.ndarray]]:
    """One epoch's batches, rows in ``rng``'s order (in order without one), each trimmed."""
    return [encoded.batch(rows) for rows in batch_indices(len(encoded), batch_size, rng)]


def length_sorted_batches(encoded: Encoded, batch_size: int,
                          ) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """``(rows, batch)`` pairs for evaluation, longest examples first so that each batch pads
    little; ``rows`` says which examples each batch holds."""
    lengths = encoded.arrays["attention_mask"].sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    return [(order[i:i + batch_size], encoded.batch(order[i:i + batch_size]))
            for i in range(0, len(order), batch_size)]
