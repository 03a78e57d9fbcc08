"""Every differentiable op, as a function on Tensors.

These functions check their arguments (naming shapes, dtypes and dims in every error), put the
arguments in canonical form and call a :class:`~minigrad.autograd.Function`. The Functions live
in the submodules, forward and backward side by side:

* :mod:`.elementwise`: ``+ - * / ** neg exp log sqrt tanh sigmoid relu abs clip maximum where
  masked_fill`` and dtype/device copies;
* :mod:`.reduce`: ``sum mean max min var``, ``prod logsumexp``, ``max(dim)``'s values;
* :mod:`.shape`: ``reshape permute expand`` indexing, ``cat stack``, ``tril triu repeat
  repeat_interleave pad`` (``split chunk unflatten movedim`` are views made of these);
* :mod:`.einsum`: ``einsum``;
  masked_fill`` and dtype/device copies; ``minimum erf rsqrt sin cos log1p expm1 sign floor
  ceil round lerp silu softplus mish hardtanh leaky_relu elu`` (``isnan isinf isfinite`` give
  bool tensors outside the graph);
* :mod:`.reduce`: ``sum mean max min var``;
* :mod:`.shape`: ``reshape permute expand`` indexing, ``cat stack``;
* :mod:`.matmul`: ``@``;
* :mod:`.nn`: ``linear softmax log_softmax gelu bias_gelu layer_norm rms_norm
  scaled_dot_product_attention embedding dropout``;
* :mod:`.loss`: ``cross_entropy binary_cross_entropy binary_cross_entropy_with_logits``;
* :mod:`.indexing`: ``gather scatter scatter_add index_select masked_select``
  (``take_along_dim`` is a gather);
* :mod:`.scan`: ``cumsum cumprod flip roll`` and the order of ``sort argsort topk`` (sort and
  topk are gathers by that order).
* :mod:`.loss`: ``cross_entropy`` (class ids or probabilities) ``binary_cross_entropy
  binary_cross_entropy_with_logits nll_loss kl_div smooth_l1_loss huber_loss``.

Binary ops first bring their operands to one dtype by PyTorch's promotion rules
(:func:`~minigrad.ops.common.result_type`). The in-place ops (``add_``, ``x += y``,
``x[i] = v``, ...) are at the end of this file: each is its out-of-place op written back into the
tensor's own array, with a version bump (see :func:`_write_inplace`). Inside
``mg.autocast``, the ops decorated with :func:`autocast_to` cast their floating-point
arguments first: to the half dtype (matmul, linear, attention, ...) or to float32 (softmax,
the norms, losses and reductions).
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from minigrad import autograd, backend
from minigrad import tensor as _tensor_module  # circular: tensor.py imports this package
from minigrad.dtypes import is_floating, is_half
from minigrad.ops import einsum as EIN
from minigrad.ops import elementwise as E
from minigrad.ops import indexing as IX
from minigrad.ops import loss as L
from minigrad.ops import nn as N
from minigrad.ops import reduce as R
from minigrad.ops import scan as SC
from minigrad.ops import shape as S
from minigrad.ops.common import (
    broadcast_shape,
    check,
    is_scalar,
    normalize_dim,
    normalize_dims,
    promote_types,
    result_type,
)
from minigrad.ops.matmul import MatMul

if TYPE_CHECKING:
    from minigrad.tensor import Tensor


def _is_tensor(x: Any) -> bool:
    return isinstance(x, _tensor_module.Tensor)


# --- autocast (minigrad.amp.autocast): which ops compute in half precision, which in float32 --
def autocast_to(policy: str) -> Callable[[Callable], Callable]:
    """Decorate an op with its autocast policy, as torch's lists name them. Inside an autocast
    region of dtype D for device d, every floating-point Tensor argument on d (float64 aside,
    as in torch) is cast before the op runs:

    * ``"half"`` (matmul, linear, einsum, scaled_dot_product_attention, and bias_gelu, whose
      bias is a linear layer's, which torch's linear casts too): to D. A parameter's
      copy (a float32 leaf that requires grad) is made once per region and reused (torch's
      cache), unless the parameter was written in place since;
    * ``"float32"`` (softmax, log_softmax, layer_norm, rms_norm, the losses and the reductions
      sum, mean, var, std, prod, logsumexp, cumsum, cumprod): half inputs to float32, torch's
      CUDA list (on the CPU torch runs these in the input's dtype).

    Each cast is a differentiable op, so gradients flow back to the float32 tensors in float32.
    """
    def decorate(op: Callable) -> Callable:
        @functools.wraps(op)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = autograd.autocast_state()
            if state is None:
                return op(*args, **kwargs)
            device, dtype, cache = state
            target = dtype if policy == "half" else _tensor_module.float32

            def convert(x: Any) -> Any:
                if not (_is_tensor(x) and x.device == device and is_floating(x.dtype)
                        and x.dtype != np.float64 and x.dtype != target):
                    return x
                if policy == "float32" and not is_half(x.dtype):
                    return x
                cached = policy == "half" and cache
                return _autocast_cached(x, target) if cached else cast(x, target)

            args = tuple(convert(a) for a in args)
            kwargs = {k: convert(v) for k, v in kwargs.items()}
            return op(*args, **kwargs)

        return wrapper
    return decorate


def _autocast_cached(x: Tensor, dtype: np.dtype) -> Tensor:
    """x cast to ``dtype``; a parameter's copy is cached for the autocast region (see
    :func:`autocast_to`). Only while recording a graph: a copy made under no_grad has no
    edge back to the parameter and must not serve a later forward that needs one."""
    if not (x.requires_grad and x.is_leaf and x._base is None and x.dtype == np.float32
            and autograd.is_grad_enabled()):
        return cast(x, dtype)
    cache = autograd.autocast_cache
    hit = cache.get(id(x))
    if (hit is not None and hit[0] is x and hit[1] == x._version and hit[2] == dtype
            and not hit[3]._ctx.freed):
        return hit[3]
    copy = cast(x, dtype)
    cache[id(x)] = (x, x._version, dtype, copy)
    return copy


def _tensor(x: Any) -> Tensor:
    return x if _is_tensor(x) else _tensor_module.Tensor(x)


def _array_on(x: Any, ref: Tensor) -> Any:
    """A constant argument (mask, index, target) as an array on ``ref``'s device. A host scalar
    (a NumPy scalar or 0-d array) goes to the GPU beside a GPU tensor, as torch takes a 0-d CPU
    tensor there; any other array must already be on ``ref``'s device."""
    data = x.data if _is_tensor(x) else x
    host_scalar = backend.device_of(data) == "cpu" and getattr(data, "shape", None) == ()
    if backend.device_of(data) != ref.device and hasattr(data, "shape") and not host_scalar:
        raise backend.DeviceError(
            f"expected a {ref.device} array beside a {ref.device} tensor of shape {ref.shape}, "
            f"got a {backend.device_of(data)} array of shape {tuple(data.shape)}"
        )
    return ref.xp.asarray(data)


# --- elementwise ---------------------------------------------------------------------------
def _promoted(*operands: Any, floating: bool = False) -> list[Any]:
    """The operands of a binary op in the one dtype PyTorch computes it in (``result_type``;
    ``floating``: at least float32, as true division). Tensors are cast (differentiably), arrays
    converted; numbers stay numbers and take that dtype in ``Function.apply``."""
    dtype = result_type(*operands)
    if floating and not is_floating(dtype):
        dtype = _tensor_module.float32
    out = []
    for x in operands:
        if _is_tensor(x):
            x = cast(x, dtype)
        elif not is_scalar(x):
            x = (x if hasattr(x, "astype") else np.asarray(x)).astype(dtype, copy=False)
        out.append(x)
    return out


def add(a: Any, b: Any) -> Tensor:
    return E.Add.apply(*_promoted(a, b))


def sub(a: Any, b: Any) -> Tensor:
    """a - b; refused when either side is bool, as in torch (invert a mask with ``~``)."""
    for x in (a, b):
        if isinstance(x, (bool, np.bool_)) or getattr(x, "dtype", None) == np.bool_:
            raise TypeError("subtraction with a bool operand is not supported (torch refuses it "
                            "too); to invert a mask use ~mask or mask.logical_not()")
    return E.Sub.apply(*_promoted(a, b))


def mul(a: Any, b: Any) -> Tensor:
    return E.Mul.apply(*_promoted(a, b))


def div(a: Any, b: Any) -> Tensor:
    """True division: integer operands give float32, as in PyTorch."""
    return E.Div.apply(*_promoted(a, b, floating=True))


def pow(a: Any, b: Any) -> Tensor:
    """a ** b; refused on bools (torch refuses them too, but for ``bool_tensor ** True``)."""
    if result_type(a, b) == np.bool_:
        raise TypeError("pow is not implemented for bool operands")
    a, b = _promoted(a, b)
    if is_scalar(b) and not isinstance(b, (bool, np.bool_)):
        return E.PowScalar.apply(a, p=b.item() if isinstance(b, np.generic) else b)
    return E.Pow.apply(a, b)


def neg(x: Tensor) -> Tensor:
    return E.Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return E.Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return E.Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return E.Sqrt.apply(x)


def tanh(x: Tensor) -> Tensor:
    return E.Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return E.Sigmoid.apply(x)


def relu(x: Tensor) -> Tensor:
    return E.Relu.apply(x)


def abs(x: Tensor) -> Tensor:
    return E.Abs.apply(x)


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    return E.Clip.apply(x, lo=min, hi=max)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max of two tensors (broadcasting); see ``Tensor.max`` for the reduction."""
    return E.Maximum.apply(*_promoted(a, b))


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``condition`` holds, else ``y`` (all three broadcast)."""
    if not _is_tensor(x) and not _is_tensor(y):
        x = _tensor(x)
    x, y = _promoted(x, y)
    cond = _array_on(condition, x if _is_tensor(x) else y)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be bool, got dtype {cond.dtype}")
    return E.Where.apply(x, y, cond=cond)


def masked_fill(x: Tensor, mask: Any, value: float) -> Tensor:
    """``x`` with ``value`` wherever ``mask`` (bool, broadcast to x's shape) is True."""
    m = _array_on(mask, x)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be bool, got dtype {m.dtype}")
    return E.MaskedFill.apply(x, mask=m, value=value)


