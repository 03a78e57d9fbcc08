"""Metrics: scikit-learn's classification_report is the oracle; entity F1 is worked by hand."""

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import classification_report as sk_classification_report
from sklearn.metrics import precision_recall_fscore_support as sk_prfs

from minigrad import metrics


def assert_same_report(ours: dict, theirs: dict) -> None:
    """Same keys in the same order, same numbers (NaN where scikit-learn has NaN)."""
    assert list(ours) == list(theirs)
    for key, expected in theirs.items():
        if isinstance(expected, dict):
            assert list(ours[key]) == list(expected), key
            for column, value in expected.items():
                np.testing.assert_allclose(ours[key][column], value, rtol=1e-12, atol=0,
                                           err_msg=f"{key} / {column}")
        else:
            np.testing.assert_allclose(ours[key], expected, rtol=1e-12, atol=0, err_msg=key)


def random_labels(seed: int, classes: list) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    return rng.choice(classes, n), rng.choice(classes, n)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --- accuracy and per-class scores ------------------------------------------------------------

def test_accuracy_is_the_fraction_of_matches():
    assert metrics.accuracy([0, 1, 2, 2], [0, 2, 2, 2]) == 0.75
    assert metrics.accuracy(np.array(["a", "b"]), np.array(["b", "a"])) == 0.0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_precision_recall_fscore_support_matches_sklearn(seed, average):
    y_true, y_pred = random_labels(seed, [0, 1, 2, 3, 4])
    ours = quiet(metrics.precision_recall_fscore_support, y_true, y_pred, average=average)
    theirs = quiet(sk_prfs, y_true, y_pred, average=average)
    for a, b in zip(ours[:3], theirs[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    if average is None:
        np.testing.assert_array_equal(ours[3], theirs[3])
    else:
        assert ours[3] is None


# --- classification_report against scikit-learn -----------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_report_dict_matches_sklearn_on_random_integer_labels(seed):
    y_true, y_pred = random_labels(seed, [0, 1, 2, 3, 4, 5])
    assert_same_report(quiet(metrics.classification_report, y_true, y_pred, output_dict=True),
                       quiet(sk_classification_report, y_true, y_pred, output_dict=True))


@pytest.mark.parametrize("seed", range(6))
def test_report_dict_matches_sklearn_on_string_labels(seed):
    y_true, y_pred = random_labels(seed, ["cat", "dog", "bird", "axolotl"])
    assert_same_report(quiet(metrics.classification_report, y_true, y_pred, output_dict=True),
                       quiet(sk_classification_report, y_true, y_pred, output_dict=True))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4, 5, 6], [4, 0, 2]],
                         ids=["superset-with-missing-classes", "subset"])
def test_report_dict_matches_sklearn_with_labels(seed, labels):
    # Classes 5 and 6 never occur in the data (support 0, never predicted): zero divisions.
    # A subset of the labels turns the accuracy row into a "micro avg" row.
    y_true, y_pred = random_labels(seed, [0, 1, 2, 3, 4])
    ours = quiet(metrics.classification_report, y_true, y_pred, labels=labels, output_dict=True)
    theirs = quiet(sk_classification_report, y_true, y_pred, labels=labels, output_dict=True)
    assert_same_report(ours, theirs)
    assert ("accuracy" in ours) == (len(labels) == 7)


@pytest.mark.parametrize("zero_division", ["warn", 0.0, 1.0, np.nan])
def test_zero_division_matches_sklearn(zero_division):
    # Class 2 is predicted but never true (recall 0/0); class 3 is true but never predicted
    # (precision 0/0); class 4 is in neither (every ratio 0/0, F1 included).
    y_true = [0, 0, 1, 1, 3, 3]
    y_pred = [0, 1, 1, 2, 2, 0]
    kwargs = {"labels": [0, 1, 2, 3, 4], "zero_division": zero_division, "output_dict": True}
    assert_same_report(quiet(metrics.classification_report, y_true, y_pred, **kwargs),
                       quiet(sk_classification_report, y_true, y_pred, **kwargs))


