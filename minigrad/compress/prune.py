"""Pruning a BERT: zeroing the weights it can spare, or removing whole attention heads.

**Magnitude pruning** (unstructured; Zhu & Gupta 2017, "To prune, or not to prune"). The
weights pruned are the weight matrices of the encoder's Linear layers, six per layer
(:data:`PRUNABLE`): ``attention.self.{query,key,value}``, ``attention.output.dense``,
``intermediate.dense`` and ``output.dense`` of every ``encoder.layer.i``. Nothing else: not the
embeddings, the LayerNorms or any bias (few numbers, each used by every token), not the pooler,
and not the classifier head, which is tiny (H×C: 768 weights for MiniLM's two classes), starts
fresh at fine-tuning and carries the whole decision; pruning it saves nothing and risks the
most. These are the matrices that BERT pruning papers prune (Sanh et al. 2020, Chen et al.
2020): 99.7% of the parameters of MiniLM's six layers, 47% of the whole model (the word
embeddings are most of the rest).

One **global threshold** over all of them: the k = round(s·N) weights of smallest |w| among all
N are pruned (a tie at the threshold broken arbitrarily: exactly k), so a layer of smaller
weights loses more of them. Each pruned layer keeps a **mask** buffer ``weight_mask`` (the
weight's shape, bool: True keeps a weight, False prunes it, a byte each where a float32 mask
would double the checkpoint; ``torch.nn.utils.prune``'s name): it is
saved in ``model.safetensors`` with the weights, and ``from_pretrained`` / ``Classifier.load``
give it back. After every optimizer step the masks are applied again, w ← w ⊙ m, so a pruned
weight is exactly 0 whenever the model is used (the optimizer moves it during the step; the mask
undoes that). Masks only tighten: a weight once pruned stays pruned, and a higher target prunes
the smallest |w| among the weights still kept.

The **cubic schedule** (Zhu & Gupta, eq. 1) raises the sparsity from s_i to s_f between steps
t_0 and t_0 + n·Δt, fast at first, while many weights are redundant, then slowly::

    s_t = s_f + (s_i − s_f)·(1 − (t − t_0)/(n·Δt))³     t_0 ≤ t ≤ t_0 + n·Δt

with no pruning before t_0 and s_f after; the masks are recomputed every Δt steps
(``frequency``). :class:`MagnitudePruner` is that schedule as ``fit``'s per-step hook.

**Head pruning** (structured; Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better
than One?"). A gate ξ_h = 1 multiplies each head's output (``head_mask`` of
:class:`~minigrad.models.bert.BertModel`); the importance of head h is the expected size of the
loss's sensitivity to it (their eq. 2), summed here batch by batch::

    I_h = (1/n) Σ_b |∂L_b/∂ξ_h|          L_b: the loss of batch b, at ξ = 1

then divided by the ℓ2 norm of its layer's scores, as Michel et al. do (after Molchanov et al.
2017): without it, the layers whose gradients are largest would lose no heads. With batches of
one example this is exactly their E_x |∂L(x)/∂ξ_h|. :func:`prune_heads` then really removes
heads: their rows of the query, key and value weights and biases and their input columns of
``attention.output.dense`` are cut out, so the model computes less, and ``config.pruned_heads``
(Hugging Face's key, original head indices) records them, so that the saved model is rebuilt
with the same shapes. With the same weights, the pruned model computes what the whole model
computes with those heads' gates at 0 (to rounding: its sums have fewer, all nonzero, terms).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

import minigrad
from minigrad import backend, nn
from minigrad.models.bert import BertAttention, BertModel
from minigrad.models.pretrained import MASK
from minigrad.tensor import Tensor

# The Linear layers of each encoder layer that magnitude pruning prunes (their weights only).
PRUNABLE = ("attention.self.query", "attention.self.key", "attention.self.value",
            "attention.output.dense", "intermediate.dense", "output.dense")
_PRUNABLE_NAME = re.compile(r"(bert\.)?encoder\.layer\.\d+\.(" + "|".join(
    re.escape(p) for p in PRUNABLE) + ")")


def check_sparsity(value: float, name: str = "sparsity") -> float:
    """A sparsity (or a fraction of heads) as a float, refused outside [0, 1): 1 would prune
    everything."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _encoder(model: nn.Module) -> BertModel:
    encoder = getattr(model, "bert", model)
    if not isinstance(encoder, BertModel):
        raise TypeError(f"pruning takes a BertModel or a BERT with a head, got "
                        f"{type(model).__name__}")
    return encoder


# --- magnitude pruning ---------------------------------------------------------------------------

