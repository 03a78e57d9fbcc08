"""``Tensor``: an array, its gradient, and its place in the graph.

A Tensor holds ``.data`` (a NumPy or CuPy array), ``.grad`` (an array of the same shape, or None)
and, if an op made it while gradients were wanted, ``._ctx``: the node that records that op and
its inputs. Every operator delegates to a function in :mod:`minigrad.ops`, where each op's
forward and backward sit side by side.

In-place ops (``add_``, ``x += y``, ``x[i] = v``, ...) write the tensor's own array and bump its
version (``_version``, shared with its views), as in PyTorch; see :mod:`minigrad.autograd`.
"""

from __future__ import annotations

import types
import weakref
from typing import Any

import numpy as np

from minigrad import autograd, backend, dtypes, ops
from minigrad.dtypes import is_floating

float16 = dtypes.float16
bfloat16 = dtypes.bfloat16  # None where ml_dtypes is missing
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
bool_ = np.dtype(np.bool_)

_DTYPE_NAMES = {"float32": float32, "float": float32, "float64": float64, "double": float64,
                "float16": float16, "half": float16, "bfloat16": bfloat16,
                "int64": int64, "long": int64, "int32": int32, "int": int32, "bool": bool_}


def as_dtype(dtype: Any) -> np.dtype:
    """A NumPy dtype from a dtype, a NumPy type or a name such as ``"float32"`` or ``"half"``."""
    if isinstance(dtype, str):
        if dtype not in _DTYPE_NAMES:
            raise TypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPE_NAMES)}")
        if dtype == "bfloat16":
            return dtypes.need_bfloat16("dtype 'bfloat16'")
        return _DTYPE_NAMES[dtype]
    if dtype is None:
        raise TypeError("dtype None: expected a dtype such as mg.float32 (mg.bfloat16 is None "
                        "where ml_dtypes is missing: pip install ml_dtypes)")
    return np.dtype(dtype)


def _default_dtype(data: Any) -> np.dtype | None:
    """PyTorch's defaults: Python floats become float32, ints int64; arrays keep their dtype."""
    if hasattr(data, "dtype"):
        return None
    kind = np.asarray(data).dtype.kind
    return {"f": float32, "i": int64, "u": int64, "b": bool_}.get(kind)


