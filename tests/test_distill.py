"""Knowledge distillation: ``F.distillation_loss`` (by hand, against torch, its limits α = 0 and
α = 1, no gradient to the teacher, the T² scale), the student built from a teacher's layers
(DistilBERT's start), and ``minigrad distill`` end to end with every input it refuses.

The teacher is a 6-layer BERT classifier as MiniLM's are, but 16 wide over a toy vocabulary,
built here and saved as a fine-tuned classifier; its weights are drawn wide (σ = 0.5) so that its
logits differ from text to text by whole units, something for a student to learn. The gradient
of the loss is checked in float64 by the op battery (tests/test_ops_*)."""

import dataclasses
import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from threadpoolctl import threadpool_limits

import minigrad
from minigrad import cli, nn
from minigrad.classifier import Classifier
from minigrad.data.datasets import TOKEN, TextExamples, TokenExamples
from minigrad.data.tokenizer import BertTokenizer
from minigrad.distill import distill, student_from_teacher, teacher_layers
from minigrad.finetune import FinetuneConfig, finetune
from minigrad.models import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    minilm_path,
)
from minigrad.nn import functional as F
from minigrad.train import seed_everything

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "plot", "was",
         "good", "great", "fine", "bad", "awful", "poor", "anna", "bob", "met", "visited",
         "tokyo", "paris", "today", "."]
POSITIVE, NEGATIVE = ("good", "great", "fine"), ("bad", "awful", "poor")
SMALL = {"hidden_size": 16, "num_hidden_layers": 6, "num_attention_heads": 2,
         "intermediate_size": 32, "max_position_embeddings": 32, "initializer_range": 0.5}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Tiny matrices gain nothing from a second BLAS thread (see tests/test_finetune.py)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def logits_and_labels(n: int = 6, c: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)) * 2, rng.standard_normal((n, c)) * 2, \
        rng.integers(0, c, n)


# --- the loss -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("T", "alpha"), [(1.0, 0.5), (2.0, 0.3), (4.0, 0.9), (0.5, 1.0)])
def test_the_loss_is_hintons_formula_by_hand(T, alpha):  # noqa: N803
    s, t, y = logits_and_labels()
    p, q = softmax(t / T), softmax(s / T)
    kl = (p * (np.log(p) - np.log(q))).sum(1)  # (N,)
    ce = -np.log(softmax(s)[np.arange(len(y)), y])  # (N,)
    expected = alpha * T**2 * kl + (1 - alpha) * ce
    loss = F.distillation_loss(minigrad.tensor(s), t, y, T=T, alpha=alpha, reduction="none")
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    assert F.distillation_loss(minigrad.tensor(s), t, y, T, alpha).item() == \
        pytest.approx(expected.mean(), rel=1e-12)
    assert F.distillation_loss(minigrad.tensor(s), t, y, T, alpha, reduction="sum").item() == \
        pytest.approx(expected.sum(), rel=1e-12)


@pytest.mark.parametrize(("T", "alpha"), [(1.0, 0.5), (3.0, 0.7)])
def test_value_and_gradient_match_the_usual_torch_recipe(T, alpha):  # noqa: N803
    """torch users write α·T²·kl_div(log q, log p, "batchmean") + (1 − α)·cross_entropy."""
    s, t, y = logits_and_labels(n=5, c=3, seed=1)
    ours = minigrad.tensor(s, requires_grad=True)
    loss = F.distillation_loss(ours, t, y, T=T, alpha=alpha)
    loss.backward()
    theirs = torch.tensor(s, requires_grad=True)
    expected = alpha * T**2 * TF.kl_div(TF.log_softmax(theirs / T, 1),
                                        TF.log_softmax(torch.tensor(t) / T, 1),
                                        reduction="batchmean", log_target=True) \
        + (1 - alpha) * TF.cross_entropy(theirs, torch.tensor(y))
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_alpha_0_is_cross_entropy_and_alpha_1_the_soft_part_alone():
    s, t, y = logits_and_labels()
    T = 3.0  # noqa: N806
    for alpha, reference in ((0.0, lambda x: F.cross_entropy(x, y)),
                             (1.0, lambda x: T**2 * F.kl_div(F.log_softmax(x / T, 1),
                                                             F.log_softmax(minigrad.tensor(t) / T,
                                                                           1),
                                                             "batchmean", log_target=True))):
        a, b = minigrad.tensor(s, requires_grad=True), minigrad.tensor(s, requires_grad=True)
        ours, expected = F.distillation_loss(a, t, y, T=T, alpha=alpha), reference(b)
        ours.backward()
        expected.backward()
        assert ours.item() == pytest.approx(expected.item(), rel=1e-12), alpha
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-15)