def compare(a: Tensor, b: Any, name: str) -> Tensor:
    """``a < b`` and friends: a bool tensor, outside the graph (comparisons have no gradient).
    Both sides are first promoted to one dtype, so ``int_tensor < 0.5`` compares in float32."""
    dtype = result_type(a, b)
    other = b.data if _is_tensor(b) else b
    other = dtype.type(other) if is_scalar(other) else a.xp.asarray(other).astype(dtype)
    return _tensor_module.Tensor._make(getattr(a.xp, name)(a.data.astype(dtype, copy=False),
                                                           other), False, None)


def cast(x: Tensor, dtype: Any) -> Tensor:
    if dtype == x.dtype:
        return x
    backend.check_dtype_on(dtype, x.device)
    return E.Cast.apply(x, dtype=dtype)


def to_device(x: Tensor, device: str) -> Tensor:
    if device == x.device:
        return x
    backend.xp_for(device)  # a clear error if CuPy or the GPU is missing
    return E.ToDevice.apply(x, device=device)


# --- reductions ----------------------------------------------------------------------------
@autocast_to("float32")
def sum(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
        dtype: Any = None) -> Tensor:
    """Σ over ``dim``. ``dtype`` casts x first, as torch (``sum(dtype=float64)`` of a float32
    tensor adds in float64); integers and bools sum to int64, as in torch."""
    if dtype is not None:
        x = cast(x, _tensor_module.as_dtype(dtype))
    return R.Sum.apply(x, axes=normalize_dims(dim, x.ndim, "sum", x.shape), keepdim=keepdim)


@autocast_to("float32")
def mean(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return R.Mean.apply(x, axes=normalize_dims(dim, x.ndim, "mean", x.shape), keepdim=keepdim)


def max(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor | ValuesIndices:
    """Without ``dim``: the largest element, a 0-d tensor (ties share its gradient evenly).
    With ``dim`` (one int): the named tuple ``(values, indices)`` over that dim, the index of
    the first of any ties, and the gradient goes to that element alone, as in torch.
    ``amax`` reduces several dims (values only)."""
    return _extreme(x, dim, keepdim, "max")


def min(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor | ValuesIndices:
    """The smallest element, or ``(values, indices)`` over ``dim``: see :func:`max`."""
    return _extreme(x, dim, keepdim, "min")


def _extreme(x: Tensor, dim: int | None, keepdim: bool, mode: str) -> Tensor | ValuesIndices:
    if dim is None:
        if keepdim:
            raise TypeError(f"{mode}(): keepdim=True needs a dim (shape {x.shape})")
        if x.numel() == 0:
            raise ValueError(f"{mode}(): the tensor of shape {x.shape} is empty: specify the "
                             "reduction dim with the 'dim' argument")
        return R.Max.apply(x, axes=tuple(range(x.ndim)), keepdim=False, mode=mode)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{mode}(): dim must be an int, got {dim!r}; use a{mode} to reduce "
                        "several dims")
    d = normalize_dim(dim, x.ndim, mode, x.shape)
    if x.ndim == 0:  # its only element, index 0, as torch
        return _extreme(reshape(x, (1,)), 0, False, mode)
    if x.shape[d] == 0:
        raise IndexError(f"{mode}(): expected reduction dim {dim} to have non-zero size, got "
                         f"shape {x.shape}")
    pick = x.data.argmax if mode == "max" else x.data.argmin
    index = pick(axis=d, keepdims=True)
    values = R.MaxAlongDim.apply(x, index=index, dim=d, keepdim=keepdim)
    indices = index if keepdim else index.squeeze(axis=d)
    return ValuesIndices(values, _tensor_module.Tensor._make(indices, False, None))


@autocast_to("float32")
def var(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False,
        correction: int = 1) -> Tensor:
    axes = normalize_dims(dim, x.ndim, "var", x.shape)
    return R.Var.apply(x, axes=axes, keepdim=keepdim, correction=correction)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the largest values (an int64 tensor, outside the graph)."""
    make = _tensor_module.Tensor._make
    if dim is None:
        return make(x.xp.asarray(x.data.argmax()), False, None)
    d = normalize_dim(dim, x.ndim, "argmax", x.shape)
    if x.ndim == 0:  # the only element: index 0, as torch
        return make(x.xp.zeros((), dtype=np.int64), False, None)
    return make(x.data.argmax(axis=d, keepdims=keepdim), False, None)


# --- shape ---------------------------------------------------------------------------------
def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    return S.Reshape.apply(x, shape=tuple(shape))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_dim(start_dim, x.ndim, "flatten", x.shape)
    e = normalize_dim(end_dim, x.ndim, "flatten", x.shape)
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    axes = tuple(normalize_dim(d, x.ndim, "permute", x.shape) for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the "
                         f"{x.ndim} dims of shape {x.shape}")
    return S.Permute.apply(x, dims=axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(x.ndim))
    d0 = normalize_dim(dim0, x.ndim, "transpose", x.shape)
    d1 = normalize_dim(dim1, x.ndim, "transpose", x.shape)
    if x.ndim == 0:
        return x
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return S.Permute.apply(x, dims=tuple(dims))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze", x.shape)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    """Drop size-1 dims (all of them, or ``dim`` if it has size 1, as PyTorch)."""
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    d = normalize_dim(dim, x.ndim, "squeeze", x.shape)
    if x.ndim == 0 or x.shape[d] != 1:  # a 0-d tensor has nothing to squeeze (torch agrees)
        return x
    return reshape(x, x.shape[:d] + x.shape[d + 1:])


def expand(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """Broadcast ``x`` to ``sizes`` without copying; -1 keeps a dim's size."""
    extra = len(sizes) - x.ndim
    if extra < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {tuple(sizes)}")
    shape = tuple(x.shape[i - extra] if n == -1 and i >= extra else n
                  for i, n in enumerate(sizes))
    for i, n in enumerate(x.shape):
        if n != 1 and n != shape[extra + i]:
            raise ValueError(f"expand: cannot expand shape {x.shape} to {tuple(sizes)} "
                             f"(dim {i} has size {n})")
    return S.Expand.apply(x, shape=shape)


def _canonical_index(x: Tensor, index: Any) -> tuple[tuple, ...]:
    """``index`` as one or two plain NumPy indexes to apply in turn, with PyTorch's meaning.

    * Boolean masks must match the shape of the dims they cover (torch refuses a mismatch;
      NumPy would pad or cut silently) and become integer arrays (``mask.nonzero()``), so
      backward scatter-adds with one code path.
    * Integers are applied first, as basic indexing, when integer arrays are also present:
      ``x[0, :, idx]`` is (6, 2) for x (5, 6, 7) as in torch, where NumPy, which treats the 0
      as an array too and moves the broadcast dims to the front, gives (2, 6).
    """
    parts = list(index) if isinstance(index, tuple) else [index]
    entries: list[Any] = []
    for p in parts:
        if _is_tensor(p):  # a Tensor used as an index
            p = p.data
        if isinstance(p, (list, np.ndarray)) or backend.device_of(p) == "cuda":
            arr = _array_on(p, x)
            if arr.dtype != np.bool_ and arr.dtype.kind not in "iu":
                raise IndexError(f"index arrays must be integer or bool, got dtype {arr.dtype} "
                                 f"(indexing a tensor of shape {x.shape})")
            p = arr
        entries.append(p)

    def is_array(e: Any) -> bool:
        return hasattr(e, "dtype") and hasattr(e, "shape") and not isinstance(e, np.generic)

    def width(e: Any) -> int:  # how many of x's dims an entry covers
        if e is None or e is Ellipsis:
            return 0
        return e.ndim if is_array(e) and e.dtype == np.bool_ else 1

    if builtins.any(e is Ellipsis for e in entries):
        at = next(i for i, e in enumerate(entries) if e is Ellipsis)
        fill = builtins.max(x.ndim - builtins.sum(width(e) for e in entries), 0)
        entries[at:at + 1] = [slice(None)] * fill

    canonical: list[Any] = []
    dim = 0
    for e in entries:
        if is_array(e) and e.dtype == np.bool_:
            covered = x.shape[dim:dim + e.ndim]
            if tuple(e.shape) != covered:
                raise IndexError(
                    f"the boolean mask of shape {tuple(e.shape)} does not match the shape "
                    f"{covered} of dims {dim}..{dim + e.ndim - 1} of the indexed tensor of shape "
                    f"{x.shape}")
            canonical.extend(e.nonzero())
        else:
            canonical.append(e)
        dim += width(e)

    def is_int(e: Any) -> bool:
        return isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_))

    if (builtins.any(is_array(e) for e in canonical)
            and builtins.any(is_int(e) for e in canonical)):
        first = tuple(e if is_int(e) else slice(None) for e in canonical if e is not None)
        return first, tuple(e for e in canonical if not is_int(e))
    return (tuple(canonical),)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with slices, ints, None, Ellipsis, integer arrays and boolean masks, with
    PyTorch's meaning where it differs from NumPy's (see :func:`_canonical_index`)."""
    for stage in _canonical_index(x, index):
        x = S.GetItem.apply(x, index=stage)
    return x


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    if tensors[0].ndim == 0:
        raise ValueError("cat: a 0-d tensor cannot be concatenated (use stack)")
    d = normalize_dim(dim, tensors[0].ndim, "cat", tensors[0].shape)
    return S.Cat.apply(*tensors, dim=d)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack", tensors[0].shape)
    return S.Stack.apply(*tensors, dim=d)


# --- matmul --------------------------------------------------------------------------------
@autocast_to("half")
def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` as NumPy defines it: 1-D operands are promoted to a row/column and the added
    dim is removed from the result; more than two dims are batch dims that broadcast."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dim, got shapes {a.shape} "
                         f"and {b.shape}")
    k_a, k_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: the last dim "
                         f"of the first ({k_a}) must equal the "
                         f"{'second-to-last' if b.ndim > 1 else 'only'} dim of the second ({k_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dims of shapes {a.shape} and {b.shape} cannot be "
                         "broadcast together") from None
    a2 = unsqueeze(a, 0) if a.ndim == 1 else a
    b2 = unsqueeze(b, -1) if b.ndim == 1 else b
    z = MatMul.apply(a2, b2)
    if b.ndim == 1:
        z = squeeze(z, -1)
    if a.ndim == 1:
        z = squeeze(z, -2 if b.ndim > 1 else -1)
    return z


# --- neural-network ops --------------------------------------------------------------------
@autocast_to("float32")
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    d = normalize_dim(dim, x.ndim, "softmax", x.shape)
    if x.ndim == 0:  # a 0-d tensor is a row of one: softmax 1 (NaN for ±inf/NaN), as torch
        return reshape(softmax(reshape(x, (1,))), ())
    return N.Softmax.apply(x, dim=d)


@autocast_to("float32")
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    d = normalize_dim(dim, x.ndim, "log_softmax", x.shape)
    if x.ndim == 0:
        return reshape(log_softmax(reshape(x, (1,))), ())
    return N.LogSoftmax.apply(x, dim=d)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return N.Gelu.apply(x, approximate=approximate)


@autocast_to("half")
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with W of shape (out_features, in_features) as in PyTorch."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                         f"{weight.shape} (expected input (..., {weight.shape[-1]}))")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias has shape {bias.shape}, expected "
                         f"({weight.shape[0]},) for weight {weight.shape}")
    return N.Linear.apply(_tensor(x), weight, bias)


@autocast_to("half")  # the bias of a linear layer, which torch's linear casts too
def bias_gelu(x: Tensor, bias: Tensor, approximate: str = "none") -> Tensor:
    """GELU(x + bias) for x (..., F) and bias (F,), in one op (one pass with the Numba kernel)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"bias_gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if bias.ndim != 1 or x.ndim < 1 or x.shape[-1] != bias.shape[0]:
        raise ValueError(f"bias_gelu: expected x (..., F) and bias (F,), got x {x.shape} and "
                         f"bias {bias.shape}")
    return N.BiasGelu.apply(x, bias, approximate=approximate)


