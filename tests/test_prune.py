"""Pruning: magnitude pruning on Zhu & Gupta's cubic schedule (global threshold, masks kept as
buffers and re-applied after every step, saved with the model) and Michel et al.'s head
pruning (importance from the heads' gates, checked against finite differences; heads really
cut out, the pruned model equal to the whole one with those heads gated to 0; saved and
loaded), with every bad input refused. Tiny BERTs throughout: seconds."""

import json
import math

import numpy as np
import pytest
import safetensors.numpy
from threadpoolctl import threadpool_limits

import minigrad
from minigrad import checkpoint, cli
from minigrad.classifier import Classifier
from minigrad.compress.prune import (
    PRUNABLE,
    MagnitudePruner,
    apply_masks,
    cubic_sparsity,
    global_magnitude_prune,
    global_sparsity,
    head_importance,
    heads_to_prune,
    is_pruned,
    num_heads,
    prunable_layers,
    prune_heads,
)
from minigrad.data.tokenizer import BertTokenizer
from minigrad.finetune import FinetuneConfig
from minigrad.models import BertConfig, BertForSequenceClassification, from_pretrained
from minigrad.optim import AdamW
from minigrad.train import TrainConfig, fit

H, A, D, L = 16, 4, 4, 2  # hidden size, heads, head size, layers
TINY = BertConfig(vocab_size=13, hidden_size=H, num_hidden_layers=L, num_attention_heads=A,
                  intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, num_labels=3)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "good", "great",
         "bad", "awful", "."]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def tiny(seed: int = 0, dtype: str = "float32", **overrides) -> BertForSequenceClassification:
    minigrad.manual_seed(seed)
    config = BertConfig.from_dict({**TINY.to_dict(), **overrides})
    return BertForSequenceClassification(config).to(dtype).eval()


def batch(seed: int = 0, b: int = 3, s: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((b, s), dtype=np.int64)
    mask[0, s - 2:] = 0  # one padded row
    return {"input_ids": rng.integers(5, TINY.vocab_size, (b, s)), "attention_mask": mask,
            "token_type_ids": np.zeros((b, s), dtype=np.int64),
            "labels": rng.integers(0, TINY.num_labels, b)}


def logits(model, b, head_mask=None) -> np.ndarray:
    with minigrad.no_grad():
        return model(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                     head_mask=head_mask).logits.numpy()


def prunable_weights(model) -> np.ndarray:
    return np.concatenate([m.weight.data.ravel() for m in prunable_layers(model).values()])


# --- the cubic schedule ---------------------------------------------------------------------------

def test_the_cubic_schedule_at_its_start_middle_and_end():
    # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n Δt))³ with t0 = 10, n Δt = 20
    assert cubic_sparsity(9, 0.8, 10, 30) == 0.0  # no pruning before t0
    assert cubic_sparsity(10, 0.8, 10, 30) == 0.0  # s_i
    assert cubic_sparsity(20, 0.8, 10, 30) == pytest.approx(0.8 - 0.8 * 0.5 ** 3)  # 0.7
    assert cubic_sparsity(25, 0.8, 10, 30) == pytest.approx(0.8 - 0.8 * 0.25 ** 3)
    assert cubic_sparsity(30, 0.8, 10, 30) == 0.8
    assert cubic_sparsity(1000, 0.8, 10, 30) == 0.8  # constant after the end
    assert cubic_sparsity(10, 0.8, 10, 30, initial_sparsity=0.2) == pytest.approx(0.2)
    assert cubic_sparsity(20, 0.8, 10, 30, initial_sparsity=0.2) == pytest.approx(
        0.8 - 0.6 * 0.125)
    assert cubic_sparsity(5, 0.5, 5, 5) == 0.5  # start == end: at once
    steps = [cubic_sparsity(t, 0.9, 0, 100) for t in range(101)]
    gains = np.diff(steps)
    assert (gains > 0).all() and (np.diff(gains) < 0).all()  # rising, ever more slowly


# --- magnitude pruning ----------------------------------------------------------------------------

def test_the_prunable_weights_are_the_encoder_linear_matrices_only():
    model = tiny()
    names = list(prunable_layers(model))
    assert names == [f"bert.encoder.layer.{i}.{p}" for i in range(L) for p in PRUNABLE]
    global_magnitude_prune(model, 0.5)
    masks = [name for name, _ in model.named_buffers()]
    assert masks == [f"{n}.weight_mask" for n in names]
    untouched = tiny()  # embeddings, LayerNorms, biases, pooler, classifier: as built
    for name, a in untouched.state_dict().items():
        if not any(name == f"{n}.weight" for n in names):
            np.testing.assert_array_equal(model.state_dict()[name], a, err_msg=name)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.9])
