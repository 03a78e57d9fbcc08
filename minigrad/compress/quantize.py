"""Dynamic int8 quantisation of the linear layers, as ``torch.ao.quantization.quantize_dynamic``.

A BERT classifier keeps half its weights, and does nearly all its arithmetic, in its linear
layers (MiniLM: 10.6M of its 22.7M parameters; the rest are the embedding tables). Dynamic
quantisation stores each Linear weight as int8 with one float32 scale per output channel,
quantises the activations as they arrive, batch by batch, and multiplies in integers.
Embeddings, LayerNorm, softmax, GELU and the attention scores stay float32.

**Weights** (once, :func:`quantize_weight`): symmetric, one scale per output channel c (row of
W, shape (out, in))::

    s_c = max_k |W_ck| / 127        Q_ck = clip(round(W_ck / s_c), −127, 127)  (int8)

so Ŵ_ck = s_c·Q_ck lies within s_c/2 of W_ck: rounding picks the nearest step of the grid, and
|W_ck / s_c| ≤ 127, so the clip (against the rounding of s_c) cuts nothing. −128 is never used:
the grid is symmetric about 0. A row of zeros gets s_c = 1 and Q = 0 (exact). One scale per row,
not per tensor, so a row of small weights is not crushed by another row's large ones.

**Activations** (every call, :func:`quantize_activation`): symmetric, one scale per row of the
input (per token), from this batch's values (dynamic: nothing is calibrated in advance)::

    s_i = max_k |x_ik| / 127        q_ik = round(x_ik / s_i)  in [−127, 127]

Per token rather than torch's one scale per tensor: BERT's hidden states have a few tokens and
dimensions far larger than the rest, and one scale for the whole batch spends the grid on them.
On 32 rotten-tomatoes reviews, MiniLM's last hidden state moved 24% (relative L2) from the float
model's with a scale per tensor, 7.5% with a scale per token; ``torch.ao.quantization.
quantize_dynamic`` (a scale per tensor, on an asymmetric grid of 7 bits on x86) moved it 28%
with weights quantised per channel, 40% with its default, one weight scale per tensor.
Per-token scales cost no more: each is one maximum over a row, and the output takes one more
multiplication per element.

**Output** (:class:`QuantizedLinear`), for row i of the input and output channel j::

    ŷ_ij = s_i·s_j·Σ_k q_ik·Q_jk + b_j

The sum is exact, in int32 (the kernel registry's ``"int8_matmul"``: the Numba kernel of
:mod:`minigrad.kernels.cpu.int8`, or :func:`int8_matmul`'s reference); the scaling is float32.

**How far from the float layer.** With x̂_i = s_i·q_i and Ŵ = s·Q, x̂_i·Ŵ_j − x_i·W_j =
(x̂_i − x_i)·Ŵ_j + x_i·(Ŵ_j − W_j), and each difference is at most half a step, so::

    |ŷ_ij − y_ij| ≤ (s_i/2)·Σ_k |Ŵ_jk| + (s_j/2)·Σ_k |x_ik|

to within float32 rounding (of x/s_i and of the scaling: a few parts in 10⁷ of the terms).
``tests/test_quantize.py`` asserts this bound.

**Inference only.** int8 values have no gradient: :class:`QuantizedLinear` refuses an input
that requires grad while gradients are recorded. Run it under :func:`minigrad.no_grad`
(``Classifier.predict`` and the evaluation loop do), and fine-tune before quantising.

**Storage.** A QuantizedLinear keeps its int8 ``weight`` (out, in) and float32 ``weight_scale``
(out,) as buffers, and its ``bias`` as a float32 Parameter, so the one writer
(:func:`minigrad.checkpoint.save_pretrained`) puts ``<layer>.weight`` (int8),
``<layer>.weight_scale`` and ``<layer>.bias`` into ``model.safetensors``, and ``config.json``
records the scheme and the quantised layers under ``"quantization_config"``
(:func:`quantization_config`). :func:`load_quantized` rebuilds the model from such a directory;
``Classifier.load`` (so ``minigrad predict``) calls it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import autograd, backend, nn
from minigrad.checkpoint import CONFIG_FILE, MODEL_FILE, CheckpointError, load_config
from minigrad.dtypes import is_floating
from minigrad.kernels import registry
from minigrad.models.pretrained import TASKS, read_config, read_tensors
from minigrad.tensor import Tensor

QUANTIZATION_CONFIG = "quantization_config"  # config.json's key, as Hugging Face names it
QUANT_METHOD = "minigrad_dynamic_int8"
QMAX = 127  # the grid is -127..127: symmetric, -128 unused

# The widest input the int32 sums allow: K·128·128 < 2**31 (kernels/cpu/int8.py: MAX_K).
MAX_IN_FEATURES = 2**17 - 1


def quantize_weight(weight: Any) -> tuple[Any, Any]:
    """Symmetric per-output-channel int8: W (out, in) → (Q int8 (out, in), s float32 (out,)),
    with s_c = max_k |W_ck| / 127 (1 for a row of zeros) and Q = clip(round(W / s), −127, 127),
    so |W − s·Q| ≤ s/2 element by element."""
    xp = backend.array_module(weight)
    w = weight.astype(xp.float64)  # the quotient W/s in float64: rounded once, at 2**-53
    if not bool(xp.isfinite(w).all()):
        raise ValueError(f"quantize_weight: the weight {tuple(weight.shape)} holds inf or NaN, "
                         "which int8 cannot represent")
    amax = xp.abs(w).max(axis=1)  # (out,)
    scale = xp.where(amax > 0, amax / QMAX, 1.0).astype(xp.float32)  # (out,)
    q = xp.clip(xp.rint(w / scale.astype(xp.float64)[:, None]), -QMAX, QMAX)  # (out, in)
    return q.astype(xp.int8), scale


def quantize_activation(x: Any) -> tuple[Any, Any]:
    """Symmetric int8 with one scale per row: x (M, K) → (q int8 (M, K), s (M, 1) of x's
    dtype), with s_i = max_k |x_ik| / 127 (1 for a row of zeros) and q = round(x / s) in
    [−127, 127]: |x − s·q| ≤ s/2."""
    xp = backend.array_module(x)
    amax = xp.abs(x).max(axis=1, keepdims=True)  # (M, 1)
    if not bool(xp.isfinite(amax).all()):
        raise ValueError(f"quantize_activation: the input {tuple(x.shape)} holds inf or NaN, "
                         "which int8 cannot represent")
    scale = xp.where(amax > 0, amax / QMAX, 1).astype(x.dtype)  # (M, 1)
    q = x / scale
    xp.rint(q, out=q)
    xp.clip(q, -QMAX, QMAX, out=q)  # against the rounding of s: |x / s| ≤ 127(1 + 2**-23)
    return q.astype(xp.int8), scale


def int8_matmul(a: Any, b: Any) -> Any:
    """a (M, K) int8 · b (K, N) int8 → (M, N) int32, exactly: the kernel registry's
    ``"int8_matmul"`` where it has one (the Numba kernel under the "numba" backend), else the
    reference here: the product in float64 (BLAS). It is exact: every product and partial sum is
    an integer of magnitude at most K·2¹⁴ < 2³¹, far inside the 2⁵³ below which float64 holds
    every integer, so no addition rounds, in whatever order BLAS sums."""
    kernel = registry.kernel("int8_matmul", a, b)
    if kernel is not None:
        return kernel(a, b)
    xp = backend.array_module(a)
    return (a.astype(xp.float64) @ b.astype(xp.float64)).astype(xp.int32)


class QuantizedLinear(nn.Module):
    """y = x Ŵᵀ + b with Ŵ = diag(weight_scale)·weight: an int8 weight (out, in) with a float32
    scale per output channel, and the input quantised to int8 per call, a scale per row (see
    the module docstring). Inference only. Build one from a trained layer with :meth:`from_float`
    (``torch.ao.nn.quantized.dynamic.Linear.from_float``); the constructor makes an empty one
    (zeros) for :func:`load_quantized` to fill."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"QuantizedLinear: in_features and out_features must be positive, "
                             f"got ({in_features}, {out_features})")
        if in_features > MAX_IN_FEATURES:
            raise ValueError(f"QuantizedLinear: in_features {in_features} is above "
                             f"{MAX_IN_FEATURES}, where the int32 sums could overflow")
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("weight", np.zeros((out_features, in_features), dtype=np.int8))
        self.register_buffer("weight_scale", np.ones(out_features, dtype=np.float32))
        self.bias = (nn.Parameter(np.zeros(out_features, dtype=np.float32), requires_grad=False)
                     if bias else None)

    @classmethod
    def from_float(cls, linear: nn.Linear) -> QuantizedLinear:
        """The int8 version of a trained :class:`~minigrad.nn.Linear`, on its device; the bias
        is copied, kept in float."""
        out_features, in_features = linear.weight.shape
        layer = cls(in_features, out_features, bias=linear.bias is not None)
        q, scale = quantize_weight(linear.weight.data)
        layer.to(linear.weight.device)
        layer.weight, layer.weight_scale = q, scale
        if linear.bias is not None:
            layer.bias = nn.Parameter(linear.bias.data.copy(), requires_grad=False)
        return layer

    def dequantized_weight(self) -> Any:
        """Ŵ = diag(s)·Q (out, in), in float32: the weight the layer computes with."""
        return self.weight.astype(self.weight_scale.dtype) * self.weight_scale[:, None]

    def forward(self, x: Tensor) -> Tensor:
        wanted = x.requires_grad or any(p.requires_grad for p in self.parameters())
        if wanted and autograd.is_grad_enabled():
            raise RuntimeError(f"QuantizedLinear({self.in_features}, {self.out_features}) is "
                               "inference-only (int8 has no gradient), but its input or bias "
                               "requires grad: run it under minigrad.no_grad(), and fine-tune "
                               "the float model before quantize_dynamic")
        data = x.data  # (..., in)
        if data.shape[-1:] != (self.in_features,) or not is_floating(data.dtype):
            raise ValueError(f"QuantizedLinear({self.in_features}, {self.out_features}): "
                             f"expected a float input (..., {self.in_features}), got "
                             f"{data.dtype} {tuple(data.shape)}")
        q, scale = quantize_activation(data.reshape(-1, self.in_features))  # (M, in), (M, 1)
        acc = int8_matmul(q, self.weight.T)  # (M, out) int32, exact
        y = acc.astype(data.dtype)
        y *= scale  # s_i, per row
        y *= self.weight_scale.astype(data.dtype, copy=False)  # s_j, per column
        if self.bias is not None:
            y += self.bias.data
        return Tensor(y.reshape(*data.shape[:-1], self.out_features))  # (..., out)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype=int8")