@autocast_to("float32")
def layer_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if x.shape[x.ndim - k:] != shape or k > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the last dims "
                         f"of the input's shape {x.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected "
                             f"normalized_shape {shape}")
    return N.LayerNorm.apply(x, weight, bias, k=k, eps=eps)


@autocast_to("half")
def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, *, key_padding_mask: Any = None,
                                 training: bool = True) -> Tensor:
    """softmax(Q·Kᵀ·scale + mask)·V per (batch, head), PyTorch's ``F.scaled_dot_product_attention``.

    query (B, A, L, D), key (B, A, S, D), value (B, A, S, Dv) -> (B, A, L, Dv); ``scale``
    defaults to 1/√D. ``attn_mask``, broadcastable to (B, A, L, S), is bool (True = attend) or of
    query's dtype (added to the scores, a constant: no gradient); ``is_causal`` lets query i
    attend to keys j ≤ i (the top-left aligned lower triangle of (L, S)), and excludes
    ``attn_mask`` as in torch. ``key_padding_mask`` (B, S) is True (or nonzero) at padded keys
    (``torch.nn.MultiheadAttention``'s convention); it combines with either. A key masked by a
    bool mask, ``is_causal`` or padding gets the score finfo.min (a row with every key masked
    attends uniformly, gradient 0; ``kernels/cpu/softmax.py``); a row whose float mask is all
    -inf is NaN, the composite's formula. ``dropout_p`` drops attention weights while
    ``training`` (PyTorch's function has no ``training`` flag: its callers pass
    ``dropout_p=0.0`` in eval).
    """
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if query.ndim != 4 or key.ndim != 4 or value.ndim != 4:
        raise ValueError(f"scaled_dot_product_attention: expected 4-D (batch, heads, seq, dim) "
                         f"tensors, got {shapes}")
    if (query.shape[:2] != key.shape[:2] or key.shape[:3] != value.shape[:3]
            or query.shape[3] != key.shape[3]):
        raise ValueError(f"scaled_dot_product_attention: expected query (B, A, L, D), key "
                         f"(B, A, S, D) and value (B, A, S, Dv), got {shapes}")
    for name, t in (("key", key), ("value", value)):
        if t.dtype != query.dtype:
            raise TypeError(f"scaled_dot_product_attention: {name} has dtype {t.dtype} but "
                            f"query has dtype {query.dtype}")
    if not is_floating(query.dtype):
        raise TypeError(f"scaled_dot_product_attention: expected floating-point tensors, got "
                        f"dtype {query.dtype}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got "
                         f"{dropout_p}")
    padded = None
    if key_padding_mask is not None:
        padded = _array_on(key_padding_mask, query) != 0
        b, s = key.shape[0], key.shape[2]
        if tuple(padded.shape) != (b, s):
            raise ValueError(f"scaled_dot_product_attention: key_padding_mask has shape "
                             f"{tuple(padded.shape)}, expected (B, S) = {(b, s)} for {shapes}")
    attend, bias = _attention_mask(attn_mask, is_causal, query, key, shapes)
    keep = None
    if training and dropout_p > 0.0:
        shape = query.shape[:3] + (key.shape[2],)  # (B, A, L, S)
        keep = backend.random_uniform(shape, query.dtype, query.device) >= dropout_p
    scale = 1.0 / math.sqrt(builtins.max(query.shape[3], 1)) if scale is None else float(scale)
    return N.ScaledDotProductAttention.apply(query, key, value, key_padding_mask=padded,
                                             dropout_keep=keep, dropout_p=dropout_p, scale=scale,
                                             attn_mask=attend, attn_bias=bias,
                                             is_causal=is_causal)


def _attention_mask(attn_mask: Any, is_causal: bool, query: Tensor, key: Tensor,
                    shapes: str) -> tuple[Any, Any]:
    """``attn_mask`` as (bool mask, True = attend; float bias), each None or an array of shape
    (B|1, A|1, L, S): the kernels' layout (batch and head dims of 1 are shared, the (L, S) block
    is whole). ``is_causal`` is passed on as a flag, never made into a mask here. Errors are
    torch's kind (RuntimeError)."""
    op = "scaled_dot_product_attention"
    keys = key.shape[2]
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"{op}: attn_mask (shape {np.shape(attn_mask)}) and is_causal=True "
                           f"were both given; pass one (for {shapes})")
    if attn_mask is None:
        return None, None
    if _is_tensor(attn_mask) and attn_mask.requires_grad:
        raise RuntimeError(f"{op}: attn_mask requires grad, but minigrad takes it as a constant "
                           f"(no gradient); pass attn_mask.detach()")
    mask = _array_on(attn_mask, query)
    if mask.dtype != bool and mask.dtype != query.dtype:
        raise RuntimeError(f"{op}: expected attn_mask of dtype bool or query's dtype "
                           f"{query.dtype}, got {mask.dtype}")
    target = query.shape[:3] + (keys,)  # (B, A, L, S)
    try:
        fits = np.broadcast_shapes(tuple(mask.shape), target) == target
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: attn_mask of shape {tuple(mask.shape)} does not broadcast to "
                           f"(B, A, L, S) = {target} for {shapes}")
    mask = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape))  # (B|1, A|1, L|1, S|1)
    mask = query.xp.ascontiguousarray(query.xp.broadcast_to(mask, mask.shape[:2] + target[2:]))
    return (mask, None) if mask.dtype == bool else (None, mask)


def embedding(idx: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, D) picked by integer ids ``idx`` (any shape)."""
    ids = _array_on(idx, weight)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    v = weight.shape[0]
    if ids.size:
        out_of_range = (ids < 0) | (ids >= v)

        def error() -> IndexError:
            bad = backend.to_device(ids[out_of_range], "cpu")[0]
            return IndexError(f"embedding: id {bad} is out of range for a table of {v} rows "
                              f"(weight shape {weight.shape}, ids shape {tuple(ids.shape)})")

        check(out_of_range.any(), error)
    return N.Embedding.apply(weight, idx=ids)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = backend.random_uniform(x.shape, x.dtype, x.device) >= p
    return N.Dropout.apply(x, keep=keep, p=p)


# --- losses --------------------------------------------------------------------------------
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, count: Any = None) -> Tensor:
    if reduction == "none":
        return loss
    total = sum(loss)
    if reduction == "sum":
        return total
    return total / (count if count is not None else builtins.max(loss.data.size, 1))


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_target(op: str, x: Tensor, target: Any) -> Tensor:
    """The target as a tensor of the input's shape and dtype. A target that requires grad
    keeps its graph: these losses are differentiable in both arguments, as in PyTorch."""
    t = target if _is_tensor(target) else _tensor_module.Tensor._make(_array_on(target, x),
                                                                       False, None)
    if t.device != x.device:
        raise backend.DeviceError(f"{op}: input is on {x.device} but target is on {t.device}")
    if t.shape != x.shape:
        raise ValueError(f"{op}: input has shape {x.shape} but target has shape "
                         f"{t.shape}; they must match (no silent broadcasting)")
    return cast(t, x.dtype)


@autocast_to("float32")
def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """mean (or sum) of (input - target)²;  d/dinput = 2(input - target)/n = -d/dtarget."""
    _check_reduction("mse_loss", reduction)
    diff = input - _check_target("mse_loss", input, target)
    return _reduce(diff * diff, reduction)


@autocast_to("float32")
def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    _check_reduction("binary_cross_entropy", reduction)
    y = _check_target("binary_cross_entropy", input, target)
    p = input.data
    if p.size and (float(p.min()) < 0 or float(p.max()) > 1):
        raise ValueError(f"binary_cross_entropy: input (shape {input.shape}) must hold "
                         f"probabilities in [0, 1], got values in [{float(p.min()):.4g}, "
                         f"{float(p.max()):.4g}]; use binary_cross_entropy_with_logits for logits")
    return _reduce(L.BinaryCrossEntropy.apply(input, y), reduction)


@autocast_to("float32")
def binary_cross_entropy_with_logits(input: Tensor, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """BCE of σ(input) against ``target`` from the logits (stable); ``pos_weight``, a constant
    that broadcasts to the input's shape (one weight per class: shape (C,)), weighs the
    positive term, as torch's."""
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    y = _check_target(op, input, target)
    p = _constant_weight(op, "pos_weight", pos_weight, input)
    if p is not None and broadcast_shape(op, p.shape, input.shape) != input.shape:
        raise ValueError(f"{op}: pos_weight of shape {tuple(p.shape)} does not broadcast to the "
                         f"input's shape {input.shape}")
    return _reduce(L.BinaryCrossEntropyWithLogits.apply(input, y, pos_weight=p), reduction)


