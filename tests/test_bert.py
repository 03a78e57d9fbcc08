"""The BERT encoder and its three heads against a PyTorch reference written below.

The reference is plain ``torch.nn.functional`` code (not ``transformers``) that reads its weights
from a dict keyed by Hugging Face's parameter names, filled from minigrad's own model. Both run in
float64 with dropout off; outputs, losses and the gradient of every parameter must agree.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad import nn
from minigrad.models import (
    NAMED_CONFIGS,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from minigrad.models.bert import BertIntermediate

TOL = {"rtol": 1e-5, "atol": 1e-8}

CONFIG = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=24, max_position_embeddings=10, type_vocab_size=2,
                    num_labels=3)

# Three sequences of length 7: the first unpadded, the others padded at the end (id 0).
INPUT_IDS = np.array([[2, 11, 7, 19, 33, 5, 3],
                      [2, 45, 8, 3, 0, 0, 0],
                      [2, 14, 3, 27, 9, 0, 0]])
ATTENTION_MASK = (INPUT_IDS != 0).astype(np.int64)
TOKEN_TYPE_IDS = np.array([[0, 0, 0, 1, 1, 1, 1],
                           [0, 0, 1, 1, 0, 0, 0],
                           [0, 0, 0, 1, 1, 0, 0]])


# --- the PyTorch reference -------------------------------------------------------------------
def ref_encoder(w, cfg, ids, mask, token_types):
    """BertModel's last hidden state (B, S, H) from weights ``w`` named as in Hugging Face."""
    b, s = ids.shape
    h, a = cfg.hidden_size, cfg.num_attention_heads
    d = h // a

    def linear(name, x):
        return TF.linear(x, w[name + ".weight"], w[name + ".bias"])

    def layer_norm(name, x):
        return TF.layer_norm(x, (h,), w[name + ".weight"], w[name + ".bias"], cfg.layer_norm_eps)

    x = (TF.embedding(ids, w["bert.embeddings.word_embeddings.weight"],
                      padding_idx=cfg.pad_token_id)
         + w["bert.embeddings.position_embeddings.weight"][:s]
         + TF.embedding(token_types, w["bert.embeddings.token_type_embeddings.weight"]))
    x = layer_norm("bert.embeddings.LayerNorm", x)
    additive_mask = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min
    for i in range(cfg.num_hidden_layers):
        pre = f"bert.encoder.layer.{i}."
        q, k, v = (linear(pre + "attention.self." + n, x).view(b, s, a, d).transpose(1, 2)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + additive_mask
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = layer_norm(pre + "attention.output.LayerNorm",
                       x + linear(pre + "attention.output.dense", context))
        u = TF.gelu(linear(pre + "intermediate.dense", x))
        x = layer_norm(pre + "output.LayerNorm", x + linear(pre + "output.dense", u))
    return x


def ref_pooler(w, hidden):
    return torch.tanh(TF.linear(hidden[:, 0], w["bert.pooler.dense.weight"],
                                w["bert.pooler.dense.bias"]))


def ref_mlm_logits(w, cfg, hidden, decoder_weight):
    t = TF.gelu(TF.linear(hidden, w["cls.predictions.transform.dense.weight"],
                          w["cls.predictions.transform.dense.bias"]))
    t = TF.layer_norm(t, (cfg.hidden_size,), w["cls.predictions.transform.LayerNorm.weight"],
                      w["cls.predictions.transform.LayerNorm.bias"], cfg.layer_norm_eps)
    return TF.linear(t, decoder_weight, w["cls.predictions.bias"])


# --- helpers ---------------------------------------------------------------------------------
def float64_model(cls, cfg=CONFIG, seed=0, **kwargs):
    """A model in eval mode whose every weight is redrawn from N(0, 0.5²) so that attention is
    far from uniform and LayerNorm far from the identity (the 0.02 init would hide errors)."""
    mg.manual_seed(seed)
    model = cls(cfg, **kwargs).double().eval()
    rng = np.random.default_rng(seed)
    for _, p in model.named_parameters():
        p.data[...] = rng.normal(0.0, 0.5, p.shape)
    return model


def torch_params(model, prefix=""):
    """The model's parameters as torch leaves, one per Parameter (tied ones under the first
    name), keyed by their names with ``prefix`` added (the reference's names are a head's)."""
    return {prefix + name: torch.tensor(p.data, requires_grad=True)
            for name, p in model.named_parameters()}


def batch():
    return (torch.from_numpy(INPUT_IDS), torch.from_numpy(ATTENTION_MASK),
            torch.from_numpy(TOKEN_TYPE_IDS))


def assert_grads_match(model, w, prefix=""):
    names = [name for name, _ in model.named_parameters()]
    assert [prefix + n for n in names] == list(w)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad, w[prefix + name].grad.numpy(), err_msg=name, **TOL)