def _quantized_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, QuantizedLinear)]


def _replace(model: nn.Module, layers: dict[str, nn.Module]) -> None:
    """Put each of ``layers`` ({dotted name: module}) in the place of that submodule."""
    modules = dict(model.named_modules())
    for name, layer in layers.items():
        parent, _, child = name.rpartition(".")
        setattr(modules[parent], child, layer)


def quantize_dynamic(model: nn.Module, qconfig_spec: Iterable[type | str] | None = None,
                     inplace: bool = False) -> nn.Module:
    """Replace linear layers by :class:`QuantizedLinear` (int8 weights, activations quantised
    at run time), as ``torch.ao.quantization.quantize_dynamic``.

    Args:
        model: a float model, e.g. a fine-tuned BERT classifier.
        qconfig_spec: which layers: types (every submodule of exactly that type; only
            ``nn.Linear`` can be quantised) and/or submodule names (``"classifier"``,
            ``"bert.encoder.layer.0.attention.self.query"``). Default: ``{nn.Linear}``, every
            Linear, the task head included, as torch does.
        inplace: change ``model`` itself; otherwise (the default) a deep copy is quantised and
            ``model`` is left as it was.

    Returns:
        the quantised model. Embeddings, LayerNorm and everything else stay float32.

    Raises:
        ValueError: the model is already quantised (quantise the float model it came from); a
            name in ``qconfig_spec`` that is no Linear of the model (the Linear layers are
            named); a type other than ``nn.Linear``; a weight with inf or NaN.
    """
    already = _quantized_names(model)
    if already:
        raise ValueError(f"quantize_dynamic: the model is already quantised ({len(already)} "
                         f"QuantizedLinear layers, e.g. {already[0]}): quantise the float model "
                         "it came from")
    spec = {nn.Linear} if qconfig_spec is None else set(qconfig_spec)
    linears = {name: m for name, m in model.named_modules() if type(m) is nn.Linear}
    types = {s for s in spec if isinstance(s, type)}
    if types - {nn.Linear}:
        raise ValueError(f"quantize_dynamic: only nn.Linear can be quantised, got "
                         f"{sorted(t.__name__ for t in types - {nn.Linear})}")
    names = {s for s in spec if isinstance(s, str)}
    unknown = sorted(names - set(linears))
    if unknown:
        raise ValueError(f"quantize_dynamic: {', '.join(unknown)} is no Linear layer of "
                         f"{type(model).__name__}; its Linear layers: {', '.join(linears)}")
    chosen = [name for name in linears if nn.Linear in types or name in names]
    if not inplace:
        model = copy.deepcopy(model)
        linears = {name: m for name, m in model.named_modules() if type(m) is nn.Linear}
    _replace(model, {name: QuantizedLinear.from_float(linears[name]) for name in chosen})
    return model