def test_one_global_threshold_prunes_exactly_the_target_share(sparsity):
    model = tiny()
    before = np.abs(prunable_weights(model))
    reached = global_magnitude_prune(model, sparsity)
    after = prunable_weights(model)
    pruned = after == 0
    assert pruned.sum() == round(sparsity * after.size)  # exactly k = round(s·N)
    assert reached == global_sparsity(model) == pytest.approx(sparsity, abs=1 / after.size)
    if sparsity > 0:  # one threshold over every layer: all pruned below all kept
        assert before[pruned].max() <= before[~pruned].min()
        per_layer = [float((m.weight.data == 0).mean()) for m in prunable_layers(model).values()]
        assert len(set(per_layer)) > 1  # global, not the same share in each layer
    np.testing.assert_array_equal(after[~pruned], prunable_weights(tiny())[~pruned])


def test_masked_weights_stay_exactly_zero_through_further_optimizer_steps():
    model = tiny().train()
    global_magnitude_prune(model, 0.6)
    zero = prunable_weights(model) == 0
    assert zero.sum() == round(0.6 * zero.size)
    kept_before = prunable_weights(model)[~zero].copy()
    data = [batch(seed) for seed in range(4)]
    fit(model, lambda m, b: m(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                              labels=b["labels"]).loss,
        data, AdamW(model.parameters(), lr=1e-2, weight_decay=0.1),
        TrainConfig(epochs=2, progress=False), on_step=lambda step: apply_masks(model))
    after = prunable_weights(model)
    assert (after[zero] == 0).all()
    assert (after[~zero] != kept_before).mean() > 0.9  # the others did train


def test_the_pruner_follows_the_schedule_during_fit_and_never_loosens():
    model = tiny().train()
    pruner = MagnitudePruner(model, 0.75, start_step=2, end_step=8, frequency=2)
    assert is_pruned(model) and global_sparsity(model) == 0  # masks of ones from the start
    n = prunable_weights(model).size
    reached = {}

    def on_step(step):
        pruner(step)
        reached[step] = global_sparsity(model)

    fit(model, lambda m, b: m(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                              labels=b["labels"]).loss,
        [batch(seed) for seed in range(5)], AdamW(model.parameters(), lr=1e-2),
        TrainConfig(epochs=2, progress=False), on_step=on_step)
    expected, current = {}, 0.0
    for step in range(1, 11):
        if step >= 2 and (step % 2 == 0 or step >= 8):  # t0 = 2, Δt = 2
            current = round(cubic_sparsity(step, 0.75, 2, 8) * n) / n
        expected[step] = current
    assert reached == expected
    assert reached[10] == round(0.75 * n) / n
    MagnitudePruner(model, 0.25, 0, 0)(11)  # a lower target releases nothing
    assert global_sparsity(model) == round(0.75 * n) / n


def test_masks_are_saved_with_the_model_and_a_reloaded_model_keeps_its_zeros(tmp_path):
    model = tiny()
    global_magnitude_prune(model, 0.5)
    config = {**model.config.to_dict(), "architectures": ["BertForSequenceClassification"],
              "model_type": "bert"}
    checkpoint.save_pretrained(model, None, tmp_path / "model", config)
    saved = safetensors.numpy.load_file(tmp_path / "model" / "model.safetensors")
    assert sum(name.endswith(".weight_mask") for name in saved) == L * len(PRUNABLE)
    loaded = from_pretrained(tmp_path / "model", task="sequence-classification")
    for (name, mask), (name2, mask2) in zip(model.named_buffers(), loaded.named_buffers(),
                                            strict=True):
        assert name == name2
        np.testing.assert_array_equal(mask, mask2)
    np.testing.assert_array_equal(logits(loaded, batch()), logits(model, batch()))
    # Trained on, the reloaded model keeps its zeros: the masks are there to re-apply.
    loaded.train()
    zero = prunable_weights(loaded) == 0
    fit(loaded, lambda m, b: m(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                               labels=b["labels"]).loss,
        [batch()], AdamW(loaded.parameters(), lr=1e-2), TrainConfig(progress=False),
        on_step=MagnitudePruner(loaded, 0.0, 0, 0))
    assert (prunable_weights(loaded)[zero] == 0).all()
    # A training checkpoint holds the masks too, so a resumed run has them.
    optimizer = AdamW(model.parameters(), lr=1e-3)
    checkpoint.save_training_state(tmp_path / "state", model, optimizer, step=1, epoch=1)
    fresh = tiny(seed=1)
    MagnitudePruner(fresh, 0.5, 0, 10)
    checkpoint.load_training_state(tmp_path / "state", fresh, AdamW(fresh.parameters(), lr=1e-3))
    np.testing.assert_array_equal(prunable_weights(fresh), prunable_weights(model))
    for (_, a), (_, b) in zip(fresh.named_buffers(), model.named_buffers(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), "0.5", True])