# --- the encoder ---------------------------------------------------------------------------------
def test_encoder_forward_and_backward_match_torch_with_padding_and_segments():
    model = float64_model(BertModel)
    w = torch_params(model, prefix="bert.")
    out = model(INPUT_IDS, attention_mask=ATTENTION_MASK, token_type_ids=TOKEN_TYPE_IDS)
    hidden = ref_encoder(w, CONFIG, *batch())
    pooled = ref_pooler(w, hidden)
    assert out.last_hidden_state.shape == (3, 7, 16) and out.pooler_output.shape == (3, 16)
    np.testing.assert_allclose(out.last_hidden_state.data, hidden.detach().numpy(), **TOL)
    np.testing.assert_allclose(out.pooler_output.data, pooled.detach().numpy(), **TOL)

    rng = np.random.default_rng(1)
    g_hidden, g_pooled = rng.standard_normal((3, 7, 16)), rng.standard_normal((3, 16))
    ((out.last_hidden_state * g_hidden).sum() + (out.pooler_output * g_pooled).sum()).backward()
    ((hidden * torch.from_numpy(g_hidden)).sum()
     + (pooled * torch.from_numpy(g_pooled)).sum()).backward()
    assert_grads_match(model, w, prefix="bert.")
    pad_row = model.embeddings.word_embeddings.weight.grad[CONFIG.pad_token_id]
    np.testing.assert_array_equal(pad_row, 0)  # padding_idx, as in Hugging Face


@pytest.mark.parametrize(("hidden_act", "act"), [
    ("gelu", TF.gelu), ("gelu_new", lambda u: TF.gelu(u, approximate="tanh")),
    ("relu", TF.relu)])
def test_the_feed_forward_calls_every_activation_the_same_way(hidden_act, act):
    """act(h·W_1 + b_1) for each hidden_act: the layer hands the bias to the activation, which
    adds it in its own op, without asking which activation it is."""
    config = BertConfig(**{**CONFIG.to_dict(), "hidden_act": hidden_act})
    layer = float64_model(BertIntermediate, config)
    w = torch_params(layer)
    h = np.random.default_rng(2).standard_normal((3, 7, 16))
    out = layer(mg.tensor(h))
    ref = act(TF.linear(torch.from_numpy(h), w["dense.weight"], w["dense.bias"]))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    g = np.random.default_rng(3).standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    assert_grads_match(layer, w)


def test_padded_positions_do_not_change_the_real_tokens_outputs():
    model = float64_model(BertModel)
    out = model(INPUT_IDS, attention_mask=ATTENTION_MASK).last_hidden_state.data
    other_padding = np.where(ATTENTION_MASK == 1, INPUT_IDS, 17)  # any ids behind the mask
    again = model(other_padding, attention_mask=ATTENTION_MASK).last_hidden_state.data
    real = ATTENTION_MASK == 1
    np.testing.assert_allclose(again[real], out[real], rtol=1e-12, atol=1e-12)
    assert not np.allclose(again[~real], out[~real])
    unmasked = model(other_padding).last_hidden_state.data  # now the padding is attended to
    assert not np.allclose(unmasked[real], out[real])


