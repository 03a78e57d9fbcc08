"""Masked-language-model pre-training: BERT's masking, the loss, a run whose loss falls, a
checkpoint that loads for fine-tuning, the command, and (slow) the pretraining_matters
benchmark's fast mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minigrad
from minigrad.cli import main
from minigrad.data.tokenizer import BertTokenizer
from minigrad.models import BertConfig, BertForMaskedLM, from_pretrained
from minigrad.pretrain import (
    IGNORE_INDEX,
    PretrainConfig,
    evaluate_mlm,
    length_grouped_batches,
    mask_tokens,
    masked_batches,
    mlm_loss,
    pretrain,
    read_lines,
    unigram_loss,
)

try:
    import numba
except ImportError:  # the NumPy backend alone
    numba = None

ROOT = Path(__file__).resolve().parents[1]

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = [PAD, UNK, CLS, SEP, MASK]

WORDS = ["the", "a", "film", "movie", "plot", "cast", "story", "ending", "actor", "director",
         "is", "was", "feels", "looks", "good", "great", "bad", "dull", "funny", "slow", "smart",
         "warm", "cold", "long", "short", "very", "quite", "not"]


def make_batch(rng: np.random.Generator, batch: int, width: int, vocab_size: int,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Random sequences [CLS] w ... w [SEP] [PAD]..., of random lengths, with some [UNK] and
    [MASK] tokens written in the text."""
    ids = np.full((batch, width), PAD, dtype=np.int64)  # (B, S)
    mask = np.zeros((batch, width), dtype=np.int64)  # (B, S)
    for row in range(batch):
        n = int(rng.integers(3, width + 1))
        words = rng.integers(len(SPECIAL), vocab_size, size=n - 2)
        words[rng.random(n - 2) < 0.05] = UNK
        words[rng.random(n - 2) < 0.02] = MASK
        ids[row, :n] = [CLS, *words, SEP]
        mask[row, :n] = 1
    return ids, mask


def make_padded(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(s) for s in sequences)
    ids = np.array([s + [PAD] * (width - len(s)) for s in sequences])
    return ids, (ids != PAD).astype(np.int64)


def draw(ids, mask, seed, vocab_size, p=0.15):
    return mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL,
                       vocab_size=vocab_size, rng=np.random.default_rng(seed),
                       mlm_probability=p)


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """count/n is within `sigmas` binomial standard deviations of p."""
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenBLAS and one Numba thread: on a busy 2-core machine, threads that spin waiting
    for each other make these small models ten times slower."""
    if numba is None:
        with threadpool_limits(1):
            yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    with threadpool_limits(1):
        yield
    numba.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> BertTokenizer:
    """A tiny WordPiece vocabulary: the five special tokens, then WORDS."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizer(path)


def corpus(n: int, seed: int = 0) -> list[str]:
    """Sentences with structure to learn: "the film is very good", "a plot was not dull"..."""
    rng = np.random.default_rng(seed)
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    return [" ".join([pick(["the", "a"]), pick(["film", "movie", "plot", "cast", "story"]),
                      pick(["is", "was", "feels", "looks"]), pick(["very", "quite", "not"]),
                      pick(["good", "great", "bad", "dull", "funny", "smart"])])
            for _ in range(n)]


# --- the masking -------------------------------------------------------------------------------

def test_fifteen_percent_of_real_non_special_tokens_are_selected_and_split_80_10_10():
    vocab_size = 30522
    ids, mask = make_batch(np.random.default_rng(0), 400, 64, vocab_size)
    corrupted, labels = draw(ids, mask, seed=1, vocab_size=vocab_size)
    selectable = (mask == 1) & ~np.isin(ids, SPECIAL)
    selected = labels != IGNORE_INDEX
    n, m = int(selectable.sum()), int(selected.sum())
    assert within(m, n, 0.15), f"{m} of {n} selected"

    to_mask = selected & (corrupted == MASK)
    kept = selected & (corrupted == ids)
    to_random = selected & ~to_mask & ~kept
    assert within(int(to_mask.sum()), m, 0.8)
    assert within(int(to_random.sum()), m, 0.1)
    assert within(int(kept.sum()), m, 0.1 + 0.1 / (vocab_size - len(SPECIAL)))