def test_a_sparsity_outside_0_1_is_refused(bad):
    model = tiny()
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\), got"):
        global_magnitude_prune(model, bad)
    assert not is_pruned(model)
    with pytest.raises(ValueError, match=r"final_sparsity must be in \[0, 1\)"):
        MagnitudePruner(model, bad, 0, 10)
    with pytest.raises(ValueError, match=r"prune_sparsity must be in \[0, 1\)"):
        FinetuneConfig(prune_sparsity=bad).check()


def test_masks_only_tighten():
    model = tiny()
    global_magnitude_prune(model, 0.5)
    zero = prunable_weights(model) == 0
    global_magnitude_prune(model, 0.7)
    assert (prunable_weights(model)[zero] == 0).all()  # the pruned stay pruned
    with pytest.raises(ValueError, match=r"already prune 0\.7000 of its weights, more than "
                                         r"sparsity 0\.6: pruning masks only tighten"):
        global_magnitude_prune(model, 0.6)


def test_a_bad_schedule_is_refused():
    with pytest.raises(ValueError, match="start_step <= end_step, got 10 and 5"):
        cubic_sparsity(0, 0.5, 10, 5)
    with pytest.raises(ValueError, match="frequency must be at least 1"):
        MagnitudePruner(tiny(), 0.5, 0, 10, frequency=0)
    with pytest.raises(ValueError, match="prune_start <= prune_end"):
        FinetuneConfig(prune_sparsity=0.5, prune_start=0.8, prune_end=0.2).check()


# --- head importance ------------------------------------------------------------------------------

def test_head_importance_equals_finite_differences_of_the_loss_in_the_gates():
    model = tiny(dtype="float64", initializer_range=0.3)  # gates that matter
    batches = [batch(0), batch(1, b=2, s=5)]
    raw = head_importance(model, batches, normalize=False)
    eps = 1e-6

    def loss(b, gates):
        with minigrad.no_grad():
            return model(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                         labels=b["labels"], head_mask=gates).loss.item()

    expected, signed = np.zeros((L, A)), np.zeros((L, A))
    for b in batches:  # I_h = (1/n) Σ_b |∂L_b/∂ξ_h|, at ξ = 1
        for i in range(L):
            for h in range(A):
                up, down = np.ones((L, A)), np.ones((L, A))
                up[i, h] += eps
                down[i, h] -= eps
                slope = (loss(b, up) - loss(b, down)) / (2 * eps)
                expected[i, h] += abs(slope) / len(batches)
                signed[i, h] += slope / len(batches)
    assert raw.min() > 1e-3  # large enough for finite differences to check
    np.testing.assert_allclose(raw, expected, rtol=1e-6)
    # The |.| is per batch: where the batches pull a gate opposite ways, the score is not
    # |Σ_b ∂L_b/∂ξ_h| (the heads of this example include such a one).
    assert not np.allclose(raw, np.abs(signed), rtol=1e-3)
    normalized = head_importance(model, batches)
    np.testing.assert_allclose(normalized,
                               raw / np.sqrt((raw ** 2).sum(axis=1, keepdims=True)))
    assert model.training is False and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_heads_to_prune_takes_the_least_important_globally_keeping_one_per_layer():
    importance = np.array([[0.10, 0.90, 0.80],
                           [0.05, 0.02, 0.03]])
    # 3 of 6: 0.02, 0.03, then 0.05 would empty layer 1, so 0.10 goes instead
    assert heads_to_prune(importance, 0.5) == {0: [0], 1: [1, 2]}
    assert heads_to_prune(importance, 0.0) == {}
    pruned_before = np.array([[np.nan, 0.9, 0.8], [0.05, np.nan, 0.03]])
    assert heads_to_prune(pruned_before, 0.5) == {1: [2], 0: [2]}  # 2 of the 4 left
    with pytest.raises(ValueError, match="at most 4 can go: one head must stay in each of the 2"):
        heads_to_prune(importance, 0.9)
    with pytest.raises(ValueError, match=r"the fraction of heads to prune must be in \[0, 1\)"):
        heads_to_prune(importance, 1.0)