def test_zero_division_warns_by_default_and_not_when_set():
    with pytest.warns(metrics.UndefinedMetricWarning, match="Precision is ill-defined"):
        metrics.classification_report([0, 1], [0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.classification_report([0, 1], [0, 0], zero_division=0.0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("digits", [2, 4])
def test_report_text_matches_sklearn(seed, digits):
    y_true, y_pred = random_labels(seed, ["negative", "neutral", "positive"])
    # scikit-learn 1.9 prints supports as floats ("12.0") when no prediction is right at all;
    # minigrad always prints integer supports, so the text is compared where one is right.
    y_pred[0] = y_true[0]
    assert (quiet(metrics.classification_report, y_true, y_pred, digits=digits)
            == quiet(sk_classification_report, y_true, y_pred, digits=digits))


def test_report_text_with_target_names_and_micro_avg_row_matches_sklearn():
    y_true = [0, 1, 2, 2, 1, 0, 2]
    y_pred = [0, 2, 2, 2, 1, 1, 0]
    for kwargs in ({"target_names": ["zero", "one", "two"]},
                   {"labels": [2, 0], "target_names": ["two", "zero"]}):
        ours = metrics.classification_report(y_true, y_pred, **kwargs)
        assert ours == sk_classification_report(y_true, y_pred, **kwargs)
    assert "micro avg" in ours and "accuracy" not in ours


def test_report_layout_by_hand():
    # cat: tp 2, predicted 3, true 2 -> P 2/3, R 1, F1 4/5; dog: tp 1, predicted 1, true 2.
    text = metrics.classification_report(["cat", "cat", "dog", "dog"],
                                         ["cat", "cat", "cat", "dog"])
    assert text.splitlines() == [
        "              precision    recall  f1-score   support",
        "",
        "         cat       0.67      1.00      0.80         2",
        "         dog       1.00      0.50      0.67         2",
        "",
        "    accuracy                           0.75         4",
        "   macro avg       0.83      0.75      0.73         4",
        "weighted avg       0.83      0.75      0.73         4",
    ]


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"different lengths.*\(3,\).*\(2,\)"):
        metrics.classification_report([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"1-D.*\(2, 2\)"):
        metrics.accuracy([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="target_names has 2 names for 3 labels"):
        metrics.classification_report([0, 1, 2], [0, 1, 2], target_names=["a", "b"])
    with pytest.raises(ValueError, match="mix strings and numbers"):
        metrics.classification_report([0, 1], ["0", "1"])


# --- entities from BIO tags --------------------------------------------------------------------

def test_get_entities_follows_seqeval_default_mode():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "B-PER", "B-PER"]
    assert metrics.get_entities(tags) == [
        ("PER", 0, 1),  # B-PER I-PER
        ("LOC", 3, 4),  # I-LOC after O opens an entity; the next I-LOC continues it
        ("LOC", 5, 5),  # B-LOC always opens a new entity
        ("ORG", 6, 6),  # I-ORG after a LOC opens a new ORG entity
        ("PER", 7, 7),  # B-PER B-PER: two one-token entities
        ("PER", 8, 8),
    ]
    assert metrics.get_entities(["I-MISC", "I-MISC"]) == [("MISC", 0, 1)]
    assert metrics.get_entities(["O", "O"]) == []


def test_get_entities_refuses_tags_that_are_not_bio():
    with pytest.raises(ValueError, match=r"'E-PER' at position 1 is not BIO"):
        metrics.get_entities(["B-PER", "E-PER"])
    with pytest.raises(ValueError, match=r"'B' at position 0"):
        metrics.get_entities(["B"])


def test_entity_f1_worked_by_hand():
    true = [["B-PER", "I-PER", "O", "B-LOC", "O"],
            ["B-ORG", "I-ORG", "I-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O"],
            ["B-ORG", "I-ORG", "O", "O", "I-PER"]]
    # true entities: (0,PER,0-1) (0,LOC,3-3) (1,ORG,0-2) (1,PER,4-4)             -> 4
    # predicted:     (0,PER,0-1) (0,ORG,3-3) (1,ORG,0-1) (1,PER,4-4) (I-PER opens) -> 4
    # exact matches: (0,PER,0-1) (1,PER,4-4); the ORG spans differ in type or end  -> tp 2
    # P = 2/4, R = 2/4, F1 = 2·2 / (4 + 4) = 0.5
    assert metrics.entity_f1(true, pred) == pytest.approx(0.5)

    report = metrics.entity_classification_report(true, pred, output_dict=True,
                                                   zero_division=0.0)
    # LOC: tp 0, predicted 0, true 1 -> P 0/0 := 0 (zero_division), R 0, F1 0/(0+1) = 0
    # ORG: tp 0, predicted 2, true 1 -> P 0,   R 0, F1 0
    # PER: tp 2, predicted 2, true 2 -> P 1,   R 1, F1 1
    assert list(report) == ["LOC", "ORG", "PER", "micro avg", "macro avg", "weighted avg"]
    assert report["PER"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2.0}
    assert report["ORG"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1.0}
    # micro: tp 2, predicted 4, true 4 -> 0.5 each; macro: (0 + 0 + 1) / 3 each.
    assert report["micro avg"]["f1-score"] == pytest.approx(0.5)
    assert report["macro avg"]["precision"] == pytest.approx(1 / 3)
    # weighted by support (1, 1, 2): (0·1 + 0·1 + 1·2) / 4 = 0.5
    assert report["weighted avg"]["recall"] == pytest.approx(0.5)


def test_entity_f1_counts_a_boundary_error_as_a_miss_and_a_false_alarm():
    true = [["B-MISC", "I-MISC", "I-MISC", "O"]]
    pred = [["B-MISC", "I-MISC", "B-MISC", "O"]]
    # true: (MISC,0-2) -> 1; predicted: (MISC,0-1) (MISC,2-2) -> 2; exact matches: 0.
    # F1 = 2·0 / (2 + 1) = 0, although 3 of 4 tags are right.
    assert metrics.entity_f1(true, pred) == 0.0
    # Entities never cross sentences: the same tags split in two sentences give
    # true (0,MISC,0-1) (1,MISC,0-0); predicted the same two -> tp 2, F1 = 4 / 4 = 1.
    assert metrics.entity_f1([["B-MISC", "I-MISC"], ["I-MISC"]],
                             [["B-MISC", "I-MISC"], ["B-MISC"]]) == 1.0


def test_entity_report_text_layout_by_hand():
    true = [["B-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O"]]
    # LOC: tp 0, predicted 0, true 1; PER: tp 1, predicted 1, true 1; micro: tp 1, pred 1,
    # true 2 -> P 1, R 0.5, F1 2/3. Precision of LOC is 0/0, set to 0 here.
    text = metrics.entity_classification_report(true, pred, zero_division=0.0)
    assert text.splitlines() == [
        "              precision    recall  f1-score   support",
        "",
        "         LOC       0.00      0.00      0.00         1",
        "         PER       1.00      1.00      1.00         1",
        "",
        "   micro avg       1.00      0.50      0.67         2",
        "   macro avg       0.50      0.50      0.50         2",
        "weighted avg       0.50      0.50      0.50         2",
    ]


def test_entity_scores_refuse_misaligned_sequences():
    with pytest.raises(ValueError, match="sentence 0: 2 true tags but 1 predicted"):
        metrics.entity_f1([["O", "B-PER"]], [["O"]])
    with pytest.raises(ValueError, match="1 sentences but pred_seqs has 2"):
        metrics.entity_f1([["O"]], [["O"], ["O"]])


def test_entity_f1_without_entities_is_zero_division():
    assert math.isnan(metrics.entity_f1([["O"]], [["O"]], zero_division=np.nan))


@pytest.mark.parametrize("y_true", [[[0, 1], [1]], [[0, 1], [1, 0]]])
def test_report_refuses_lists_of_lists_with_one_line(y_true):
    """Seed 003 §5.2 hands classification_report per-batch lists: ragged or not, one clear line
    (scikit-learn reads equal-length 0/1 lists silently as multilabel; minigrad refuses)."""
    with pytest.raises(ValueError, match="1-D sequence of labels"):
        metrics.classification_report(y_true, y_true)
