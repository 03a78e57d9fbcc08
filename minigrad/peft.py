"""Parameter-efficient fine-tuning: train a few weights on top of a frozen pretrained BERT.

Full fine-tuning updates every weight θ of the model (22.7M for MiniLM) and keeps AdamW's two
moments for each. The methods here freeze θ (``requires_grad=False``: no gradient, no optimizer
state) and train a small set φ instead, plus the new classification head, which no pretrained
weight can replace (Hugging Face ``peft``'s ``modules_to_save``). Shapes: B batch, S sequence
length, H hidden size, n virtual tokens, r LoRA rank, m adapter size.

**LoRA** (Hu et al. 2021). A target linear layer y = x Wᵀ + b, W (out, in), becomes::

    y = x Wᵀ + b + (α/r) · dropout(x) Aᵀ Bᵀ,     A (r, in), B (out, r)

so the update ΔW = (α/r)·B·A has rank at most r and costs r·(in + out) numbers instead of
in·out. A starts Kaiming-uniform with a = √5, i.e. U(-1/√in, 1/√in) (as ``peft`` and
``nn.Linear``), B starts at zero: ΔW = 0 and the wrapped model *is* the base model before the
first step. The gradients are ∂L/∂B = (α/r)·gᵀ(xAᵀ) and ∂L/∂A = (α/r)·(gB)ᵀx for the output
gradient g, so B moves first and A follows. **Merging** folds the update into the weight,
W ← W + (α/r)·B·A; since x(W + ΔW)ᵀ = xWᵀ + xΔWᵀ the merged layer computes the same function
(up to float rounding) at the cost of one plain matmul, and unmerging subtracts ΔW again.
``peft``'s defaults for BERT: r = 8, α = 8, no dropout, ``query`` and ``value`` of every
attention layer; for MiniLM (6 layers, H = 384) that is 6 · 2 · 8 · (384 + 384) = 73,728
trainable numbers, 0.32% of the model.

**Bottleneck adapters** (Houlsby et al. 2019). After the attention output projection and after
the feed-forward output projection of every layer, i.e. before each residual + LayerNorm, the
projection's output h (B, S, H) passes through::

    h ← h + W_up · GELU(W_down · h + b_down) + b_up,    W_down (m, H), W_up (H, m)

2·m·H + m + H numbers per adapter, two per layer. As in the paper, the LayerNorms train too.
W_down starts as ``nn.Linear`` does (Kaiming-uniform); W_up and b_up start at zero, so each
adapter starts as the identity exactly (the paper's near-zero N(0, 10⁻⁴) init starts *near*
it; zero keeps the start equal to the base model, LoRA's trick).

**Prompt tuning** (Lester et al. 2021), with ``peft``'s semantics for BERT: n trainable vectors
P (n, H) are prepended to the *word* embeddings, before the position and token-type rows and
the embedding LayerNorm are added::

    inputs_embeds = [P; E[input_ids]]             (B, n + S, H)
    attention_mask = [1ⁿ, attention_mask]         the prompt is always attended to
    token_type_ids = [0ⁿ, token_type_ids]

so the prompt takes positions 0..n-1 and the text moves to n..n+S-1 (n + S must fit in
``max_position_embeddings``). The pooler reads position 0, which is now the first virtual
token, not [CLS]: the sequence classifier sees the final state of P₀ (as with ``peft``'s
``PeftModelForSequenceClassification``). For token classification the prompt positions get
the label -100 and their logits are dropped, so logits stay (B, S, C). P starts N(0, 1) as
``peft``'s ``RANDOM`` init (``nn.Embedding``'s), or ``SAMPLE_VOCAB``: rows of the vocabulary.

**BitFit** (Ben Zaken et al. 2022). Only the bias vectors train (every parameter named
``bias``: the linear layers', the LayerNorms' β, the pooler's), with the head.

Saving (:meth:`PeftModel.save_pretrained`, through the one writer) keeps only what the base
model does not already hold, in ``peft``'s layout::

    adapter_model.safetensors  the trainable tensors (and any frozen tensor the base checkpoint
                               lacks, such as a pooler initialised at random), named as peft
                               saves them: base_model.model.<name> (prompt_embeddings and
                               base_model.<name> for prompt tuning)
    adapter_config.json        peft_type, task_type, the method's options, modules_to_save,
                               base_model_name_or_path ("minilm" or an absolute directory) and
                               base_model_sha256 (of the base's model.safetensors)
    config.json, vocab.txt...  the base's config with the labels, the tokenizer, extra files

:func:`load_adapter` rebuilds base + adapter; a missing base, one whose shapes differ from the
adapter's, or one whose weights changed since training is refused, naming the path. A LoRA
directory loads in ``peft`` too (``PeftModel.from_pretrained``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import safetensors

import minigrad
from minigrad import autograd, backend, checkpoint, nn
from minigrad.checkpoint import CheckpointError
from minigrad.data.encoding import IGNORE_INDEX
from minigrad.models import pretrained
from minigrad.models.bert import (
    BertForSequenceClassification,
    BertForTokenClassification,
    BertLayer,
    BertModel,
)
from minigrad.tensor import Tensor

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
MINILM = "minilm"  # the base reference that names the installed all-MiniLM-L6-v2
TASK_TYPES = {BertForSequenceClassification: "SEQ_CLS", BertForTokenClassification: "TOKEN_CLS"}


# --- configurations ----------------------------------------------------------------------------

@dataclasses.dataclass(kw_only=True)
class PeftConfig:
    """What every method shares (``peft``'s names). ``modules_to_save``: modules trained whole
    beside the method (the new head); ``base_model_name_or_path``: where the frozen base comes
    from, ``"minilm"`` or a checkpoint directory, needed to save and load an adapter."""

    modules_to_save: tuple[str, ...] = ("classifier",)
    base_model_name_or_path: str | None = None
    peft_type: ClassVar[str]

    def __post_init__(self) -> None:
        self.modules_to_save = _names(self.modules_to_save, "modules_to_save")

    def to_dict(self) -> dict[str, Any]:
        return {"peft_type": self.peft_type, **dataclasses.asdict(self)}


@dataclasses.dataclass
class LoRAConfig(PeftConfig):
    """LoRA with ``peft``'s ``LoraConfig`` field names and its defaults for BERT: rank ``r``,
    scaling ``lora_alpha / r``, dropout ``lora_dropout`` on the LoRA branch's input, and
    ``target_modules``: names of Linear layers, each matching a layer whose dotted name is
    that name or ends with ``"." + name`` (names, not regular expressions)."""

    r: int = 8
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("query", "value")
    peft_type: ClassVar[str] = "LORA"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.target_modules = _names(self.target_modules, "target_modules")
        if not self.target_modules:
            raise ValueError("LoRAConfig: target_modules is empty; name at least one Linear "
                             "layer, e.g. ('query', 'value')")
        if not (isinstance(self.r, int) and self.r >= 1):
            raise ValueError(f"LoRAConfig: the rank r must be a positive integer, got {self.r!r}")
        if not self.lora_alpha > 0:
            raise ValueError(f"LoRAConfig: lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"LoRAConfig: lora_dropout must be in [0, 1), got "
                             f"{self.lora_dropout}")

    @property
    def scaling(self) -> float:
        return self.lora_alpha / self.r


@dataclasses.dataclass
class AdapterConfig(PeftConfig):
    """Houlsby bottleneck adapters of ``adapter_size`` (m) hidden units, two per layer."""

    adapter_size: int = 64
    peft_type: ClassVar[str] = "BOTTLENECK_ADAPTER"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.adapter_size, int) and self.adapter_size >= 1):
            raise ValueError(f"AdapterConfig: adapter_size must be a positive integer, got "
                             f"{self.adapter_size!r}")


PROMPT_INITS = ("RANDOM", "SAMPLE_VOCAB")


@dataclasses.dataclass
class PromptTuningConfig(PeftConfig):
    """Prompt tuning: ``num_virtual_tokens`` trainable vectors before the text;
    ``prompt_tuning_init`` is ``"RANDOM"`` (N(0, 1), peft's default) or ``"SAMPLE_VOCAB"``
    (rows of the word embeddings drawn at random)."""

    num_virtual_tokens: int = 20
    prompt_tuning_init: str = "RANDOM"
    peft_type: ClassVar[str] = "PROMPT_TUNING"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.num_virtual_tokens, int) and self.num_virtual_tokens >= 1):
            raise ValueError(f"PromptTuningConfig: num_virtual_tokens must be a positive "
                             f"integer, got {self.num_virtual_tokens!r}")
        if self.prompt_tuning_init not in PROMPT_INITS:
            raise ValueError(f"PromptTuningConfig: prompt_tuning_init must be one of "
                             f"{PROMPT_INITS}, got {self.prompt_tuning_init!r}")


@dataclasses.dataclass
class BitFitConfig(PeftConfig):
    """BitFit: every bias trains, nothing else but ``modules_to_save``."""

    peft_type: ClassVar[str] = "BITFIT"


CONFIGS: dict[str, type[PeftConfig]] = {c.peft_type: c for c in (
    LoRAConfig, AdapterConfig, PromptTuningConfig, BitFitConfig)}
METHODS: dict[str, type[PeftConfig]] = {"lora": LoRAConfig, "adapter": AdapterConfig,
                                        "prompt": PromptTuningConfig, "bitfit": BitFitConfig}


def _names(value: Any, what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{what} must be module names (non-empty strings), got {value!r}")
    return names


# --- the layers --------------------------------------------------------------------------------

class LoRALinear(nn.Module):
    """y = base_layer(x) + (α/r)·lora_B(lora_A(lora_dropout(x))): a frozen Linear plus a
    trainable rank-r update (see the module's docstring). ``merge()`` folds the update into
    ``base_layer.weight``, ``unmerge()`` takes it out again."""

    def __init__(self, base_layer: nn.Linear, r: int, lora_alpha: float, lora_dropout: float):
        super().__init__()
        weight = base_layer.weight
        self.base_layer = base_layer
        self.lora_dropout = nn.Dropout(lora_dropout)
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)  # U(-1/√in, 1/√in)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
        self.lora_B.weight.data = np.zeros_like(self.lora_B.weight.data)  # ΔW = 0 at the start
        for layer in (self.lora_A, self.lora_B):
            layer.to(weight.dtype).to(weight.device)
        self.r = r
        self.scaling = lora_alpha / r
        self.merged = False

    def delta_weight(self) -> Tensor:
        """ΔW = (α/r)·B·A, (out, in)."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def merge(self) -> None:
        """W ← W + (α/r)·B·A; the layer then runs as its base alone. A second merge does
        nothing."""
        if not self.merged:
            with autograd.no_grad():
                self.base_layer.weight.add_(self.delta_weight())
            self.merged = True

    def unmerge(self) -> None:
        """W ← W - (α/r)·B·A: the base weight back (up to float rounding)."""
        if self.merged:
            with autograd.no_grad():
                self.base_layer.weight.sub_(self.delta_weight())
            self.merged = False

    def forward(self, x: Tensor) -> Tensor:
        y = self.base_layer(x)  # (..., out)
        if self.merged:
            return y
        return y + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling  # (..., out)

    def extra_repr(self) -> str:
        return f"r={self.r}, scaling={self.scaling:g}, merged={self.merged}"


class BottleneckAdapter(nn.Module):
    """h = base_layer(x); h + adapter_up(GELU(adapter_down(h))): a Houlsby adapter after a
    frozen projection, H -> m -> H, starting as the identity (``adapter_up`` zero)."""

    def __init__(self, base_layer: nn.Linear, adapter_size: int):
        super().__init__()
        weight = base_layer.weight
        hidden = base_layer.out_features
        self.base_layer = base_layer
        self.adapter_down = nn.Linear(hidden, adapter_size)
        self.adapter_act = nn.GELU()
        self.adapter_up = nn.Linear(adapter_size, hidden)
        for p in (self.adapter_up.weight, self.adapter_up.bias):
            p.data = np.zeros_like(p.data)
        for layer in (self.adapter_down, self.adapter_up):
            layer.to(weight.dtype).to(weight.device)

    def forward(self, x: Tensor) -> Tensor:
        h = self.base_layer(x)  # (B, S, H)
        return h + self.adapter_up(self.adapter_act(self.adapter_down(h)))  # (B, S, H)


# --- wrapping a model --------------------------------------------------------------------------

def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in the place of the submodule called ``name`` (dotted)."""
    *path, leaf = name.split(".")
    parent = model
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, leaf, new)


def _linear_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if type(m) is nn.Linear]


def _add_lora(model: nn.Module, config: LoRAConfig) -> None:
    linears = _linear_names(model)
    for target in config.target_modules:
        if not any(_matches(name, target) for name in linears):
            leaves = sorted({name.rsplit(".", 1)[-1] for name in linears})
            raise ValueError(
                f"LoRA: target module {target!r} matches no Linear layer of "
                f"{type(model).__name__}; its Linear layers are named {', '.join(leaves)} "
                f"(a target matches a dotted name equal to it or ending in '.' + it, e.g. "
                f"attention.output.dense; {len(linears)} Linear layers in all)")
    modules = dict(model.named_modules())
    for name in linears:
        if any(_matches(name, target) for target in config.target_modules):
            _replace(model, name, LoRALinear(modules[name], config.r, config.lora_alpha,
                                             config.lora_dropout))


def _encoder(model: nn.Module) -> BertModel:
    """The BertModel of a model with a head, or the model itself."""
    found = model if isinstance(model, BertModel) else getattr(model, "bert", None)
    if not isinstance(found, BertModel):
        raise ValueError(f"{type(model).__name__} is not a BERT (no BertModel in .bert)")
    return found


def _add_adapters(model: nn.Module, config: AdapterConfig) -> None:
    layers = [m for m in model.modules() if isinstance(m, BertLayer)]
    if not layers:
        raise ValueError(f"adapters go into BERT layers, and {type(model).__name__} has none")
    for layer in layers:
        layer.attention.output.dense = BottleneckAdapter(layer.attention.output.dense,
                                                         config.adapter_size)
        layer.output.dense = BottleneckAdapter(layer.output.dense, config.adapter_size)
    for name, p in model.named_parameters():
        if "LayerNorm." in name:
            p.requires_grad_(True)


class PeftModel(nn.Module):
    """A base model with a parameter-efficient method applied (``peft``'s ``PeftModel``).

    Called like the base model: ``model(input_ids, attention_mask, token_type_ids,
    labels=...)``. Its parameters are the base's (under ``base_model.``), most of them frozen,
    plus the method's; ``prompt_embeddings`` (n, H) for prompt tuning. Build it with
    :func:`get_peft_model`.
    """

    def __init__(self, model: nn.Module, peft_config: PeftConfig):
        super().__init__()
        self.base_model = model
        self.peft_config = peft_config
        if isinstance(peft_config, PromptTuningConfig):
            if type(model) not in TASK_TYPES:
                raise ValueError(f"prompt tuning runs a sequence or token classifier, not a "
                                 f"{type(model).__name__}")
            words = _encoder(model).embeddings.word_embeddings.weight  # (V, H)
            (V, H), n = words.shape, peft_config.num_virtual_tokens  # noqa: N806
            if peft_config.prompt_tuning_init == "SAMPLE_VOCAB":
                rows = backend.random_uniform((n,), np.float64, "cpu") * V  # (n,) in [0, V)
                prompt = backend.to_device(words.data, "cpu")[rows.astype(np.int64)]  # (n, H)
            else:
                prompt = backend.random_normal((n, H), words.dtype, "cpu")  # (n, H)
            self.prompt_embeddings = nn.Parameter(
                backend.to_device(prompt.astype(words.dtype), words.device))  # (n, H)

    @property
    def config(self) -> Any:
        """The base model's configuration (a :class:`~minigrad.models.bert.BertConfig`)."""
        return self.base_model.config

    @property
    def num_virtual_tokens(self) -> int:
        """Positions the method puts before the text: n for prompt tuning, else 0."""
        if isinstance(self.peft_config, PromptTuningConfig):
            return self.peft_config.num_virtual_tokens
        return 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The base model's forward (with the prompt before the text for prompt tuning)."""
        if not self.num_virtual_tokens:
            return self.base_model(*args, **kwargs)
        return self._prompt_forward(*args, **kwargs)

    def _prompt_forward(self, input_ids: Any, attention_mask: Any = None,
                        token_type_ids: Any = None, labels: Any = None) -> Any:
        """[P; E[input_ids]] with the mask, token types (and token labels) extended by n."""
        prompt = self.prompt_embeddings  # (n, H)
        xp = prompt.xp
        ids = xp.asarray(input_ids.data if isinstance(input_ids, Tensor) else input_ids)
        B, S = ids.shape  # noqa: N806 (shape names)
        n, H = prompt.shape  # noqa: N806
        words = _encoder(self.base_model).embeddings.word_embeddings(ids)  # (B, S, H)
        inputs_embeds = minigrad.cat([prompt.unsqueeze(0).expand(B, n, H), words],
                                     dim=1)  # (B, n + S, H)

        def extend(a: Any, fill: int) -> Any:
            """(B, S) -> (B, n + S): n columns of ``fill`` first (a missing mask or token
            types: ``fill`` everywhere, their defaults)."""
            a = xp.full((B, S), fill, dtype=xp.int64) if a is None else xp.asarray(
                a.data if isinstance(a, Tensor) else a)
            return xp.concatenate([xp.full((B, n), fill, dtype=a.dtype), a], axis=1)

        tokens = isinstance(self.base_model, BertForTokenClassification)
        out = self.base_model(
            None, extend(attention_mask, 1), extend(token_type_ids, 0),
            labels=extend(labels, IGNORE_INDEX) if tokens and labels is not None else labels,
            inputs_embeds=inputs_embeds)
        if tokens:  # the prompt's positions are no tokens of the text
            out = dataclasses.replace(out, logits=out.logits[:, n:])  # (B, S, C)
        return out

    # --- what trains ---------------------------------------------------------------------------
    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable numbers, all numbers) of the model, each shared parameter once."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, self.num_parameters()

    def print_trainable_parameters(self) -> None:
        """Print ``peft``'s line: trainable params, all params and the trainable share (peft's
        "all params" counts the head twice, as it keeps a frozen copy; minigrad has none)."""
        trainable, total = self.get_nb_trainable_parameters()
        print(f"trainable params: {trainable:,d} || all params: {total:,d} || "
              f"trainable%: {100 * trainable / total:.4f}")

    # --- merging -------------------------------------------------------------------------------
    def _lora_layers(self) -> Iterator[LoRALinear]:
        return (m for m in self.base_model.modules() if isinstance(m, LoRALinear))

    def merge_adapter(self) -> None:
        """Fold every LoRA update into its base weight (the layers stay, marked merged)."""
        self._check_mergeable("merge_adapter")
        for layer in self._lora_layers():
            layer.merge()

    def unmerge_adapter(self) -> None:
        """Take every merged LoRA update out of its base weight again."""
        for layer in self._lora_layers():
            layer.unmerge()

    def merge_and_unload(self) -> nn.Module:
        """The base model with the method folded in and plain ``nn.Linear`` layers: LoRA merged
        (W + (α/r)·B·A), BitFit's biases as trained. It computes what this model computes."""
        self._check_mergeable("merge_and_unload")
        for name, module in list(self.base_model.named_modules()):
            if isinstance(module, LoRALinear):
                module.merge()
                _replace(self.base_model, name, module.base_layer)
        return self.base_model

    def _check_mergeable(self, what: str) -> None:
        if isinstance(self.peft_config, (AdapterConfig, PromptTuningConfig)):
            raise ValueError(f"{what}: {self.peft_config.peft_type} cannot be folded into the "
                             "base weights (only LoRA and BitFit can): an adapter holds a "
                             "nonlinearity and a prompt adds positions")

    # --- saving --------------------------------------------------------------------------------
    def _file_key(self, name: str) -> str:
        """A parameter's name in adapter_model.safetensors, as ``peft`` saves it."""
        if isinstance(self.peft_config, PromptTuningConfig):
            return name
        return "base_model.model." + name.removeprefix("base_model.")

    def _saved_names(self, base_directory: Path) -> list[str]:
        """The parameters an adapter file holds: the trainable ones, and the frozen ones the
        base checkpoint lacks (a pooler or head initialised at random)."""
        with safetensors.safe_open(base_directory / checkpoint.MODEL_FILE, "np") as f:
            held = {key.removeprefix("bert.") for key in f.keys()}  # noqa: SIM118 (no dict)
        names = []
        for name, p in self.named_parameters():
            # the base's name: LoRA and adapters keep the wrapped Linear as .base_layer
            original = name.removeprefix("base_model.").replace(".base_layer.", ".")
            if p.requires_grad or (not _is_new(name) and
                                   original.removeprefix("bert.") not in held):
                names.append(name)
        return names

    def adapter_state_dict(self) -> dict[str, Any]:
        """{peft's tensor name: array} of what :meth:`save_pretrained` writes."""
        params = dict(self.named_parameters())
        base = resolve_base(self.peft_config.base_model_name_or_path)
        return {self._file_key(name): params[name].data for name in self._saved_names(base)}

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None,
                        config: dict | None = None,
                        extra_files: Mapping[str, bytes | str | dict] | None = None,
                        tokenizer_config: dict | None = None) -> Path:
        """Write an adapter directory (see the module's docstring) with
        :func:`minigrad.checkpoint.save_pretrained`: ``config`` is ``config.json`` (default:
        the base's configuration), the rest as that function takes them."""
        reference = self.peft_config.base_model_name_or_path
        if reference is None:
            raise ValueError("PeftModel.save_pretrained: peft_config.base_model_name_or_path is "
                             "not set; set it to 'minilm' or the base model's directory")
        base = resolve_base(reference)
        settings = {**self.peft_config.to_dict(), "task_type": TASK_TYPES.get(
            type(self.base_model)), "base_model_sha256": _weights_sha256(base)}
        return checkpoint.save_pretrained(
            self, tokenizer, directory, config or self.config.to_dict(),
            {ADAPTER_CONFIG_FILE: settings, **(extra_files or {})}, tokenizer_config,
            tensors=self.adapter_state_dict(), weights_name=ADAPTER_WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, model: nn.Module, directory: str | Path) -> PeftModel:
        """``model`` (the base, as loaded) with the adapter of ``directory`` applied.

        Raises:
            CheckpointError: a tensor of the adapter whose shape differs from the base's (both
                shapes named), one missing, or one the method has no place for.
        """
        directory = Path(directory)
        peft_config = read_adapter_config(directory)
        peft_model = get_peft_model(model, peft_config)
        path = directory / ADAPTER_WEIGHTS_FILE
        tensors = checkpoint.load_safetensors(path)
        params = dict(peft_model.named_parameters())
        by_key = {peft_model._file_key(name): name for name in params}
        base = resolve_base(peft_config.base_model_name_or_path)
        expected = {peft_model._file_key(name) for name in peft_model._saved_names(base)}
        errors = [f"{key} {tuple(a.shape)} in the adapter, {params[by_key[key]].shape} in the "
                  "base model" for key, a in tensors.items()
                  if key in by_key and tuple(a.shape) != params[by_key[key]].shape]
        errors += [f"{key}: missing from the adapter" for key in sorted(expected - set(tensors))]
        errors += [f"{key}: not a tensor of {peft_config.peft_type} on this base model"
                   for key in sorted(set(tensors) - expected)]
        if errors:
            raise CheckpointError(
                f"{path} does not fit the base model {base} "
                f"({peft_config.base_model_name_or_path}): " + "; ".join(errors[:6])
                + (f"; and {len(errors) - 6} more" if len(errors) > 6 else ""))
        with autograd.no_grad():
            for key, array in tensors.items():
                params[by_key[key]].copy_(array.astype(params[by_key[key]].dtype))
        return peft_model


def _is_new(name: str) -> bool:
    """A parameter a method adds (not the base's)."""
    return name == "prompt_embeddings" or any(
        part in name for part in (".lora_A.", ".lora_B.", ".adapter_down.", ".adapter_up."))


def get_peft_model(model: nn.Module, peft_config: PeftConfig) -> PeftModel:
    """Freeze ``model`` and apply the method of ``peft_config`` (``peft``'s function).

    The model's Linear layers are replaced in place (LoRA, adapters); what trains afterwards:
    the method's parameters (LoRA's A and B; adapters and the LayerNorms; the prompt; every
    bias for BitFit) and the modules named in ``peft_config.modules_to_save``.

    Raises:
        ValueError: a LoRA target that names no Linear layer (the available names listed), a
            ``modules_to_save`` entry that names no module, a model that is already wrapped.
    """
    if isinstance(model, PeftModel) or any(_is_new(name) for name, _ in
                                           model.named_parameters()):
        raise ValueError("get_peft_model: the model already has a PEFT method applied")
    if not isinstance(peft_config, PeftConfig):
        raise TypeError(f"get_peft_model takes a LoRAConfig, AdapterConfig, PromptTuningConfig "
                        f"or BitFitConfig, got {type(peft_config).__name__}")
    modules = [name for name, _ in model.named_modules()]
    for target in peft_config.modules_to_save:
        if not any(_matches(name, target) for name in modules):
            raise ValueError(f"modules_to_save: {type(model).__name__} has no module named "
                             f"{target!r} (give modules_to_save=() for a model without a head)")
    model.requires_grad_(False)
    if isinstance(peft_config, LoRAConfig):
        _add_lora(model, peft_config)
    elif isinstance(peft_config, AdapterConfig):
        _add_adapters(model, peft_config)
    elif isinstance(peft_config, BitFitConfig):
        for name, p in model.named_parameters():
            if name.rsplit(".", 1)[-1] == "bias":
                p.requires_grad_(True)
    for name, module in list(model.named_modules()):
        if any(_matches(name, target) for target in peft_config.modules_to_save):
            module.requires_grad_(True)
    return PeftModel(model, peft_config)


# --- loading -----------------------------------------------------------------------------------

def is_adapter_directory(directory: str | Path) -> bool:
    return (Path(directory) / ADAPTER_CONFIG_FILE).is_file()


def read_adapter_config(directory: str | Path) -> PeftConfig:
    """The :class:`PeftConfig` of an adapter directory's ``adapter_config.json``."""
    path = Path(directory) / ADAPTER_CONFIG_FILE
    settings = checkpoint.load_config(directory, ADAPTER_CONFIG_FILE)
    kind = CONFIGS.get(settings.get("peft_type"))
    if kind is None:
        raise CheckpointError(f"{path}: peft_type {settings.get('peft_type')!r} is none of "
                              f"{', '.join(CONFIGS)}")
    known = {f.name for f in dataclasses.fields(kind)}
    try:
        return kind(**{k: v for k, v in settings.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def base_reference(model: str | Path) -> str:
    """How an adapter names its base: ``"minilm"``, or the directory as an absolute path."""
    return MINILM if model == MINILM else str(Path(model).resolve())


def resolve_base(reference: str | None) -> Path:
    """The directory a base reference names: ``"minilm"`` or a checkpoint directory."""
    if reference is None:
        raise ValueError("the PEFT config names no base model (base_model_name_or_path)")
    directory = pretrained.minilm_path() if reference == MINILM else Path(reference)
    if not (directory / checkpoint.MODEL_FILE).is_file():
        raise CheckpointError(f"the base model {reference} is not there: "
                              f"{directory / checkpoint.MODEL_FILE} does not exist (moved or "
                              "deleted?); an adapter needs the base model it was trained on")
    return directory


def _weights_sha256(base: Path) -> str:
    with open(base / checkpoint.MODEL_FILE, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_adapter(directory: str | Path, task: str) -> PeftModel:
    """Base + adapter from an adapter directory, in evaluation mode: the base model named in
    ``adapter_config.json`` with ``config.json``'s labels, the adapter's tensors put in.

    Raises:
        CheckpointError: the base is missing, its shapes differ from the adapter's, or its
            weights changed since the adapter was trained (their sha256 differs), each naming
            the path.
    """
    directory = Path(directory)
    peft_config = read_adapter_config(directory)
    base = resolve_base(peft_config.base_model_name_or_path)
    labels = checkpoint.load_config(directory).get("id2label") or {}
    level = pretrained.logger.level  # "newly initialized: classifier...": the adapter holds it
    pretrained.logger.setLevel(logging.ERROR)
    try:
        model = pretrained.from_pretrained(base, task=task, num_labels=len(labels) or None)
    finally:
        pretrained.logger.setLevel(level)
    peft_model = PeftModel.from_pretrained(model, directory)
    recorded = checkpoint.load_config(directory, ADAPTER_CONFIG_FILE).get("base_model_sha256")
    if recorded is not None and _weights_sha256(base) != recorded:
        raise CheckpointError(f"{base / checkpoint.MODEL_FILE} is not the base model the "
                              f"adapter in {directory} was trained on (its sha256 differs from "
                              f"{recorded[:12]}..., recorded in {ADAPTER_CONFIG_FILE}): it "
                              "changed since, and the adapter would give wrong answers on it")
    return peft_model.eval()
