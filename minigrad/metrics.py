"""Classification metrics: accuracy, per-class precision/recall/F1 and entity-level F1.

For one class c, with counts over the samples:

    tp = #(true = c and pred = c)    pred_sum = #(pred = c)    true_sum = #(true = c)

    precision = tp / pred_sum        recall = tp / true_sum
    F1 = 2·P·R / (P + R) = 2·tp / (pred_sum + true_sum)

Averages over the classes, as scikit-learn defines them:

- micro: pool the counts of every class first, then divide (for single-label data over all the
  classes that occur, micro P = micro R = micro F1 = accuracy);
- macro: the plain mean of the per-class scores;
- weighted: the mean weighted by each class's support (true_sum).

A ratio whose denominator is 0 (a class never predicted, or never present) is set to
``zero_division`` (0 with a warning by default, as scikit-learn does).

Entity-level scores (:func:`entity_f1`, :func:`entity_classification_report`) count whole
entities read from BIO (IOB2) tags, as seqeval scores CoNLL: an entity is correct only when its
type, first token and last token all match.

Pure NumPy and Python; scikit-learn and seqeval are only the tests' oracles.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

HEADERS = ("precision", "recall", "f1-score", "support")


class UndefinedMetricWarning(UserWarning):
    """A precision, recall or F1 had a zero denominator and was set to ``zero_division``."""


def _as_labels(y: Any, name: str) -> np.ndarray:
    """A 1-D NumPy array of labels from a list, an array or a minigrad Tensor."""
    if hasattr(y, "numpy") and not isinstance(y, np.ndarray):
        y = y.numpy()  # a minigrad (or torch) tensor
    try:
        y = np.asarray(y)
    except ValueError:  # NumPy's "inhomogeneous shape": a ragged list of lists
        raise ValueError(f"{name} must be a 1-D sequence of labels, got a ragged sequence of "
                         f"sequences (lengths {[len(row) for row in y][:5]}...); flatten "
                         f"per-token labels first") from None
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of labels, got shape {y.shape}")
    return y


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred have different lengths: shapes {y_true.shape} "
                         f"and {y_pred.shape}")
    return y_true, y_pred


def _unique_labels(y_true: np.ndarray, y_pred: np.ndarray) -> list:
    """The sorted union of the labels that occur, refusing a mix of strings and numbers."""
    labels = set(y_true.tolist()) | set(y_pred.tolist())
    if len({isinstance(label, str) for label in labels}) > 1:
        raise ValueError(f"labels mix strings and numbers: {sorted(map(repr, labels))}")
    return sorted(labels)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of samples whose predicted label equals the true one."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("accuracy of an empty sequence of labels is undefined")
    return float(np.mean(y_true == y_pred))


def _divide(num: np.ndarray, den: np.ndarray, metric: str, zero_division: str | float,
            ) -> np.ndarray:
    """num / den elementwise, with ``zero_division`` where den is 0 (scikit-learn's rule)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    zero = den == 0
    out = num / np.where(zero, 1.0, den)
    if zero.any():
        out[zero] = 0.0 if zero_division == "warn" else float(zero_division)
        if zero_division == "warn":
            warnings.warn(f"{metric} is ill-defined for {int(zero.sum())} label(s) and being "
                          "set to 0.0; pass zero_division to control this",
                          UndefinedMetricWarning, stacklevel=3)
    return out


def _nan_average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The (weighted) mean that skips NaN scores, as scikit-learn averages them."""
    keep = ~np.isnan(values)
    if not keep.any():
        return math.nan
    if weights is None or weights[keep].sum() == 0:
        return float(np.mean(values[keep]))
    return float(np.average(values[keep], weights=weights[keep]))


def _scores_from_counts(tp: np.ndarray, pred_sum: np.ndarray, true_sum: np.ndarray,
                        average: str | None, zero_division: str | float) -> tuple:
    """Precision, recall, F1 and support from per-class counts, averaged or not."""
    if average not in (None, "micro", "macro", "weighted"):
        raise ValueError(f"average must be None, 'micro', 'macro' or 'weighted', "
                         f"got {average!r}")
    support = true_sum
    if average == "micro":
        tp, pred_sum, true_sum = tp.sum(keepdims=True), pred_sum.sum(keepdims=True), \
            true_sum.sum(keepdims=True)
    precision = _divide(tp, pred_sum, "Precision", zero_division)
    recall = _divide(tp, true_sum, "Recall", zero_division)
    f1 = _divide(2 * tp, pred_sum + true_sum, "F-score", zero_division)
    if average is None:
        return precision, recall, f1, support
    weights = support if average == "weighted" else None
    return (_nan_average(precision, weights), _nan_average(recall, weights),
            _nan_average(f1, weights), None)


def _counts(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence) -> tuple:
    """Per-label true positives, predicted counts and true counts (supports)."""
    tp = np.array([np.sum((y_true == c) & (y_pred == c)) for c in labels], dtype=np.int64)
    pred_sum = np.array([np.sum(y_pred == c) for c in labels], dtype=np.int64)
    true_sum = np.array([np.sum(y_true == c) for c in labels], dtype=np.int64)
    return tp, pred_sum, true_sum


def precision_recall_fscore_support(y_true: Any, y_pred: Any, *, labels: Sequence | None = None,
                                    average: str | None = None,
                                    zero_division: str | float = "warn") -> tuple:
    """Precision, recall, F1 and support for each label, or averaged over them.

    ``labels`` fixes which labels (and in which order) are scored; by default every label that
    occurs in ``y_true`` or ``y_pred``, sorted. With ``average=None`` the first three results
    are arrays over the labels and support is an int array; with ``'micro'``, ``'macro'`` or
    ``'weighted'`` they are floats and support is None, as in scikit-learn.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    labels = _unique_labels(y_true, y_pred) if labels is None else list(labels)
    return _scores_from_counts(*_counts(y_true, y_pred, labels), average, zero_division)


def _format_report(rows: list[tuple], averages: list[tuple], digits: int) -> str:
    """scikit-learn's text layout: a header, one row per class, a blank line, the averages.

    An ``accuracy`` row prints only its F1 column (the accuracy) and the support.
    """
    width = max([len(name) for name, *_ in rows] + [len("weighted avg"), digits])
    text = "{:>{width}s} ".format("", width=width) + "".join(f" {h:>9}" for h in HEADERS)
    text += "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for row in rows:
        text += row_fmt.format(*row, width=width, digits=digits)
    text += "\n"
    for name, p, r, f1, support in averages:
        if name == "accuracy":
            text += ("{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f} {:>9}\n").format(
                name, "", "", f1, support, width=width, digits=digits)
        else:
            text += row_fmt.format(name, p, r, f1, support, width=width, digits=digits)
    return text


def _report(names: list[str], counts: tuple, *, micro_name: str, digits: int,
            output_dict: bool, zero_division: str | float) -> str | dict:
    """A classification report from per-class counts, as text or as a dict."""
    p, r, f1, support = _scores_from_counts(*counts, None, zero_division)
    rows = list(zip(names, p.tolist(), r.tolist(), f1.tolist(), support.tolist(), strict=True))
    total = int(support.sum())
    averages = []
    for average in ("micro", "macro", "weighted"):
        avg_p, avg_r, avg_f1, _ = _scores_from_counts(*counts, average, zero_division)
        name = micro_name if average == "micro" else f"{average} avg"
        averages.append((name, avg_p, avg_r, avg_f1, total))
    if not output_dict:
        return _format_report(rows, averages, digits)
    report: dict[str, Any] = {}
    for name, *scores in rows + averages:
        report[name] = dict(zip(HEADERS, [float(s) for s in scores], strict=True))
    if "accuracy" in report:
        report["accuracy"] = report["accuracy"]["precision"]
    return report


def classification_report(y_true: Any, y_pred: Any, target_names: Sequence[str] | None = None,
                          digits: int = 2, output_dict: bool = False, *,
                          labels: Sequence | None = None,
                          zero_division: str | float = "warn") -> str | dict:
    """Per-class precision, recall, F1 and support, then the averages, as scikit-learn prints.

    ::

                      precision    recall  f1-score   support

                 cat       0.67      1.00      0.80         2
                 dog       1.00      0.50      0.67         2

            accuracy                           0.75         4
           macro avg       0.83      0.75      0.73         4
        weighted avg       0.83      0.75      0.73         4

    The micro average is printed as an ``accuracy`` row when it equals the accuracy, that is when
    every label that occurs is scored; with ``labels`` naming only some, it is a ``micro avg``
    row. ``output_dict=True`` returns the same numbers as a dict keyed by class name (the
    ``accuracy`` entry is then a float), with every value a float, as scikit-learn's does.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    occurring = _unique_labels(y_true, y_pred)
    labels = occurring if labels is None else list(labels)
    if target_names is None:
        target_names = [str(label) for label in labels]
    elif len(target_names) != len(labels):
        raise ValueError(f"target_names has {len(target_names)} names for {len(labels)} "
                         f"labels {labels}")
    micro_is_accuracy = set(labels) >= set(occurring)
    return _report(list(target_names), _counts(y_true, y_pred, labels),
                   micro_name="accuracy" if micro_is_accuracy else "micro avg", digits=digits,
                   output_dict=output_dict, zero_division=zero_division)


# --- entity-level scores for BIO (IOB2) tags --------------------------------------------------

def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities in one sentence's BIO tags, as ``(type, first, last)`` token indices.

    ``B-X`` opens an entity of type X and ``I-X`` continues it. As in seqeval's default mode,
    an ``I-X`` that does not follow ``B-X`` or ``I-X`` (it starts the sentence, follows ``O``
    or follows another type) opens a new entity too. ``O`` closes the open entity.

    >>> get_entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 4)]
    """
    entities = []
    open_type, start = None, 0
    for i, tag in enumerate(tags):
        prefix, _, entity_type = tag.partition("-")
        if tag != "O" and (prefix not in ("B", "I") or not entity_type):
            raise ValueError(f"tag {tag!r} at position {i} is not BIO: expected 'O', 'B-TYPE' "
                             "or 'I-TYPE'")
        continues = prefix == "I" and entity_type == open_type
        if open_type is not None and not continues:
            entities.append((open_type, start, i - 1))
            open_type = None
        if tag != "O" and not continues:
            open_type, start = entity_type, i
    if open_type is not None:
        entities.append((open_type, start, len(tags) - 1))
    return entities


def _entity_counts(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]],
                   ) -> tuple[list[str], tuple]:
    """Entity types (sorted) and their tp, predicted and true counts over all sentences."""
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"true_seqs has {len(true_seqs)} sentences but pred_seqs has "
                         f"{len(pred_seqs)}")
    true_set, pred_set = set(), set()
    for n, (true_tags, pred_tags) in enumerate(zip(true_seqs, pred_seqs, strict=True)):
        if len(true_tags) != len(pred_tags):
            raise ValueError(f"sentence {n}: {len(true_tags)} true tags but "
                             f"{len(pred_tags)} predicted tags")
        true_set |= {(n, *entity) for entity in get_entities(true_tags)}
        pred_set |= {(n, *entity) for entity in get_entities(pred_tags)}
    types = sorted({entity[1] for entity in true_set | pred_set})
    hits = true_set & pred_set

    def per_type(entities: set) -> np.ndarray:
        return np.array([sum(e[1] == t for e in entities) for t in types], dtype=np.int64)

    return types, (per_type(hits), per_type(pred_set), per_type(true_set))


def entity_f1(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]],
              zero_division: str | float = "warn") -> float:
    """Micro-averaged entity F1 over sentences of BIO tags (seqeval's ``f1_score``).

    F1 = 2·tp / (#predicted entities + #true entities), where tp counts predicted entities
    whose type, first and last token match a true entity exactly.
    """
    _, counts = _entity_counts(true_seqs, pred_seqs)
    tp, pred_sum, true_sum = (c.sum(keepdims=True) for c in counts)
    return float(_divide(2 * tp, pred_sum + true_sum, "F-score", zero_division)[0])


def entity_classification_report(true_seqs: Sequence[Sequence[str]],
                                 pred_seqs: Sequence[Sequence[str]], digits: int = 2,
                                 output_dict: bool = False,
                                 zero_division: str | float = "warn") -> str | dict:
    """Per-entity-type precision, recall, F1 and support, then micro, macro and weighted
    averages, in seqeval's (and scikit-learn's) layout; support counts true entities."""
    types, counts = _entity_counts(true_seqs, pred_seqs)
    if not types:
        raise ValueError("no entities in true_seqs or pred_seqs: nothing to report")
    return _report(types, counts, micro_name="micro avg", digits=digits,
                   output_dict=output_dict, zero_division=zero_division)
