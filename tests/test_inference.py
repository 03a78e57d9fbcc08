"""Inference paths, as ``minigrad predict`` and ``minigrad embed`` use them: every row comes back
in its place after the length-sorted batches, nothing builds a graph, batches of 64 by default;
and ``benchmarks/inference.py`` (issue 20) runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
from minigrad import cli
from minigrad.classifier import Classifier, predict_logits
from minigrad.data.tokenizer import BertTokenizer
from minigrad.models import pretrained
from minigrad.models.bert import BertConfig, BertForSequenceClassification, BertModel

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "inference.py"
TEXTS = ["good", "the movie was great , the plot was fine and the actors were good", "bad !",
         "a long , slow and boring film", "fine", "not bad at all , really"]


@pytest.fixture(scope="module")
def classifier():
    tokenizer = BertTokenizer(pretrained.minilm_path() / "vocab.txt")
    minigrad.manual_seed(0)
    config = BertConfig.named("bert-tiny", vocab_size=len(tokenizer), num_labels=3)
    model = BertForSequenceClassification(config).eval()
    return Classifier(model, tokenizer, ["a", "b", "c"], max_length=32, eval_batch_size=2)


class Recorder:
    """Wraps a module's forward: records the batch sizes it sees and whether a graph could be
    built (``minigrad.is_grad_enabled()``) at each call."""

    def __init__(self, module):
        self.module, self.forward = module, module.forward
        self.batches, self.shapes, self.grad_enabled = [], [], []

    def __call__(self, input_ids, *args, **kwargs):
        self.batches.append(len(input_ids))
        self.shapes.append(tuple(input_ids.shape))
        self.grad_enabled.append(minigrad.is_grad_enabled())
        return self.forward(input_ids, *args, **kwargs)


def alone(classifier, text):
    """The logits of one text run by itself: no padding, no batch to sort."""
    batch = classifier.tokenizer([text], truncation=True, max_length=classifier.max_length,
                                 return_tensors="np")
    with minigrad.no_grad():
        return classifier.model(batch["input_ids"], batch["attention_mask"]).logits.data[0]


def test_predict_puts_each_row_back_in_place_after_the_length_sorted_batches(classifier):
    # batches of 2, longest first: the rows run in another order than they were given
    logits = classifier.logits(TEXTS)  # (N, C)
    assert logits.shape == (len(TEXTS), 3)
    expected = np.stack([alone(classifier, text) for text in TEXTS])
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert len({tuple(row) for row in np.round(expected, 4)}) == len(TEXTS)  # rows differ


def test_predict_gives_each_text_the_softmax_of_its_own_logits(classifier):
    results = classifier.predict(TEXTS)
    for text, result in zip(TEXTS, results, strict=True):
        z = alone(classifier, text).astype(np.float64)
        probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert result["text"] == text
        assert result["label"] == classifier.label_names[int(np.argmax(probs))]
        assert result["score"] == pytest.approx(probs.max(), abs=1e-6)
        assert list(result["scores"]) == classifier.label_names
        np.testing.assert_allclose(list(result["scores"].values()), probs, atol=1e-6)
        assert all(type(p) is float for p in result["scores"].values())  # JSON-ready


def test_predict_of_no_texts_is_an_empty_list(classifier):
    assert classifier.predict([]) == []


def test_predict_logits_returns_the_mean_loss_with_the_rows(classifier):
    encoded = classifier.encode(TEXTS)
    encoded.arrays["labels"] = np.array([0, 1, 2, 0, 1, 2])
    logits, loss = predict_logits(classifier.model, encoded, batch_size=4)
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # (N, C)
    assert loss == pytest.approx(-log_p[np.arange(6), [0, 1, 2, 0, 1, 2]].mean(), rel=1e-5)


def test_predict_and_embed_run_without_a_graph(classifier, monkeypatch):
    recorder = Recorder(classifier.model)
    monkeypatch.setattr(classifier.model, "forward", recorder)
    classifier.predict(TEXTS)
    assert recorder.batches == [2, 2, 2] and not any(recorder.grad_enabled)

    encoder = BertModel(BertConfig.named("bert-tiny", vocab_size=len(classifier.tokenizer)))
    recorder = Recorder(encoder)
    monkeypatch.setattr(encoder, "forward", recorder)
    pretrained.embed(TEXTS, encoder, classifier.tokenizer, batch_size=4)
    assert recorder.batches == [4, 2] and not any(recorder.grad_enabled)
    assert minigrad.is_grad_enabled()  # switched back on afterwards


def test_embed_runs_batches_of_64_by_default(classifier, monkeypatch):
    encoder = BertModel(BertConfig.named("bert-tiny", vocab_size=len(classifier.tokenizer)))
    recorder = Recorder(encoder)
    monkeypatch.setattr(encoder, "forward", recorder)
    vectors = pretrained.embed([f"text number {i}" for i in range(130)], encoder,
                               classifier.tokenizer)
    assert recorder.batches == [64, 64, 2]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_sorts_by_tokens_not_characters_so_batches_pad_least(classifier, monkeypatch):
    # by characters the one long word comes first; by tokens it is the shortest text
    texts = ["a b c d e", "understanding", "f g h", "i j k l m n"]
    lengths = [len(classifier.tokenizer.encode(t)) for t in texts]
    assert lengths[1] < min(lengths[0], lengths[2], lengths[3])
    encoder = BertModel(BertConfig.named("bert-tiny", vocab_size=len(classifier.tokenizer)))
    recorder = Recorder(encoder)
    monkeypatch.setattr(encoder, "forward", recorder)
    vectors = pretrained.embed(texts, encoder, classifier.tokenizer, batch_size=2)
    assert recorder.shapes == [(2, lengths[3]), (2, lengths[2])]
    monkeypatch.undo()
    alone = np.concatenate([pretrained.embed(t, encoder, classifier.tokenizer) for t in texts])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)  # each row back in its place


def test_the_embed_command_passes_its_batch_size(monkeypatch, capsys):
    seen = {}

    def spy(texts, model=None, tokenizer=None, batch_size=None, max_length=None):
        seen.update(batch_size=batch_size, max_length=max_length)
        return np.eye(len(texts), 4, dtype=np.float32)

    monkeypatch.setattr(pretrained, "embed", spy)
    assert cli.main(["embed", "a", "b"]) == 0
    assert seen == {"batch_size": 64, "max_length": 256}
    assert cli.main(["embed", "a", "--batch-size", "8", "--max-length", "32"]) == 0
    assert seen == {"batch_size": 8, "max_length": 32}
    capsys.readouterr()


@pytest.mark.slow
def test_the_inference_benchmark_measures_every_job_set_and_order(tmp_path):
    run = subprocess.run([sys.executable, str(BENCHMARK), "--texts", "8", "--long-texts", "2",
                          "--batch", "4", "--repeats", "1", "--json", "--out",
                          str(tmp_path / "inference")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "inference.json").read_text())
    assert set(result["summary"]) == {f"{job}/{name}/peer_{order}" for job in ("embed", "predict")
                                      for name in ("short", "long")
                                      for order in ("given", "sorted")}
    for figures in result["summary"].values():
        assert figures["minigrad_texts_per_s"] > 0 and figures["peer_texts_per_s"] > 0
        assert figures["ratio"] == pytest.approx(
            figures["minigrad_texts_per_s"] / figures["peer_texts_per_s"], rel=0.01, abs=1e-3)
    rows = {(r["job"], r["set"]): r for r in result["rows"]}
    assert rows[("embed", "short")]["agreement"]["min_cosine_vs_sorted"] > 0.9999
    assert rows[("predict", "long")]["agreement"]["labels_agree_vs_given"] == 1.0
    assert result["settings"]["texts"] == {"short": 8, "long": 2}
    assert 0 <= rows[("predict", "short")]["minigrad_tokenizer_share"] < 1
    assert "| embed | long | 2 |" in (tmp_path / "inference.md").read_text()