# --- removing heads -------------------------------------------------------------------------------

def test_pruned_heads_are_cut_out_and_the_model_equals_the_gated_whole_model():
    whole = tiny(dtype="float64")
    pruned = tiny(dtype="float64")
    before = pruned.num_parameters()
    plan = {0: [1, 3], 1: [0]}
    prune_heads(pruned, plan)
    assert pruned.config.pruned_heads == plan and num_heads(pruned) == L * A - 3
    for i, kept in enumerate([[0, 2], [1, 2, 3]]):
        attention, full = (m.bert.encoder.layer[i].attention for m in (pruned, whole))
        rows = np.concatenate([np.arange(h * D, (h + 1) * D) for h in kept])
        for name in ("query", "key", "value"):
            cut, orig = getattr(attention.self, name), getattr(full.self, name)
            assert cut.weight.shape == (len(kept) * D, H) and cut.bias.shape == (len(kept) * D,)
            np.testing.assert_array_equal(cut.weight.data, orig.weight.data[rows])
            np.testing.assert_array_equal(cut.bias.data, orig.bias.data[rows])
        assert attention.output.dense.weight.shape == (H, len(kept) * D)
        np.testing.assert_array_equal(attention.output.dense.weight.data,
                                      full.output.dense.weight.data[:, rows])
        assert attention.self.num_attention_heads == len(kept)
    # per head removed: D·H weights and D biases in each of q, k, v, and H·D in the output
    assert pruned.num_parameters() == before - 3 * (4 * D * H + 3 * D)
    gates = np.ones((L, A))
    for i, heads in plan.items():
        gates[i, heads] = 0
    for b in (batch(0), batch(1, b=2, s=5)):
        np.testing.assert_allclose(logits(pruned, b), logits(whole, b, gates), rtol=0,
                                   atol=1e-12)
        assert not np.allclose(logits(whole, b), logits(whole, b, gates))  # the heads mattered
    # The gates of heads that are gone are not used.
    np.testing.assert_array_equal(logits(pruned, batch(), np.ones((L, A))), logits(pruned, batch()))


def test_pruning_again_counts_heads_by_their_original_index():
    whole, pruned = tiny(dtype="float64"), tiny(dtype="float64")
    prune_heads(pruned, {0: [1]})
    prune_heads(pruned, {0: [1, 3], 1: [2]})  # head 1 again: skipped, as in Hugging Face
    assert pruned.config.pruned_heads == {0: [1, 3], 1: [2]}
    gates = np.ones((L, A))
    gates[0, [1, 3]] = gates[1, 2] = 0
    np.testing.assert_allclose(logits(pruned, batch()), logits(whole, batch(), gates), atol=1e-12)


def test_head_pruning_keeps_magnitude_masks_in_step():
    model = tiny()
    global_magnitude_prune(model, 0.5)
    prune_heads(model, {1: [0, 2]})
    for layer in prunable_layers(model).values():
        assert layer.weight_mask.shape == layer.weight.shape
        assert (layer.weight.data[layer.weight_mask == 0] == 0).all()


