"""Parameter-efficient fine-tuning (``minigrad.peft``): LoRA against Hugging Face ``peft`` on
MiniLM (same A and B, same outputs; the same trainable-parameter count), exact merging, the
frozen base, adapters, prompt tuning and BitFit starting from the base model and training only
their own weights, adapter directories saved and loaded, every bad input refused, and
``minigrad finetune --peft`` / ``minigrad predict`` end to end.

``transformers`` and ``peft`` are test-only oracles, loaded from local files; everything else
runs on a bert-tiny "pretrained" base written here, over a toy vocabulary."""

import json
import os
import random
import re
import shutil

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

import minigrad
from minigrad import checkpoint, cli, nn
from minigrad.checkpoint import CheckpointError
from minigrad.classifier import Classifier
from minigrad.data.datasets import TextExamples
from minigrad.data.tokenizer import BertTokenizer
from minigrad.finetune import FinetuneConfig, finetune
from minigrad.models import BertConfig, from_pretrained, minilm_path
from minigrad.models.bert import BertForMaskedLM, BertModel
from minigrad.peft import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    AdapterConfig,
    BitFitConfig,
    BottleneckAdapter,
    LoRAConfig,
    LoRALinear,
    PeftModel,
    PromptTuningConfig,
    get_peft_model,
)

SEQ, TOKEN = "sequence-classification", "token-classification"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "plot", "was",
         "is", "good", "great", "fine", "bad", "awful", "poor", ".", "!"]
POSITIVE, NEGATIVE = ("good", "great", "fine"), ("bad", "awful", "poor")
H, LAYERS = 128, 2  # bert-tiny


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """bert-tiny's small matrices gain nothing from a second BLAS thread (see test_finetune)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    return path


def save_base(directory, vocab, seed=0, head=BertModel, **sizes):
    """A 'pretrained' bert-tiny (random weights of ``seed``) as a checkpoint directory: the
    encoder with its pooler (``BertModel``), or without one (``BertForMaskedLM``)."""
    minigrad.manual_seed(seed)
    tokenizer = BertTokenizer(vocab)
    config = BertConfig.named("bert-tiny", vocab_size=tokenizer.vocab_size, **sizes)
    config_json = {**config.to_dict(), "model_type": "bert", "architectures": [head.__name__]}
    return checkpoint.save_pretrained(head(config), tokenizer, directory, config_json)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, vocab):
    return save_base(tmp_path_factory.mktemp("base") / "tiny", vocab)


def base_model(directory, task=SEQ, num_labels=2, dtype="float32"):
    """A classifier on the base, in eval mode, with the same head every time."""
    minigrad.manual_seed(1)
    return from_pretrained(directory, task=task, num_labels=num_labels, dtype=dtype)


def batch(seed=0, B=3, S=7):  # noqa: N803 (shape names)
    """Random ids with [CLS] first, the last row padded after 4 tokens, two segments."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, len(VOCAB), (B, S))
    ids[:, 0] = 2
    mask = np.ones((B, S), dtype=np.int64)
    mask[-1, 4:] = 0
    ids[-1, 4:] = 0
    token_types = np.zeros((B, S), dtype=np.int64)
    token_types[:, S // 2:] = 1
    return ids, mask, token_types


def logits(model, seed=0):
    return model(*batch(seed)).logits.numpy()


def perturb(model, seed=0, scale=0.1):
    """Give every trainable parameter random values (LoRA's B, adapters' up-projections...
    start at zero, which would make the checks below trivial)."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.data = (p.data + scale * rng.standard_normal(p.shape)).astype(p.dtype)


def trainable_names(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


# --- LoRA against Hugging Face peft on MiniLM --------------------------------------------------

@pytest.fixture(scope="module")
def hf():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import peft
    import transformers

    def minilm_classifier():
        torch.manual_seed(0)
        return transformers.BertForSequenceClassification.from_pretrained(
            minilm_path(), num_labels=2, local_files_only=True)

    return peft, minilm_classifier


def hf_name(name: str, prefix: str = "base_model.model.") -> str:
    """Our parameter name -> peft's (its adapter is named "default")."""
    inner = name.removeprefix("base_model.")
    for part in ("lora_A", "lora_B"):
        inner = inner.replace(f".{part}.", f".{part}.default.")
    inner = inner.replace("classifier.", "classifier.modules_to_save.default.")
    return prefix + inner


def copy_into_hf(ours, theirs, prefix="base_model.model."):
    """Every trainable tensor of ours (after perturb) into peft's model, by name."""
    hf_params = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if p.requires_grad:
                key = "prompt_encoder.default.embedding.weight" if name == "prompt_embeddings" \
                    else hf_name(name, prefix)
                hf_params[key].copy_(torch.from_numpy(p.numpy()))


@pytest.fixture(scope="module")
def lora_minilm(hf):
    """minigrad's LoRA MiniLM and peft's, r=8, query and value, with the same random A, B and
    head in both; alpha=16 (not peft's default 8) so that a wrong scaling α/r would show."""
    peft, minilm_classifier = hf
    ours = get_peft_model(base_model(minilm_path()),
                          LoRAConfig(lora_alpha=16, base_model_name_or_path="minilm"))
    perturb(ours)
    theirs = peft.get_peft_model(minilm_classifier(), peft.LoraConfig(
        task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0,
        target_modules=["query", "value"]))
    copy_into_hf(ours, theirs)
    return ours.eval(), theirs.eval()


def minilm_batch():
    """A padded batch of real ids, with two segments."""
    ids, mask, token_types = batch(B=3, S=12)
    ids = np.random.default_rng(0).integers(1000, 20000, ids.shape)
    ids[:, 0], ids[-1, 7:], mask[-1, 7:] = 101, 0, 0
    mask[-1, :7] = 1
    return ids, mask, token_types


def torch_inputs(ids, mask, token_types):
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "token_type_ids": torch.from_numpy(token_types)}


