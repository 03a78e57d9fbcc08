"""``Module`` and ``Parameter``: how layers hold their weights, as in PyTorch.

A :class:`Parameter` is a leaf Tensor that asks for a gradient. A :class:`Module` notices, in
``__setattr__``, every Parameter and every sub-Module assigned to it and records them in order,
so ``model.parameters()`` finds every weight of a model without being told, and
``model.state_dict()`` names each one by its path: ``encoder.layer.0.attention.self.query.weight``.

A Parameter may be shared (tied weights: a masked-LM decoder that *is* the word-embedding
matrix). It is then one object under two names: ``parameters()`` yields it once, under its first
name, while ``state_dict()`` lists it under every name, as PyTorch does.

A **buffer** (:meth:`Module.register_buffer`) is an array that belongs to the model's state but
is not learned: no gradient, no optimizer. It is saved and loaded with the parameters
(``state_dict()``) and moved by ``to()``, as in PyTorch; a pruning mask is one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from minigrad import autograd, backend
from minigrad.dtypes import is_floating
from minigrad.tensor import Tensor, as_dtype


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as one of its weights.

    ``Parameter(data)`` requires grad by default; its dtype follows Tensor's rules (Python
    floats become float32, arrays keep their dtype). Given a Tensor, it shares that Tensor's
    array, as ``torch.nn.Parameter`` does.
    """

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped (PyTorch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model: subclass it, assign layers in ``__init__``, and
    write ``forward``. Calling the module calls ``forward``.

    >>> class MLP(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = Linear(4, 8)   # registered as "fc1", its weights as "fc1.weight"...
    ...         self.fc2 = Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: these must exist before our __setattr__ can use them.
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # --- registration -----------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params: dict[str, Parameter | None] | None = self.__dict__.get("_parameters")
        modules: dict[str, Module | None] | None = self.__dict__.get("_modules")
        if isinstance(value, (Parameter, Module)) and params is None:
            raise AttributeError(
                f"cannot assign {type(value).__name__} '{name}' before Module.__init__() has "
                f"run: call super().__init__() first in {type(self).__name__}.__init__"
            )
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter '{name}' "
                                f"of {type(self).__name__}: expected a Parameter or None")
            params[name] = None
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule '{name}' "
                                f"of {type(self).__name__}: expected a Module or None")
            modules[name] = None
        elif name in self.__dict__.get("_buffers", {}):
            self.register_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when ordinary lookup fails: parameters and submodules live in the dicts.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Record ``param`` under ``name`` (None keeps the slot, e.g. ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected a Parameter or None, got "
                            f"{type(param).__name__}")
        self.__dict__.pop(name, None)
        self._modules.pop(name, None)
        self._parameters[name] = param  # a name assigned again keeps its place in the order

    def register_buffer(self, name: str, array: Any) -> None:
        """Record ``array`` (a NumPy or CuPy array, or a Tensor's data) under ``name`` as state
        that is not learned: in ``state_dict()`` beside the parameters, moved by ``to()``, and
        never seen by an optimizer. Assigning ``module.name = array`` later replaces it."""
        if isinstance(array, Tensor):
            array = array.data
        if not (hasattr(array, "shape") and hasattr(array, "dtype")):
            raise TypeError(f"register_buffer('{name}'): expected an array, got "
                            f"{type(array).__name__}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer('{name}'): {type(self).__name__} already has a "
                           "parameter or submodule of that name")
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def add_module(self, name: str, module: Module | None) -> None:
        """Record ``module`` under ``name`` (``ModuleList`` uses the names "0", "1", ...)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): expected a Module or None, got "
                            f"{type(module).__name__}")
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._modules[name] = module

    # --- forward ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- walking the tree -------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named ``prefix``, "" at the top) and every submodule, depth first,
        each once even if it is registered in two places."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            below = [(f"{name}.{child}" if name else child, m)
                     for child, m in module.named_children()]
            stack.extend(reversed(below))  # reversed: the first child is popped first

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def _all_named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every (name, parameter) pair, shared ones under each of their names."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, module in self.named_children():
            yield from module._all_named_parameters(f"{prefix}{name}.")

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) in registration order; a shared parameter appears once,
        under the first name that reaches it."""
        seen: set[int] = set()
        for name, p in self._all_named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(dotted name, array) of every buffer, this module's first, then its submodules'."""
        for name, array in self._buffers.items():
            yield prefix + name, array
        for name, module in self.named_children():
            yield from module.named_buffers(f"{prefix}{name}.")

    def buffers(self) -> Iterator[Any]:
        for _, array in self.named_buffers():
            yield array

    def num_parameters(self) -> int:
        """How many numbers the model learns (shared parameters counted once)."""
        return sum(p.numel() for p in self.parameters())

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule, then on this module (e.g. to initialise weights)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{dotted name: array} for every parameter, tied ones under every name, in order, then
        every buffer.

        The arrays are the model's own (not copies): ``copy()`` them to keep a snapshot.
        """
        return {**{name: p.data for name, p in self._all_named_parameters()},
                **dict(self.named_buffers())}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays (or Tensors) from ``state_dict`` into this model's parameters and
        buffers, in place.

        Every key is checked before anything is copied, so a refused load changes nothing.
        A mismatched shape or dtype is always refused; with ``strict=True`` (the default), so is
        any missing or unexpected key. A tied parameter counts as loaded when any one of its
        names is given; if several are given they must hold the same values.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        own: dict[str, Any] = dict(self._all_named_parameters())
        buffers = dict(self.named_buffers())
        own.update(buffers)
        given = {name: _as_array(value) for name, value in state_dict.items()}
        loaded = {id(own[name]) for name in own if name in given}
        missing = [name for name in own if name not in given and id(own[name]) not in loaded]
        unexpected = [name for name in given if name not in own]

        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected))
        first_name: dict[int, str] = {}
        for name, p in own.items():
            if name not in given:
                continue
            value = given[name]
            if tuple(value.shape) != p.shape:
                errors.append(f"size mismatch for {name}: copying a param with shape "
                              f"{tuple(value.shape)} from checkpoint, the shape in current "
                              f"model is {p.shape}")
            elif value.dtype != p.dtype:
                errors.append(f"dtype mismatch for {name}: the checkpoint holds {value.dtype} "
                              f"of shape {tuple(value.shape)}, the model {p.dtype} of shape "
                              f"{p.shape}; convert one of them first (e.g. model.to('float32'))")
            elif id(p) in first_name:
                other = first_name[id(p)]
                if not np.array_equal(_host(value), _host(given[other])):
                    errors.append(f"tied parameters {other} and {name} are one parameter, but "
                                  "the checkpoint gives them different values")
            else:
                first_name[id(p)] = name
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))

        with autograd.no_grad():
            for name, p in own.items():
                if name not in given:
                    continue
                if name in buffers:  # an array: filled in place, on its own device
                    p[...] = backend.to_device(given[name], backend.device_of(p))
                else:
                    p.copy_(given[name])
        return LoadResult(missing, unexpected)

    # --- modes, gradients, devices ----------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) on this module and every submodule."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Set evaluation mode (dropout off): ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``, PyTorch's default)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter, e.g. to train only a task head."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, target: Any) -> Module:
        """Move every parameter (and gradient) and buffer to a device (``"cpu"``, ``"cuda"``) or
        convert the floating-point ones to a dtype (``"float64"``, ``minigrad.float64``), in
        place.

        The Parameter objects stay the same, so an optimizer built earlier still holds them.
        """
        if isinstance(target, str) and (target == "cpu" or target.startswith("cuda")):
            device = backend.normalize_device(target)
            backend.xp_for(device)  # a clear error if CuPy or the GPU is missing

            def convert(a: Any) -> Any:
                return backend.to_device(a, device)
        else:
            dtype = as_dtype(target)
            if not is_floating(dtype):
                raise TypeError(f"Module.to: parameters must stay floating point, got {dtype}")

            def convert(a: Any) -> Any:  # floating point only: an integer buffer stays one
                if not is_floating(a.dtype):
                    return a
                backend.check_dtype_on(dtype, backend.device_of(a))
                return a.astype(dtype, copy=False)
        for p in self.parameters():
            p.data = convert(p.data)
            if p.grad is not None:
                p.grad = convert(p.grad)
        for module in self.modules():
            for name, array in module._buffers.items():
                module._buffers[name] = convert(array)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    def float(self) -> Module:
        return self.to("float32")

    def double(self) -> Module:
        return self.to("float64")

    def half(self) -> Module:
        return self.to("float16")

    def bfloat16(self) -> Module:
        return self.to("bfloat16")

    # --- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The settings shown between the parentheses, e.g. ``in_features=4, out_features=2``."""
        return ""

    def __repr__(self) -> str:
        lines = self.extra_repr().split("\n") if self.extra_repr() else []
        for name, module in self.named_children():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _as_array(value: Any) -> Any:
    """A state-dict entry as an array: Tensors give their data, arrays pass through."""
    if isinstance(value, Tensor):
        return value.data
    return value if hasattr(value, "shape") and hasattr(value, "dtype") else np.asarray(value)


def _host(a: Any) -> np.ndarray:
    return backend.to_device(a, "cpu")