def test_the_rates_hold_over_many_small_draws():
    vocab_size = 1000
    ids, mask = make_batch(np.random.default_rng(0), 8, 24, vocab_size)
    rng = np.random.default_rng(2)
    counts = np.zeros(4, dtype=np.int64)  # selectable, selected, [MASK], unchanged
    selectable = (mask == 1) & ~np.isin(ids, SPECIAL)
    for _ in range(300):
        corrupted, labels = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL,
                                        vocab_size=vocab_size, rng=rng)
        selected = labels != IGNORE_INDEX
        counts += [selectable.sum(), selected.sum(), (selected & (corrupted == MASK)).sum(),
                   (selected & (corrupted == ids)).sum()]
    n, m, masked, kept = (int(c) for c in counts)
    assert within(m, n, 0.15) and within(masked, m, 0.8) and within(kept, m, 0.1 + 0.1 / 995)


def test_special_and_padding_tokens_are_never_selected_nor_changed():
    ids, mask = make_batch(np.random.default_rng(3), 200, 32, 500)
    # a high rate, so that any leak would show
    corrupted, labels = draw(ids, mask, seed=4, vocab_size=500, p=0.9)
    protected = (mask == 0) | np.isin(ids, SPECIAL)
    assert protected.sum() > 1000 and (labels != IGNORE_INDEX).sum() > 1000
    assert (labels[protected] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(corrupted[protected], ids[protected])


def test_labels_hold_the_original_ids_exactly_where_selected_and_nothing_else_changes():
    ids, mask = make_batch(np.random.default_rng(5), 100, 40, 3000)
    original = ids.copy()
    corrupted, labels = draw(ids, mask, seed=6, vocab_size=3000)
    np.testing.assert_array_equal(ids, original)  # the input is not changed in place
    selected = labels != IGNORE_INDEX
    np.testing.assert_array_equal(labels[selected], ids[selected])
    assert set(np.unique(labels[~selected])) == {IGNORE_INDEX}
    np.testing.assert_array_equal(corrupted[~selected], ids[~selected])
    assert corrupted.dtype == labels.dtype == ids.dtype and corrupted.shape == ids.shape


def test_random_replacements_come_uniformly_from_the_vocabulary_without_the_specials():
    vocab_size = 15  # ten ordinary ids, 5..14
    ids, mask = make_batch(np.random.default_rng(7), 300, 30, vocab_size)
    rng = np.random.default_rng(8)
    replacements = []
    for _ in range(20):
        corrupted, labels = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL,
                                        vocab_size=vocab_size, rng=rng, mlm_probability=0.5)
        changed = (labels != IGNORE_INDEX) & (corrupted != MASK) & (corrupted != ids)
        replacements.append(corrupted[changed])
    values = np.concatenate(replacements)
    counts = np.bincount(values, minlength=vocab_size)
    assert counts[SPECIAL].sum() == 0
    ordinary = counts[len(SPECIAL):]
    # A random draw equal to the original is invisible, so each id shows a little less than
    # 1/10 of the time; every id still shows, and none much more often than the others.
    expected = len(values) / len(ordinary)
    assert ordinary.min() > 0.85 * expected and ordinary.max() < 1.15 * expected, ordinary


def test_the_same_seed_gives_the_same_corruption_and_another_seed_another():
    ids, mask = make_batch(np.random.default_rng(9), 50, 30, 2000)
    a, b, c = (draw(ids, mask, seed=s, vocab_size=2000) for s in (10, 10, 11))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_a_batch_that_draws_nothing_still_gets_one_token_to_predict():
    ids = np.array([[CLS, 7, 8, SEP, PAD]])
    mask = np.array([[1, 1, 1, 1, 0]])
    for seed in range(20):
        _, labels = draw(ids, mask, seed=seed, vocab_size=20, p=1e-9)
        selected = np.flatnonzero(labels[0] != IGNORE_INDEX)
        assert len(selected) == 1 and selected[0] in (1, 2)