def test_lora_minilm_equals_peft_lora_on_transformers_minilm(lora_minilm):
    ours, theirs = lora_minilm
    inputs = minilm_batch()
    hidden = ours.base_model.bert(*inputs).last_hidden_state.numpy()  # (3, 12, 384)
    with torch.no_grad():
        expected = theirs.base_model.model.bert(**torch_inputs(*inputs)).last_hidden_state
        expected_logits = theirs(**torch_inputs(*inputs)).logits
    real = inputs[1].astype(bool)  # padding rows are compared too, but differ the most
    assert np.abs(hidden - expected.numpy())[real].max() <= 1e-5
    np.testing.assert_allclose(ours(*inputs).logits.numpy(), expected_logits.numpy(), rtol=0,
                               atol=1e-5)
    # the LoRA branch matters: the base alone is far from both
    with torch.no_grad(), theirs.disable_adapter():
        base = theirs.base_model.model.bert(**torch_inputs(*inputs)).last_hidden_state
    assert np.abs(hidden - base.numpy()).max() > 1e-2


def test_trainable_parameter_count_equals_peft(lora_minilm, capsys):
    ours, theirs = lora_minilm
    lora = sum(p.numel() for name, p in ours.named_parameters() if ".lora_" in name)
    assert lora == 6 * 2 * 8 * (384 + 384) == 73_728
    trainable, total = ours.get_nb_trainable_parameters()
    their_trainable, their_total = theirs.get_nb_trainable_parameters()
    assert trainable == their_trainable == 73_728 + 384 * 2 + 2
    assert total == their_total - (384 * 2 + 2)  # peft also keeps the head's frozen original
    ours.print_trainable_parameters()
    theirs.print_trainable_parameters()
    mine, peft_line = capsys.readouterr().out.splitlines()
    assert mine.split(" || ")[0] == peft_line.split(" || ")[0] == "trainable params: 74,498"


