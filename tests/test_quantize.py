"""Dynamic int8 quantisation (minigrad.compress.quantize): the error bounds of the module's
docstring, the int8 GEMM reached through the kernel registry, torch's ``quantize_dynamic`` as a
test-only oracle on MiniLM's real weights, the model directory (int8 weights in safetensors,
``quantization_config``), ``minigrad quantize`` + ``minigrad predict``, and every refusal.

The int8 kernel itself is tested against its reference in tests/test_kernels_cpu.py (with the
JIT on and off)."""

import json
import os
import warnings

import numpy as np
import pytest
import safetensors.numpy
from minigrad.kernels import registry
from minigrad.kernels.cpu import int8 as i8
from threadpoolctl import threadpool_limits

import minigrad
from minigrad import checkpoint, cli, nn
from minigrad.checkpoint import CheckpointError
from minigrad.classifier import Classifier
from minigrad.compress.quantize import (
    QUANTIZATION_CONFIG,
    QuantizedLinear,
    int8_matmul,
    linear_nbytes,
    quantization_config,
    quantize_activation,
    quantize_dynamic,
    quantize_weight,
)
from minigrad.data.datasets import load_rotten_tomatoes
from minigrad.data.tokenizer import BertTokenizer
from minigrad.models import BertConfig, BertForSequenceClassification, from_pretrained
from minigrad.models.pretrained import load_tokenizer, minilm, minilm_path

EPS32 = 2.0**-24  # float32's unit roundoff
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "plot",
         "was", "is", "good", "great", "fine", "bad", "awful", "poor", "."]
TEXTS = ["the movie was good .", "a bad plot", "the film is awful .", "great", "fine film ."]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Small matrices gain nothing from a second BLAS thread (see tests/test_finetune.py)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def linear(rng, n_in, n_out, bias=True):
    layer = nn.Linear(n_in, n_out, bias=bias)
    layer.weight.data = rng.standard_normal((n_out, n_in)).astype(np.float32)
    if bias:
        layer.bias.data = rng.standard_normal(n_out).astype(np.float32)
    return layer


def activations(rng, rows, n_in):
    """Rows of very different sizes, with an outlier column (as BERT's hidden states have)."""
    x = rng.standard_normal((rows, n_in)) * rng.uniform(0.01, 3, (rows, 1))
    x[:, 0] *= 20
    return x.astype(np.float32)


def bound(x, layer, quantized):
    """The docstring's bound on |ŷ − y| for each output: (s_i/2)·Σ_k |Ŵ_jk| + (s_j/2)·Σ_k
    |x_ik|, widened by float32 rounding (of x/s_i: a step of 127·2⁻²⁴ at most, and of the
    scaling and the bias add: a few units in the last place of max|x_i|·Σ|Ŵ_j| + |b_j|)."""
    w_hat = quantized.dequantized_weight().astype(np.float64)  # (out, in)
    _, s_x = quantize_activation(x)  # (M, 1)
    s_x, s_w = s_x.astype(np.float64), quantized.weight_scale.astype(np.float64)
    l1_w, l1_x = np.abs(w_hat).sum(axis=1), np.abs(x.astype(np.float64)).sum(axis=1)
    half_steps = s_x / 2 * l1_w[None, :] + s_w[None, :] / 2 * l1_x[:, None]  # (M, out)
    rounding = 8 * EPS32 * (127 * s_x * l1_w[None, :] + np.abs(layer.bias.data))
    return half_steps + rounding