def test_bad_masking_arguments_are_refused():
    ids, mask = make_batch(np.random.default_rng(0), 2, 8, 50)
    with pytest.raises(ValueError, match="mlm_probability"):
        draw(ids, mask, seed=0, vocab_size=50, p=1.5)
    with pytest.raises(ValueError, match=r"\(2, 8\).*\(2, 7\)"):
        draw(ids, mask[:, :7], seed=0, vocab_size=50)


def test_length_grouped_batches_hold_every_row_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=1000)
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=20)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    assert sum(len(b) < 16 for b in batches) <= 1000 // (16 * 20) + 1  # one short batch a run
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(1000)[:16]]) for _ in range(50)])
    assert spread < 0.2 * random_spread
    again = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=20)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_held_out_batches_hold_the_corrupted_ids_and_their_labels():
    rng = np.random.default_rng(14)
    sequences = [[CLS, *rng.integers(5, 3000, size=int(n)).tolist(), SEP]
                 for n in rng.integers(1, 30, size=200)]
    batches = masked_batches(sequences, 32, PAD, np.random.default_rng(15), mask_token_id=MASK,
                             special_ids=SPECIAL, vocab_size=3000)
    assert [len(b[0]) for b in batches] == [32] * 6 + [8]
    selected = masked = 0
    for (ids, mask, labels), first in zip(batches, range(0, 200, 32), strict=True):
        original, _ = make_padded(sequences[first:first + 32])
        np.testing.assert_array_equal(mask, original != PAD)
        chosen = labels != IGNORE_INDEX
        np.testing.assert_array_equal(labels[chosen], original[chosen])
        selected += int(chosen.sum())
        masked += int((ids[chosen] == MASK).sum())
    assert within(masked, selected, 0.8)  # the model is scored on what it cannot see


def test_held_out_scores_of_an_untrained_model_are_at_chance():
    config = BertConfig.named("bert-tiny", vocab_size=500, num_hidden_layers=1)
    minigrad.manual_seed(0)
    model = BertForMaskedLM(config)
    rng = np.random.default_rng(16)
    sequences = [[CLS, *rng.integers(5, 500, size=20).tolist(), SEP] for _ in range(64)]
    scores = evaluate_mlm(model, masked_batches(sequences, 32, PAD, np.random.default_rng(17),
                                                mask_token_id=MASK, special_ids=SPECIAL,
                                                vocab_size=500))
    assert abs(scores["val_mlm_loss"] - np.log(500)) < 0.3
    assert scores["val_mlm_accuracy"] < 0.05


def test_the_unigram_reference_is_the_cross_entropy_of_the_training_frequencies():
    train = [[CLS, 5, 5, 6, SEP], [CLS, 5, 7, SEP]]  # 5 three times, 6 and 7 once
    labels = np.full((1, 4), IGNORE_INDEX)
    labels[0, 1:3] = [5, 8]  # 8 never occurs: add-one smoothing keeps it finite
    counts = np.ones(10)
    counts[[5, 6, 7]] += [3, 1, 1]
    expected = -np.mean(np.log(counts[[5, 8]] / counts.sum()))
    assert unigram_loss(train, [(None, None, labels)], vocab_size=10) == pytest.approx(expected)


# --- the loss ------------------------------------------------------------------------------------