def test_default_mask_and_segments_are_all_ones_and_all_zeros():
    model = float64_model(BertModel)
    default = model(INPUT_IDS)
    explicit = model(INPUT_IDS, np.ones_like(INPUT_IDS), np.zeros_like(INPUT_IDS))
    np.testing.assert_array_equal(default.last_hidden_state.data,
                                  explicit.last_hidden_state.data)
    tensors = model(mg.tensor(INPUT_IDS), mg.tensor(np.ones_like(INPUT_IDS)))
    np.testing.assert_array_equal(tensors.last_hidden_state.data, default.last_hidden_state.data)


def test_inputs_embeds_take_the_place_of_the_word_rows():
    """Hugging Face's inputs_embeds: the word-embedding rows given directly (prompt tuning
    prepends vectors there), with the same positions, segments and mask."""
    model = float64_model(BertForSequenceClassification)
    words = model.bert.embeddings.word_embeddings(INPUT_IDS)  # (B, S, H)
    by_ids = model(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS).logits.data
    by_rows = model(None, ATTENTION_MASK, TOKEN_TYPE_IDS, inputs_embeds=words).logits.data
    np.testing.assert_array_equal(by_rows, by_ids)
    with pytest.raises(ValueError, match="give either input_ids or inputs_embeds, not both"):
        model.bert(INPUT_IDS, inputs_embeds=words)
    with pytest.raises(ValueError, match="not neither"):
        model.bert()
    with pytest.raises(ValueError, match=r"inputs_embeds must be \(batch, seq_len, \d+\)"):
        model.bert(inputs_embeds=words[0])


def test_dropout_acts_in_train_mode_only():
    model = float64_model(BertModel).train()
    a = model(INPUT_IDS, ATTENTION_MASK).last_hidden_state.data
    b = model(INPUT_IDS, ATTENTION_MASK).last_hidden_state.data
    assert not np.allclose(a, b)
    model.eval()
    a = model(INPUT_IDS, ATTENTION_MASK).last_hidden_state.data
    b = model(INPUT_IDS, ATTENTION_MASK).last_hidden_state.data
    np.testing.assert_array_equal(a, b)


def test_model_without_pooler_has_no_pooler_output_or_weights():
    model = BertModel(CONFIG, add_pooling_layer=False)
    assert model(INPUT_IDS).pooler_output is None
    assert not any(name.startswith("pooler") for name, _ in model.named_parameters())


# --- the heads -------------------------------------------------------------------------------
def test_sequence_classification_logits_loss_and_grads_match_torch():
    model = float64_model(BertForSequenceClassification)
    w = torch_params(model)
    labels = np.array([2, 0, 1])
    out = model(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS, labels=labels)
    pooled = ref_pooler(w, ref_encoder(w, CONFIG, *batch()))
    logits = TF.linear(pooled, w["classifier.weight"], w["classifier.bias"])
    loss = TF.cross_entropy(logits, torch.from_numpy(labels))
    assert out.logits.shape == (3, 3)
    np.testing.assert_allclose(out.logits.data, logits.detach().numpy(), **TOL)
    np.testing.assert_allclose(out.loss.item(), loss.item(), **TOL)
    out.loss.backward()
    loss.backward()
    assert_grads_match(model, w)
    assert model(INPUT_IDS).loss is None


def test_sequence_regression_with_one_label_uses_mean_squared_error_as_hugging_face():
    cfg = BertConfig(**(CONFIG.to_dict() | {"num_labels": 1}))
    model = float64_model(BertForSequenceClassification, cfg)
    w = torch_params(model)
    targets = np.array([0.5, -1.0, 2.0])
    out = model(INPUT_IDS, ATTENTION_MASK, labels=targets)
    ids, mask, _ = batch()
    pooled = ref_pooler(w, ref_encoder(w, cfg, ids, mask, torch.zeros_like(ids)))
    logits = TF.linear(pooled, w["classifier.weight"], w["classifier.bias"])
    loss = TF.mse_loss(logits.view(-1), torch.from_numpy(targets))
    np.testing.assert_allclose(out.loss.item(), loss.item(), **TOL)
    out.loss.backward()
    loss.backward()
    assert_grads_match(model, w)