def test_a_head_pruned_model_saves_and_loads_with_its_shapes(tmp_path):
    model = tiny()
    global_magnitude_prune(model, 0.3)
    prune_heads(model, {0: [0, 1, 2], 1: [3]})
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tok = BertTokenizer(tmp_path / "vocab.txt")
    Classifier(model, tok, ["a", "b", "c"], max_length=16).save(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["pruned_heads"] == {"0": [0, 1, 2], "1": [3]}  # Hugging Face's layout
    loaded = Classifier.load(tmp_path / "out").model
    assert loaded.config.pruned_heads == {0: [0, 1, 2], 1: [3]}
    assert loaded.bert.encoder.layer[0].attention.self.query.weight.shape == (D, H)
    assert loaded.bert.encoder.layer[1].attention.output.dense.weight.shape == (H, 3 * D)
    np.testing.assert_array_equal(logits(loaded, batch()), logits(model, batch()))
    for (name, a), (name2, b) in zip(loaded.named_buffers(), model.named_buffers(), strict=True):
        assert name == name2
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("plan, says", [
    ({2: [0]}, "no layer 2; the layers are 0..1"),
    ({-1: [0]}, "no layer -1"),
    ({"0": [0]}, "no layer '0'"),
    ({0: [4]}, "layer 0 has no head 4; its heads are 0..3"),
    ({0: [-1]}, "layer 0 has no head -1"),
    ({1: [0, 1, 2, 3]}, "would leave layer 1 without a head"),
])
def test_bad_head_pruning_is_refused_and_changes_nothing(plan, says):
    model = tiny()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=says):
        prune_heads(model, {0: [1], **plan})  # the valid part is not applied either
    assert model.config.pruned_heads == {}
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in before.items()}


def test_the_last_heads_of_a_layer_cannot_go_one_call_after_another():
    model = tiny()
    prune_heads(model, {1: [0, 1]})
    with pytest.raises(ValueError, match=r"removing heads \[2, 3\] would leave layer 1 without"):
        prune_heads(model, {1: [2, 3]})


def test_a_config_naming_impossible_pruned_heads_is_refused():
    with pytest.raises(ValueError, match=r"pruned_heads names layer 5; the layers are 0\.\.1"):
        BertConfig.from_dict({**TINY.to_dict(), "pruned_heads": {"5": [0]}})
    with pytest.raises(ValueError, match=r"pruned_heads\[0\] = \[7\] must list heads among"):
        BertConfig.from_dict({**TINY.to_dict(), "pruned_heads": {"0": [7]}})
    with pytest.raises(ValueError, match="removes all 4 heads of the layer"):
        BertConfig.from_dict({**TINY.to_dict(), "pruned_heads": {"1": [0, 1, 2, 3]}})


def test_a_head_mask_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"head_mask has shape \(3, 4\); it must be"):
        logits(tiny(), batch(), np.ones((3, A)))
    one_row = np.array([1.0, 0.0, 1.0, 1.0])  # (A,): the same gates in every layer
    np.testing.assert_array_equal(logits(tiny(), batch(), one_row),
                                  logits(tiny(), batch(), np.stack([one_row] * L)))


# --- the commands ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.csv"
    rows = [f"the movie was {w},{'pos' if w in ('good', 'great') else 'neg'}"
            for w in ("good", "great", "bad", "awful") * 12]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    vocab = path.parent / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def test_finetune_prune_sparsity_saves_a_model_pruned_to_it(data_csv, tmp_path, capsys):
    out = tmp_path / "pruned"
    status = cli.main(["finetune", "--train", str(data_csv), "--model", "bert-tiny",
                       "--vocab", str(data_csv.parent / "vocab.txt"), "--max-length", "8",
                       "--batch-size", "8", "--epochs", "2", "--examples", "0", "--out",
                       str(out), "--prune-sparsity", "0.6", "--prune-end", "0.5"])
    assert status == 0
    assert "60.0% of the encoder's Linear weights pruned" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    n = 2 * (4 * 128 * 128 + 2 * 128 * 512)  # bert-tiny's prunable weights
    assert metrics["sparsity"] == round(0.6 * n) / n
    assert metrics["config"]["prune_sparsity"] == 0.6
    model = Classifier.load(out).model
    assert is_pruned(model) and global_sparsity(model) == round(0.6 * n) / n
    zero = prunable_weights(model) == 0
    # Fine-tuned again without --prune-sparsity, the pruned model keeps its zeros.
    assert cli.main(["finetune", "--train", str(data_csv), "--model", str(out),
                     "--max-length", "8", "--batch-size", "8", "--epochs", "1", "--lr", "1e-2",
                     "--examples", "0", "--out", str(tmp_path / "again")]) == 0
    again = Classifier.load(tmp_path / "again").model
    assert (prunable_weights(again)[zero] == 0).all()
    assert not np.array_equal(prunable_weights(again), prunable_weights(model))  # it trained