def test_mlm_loss_on_the_selected_rows_equals_the_full_head_loss_and_gradient():
    config = BertConfig.named("bert-tiny", vocab_size=40, num_hidden_layers=1,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids, mask = make_batch(np.random.default_rng(12), 6, 12, 40)
    corrupted, labels = draw(ids, mask, seed=13, vocab_size=40, p=0.3)
    grads = []
    for use_gather in (True, False):
        minigrad.manual_seed(0)
        model = BertForMaskedLM(config).to("float64")
        if use_gather:
            loss = mlm_loss(model, corrupted, mask, labels)
        else:
            loss = model(corrupted, mask, labels=labels).loss
        loss.backward()
        grads.append((loss.item(), {n: p.grad.copy() for n, p in model.named_parameters()}))
    (gathered, g1), (full, g2) = grads
    np.testing.assert_allclose(gathered, full, rtol=1e-12)
    assert abs(gathered - np.log(40)) < 0.5  # untrained: about ln V
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-9, atol=1e-14, err_msg=name)


# --- a run ----------------------------------------------------------------------------------------

def tiny_config(**overrides) -> PretrainConfig:
    settings = {"config": "bert-tiny", "max_length": 16, "epochs": 6, "batch_size": 16,
                "lr": 3e-3, "valid_fraction": 0.1, "progress": False, **overrides}
    return PretrainConfig(**settings)


