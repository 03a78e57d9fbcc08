"""Reverse-mode automatic differentiation.

An op is a :class:`Function` with two static methods on raw arrays:

* ``forward(ctx, *arrays, **attrs) -> array`` computes the output and saves on ``ctx`` what the
  backward pass will need;
* ``backward(ctx, grad) -> grad or tuple of grads`` maps the gradient of the output to one
  gradient per positional input (a vector-Jacobian product; ``None`` where none is needed).

``Function.apply`` wraps the arrays in Tensors and, when a gradient is wanted, records a
:class:`Context` on the output: the op, its inputs and its saved arrays. ``Tensor.backward()``
calls :func:`run_backward`, which orders that record topologically (iteratively, so a chain of
100,000 ops cannot hit Python's recursion limit) and walks it from the output back to the leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad import backend

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

_grad_enabled = True
_anomaly_enabled = False


def is_grad_enabled() -> bool:
    return _grad_enabled


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
    """Check every op's output and every gradient for NaN/Inf, naming the first op that makes one.

    Opt-in because each check costs a pass over the array (and a device sync on a GPU).
    """
    global _anomaly_enabled
    previous, _anomaly_enabled = _anomaly_enabled, True
    try:
        yield
    finally:
        _anomaly_enabled = previous


class Context:
    """One node of the graph: the op that made a tensor, its inputs and what backward needs.

    Ops keep arrays for backward with ``save_for_backward`` (freed after the first backward
    unless ``retain_graph=True``) and small attributes, such as a ``dim``, as plain attributes.
    """

    def __init__(self, fn: type[Function], inputs: tuple[Tensor | None, ...]):
        self.fn = fn
        self.inputs = inputs
        self.saved: tuple = ()
        self.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        # whether backward will ever run through this node: an op may skip saving what only
        # backward reads (no_grad inference), since nothing will ask for it
        self.requires_grad = _grad_enabled and any(self.needs_input_grad)
        self.freed = False

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays


class Function:
    """Base class of every differentiable op (see the module docstring for the protocol)."""

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
        out = cls.forward(ctx, *arrays, **attrs)
        if _anomaly_enabled:
            _check_finite(out, f"the output of {cls.__name__}.forward", tensors)
        return tensor_cls._make(out, ctx.requires_grad, ctx if ctx.requires_grad else None)


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
        dtype = ref.dtype if ref.dtype.kind in "iuf" else np.int64
    elif isinstance(x, (float, np.floating)):
        dtype = ref.dtype if ref.dtype.kind == "f" else np.float32
    elif getattr(x, "ndim", 0) > 0 and backend.device_of(x) != ref.device:
        raise backend.DeviceError(
            f"expected a {ref.device} array beside a {ref.device} tensor of shape {ref.shape}, "
            f"got a {backend.device_of(x)} array of shape {tuple(x.shape)}"
        )
    else:
        return backend.to_device(xp.asarray(x), ref.device)
    return xp.asarray(x, dtype=dtype)


def _check_finite(a: Any, what: str, tensors: list[Tensor]) -> None:
    xp = backend.array_module(a)
    if a.dtype.kind == "f" and not bool(xp.isfinite(a).all()):
        shapes = ", ".join(str(t.shape) for t in tensors)
        kind = "NaN" if bool(xp.isnan(a).any()) else "Inf"
        raise FloatingPointError(f"anomaly: {what} holds {kind} (input shapes {shapes})")


def run_backward(root: Tensor, grad: Any, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (the gradient of some scalar w.r.t. ``root``) to every leaf.

    1. Order the tensors that lead to ``root`` so that each comes after everything it was made
       from (post-order depth-first search with an explicit stack: no recursion).
    2. Walk that order backwards. Each tensor's gradient is complete when it is reached, because
       every tensor that used it comes later in the order and has already passed its share down.
    3. Leaves (and tensors that asked ``retain_grad()``) add the gradient to ``.grad``, so
       gradients accumulate across calls until ``zero_grad()``, as in PyTorch.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, children_done = stack.pop()
        if children_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            for parent in t._ctx.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))

    grads: dict[int, Any] = {id(root): grad}
    for t in reversed(order):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        ctx = t._ctx
        if ctx is None or t._retains_grad:
            t.grad = g.copy() if t.grad is None else t.grad + g
        if ctx is None:
            continue
        if ctx.freed:
            raise RuntimeError(
                f"trying to backward through the graph a second time (through "
                f"{ctx.fn.__name__}, output shape {t.shape}): its saved arrays were freed by "
                "the first backward(). Pass retain_graph=True to the first call to keep them."
            )
        input_grads = ctx.fn.backward(ctx, g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, pg in zip(ctx.inputs, input_grads, strict=True):
            if parent is None or pg is None or not parent.requires_grad:
                continue
            if pg.shape != parent.shape:
                raise RuntimeError(
                    f"{ctx.fn.__name__}.backward returned a gradient of shape {pg.shape} "
                    f"for an input of shape {parent.shape}"
                )
            if pg.dtype != parent.dtype:
                pg = pg.astype(parent.dtype)
            if _anomaly_enabled:
                _check_finite(pg, f"the gradient from {ctx.fn.__name__}.backward", [parent])
            key = id(parent)
            grads[key] = pg if key not in grads else grads[key] + pg
        if not retain_graph:
            ctx.saved = ()
            ctx.freed = True


# Imported last: tensor.py imports this module, and Function.apply needs the Tensor class.
from minigrad import tensor as _tensor_module  # noqa: E402