def test_token_classification_ignores_minus_100_labels_and_matches_torch():
    model = float64_model(BertForTokenClassification)
    w = torch_params(model)
    labels = np.where(ATTENTION_MASK == 1, np.arange(21).reshape(3, 7) % 3, -100)
    labels[0, 0] = -100  # e.g. [CLS]
    out = model(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS, labels=labels)
    hidden = ref_encoder(w, CONFIG, *batch())
    logits = TF.linear(hidden, w["classifier.weight"], w["classifier.bias"])
    loss = TF.cross_entropy(logits.view(-1, 3), torch.from_numpy(labels).view(-1))
    assert out.logits.shape == (3, 7, 3)
    np.testing.assert_allclose(out.logits.data, logits.detach().numpy(), **TOL)
    np.testing.assert_allclose(out.loss.item(), loss.item(), **TOL)
    out.logits.retain_grad()
    out.loss.backward()
    loss.backward()
    assert_grads_match(model, w)
    ignored = labels == -100
    assert ignored.sum() == 6
    np.testing.assert_array_equal(out.logits.grad[ignored], 0)  # no gradient from them
    assert (np.abs(out.logits.grad[~ignored]).sum(-1) > 0).all()


def test_masked_lm_matches_torch_and_the_tied_decoder_grad_is_the_sum_of_both_uses():
    model = float64_model(BertForMaskedLM)
    embedding = model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.weight is embedding  # one Parameter, two names
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias

    w = torch_params(model)
    # The reference keeps the two uses apart: a second leaf with the same values decodes.
    decoder = torch.tensor(embedding.data, requires_grad=True)
    labels = np.full_like(INPUT_IDS, -100)
    labels[0, 2], labels[1, 1], labels[2, 4] = 7, 45, 9
    out = model(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS, labels=labels)
    logits = ref_mlm_logits(w, CONFIG, ref_encoder(w, CONFIG, *batch()), decoder)
    loss = TF.cross_entropy(logits.view(-1, CONFIG.vocab_size), torch.from_numpy(labels).view(-1))
    assert out.logits.shape == (3, 7, 50)
    np.testing.assert_allclose(out.logits.data, logits.detach().numpy(), **TOL)
    np.testing.assert_allclose(out.loss.item(), loss.item(), **TOL)
    out.loss.backward()
    loss.backward()

    lookup_grad = w["bert.embeddings.word_embeddings.weight"].grad.numpy()
    decoder_grad = decoder.grad.numpy()
    assert np.abs(lookup_grad).max() > 0 and np.abs(decoder_grad).max() > 0
    np.testing.assert_allclose(embedding.grad, lookup_grad + decoder_grad, **TOL)
    w["bert.embeddings.word_embeddings.weight"].grad += decoder.grad
    assert_grads_match(model, w)


def test_masked_lm_loads_a_checkpoint_that_names_the_tied_weight_once():
    mg.manual_seed(0)
    source = BertForMaskedLM(CONFIG)
    state = {k: v.copy() for k, v in source.state_dict().items()}
    del state["cls.predictions.decoder.weight"], state["cls.predictions.decoder.bias"]
    target = BertForMaskedLM(CONFIG)
    assert target.load_state_dict(state).missing_keys == []
    np.testing.assert_array_equal(target.cls.predictions.decoder.weight.data,
                                  source.bert.embeddings.word_embeddings.weight.data)


def test_heads_return_no_loss_without_labels():
    for cls in (BertForTokenClassification, BertForMaskedLM):
        out = cls(CONFIG)(INPUT_IDS, ATTENTION_MASK)
        assert out.loss is None and out.logits.shape[:2] == (3, 7)