@pytest.mark.parametrize("value", ["1", "-0.5", "1.5"])
def test_finetune_refuses_a_sparsity_outside_0_1_in_one_line(data_csv, tmp_path, capsys, value):
    status = cli.main(["finetune", "--train", str(data_csv), "--model", "bert-tiny",
                       "--out", str(tmp_path / "o"), f"--prune-sparsity={value}"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert err.strip() == (f"minigrad finetune: error: prune_sparsity must be in [0, 1), got "
                           f"{float(value)}")


def test_prune_heads_command_writes_a_smaller_model_that_loads(data_csv, tmp_path, capsys):
    model = tiny(num_labels=2)
    tokenizer = BertTokenizer(data_csv.parent / "vocab.txt")
    Classifier(model, tokenizer, ["neg", "pos"], max_length=8).save(tmp_path / "model")
    out = tmp_path / "heads"
    status = cli.main(["prune-heads", "--model", str(tmp_path / "model"), "--data",
                       str(data_csv), "--fraction", "0.5", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    report = json.loads((out / "pruning.json").read_text())
    expected = heads_to_prune(np.array(report["importance"], dtype=float), 0.5)
    assert {int(k): v for k, v in report["pruned_now"].items()} == expected
    loaded = Classifier.load(out)
    assert loaded.model.config.pruned_heads == expected
    assert num_heads(loaded.model) == L * A // 2
    assert loaded.model.num_parameters() < model.num_parameters()
    assert f"pruned 4 of {L * A} heads" in printed
    assert len(loaded.predict(["the movie was good"])) == 1


@pytest.mark.parametrize("args, says", [
    (["--fraction", "1"], r"--fraction must be in [0, 1), got 1.0"),
    (["--fraction", "0.99"], "at most 6 can go: one head must stay in each of the 2 layers"),
    (["--fraction", "0.5", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
])
def test_prune_heads_command_refuses_bad_input_in_one_line(data_csv, tmp_path, capsys, args,
                                                           says):
    Classifier(tiny(num_labels=2), BertTokenizer(data_csv.parent / "vocab.txt"), ["neg", "pos"],
               max_length=8).save(tmp_path / "model")
    status = cli.main(["prune-heads", "--model", str(tmp_path / "model"), "--data",
                       str(data_csv), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err and says in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "config.json").exists()


def test_prune_heads_command_refuses_a_label_the_model_does_not_know(data_csv, tmp_path, capsys):
    Classifier(tiny(num_labels=2), BertTokenizer(data_csv.parent / "vocab.txt"), ["no", "yes"],
               max_length=8).save(tmp_path / "model")
    status = cli.main(["prune-heads", "--model", str(tmp_path / "model"), "--data",
                       str(data_csv), "--fraction", "0.5", "--out", str(tmp_path / "out")])
    assert status == 1
    assert "label 'neg' is not one of the model's labels ['no', 'yes']" in capsys.readouterr().err


def test_importance_in_the_report_is_michels_score_on_the_data(data_csv, tmp_path, capsys):
    """What the command ranks on is head_importance over the file's batches."""
    from minigrad.classifier import encode
    from minigrad.data.datasets import read_examples
    from minigrad.data.encoding import length_sorted_batches

    Classifier(tiny(num_labels=2), BertTokenizer(data_csv.parent / "vocab.txt"), ["neg", "pos"],
               max_length=8).save(tmp_path / "model")
    assert cli.main(["prune-heads", "--model", str(tmp_path / "model"), "--data",
                     str(data_csv), "--fraction", "0.25", "--out", str(tmp_path / "out"),
                     "--batch-size", "16"]) == 0
    capsys.readouterr()
    classifier = Classifier.load(tmp_path / "model")
    examples = read_examples(data_csv)
    batches = [b for _, b in length_sorted_batches(
        encode(classifier, examples, {"neg": 0, "pos": 1}), 16)]
    expected = head_importance(classifier.model, batches)
    report = json.loads((tmp_path / "out" / "pruning.json").read_text())
    np.testing.assert_allclose(np.array(report["importance"], dtype=float), expected)
    assert report["examples"] == len(examples) and not any(
        math.isnan(v) for row in expected for v in row)