def prunable_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """The Linear layers whose weights magnitude pruning prunes, by their names in ``model``:
    :data:`PRUNABLE` of every encoder layer. A layer wrapped by another method (LoRA, int8) is
    refused: prune the plain model first."""
    _encoder(model)
    layers = {}
    for name, module in model.named_modules():
        if _PRUNABLE_NAME.fullmatch(name):
            if type(module) is not nn.Linear:
                raise ValueError(f"magnitude pruning works on plain Linear layers; {name} is a "
                                f"{type(module).__name__}: prune before wrapping the model")
            layers[name] = module
    return layers


def _masked_layers(model: nn.Module) -> list[nn.Linear]:
    """Every layer of ``model`` that holds a pruning mask."""
    return [m for m in model.modules() if isinstance(m, nn.Linear) and MASK in m._buffers]


def is_pruned(model: nn.Module) -> bool:
    """Whether any layer of ``model`` holds a pruning mask (``weight_mask``)."""
    return bool(_masked_layers(model))


def apply_masks(model: nn.Module) -> None:
    """w ← w ⊙ m in every layer that holds a mask: the pruned weights back to exactly 0."""
    for layer in _masked_layers(model):
        layer.weight.data *= layer.weight_mask


def global_magnitude_prune(model: nn.Module, sparsity: float) -> float:
    """Prune the k = round(sparsity·N) smallest-magnitude weights of the N in
    :func:`prunable_layers`, one threshold for all: set each layer's mask (adding it if
    missing), apply it, and return the sparsity reached, k/N.

    Masks only tighten: the weights a mask already prunes stay pruned, and the others are
    ranked by |w| to fill the remaining k − (already pruned); a target below the masks' present
    sparsity is refused.
    """
    sparsity = check_sparsity(sparsity)
    layers = list(prunable_layers(model).values())
    for layer in layers:
        if MASK not in layer._buffers:
            layer.register_buffer(MASK, layer.weight.xp.ones(layer.weight.shape, dtype=bool))
    xp = layers[0].weight.xp
    keep = xp.concatenate([layer.weight_mask.ravel() != 0 for layer in layers])  # (N,)
    n, k, pruned = keep.size, round(sparsity * keep.size), int(keep.size - keep.sum())
    if k < pruned:
        raise ValueError(f"the model's masks already prune {pruned / n:.4f} of its weights, "
                         f"more than sparsity {sparsity}: pruning masks only tighten")
    if k > pruned:
        free = xp.nonzero(keep)[0]  # (N - pruned,)
        scores = xp.concatenate([xp.abs(layer.weight.data).ravel() for layer in layers])[free]
        keep[free[xp.argpartition(scores, k - pruned - 1)[:k - pruned]]] = False  # exactly k
    start = 0
    for layer in layers:
        size = layer.weight.data.size
        layer.weight_mask = keep[start:start + size].reshape(layer.weight.shape)  # (out, in)
        start += size
    apply_masks(model)
    return k / n


def global_sparsity(model: nn.Module) -> float:
    """The fraction of the weights of :func:`prunable_layers` that are exactly 0."""
    weights = [layer.weight.data for layer in prunable_layers(model).values()]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.size for w in weights)


def cubic_sparsity(step: int, final_sparsity: float, start_step: int, end_step: int,
                   initial_sparsity: float = 0.0) -> float:
    """Zhu & Gupta's target sparsity at optimizer step ``step``: 0 before ``start_step``,
    s_f + (s_i − s_f)·(1 − (t − t_0)/(t_end − t_0))³ from ``start_step`` (s_i) to ``end_step``
    (s_f), and s_f after it. ``start_step == end_step`` prunes to s_f at once."""
    final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
    initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
    if not 0 <= start_step <= end_step:
        raise ValueError(f"the pruning schedule needs 0 <= start_step <= end_step, got "
                         f"{start_step} and {end_step}")
    if step < start_step:
        return 0.0
    if step >= end_step:
        return final_sparsity
    left = 1 - (step - start_step) / (end_step - start_step)  # 1 at t_0, 0 at the end
    return final_sparsity + (initial_sparsity - final_sparsity) * left ** 3