@pytest.fixture(scope="module")
def tiny_run(tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    return pretrain(corpus(240), tiny_config(), out_dir=out, tokenizer=tokenizer), out


def test_a_tiny_pretraining_run_lowers_the_loss(tiny_run):
    result, _ = tiny_run
    losses = [s["loss"] for s in result.history.steps]
    assert len(losses) == 6 * 14  # 216 training lines, 16 a batch, 6 epochs
    assert losses[0] > 0.9 * np.log(len(WORDS) + 5)  # starts near chance, ln V
    assert np.mean(losses[-10:]) < 0.6 * losses[0], losses[::10]
    first, last = result.history.epochs[0], result.history.epochs[-1]
    assert last["val_mlm_loss"] < first["val_mlm_loss"]
    # Chance is 1/33. Knowing which word class each slot takes gives about 0.3, and the 10% of
    # selected tokens left unchanged a little more; a model that read the hidden tokens would
    # score near 1.
    assert 0.2 < last["val_mlm_accuracy"] < 0.6
    assert last["val_mlm_loss"] < result.unigram_val_loss - 0.5  # it reads the context
    assert [e["epoch"] for e in result.history.epochs] == list(range(1, 7))


def test_the_run_writes_a_checkpoint_history_and_curves(tiny_run):
    result, out = tiny_run
    assert {"model.safetensors", "config.json", "vocab.txt", "history.json",
            "curves.png"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"] and config["vocab_size"] == 33
    history = json.loads((out / "history.json").read_text())
    assert [s["loss"] for s in history["steps"]] == [s["loss"] for s in result.history.steps]
    from safetensors.numpy import load_file
    names = set(load_file(out / "model.safetensors"))
    assert all(n.startswith(("bert.", "cls.predictions.")) for n in names)
    assert {"bert.embeddings.word_embeddings.weight", "cls.predictions.bias",
            "cls.predictions.transform.dense.weight"} <= names


def test_the_checkpoint_loads_as_a_classifier_with_the_pretrained_encoder(tiny_run):
    result, out = tiny_run
    classifier = from_pretrained(out, task="sequence-classification", num_labels=3)
    trained = result.model.bert.state_dict()
    for name, array in classifier.bert.state_dict().items():
        if not name.startswith("pooler."):  # MLM has no pooler: it starts fresh
            np.testing.assert_array_equal(array, trained[name], err_msg=name)
    batch = result.tokenizer(corpus(4, seed=1), padding=True, return_tensors="np")
    logits = classifier(batch["input_ids"], batch["attention_mask"]).logits
    assert logits.shape == (4, 3) and np.isfinite(logits.data).all()


def test_the_checkpoint_reloads_as_the_same_masked_lm(tiny_run):
    result, out = tiny_run
    reloaded = from_pretrained(out, task="masked-lm")
    # the decoder is still tied to the embeddings after loading
    assert reloaded.cls.predictions.decoder.weight is \
        reloaded.bert.embeddings.word_embeddings.weight
    batch = result.tokenizer(corpus(3, seed=2), padding=True, return_tensors="np")
    with minigrad.no_grad():
        a = result.model(batch["input_ids"], batch["attention_mask"]).logits.data
        b = reloaded(batch["input_ids"], batch["attention_mask"]).logits.data
    np.testing.assert_array_equal(a, b)


def test_the_same_seed_gives_the_same_run_and_another_seed_another(tokenizer):
    texts = corpus(64)
    runs = [pretrain(texts, tiny_config(epochs=1, seed=s), tokenizer=tokenizer)
            for s in (0, 0, 1)]
    same = [s["loss"] for s in runs[0].history.steps]
    assert same == [s["loss"] for s in runs[1].history.steps]
    for name, array in runs[0].model.state_dict().items():
        np.testing.assert_array_equal(array, runs[1].model.state_dict()[name])
    assert same != [s["loss"] for s in runs[2].history.steps]


def test_max_steps_stops_the_run_early(tokenizer):
    result = pretrain(corpus(100), tiny_config(epochs=3, max_steps=5), tokenizer=tokenizer)
    assert [s["step"] for s in result.history.steps] == [1, 2, 3, 4, 5]
    assert result.history.epochs[-1]["step"] == 5


def test_bad_settings_are_refused_with_their_names(tokenizer):
    with pytest.raises(ValueError, match="batch_size"):
        pretrain(corpus(10), tiny_config(batch_size=0), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="max_length 600 exceeds the 512 positions"):
        pretrain(corpus(10), tiny_config(max_length=600), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="no text"):
        pretrain([], tiny_config(), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="none of the 2 line"):
        pretrain(["\x00", "\u200b"], tiny_config(), tokenizer=tokenizer)


# --- the text file and the command ----------------------------------------------------------------

def test_read_lines_keeps_the_non_empty_lines_and_refuses_bad_files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("  first line \n\n\t\nsecond\n", encoding="utf-8")
    assert read_lines(good) == ["first line", "second"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(ValueError, match="holds no text"):
        read_lines(empty)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café crème".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_lines(latin1)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        read_lines(tmp_path / "missing.txt")


def test_minigrad_pretrain_writes_a_checkpoint_with_the_minilm_vocabulary(tmp_path, capsys):
    text = tmp_path / "reviews.txt"
    text.write_text("\n".join(corpus(40)) + "\n", encoding="utf-8")
    out = tmp_path / "ckpt"
    code = main(["pretrain", "--text", str(text), "--out", str(out), "--config", "bert-tiny",
                 "--max-length", "16", "--batch-size", "8", "--max-steps", "2", "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "in 2 steps" in printed and str(out) in printed
    assert len((out / "vocab.txt").read_text(encoding="utf-8").splitlines()) == 30522
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 128
    assert len(json.loads((out / "history.json").read_text())["steps"]) == 2


@pytest.mark.parametrize("content, message", [
    (b"", "holds no text"),
    (b"caf\xe9\n", "not UTF-8"),
])
def test_minigrad_pretrain_reports_bad_text_files(tmp_path, capsys, content, message):
    text = tmp_path / "bad.txt"
    text.write_bytes(content)
    assert main(["pretrain", "--text", str(text), "--out", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --- the benchmark --------------------------------------------------------------------------------

@pytest.mark.slow
def test_pretraining_matters_runs_end_to_end_in_fast_mode(tmp_path):
    env = {**os.environ, "MINIGRAD_FAST": "1"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pretraining_matters.py"),
                          "--out-dir", str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "pretraining_matters.json").read_text())
    names = [row["name"] for row in results["rows"]]
    assert names == ["random init", "minigrad MLM pre-training", "MiniLM (pretrained)",
                     "TF-IDF + logistic regression", "frozen MiniLM + logistic regression"]
    for row in results["rows"]:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and row["seconds"] > 0
    assert (tmp_path / "pretraining_matters.md").is_file()
    assert (tmp_path / "pretraining_matters.png").is_file()