def test_peft_loads_a_lora_directory_minigrad_saved(lora_minilm, hf, tmp_path):
    ours, _ = lora_minilm
    peft, minilm_classifier = hf
    ours.save_pretrained(tmp_path / "adapter")
    theirs = peft.PeftModel.from_pretrained(minilm_classifier(), tmp_path / "adapter").eval()
    inputs = minilm_batch()
    with torch.no_grad():
        expected = theirs(**torch_inputs(*inputs)).logits.numpy()
    np.testing.assert_allclose(ours(*inputs).logits.numpy(), expected, rtol=0, atol=1e-5)


def test_prompt_tuning_equals_peft_prompt_tuning_on_minilm(hf):
    """Prompt before the word embeddings, positions shifted, the pooler on the first virtual
    token: the same logits as peft's PeftModelForSequenceClassification."""
    peft, minilm_classifier = hf
    ours = get_peft_model(base_model(minilm_path()), PromptTuningConfig(num_virtual_tokens=5))
    perturb(ours, scale=1.0)
    theirs = peft.get_peft_model(minilm_classifier(), peft.PromptTuningConfig(
        task_type="SEQ_CLS", num_virtual_tokens=5))
    copy_into_hf(ours, theirs, prefix="base_model.")
    inputs = minilm_batch()
    with torch.no_grad():
        expected = theirs.eval()(**torch_inputs(*inputs)).logits.numpy()
    np.testing.assert_allclose(ours.eval()(*inputs).logits.numpy(), expected, rtol=0, atol=1e-5)
    assert ours.get_nb_trainable_parameters()[0] == theirs.get_nb_trainable_parameters()[0] \
        == 5 * 384 + 384 * 2 + 2


# --- LoRA: the start, merging, the frozen base ---------------------------------------------------

def test_lora_starts_as_the_base_model_and_wraps_every_target(base_dir):
    expected = logits(base_model(base_dir))
    model = get_peft_model(base_model(base_dir), LoRAConfig(r=4, lora_alpha=16,
                                                            target_modules=("query", "dense")))
    np.testing.assert_array_equal(logits(model), expected)  # B = 0: exactly the base
    layer = model.base_model.bert.encoder.layer[1]
    pooler = model.base_model.bert.pooler
    for wrapped in (layer.attention.self.query, layer.attention.output.dense,
                    layer.intermediate.dense, layer.output.dense, pooler.dense):
        assert isinstance(wrapped, LoRALinear) and wrapped.scaling == 16 / 4
        assert wrapped.lora_A.weight.shape == (4, wrapped.base_layer.in_features)
        assert np.abs(wrapped.lora_A.weight.numpy()).max() <= 1 / np.sqrt(
            wrapped.base_layer.in_features)  # Kaiming-uniform, a = √5
        assert not wrapped.lora_B.weight.numpy().any()
    assert type(layer.attention.self.key) is nn.Linear  # not a target