def quantization_config(model: nn.Module) -> dict[str, Any] | None:
    """``config.json``'s ``"quantization_config"`` for a quantised model (None for a float
    one): the scheme, and the names of the quantised layers, for :func:`load_quantized`."""
    names = _quantized_names(model)
    if not names:
        return None
    return {"quant_method": QUANT_METHOD, "bits": 8,
            "weights": "int8, symmetric, one float32 scale per output channel",
            "activations": "int8, symmetric, one scale per token (row), computed at run time",
            "modules": names}


def linear_nbytes(model: nn.Module) -> int:
    """The bytes of the model's linear layers (weights, scales and biases): float32 Linear
    layers and QuantizedLinear layers alike, so the two versions of a model compare."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            total += m.weight.data.nbytes + (0 if m.bias is None else m.bias.data.nbytes)
        elif isinstance(m, QuantizedLinear):
            total += m.weight.nbytes + m.weight_scale.nbytes + (
                0 if m.bias is None else m.bias.data.nbytes)
    return total


def load_quantized(directory: str | Path, task: str) -> nn.Module:
    """The quantised model of a directory that :func:`quantize_dynamic` + ``save_pretrained``
    wrote (``config.json`` has ``"quantization_config"``), in evaluation mode.

    The float model of ``config.json``'s sizes is built, the layers the config names are
    replaced by empty :class:`QuantizedLinear` layers, and every tensor of ``model.safetensors``
    is loaded, strictly: a missing, unexpected or misshapen tensor, or a float weight where int8
    belongs, is a :class:`~minigrad.checkpoint.CheckpointError` naming the file.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    spec = load_config(directory).get(QUANTIZATION_CONFIG)
    if not isinstance(spec, dict) or spec.get("quant_method") != QUANT_METHOD \
            or not isinstance(spec.get("modules"), list):
        raise CheckpointError(f"{config_path}: quantization_config {spec!r} is not minigrad's "
                              f"(quant_method {QUANT_METHOD!r} with a list of modules)")
    model = TASKS[task](read_config(directory))
    linears = {name: m for name, m in model.named_modules() if type(m) is nn.Linear}
    unknown = [name for name in spec["modules"] if name not in linears]
    if unknown:
        raise CheckpointError(f"{config_path}: quantization_config names {unknown[0]!r}, which "
                              f"is no Linear layer of {type(model).__name__}")
    _replace(model, {name: QuantizedLinear(linears[name].in_features, linears[name].out_features,
                                           bias=linears[name].bias is not None)
                     for name in spec["modules"]})
    path = directory / MODEL_FILE
    try:
        model.load_state_dict(read_tensors(path))
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the quantised model of {config_path}: "
                              f"{exc}") from None
    return model.eval()
