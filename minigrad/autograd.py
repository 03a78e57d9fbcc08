"""Reverse-mode automatic differentiation.

An op is a :class:`Function` with two static methods on raw arrays:

* ``forward(ctx, *arrays, **attrs) -> array`` computes the output and saves on ``ctx`` what the
  backward pass will need;
* ``backward(ctx, grad) -> grad or tuple of grads`` maps the gradient of the output to one
  gradient per positional input (a vector-Jacobian product; ``None`` where none is needed).

``Function.apply`` wraps the arrays in Tensors and, when a gradient is wanted, records a
:class:`Context` on the output: the op, its inputs and its saved arrays. ``Tensor.backward()``
calls :func:`run_backward`, which orders that record topologically (iteratively, so a chain of
100,000 ops cannot hit Python's recursion limit) and walks it from the output back to the leaves,
dropping each node's inputs and saved arrays once its backward has run: a finished graph holds
nothing, even while its loss tensor lives on.

Versions, as in PyTorch: every tensor carries a :class:`VersionCounter` (shared with its views)
that each in-place op bumps. A node records the version of every tensor whose array it saved;
backward refuses to use a saved array whose tensor has moved on, naming the op, the shape and both
versions. Writes that bypass the counter (through ``.data``, or a NumPy array shared with
``Tensor(ndarray)``) are caught under :func:`detect_anomaly`, which also records a checksum of
each saved array.
"""

from __future__ import annotations

import contextlib
import weakref
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad import backend
from minigrad.dtypes import is_floating, is_half

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

_grad_enabled = True
_anomaly_enabled = False
# (device, half dtype, cache_enabled) while a minigrad.amp.autocast region is on, else None;
# and its cache of half copies of parameters: id(parameter) -> (parameter, version, dtype, copy)
_autocast: tuple[str, np.dtype, bool] | None = None
autocast_cache: dict[int, tuple[Any, int, np.dtype, Any]] = {}


def is_grad_enabled() -> bool:
    return _grad_enabled


def autocast_state() -> tuple[str, np.dtype, bool] | None:
    """(device, dtype, cache_enabled) of the autocast region the ops run in, or None
    (see :mod:`minigrad.amp`)."""
    return _autocast


def set_autocast_state(state: tuple[str, np.dtype, bool] | None
                       ) -> tuple[str, np.dtype, bool] | None:
    """Enter (or leave, with None) an autocast region; returns the state it replaces."""
    global _autocast
    previous, _autocast = _autocast, state
    return previous


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within this block ops record no graph, as ``torch.no_grad()`` (for evaluation)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Turn graph recording back on inside a ``no_grad`` block."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Check every op's output and every gradient for NaN/Inf, naming the first op that makes one,
    and catch saved arrays changed behind the version counter's back.

    Beyond PyTorch's anomaly mode: each op run inside this block also records a CRC-32 checksum
    of every array it saved for backward; backward recomputes it and raises, naming the op, if an
    array changed without an in-place op (a write through ``.data`` or through a NumPy array
    shared with ``Tensor(ndarray)``, which no version counter can see).
    Opt-in because each check costs a pass over the array (and a device sync on a GPU).
    """
    global _anomaly_enabled
    previous, _anomaly_enabled = _anomaly_enabled, True
    try:
        yield
    finally:
        _anomaly_enabled = previous


class VersionCounter:
    """How many times a tensor's array has been written in place. A view shares its base's
    counter, as the two share memory; ``detach()`` shares it too."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Context:
    """One node of the graph: the op that made a tensor, where its gradient goes, and what
    backward needs.

    Ops keep arrays for backward with ``save_for_backward`` and small attributes, such as a
    ``dim``, as plain attributes. A node holds no input tensor: for each input it keeps the
    edge its gradient follows (``parents``: the node that made the input when this op ran, the
    input itself if it is a leaf that requires grad, or None) and the input's shape and dtype.
    So an activation that no op saved is freed as soon as the forward pass moves on, as in
    PyTorch, and an in-place op that later gives a tensor a new node cannot redirect the
    gradient of an op that read the old value. After the node's backward (unless
    ``retain_graph=True``) its edges and saved arrays are dropped too.
    """

    def __init__(self, fn: type[Function], inputs: tuple[Tensor | None, ...]):
        self.fn = fn
        self.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        self.parents = tuple(
            None if not needed else t if t._ctx is None else t._ctx  # type: ignore[union-attr]
            for t, needed in zip(inputs, self.needs_input_grad, strict=True))
        self.input_meta = tuple(None if t is None else (t.shape, t.dtype) for t in inputs)
        self.output_meta: tuple = ()  # (shape, dtype) of the tensor this node made
        self.retained: weakref.ref | None = None  # that tensor, if it asked retain_grad()
        self.saved: tuple = ()
        # whether backward will ever run through this node: an op may skip saving what only
        # backward reads (no_grad inference), since nothing will ask for it
        self.requires_grad = _grad_enabled and any(self.needs_input_grad)
        self.freed = False
        # (the counter of the tensor owning a saved array, its version then, a description of
        # that tensor) for each saved array that is a tensor's memory
        self.saved_versions: tuple = ()
        self.checksums: tuple | None = None  # CRC-32 of each saved array, under detect_anomaly
        self.half: np.dtype | None = None  # set when the op computed half inputs in float32

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays

    def release(self) -> None:
        """Drop everything backward needed: the graph behind this node can now be freed."""
        self.saved = self.parents = self.saved_versions = ()
        self.checksums = None
        self.freed = True


