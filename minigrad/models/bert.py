"""A BERT encoder and its task heads, in one file (after nanoGPT's ``model.py``).

Follow one batch from top to bottom:

    input_ids (B, S) ──► BertEmbeddings: word + position + token-type rows, LayerNorm, dropout
                     ──► N × BertLayer (post-LN, as the original BERT):
                           h = LayerNorm(h + Dropout(SelfAttention(h)·W_o))
                           h = LayerNorm(h + Dropout(GELU(h·W_1)·W_2))
                     ──► last_hidden_state (B, S, H)
                     ──► a head: pooled [CLS] → classifier, every token → classifier,
                         or every token → vocabulary logits (masked LM)

Shapes: B batch, S sequence length, H hidden size, A attention heads, D = H/A head size,
I intermediate (feed-forward) size, V vocabulary size, C number of labels. A layer whose heads
were pruned (``config.pruned_heads``, :mod:`minigrad.compress.prune`) has A_l < A heads: its
query/key/value project H -> A_l·D and its output projection A_l·D -> H.

The class and parameter names are Hugging Face's (``BertModel``,
``encoder.layer.0.attention.self.query.weight``...), so a ``transformers`` checkpoint maps onto
these modules name by name, and its ``config.json`` onto :class:`BertConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from minigrad import backend, nn
from minigrad.nn import functional as F
from minigrad.tensor import Tensor

# Hugging Face's ``hidden_act`` names; "gelu_new" is the tanh approximation. Each layer is
# called as act(x) or act(x, bias) = act(x + bias), the bias add inside the activation's op.
ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
}

# The compact BERTs of Turc et al. (2019), "Well-Read Students Learn Better".
NAMED_CONFIGS: dict[str, dict[str, int]] = {
    "bert-tiny": {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2,
                  "intermediate_size": 512},
    "bert-mini": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
                  "intermediate_size": 1024},
}


@dataclass
class BertConfig:
    """The model's sizes and settings, with Hugging Face's field names and defaults
    (the defaults are bert-base: L=12, H=768, A=12)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None  # None: use hidden_dropout_prob
    num_labels: int = 2
    # {layer: [heads removed]}, original head indices, as Hugging Face's config.json keeps them
    pruned_heads: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "num_labels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"BertConfig: hidden_act {self.hidden_act!r} is not one of "
                             f"{sorted(ACTIVATIONS)}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            p = getattr(self, name)
            if p is not None and not 0.0 <= p < 1.0:
                raise ValueError(f"BertConfig: {name} must be in [0, 1), got {p}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"BertConfig: pad_token_id {self.pad_token_id} is not an id of a "
                             f"vocabulary of {self.vocab_size}")
        if self.layer_norm_eps <= 0 or self.initializer_range <= 0:
            raise ValueError(f"BertConfig: layer_norm_eps ({self.layer_norm_eps}) and "
                             f"initializer_range ({self.initializer_range}) must be positive")
        self.pruned_heads = self._checked_pruned_heads()

    def _checked_pruned_heads(self) -> dict[int, list[int]]:
        """``pruned_heads`` with int layer keys (JSON gives strings) and sorted head lists;
        a layer or head that does not exist, or a layer left without a head, is refused."""
        if not isinstance(self.pruned_heads, dict):
            raise ValueError(f"BertConfig: pruned_heads must be a dict {{layer: [heads]}}, got "
                             f"{self.pruned_heads!r}")
        L, A = self.num_hidden_layers, self.num_attention_heads  # noqa: N806
        checked = {}
        for key, heads in self.pruned_heads.items():
            layer = int(key) if isinstance(key, str) and key.isdigit() else key
            if not isinstance(layer, int) or not 0 <= layer < L:
                raise ValueError(f"BertConfig: pruned_heads names layer {layer!r}; the layers are "
                                 f"0..{L - 1}")
            if (not isinstance(heads, list | tuple)
                    or not all(isinstance(h, int) and 0 <= h < A for h in heads)):
                raise ValueError(f"BertConfig: pruned_heads[{layer}] = {heads!r} must list heads "
                                 f"among 0..{A - 1}")
            if len(set(heads)) >= A:
                raise ValueError(f"BertConfig: pruned_heads[{layer}] removes all {A} heads of "
                                 "the layer; at least one must stay")
            checked[layer] = sorted(set(heads))
        return checked

    def kept_heads(self, layer: int) -> list[int]:
        """The original indices of the heads that layer ``layer`` still has, in order."""
        pruned = set(self.pruned_heads.get(layer, ()))
        return [h for h in range(self.num_attention_heads) if h not in pruned]

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def named(cls, name: str, **overrides: Any) -> BertConfig:
        """A named size (``"bert-tiny"``, ``"bert-mini"``) with any field overridden."""
        if name not in NAMED_CONFIGS:
            raise ValueError(f"unknown BERT config {name!r}; named configs: "
                             f"{sorted(NAMED_CONFIGS)}")
        return cls(**{**NAMED_CONFIGS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """From ``to_dict()`` or a Hugging Face ``config.json``: keys this model does not use
        (``architectures``, ``model_type``, ...) are ignored; the label count may come from
        ``id2label``. A checkpoint this model would compute wrongly is refused."""
        position_type = d.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(f"BertConfig.from_dict: position_embedding_type {position_type!r} "
                             "is not supported (only 'absolute')")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "num_labels" not in kwargs and "id2label" in d:
            kwargs["num_labels"] = len(d["id2label"])
        return cls(**kwargs)


# --- outputs ---------------------------------------------------------------------------------
@dataclass
class BertModelOutput:
    last_hidden_state: Tensor  # (B, S, H)
    pooler_output: Tensor | None  # (B, H), or None without a pooler


@dataclass
class SequenceClassifierOutput:
    loss: Tensor | None  # scalar, when labels are given
    logits: Tensor  # (B, C)


@dataclass
class TokenClassifierOutput:
    loss: Tensor | None
    logits: Tensor  # (B, S, C)


@dataclass
class MaskedLMOutput:
    loss: Tensor | None
    logits: Tensor  # (B, S, V)


# --- the encoder -----------------------------------------------------------------------------
class BertEmbeddings(nn.Module):
    """x = LayerNorm(word[input_ids] + position[0..S-1] + token_type[token_type_ids]), dropout.

    ``inputs_embeds`` (B, S, H), when given, takes the place of the word rows (Hugging Face's
    argument: prompt tuning prepends trainable vectors there).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Any, token_type_ids: Any, inputs_embeds: Tensor | None = None,
                ) -> Tensor:
        xp = self.word_embeddings.weight.xp
        words = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        positions = xp.arange(words.shape[1])  # (S,)
        x = (words  # (B, S, H)
             + self.position_embeddings(positions)  # (S, H), broadcast over B
             + self.token_type_embeddings(token_type_ids))  # (B, S, H)
        return self.dropout(self.LayerNorm(x))  # (B, S, H)


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention, softmax(QKᵀ/√D)·V per head, padded keys masked.

    Padded keys (attention_mask 0) get the dtype's most negative score before the softmax, so
    they get zero weight; dropout acts on the attention weights. All of that is one op,
    ``F.scaled_dot_product_attention`` (a fused kernel per (batch, head) on the Numba backend).
    A ``head_gate`` ξ (A,) multiplies each head's output: ξ_h·softmax(Q_hK_hᵀ/√D)·V_h (Michel
    et al. 2019's gate; 0 masks the head, and ∂L/∂ξ_h measures its importance). The layer has
    ``num_heads`` heads, fewer than the config's once some were pruned.
    """

    def __init__(self, config: BertConfig, num_heads: int | None = None):
        super().__init__()
        h = config.hidden_size
        self.num_attention_heads = config.num_attention_heads if num_heads is None else num_heads
        self.head_size = config.head_size
        self.all_head_size = self.num_attention_heads * self.head_size  # A·D = H unless pruned
        self.query = nn.Linear(h, self.all_head_size)
        self.key = nn.Linear(h, self.all_head_size)
        self.value = nn.Linear(h, self.all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, x: Tensor, key_is_padding: Any, head_gate: Tensor | None = None) -> Tensor:
        B, S, _ = x.shape  # noqa: N806 (shape names, as in the comments)
        A, D = self.num_attention_heads, self.head_size  # noqa: N806

        def split_heads(t: Tensor) -> Tensor:
            return t.view(B, S, A, D).transpose(1, 2)  # (B, S, A·D) -> (B, A, S, D)

        q = split_heads(self.query(x))  # (B, A, S, D)
        k = split_heads(self.key(x))  # (B, A, S, D)
        v = split_heads(self.value(x))  # (B, A, S, D)
        context = F.scaled_dot_product_attention(  # softmax(QKᵀ/√D)·V, (B, A, S, D)
            q, k, v, key_padding_mask=key_is_padding, dropout_p=self.dropout.p,
            training=self.training)
        if head_gate is not None:
            context = context * head_gate.view(1, A, 1, 1)  # ξ_h·head_h, (B, A, S, D)
        return context.transpose(1, 2).reshape(B, S, A * D)  # (B, S, A·D)


class BertSelfOutput(nn.Module):
    """h = LayerNorm(x + Dropout(attention·W_o + b_o)): projection A·D -> H, residual, post-LN."""

    def __init__(self, config: BertConfig, num_heads: int | None = None):
        super().__init__()
        heads = config.num_attention_heads if num_heads is None else num_heads
        self.dense = nn.Linear(heads * config.head_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, attention: Tensor, x: Tensor) -> Tensor:
        return self.LayerNorm(x + self.dropout(self.dense(attention)))  # (B, S, H)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig, num_heads: int | None = None):
        super().__init__()
        self.self = BertSelfAttention(config, num_heads)
        self.output = BertSelfOutput(config, num_heads)

    def forward(self, x: Tensor, key_is_padding: Any, head_gate: Tensor | None = None) -> Tensor:
        return self.output(self.self(x, key_is_padding, head_gate), x)  # (B, S, H)


class BertIntermediate(nn.Module):
    """The feed-forward's first half: act(h·W_1 + b_1), H -> I (act is GELU in BERT).

    The bias goes to the activation, which adds it in its own op (GELU's is bias + GELU, one
    pass with a fused kernel), instead of in the linear layer. A ``dense`` that is not a plain
    :class:`~minigrad.nn.Linear` (a LoRA, int8 or pruned layer put in its place) is called as
    the module it is, bias included, and the activation gets no bias.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACTIVATIONS[config.hidden_act]()

    def forward(self, x: Tensor) -> Tensor:
        if type(self.dense) is not nn.Linear:  # a wrapped layer: its own forward, bias included
            return self.intermediate_act_fn(self.dense(x))  # (B, S, I)
        u = F.linear(x, self.dense.weight)  # (B, S, I), h·W_1
        return self.intermediate_act_fn(u, self.dense.bias)  # (B, S, I)


class BertOutput(nn.Module):
    """The feed-forward's second half: LayerNorm(x + Dropout(u·W_2 + b_2)), I -> H."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, u: Tensor, x: Tensor) -> Tensor:
        return self.LayerNorm(x + self.dropout(self.dense(u)))  # (B, S, H)


class BertLayer(nn.Module):
    """One post-LN encoder layer: self-attention block, then feed-forward block."""

    def __init__(self, config: BertConfig, num_heads: int | None = None):
        super().__init__()
        self.attention = BertAttention(config, num_heads)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: Tensor, key_is_padding: Any, head_gate: Tensor | None = None) -> Tensor:
        h = self.attention(x, key_is_padding, head_gate)  # (B, S, H)
        return self.output(self.intermediate(h), h)  # (B, S, H)


class BertEncoder(nn.Module):
    """N layers; layer i has the heads ``config.kept_heads(i)`` (all, unless pruned)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config, len(config.kept_heads(i)))
                                   for i in range(config.num_hidden_layers))

    def forward(self, x: Tensor, key_is_padding: Any,
                head_gates: list[Tensor] | None = None) -> Tensor:
        for i, layer in enumerate(self.layer):
            x = layer(x, key_is_padding, None if head_gates is None else head_gates[i])  # (B,S,H)
        return x


class BertPooler(nn.Module):
    """pooled = tanh([CLS]·W + b): the first token's final state, for sentence-level tasks."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden: Tensor) -> Tensor:
        return self.activation(self.dense(hidden[:, 0]))  # (B, S, H) -> (B, H)


def init_bert_weights(module: nn.Module, std: float) -> None:
    """Hugging Face BERT's initialisation: Linear and Embedding weights N(0, std²) (the
    padding row zeroed), biases 0, LayerNorm weight 1 and bias 0."""
    if isinstance(module, nn.Linear):
        module.weight.data = backend.random_normal(module.weight.shape, module.weight.dtype,
                                                   module.weight.device) * std
        if module.bias is not None:
            module.bias.data = module.weight.xp.zeros_like(module.bias.data)
    elif isinstance(module, nn.Embedding):
        w = backend.random_normal(module.weight.shape, module.weight.dtype,
                                  module.weight.device) * std
        if module.padding_idx is not None:
            w[module.padding_idx] = 0
        module.weight.data = w
    elif isinstance(module, nn.LayerNorm):
        module.weight.data = module.weight.xp.ones_like(module.weight.data)
        module.bias.data = module.bias.xp.zeros_like(module.bias.data)


def _as_array(x: Any, name: str, like: Tensor) -> Any:
    """ids, a mask or labels (a Tensor, a list or an array) as an array on ``like``'s device."""
    a = x.data if isinstance(x, Tensor) else like.xp.asarray(x)
    if backend.device_of(a) != like.device:
        raise backend.DeviceError(f"{name} is on {backend.device_of(a)} but the model is on "
                                  f"{like.device}")
    return a


class BertModel(nn.Module):
    """The encoder: embeddings, N layers and (optionally) the [CLS] pooler."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def forward(self, input_ids: Any = None, attention_mask: Any = None,
                token_type_ids: Any = None, head_mask: Any = None,
                inputs_embeds: Tensor | None = None) -> BertModelOutput:
        """input_ids (B, S) ints; attention_mask (B, S), 1 for real tokens and 0 for padding
        (default all 1); token_type_ids (B, S), the segment of each token (default all 0).
        Instead of input_ids, inputs_embeds (B, S, H): the vectors to use as word rows.

        head_mask (L, A), or (A,) for every layer, as Hugging Face's: entry [i, h] multiplies
        the output of head h of layer i (1 keeps it, 0 masks it out). Give a Tensor that
        requires grad to get ∂L/∂ξ, the heads' importance. The columns of heads already pruned
        from the model (``config.pruned_heads``) are not used: those heads are gone."""
        like = self.embeddings.word_embeddings.weight
        xp = like.xp
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("BertModel: give either input_ids or inputs_embeds, not "
                             + ("both" if input_ids is not None else "neither"))
        if inputs_embeds is None:
            input_ids = _as_array(input_ids, "input_ids", like)  # (B, S)
            shape = tuple(input_ids.shape)
        else:
            shape = inputs_embeds.shape[:-1]
            if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
                raise ValueError(f"BertModel: inputs_embeds must be (batch, seq_len, "
                                 f"{self.config.hidden_size}), got {inputs_embeds.shape}")
        if len(shape) != 2:
            raise ValueError(f"BertModel: input_ids must be (batch, seq_len), got shape {shape}")
        B, S = shape  # noqa: N806 (shape names, as in the comments)
        if shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"BertModel: sequence length {S} exceeds max_position_embeddings "
                             f"{self.config.max_position_embeddings}")
        if attention_mask is None:
            attention_mask = xp.ones((B, S), dtype=xp.int64)
        if token_type_ids is None:
            token_type_ids = xp.zeros((B, S), dtype=xp.int64)
        attention_mask = _as_array(attention_mask, "attention_mask", like)  # (B, S)
        token_type_ids = _as_array(token_type_ids, "token_type_ids", like)  # (B, S)
        for name, a in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tuple(a.shape) != (B, S):
                raise ValueError(f"BertModel: {name} has shape {tuple(a.shape)}, but input_ids "
                                 f"has shape {(B, S)}")

        key_is_padding = attention_mask == 0  # (B, S)
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)  # (B, S, H)
        hidden = self.encoder(x, key_is_padding, self._head_gates(head_mask))  # (B, S, H)
        pooled = self.pooler(hidden) if self.pooler is not None else None  # (B, H)
        return BertModelOutput(last_hidden_state=hidden, pooler_output=pooled)

    def _head_gates(self, head_mask: Any) -> list[Tensor] | None:
        """head_mask (L, A) or (A,) -> each layer's gates over the heads it has, (A_l,)."""
        if head_mask is None:
            return None
        like = self.embeddings.word_embeddings.weight
        if not isinstance(head_mask, Tensor):
            head_mask = Tensor(_as_array(head_mask, "head_mask", like).astype(like.dtype))
        L, A = self.config.num_hidden_layers, self.config.num_attention_heads  # noqa: N806
        if head_mask.shape == (A,):
            head_mask = head_mask.view(1, A).expand(L, A)
        if head_mask.shape != (L, A):
            raise ValueError(f"BertModel: head_mask has shape {head_mask.shape}; it must be "
                             f"(num_layers, num_heads) = {(L, A)} or ({A},)")
        return [head_mask[i][like.xp.asarray(self.config.kept_heads(i))] for i in range(L)]


# --- task heads ("task adapter layers") --------------------------------------------------------
def _classifier_dropout(config: BertConfig) -> float:
    if config.classifier_dropout is not None:
        return config.classifier_dropout
    return config.hidden_dropout_prob


class BertForSequenceClassification(nn.Module):
    """logits = Dropout(pooled [CLS])·W + b, (B, C). Loss: cross-entropy over the C classes,
    or mean squared error when num_labels == 1 (regression), as in Hugging Face."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids: Any = None, attention_mask: Any = None,
                token_type_ids: Any = None, labels: Any = None, head_mask: Any = None,
                inputs_embeds: Tensor | None = None) -> SequenceClassifierOutput:
        pooled = self.bert(input_ids, attention_mask, token_type_ids, head_mask=head_mask,
                           inputs_embeds=inputs_embeds).pooler_output  # (B, H)
        logits = self.classifier(self.dropout(pooled))  # (B, C)
        loss = None
        if labels is not None:
            labels = _as_array(labels, "labels", logits)  # (B,)
            if self.num_labels == 1:
                loss = F.mse_loss(logits.view(-1), labels.reshape(-1).astype(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels.reshape(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


class BertForTokenClassification(nn.Module):
    """logits = Dropout(h_t)·W + b for every token t, (B, S, C). Loss: cross-entropy over the
    tokens whose label is not -100 (padding and word-piece continuations)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids: Any = None, attention_mask: Any = None,
                token_type_ids: Any = None, labels: Any = None, head_mask: Any = None,
                inputs_embeds: Tensor | None = None) -> TokenClassifierOutput:
        hidden = self.bert(input_ids, attention_mask, token_type_ids, head_mask=head_mask,
                           inputs_embeds=inputs_embeds).last_hidden_state  # (B, S, H)
        logits = self.classifier(self.dropout(hidden))  # (B, S, C)
        loss = None
        if labels is not None:
            labels = _as_array(labels, "labels", logits)  # (B, S)
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.reshape(-1))
        return TokenClassifierOutput(loss=loss, logits=logits)