@autocast_to("float32")
def cross_entropy(input: Tensor, target: Any, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` against integer class ids ``target``, or
    against class probabilities: a float ``target`` of the input's own shape (soft labels, see
    :func:`_soft_cross_entropy`), as torch tells the two apart.

    Shapes as in PyTorch: input (N, C) with target (N,); input (C,) with a scalar target; or
    input (N, C, d1, ...) with target (N, d1, ...). ``mean`` averages over the targets that are
    not ``ignore_index``; if every target is ignored the loss is 0 (PyTorch returns NaN).
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim >= 1 and _shape_of(target) == input.shape:
        return _soft_cross_entropy(input, target, ignore_index, reduction, label_smoothing)
    z, t = _class_rows("cross_entropy", input, target)
    per_row = L.CrossEntropy.apply(z, target=t.reshape(-1), ignore_index=ignore_index,
                                   label_smoothing=label_smoothing)
    if reduction == "none":
        return reshape(per_row, t.shape)
    if backend.device_of(t) == "cpu":
        count = builtins.max(int((t != ignore_index).sum()), 1)
    else:  # the count stays on the GPU: reading it would be a transfer per loss
        xp = backend.array_module(t)
        count = xp.maximum((t != ignore_index).sum(), 1).astype(input.dtype)
    return _reduce(per_row, reduction, count)


# --- in-place ops --------------------------------------------------------------------------
def _write_inplace(x: Tensor, op: str, compute: Callable[[Tensor], Tensor],
                   operands: Sequence[Any] = (), cast_result: bool = False) -> Tensor:
    """Write ``compute(x)``, an out-of-place op, into ``x``'s own array: PyTorch's in-place op.

    * Outside the graph (under ``no_grad``, or when nothing involved requires grad) the result
      is copied into ``x.data``, so views of ``x`` and arrays sharing its memory see it.
    * Inside it, ``x`` becomes the output of the op: its old value is kept (copied) as the op's
      input, so backward sees the values the op was computed from, and ``x`` takes the new node.
      A leaf that requires grad is refused, as in torch (the update would be recorded as part
      of the model), and so is a view (minigrad does not rewrite its base's graph, which is
      what PyTorch's CopySlices node does).
    Either way the version of ``x`` (and of every view sharing its memory) goes up by one, so a
    backward that saved the old array refuses to run. The result must keep ``x``'s shape, and
    its dtype must not be of a higher category (an int tensor cannot take ``+= 0.5``), unless
    ``cast_result`` (``copy_`` converts, as torch's does).
    """
    recording = autograd.is_grad_enabled() and (
        x.requires_grad or builtins.any(_is_tensor(o) and o.requires_grad for o in operands))
    if recording and x.requires_grad and x.is_leaf:
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {x.shape}) cannot be modified in "
            "place while gradients are recorded; update it inside `with mg.no_grad():`, as an "
            "optimizer step does")
    if recording and x._base is not None:
        raise RuntimeError(
            f"{op}: in-place op on a view (shape {x.shape}) of a tensor of shape "
            f"{x._base.shape} while gradients are recorded; minigrad cannot rewrite the base's "
            "graph: use an out-of-place op, or index the base itself (base[i] = value)")
    if recording:
        out = compute(_tensor_module.Tensor._make(x.data.copy(), x.requires_grad, x._ctx))
    else:
        with autograd.no_grad():
            out = compute(x)
    if out.shape != x.shape:
        raise ValueError(f"{op}: the result has shape {out.shape}, which cannot be written in "
                         f"place into a tensor of shape {x.shape}")
    if (not cast_result and out.dtype != x.dtype
            and promote_types(out.dtype, x.dtype) != x.dtype):
        raise TypeError(f"{op}: the result has dtype {out.dtype}, which cannot be written in "
                        f"place into a tensor of dtype {x.dtype} (shape {x.shape})")
    if not getattr(x.data.flags, "writeable", True):
        raise ValueError(f"{op}: the tensor of shape {x.shape} is read-only (an expand()ed "
                         "view, or an array NumPy marked read-only)")
    x.data[...] = out.data
    x._version_counter.value += 1
    if recording:
        x._ctx, x.requires_grad = out._ctx, out.requires_grad
    return x


def _scaled(other: Any, alpha: float) -> Any:
    return other if alpha == 1 else mul(other, alpha) if _is_tensor(other) else other * alpha


def add_(x: Tensor, other: Any, alpha: float = 1) -> Tensor:
    """x ← x + alpha·other, in place."""
    return _write_inplace(x, "add_", lambda t: add(t, _scaled(other, alpha)), (other,))


def sub_(x: Tensor, other: Any, alpha: float = 1) -> Tensor:
    """x ← x - alpha·other, in place."""
    return _write_inplace(x, "sub_", lambda t: sub(t, _scaled(other, alpha)), (other,))


def mul_(x: Tensor, other: Any) -> Tensor:
    """x ← x·other, in place."""
    return _write_inplace(x, "mul_", lambda t: mul(t, other), (other,))


def div_(x: Tensor, other: Any) -> Tensor:
    """x ← x / other, in place (a float tensor only: true division of ints is float)."""
    return _write_inplace(x, "div_", lambda t: div(t, other), (other,))


def clip_(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """x ← clip(x, min, max), in place (``clamp_``)."""
    return _write_inplace(x, "clamp_", lambda t: clip(t, min, max))


def fill_(x: Tensor, value: float) -> Tensor:
    """x ← value everywhere, in place; the old values get gradient 0."""
    everywhere = x.xp.ones(x.shape, dtype=bool)
    return _write_inplace(x, "fill_", lambda t: masked_fill(t, everywhere, value))


def copy_(x: Tensor, src: Any) -> Tensor:
    """x ← src, broadcast to x's shape and converted to its dtype and device, in place;
    differentiable in ``src`` (the old values of x get gradient 0)."""
    if _is_tensor(src):
        s = to_device(src, x.device)
    else:
        array = src if hasattr(src, "shape") else np.asarray(src)
        s = _tensor_module.Tensor._make(backend.to_device(array, x.device), False, None)
    # expand makes a node even at the same shape, so x never takes src's own place in the graph
    return _write_inplace(x, "copy_", lambda t: cast(expand(s, t.shape), t.dtype), (src,),
                          cast_result=True)


def setitem(x: Tensor, index: Any, value: Any) -> Tensor:
    """``x[index] = value`` in place (``value`` broadcast to the shape of ``x[index]`` and
    converted to x's dtype); differentiable in ``value``, as in PyTorch."""
    stages = _canonical_index(x, index)
    if _is_tensor(value) and value.dtype != x.dtype:
        value = cast(value, x.dtype)
    return _write_inplace(x, "__setitem__",
                          lambda t: S.SetItem.apply(t, value, stages=stages), (value,))


# --- indexing, scans and sorting (issue 15) ---
class SortResult(NamedTuple):
    """What :func:`sort` returns, as torch's ``torch.return_types.sort``: the sorted values (in
    the graph) and the int64 indices they came from (outside it)."""

    values: Tensor
    indices: Tensor


class TopKResult(NamedTuple):
    """What :func:`topk` returns, as torch's ``torch.return_types.topk``."""

    values: Tensor
    indices: Tensor


def _index(op: str, index: Any, x: Tensor) -> Any:
    """An index argument (a Tensor, array or list) as an integer array on x's device."""
    ids = _array_on(index, x)
    if ids.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected an integer index, got dtype {ids.dtype} (index "
                           f"shape {tuple(ids.shape)}, input shape {x.shape})")
    return ids


def _check_in_range(op: str, ids: Any, dim: int, n: int, x: Tensor, low: int = 0) -> None:
    """Refuse an index outside [low, n) along dim ``dim`` of size n, naming the first bad one."""
    if ids.size:
        bad = (ids < low) | (ids >= n)

        def error() -> RuntimeError:
            value = backend.to_device(ids[bad], "cpu")[0]
            return RuntimeError(f"{op}: index {value} is out of bounds for dim {dim} with size "
                                f"{n} (input shape {x.shape}, index shape {tuple(ids.shape)})")

        check(bad.any(), error)


def _check_index_shape(op: str, ids: Any, x: Tensor, dim: int, src: Tensor | None = None) -> None:
    """torch's rules for gather and scatter (a 0-d tensor counts as one dim): the index has the
    input's number of dims, is no larger than the input in every dim but ``dim``, and no larger
    than ``src`` in any dim."""
    shape = tuple(ids.shape) or (1,)
    others = [("input", x.shape or (1,), dim, f" (only dim {dim}, the indexed one, may be)")]
    if src is not None:
        others.append(("src", src.shape or (1,), None, ""))
    for name, other, free, exception in others:
        if len(other) != len(shape):
            raise RuntimeError(f"{op}: the index of shape {tuple(ids.shape)} must have as many "
                               f"dims as the {name} of shape {other}")
        for d, (m, n) in enumerate(zip(shape, other, strict=True)):
            if d != free and m > n:
                raise RuntimeError(f"{op}: the index of shape {tuple(ids.shape)} is larger than "
                                   f"the {name} of shape {other} in dim {d}{exception}")


def _one_dim(x: Tensor) -> Tensor:
    """A 0-d tensor read as shape (1,), as torch reads it in these ops; others as they are."""
    return reshape(x, (1,)) if x.ndim == 0 else x


def _gathered(x: Tensor, ids: Any, dim: int) -> Tensor:
    """:class:`~minigrad.ops.indexing.Gather` of checked indices: the result has ids' shape (a
    0-d x or ids read as shape (1,))."""
    z = IX.Gather.apply(_one_dim(x), index=ids.reshape(ids.shape or (1,)), dim=dim)
    return reshape(z, ()) if ids.ndim == 0 else z


def gather(input: Tensor, dim: int, index: Any) -> Tensor:
    """Values picked along ``dim`` by ``index``, torch.gather: for dim 1,
    out[i][j][k] = input[i][index[i][j][k]][k]. The index has the input's number of dims, is no
    larger in any other dim, and holds values in [0, input.shape[dim]); out has its shape.
    Differentiable in ``input`` (:class:`~minigrad.ops.indexing.Gather`)."""
    d = normalize_dim(dim, input.ndim, "gather", input.shape)
    ids = _index("gather", index, input)
    _check_index_shape("gather", ids, input, d)
    _check_in_range("gather", ids, d, (input.shape or (1,))[d], input)
    return _gathered(input, ids, d)


def _scattered(op: str, fn: type[autograd.Function], input: Tensor, dim: int, index: Any,
               src: Any) -> Tensor:
    """The checks and 0-d handling that scatter and scatter_add share."""
    d = normalize_dim(dim, input.ndim, op, input.shape)
    ids = _index(op, index, input)
    if _is_tensor(src) and src.dtype != input.dtype:
        raise RuntimeError(f"{op}: src has dtype {src.dtype} but the input has dtype "
                           f"{input.dtype}; they must match (cast one with .to())")
    _check_index_shape(op, ids, input, d, src if _is_tensor(src) else None)
    _check_in_range(op, ids, d, (input.shape or (1,))[d], input)
    z = fn.apply(_one_dim(input), _one_dim(src) if _is_tensor(src) else src,
                 index=ids.reshape(ids.shape or (1,)), dim=d)
    return reshape(z, ()) if input.ndim == 0 else z


def scatter(input: Tensor, dim: int, index: Any, src: Tensor | float) -> Tensor:
    """A copy of ``input`` with src's values written where ``index`` points along ``dim``,
    torch.scatter (out of place): for dim 1, out[i][index[i][j]] = src[i][j]. ``src`` is a
    tensor of input's dtype, at least index's size in every dim, or a number. Differentiable in
    ``input`` and ``src``. An index repeated along ``dim``: the last write in index's row-major
    order wins, where torch leaves it undefined (:class:`~minigrad.ops.indexing.Scatter`)."""
    if not _is_tensor(src) and not is_scalar(src):
        raise TypeError(f"scatter: src must be a Tensor or a number, got {type(src).__name__}")
    return _scattered("scatter", IX.Scatter, input, dim, index, src)


def scatter_add(input: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """A copy of ``input`` with src's values added where ``index`` points along ``dim``,
    torch.scatter_add (out of place; repeated indices accumulate): for dim 1,
    out[i][index[i][j]] += src[i][j]. Differentiable in ``input`` and ``src``."""
    if not _is_tensor(src):
        raise TypeError(f"scatter_add: src must be a Tensor, got {type(src).__name__}")
    return _scattered("scatter_add", IX.ScatterAdd, input, dim, index, src)


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The entries ``index`` (1-D or 0-d, in [0, input.shape[dim])) of dim ``dim``,
    torch.index_select: input (..., n, ...) -> (..., len(index), ...). Differentiable in
    ``input``; an entry picked twice gets both gradients."""
    d = normalize_dim(dim, input.ndim, "index_select", input.shape)
    ids = _index("index_select", index, input)
    if ids.ndim > 1:
        raise IndexError(f"index_select: the index must be 1-D or 0-d, got shape "
                         f"{tuple(ids.shape)} (input shape {input.shape})")
    _check_in_range("index_select", ids, d, (input.shape or (1,))[d], input)
    if input.ndim == 0:
        if ids.size != 1:
            raise RuntimeError(f"index_select: a 0-d input takes an index of one element, got "
                               f"shape {tuple(ids.shape)}")
        return reshape(IX.IndexSelect.apply(_one_dim(input), index=ids.reshape(1), dim=0), ())
    return IX.IndexSelect.apply(input, index=ids.reshape(-1), dim=d)


def masked_select(input: Tensor, mask: Any) -> Tensor:
    """The elements of ``input`` where the bool ``mask`` is True, as a 1-D tensor in row-major
    order, the two broadcast together first (torch.masked_select). Differentiable in input."""
    m = _array_on(mask, input)
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_select: the mask must be bool, got dtype {m.dtype} (mask "
                           f"shape {tuple(m.shape)}, input shape {input.shape})")
    try:
        shape = tuple(np.broadcast_shapes(input.shape, tuple(m.shape)))
    except ValueError:
        raise RuntimeError(f"masked_select: the mask of shape {tuple(m.shape)} and the input of "
                           f"shape {input.shape} cannot be broadcast together") from None
    return IX.MaskedSelect.apply(input, mask=m, shape=shape)


def nonzero(input: Tensor, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    """The indices of the nonzero elements, torch.nonzero: an int64 tensor (count, ndim), one
    row per element in row-major order, or with ``as_tuple`` one 1-D tensor per dim (a 0-d
    input read as shape (1,)). Outside the graph."""
    make, xp = _tensor_module.Tensor._make, input.xp
    if as_tuple:
        return tuple(make(i.astype(np.int64, copy=False), False, None)
                     for i in xp.nonzero(xp.atleast_1d(input.data)))
    return make(xp.argwhere(input.data).astype(np.int64, copy=False), False, None)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class ids (an integer tensor of any shape) as one-hot rows, F.one_hot: (...) -> (...,
    num_classes), int64, 1 at each id. ``num_classes=-1`` takes the largest id + 1 (a read of
    the maximum: a device sync on a GPU, as in torch). Outside the graph."""
    t = _tensor(tensor)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot: expected an integer tensor of class ids, got dtype "
                           f"{t.dtype} (shape {t.shape})")
    ids = t.data
    if num_classes == -1:
        if ids.size == 0:
            raise RuntimeError(f"one_hot: cannot infer the number of classes from an empty "
                               f"tensor (shape {t.shape}); pass num_classes")
        num_classes = int(ids.max()) + 1
    if num_classes < 0:
        raise RuntimeError(f"one_hot: num_classes must be -1 or at least 0, got {num_classes}")
    if ids.size:
        def error(bad: Any, rule: str) -> Callable[[], RuntimeError]:
            return lambda: RuntimeError(
                f"one_hot: class values must be {rule}, got {backend.to_device(ids[bad], 'cpu')[0]}"
                f" (shape {t.shape})")

        negative = ids < 0
        check(negative.any(), error(negative, "non-negative"))
        too_big = ids >= num_classes
        check(too_big.any(), error(too_big, f"smaller than num_classes={num_classes}"))
    out = ids[..., None] == t.xp.arange(num_classes)
    return _tensor_module.Tensor._make(out.astype(np.int64), False, None)


def take_along_dim(input: Tensor, indices: Any, dim: int | None = None) -> Tensor:
    """Values picked along ``dim`` by ``indices``, torch.take_along_dim: a gather after input
    and indices are broadcast together in every dim but ``dim``; ``dim=None`` picks from the
    flattened input by the flattened indices. Indices in [-n, n), a negative one counting from
    the end (torch wraps any value there, an unchecked read; minigrad refuses the others).
    Differentiable in ``input``."""
    op = "take_along_dim"
    ids = _index(op, indices, input)
    if dim is None:
        flat = reshape(input, (-1,))
        n = flat.shape[0]
        ids = ids.reshape(-1)
        _check_in_range(op, ids, 0, n, input, low=-n)
        return _gathered(flat, input.xp.where(ids < 0, ids + n, ids), 0)
    d = normalize_dim(dim, input.ndim, op, input.shape)
    if builtins.max(ids.ndim, 1) != builtins.max(input.ndim, 1):
        raise RuntimeError(f"{op}: the input of shape {input.shape} and the indices of shape "
                           f"{tuple(ids.shape)} must have the same number of dims")
    x, picks = _one_dim(input), ids.reshape(ids.shape or (1,))
    rest_x = x.shape[:d] + (1,) + x.shape[d + 1:]
    rest_ids = picks.shape[:d] + (1,) + picks.shape[d + 1:]
    try:
        common = tuple(np.broadcast_shapes(rest_x, rest_ids))
    except ValueError:
        raise RuntimeError(f"{op}: the input of shape {input.shape} and the indices of shape "
                           f"{tuple(ids.shape)} cannot be broadcast together in the dims other "
                           f"than dim {d}") from None
    n = x.shape[d]
    _check_in_range(op, picks, d, n, input, low=-n)
    x_shape = common[:d] + (n,) + common[d + 1:]
    if x_shape != x.shape:
        x = expand(x, x_shape)
    picks = input.xp.broadcast_to(input.xp.where(picks < 0, picks + n, picks),
                                  common[:d] + (picks.shape[d],) + common[d + 1:])
    z = IX.Gather.apply(x, index=picks, dim=d)
    return reshape(z, ()) if ids.ndim == 0 else z


def _scan(op: str, fn: type[autograd.Function], input: Tensor, dim: int) -> Tensor:
    d = normalize_dim(dim, input.ndim, op, input.shape)
    if input.ndim == 0:
        return reshape(fn.apply(_one_dim(input), dim=0), ())
    return fn.apply(input, dim=d)


@autocast_to("float32")
def cumsum(input: Tensor, dim: int) -> Tensor:
    """Running sums along ``dim``, torch.cumsum: out_i = Σ_{k≤i} input_k, same shape; integer
    and bool inputs give int64."""
    return _scan("cumsum", SC.Cumsum, input, dim)


@autocast_to("float32")
def cumprod(input: Tensor, dim: int) -> Tensor:
    """Running products along ``dim``, torch.cumprod: out_i = Π_{k≤i} input_k, same shape; its
    gradient is exact where the input holds zeros (:class:`~minigrad.ops.scan.Cumprod`)."""
    return _scan("cumprod", SC.Cumprod, input, dim)


def sort(input: Tensor, dim: int = -1, descending: bool = False,
         stable: bool = False) -> SortResult:
    """(values, indices) of ``input`` sorted along ``dim``, torch.sort; the values are
    ``gather(input, dim, indices)``, so their gradient goes back where each value came from.
    NaN sorts as the largest value. ``stable`` is taken for torch's signature: minigrad always
    sorts stably (equal values keep their order), which torch promises only with stable=True."""
    d = normalize_dim(dim, input.ndim, "sort", input.shape)
    ids = SC.sort_indices(input.data, d, descending)
    return SortResult(_gathered(input, ids, d), _tensor_module.Tensor._make(ids, False, None))


def argsort(input: Tensor, dim: int = -1, descending: bool = False,
            stable: bool = False) -> Tensor:
    """The int64 indices that sort ``input`` along ``dim`` (``sort(...).indices``), always
    stable (see :func:`sort`). Outside the graph."""
    d = normalize_dim(dim, input.ndim, "argsort", input.shape)
    return _tensor_module.Tensor._make(SC.sort_indices(input.data, d, descending), False, None)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> TopKResult:
    """(values, indices) of the k largest (``largest=False``: smallest) elements along ``dim``,
    torch.topk: input (..., n, ...) -> (..., k, ...), 0 ≤ k ≤ n. The values are a gather, their
    gradient going back where each came from. They come sorted even with ``sorted=False`` (torch
    promises no order then); equal values in index order. A full sort: O(n log n) per row."""
    d = normalize_dim(dim, input.ndim, "topk", input.shape)
    n = (input.shape or (1,))[d]
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k={k} is out of range for dim {d} of size {n} (input shape "
                           f"{input.shape})")
    if input.dtype == np.bool_:
        raise RuntimeError(f"topk: bool tensors are not supported (shape {input.shape}), as in "
                           "torch; cast to int64 or float32 first")
    ids = SC.sort_indices(input.data, d, descending=largest)
    if input.ndim:  # a 0-d input is its own top 1 (and, as in torch, top 0)
        ids = ids[(slice(None),) * d + (slice(0, k),)]
    return TopKResult(_gathered(input, ids, d), _tensor_module.Tensor._make(ids, False, None))


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the smallest values (the first of equal ones), torch.argmin: over the
    flattened input (``dim=None``; ``keepdim`` then keeps every dim as size 1) or along ``dim``.
    An int64 tensor, outside the graph."""
    make, xp = _tensor_module.Tensor._make, input.xp
    if input.dtype == np.bool_:
        raise RuntimeError(f"argmin: bool tensors are not supported (shape {input.shape}), as "
                           "in torch")
    if dim is None:
        if input.numel() == 0:
            raise IndexError(f"argmin: an empty tensor (shape {input.shape}) has no smallest "
                             "value; give a dim of nonzero size")
        flat = input.data.argmin().astype(np.int64)
        return make(xp.asarray(flat).reshape((1,) * input.ndim if keepdim else ()), False, None)
    d = normalize_dim(dim, input.ndim, "argmin", input.shape)
    if input.ndim == 0:
        return make(xp.zeros((), dtype=np.int64), False, None)
    if input.shape[d] == 0:
        raise IndexError(f"argmin: dim {d} of the input of shape {input.shape} is empty")
    return make(input.data.argmin(axis=d, keepdims=keepdim).astype(np.int64), False, None)


def flip(input: Tensor, dims: int | Sequence[int]) -> Tensor:
    """A copy of ``input`` with the order of each of ``dims`` reversed, torch.flip."""
    listed = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = [normalize_dim(d, input.ndim, "flip", input.shape) for d in listed]
    for i, a in enumerate(axes):
        if a in axes[:i]:
            raise RuntimeError(f"flip: dim {a} appears more than once in dims {listed} (input "
                               f"shape {input.shape})")
    return SC.Flip.apply(input, dims=tuple(axes) if input.ndim else ())


def roll(input: Tensor, shifts: int | Sequence[int],
         dims: int | Sequence[int] | None = None) -> Tensor:
    """``input`` with each of ``dims`` rotated by its shift (elements pushed off the end come
    back at the start), torch.roll; ``dims=None`` rolls the flattened input by one shift and
    restores the shape."""
    shift_list = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dim_list = () if dims is None else (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shift_list) != builtins.max(len(dim_list), 1) or not shift_list:
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must align: one shift per "
                           f"dim, or one shift with dims=None (input shape {input.shape})")
    axes = tuple(normalize_dim(d, input.ndim, "roll", input.shape) for d in dim_list)
    if dims is None or input.ndim == 0:  # a 0-d input: one element, any shift leaves it
        return SC.Roll.apply(input, shifts=builtins.sum(shift_list), dims=None)
    return SC.Roll.apply(input, shifts=shift_list, dims=axes)
# --- shape ops, reductions and einsum (issue 15) ---
def _along(dim: int, index: slice) -> tuple:
    return (slice(None),) * dim + (index,)


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int],
          dim: int = 0) -> tuple[Tensor, ...]:
    """``tensor`` cut along ``dim`` into pieces of ``split_size_or_sections`` elements (the last
    one shorter if need be), or of the sizes listed; each piece is a slice (a view)."""
    x = tensor
    if x.ndim == 0:
        raise ValueError("split: expects at least a 1-dimensional tensor, got shape ()")
    d = normalize_dim(dim, x.ndim, "split", x.shape)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size < 0:
            raise ValueError(f"split: split_size must be non-negative, got {size}")
        if size == 0 and n:
            raise ValueError(f"split: split_size can only be 0 if dim {d} has size 0, but it "
                             f"has size {n} (shape {x.shape})")
        sizes = [builtins.min(size, n - start) for start in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.any(s < 0 for s in sizes):
            raise ValueError(f"split: split sizes must be non-negative, got {sizes}")
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: split sizes {sizes} must sum exactly to {n}, the size of "
                             f"dim {d} of the tensor of shape {x.shape}")
    starts = np.cumsum([0] + sizes[:-1])
    return tuple(S.GetItem.apply(x, index=_along(d, slice(int(a), int(a) + s)))
                 for a, s in zip(starts, sizes, strict=True))


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` pieces along ``dim``, each of ⌈n / chunks⌉ elements but the last
    (so maybe fewer pieces, as in torch); an empty dim gives ``chunks`` empty pieces."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be greater than 0, got {chunks}")
    if input.ndim == 0:
        raise ValueError("chunk: expects at least a 1-dimensional tensor, got shape ()")
    n = input.shape[normalize_dim(dim, input.ndim, "chunk", input.shape)]
    return split(input, -(-n // chunks) if n else [0] * chunks, dim)


def _triangle(x: Tensor, diagonal: int, upper: bool) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{'triu' if upper else 'tril'}: input tensor must have at least 2 "
                         f"dimensions, got shape {x.shape}")
    return S.Triangle.apply(x, diagonal=int(diagonal), upper=upper)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims: x[..., i, j] where j ≤ i + diagonal, else 0."""
    return _triangle(input, diagonal, upper=False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims: x[..., i, j] where j ≥ i + diagonal, else 0."""
    return _triangle(input, diagonal, upper=True)


def repeat(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """``Tensor.repeat``: x tiled ``sizes[d]`` times along each dim (leading dims added)."""
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: the number of repeat dims ({len(sizes)}, {sizes}) can not be "
                         f"smaller than the number of dims of the tensor (shape {x.shape})")
    if builtins.any(n < 0 for n in sizes):
        raise ValueError(f"repeat: repeats must be non-negative, got {sizes} for shape "
                         f"{x.shape}")
    return S.Repeat.apply(x, sizes=sizes)


def repeat_interleave(input: Tensor, repeats: int | Tensor, dim: int | None = None) -> Tensor:
    """Each slice of ``input`` along ``dim`` repeated ``repeats`` times in place (or
    ``repeats[i]`` times for slice i, with an integer tensor of repeats); over the flattened
    input when ``dim`` is None. The repeats are read on the host (they fix the output's size)."""
    x = flatten(input) if dim is None or input.ndim == 0 else input
    d = 0 if dim is None else normalize_dim(dim, x.ndim, "repeat_interleave", x.shape)
    n = x.shape[d]
    if _is_tensor(repeats):
        counts = backend.to_device(repeats.data, "cpu")
        if counts.dtype.kind not in "iu":
            raise TypeError(f"repeat_interleave: repeats must hold integers, got dtype "
                            f"{counts.dtype}")
        if counts.ndim > 1:
            raise ValueError(f"repeat_interleave: repeats must be a 0-dim or 1-dim tensor, got "
                             f"shape {tuple(counts.shape)}")
        if counts.size not in (1, n):
            raise ValueError(f"repeat_interleave: repeats must have the same size as input "
                             f"along dim {d}, but got repeats.size(0) = {counts.size} and "
                             f"input.size({d}) = {n} (input shape {x.shape})")
    elif isinstance(repeats, (int, np.integer)):
        counts = np.asarray(repeats)
    else:
        raise TypeError(f"repeat_interleave: repeats must be an int or an integer Tensor, got "
                        f"{type(repeats).__name__}")
    if (counts < 0).any():
        raise ValueError(f"repeat_interleave: repeats must be non-negative, got "
                         f"{counts.tolist()}")
    idx = np.repeat(np.arange(n), np.broadcast_to(counts.reshape(-1), (n,)))
    # each slice picked r_i times in place: index_select with idx = (0 × r_0, 1 × r_1, ...)
    return IX.IndexSelect.apply(x, index=backend.to_device(idx, x.device), dim=d)


_PAD_MODES = ("constant", "reflect", "replicate")


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """``F.pad``: ``pad`` lists (before, after) widths from the last dim backwards, as torch:
    (left, right) pads the last dim, (left, right, top, bottom) the last two. ``value``
    (default 0) fills in constant mode, where a negative width removes elements instead.
    reflect and replicate pad the last 1 to 3 dims of an input with one or two dims more (a
    batch and channels), as torch does, by widths ≥ 0 (reflect: smaller than the dim)."""
    x, widths_flat = input, tuple(int(p) for p in pad)
    if len(widths_flat) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {widths_flat}")
    k = len(widths_flat) // 2
    if k > x.ndim:
        raise ValueError(f"pad: padding length should be at most two times the number of dims, "
                         f"got padding {widths_flat} for an input of shape {x.shape}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; expected one of "
                                  f"{_PAD_MODES}")
    widths = tuple((widths_flat[2 * (x.ndim - 1 - d)], widths_flat[2 * (x.ndim - 1 - d) + 1])
                   if x.ndim - 1 - d < k else (0, 0) for d in range(x.ndim))
    for d, ((b, a), n) in enumerate(zip(widths, x.shape, strict=True)):
        if n + builtins.min(b, 0) + builtins.min(a, 0) < 0:
            raise ValueError(f"pad: padding ({b}, {a}) removes more than the {n} elements of "
                             f"dim {d} of the input of shape {x.shape}")
    if mode != "constant":
        if value is not None:
            raise ValueError(f"pad: padding mode {mode!r} doesn't take in a value argument")
        if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
            raise NotImplementedError(
                f"pad: mode {mode!r} pads the last 1 to 3 dims of an input with one or two dims "
                f"more, as torch; got padding {widths_flat} for an input of shape {x.shape}")
        for d, ((b, a), n) in enumerate(zip(widths, x.shape, strict=True)):
            if d < x.ndim - k:
                continue
            if b < 0 or a < 0:
                raise NotImplementedError(f"pad: mode {mode!r} with a negative width ({b}, {a}) "
                                          f"is not supported; crop with indexing")
            if n == 0:
                raise ValueError(f"pad: mode {mode!r} needs non-empty padded dims, got shape "
                                 f"{x.shape}")
            if mode == "reflect" and builtins.max(b, a) >= n:
                raise ValueError(f"pad: padding size should be less than the corresponding "
                                 f"input dimension, but got padding ({b}, {a}) at dim {d} of "
                                 f"the input of shape {x.shape}")
    return S.Pad.apply(x, widths=widths, mode=mode, value=0.0 if value is None else value)


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Dim ``dim`` of ``input`` viewed as several dims of ``sizes`` (one may be -1, inferred)."""
    x, sizes = input, tuple(int(n) for n in sizes)
    if x.ndim == 0:
        raise ValueError("unflatten: a 0-d tensor has no dim to unflatten")
    d = normalize_dim(dim, x.ndim, "unflatten", x.shape)
    if not sizes:
        raise ValueError("unflatten: sizes must be non-empty")
    n = x.shape[d]
    if -1 in sizes:
        if sizes.count(-1) > 1:
            raise ValueError(f"unflatten: only one size can be inferred (-1), got {sizes}")
        known = math.prod(s for s in sizes if s != -1)
        sizes = tuple((n // known if known else 0) if s == -1 else s for s in sizes)
    if math.prod(sizes) != n or builtins.any(s < 0 for s in sizes):
        raise ValueError(f"unflatten: provided sizes {sizes} don't multiply up to the size of "
                         f"dim {d} ({n}) in the input tensor of shape {x.shape}")
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1:])


def movedim(input: Tensor, source: int | Sequence[int],
            destination: int | Sequence[int]) -> Tensor:
    """``input`` with dims ``source`` moved to positions ``destination``, the other dims keeping
    their order (a permute)."""
    x = input
    given = {name: (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
             for name, dims in (("source", source), ("destination", destination))}
    if len(given["source"]) != len(given["destination"]):
        raise ValueError(f"movedim: source {list(given['source'])} should contain the same "
                         f"number of dims as destination {list(given['destination'])}")
    norm = {}
    for name, dims in given.items():
        norm[name] = [normalize_dim(d, x.ndim, "movedim", x.shape) for d in dims]
        if len(set(norm[name])) != len(dims):
            raise ValueError(f"movedim: repeated dim in `{name}` ({list(dims)})")
    if x.ndim == 0:
        return x
    placed = dict(zip(norm["destination"], norm["source"], strict=True))
    rest = iter(d for d in range(x.ndim) if d not in norm["source"])
    return permute(x, tuple(placed[i] if i in placed else next(rest) for i in range(x.ndim)))


@autocast_to("half")
def einsum(equation: str, *operands: Tensor | Sequence[Tensor]) -> Tensor:
    """Sums of products over named subscripts (see :mod:`minigrad.ops.einsum`); the operands
    may also come as one list, as in torch. They must share one dtype (torch promotes none)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must specify the equation string and at least one operand")
    for i, t in enumerate(operands):
        if not _is_tensor(t):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, got {type(t).__name__}")
    if len({t.dtype for t in operands}) > 1:
        listed = ", ".join(f"{t.dtype} {t.shape}" for t in operands)
        raise TypeError(f"einsum(): operands must share one dtype (torch does not promote "
                        f"them), got {listed}")
    spec = EIN.parse(equation, [t.shape for t in operands])
    return EIN.Einsum.apply(*operands, spec=spec)


@autocast_to("float32")
def std(x: Tensor, dim: int | Sequence[int] | None = None, *, correction: int = 1,
        keepdim: bool = False) -> Tensor:
    """√var: the standard deviation over ``dim`` with ``correction`` (1: unbiased)."""
    if not is_floating(x.dtype):
        raise TypeError(f"std: only floating-point tensors have a standard deviation, got dtype "
                        f"{x.dtype} (shape {x.shape})")
    return sqrt(var(x, dim, keepdim, correction))


@autocast_to("float32")
def prod(x: Tensor, dim: int | None = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """Π over one ``dim``, or over every element (a 0-d tensor); integers and bools multiply to
    int64, as in torch. The gradient is right when x holds zeros (see ``Prod``)."""
    if dtype is not None:
        x = cast(x, _tensor_module.as_dtype(dtype))
    if dim is None:
        if keepdim:
            raise TypeError(f"prod(): keepdim=True needs a dim (shape {x.shape})")
        return R.Prod.apply(reshape(x, (-1,)), dim=0, keepdim=False)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"prod(): dim must be an int (torch reduces one dim), got {dim!r}")
    d = normalize_dim(dim, x.ndim, "prod", x.shape)
    if x.ndim == 0:  # its only element
        return R.Prod.apply(reshape(x, (1,)), dim=0, keepdim=False)
    return R.Prod.apply(x, dim=d, keepdim=keepdim)


@autocast_to("float32")
def logsumexp(x: Tensor, dim: int | Sequence[int], keepdim: bool = False) -> Tensor:
    """log Σ exp(x) over ``dim``, without overflow (see ``LogSumExp``); integers give
    float32, as in torch."""
    if not is_floating(x.dtype):
        x = cast(x, _tensor_module.float32)
    axes = normalize_dims(dim, x.ndim, "logsumexp", x.shape)
    return R.LogSumExp.apply(x, axes=axes, keepdim=keepdim)


def _logical(x: Tensor, dim: int | Sequence[int] | None, keepdim: bool, name: str) -> Tensor:
    axes = normalize_dims(dim, x.ndim, name, x.shape)
    out = getattr(x.data, name)(axis=axes, keepdims=keepdim)
    return _tensor_module.Tensor._make(x.xp.asarray(out), False, None)


def any(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    """Whether any element over ``dim`` is nonzero: a bool tensor, outside the graph."""
    return _logical(x, dim, keepdim, "any")


def all(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    """Whether every element over ``dim`` is nonzero: a bool tensor, outside the graph."""
    return _logical(x, dim, keepdim, "all")


def _amax_or_amin(x: Tensor, dim: int | Sequence[int] | None, keepdim: bool,
                  mode: str) -> Tensor:
    name = "a" + mode
    axes = normalize_dims(None if dim == () else dim, x.ndim, name, x.shape)
    if math.prod(x.shape[a] for a in axes) == 0:
        raise IndexError(f"{name}(): expected the reduced dims {axes} of shape {x.shape} to "
                         "have non-zero size")
    return R.Max.apply(x, axes=axes, keepdim=keepdim, mode=mode)


def amax(x: Tensor, dim: int | Sequence[int] | None = (), keepdim: bool = False) -> Tensor:
    """The largest values over ``dim`` (every dim when ``()`` or None), values only; ties share
    the gradient evenly, as in torch."""
    return _amax_or_amin(x, dim, keepdim, "max")


def amin(x: Tensor, dim: int | Sequence[int] | None = (), keepdim: bool = False) -> Tensor:
    """The smallest values over ``dim``: see :func:`amax`."""
    return _amax_or_amin(x, dim, keepdim, "min")


class ValuesIndices(NamedTuple):
    """What ``max(dim)`` and ``min(dim)`` return, as torch's ``return_types.max``:
    ``values`` (in the graph) and ``indices`` (int64, outside it)."""

    values: Tensor
    indices: Tensor
# --- elementwise ops and losses (issue 15) ---
def _floating(x: Tensor) -> Tensor:
    """``x``, or an integer or bool ``x`` as float32: torch's unary float functions (sin, erf,
    ...) take any tensor and give floating point."""
    return x if is_floating(x.dtype) else cast(x, _tensor_module.float32)


def _check_floating(op: str, x: Tensor) -> None:
    if not is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {x.dtype} (shape "
                        f"{x.shape}); convert it with .float()")


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min of two tensors (broadcasting); see ``Tensor.min`` for the reduction."""
    return E.Minimum.apply(*_promoted(a, b))


def erf(x: Tensor) -> Tensor:
    return E.Erf.apply(_floating(x))


def rsqrt(x: Tensor) -> Tensor:
    """1/√x."""
    return E.Rsqrt.apply(_floating(x))


def sin(x: Tensor) -> Tensor:
    return E.Sin.apply(_floating(x))


def cos(x: Tensor) -> Tensor:
    return E.Cos.apply(_floating(x))


def log1p(x: Tensor) -> Tensor:
    """ln(1 + x), accurate for tiny x."""
    return E.Log1p.apply(_floating(x))


def expm1(x: Tensor) -> Tensor:
    """eˣ - 1, accurate for tiny x."""
    return E.Expm1.apply(_floating(x))


def _flags(x: Tensor, test: str) -> Tensor:
    """A bool tensor, outside the graph: ``xp.<test>`` of a float tensor; an integer or bool
    tensor holds no NaN or infinity."""
    if is_floating(x.dtype):
        flags = getattr(x.xp, test)(x.data)
    else:
        flags = x.xp.full(x.shape, test == "isfinite", dtype=bool)
    return _tensor_module.Tensor._make(flags, False, None)


def isnan(x: Tensor) -> Tensor:
    return _flags(x, "isnan")


def isinf(x: Tensor) -> Tensor:
    return _flags(x, "isinf")


def isfinite(x: Tensor) -> Tensor:
    return _flags(x, "isfinite")


def logical_not(x: Tensor) -> Tensor:
    """x == 0 as a bool tensor, outside the graph (any dtype, as torch)."""
    return _tensor_module.Tensor._make(x.xp.logical_not(x.data), False, None)


def _pairwise_logical(a: Tensor, b: Any, name: str) -> Tensor:
    """``xp.<name>`` of two tensors (or a tensor and an array): a bool tensor, outside the
    graph."""
    other = b.data if _is_tensor(b) else a.xp.asarray(b)
    return _tensor_module.Tensor._make(getattr(a.xp, name)(a.data, other), False, None)


def logical_and(a: Tensor, b: Any) -> Tensor:
    return _pairwise_logical(a, b, "logical_and")


def logical_or(a: Tensor, b: Any) -> Tensor:
    return _pairwise_logical(a, b, "logical_or")


def logical_xor(a: Tensor, b: Any) -> Tensor:
    return _pairwise_logical(a, b, "logical_xor")


def _bitwise(name: str, *operands: Any) -> Tensor:
    """``~``, ``&``, ``|``, ``^`` of bool or integer tensors (a bool mask's not, and, or, xor),
    outside the graph; a float operand is refused, as torch refuses it."""
    arrays = []
    for x in operands:
        a = x.data if _is_tensor(x) else x
        kind = getattr(a, "dtype", np.asarray(a).dtype).kind
        if kind not in "biu":
            raise TypeError(f"{name}: expected bool or integer tensors, got dtype "
                            f"{getattr(a, 'dtype', type(a).__name__)} (torch refuses it too; "
                            f"compare first, e.g. x > 0)")
        arrays.append(a)
    xp = backend.array_module(next(a for a in arrays if hasattr(a, "dtype")))
    return _tensor_module.Tensor._make(getattr(xp, name)(*arrays), False, None)


def bitwise_not(x: Tensor) -> Tensor:
    """``~x``: logical not of a bool tensor, two's-complement not of an integer one."""
    return _bitwise("bitwise_not", x)


def bitwise_and(a: Any, b: Any) -> Tensor:
    return _bitwise("bitwise_and", a, b)


def bitwise_or(a: Any, b: Any) -> Tensor:
    return _bitwise("bitwise_or", a, b)


def bitwise_xor(a: Any, b: Any) -> Tensor:
    return _bitwise("bitwise_xor", a, b)


def _piecewise_constant(x: Tensor, kind: str, decimals: int = 0) -> Tensor:
    """sign, floor, ceil, round: zero gradient (:class:`~.elementwise.PiecewiseConstant`). An
    integer tensor is its own floor, ceil and round, and a bool its own sign (a copy, as
    torch's)."""
    if not is_floating(x.dtype):
        if kind == "round" and decimals != 0:
            raise TypeError(f"round: decimals={decimals} needs a floating-point tensor, got "
                            f"dtype {x.dtype} (torch refuses it too)")
        if kind != "sign" or x.dtype == np.bool_:
            return _tensor_module.Tensor._make(x.data.copy(), False, None)
    return E.PiecewiseConstant.apply(x, kind=kind, decimals=decimals)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element; zero gradient."""
    return _piecewise_constant(x, "sign")


def floor(x: Tensor) -> Tensor:
    return _piecewise_constant(x, "floor")


def ceil(x: Tensor) -> Tensor:
    return _piecewise_constant(x, "ceil")


def round(x: Tensor, decimals: int = 0) -> Tensor:
    """Round to ``decimals`` places, halves to even (``round(2.5) = 2``); zero gradient."""
    return _piecewise_constant(x, "round", decimals)


def lerp(input: Tensor, end: Tensor, weight: Any) -> Tensor:
    """input + weight·(end - input), the three broadcast; ``weight`` a number or a tensor.

    As torch's: input and end must be tensors of one floating-point dtype; a 0-d weight tensor
    of another dtype is converted, a larger one refused.
    """
    for name, t in (("input", input), ("end", end)):
        if not _is_tensor(t):
            raise TypeError(f"lerp: {name} must be a Tensor, got {type(t).__name__}")
    _check_floating("lerp", input)
    if end.dtype != input.dtype:
        raise TypeError(f"lerp: expected dtype {input.dtype} for end (shape {end.shape}), but got "
                        f"dtype {end.dtype}")
    if _is_tensor(weight):
        if weight.dtype != input.dtype and weight.ndim > 0:
            raise TypeError(f"lerp: expected dtype {input.dtype} for weight (shape "
                            f"{weight.shape}), but got dtype {weight.dtype}")
        weight = cast(weight, input.dtype)
    elif not is_scalar(weight):
        raise TypeError(f"lerp: weight must be a number or a Tensor, got {type(weight).__name__}")
    return E.Lerp.apply(input, end, weight)


def silu(input: Tensor) -> Tensor:
    """x·σ(x)."""
    _check_floating("silu", input)
    return E.Silu.apply(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx))/β, and x itself where βx > threshold (torch's switch to the identity)."""
    _check_floating("softplus", input)
    return E.Softplus.apply(input, beta=beta, threshold=threshold)


def mish(input: Tensor) -> Tensor:
    """x·tanh(softplus(x))."""
    _check_floating("mish", input)
    return E.Mish.apply(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient passes strictly inside only."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val, got "
                         f"min_val={min_val} and max_val={max_val}")
    _check_floating("hardtanh", input)
    return E.Hardtanh.apply(input, lo=min_val, hi=max_val)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope·x."""
    _check_floating("leaky_relu", input)
    return E.LeakyRelu.apply(input, negative_slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else α(eˣ - 1)."""
    _check_floating("elu", input)
    return E.Elu.apply(input, alpha=alpha)


@autocast_to("float32")
def rms_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x/√(mean(x²) + eps)·weight over the last dims (``normalized_shape``); ``eps=None`` is the
    machine epsilon of the input's dtype, as torch's."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k > input.ndim or input.shape[input.ndim - k:] != shape:
        raise ValueError(f"rms_norm: normalized_shape {shape} does not match the last dims of "
                         f"the input's shape {input.shape}")
    if weight is not None and weight.shape != shape:
        raise ValueError(f"rms_norm: weight has shape {weight.shape}, expected normalized_shape "
                         f"{shape}")
    _check_floating("rms_norm", input)
    eps = float(np.finfo(input.dtype).eps) if eps is None else eps
    return N.RMSNorm.apply(input, weight, k=k, eps=eps)


def _shape_of(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _class_rows(op: str, input: Tensor, target: Any) -> tuple[Tensor, Any]:
    """For losses over class ids: the input as rows (M, C), the class on the last dim, and the
    target as an integer array on the input's device.

    Shapes as in PyTorch: input (N, C) with target (N,); input (C,) with a scalar target; or
    input (N, C, d1, ...) with target (N, d1, ...), whose class dim moves last.
    """
    t = _array_on(target, input)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class ids, got dtype {t.dtype}")
    if input.ndim == 1:
        expected = ()
    elif input.ndim >= 2:
        expected = (input.shape[0],) + input.shape[2:]
    else:
        expected = None
    if expected is None or tuple(t.shape) != expected:
        raise ValueError(f"{op}: input of shape {input.shape} needs a target of shape "
                         f"{expected}, got {tuple(t.shape)}")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    z = input
    if input.ndim == 1:
        z = unsqueeze(input, 0)
    elif input.ndim > 2:
        z = reshape(permute(input, (0, *range(2, input.ndim), 1)), (-1, c))
    return z, t


def _constant_weight(op: str, name: str, weight: Any, ref: Tensor) -> Any:
    """A loss's constant weights (``weight``, ``pos_weight``) as an array of ``ref``'s dtype and
    device. One that requires grad is refused: the loss is not differentiable in it (nor is
    torch's, which refuses it too)."""
    if weight is None:
        return None
    if _is_tensor(weight) and weight.requires_grad and autograd.is_grad_enabled():
        raise RuntimeError(f"{op}: {name} (shape {weight.shape}) requires grad, but {op} is not "
                           f"differentiable with respect to {name}; pass {name}.detach()")
    return _array_on(weight, ref).astype(ref.dtype, copy=False)


def _soft_cross_entropy(input: Tensor, target: Any, ignore_index: int, reduction: str,
                        label_smoothing: float) -> Tensor:
    """Cross-entropy against class probabilities ``target`` (the input's shape, the class on
    dim 1, or dim 0 of a 1-D input), differentiable in both; ``mean`` averages over the
    N·d1·... positions. As torch's, ``ignore_index`` has no meaning here and is refused."""
    dtype = np.dtype(target.dtype if hasattr(target, "dtype") else np.asarray(target).dtype)
    if not is_floating(dtype):
        raise TypeError(f"cross_entropy: a target of the input's shape {input.shape} holds class "
                        f"probabilities and must be floating point, got dtype {dtype}")
    if ignore_index != -100:
        raise ValueError(f"cross_entropy: ignore_index={ignore_index} is not supported for "
                         f"class-probability targets (shape {input.shape})")
    _check_floating("cross_entropy", input)
    y = _check_target("cross_entropy", input, target)
    dim = 0 if input.ndim == 1 else 1
    return _reduce(L.SoftCrossEntropy.apply(input, y, dim=dim, label_smoothing=label_smoothing),
                   reduction)


@autocast_to("float32")
def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` at integer class ids ``target``
    (shapes as :func:`cross_entropy`), each row weighted by ``weight[target]`` (a constant of
    shape (C,)). ``mean`` divides by the sum of the weights of the targets that are not
    ``ignore_index``; if that is 0 the loss is 0 (PyTorch returns NaN), as cross_entropy."""
    _check_reduction("nll_loss", reduction)
    _check_floating("nll_loss", input)
    z, t = _class_rows("nll_loss", input, target)
    c = z.shape[1]
    w = _constant_weight("nll_loss", "weight", weight, input)
    if w is not None and tuple(w.shape) != (c,):
        raise ValueError(f"nll_loss: weight has shape {tuple(w.shape)}, expected ({c},): one "
                         f"weight per class of the input of shape {input.shape}")
    per_row = L.NllLoss.apply(z, target=t.reshape(-1), weight=w, ignore_index=ignore_index)
    if reduction != "mean":
        return _reduce(reshape(per_row, t.shape), reduction)
    xp = input.xp
    valid = t != ignore_index
    total = valid.sum() if w is None else xp.where(valid, w[xp.where(valid, t, 0)], 0).sum()
    count = xp.where(total > 0, total, 1).astype(input.dtype)  # on the device: no transfer
    return _reduce(per_row, reduction, count)


@autocast_to("float32")
def kl_div(input: Tensor, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence Σ t·(log t - input) of log-probabilities ``input`` from ``target`` (given as
    log t with ``log_target``), differentiable in both. ``batchmean`` divides the sum by the
    batch size (dim 0), the mathematical KL per example; ``mean`` by the number of elements."""
    reductions = ("mean", "batchmean", "sum", "none")
    if reduction not in reductions:
        raise ValueError(f"kl_div: reduction must be one of {reductions}, got {reduction!r}")
    _check_floating("kl_div", input)
    loss = L.KLDiv.apply(input, _check_target("kl_div", input, target), log_target=log_target)
    if reduction != "batchmean":
        return _reduce(loss, reduction)
    return _reduce(loss, "mean", input.shape[0] if input.ndim else 1)


@autocast_to("float32")
def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """½d²/β where |d| < β, else |d| - ½β, for d = input - target (β = 0: |d|)."""
    _check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    _check_floating("smooth_l1_loss", input)
    y = _check_target("smooth_l1_loss", input, target)
    return _reduce(L.SmoothL1.apply(input, y, beta=beta), reduction)


@autocast_to("float32")
def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| < δ, else δ(|d| - ½δ), for d = input - target: δ·smooth_l1 with β = δ."""
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    _check_floating("huber_loss", input)
    y = _check_target("huber_loss", input, target)
    return _reduce(L.SmoothL1.apply(input, y, beta=delta) * delta, reduction)