def test_no_gradient_reaches_the_teacher():
    """The teacher's logits are constants, even when they come out of a graph."""
    rng = np.random.default_rng(2)
    x = minigrad.tensor(rng.standard_normal((4, 5)))
    student, teacher = nn.Linear(5, 3), nn.Linear(5, 3)
    teacher_logits = teacher(x)
    assert teacher_logits.requires_grad
    F.distillation_loss(student(x), teacher_logits, np.array([0, 1, 2, 1]), alpha=1.0).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None and np.abs(p.grad).max() > 0 for p in student.parameters())


def test_t_squared_keeps_the_soft_gradient_at_the_scale_of_the_logit_gap():
    """∂(T²·KL)/∂s_c → (s_c − t_c)/C for logits of zero mean as T grows (Hinton et al., §2):
    without T² it would shrink as 1/T²."""
    s, t, y = logits_and_labels(n=3, c=4, seed=3)
    s, t = s - s.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    limit = (s - t) / 4  # (N, C)
    grads = {}
    for T in (10.0, 100.0, 1000.0):  # noqa: N806
        x = minigrad.tensor(s, requires_grad=True)
        F.distillation_loss(x, t, y, T=T, alpha=1.0, reduction="sum").backward()
        grads[T] = x.grad
    for T, error in ((10.0, 0.3), (100.0, 0.03), (1000.0, 0.003)):  # noqa: N806 (O(|s|/T))
        assert np.abs(grads[T] - limit).max() < error * np.abs(limit).max(), T


def test_ignored_examples_count_in_neither_term():
    s, t, y = logits_and_labels()
    ignored = y.copy()
    ignored[[1, 4]] = -100
    kept = np.array([0, 2, 3, 5])
    x = minigrad.tensor(s, requires_grad=True)
    loss = F.distillation_loss(x, t, ignored, T=2.0, alpha=0.4)
    loss.backward()
    x_kept = minigrad.tensor(s[kept], requires_grad=True)
    expected = F.distillation_loss(x_kept, t[kept], y[kept], T=2.0, alpha=0.4)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_array_equal(x.grad[[1, 4]], 0)
    np.testing.assert_allclose(x.grad[kept], x_kept.grad, rtol=1e-12)  # the mean of the 4 kept


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"teacher_logits": np.zeros((6, 3))}, ValueError,
     r"student_logits have shape \(6, 4\) but teacher_logits have shape \(6, 3\)"),
    ({"target": np.zeros(5, dtype=np.int64)}, ValueError,
     r"logits of shape \(6, 4\) need a target of class ids of shape \(6,\), got \(5,\)"),
    ({"target": np.zeros(6)}, TypeError, "target must hold integer class ids, got dtype float64"),
    ({"T": 0.0}, ValueError, "the temperature T must be a positive finite number, got 0.0"),
    ({"T": -2.0}, ValueError, "the temperature T must be a positive finite number, got -2.0"),
    ({"T": float("inf")}, ValueError, "the temperature T must be a positive finite number, "
                                      "got inf"),
    ({"alpha": -0.1}, ValueError, r"alpha, the weight of the soft targets, must be in \[0, 1\]"),
    ({"alpha": 1.5}, ValueError, r"alpha, the weight of the soft targets, must be in \[0, 1\], "
                                 "got 1.5"),
    ({"reduction": "batchmean"}, ValueError, "reduction must be one of"),
])
def test_bad_arguments_are_refused_by_name(change, error, message):
    s, t, y = logits_and_labels()
    arguments = {"teacher_logits": t, "target": y, "T": 2.0, "alpha": 0.5, **change}
    with pytest.raises(error, match="distillation_loss: " + message):
        F.distillation_loss(minigrad.tensor(s), **arguments)