class Function:
    """Base class of every differentiable op (see the module docstring for the protocol).

    ``half_in_float32``: set on the ops that compute through BLAS or a Numba kernel (matmul,
    linear, attention, softmax, LayerNorm, GELU, cross-entropy, einsum). Given float16 or
    bfloat16 inputs on the CPU, such an op computes in float32 and rounds its output back to the
    inputs' half dtype, as PyTorch and JAX do on the CPU (NumPy has no half-precision BLAS, and
    Numba no half types): see :func:`_forward_in_float32`. Elementwise ops compute in the half
    dtype itself (NumPy's float16, ml_dtypes' bfloat16 ufuncs).
    """

    half_in_float32: bool = False

    @staticmethod
    def forward(ctx: Context, *args: Any, **attrs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **attrs: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if a gradient is wanted, record the node.

        Positional inputs are Tensors, ``None`` (an optional input, e.g. a missing bias) or
        constants (Python numbers, arrays), which become arrays of the first tensor's dtype and
        device. Keyword arguments are attributes of the op and are passed through unchanged.
        """
        tensor_cls = _tensor_module.Tensor
        tensors = [t for t in inputs if isinstance(t, tensor_cls)]
        if not tensors:
            raise TypeError(f"{cls.__name__}: expected at least one Tensor input")
        ref = tensors[0]
        for t in tensors[1:]:
            if t.device != ref.device:
                described = ", ".join(f"{t.device} tensor of shape {t.shape}" for t in tensors)
                raise backend.DeviceError(
                    f"{cls.__name__}: expected all tensors on the same device, got {described}"
                )
        xp = ref.xp
        arrays = []
        wrapped: list[Tensor | None] = []
        for x in inputs:
            if isinstance(x, tensor_cls):
                arrays.append(x.data)
                wrapped.append(x)
            elif x is None:
                arrays.append(None)
                wrapped.append(None)
            else:
                arrays.append(_constant(x, ref, xp))
                wrapped.append(None)

        ctx = Context(cls, tuple(wrapped))
        half = _half_on_cpu(arrays) if cls.half_in_float32 else None
        if half is None:
            out = cls.forward(ctx, *arrays, **attrs)
        else:
            out = _forward_in_float32(ctx, arrays, attrs, half)
        if isinstance(out, np.generic):  # NumPy's 0-d results are scalars: make them arrays
            out = np.asarray(out)
        if _anomaly_enabled:
            _check_finite(out, f"the output of {cls.__name__}.forward",
                          ", ".join(str(t.shape) for t in tensors))
        # only floating-point outputs join the graph (an integer or bool result has no gradient)
        requires_grad = ctx.requires_grad and is_floating(out.dtype)
        result = tensor_cls._make(out, requires_grad, ctx if requires_grad else None)
        ctx.output_meta = result.shape, result.dtype
        # a view of an input (or the input itself) shares its version counter; a fresh array,
        # one that owns its memory (base None), can only be an input by identity
        if out.base is not None or any(out is t.data for t in tensors):
            for t in tensors:
                if _same_memory(out, t.data):
                    result._version_counter = t._version_counter
                    result._base = t if t._base is None else t._base
                    break
        if requires_grad and ctx.saved:
            _record_saved(ctx, tensors, result)
        return result


# --- half precision on the CPU: compute in float32, keep half -----------------------------------
def _half_on_cpu(arrays: list[Any]) -> np.dtype | None:
    """The half dtype of an op's floating-point NumPy arrays if they all share one, else None."""
    floating = {a.dtype for a in arrays if isinstance(a, np.ndarray) and is_floating(a.dtype)}
    if len(floating) == 1:
        (dtype,) = floating
        return dtype if is_half(dtype) else None
    return None


def _forward_in_float32(ctx: Context, arrays: list[Any], attrs: dict, half: np.dtype) -> Any:
    """Run ``ctx.fn.forward`` on half-precision arrays by casting them up to float32 (so the
    float32 path runs: SGEMM, the Numba kernel) and rounding the output back to ``half``.

    What forward saved for backward is kept in ``half`` too (that is the memory saving of half
    precision): an input's float32 copy, or a reshape of it, is replaced by the input itself
    (so its version counter still guards it), anything else computed in float32 is rounded.
    :func:`run_backward` casts them up again (``ctx.half``) before the op's backward.
    """
    wide = [a.astype(np.float32, order="C") if isinstance(a, np.ndarray) and a.dtype == half
            else a for a in arrays]
    copies = [(w, a) for w, a in zip(wide, arrays, strict=True) if w is not a]
    out = ctx.fn.forward(ctx, *wide, **attrs)
    ctx.half = half

    def narrow(s: Any) -> Any:
        if not (isinstance(s, np.ndarray) and s.dtype == np.float32):
            return s
        for w, a in copies:
            if s is w or (s.base is w and s.flags.c_contiguous and s.size == w.size):
                return a.reshape(s.shape)
        return s.astype(half)

    ctx.saved = tuple(narrow(s) for s in ctx.saved)
    return out.astype(half) if out.dtype == np.float32 else out


def _backward_in_float32(ctx: Context, g: Any) -> Any:
    """The backward of an op that ran :func:`_forward_in_float32`: saved arrays and the incoming
    gradient cast up to float32; run_backward rounds the input gradients to the inputs' dtypes."""
    saved = ctx.saved
    ctx.saved = tuple(s.astype(np.float32) if isinstance(s, np.ndarray) and s.dtype == ctx.half
                      else s for s in saved)
    try:
        return ctx.fn.backward(ctx, g.astype(np.float32))
    finally:
        ctx.saved = saved


def _constant(x: Any, ref: Tensor, xp: Any) -> Any:
    """A Python number or array operand, as an array beside the tensor ``ref``.

    Numbers, Python or NumPy scalars, take the tensor's dtype, as in PyTorch (``x * 0.5`` and
    ``x * np.int64(2)`` stay float32); a float meeting an integer tensor becomes float32. Arrays
    keep their own dtype and must be on the tensor's device (only a 0-d array may cross, as a
    0-d CPU tensor may in PyTorch).
    """
    if isinstance(x, bool):
        dtype = np.bool_
    elif isinstance(x, (int, np.integer)):
        dtype = ref.dtype if ref.dtype.kind in "iu" or is_floating(ref.dtype) else np.int64
    elif isinstance(x, (float, np.floating)):
        dtype = ref.dtype if is_floating(ref.dtype) else np.float32
    elif getattr(x, "ndim", 0) > 0 and backend.device_of(x) != ref.device:
        raise backend.DeviceError(
            f"expected a {ref.device} array beside a {ref.device} tensor of shape {ref.shape}, "
            f"got a {backend.device_of(x)} array of shape {tuple(x.shape)}"
        )
    else:
        return backend.to_device(xp.asarray(x), ref.device)
    return xp.asarray(x, dtype=dtype)


def _same_memory(a: Any, b: Any) -> bool:
    """Whether two arrays may overlap in memory (an array that owns its memory, ``base`` None,
    overlaps no other array object)."""
    if a is b:
        return True
    if a.base is None and b.base is None:
        return False
    return bool(backend.array_module(a).may_share_memory(a, b))


def _is_array(a: Any) -> bool:
    return hasattr(a, "dtype") and hasattr(a, "shape") and hasattr(a, "base")


def _record_saved(ctx: Context, inputs: list[Tensor], output: Tensor) -> None:
    """Note, for each saved array that is (a view of) an input's or the output's memory, that
    tensor's version counter and version now; under anomaly mode, also a checksum of each."""
    records = []
    candidates = [(t, f"input {i}") for i, t in enumerate(inputs)] + [(output, "output")]
    for a in ctx.saved:
        if not _is_array(a):
            continue
        for t, role in candidates:
            if _same_memory(a, t.data):
                what = (f"the {t.dtype} tensor of shape {t.shape} that {ctx.fn.__name__} saved "
                        f"(its {role})")
                counter = t._version_counter
                records.append((counter, counter.value, what))
                break
    ctx.saved_versions = tuple(records)
    if _anomaly_enabled:
        ctx.checksums = tuple(_checksum(a) if _is_array(a) else None for a in ctx.saved)


def _checksum(a: Any) -> int:
    """CRC-32 of an array's bytes (copied to the host first if it lives on a GPU)."""
    host = backend.to_device(a, "cpu")
    return zlib.crc32(host.tobytes()) ^ hash((host.shape, host.dtype.str))


def _check_saved(ctx: Context) -> None:
    """Refuse to run backward on saved arrays that changed after forward (see the module doc)."""
    name = ctx.fn.__name__
    for counter, version, what in ctx.saved_versions:
        if counter.value != version:
            raise RuntimeError(
                f"one of the tensors needed for gradient computation has been modified by an "
                f"in-place operation: {what} is at version {counter.value}; expected version "
                f"{version}. Use the "
                f"out-of-place form of the in-place op (add_, +=, x[i] = ..., an optimizer step) "
                f"that changed it after {name}'s forward, or call it after backward()"
            )
    if ctx.checksums is not None:
        for i, (a, crc) in enumerate(zip(ctx.saved, ctx.checksums, strict=True)):
            if crc is not None and _checksum(a) != crc:
                raise RuntimeError(
                    f"anomaly: saved array {i} of {name} ({a.dtype}, shape {tuple(a.shape)}) "
                    "changed between forward and backward without an in-place op bumping its "
                    "version: something wrote it through .data or through a NumPy array shared "
                    "with Tensor(ndarray)"
                )


def _check_finite(a: Any, what: str, shapes: Any) -> None:
    xp = backend.array_module(a)
    if is_floating(a.dtype) and not bool(xp.isfinite(a).all()):
        kind = "NaN" if bool(xp.isnan(a).any()) else "Inf"
        raise FloatingPointError(f"anomaly: {what} holds {kind} (input shapes {shapes})")


def run_backward(root: Tensor, grad: Any, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (the gradient of some scalar w.r.t. ``root``) to every leaf.

    The graph's vertices are the nodes (Contexts) and the leaf tensors that require grad; the
    edges are each node's ``parents``.

    1. Order the vertices that lead to ``root`` so that each comes after everything it was made
       from (post-order depth-first search with an explicit stack: no recursion).
    2. Walk that order backwards. Each vertex's gradient is complete when it is reached, because
       every node that used it comes later in the order and has already passed its share down.
       Before a node's backward runs, the versions of its saved tensors are checked.
    3. Leaves (and tensors that asked ``retain_grad()``) add the gradient to ``.grad``, so
       gradients accumulate across calls until ``zero_grad()``, as in PyTorch.
    4. Unless ``retain_graph``, each node is released right after its backward (its edges and
       saved arrays dropped), so activations are freed during backward and nothing of the graph
       outlives it.
    """
    start: Context | Tensor = root if root._ctx is None else root._ctx
    order: list[Context | Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Context | Tensor, bool]] = [(start, False)]
    while stack:
        v, children_done = stack.pop()
        if children_done:
            order.append(v)
            continue
        if id(v) in visited:
            continue
        visited.add(id(v))
        stack.append((v, True))
        if not isinstance(v, Context):
            continue
        if v.freed:
            raise RuntimeError(
                f"trying to backward through the graph a second time (through "
                f"{v.fn.__name__}, output shape {v.output_meta[0]}): its saved arrays were "
                "freed by the first backward(). Pass retain_graph=True to the first call to "
                "keep them."
            )
        stack.extend((p, False) for p in v.parents if p is not None and id(p) not in visited)
    del stack, visited

    grads: dict[int, Any] = {id(start): grad}
    while order:
        v = order.pop()
        g = grads.pop(id(v), None)
        if g is None:
            continue
        kept = v if not isinstance(v, Context) else v.retained and v.retained()
        if kept is not None:  # a leaf, or a tensor that asked retain_grad()
            kept.grad = g.copy() if kept.grad is None else kept.grad + g
        if not isinstance(v, Context):
            continue
        ctx = v
        _check_saved(ctx)
        input_grads = (ctx.fn.backward(ctx, g) if ctx.half is None
                       else _backward_in_float32(ctx, g))
        del g
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, meta, pg in zip(ctx.parents, ctx.input_meta, input_grads, strict=True):
            if parent is None or pg is None:
                continue
            shape, dtype = meta
            if pg.shape != shape:
                raise RuntimeError(
                    f"{ctx.fn.__name__}.backward returned a gradient of shape {pg.shape} "
                    f"for an input of shape {shape}"
                )
            if pg.dtype != dtype:
                pg = pg.astype(dtype)
            if _anomaly_enabled:
                _check_finite(pg, f"the gradient from {ctx.fn.__name__}.backward", shape)
            key = id(parent)
            grads[key] = pg if key not in grads else grads[key] + pg
        del input_grads
        if not retain_graph:
            ctx.release()


# Imported last: tensor.py imports this module, and Function.apply needs the Tensor class.
from minigrad import tensor as _tensor_module  # noqa: E402