# --- the two quantisers: at most half a step from the value ----------------------------------
def test_weight_quantisation_error_is_at_most_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((40, 33)) * rng.uniform(1e-3, 10, (40, 1))  # rows of all sizes
    w[3] = 0.0  # a row of zeros: scale 1, exact
    w[4] = 0.0
    w[4, 7] = -2.5  # one nonzero: exactly -127 steps
    w = w.astype(np.float32)
    q, scale = quantize_weight(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (40,)
    assert q.min() >= -127 and q.max() <= 127
    assert (np.abs(q).max(axis=1)[np.any(w != 0, axis=1)] == 127).all()  # the whole grid used
    assert scale[3] == 1 and not q[3].any() and q[4, 7] == -127
    np.testing.assert_array_equal(scale, (np.abs(w).max(axis=1) / 127).astype(np.float32)
                                  + (np.abs(w).max(axis=1) == 0))
    error = np.abs(w.astype(np.float64) - scale[:, None].astype(np.float64) * q)
    # ≤ s/2, up to the float64 rounding of the quotient W/s (127·2⁻⁵³ of a step)
    assert (error <= scale[:, None].astype(np.float64) * (0.5 + 2.0**-40)).all()
    assert (error / scale[:, None]).max() > 0.4  # it did round: the bound is not vacuous


def test_activation_quantisation_error_is_at_most_half_a_step_per_row():
    rng = np.random.default_rng(1)
    x = activations(rng, 50, 64)
    x[5] = 0.0
    q, scale = quantize_activation(x)
    assert q.dtype == np.int8 and scale.shape == (50, 1) and scale.dtype == np.float32
    assert scale[5, 0] == 1 and not q[5].any()
    assert (np.abs(q).max(axis=1)[np.arange(50) != 5] == 127).all()  # every row's own range
    error = np.abs(x.astype(np.float64) - scale.astype(np.float64) * q)
    # ≤ s/2, up to the float32 rounding of the quotient x/s (127·2⁻²⁴ of a step)
    assert (error <= scale.astype(np.float64) * (0.5 + 127 * EPS32)).all()


# --- QuantizedLinear against the float layer -------------------------------------------------
@pytest.mark.parametrize(("rows", "n_in", "n_out"), [(1, 1, 1), (37, 65, 129), (200, 384, 96)])
def test_quantized_linear_stays_within_the_derived_bound_of_the_float_layer(rows, n_in, n_out):
    rng = np.random.default_rng(rows)
    layer = linear(rng, n_in, n_out)
    quantized = QuantizedLinear.from_float(layer)
    x = activations(rng, rows, n_in)
    with minigrad.no_grad():
        y_hat = quantized(minigrad.tensor(x)).numpy()
    assert y_hat.dtype == np.float32 and y_hat.shape == (rows, n_out)
    exact = x.astype(np.float64) @ layer.weight.data.T.astype(np.float64) + layer.bias.data
    error = np.abs(y_hat - exact)
    assert (error <= bound(x, layer, quantized)).all()
    if n_in > 1:
        assert error.max() > 0  # it is really quantised


def test_quantized_linear_takes_any_leading_shape_and_no_bias():
    rng = np.random.default_rng(2)
    layer = linear(rng, 16, 8, bias=False)
    quantized = QuantizedLinear.from_float(layer)
    x = activations(rng, 12, 16)
    with minigrad.no_grad():
        flat = quantized(minigrad.tensor(x)).numpy()
        batched = quantized(minigrad.tensor(x.reshape(2, 3, 2, 16))).numpy()
    assert quantized.bias is None and batched.shape == (2, 3, 2, 8)
    np.testing.assert_array_equal(batched.reshape(12, 8), flat)


def test_the_numba_kernel_and_the_numpy_reference_give_identical_outputs(watch_kernels):
    """The int32 sums are exact both ways, so the outputs agree bit for bit; under "numba" the
    registry's kernel is what computed them."""
    rng = np.random.default_rng(3)
    quantized = QuantizedLinear.from_float(linear(rng, 200, 70))
    x = minigrad.tensor(activations(rng, 130, 200))
    calls = []
    watch_kernels(calls.append)
    previous = minigrad.get_backend()
    try:
        with minigrad.no_grad():
            minigrad.set_backend("numpy")
            reference = quantized(x).numpy()
            assert calls == []
            minigrad.set_backend("numba")
            fast = quantized(x).numpy()
    finally:
        minigrad.set_backend(previous)
    assert calls == ["int8_matmul"]
    np.testing.assert_array_equal(fast, reference)


def test_the_registry_hands_int8_matmul_int8_arrays_only():
    a, f = np.zeros((2, 3), np.int8), np.zeros((2, 3), np.float32)
    previous = minigrad.get_backend()
    try:
        minigrad.set_backend("numba")
        assert registry.kernel("int8_matmul", a, a.T) is i8.int8_matmul
        assert registry.kernel("int8_matmul", f, f.T) is None  # a float GEMM is BLAS's
        assert registry.kernel("int8_matmul", a, f.T) is None
        assert registry.kernel("softmax", a) is None  # int8 is for int8_matmul alone
        minigrad.set_backend("numpy")
        assert registry.kernel("int8_matmul", a, a.T) is None  # the reference
    finally:
        minigrad.set_backend(previous)


def test_the_reference_product_in_float64_is_exact_at_the_extremes():
    """int8_matmul's fallback sums in float64: exact, since |Σ| ≤ K·2¹⁴ < 2⁵³."""
    a = np.full((1, i8.MAX_K), -128, np.int8)
    previous = minigrad.get_backend()
    try:
        minigrad.set_backend("numpy")
        assert int(int8_matmul(a, a.T)[0, 0]) == i8.MAX_K * 128 * 128
    finally:
        minigrad.set_backend(previous)


# --- torch.ao.quantization.quantize_dynamic as the oracle, on MiniLM's weights ---------------
@pytest.fixture(scope="module")
def mini():
    return minilm(), load_tokenizer(minilm_path())


@pytest.fixture(scope="module")
def reviews(mini):
    """32 real rotten-tomatoes reviews, tokenized for MiniLM."""
    texts = load_rotten_tomatoes().texts[:32]
    return mini[1](texts, padding=True, return_tensors="np")


def torch_quantized(layers, torch):
    """torch's dynamic quantisation with minigrad's weight scheme: symmetric per channel on
    -127..127 (torch's default grid is -128..127 with s = max|W|/127.5)."""
    from torch.ao.quantization import (
        PerChannelMinMaxObserver,
        QConfig,
        default_dynamic_quant_observer,
        quantize_dynamic,
    )
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, quant_min=-127, quant_max=127,
                                                qscheme=torch.per_channel_symmetric)
    qconfig = QConfig(activation=default_dynamic_quant_observer, weight=weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return quantize_dynamic(layers, {torch.nn.Linear: qconfig})


@pytest.mark.parametrize("layer_name", ["intermediate.dense", "output.dense"])
def test_a_minilm_layer_agrees_with_torch_quantize_dynamic(mini, reviews, layer_name):
    """The same int8 weights and scales as torch's (but where torch's float32 quotient W/s
    rounds a near-tie the other way); the outputs then differ by the two activation grids, each
    at most half its step from x: ours s_i = max|x_i|/127 per row, torch's t = (max(x, 0) −
    min(x, 0))/127 for the whole tensor (x86's 7-bit asymmetric grid; a finer 8-bit grid would
    only tighten this). So, with torch's int8 weight W̃ (= Ŵ but at the near-ties),

        |ours − torch|_ij ≤ Σ_k |Ŵ_jk|·(s_i + t)/2 + Σ_k (|x_ik| + t/2)·|Ŵ_jk − W̃_jk|."""
    torch = pytest.importorskip("torch")
    model, _ = mini
    layer = model.encoder.layer[5]
    float_layer = {"intermediate.dense": layer.intermediate.dense,
                   "output.dense": layer.output.dense}[layer_name]
    with minigrad.no_grad():  # inputs of the kind each layer sees: LayerNorm's output, GELU's
        hidden = model(reviews["input_ids"], reviews["attention_mask"]).last_hidden_state
        x = layer.intermediate(hidden) if layer_name == "output.dense" else hidden
    x = x.numpy()[reviews["attention_mask"].astype(bool)]  # (tokens, in)
    ours = QuantizedLinear.from_float(float_layer)
    reference = torch.nn.Linear(float_layer.in_features, float_layer.out_features)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(float_layer.weight.data))
        reference.bias.copy_(torch.from_numpy(float_layer.bias.data))
    theirs = torch_quantized(torch.nn.Sequential(reference), torch)[0]
    q_theirs = theirs.weight().int_repr().numpy()
    np.testing.assert_array_equal(ours.weight_scale,
                                  theirs.weight().q_per_channel_scales().numpy().astype(np.float32))
    quotient = float_layer.weight.data.astype(np.float64) / ours.weight_scale[:, None]
    near_tie = np.abs(np.abs(quotient - np.trunc(quotient)) - 0.5) < 256 * EPS32
    differ = ours.weight != q_theirs
    assert not (differ & ~near_tie).any() and differ.sum() <= 10
    assert (np.abs(ours.weight.astype(int) - q_theirs) <= 1).all()

    with minigrad.no_grad(), torch.no_grad():
        y_ours = ours(minigrad.tensor(x)).numpy().astype(np.float64)
        y_theirs = theirs(torch.from_numpy(x)).numpy().astype(np.float64)
    _, s_x = quantize_activation(x)
    t = (max(x.max(), 0) - min(x.min(), 0)) / 127
    w_ours = ours.dequantized_weight().astype(np.float64)
    w_theirs = q_theirs * ours.weight_scale[:, None].astype(np.float64)
    l1_w = np.abs(w_ours).sum(axis=1)
    rounding = 16 * EPS32 * (np.abs(x).max() * l1_w + np.abs(float_layer.bias.data))
    allowed = ((s_x.astype(np.float64) + t) / 2 * l1_w  # (tokens, out)
               + (np.abs(x) + t / 2) @ np.abs(w_ours - w_theirs).T + rounding)
    assert (np.abs(y_ours - y_theirs) <= allowed).all()
    # and per-token scales are the finer grid: closer to the float layer than torch's
    exact = x.astype(np.float64) @ float_layer.weight.data.T.astype(np.float64) \
        + float_layer.bias.data
    assert np.abs(y_ours - exact).mean() < np.abs(y_theirs - exact).mean()