class BertPredictionHeadTransform(nn.Module):
    """t = LayerNorm(GELU(h·W + b)), H -> H, before the vocabulary projection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACTIVATIONS[config.hidden_act]()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(x)))  # (B, S, H)


class BertLMPredictionHead(nn.Module):
    """logits = t·Eᵀ + bias, (B, S, V). The decoder's weight is set to the word-embedding
    matrix E by :class:`BertForMaskedLM` (tied), and its bias *is* ``bias``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(np.zeros(config.vocab_size, dtype=np.float32))
        self.decoder.bias = self.bias  # one Parameter, two names, as in Hugging Face

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.transform(x))  # (B, S, H) -> (B, S, V)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, x: Tensor) -> Tensor:
        return self.predictions(x)  # (B, S, V)


class BertForMaskedLM(nn.Module):
    """Predict the tokens behind [MASK]: vocabulary logits for every position, (B, S, V).

    The decoder weight is the word-embedding matrix itself (one Parameter under two names), so
    its gradient is the sum of what the embedding lookup and the output projection send it.
    Loss: cross-entropy over the positions whose label is not -100 (the unmasked tokens).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.cls.apply(lambda m: init_bert_weights(m, config.initializer_range))
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids: Any = None, attention_mask: Any = None,
                token_type_ids: Any = None, labels: Any = None, head_mask: Any = None,
                inputs_embeds: Tensor | None = None) -> MaskedLMOutput:
        hidden = self.bert(input_ids, attention_mask, token_type_ids, head_mask=head_mask,
                           inputs_embeds=inputs_embeds).last_hidden_state  # (B, S, H)
        logits = self.cls(hidden)  # (B, S, V)
        loss = None
        if labels is not None:
            labels = _as_array(labels, "labels", logits)  # (B, S)
            loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.reshape(-1))
        return MaskedLMOutput(loss=loss, logits=logits)