# --- names, sizes, config --------------------------------------------------------------------
def hf_encoder_names(num_layers):
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
             "embeddings.LayerNorm.bias"]
    for i in range(num_layers):
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "attention.output.LayerNorm",
                     "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
    return names


def test_parameter_names_are_hugging_faces():
    encoder = hf_encoder_names(CONFIG.num_hidden_layers)
    pooler = ["pooler.dense.weight", "pooler.dense.bias"]
    assert list(BertModel(CONFIG).state_dict()) == encoder + pooler
    assert list(BertForSequenceClassification(CONFIG).state_dict()) == (
        ["bert." + n for n in encoder + pooler] + ["classifier.weight", "classifier.bias"])
    assert list(BertForTokenClassification(CONFIG).state_dict()) == (
        ["bert." + n for n in encoder] + ["classifier.weight", "classifier.bias"])
    assert list(BertForMaskedLM(CONFIG).state_dict()) == ["bert." + n for n in encoder] + [
        "cls.predictions.bias", "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias", "cls.predictions.decoder.weight",
        "cls.predictions.decoder.bias"]


@pytest.mark.parametrize(("name", "layers", "hidden", "heads", "ffn"),
                         [("bert-tiny", 2, 128, 2, 512), ("bert-mini", 4, 256, 4, 1024)])
def test_named_configs_give_the_stated_sizes(name, layers, hidden, heads, ffn):
    cfg = BertConfig.named(name, vocab_size=1000)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
            cfg.intermediate_size, cfg.vocab_size) == (layers, hidden, heads, ffn, 1000)
    assert NAMED_CONFIGS[name]["hidden_size"] == hidden
    model = BertModel(cfg)
    state = model.state_dict()
    assert len(model.encoder.layer) == layers
    assert state["encoder.layer.0.intermediate.dense.weight"].shape == (ffn, hidden)
    assert model.encoder.layer[0].attention.self.num_attention_heads == heads
    per_layer = 4 * (hidden * hidden + hidden) + 2 * hidden * ffn + ffn + hidden + 4 * hidden
    embeddings = (1000 + 512 + 2) * hidden + 2 * hidden
    assert model.num_parameters() == embeddings + layers * per_layer + hidden * hidden + hidden


def test_config_round_trips_and_reads_a_hugging_face_config_json():
    cfg = BertConfig.named("bert-tiny", vocab_size=321, num_labels=5)
    assert BertConfig.from_dict(cfg.to_dict()) == cfg
    hf = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 128,
          "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512,
          "vocab_size": 30522, "position_embedding_type": "absolute", "use_cache": True,
          "id2label": {"0": "NEG", "1": "NEU", "2": "POS"}, "transformers_version": "4.40.0"}
    read = BertConfig.from_dict(hf)
    assert read.num_labels == 3 and read.hidden_size == 128 and read.layer_norm_eps == 1e-12
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key'"):
        BertConfig.from_dict(hf | {"position_embedding_type": "relative_key"})