def test_quantized_minilm_is_closer_to_float_than_torch_quantize_dynamic(mini, reviews):
    """The whole encoder on 32 reviews: minigrad's int8 MiniLM and torch's quantize_dynamic of
    the transformers MiniLM (the same int8 weights) against the float model. Per-token
    activation scales keep the last hidden state closer (measured: 7.5% relative L2 against
    torch's 28%), and the mean-pooled sentence embeddings within cosine 0.99."""
    torch = pytest.importorskip("torch")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    transformers = pytest.importorskip("transformers")
    model, _ = mini
    batch, mask = reviews, reviews["attention_mask"].astype(bool)
    with minigrad.no_grad():
        exact = model(batch["input_ids"], batch["attention_mask"]).last_hidden_state.numpy()
        ours = quantize_dynamic(model)(batch["input_ids"],
                                       batch["attention_mask"]).last_hidden_state.numpy()
    hf = transformers.BertModel.from_pretrained(minilm_path(), local_files_only=True).eval()
    with torch.no_grad():
        theirs = torch_quantized(hf, torch)(
            **{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()

    def relative(a):
        return np.linalg.norm((a - exact)[mask]) / np.linalg.norm(exact[mask])

    def pooled(h):
        e = (h * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    assert relative(ours) < relative(theirs)
    assert (pooled(ours) * pooled(exact)).sum(axis=1).min() > 0.99


def test_the_linear_weights_of_quantized_minilm_take_at_most_30_percent(mini):
    """int8 plus a float32 scale per row: (K + 4)/(4K) of the float32 weight, 25.3% at K = 384;
    the biases stay float32. Embeddings and LayerNorm are not Linear and stay as they were."""
    model, _ = mini
    quantized = quantize_dynamic(model)
    ratio = linear_nbytes(quantized) / linear_nbytes(model)
    assert 0.25 < ratio <= 0.30
    assert isinstance(model.encoder.layer[0].attention.self.query, nn.Linear)  # a copy changed
    assert quantized.embeddings.word_embeddings.weight.dtype == np.float32
    assert len(quantization_config(quantized)["modules"]) == 6 * 6 + 1  # 6 a layer, the pooler


# --- the model directory and the command line ------------------------------------------------
@pytest.fixture(scope="module")
def float_dir(tmp_path_factory):
    """A bert-tiny sentiment classifier's directory, as Classifier.save writes one (a random
    model: the directory's shape is what matters here, not its accuracy)."""
    directory = tmp_path_factory.mktemp("float")
    vocab = directory.parent / "vocab.txt"
    vocab.write_text("".join(token + "\n" for token in VOCAB), encoding="utf-8")
    minigrad.manual_seed(0)
    config = BertConfig.named("bert-tiny", vocab_size=len(VOCAB), num_labels=2)
    model = BertForSequenceClassification(config).eval()
    Classifier(model, BertTokenizer(vocab), ["neg", "pos"], max_length=16).save(directory / "m")
    return directory / "m"


@pytest.fixture(scope="module")
def quantized_dir(float_dir):
    out = float_dir.parent / "int8"
    assert cli.main(["quantize", "--model", str(float_dir), "--out", str(out)]) == 0
    return out


def test_the_directory_holds_int8_weights_scales_and_the_quantization_config(float_dir,
                                                                            quantized_dir):
    tensors = safetensors.numpy.load_file(quantized_dir / checkpoint.MODEL_FILE)
    query = "bert.encoder.layer.0.attention.self.query"
    assert tensors[f"{query}.weight"].dtype == np.int8
    assert tensors[f"{query}.weight_scale"].dtype == np.float32
    assert tensors[f"{query}.bias"].dtype == np.float32
    assert tensors["classifier.weight"].dtype == np.int8  # the head too, as torch does
    assert tensors["bert.embeddings.word_embeddings.weight"].dtype == np.float32
    assert tensors["bert.embeddings.LayerNorm.weight"].dtype == np.float32
    config = json.loads((quantized_dir / checkpoint.CONFIG_FILE).read_text())
    spec = config[QUANTIZATION_CONFIG]
    assert spec["quant_method"] == "minigrad_dynamic_int8" and spec["bits"] == 8
    assert query in spec["modules"] and "classifier" in spec["modules"]
    assert checkpoint.verify_manifest(quantized_dir) is not None  # the one writer's manifest
    size = (quantized_dir / checkpoint.MODEL_FILE).stat().st_size
    assert size < (float_dir / checkpoint.MODEL_FILE).stat().st_size


def test_save_then_load_gives_identical_outputs(float_dir, tmp_path):
    classifier = Classifier.load(float_dir)
    quantize_dynamic(classifier.model, inplace=True)
    expected = classifier.logits(TEXTS)
    classifier.save(tmp_path / "q")
    loaded = Classifier.load(tmp_path / "q")
    assert isinstance(loaded.model.bert.encoder.layer[1].output.dense, QuantizedLinear)
    assert quantization_config(loaded.model) == quantization_config(classifier.model)
    np.testing.assert_array_equal(loaded.logits(TEXTS), expected)
    assert loaded.label_names == ["neg", "pos"] and loaded.max_length == 16


def test_quantize_then_predict_on_the_command_line(float_dir, quantized_dir, capsys):
    capsys.readouterr()
    assert cli.main(["predict", "--model", str(float_dir), "--json", *TEXTS]) == 0
    before = json.loads(capsys.readouterr().out)
    assert cli.main(["predict", "--model", str(quantized_dir), "--json", *TEXTS]) == 0
    after = json.loads(capsys.readouterr().out)
    for f, q in zip(before, after, strict=True):
        for label in ("neg", "pos"):
            assert abs(f["scores"][label] - q["scores"][label]) < 0.01
        if abs(f["scores"]["pos"] - 0.5) > 0.01:
            assert f["label"] == q["label"]


def test_the_quantize_command_reports_the_sizes(float_dir, tmp_path, capsys):
    assert cli.main(["quantize", "--model", str(float_dir), "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    assert "14 Linear layers to int8" in out and f"saved to {tmp_path / 'q'}/" in out


# --- refusals --------------------------------------------------------------------------------
def one_line_error(capsys, command, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"minigrad {command}: error: "), err
    for word in words:
        assert word in err[0], (word, err[0])


def test_quantizing_an_already_quantized_model_is_refused(quantized_dir, tmp_path, capsys):
    capsys.readouterr()
    assert cli.main(["quantize", "--model", str(quantized_dir), "--out",
                     str(tmp_path / "again")]) == 1
    one_line_error(capsys, "quantize", str(quantized_dir), "already quantised")
    assert not (tmp_path / "again").exists()
    with pytest.raises(ValueError, match="already quantised"):
        quantize_dynamic(Classifier.load(quantized_dir).model)


def test_quantize_refuses_to_write_over_its_own_input(float_dir, capsys):
    capsys.readouterr()
    assert cli.main(["quantize", "--model", str(float_dir), "--out", str(float_dir)]) == 1
    one_line_error(capsys, "quantize", "is the --model directory")
    assert QUANTIZATION_CONFIG not in checkpoint.load_config(float_dir)


def test_quantize_needs_its_arguments():
    with pytest.raises(SystemExit) as info:
        cli.main(["quantize", "--model", "somewhere"])
    assert info.value.code == 2


def test_an_int8_directory_is_no_float_checkpoint(quantized_dir):
    with pytest.raises(CheckpointError, match="quantization_config"):
        from_pretrained(quantized_dir, task="sequence-classification")


def test_a_directory_whose_tensors_do_not_fit_its_quantization_config_is_refused(float_dir,
                                                                                tmp_path):
    """Written by the one writer, so the manifest is whole, but the config claims int8 layers
    whose weights are float32 in the file, or names a layer the model does not have."""
    classifier = Classifier.load(float_dir)
    config = {**checkpoint.load_config(float_dir),
              QUANTIZATION_CONFIG: quantization_config(quantize_dynamic(classifier.model))}
    checkpoint.save_pretrained(classifier.model, classifier.tokenizer, tmp_path / "a", config)
    with pytest.raises(CheckpointError, match=r"weight_scale"):
        Classifier.load(tmp_path / "a")
    config[QUANTIZATION_CONFIG] = {**config[QUANTIZATION_CONFIG], "modules": ["bert.nowhere"]}
    checkpoint.save_pretrained(classifier.model, classifier.tokenizer, tmp_path / "b", config)
    with pytest.raises(CheckpointError, match=r"'bert\.nowhere', which is no Linear layer"):
        Classifier.load(tmp_path / "b")


def test_quantize_dynamic_takes_names_or_nn_linear_and_refuses_the_rest():
    rng = np.random.default_rng(4)
    model = nn.Sequential(linear(rng, 4, 8), nn.ReLU(), linear(rng, 8, 2))
    only_first = quantize_dynamic(model, {"0"})
    assert isinstance(only_first[0], QuantizedLinear) and type(only_first[2]) is nn.Linear
    assert type(model[0]) is nn.Linear  # not in place: the model is left as it was
    with pytest.raises(ValueError,
                       match=r"1 is no Linear layer of Sequential; its Linear layers: 0, 2"):
        quantize_dynamic(model, {"1"})
    with pytest.raises(ValueError, match=r"only nn.Linear can be quantised, got \['LayerNorm'\]"):
        quantize_dynamic(model, {nn.LayerNorm})
    same = quantize_dynamic(model, inplace=True)
    assert same is model and isinstance(model[2], QuantizedLinear)


def test_quantized_linear_is_inference_only():
    rng = np.random.default_rng(5)
    quantized = QuantizedLinear.from_float(linear(rng, 4, 3))
    x = minigrad.tensor(rng.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"inference-only.*minigrad.no_grad\(\)"):
        quantized(x)
    with minigrad.no_grad():
        assert quantized(x).shape == (2, 3)
    assert not any(p.requires_grad for p in quantized.parameters())
    quantized.requires_grad_(True)  # a bias asking for a gradient it would never get
    with pytest.raises(RuntimeError, match="input or bias requires grad"):
        quantized(x.detach())


def test_inf_and_nan_are_refused_not_cast_to_garbage():
    rng = np.random.default_rng(6)
    layer = linear(rng, 4, 3)
    layer.weight.data[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"weight \(3, 4\) holds inf or NaN"):
        QuantizedLinear.from_float(layer)
    quantized = QuantizedLinear.from_float(linear(rng, 4, 3))
    x = np.ones((2, 4), np.float32)
    x[1, 1] = np.nan
    with minigrad.no_grad(), pytest.raises(ValueError, match=r"input \(2, 4\) holds inf or NaN"):
        quantized(minigrad.tensor(x))
    with minigrad.no_grad(), pytest.raises(ValueError, match=r"float input \(\.\.\., 4\)"):
        quantized(minigrad.tensor(np.ones((2, 5), np.float32)))