class MagnitudePruner:
    """Gradual magnitude pruning as :func:`minigrad.train.fit`'s ``on_step`` hook::

        pruner = MagnitudePruner(model, 0.5, start_step=0, end_step=700, frequency=10)
        fit(model, loss_fn, data, optimizer, config, on_step=pruner)

    Built before training, it gives each prunable layer a mask of ones (so a checkpoint holds
    the masks from the first epoch on, and resuming restores them). Called after optimizer step
    t, it tightens the masks to :func:`cubic_sparsity` at t on the steps t_0, t_0 + Δt, ...
    (and at every step past the end until s_f is reached; a target below the masks' sparsity,
    as for a model pruned further before, leaves them as they are), then applies them.
    """

    def __init__(self, model: nn.Module, final_sparsity: float, start_step: int, end_step: int,
                 initial_sparsity: float = 0.0, frequency: int = 1):
        if frequency < 1:
            raise ValueError(f"the pruning frequency must be at least 1 step, got {frequency}")
        cubic_sparsity(start_step, final_sparsity, start_step, end_step, initial_sparsity)
        self.model = model
        self.final_sparsity, self.initial_sparsity = final_sparsity, initial_sparsity
        self.start_step, self.end_step, self.frequency = start_step, end_step, frequency
        for layer in prunable_layers(model).values():
            if MASK not in layer._buffers:
                layer.register_buffer(MASK, layer.weight.xp.ones(layer.weight.shape, dtype=bool))

    def sparsity_at(self, step: int) -> float:
        return cubic_sparsity(step, self.final_sparsity, self.start_step, self.end_step,
                              self.initial_sparsity)

    def __call__(self, step: int) -> None:
        due = (step - self.start_step) % self.frequency == 0 or step >= self.end_step
        if step >= self.start_step and due:
            masks = [layer.weight_mask for layer in prunable_layers(self.model).values()]
            pruned = sum(m.size - int(m.sum()) for m in masks)
            target = self.sparsity_at(step)
            if round(target * sum(m.size for m in masks)) > pruned:
                global_magnitude_prune(self.model, target)
        apply_masks(self.model)


# --- head pruning -----------------------------------------------------------------------------

def _classifier_loss(model: nn.Module, batch: Mapping[str, Any], head_mask: Tensor) -> Tensor:
    """The loss of a BERT with a head on an encoded batch (``input_ids``, ``attention_mask``,
    ``token_type_ids``, ``labels``), with the heads' gates."""
    device = next(model.parameters()).device
    on = {key: backend.to_device(a, device) for key, a in batch.items()}
    return model(on["input_ids"], on.get("attention_mask"), on.get("token_type_ids"),
                 labels=on["labels"], head_mask=head_mask).loss


def head_importance(model: nn.Module, batches: Iterable[Any],
                    loss_fn: Callable[[nn.Module, Any, Tensor], Tensor] | None = None,
                    normalize: bool = True) -> np.ndarray:
    """Michel et al.'s importance of every attention head, (L, A), ``float64``:
    I_h = (1/n) Σ_b |∂L_b/∂ξ_h| over the n batches, each layer's row divided by its ℓ2 norm
    when ``normalize``.

    ``batches`` are encoded batches (dicts with ``input_ids``, ``attention_mask``,
    ``token_type_ids`` and ``labels``) for the default loss, the model's own (a BERT with a
    classification or masked-LM head); or anything ``loss_fn(model, batch, head_mask)`` takes,
    returning the scalar loss computed with ``head_mask``. The model runs in eval mode (no
    dropout); its weights get no gradient, and its mode and ``requires_grad`` flags are
    restored. A head already pruned from the model has importance NaN.
    """
    encoder = _encoder(model)
    config = encoder.config
    like = encoder.embeddings.word_embeddings.weight
    L, A = config.num_hidden_layers, config.num_attention_heads  # noqa: N806
    gate = Tensor(like.xp.ones((L, A), dtype=like.dtype), requires_grad=True)  # ξ, (L, A)
    loss_fn = loss_fn or _classifier_loss
    total, n = np.zeros((L, A)), 0
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        with minigrad.enable_grad():
            for batch in batches:
                gate.grad = None
                loss_fn(model, batch, gate).backward()
                total += np.abs(backend.to_device(gate.grad, "cpu"))  # |∂L_b/∂ξ|, (L, A)
                n += 1
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    if n == 0:
        raise ValueError("head_importance: no batch to compute the importance on")
    importance = total / n
    for layer, heads in config.pruned_heads.items():
        importance[layer, heads] = np.nan
    if normalize:
        norms = np.sqrt(np.nansum(importance ** 2, axis=1, keepdims=True))  # (L, 1)
        importance = importance / np.where(norms > 0, norms, 1.0)
    return importance


def heads_to_prune(importance: np.ndarray, fraction: float) -> dict[int, list[int]]:
    """The ``round(fraction·n)`` least important of the n heads left (NaN: already pruned),
    chosen over all layers at once, least important first, skipping a head that is the last of
    its layer: ``{layer: [heads]}`` for :func:`prune_heads`. Ties go to the lower (layer, head).
    """
    fraction = check_sparsity(fraction, "the fraction of heads to prune")
    importance = np.asarray(importance, dtype=np.float64)
    if importance.ndim != 2:
        raise ValueError(f"importance must be (num_layers, num_heads), got shape "
                         f"{importance.shape}")
    left = ~np.isnan(importance)  # (L, A)
    count = round(fraction * int(left.sum()))
    most = int(left.sum()) - importance.shape[0]
    if count > most:
        raise ValueError(f"pruning {fraction:g} of the {int(left.sum())} heads left means "
                         f"pruning {count}, but at most {most} can go: one head must stay in "
                         f"each of the {importance.shape[0]} layers")
    kept = left.sum(axis=1)  # (L,)
    chosen: dict[int, list[int]] = {}
    order = sorted(zip(*np.nonzero(left), strict=True),
                   key=lambda lh: (importance[lh], lh[0], lh[1]))
    for layer, head in order:
        if sum(map(len, chosen.values())) == count:
            break
        if kept[layer] > 1:
            chosen.setdefault(int(layer), []).append(int(head))
            kept[layer] -= 1
    return {layer: sorted(heads) for layer, heads in sorted(chosen.items())}