# --- the student --------------------------------------------------------------------------------

def test_teacher_layers_are_evenly_spaced_from_the_first():
    assert teacher_layers(6, 3) == [0, 2, 4]  # MiniLM → 3 layers: every other one (DistilBERT)
    assert teacher_layers(6, 2) == [0, 3]  # MiniLM → 2 layers: every third one
    assert teacher_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert teacher_layers(6, 6) == [0, 1, 2, 3, 4, 5]
    for bad in (0, 7):
        with pytest.raises(ValueError, match=f"keeps 1 to 6 of its layers, got {bad}"):
            teacher_layers(6, bad)


def small_model(kind: type = BertForSequenceClassification, seed: int = 0,
                num_labels: int = 2) -> nn.Module:
    seed_everything(seed)
    return kind(BertConfig(vocab_size=len(VOCAB), num_labels=num_labels, **SMALL))


def ids(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A batch of 3 sequences of up to 7 tokens, with padding."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(5, len(VOCAB), (3, 7))
    mask = np.ones((3, 7), dtype=np.int64)
    mask[1, 5:] = mask[2, 3:] = 0
    return np.where(mask == 1, input_ids, 0), mask


@pytest.mark.parametrize("kind", [BertForSequenceClassification, BertForTokenClassification])
def test_the_students_layers_are_copies_of_the_teachers_chosen_layers(kind):
    teacher = small_model(kind)
    student = student_from_teacher(teacher, 3)
    assert type(student) is kind
    assert student.config == dataclasses.replace(teacher.config, num_hidden_layers=3)
    theirs, ours = teacher.state_dict(), student.state_dict()
    prefix = "bert.encoder.layer."
    for name, array in ours.items():
        if name.startswith(prefix):
            j, rest = name[len(prefix):].split(".", 1)
            source = f"{prefix}{[0, 2, 4][int(j)]}.{rest}"
        else:  # embeddings, pooler, classifier
            source = name
        np.testing.assert_array_equal(array, theirs[source], err_msg=name)
        assert not np.shares_memory(array, theirs[source]), name
    assert len(ours) == len(theirs) - 3 * sum(n.startswith(prefix + "0.") for n in theirs)

    student.bert.encoder.layer[1].output.dense.weight.data += 1  # training the student ...
    np.testing.assert_array_equal(teacher.state_dict()[prefix + "2.output.dense.weight"],
                                  theirs[prefix + "2.output.dense.weight"])  # ... not the teacher

    explicit = student_from_teacher(teacher, [1, 5])
    np.testing.assert_array_equal(explicit.state_dict()[prefix + "1.output.dense.weight"],
                                  theirs[prefix + "5.output.dense.weight"])


@pytest.mark.parametrize("kind", [BertForSequenceClassification, BertForTokenClassification])
def test_a_student_of_every_layer_computes_the_teachers_logits(kind):
    teacher = small_model(kind).eval()
    student = student_from_teacher(teacher, 6)
    assert not student.training
    input_ids, mask = ids()
    np.testing.assert_array_equal(student(input_ids, mask).logits.numpy(),
                                  teacher(input_ids, mask).logits.numpy())
    fewer = student_from_teacher(teacher, 3)
    assert np.abs(fewer(input_ids, mask).logits.numpy()
                  - teacher(input_ids, mask).logits.numpy()).max() > 1e-4  # a real cut


def test_a_student_keeps_the_teachers_dtype():
    teacher = small_model().to("float64")
    student = student_from_teacher(teacher, 2)
    assert {p.dtype for p in student.parameters()} == {np.dtype("float64")}


@pytest.mark.parametrize(("layers", "message"), [
    ([2, 1], r"layers \[2, 1\] are not increasing indices of the teacher's 6 layers"),
    ([0, 0], r"layers \[0, 0\] are not increasing"),
    ([0, 6], r"layers \[0, 6\] are not increasing indices of the teacher's 6 layers \(0 to 5\)"),
    ([], r"layers \[\] are not increasing"),
    (7, "keeps 1 to 6 of its layers, got 7"),
])
def test_bad_layer_choices_are_refused(layers, message):
    with pytest.raises(ValueError, match=message):
        student_from_teacher(small_model(), layers)


def test_only_a_bert_classifier_can_teach():
    with pytest.raises(TypeError, match="the teacher must be a BertForSequenceClassification or "
                                        "BertForTokenClassification, got Linear"):
        student_from_teacher(nn.Linear(2, 2), 1)


# --- distilling through the fine-tuning recipe --------------------------------------------------

def reviews(n: int, seed: int = 0) -> TextExamples:
    """A trivially separable task: the adjective decides the label."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        adjective = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        texts.append(f"the {rng.choice(['movie', 'film', 'plot'])} was {adjective} .")
        labels.append(label)
    return TextExamples(texts, labels)


def write_csv(path, examples: TextExamples):
    rows = [f"{t},{y}" for t, y in zip(examples.texts, examples.labels, strict=True)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


QUICK = {"batch_size": 8, "max_length": 16, "progress": False}


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, vocab):
    """A classifier directory as minigrad finetune writes it, of a 6-layer model."""
    path = tmp_path_factory.mktemp("teacher") / "teacher"
    Classifier(small_model(), BertTokenizer(vocab), ["neg", "pos"], max_length=16).save(path)
    return path


def test_distill_trains_the_student_on_the_teachers_logits(tmp_path, teacher):
    """With α = 1 the labels never enter the loss: flipping every training label gives the very
    same student. The soft loss falls as the student learns the teacher."""
    train = reviews(24, seed=1)
    flipped = TextExamples(train.texts, [{"pos": "neg", "neg": "pos"}[y] for y in train.labels])
    config = FinetuneConfig(lr=2e-3, epochs=3, out_dir=tmp_path / "student", **QUICK)
    result = distill(train, teacher=teacher, layers=2, alpha=1.0, temperature=2.0, config=config)
    other = distill(flipped, teacher=teacher, layers=2, alpha=1.0, temperature=2.0,
                    config=dataclasses.replace(config, out_dir=None))
    ours, theirs = result.classifier.model.state_dict(), other.classifier.model.state_dict()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)

    losses = [e["train_loss"] for e in result.history.epochs]
    assert losses[-1] < losses[0]
    assert result.classifier.model.config.num_hidden_layers == 2
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert (metrics["config"]["teacher"], metrics["config"]["student_layers"],
            metrics["config"]["alpha"]) == (str(teacher), 2, 1.0)
    # it saved an ordinary classifier: the same logits after loading
    loaded = Classifier.load(tmp_path / "student")
    texts = ["the film was great .", "a plot was awful ."]
    np.testing.assert_array_equal(loaded.logits(texts), result.classifier.logits(texts))


def test_a_token_classifier_is_distilled_token_by_token(tmp_path, vocab):
    """Each tagged word's logits are an example; padding and [CLS]/[SEP] count in neither term."""
    sentences = [[("anna", "B-PER"), ("visited", "O"), ("paris", "B-LOC"), ("today", "O")],
                 [("bob", "B-PER"), ("met", "O"), ("anna", "B-PER"), (".", "O")],
                 [("anna", "B-PER"), ("visited", "O"), ("tokyo", "B-LOC")]] * 4
    train = TokenExamples([[w for w, _ in s] for s in sentences],
                          [[t for _, t in s] for s in sentences])
    Classifier(small_model(BertForTokenClassification, seed=1, num_labels=3), BertTokenizer(vocab),
               ["B-LOC", "B-PER", "O"], task=TOKEN).save(tmp_path / "teacher")
    result = distill(train, teacher=tmp_path / "teacher", layers=3,
                     config=FinetuneConfig(lr=1e-3, epochs=1, **QUICK))
    assert isinstance(result.classifier.model, BertForTokenClassification)
    assert result.classifier.model.config.num_hidden_layers == 3
    assert np.isfinite(result.history.epochs[0]["train_loss"])


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_minigrad_distill_writes_a_student_that_predict_loads(tmp_path, teacher, capsys):
    train = write_csv(tmp_path / "train.csv", reviews(32, seed=2))
    out = tmp_path / "student"
    code, stdout, err = run(capsys, "distill", "--teacher", teacher, "--train", train,
                            "--layers", "3", "--temperature", "4", "--alpha", "0.7",
                            "--lr", "2e-3", "--epochs", "2", "--batch-size", "8",
                            "--max-length", "16", "--out", out)
    assert code == 0, err
    assert "test accuracy" in stdout and f"saved to {out}/" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 3
    assert config["architectures"] == ["BertForSequenceClassification"]
    settings = json.loads((out / "metrics.json").read_text())["config"]
    assert (settings["teacher"], settings["student_layers"], settings["temperature"],
            settings["alpha"]) == (str(teacher), 3, 4.0, 0.7)

    code, stdout, err = run(capsys, "predict", "--model", out, "--json", "the film was good .")
    assert code == 0, err
    shown = json.loads(stdout)[0]
    assert shown["label"] in ("neg", "pos") and set(shown["scores"]) == {"neg", "pos"}
    loaded = Classifier.load(out)
    probabilities = softmax(loaded.logits(["the film was good ."]).astype(np.float64))[0]
    assert shown["scores"]["pos"] == pytest.approx(probabilities[1], abs=1e-6)


def test_a_student_trained_alone_starts_the_same_and_learns_the_labels_only(teacher):
    """student_layers without a teacher: the same start (the baseline of a distilled student),
    trained on cross-entropy, as distill with α = 0 is."""
    train = reviews(24, seed=3)
    config = FinetuneConfig(model=str(teacher), student_layers=3, lr=1e-3, epochs=1, **QUICK)
    alone = finetune(train, config=config)
    with_alpha_0 = distill(train, teacher=teacher, layers=3, alpha=0.0, config=config)
    for name, array in alone.classifier.model.state_dict().items():
        np.testing.assert_allclose(array, with_alpha_0.classifier.model.state_dict()[name],
                                   rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(("flags", "message"), [
    (["--layers", "6"], "a student of 6 layers is not smaller than {teacher}, which has 6; give "
                        "fewer than 6 layers"),
    (["--layers", "8"], "a student of 8 layers is not smaller than {teacher}, which has 6"),
    (["--layers", "0"], "student_layers must be at least 1, got 0"),
    (["--alpha", "1.5"], r"alpha, the weight of the teacher's soft targets, must be in [0, 1], "
                         "got 1.5"),
    (["--temperature", "0"], "the temperature must be positive, got 0.0"),
    (["--teacher", "{train}"], "the teacher must be a fine-tuned classifier: {train} is not a "
                               "directory"),
    (["--teacher", "{minilm}"], "the teacher must be a fine-tuned classifier: {minilm}/config.json:"
                                " architectures ['BertModel'] names no classifier"),
    (["--teacher", "{other_labels}"], "the teacher {other_labels} was fine-tuned on the labels "
                                      "['bad', 'good'], but the data's are ['neg', 'pos']"),
    (["--max-length", "64"], "max_length 64 is above the position limit of model {teacher} (the "
                             "teacher): it has 32 position embeddings"),
    (["--task", "token-classification", "--train", "{conll}"],
     "the teacher {teacher} is a sequence-classification model; the data is for "
     "token-classification"),
])
def test_bad_distillations_are_refused_in_one_line(tmp_path, teacher, vocab, capsys, flags,
                                                   message):
    train = write_csv(tmp_path / "train.csv", reviews(16))
    conll = tmp_path / "train.conll"
    conll.write_text("anna NN B-PER\nvisited NN O\n\n" * 20, encoding="utf-8")
    other_labels = tmp_path / "other"
    Classifier(small_model(), BertTokenizer(vocab), ["bad", "good"]).save(other_labels)
    names = {"teacher": teacher, "train": train, "minilm": minilm_path(),
             "other_labels": other_labels, "conll": conll}
    argv = ["distill", "--teacher", teacher, "--train", train, "--max-length", "16",
            "--out", tmp_path / "out", *(f.format(**names) for f in flags)]
    code, _, err = run(capsys, *argv)
    assert code == 1, err
    assert err.startswith("minigrad distill: error: ") and err.count("\n") == 1, err
    assert message.format(**names) in err
    assert not (tmp_path / "out" / "config.json").exists()


def test_distill_without_a_teacher_or_with_a_bad_number_is_refused(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", reviews(16))
    code, _, err = run(capsys, "distill", "--train", train)
    assert code == 1 and "give the teacher: --teacher DIR" in err
    for flags in (["--layers", "two"], ["--temperature", "nan"], ["--alpha", "inf"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["distill", "--teacher", "x", "--train", str(train), *flags])
        assert exit_.value.code == 2  # argparse's
    assert "invalid" in capsys.readouterr().err


def test_a_teacher_with_another_vocabulary_is_refused(tmp_path, teacher):
    """The student reads its own tokenizer's ids, and the teacher must read the same."""
    other = tmp_path / "vocab.txt"
    other.write_text("".join(t + "\n" for t in VOCAB[::-1]), encoding="utf-8")
    config = FinetuneConfig(model="bert-tiny", vocab=other, teacher=teacher, **QUICK)
    with pytest.raises(ValueError, match=r"the student's tokenizer \(.*vocab.txt\) is not the "
                                         r"teacher's"):
        finetune(reviews(16), config=config)


def test_an_interrupted_distillation_resumes_to_the_bits_of_a_whole_one(tmp_path, teacher,
                                                                        capsys, monkeypatch):
    """``--resume`` rebuilds the same student from the same teacher and goes on."""
    train = write_csv(tmp_path / "train.csv", reviews(24, seed=4))
    flags = ["distill", "--teacher", teacher, "--train", train, "--layers", "2", "--lr", "2e-3",
             "--epochs", "3", "--batch-size", "8", "--max-length", "16", "--examples", "0"]
    assert run(capsys, *flags, "--out", tmp_path / "whole")[0] == 0

    calls, forward = [], minigrad.distill.forward

    def interrupted(model, batch):  # Ctrl-C at the first step of epoch 2 (3 steps an epoch)
        calls.append(1)
        if len(calls) > 2 * 3:  # the student's and the teacher's forward each step
            raise KeyboardInterrupt
        return forward(model, batch)

    monkeypatch.setattr(minigrad.distill, "forward", interrupted)
    code, _, err = run(capsys, *flags, "--out", tmp_path / "resumed")
    assert code == 130
    assert f"continue with minigrad distill --resume {tmp_path / 'resumed'}" in err
    monkeypatch.setattr(minigrad.distill, "forward", forward)
    code, _, err = run(capsys, "distill", "--resume", tmp_path / "resumed")
    assert code == 0, err
    whole = Classifier.load(tmp_path / "whole").model.state_dict()
    resumed = Classifier.load(tmp_path / "resumed").model.state_dict()
    assert whole.keys() == resumed.keys()
    for name in whole:
        np.testing.assert_array_equal(whole[name], resumed[name], err_msg=name)