class Tensor:
    """An n-dimensional array that records the ops applied to it, for ``backward()``.

    ``.data`` is the array itself: the documented, unchecked escape hatch, as in PyTorch.
    Writing through it (``t.data[0] = 1``, ``t.data *= 2``) bumps no version, so autograd
    cannot see the change; only :func:`minigrad.detect_anomaly` catches such a write into an
    array saved for backward. Prefer the in-place ops, which the version counter tracks.
    """

    __array_ufunc__ = None  # numpy_array + tensor calls Tensor.__radd__ rather than NumPy

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        source = backend.device_of(data)  # "cpu" for lists and numbers
        target = backend.normalize_device(device) if device is not None else source
        dtype = as_dtype(dtype) if dtype is not None else _default_dtype(data)
        if dtype is not None:
            backend.check_dtype_on(dtype, target)
        if target != source:
            data = backend.to_device(data, target)
        self.data = backend.xp_for(target).asarray(data, dtype=dtype)
        self.grad: Any = None
        self._ctx: autograd.Context | None = None
        self._version_counter = autograd.VersionCounter()
        self._base: Tensor | None = None  # the tensor this one is a view of, if any
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _make(cls, data: Any, requires_grad: bool, ctx: autograd.Context | None) -> Tensor:
        """Wrap an op's output array without copying or checking it."""
        t = cls.__new__(cls)
        t.data, t.grad, t._ctx = data, None, ctx
        t._version_counter, t._base = autograd.VersionCounter(), None
        t.requires_grad = requires_grad
        return t

    # --- attributes -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def xp(self) -> types.ModuleType:
        """The array module (NumPy or CuPy) that holds this tensor's data."""
        return backend.array_module(self.data)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def _version(self) -> int:
        """How many in-place ops have written this tensor's memory (PyTorch's ``_version``)."""
        return self._version_counter.value

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> str | None:
        """The name of the op that made this tensor, if it is part of a graph."""
        return None if self._ctx is None else self._ctx.fn.__name__

    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's and PyTorch's name)
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(backend.to_device(self.data, "cpu"),
                               separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != float32 and self.dtype != int64:
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # --- gradients --------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not is_floating(self.dtype):
            raise TypeError(
                f"only floating-point tensors can require grad; this tensor has dtype "
                f"{self.dtype} and shape {self.shape}"
            )
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor too (leaves always keep theirs)."""
        if self._ctx is not None:  # its node fills .grad (held weakly: no reference cycle)
            self._ctx.retained = weakref.ref(self)

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Fill ``.grad`` of every leaf this tensor depends on with d(self)/d(leaf).

        ``grad`` is the gradient of some scalar with respect to ``self``; it may be omitted
        only when ``self`` holds one element, as in PyTorch.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward() on a tensor (shape {self.shape}) that does not require grad: "
                "none of the tensors it was computed from has requires_grad=True"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without grad needs a single-element tensor, got shape "
                    f"{self.shape}; pass grad= (an array of shape {self.shape})"
                )
            grad = self.xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            grad = backend.to_device(self.xp.asarray(grad, dtype=self.dtype), self.device)
            if grad.shape != self.shape:
                raise RuntimeError(
                    f"backward(): grad has shape {tuple(grad.shape)} but the tensor has shape "
                    f"{self.shape}"
                )
        autograd.run_backward(self, grad, retain_graph)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``, as PyTorch's default)."""
        self.grad = None

    def detach(self) -> Tensor:
        """The same data, cut from the graph. It shares this tensor's memory and version
        counter, as in torch: an in-place op on either is seen by backward through the other."""
        t = Tensor._make(self.data, False, None)
        t._version_counter = self._version_counter
        return t

    def _mark_dirty(self) -> None:
        """Record that a kernel wrote this tensor's array in place (an optimizer's fused step):
        the version goes up, as after any in-place op (PyTorch's ``ctx.mark_dirty``)."""
        self._version_counter.value += 1

    # --- conversion -------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.device != "cpu":
            raise TypeError(
                f"numpy() on a {self.device} tensor of shape {self.shape}: copy it to the "
                "host first with .cpu().numpy()"
            )
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item() needs a single-element tensor, got shape {self.shape}")
        return backend.to_device(self.data, "cpu").item()

    def tolist(self) -> Any:
        return backend.to_device(self.data, "cpu").tolist()

    def to(self, target: Any) -> Tensor:
        """A copy on another device (``"cpu"``, ``"cuda"``) or in another dtype; differentiable."""
        if isinstance(target, str) and (target == "cpu" or target.startswith("cuda")):
            return ops.to_device(self, backend.normalize_device(target))
        return ops.cast(self, as_dtype(target))

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return ops.cast(self, float32)

    def double(self) -> Tensor:
        return ops.cast(self, float64)

    def half(self) -> Tensor:
        return ops.cast(self, float16)

    def bfloat16(self) -> Tensor:
        return ops.cast(self, dtypes.need_bfloat16("Tensor.bfloat16()"))

    def long(self) -> Tensor:
        return ops.cast(self, int64)

    # --- arithmetic -------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    # --- in place: the same Tensor object, its version bumped (see ops._write_inplace) ----------
    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        return ops.add_(self, other, alpha)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        return ops.sub_(self, other, alpha)

    def mul_(self, other: Any) -> Tensor:
        return ops.mul_(self, other)

    def div_(self, other: Any) -> Tensor:
        return ops.div_(self, other)

    def clip_(self, min: float | None = None, max: float | None = None) -> Tensor:
        return ops.clip_(self, min, max)

    clamp_ = clip_

    def fill_(self, value: float) -> Tensor:
        return ops.fill_(self, value)

    def zero_(self) -> Tensor:
        return ops.fill_(self, 0)

    def copy_(self, src: Any) -> Tensor:
        return ops.copy_(self, src)

    def __iadd__(self, other: Any) -> Tensor:
        return ops.add_(self, other)

    def __isub__(self, other: Any) -> Tensor:
        return ops.sub_(self, other)

    def __imul__(self, other: Any) -> Tensor:
        return ops.mul_(self, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return ops.div_(self, other)

    def __setitem__(self, index: Any, value: Any) -> None:
        ops.setitem(self, index, value)

    # comparisons make boolean tensors, outside the graph
    def __lt__(self, other: Any) -> Tensor:
        return ops.compare(self, other, "less")

    def __le__(self, other: Any) -> Tensor:
        return ops.compare(self, other, "less_equal")

    def __gt__(self, other: Any) -> Tensor:
        return ops.compare(self, other, "greater")

    def __ge__(self, other: Any) -> Tensor:
        return ops.compare(self, other, "greater_equal")

    def __eq__(self, other: Any) -> Tensor | bool:  # type: ignore[override]
        if other is None:  # `t == None` is False, as in torch
            return False
        return ops.compare(self, other, "equal")

    def __ne__(self, other: Any) -> Tensor | bool:  # type: ignore[override]
        if other is None:
            return True
        return ops.compare(self, other, "not_equal")

    # bool masks (and integers): not, and, or, xor, outside the graph; floats are refused
    def __invert__(self) -> Tensor:
        return ops.bitwise_not(self)

    def __and__(self, other: Any) -> Tensor:
        return ops.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Tensor:
        return ops.bitwise_and(other, self)

    def __or__(self, other: Any) -> Tensor:
        return ops.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Tensor:
        return ops.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Tensor:
        return ops.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return ops.bitwise_xor(other, self)

    def logical_not(self) -> Tensor:
        return ops.logical_not(self)

    def logical_and(self, other: Any) -> Tensor:
        return ops.logical_and(self, other)

    def logical_or(self, other: Any) -> Tensor:
        return ops.logical_or(self, other)

    def logical_xor(self, other: Any) -> Tensor:
        return ops.logical_xor(self, other)

    def __hash__(self) -> int:  # tensors are identities (parameters in sets and dicts)
        return id(self)

    def __bool__(self) -> bool:
        return bool(self.item())

    # --- elementwise ------------------------------------------------------------------------
    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        return ops.clip(self, min, max)

    clamp = clip

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        return ops.masked_fill(self, mask, value)

    # --- elementwise (issue 15) ---
    def minimum(self, other: Any) -> Tensor:
        return ops.minimum(self, other)

    def erf(self) -> Tensor:
        return ops.erf(self)

    def rsqrt(self) -> Tensor:
        return ops.rsqrt(self)

    def sin(self) -> Tensor:
        return ops.sin(self)

    def cos(self) -> Tensor:
        return ops.cos(self)

    def log1p(self) -> Tensor:
        return ops.log1p(self)

    def expm1(self) -> Tensor:
        return ops.expm1(self)

    def isnan(self) -> Tensor:
        return ops.isnan(self)

    def isinf(self) -> Tensor:
        return ops.isinf(self)

    def isfinite(self) -> Tensor:
        return ops.isfinite(self)

    def sign(self) -> Tensor:
        return ops.sign(self)

    def floor(self) -> Tensor:
        return ops.floor(self)

    def ceil(self) -> Tensor:
        return ops.ceil(self)

    def round(self, decimals: int = 0) -> Tensor:
        return ops.round(self, decimals)

    def lerp(self, end: Tensor, weight: Any) -> Tensor:
        return ops.lerp(self, end, weight)

    # --- reductions -------------------------------------------------------------------------
    def sum(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False, *,
            dtype: Any = None) -> Tensor:
        return ops.sum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return ops.mean(self, dim, keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False) -> Tensor | ops.ValuesIndices:
        return ops.max(self, dim, keepdim)

    def min(self, dim: int | None = None, keepdim: bool = False) -> Tensor | ops.ValuesIndices:
        return ops.min(self, dim, keepdim)

    def var(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False,
            correction: int = 1) -> Tensor:
        return ops.var(self, dim, keepdim, correction)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmax(self, dim, keepdim)

    # --- shape ------------------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        return ops.reshape(self, _shape_args(shape))

    def view(self, *shape: int | tuple[int, ...]) -> Tensor:
        return ops.reshape(self, _shape_args(shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims: int | tuple[int, ...]) -> Tensor:
        return ops.permute(self, _shape_args(dims))

    def unsqueeze(self, dim: int) -> Tensor:
        return ops.unsqueeze(self, dim)

    def squeeze(self, dim: int | None = None) -> Tensor:
        return ops.squeeze(self, dim)

    def expand(self, *sizes: int | tuple[int, ...]) -> Tensor:
        return ops.expand(self, _shape_args(sizes))

    # --- shape ops and reductions (issue 15) ---
    def split(self, split_size: int | list[int], dim: int = 0) -> tuple[Tensor, ...]:
        return ops.split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        return ops.chunk(self, chunks, dim)

    def tril(self, diagonal: int = 0) -> Tensor:
        return ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return ops.triu(self, diagonal)

    def repeat(self, *sizes: int | tuple[int, ...]) -> Tensor:
        return ops.repeat(self, _shape_args(sizes))

    def repeat_interleave(self, repeats: int | Tensor, dim: int | None = None) -> Tensor:
        return ops.repeat_interleave(self, repeats, dim)

    def unflatten(self, dim: int, sizes: tuple[int, ...] | list[int]) -> Tensor:
        return ops.unflatten(self, dim, sizes)

    def movedim(self, source: int | tuple[int, ...], destination: int | tuple[int, ...]
                ) -> Tensor:
        return ops.movedim(self, source, destination)

    def std(self, dim: int | tuple[int, ...] | None = None, *, correction: int = 1,
            keepdim: bool = False) -> Tensor:
        return ops.std(self, dim, correction=correction, keepdim=keepdim)

    def prod(self, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None
             ) -> Tensor:
        return ops.prod(self, dim, keepdim, dtype=dtype)

    def logsumexp(self, dim: int | tuple[int, ...], keepdim: bool = False) -> Tensor:
        return ops.logsumexp(self, dim, keepdim)

    def any(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return ops.any(self, dim, keepdim)

    def all(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return ops.all(self, dim, keepdim)

    def amax(self, dim: int | tuple[int, ...] | None = (), keepdim: bool = False) -> Tensor:
        return ops.amax(self, dim, keepdim)

    def amin(self, dim: int | tuple[int, ...] | None = (), keepdim: bool = False) -> Tensor:
        return ops.amin(self, dim, keepdim)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # --- indexing, scans and sorting ---
    def gather(self, dim: int, index: Any) -> Tensor:
        return ops.gather(self, dim, index)

    def scatter(self, dim: int, index: Any, src: Tensor | float) -> Tensor:
        return ops.scatter(self, dim, index, src)

    def scatter_add(self, dim: int, index: Any, src: Tensor) -> Tensor:
        return ops.scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index: Any) -> Tensor:
        return ops.index_select(self, dim, index)

    def masked_select(self, mask: Any) -> Tensor:
        return ops.masked_select(self, mask)

    def nonzero(self, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
        return ops.nonzero(self, as_tuple)

    def take_along_dim(self, indices: Any, dim: int | None = None) -> Tensor:
        return ops.take_along_dim(self, indices, dim)

    def cumsum(self, dim: int) -> Tensor:
        return ops.cumsum(self, dim)

    def cumprod(self, dim: int) -> Tensor:
        return ops.cumprod(self, dim)

    def sort(self, dim: int = -1, descending: bool = False,
             stable: bool = False) -> ops.SortResult:
        return ops.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return ops.argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True,
             sorted: bool = True) -> ops.TopKResult:
        return ops.topk(self, k, dim, largest, sorted)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmin(self, dim, keepdim)

    def flip(self, *dims: int | tuple[int, ...]) -> Tensor:
        return ops.flip(self, _shape_args(dims))

    def roll(self, shifts: int | tuple[int, ...],
             dims: int | tuple[int, ...] | None = None) -> Tensor:
        return ops.roll(self, shifts, dims)


def _shape_args(args: tuple) -> tuple[int, ...]:
    """Accept both ``x.reshape(2, 3)`` and ``x.reshape((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


# --- factories (PyTorch's names and keyword arguments) ---------------------------------------
def tensor(data: Any, requires_grad: bool = False, dtype: Any = None,
           device: str | None = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists, numbers, arrays or another tensor)."""
    if isinstance(data, Tensor):
        data = data.data
    t = Tensor(data, requires_grad=False, dtype=dtype, device=device)
    if t.data is data:
        t.data = t.data.copy()
    return t.requires_grad_(requires_grad)


def _new(make: Any, size: tuple, dtype: Any, device: str | None, requires_grad: bool) -> Tensor:
    dev = backend.normalize_device(device)
    dt = as_dtype(dtype) if dtype is not None else float32
    backend.check_dtype_on(dt, dev)
    return Tensor._make(make(backend.xp_for(dev), _shape_args(size), dt, dev), False,
                        None).requires_grad_(requires_grad)


def zeros(*size: int | tuple[int, ...], dtype: Any = None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:
    return _new(lambda xp, s, dt, dev: xp.zeros(s, dtype=dt), size, dtype, device, requires_grad)


def ones(*size: int | tuple[int, ...], dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    return _new(lambda xp, s, dt, dev: xp.ones(s, dtype=dt), size, dtype, device, requires_grad)


def full(size: tuple[int, ...], fill_value: float, dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """``size`` filled with ``fill_value``; the dtype follows the value when not given, as in
    torch: int64 for an int, bool for a bool, float32 for a float."""
    if dtype is None:
        dtype = _default_dtype(fill_value)
    return _new(lambda xp, s, dt, dev: xp.full(s, fill_value, dtype=dt), (tuple(size),), dtype,
                device, requires_grad)


def randn(*size: int | tuple[int, ...], dtype: Any = None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples from minigrad's generator (seed it with ``manual_seed``)."""
    return _new(lambda xp, s, dt, dev: backend.random_normal(s, dt, dev), size, dtype, device,
                requires_grad)


def rand(*size: int | tuple[int, ...], dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from minigrad's generator."""
    return _new(lambda xp, s, dt, dev: backend.random_uniform(s, dt, dev), size, dtype, device,
                requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           device: str | None = None) -> Tensor:
    """``arange(n)`` or ``arange(start, end, step)``; int64 for integer arguments, as PyTorch."""
    if end is None:
        start, end = 0, start
    xp = backend.xp_for(backend.normalize_device(device))
    ints = all(isinstance(v, int) for v in (start, end, step))
    dt = as_dtype(dtype) if dtype is not None else (int64 if ints else float32)
    return Tensor._make(xp.arange(start, end, step, dtype=dt), False, None)


def eye(n: int, m: int | None = None, dtype: Any = None, device: str | None = None,
        requires_grad: bool = False) -> Tensor:
    return _new(lambda xp, s, dt, dev: xp.eye(n, m, dtype=dt), (), dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)