def test_lora_linear_is_the_formula_and_drops_out_its_branch_only():
    minigrad.manual_seed(0)
    base = nn.Linear(6, 5)
    layer = LoRALinear(base, r=2, lora_alpha=3.0, lora_dropout=0.5)
    x = minigrad.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    np.testing.assert_array_equal(layer(x).numpy(), base(x).numpy())  # training mode, B = 0
    layer.lora_B.weight.data = np.random.default_rng(1).standard_normal((5, 2)).astype(
        np.float32)
    a, b = layer.lora_A.weight.numpy(), layer.lora_B.weight.numpy()
    expected = base(x).numpy() + 1.5 * (x.numpy() @ a.T @ b.T)  # (4, 5)
    np.testing.assert_allclose(layer.eval()(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert np.abs(layer.train()(x).numpy() - expected).max() > 1e-3  # dropout on the branch


def test_merge_and_unmerge_are_exact(base_dir):
    """W ← W + (α/r)·B·A and back, in float64: the merged model computes the same logits."""
    model = get_peft_model(base_model(base_dir, dtype="float64"),
                           LoRAConfig(target_modules=("query", "value", "dense")))
    perturb(model)
    before = logits(model)
    layer = model.base_model.bert.encoder.layer[0].attention.self.value
    weight = layer.base_layer.weight.numpy().copy()
    delta = layer.delta_weight().numpy()  # (out, in)
    np.testing.assert_allclose(delta, (layer.lora_B.weight.numpy() @ layer.lora_A.weight.numpy())
                               * layer.scaling, rtol=1e-12)
    assert np.linalg.matrix_rank(delta) == 8
    model.merge_adapter()
    np.testing.assert_array_equal(layer.base_layer.weight.numpy(), weight + delta)
    np.testing.assert_allclose(logits(model), before, rtol=0, atol=1e-12)
    model.merge_adapter()  # a second merge changes nothing
    np.testing.assert_array_equal(layer.base_layer.weight.numpy(), weight + delta)
    model.unmerge_adapter()
    np.testing.assert_allclose(layer.base_layer.weight.numpy(), weight, rtol=0, atol=1e-15)
    np.testing.assert_allclose(logits(model), before, rtol=0, atol=1e-12)


def test_merge_and_unload_gives_plain_linear_layers_and_the_same_outputs(base_dir):
    model = get_peft_model(base_model(base_dir), LoRAConfig(target_modules=("query", "dense")))
    perturb(model)
    before = logits(model)
    plain = model.merge_and_unload()
    assert not any(isinstance(m, LoRALinear) for m in plain.modules())
    assert all(type(m) is nn.Linear for n, m in plain.named_modules()
               if n.endswith(("query", "dense")))
    assert set(plain.state_dict()) == set(base_model(base_dir).state_dict())
    np.testing.assert_allclose(logits(plain), before, rtol=0, atol=1e-5)


def test_the_base_is_frozen_and_the_head_and_lora_train(base_dir):
    model = get_peft_model(base_model(base_dir), LoRAConfig()).train()
    assert trainable_names(model) == {n for n, _ in model.named_parameters()
                                      if ".lora_" in n or n.startswith("base_model.classifier.")}
    ids, mask, token_types = batch()
    model(ids, mask, token_types, labels=np.array([0, 1, 1])).loss.backward()
    for name, p in model.named_parameters():
        if name in trainable_names(model):
            assert p.grad is not None, name
        else:
            assert p.grad is None, name
    lora_b = model.base_model.bert.encoder.layer[0].attention.self.query.lora_B.weight
    assert np.abs(lora_b.grad).max() > 0
    assert np.abs(model.base_model.classifier.weight.grad).max() > 0


# --- adapters, prompt tuning, BitFit ------------------------------------------------------------

@pytest.mark.parametrize("config", [BitFitConfig(), AdapterConfig(adapter_size=8)],
                         ids=["bitfit", "adapter"])
def test_the_base_weights_that_train_get_the_full_models_gradients(base_dir, config):
    """Freezing the rest changes no gradient of what trains (biases, LayerNorms, the head)."""
    ids, mask, token_types = batch()
    labels = np.array([0, 1, 1])
    full = base_model(base_dir, dtype="float64")
    full(ids, mask, token_types, labels=labels).loss.backward()
    expected = {name: p.grad for name, p in full.named_parameters()}
    model = get_peft_model(base_model(base_dir, dtype="float64"), config)
    model(ids, mask, token_types, labels=labels).loss.backward()
    compared = 0
    for name, p in model.named_parameters():
        if p.requires_grad and ".adapter_" not in name:
            base = name.removeprefix("base_model.").replace(".base_layer.", ".")
            np.testing.assert_allclose(p.grad, expected[base], rtol=1e-10, atol=1e-14,
                                       err_msg=name)
            compared += 1
    assert compared > 10

def test_adapters_start_as_the_base_model_after_each_output_projection(base_dir):
    expected = logits(base_model(base_dir))
    model = get_peft_model(base_model(base_dir), AdapterConfig(adapter_size=16))
    np.testing.assert_array_equal(logits(model), expected)
    for layer in model.base_model.bert.encoder.layer:
        assert isinstance(layer.attention.output.dense, BottleneckAdapter)
        assert isinstance(layer.output.dense, BottleneckAdapter)
        assert type(layer.intermediate.dense) is nn.Linear
        assert type(layer.attention.self.query) is nn.Linear
    names = trainable_names(model)
    assert all(".adapter_" in n or "LayerNorm." in n or ".classifier." in n for n in names)
    layer_norms = (1 + 2 * LAYERS) * 2 * H
    assert model.get_nb_trainable_parameters()[0] == \
        LAYERS * 2 * (2 * 16 * H + 16 + H) + layer_norms + H * 2 + 2

    model.train()
    ids, mask, token_types = batch()
    model(ids, mask, token_types, labels=np.array([0, 1, 1])).loss.backward()
    assert all((p.grad is not None) == (n in names) for n, p in model.named_parameters())
    up = model.base_model.bert.encoder.layer[0].output.dense.adapter_up
    assert np.abs(up.weight.grad).max() > 0


def test_prompt_tuning_extends_the_mask_and_shapes(base_dir, monkeypatch):
    model = get_peft_model(base_model(base_dir), PromptTuningConfig(num_virtual_tokens=4))
    bert = model.base_model.bert
    seen = {}
    forward = bert.forward

    def spy(input_ids, attention_mask, token_type_ids, head_mask=None, inputs_embeds=None):
        seen.update(input_ids=input_ids, mask=attention_mask, types=token_type_ids,
                    embeds=inputs_embeds.numpy())
        return forward(input_ids, attention_mask, token_type_ids, head_mask=head_mask,
                       inputs_embeds=inputs_embeds)

    monkeypatch.setattr(bert, "forward", spy)
    ids, mask, token_types = batch()  # (3, 7)
    assert model(ids, mask, token_types).logits.shape == (3, 2)
    assert seen["input_ids"] is None and seen["embeds"].shape == (3, 4 + 7, H)
    np.testing.assert_array_equal(seen["mask"], np.concatenate([np.ones((3, 4), int), mask], 1))
    np.testing.assert_array_equal(seen["types"],
                                  np.concatenate([np.zeros((3, 4), int), token_types], 1))
    np.testing.assert_array_equal(seen["embeds"][:, :4], np.broadcast_to(
        model.prompt_embeddings.numpy(), (3, 4, H)))
    np.testing.assert_array_equal(seen["embeds"][:, 4:],
                                  bert.embeddings.word_embeddings(ids).numpy())
    monkeypatch.undo()

    # the padded row gives what it gives alone, unpadded: padding masked, the prompt attended
    alone = model(ids[-1:, :4], mask[-1:, :4], token_types[-1:, :4]).logits.numpy()
    np.testing.assert_allclose(model(ids, mask, token_types).logits.numpy()[-1:], alone,
                               rtol=0, atol=1e-5)
    assert trainable_names(model) == {"prompt_embeddings", "base_model.classifier.weight",
                                      "base_model.classifier.bias"}
    model.train()
    model(ids, mask, token_types, labels=np.array([0, 1, 1])).loss.backward()
    assert np.abs(model.prompt_embeddings.grad).max() > 0
    assert all(p.grad is None for n, p in model.named_parameters()
               if n not in trainable_names(model))


def test_prompt_tuning_for_tags_keeps_one_logit_row_per_token(base_dir):
    model = get_peft_model(base_model(base_dir, task=TOKEN, num_labels=3),
                           PromptTuningConfig(num_virtual_tokens=4))
    ids, mask, token_types = batch()
    labels = np.random.default_rng(0).integers(0, 3, ids.shape)
    labels[-1, 4:] = -100
    out = model(ids, mask, token_types, labels=labels)
    assert out.logits.shape == (3, 7, 3)
    z = out.logits.numpy().astype(np.float64)[labels != -100]  # (n, 3)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    expected = -log_p[np.arange(len(z)), labels[labels != -100]].mean()
    assert out.loss.item() == pytest.approx(expected, abs=1e-5)


def test_bitfit_trains_only_the_biases_and_the_head(base_dir):
    expected = logits(base_model(base_dir))
    model = get_peft_model(base_model(base_dir), BitFitConfig())
    np.testing.assert_array_equal(logits(model), expected)
    names = trainable_names(model)
    assert names == {n for n, _ in model.named_parameters()
                     if n.endswith(".bias") or n.startswith("base_model.classifier.")}
    assert "base_model.bert.encoder.layer.0.output.LayerNorm.bias" in names
    assert "base_model.bert.encoder.layer.0.output.LayerNorm.weight" not in names
    perturb(model)
    before = logits(model)
    np.testing.assert_array_equal(logits(model.merge_and_unload()), before)


# --- saving and loading ------------------------------------------------------------------------

CONFIGS = {"lora": lambda base: LoRAConfig(base_model_name_or_path=base),
           "adapter": lambda base: AdapterConfig(adapter_size=8, base_model_name_or_path=base),
           "prompt": lambda base: PromptTuningConfig(num_virtual_tokens=3,
                                                     base_model_name_or_path=base),
           "bitfit": lambda base: BitFitConfig(base_model_name_or_path=base)}


def save_adapter(base, vocab, out, method="lora"):
    """A PEFT classifier on ``base`` with random trainable weights, saved to ``out``."""
    model = get_peft_model(base_model(base), CONFIGS[method](str(base)))
    perturb(model)
    classifier = Classifier(model.eval(), BertTokenizer(vocab), ["neg", "pos"], SEQ, 16)
    return classifier, classifier.save(out)


@pytest.mark.parametrize("method", list(CONFIGS))
def test_an_adapter_directory_round_trips_and_holds_only_the_trainable_weights(
        base_dir, vocab, tmp_path, method):
    classifier, out = save_adapter(base_dir, vocab, tmp_path / "adapter", method)
    assert not (out / "model.safetensors").exists()
    assert {"config.json", "vocab.txt", ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE} <= \
        {p.name for p in out.iterdir()}
    saved = checkpoint.load_safetensors(out / ADAPTER_WEIGHTS_FILE)
    model = classifier.model
    assert set(saved) == {model._file_key(n) for n in trainable_names(model)}
    settings = json.loads((out / ADAPTER_CONFIG_FILE).read_text())
    assert settings["base_model_name_or_path"] == str(base_dir)
    assert settings["peft_type"] == model.peft_config.peft_type and settings["task_type"] == \
        "SEQ_CLS"

    loaded = Classifier.load(out)
    assert isinstance(loaded.model, PeftModel) and loaded.model.peft_config == model.peft_config
    assert loaded.label_names == ["neg", "pos"] and loaded.max_length == 16
    texts = ["the movie was good", "a plot ! bad bad", "fine"]
    np.testing.assert_array_equal(loaded.logits(texts), classifier.logits(texts))


def test_a_base_without_a_pooler_saves_the_pooler_it_initialised(tmp_path, vocab):
    """A masked-LM checkpoint has no pooler: the classifier's pooler starts at random and stays
    frozen, so the adapter keeps it (else each load would draw another)."""
    base = save_base(tmp_path / "mlm", vocab, head=BertForMaskedLM)
    classifier, out = save_adapter(base, vocab, tmp_path / "adapter")
    saved = checkpoint.load_safetensors(out / ADAPTER_WEIGHTS_FILE)
    assert {"base_model.model.bert.pooler.dense.weight",
            "base_model.model.bert.pooler.dense.bias"} <= set(saved)
    minigrad.manual_seed(123)  # another draw for the fresh pooler, overwritten by the adapter's
    texts = ["the film was great"]
    np.testing.assert_array_equal(Classifier.load(out).logits(texts), classifier.logits(texts))


def test_a_missing_base_is_refused_naming_it(tmp_path, vocab, base_dir, capsys):
    base = tmp_path / "base"
    shutil.copytree(base_dir, base)
    _, out = save_adapter(base, vocab, tmp_path / "adapter")
    shutil.rmtree(base)
    with pytest.raises(CheckpointError, match=re.escape(f"base model {base} is not there")):
        Classifier.load(out)
    assert cli.main(["predict", "--model", str(out), "good"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(base / "model.safetensors") in err


def test_a_base_of_other_shapes_is_refused_naming_the_path_and_the_shapes(tmp_path, vocab,
                                                                         base_dir):
    base = tmp_path / "base"
    shutil.copytree(base_dir, base)
    _, out = save_adapter(base, vocab, tmp_path / "adapter")
    save_base(base, vocab, hidden_size=64, intermediate_size=256)  # replaced in place
    with pytest.raises(CheckpointError) as error:
        Classifier.load(out)
    message = str(error.value)
    assert str(out / ADAPTER_WEIGHTS_FILE) in message and str(base) in message
    assert "query.lora_A.weight (8, 128) in the adapter, (8, 64) in the base model" in message


def test_a_base_whose_weights_changed_is_refused(tmp_path, vocab, base_dir):
    base = tmp_path / "base"
    shutil.copytree(base_dir, base)
    _, out = save_adapter(base, vocab, tmp_path / "adapter")
    save_base(base, vocab, seed=7)  # the same shapes, other weights
    with pytest.raises(CheckpointError, match=r"not the base model the adapter .* sha256"):
        Classifier.load(out)


# --- bad input -----------------------------------------------------------------------------------

def test_lora_on_a_module_that_does_not_exist_names_the_available_ones(base_dir):
    with pytest.raises(ValueError, match=r"target module 'qkv' matches no Linear layer of "
                                         r"BertForSequenceClassification; its Linear layers are "
                                         r"named classifier, dense, key, query, value"):
        get_peft_model(base_model(base_dir), LoRAConfig(target_modules=("query", "qkv")))


@pytest.mark.parametrize("make, message", [
    (lambda: LoRAConfig(r=0), "the rank r must be a positive integer, got 0"),
    (lambda: LoRAConfig(lora_dropout=1.0), "lora_dropout must be in"),
    (lambda: LoRAConfig(target_modules=()), "target_modules is empty"),
    (lambda: AdapterConfig(adapter_size=0), "adapter_size must be a positive integer"),
    (lambda: PromptTuningConfig(prompt_tuning_init="TEXT"), "prompt_tuning_init must be one"),
])
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_misuses_of_a_wrapped_model_are_refused(base_dir):
    model = get_peft_model(base_model(base_dir), LoRAConfig())
    with pytest.raises(ValueError, match="already has a PEFT method"):
        get_peft_model(model.base_model, BitFitConfig())
    with pytest.raises(ValueError, match="no module named 'score'"):
        get_peft_model(base_model(base_dir), BitFitConfig(modules_to_save=("score",)))
    for config in (AdapterConfig(), PromptTuningConfig()):
        with pytest.raises(ValueError, match="cannot be folded into the base weights"):
            get_peft_model(base_model(base_dir), config).merge_and_unload()
    with pytest.raises(ValueError, match="base_model_name_or_path is not set"):
        model.save_pretrained("never-written")


# --- minigrad finetune --peft and minigrad predict ---------------------------------------------

def reviews(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        adjective = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        rows.append({"text": f"The {rng.choice(['movie', 'film'])} was {adjective}.",
                     "label": label})
    return rows


@pytest.fixture
def train_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n"
                                             for r in reviews(40)), encoding="utf-8")
    return path


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_finetune_peft_lora_writes_an_adapter_that_predict_loads(tmp_path, base_dir, train_csv,
                                                                capsys):
    flags = ["finetune", "--train", train_csv, "--model", base_dir, "--peft", "lora",
             "--lora-r", "4", "--lora-target-modules", "query", "value", "dense", "--lr", "3e-3",
             "--epochs", "2", "--max-length", "12", "--batch-size", "16", "--examples", "0"]
    code, stdout, err = run(capsys, *flags, "--out", tmp_path / "adapter")
    assert code == 0, err
    out = tmp_path / "adapter"
    assert {ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE} <= {p.name for p in out.iterdir()}
    assert not (out / "model.safetensors").exists() and ADAPTER_WEIGHTS_FILE in stdout
    assert re.search(r"trainable parameters: [\d,]+ of [\d,]+ \(\d+\.\d\d%\)", stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    lora = LAYERS * (2 * 4 * (H + H) + 4 * (H + 512) + 4 * (512 + H) + 4 * (H + H)) \
        + 4 * (H + H)  # query, value, three dense per layer; the pooler's dense
    assert metrics["parameters"]["trainable"] == lora + H * 2 + 2
    assert metrics["config"]["peft"] == "lora" and metrics["config"]["lr"] == 3e-3

    code, stdout, err = run(capsys, "predict", "--model", out, "--json", "The film was good.",
                            "The movie was awful.")
    assert code == 0, err
    adapter_scores = [r["scores"]["pos"] for r in json.loads(stdout)]

    # --merge: the same run, saved as a plain model that loads as any fine-tuned one
    code, _, err = run(capsys, *flags, "--merge", "--out", tmp_path / "merged")
    assert code == 0, err
    merged = tmp_path / "merged"
    assert (merged / "model.safetensors").is_file()
    assert not (merged / ADAPTER_CONFIG_FILE).exists()
    assert type(Classifier.load(merged).model).__name__ == "BertForSequenceClassification"
    code, stdout, err = run(capsys, "predict", "--model", merged, "--json", "The film was good.",
                            "The movie was awful.")
    assert code == 0, err
    assert [r["scores"]["pos"] for r in json.loads(stdout)] == pytest.approx(adapter_scores,
                                                                            abs=1e-5)


def test_peft_on_a_distilled_student_is_refused():
    """An adapter names a base on disk; a student made during the run has none."""
    with pytest.raises(ValueError, match="a student of student_layers is a new model"):
        FinetuneConfig(peft="lora", student_layers=3).check()


def test_finetune_peft_trains_only_the_trainable_weights(tmp_path, base_dir, monkeypatch):
    """The optimizer gets the LoRA weights and the head; the base stays bit for bit."""
    import minigrad.finetune as recipe

    given = []

    class Spy(recipe.AdamW):
        def __init__(self, groups, **kwargs):
            given.extend(p for group in groups for p in group["params"])
            super().__init__(groups, **kwargs)

    monkeypatch.setattr(recipe, "AdamW", Spy)
    rows = reviews(40)
    train = TextExamples([r["text"] for r in rows], [r["label"] for r in rows])
    result = finetune(train, config=FinetuneConfig(model=str(base_dir), peft="lora", epochs=1,
                                                   max_length=12, progress=False))
    model = result.classifier.model
    assert {id(p) for p in given} == {id(p) for p in model.parameters() if p.requires_grad}
    assert len(given) == LAYERS * 4 + 2
    base = base_model(base_dir).state_dict()
    for name, array in model.base_model.state_dict().items():
        if "lora_" not in name and not name.startswith("classifier."):
            np.testing.assert_array_equal(array, base[name.replace(".base_layer.", ".")])


@pytest.mark.parametrize("flags, message", [
    (["--model", "bert-tiny", "--peft", "lora"],
     "PEFT (lora) trains a few weights on top of a pretrained model, but bert-tiny starts "
     "from random weights"),
    (["--peft", "adapter", "--merge"], "merge folds LoRA or BitFit into the model's weights; it "
                                       "does not apply to adapter"),
    (["--merge"], "it does not apply to full fine-tuning"),
    (["--peft", "lora", "--lora-target-modules", "qkv"],
     "target module 'qkv' matches no Linear layer"),
    (["--peft", "lora", "--lora-r", "0"], "the rank r must be a positive integer"),
    (["--peft", "prompt", "--num-virtual-tokens", "500", "--max-length", "16"],
     "max_length 516 is above the position limit"),
])
def test_bad_peft_flags_are_one_line_and_exit_1(tmp_path, base_dir, train_csv, capsys, flags,
                                                message):
    model = [] if "--model" in flags else ["--model", base_dir]
    code, _, err = run(capsys, "finetune", "--train", train_csv, *model, *flags,
                       "--out", tmp_path / "run", "--epochs", "1")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and message in err, err