def prune_heads(model: nn.Module, heads_to_prune: Mapping[int, Iterable[int]]) -> None:
    """Remove attention heads from ``model`` in place, as Hugging Face's
    ``BertModel.prune_heads``: ``{layer: [heads]}``, original head indices (a head already
    pruned is skipped).

    Each removed head's D rows of the query, key and value weights and biases, and its D input
    columns of ``attention.output.dense`` (and of their pruning masks, if any), are cut out;
    ``config.pruned_heads`` records the heads. Refused before anything changes: an unknown layer
    or head, a layer left with no head, an attention layer that is not made of plain Linear
    layers. The layers get new Parameters: build the optimizer after pruning.
    """
    encoder = _encoder(model)
    config = encoder.config
    L, A = config.num_hidden_layers, config.num_attention_heads  # noqa: N806
    plan = {}
    for layer, heads in heads_to_prune.items():
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < L:
            raise ValueError(f"prune_heads: no layer {layer!r}; the layers are 0..{L - 1}")
        heads = list(heads)
        bad = [h for h in heads if isinstance(h, bool) or not isinstance(h, int)
               or not 0 <= h < A]
        if bad:
            raise ValueError(f"prune_heads: layer {layer} has no head {bad[0]!r}; its heads are "
                             f"0..{A - 1}")
        kept = config.kept_heads(layer)
        removed = set(heads) & set(kept)
        if len(removed) == len(kept):
            raise ValueError(f"prune_heads: removing heads {sorted(set(heads))} would leave "
                             f"layer {layer} without a head; at least one must stay")
        attention = encoder.encoder.layer[layer].attention
        for name, linear in (("query", attention.self.query), ("key", attention.self.key),
                             ("value", attention.self.value),
                             ("output.dense", attention.output.dense)):
            if type(linear) is not nn.Linear:
                raise ValueError(f"prune_heads: layer {layer}'s attention {name} is a "
                                f"{type(linear).__name__}, not a plain Linear: prune heads "
                                "before wrapping the model")
        if removed:
            plan[layer] = (kept, removed)
    for layer, (kept, removed) in plan.items():
        _cut_heads(encoder.encoder.layer[layer].attention, kept, removed, config.head_size)
        config.pruned_heads[layer] = sorted(set(config.pruned_heads.get(layer, ())) | removed)


def _cut_heads(attention: BertAttention, kept: list[int], removed: set[int], d: int) -> None:
    """Keep the rows (q, k, v) and columns (output projection) of the heads not removed."""
    xp = attention.self.query.weight.xp
    positions = [i for i, head in enumerate(kept) if head not in removed]
    index = xp.concatenate([xp.arange(i * d, (i + 1) * d) for i in positions])  # (A'·D,)
    for linear in (attention.self.query, attention.self.key, attention.self.value):
        _keep(linear, index, dim=0)  # weight (A·D, H) -> (A'·D, H), bias (A'·D,)
    _keep(attention.output.dense, index, dim=1)  # weight (H, A·D) -> (H, A'·D)
    attention.self.num_attention_heads = len(positions)
    attention.self.all_head_size = len(positions) * d


def _keep(linear: nn.Linear, index: Any, dim: int) -> None:
    """``linear`` with only the outputs (dim 0) or inputs (dim 1) at ``index``, in place."""
    weight = linear.weight
    linear.weight = nn.Parameter(weight.xp.take(weight.data, index, axis=dim),
                                 requires_grad=weight.requires_grad)
    if MASK in linear._buffers:
        linear.weight_mask = weight.xp.take(linear.weight_mask, index, axis=dim)
    if dim == 0:
        if linear.bias is not None:
            linear.bias = nn.Parameter(linear.bias.data[index],
                                       requires_grad=linear.bias.requires_grad)
        linear.out_features = int(index.size)
    else:
        linear.in_features = int(index.size)


def num_heads(model: nn.Module) -> int:
    """How many attention heads ``model`` has left, over all layers."""
    config = _encoder(model).config
    return sum(len(config.kept_heads(i)) for i in range(config.num_hidden_layers))