def test_config_refuses_inconsistent_sizes_with_clear_errors():
    with pytest.raises(ValueError, match="hidden_size 130 is not divisible by "
                                         "num_attention_heads 4"):
        BertConfig(hidden_size=130, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act 'swish'"):
        BertConfig(hidden_act="swish")
    with pytest.raises(ValueError, match="num_hidden_layers must be a positive integer"):
        BertConfig(num_hidden_layers=0)
    with pytest.raises(ValueError, match=r"hidden_dropout_prob must be in \[0, 1\)"):
        BertConfig(hidden_dropout_prob=1.0)
    with pytest.raises(ValueError, match="pad_token_id 60 is not an id of a vocabulary of 50"):
        BertConfig(vocab_size=50, pad_token_id=60)
    with pytest.raises(ValueError, match=r"unknown BERT config 'bert-huge'.*bert-mini"):
        BertConfig.named("bert-huge")


def test_bad_inputs_are_refused_naming_the_shapes():
    model = BertModel(CONFIG)
    with pytest.raises(ValueError, match="sequence length 11 exceeds max_position_embeddings 10"):
        model(np.ones((1, 11), dtype=np.int64))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(3, 6\), but input_ids has "
                                         r"shape \(3, 7\)"):
        model(INPUT_IDS, attention_mask=ATTENTION_MASK[:, :6])
    with pytest.raises(ValueError, match=r"input_ids must be \(batch, seq_len\), got shape \(7,\)"):
        model(INPUT_IDS[0])
    with pytest.raises(IndexError, match="id 2 is out of range for a table of 2 rows"):
        model(INPUT_IDS, token_type_ids=TOKEN_TYPE_IDS * 2)


# --- initialisation and a float32 smoke test -------------------------------------------------
def test_initialisation_is_hugging_faces_and_reproducible():
    mg.manual_seed(3)
    model = BertForSequenceClassification(BertConfig.named("bert-tiny", vocab_size=200))
    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            np.testing.assert_array_equal(p.data, 1, err_msg=name)
        elif name.endswith("bias"):
            np.testing.assert_array_equal(p.data, 0, err_msg=name)
        elif p.numel() > 4000:
            assert abs(p.data.std() - 0.02) < 0.002, name
    np.testing.assert_array_equal(model.bert.embeddings.word_embeddings.weight.data[0], 0)
    mg.manual_seed(3)
    again = BertForSequenceClassification(BertConfig.named("bert-tiny", vocab_size=200))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, again.state_dict()[k])


def test_bert_tiny_float32_forward_and_backward_smoke():
    mg.manual_seed(0)
    model = BertForMaskedLM(BertConfig.named("bert-tiny", vocab_size=100))
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 100, size=(2, 8))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    labels = np.where(rng.random((2, 8)) < 0.3, ids, -100)
    labels[0, 0] = ids[0, 0]
    out = model(ids, attention_mask=mask, labels=labels)
    assert out.logits.dtype == mg.float32 and out.logits.shape == (2, 8, 100)
    assert np.isfinite(out.loss.item()) and abs(out.loss.item() - math.log(100)) < 1.0
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32, name
        assert np.isfinite(p.grad).all(), name
    assert isinstance(model, nn.Module)


@pytest.mark.gpu
def test_masked_lm_on_the_gpu_matches_the_cpu():
    cpu = float64_model(BertForMaskedLM)
    gpu = float64_model(BertForMaskedLM).to("cuda")
    labels = np.where(ATTENTION_MASK == 1, INPUT_IDS, -100)
    out_cpu = cpu(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS, labels=labels)
    out_gpu = gpu(INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS, labels=labels)
    np.testing.assert_allclose(out_gpu.logits.data.get(), out_cpu.logits.data, **TOL)
    out_cpu.loss.backward()
    out_gpu.loss.backward()
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters(), strict=True):
        np.testing.assert_allclose(q.grad.get(), p.grad, err_msg=name, **TOL)


def test_intermediate_calls_a_wrapped_dense_layer_as_the_module_it_is():
    """LoRA, int8 and pruned layers replace ``dense``: BertIntermediate must run their forward
    (bias included) instead of reading ``dense.weight`` behind their back."""
    class Doubled(nn.Module):
        def __init__(self, inner: nn.Linear):
            super().__init__()
            self.inner = inner

        def forward(self, x: mg.Tensor) -> mg.Tensor:
            return self.inner(x) * 2.0

    layer = BertIntermediate(BertConfig.named("bert-tiny", vocab_size=30))
    x = mg.randn(2, 3, layer.dense.in_features)
    plain = layer.dense(x)
    expected = nn.functional.gelu(plain * 2.0).numpy()
    layer.dense = Doubled(layer.dense)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6, atol=1e-7)
