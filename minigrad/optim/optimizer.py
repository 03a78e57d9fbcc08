"""``Optimizer``: parameter groups, per-parameter state, ``step``, ``zero_grad`` and ``state_dict``.

An optimizer holds a list of *parameter groups*. Each group is a dict with ``"params"`` (a list of
Tensors) and every hyperparameter its update reads (``"lr"``, ``"weight_decay"``, ...), so that
parts of a model can train with different settings (no weight decay on biases, a smaller learning
rate for the encoder). ``state`` maps each parameter to what the algorithm remembers between steps
(a momentum buffer, Adam's moments).

A subclass writes one method, ``_update_parameter(p, grad, state, group)``: the rule for one
parameter. ``step()`` calls it for every parameter that has a gradient. The update writes
``p.data`` in place with ``p.xp`` (NumPy or CuPy), so one code path serves both devices and no
graph is recorded.

``state_dict()`` has PyTorch's layout: parameters are numbered in group order, and
``{"state": {index: {...}}, "param_groups": [{hyperparameters..., "params": [indices]}]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from minigrad import autograd, backend
from minigrad.dtypes import is_floating
from minigrad.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]

# Keys a scheduler may add to a group beside the optimizer's own hyperparameters.
_SCHEDULER_KEYS = ("initial_lr",)


class Optimizer:
    """Base class of every optimizer (PyTorch's ``torch.optim.Optimizer``).

    ``params`` is an iterable of Tensors (one group) or of dicts, each a group:
    ``{"params": [...], "lr": 0.1}``; a hyperparameter a group leaves out takes its value from
    ``defaults``.
    """

    #: The keys ``state[p]`` holds once ``p`` has been stepped (checked by ``load_state_dict``).
    state_keys: tuple[str, ...] = ()

    def __init__(self, params: ParamsT, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self._check_hyperparameters(self.defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"params should be an iterable of Tensors or of dicts, but got a Tensor of shape "
                f"{params.shape}; pass [tensor] or model.parameters()"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        if not any(group["params"] for group in self.param_groups):
            raise ValueError(f"{type(self).__name__} got parameter groups without parameters")

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raise ValueError if a hyperparameter in ``group`` is out of range (subclasses)."""

    def _check_nonnegative(self, group: dict[str, Any], *keys: str) -> None:
        for key in keys:
            if not group[key] >= 0:  # also refuses NaN
                raise ValueError(f"{type(self).__name__}: invalid {key} {group[key]!r} "
                                 "(must be >= 0)")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, e.g. a layer unfrozen during fine-tuning."""
        if not isinstance(param_group, dict):
            raise TypeError(
                f"a parameter group must be a dict such as {{'params': [...]}}, got "
                f"{type(param_group).__name__} (do not mix Tensors and dicts in params)"
            )
        if "params" not in param_group:
            raise ValueError(f"a parameter group needs a 'params' key, got {list(param_group)}")
        unknown = sorted(set(param_group) - {"params", *self.defaults, *_SCHEDULER_KEYS})
        if unknown:
            raise ValueError(
                f"unknown hyperparameters {unknown} in a parameter group of "
                f"{type(self).__name__}; it knows {sorted(self.defaults)}"
            )
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError("a group's params must be an ordered sequence (a list), not a set")
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            _check_parameter(p)

        seen = {id(q) for group in self.param_groups for q in group["params"]}
        for p in params:
            if id(p) in seen:
                raise ValueError(
                    f"a parameter of shape {p.shape} appears more than once in the parameter "
                    "groups; each parameter may be listed only once"
                )
            seen.add(id(p))

        group = {"params": params, **self.defaults}
        group.update((k, v) for k, v in param_group.items() if k != "params")
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    # --- the update -------------------------------------------------------------------------
    def _update_parameter(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        """Update ``p`` in place from its gradient ``grad`` (subclasses), under ``no_grad``:
        with the in-place ops (``p.sub_(...)``), or with a fused kernel that writes ``p.data``
        and then ``p._mark_dirty()``, so that either way ``p``'s version goes up and a graph
        that saved the old values refuses to backward."""
        raise NotImplementedError(f"{type(self).__name__} does not define its update rule")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; parameters whose ``.grad`` is None are
        skipped. ``closure``, if given, recomputes the loss first and its value is returned."""
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        with autograd.no_grad():  # an update is not part of the model (torch.no_grad, as torch)
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    _check_grad(p)
                    self._update_parameter(p, p.grad, self.state.setdefault(p, {}), group)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``.grad = None`` (default), or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    # --- saving and restoring ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the optimizer in PyTorch's layout; arrays are copied, so later steps do
        not change it. Parameters with nothing to remember are left out of ``"state"``."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index_of.setdefault(id(p), len(index_of)) for p in group["params"]]
            groups.append(packed)
        state = {
            index_of[id(p)]: {k: _copy(v) for k, v in s.items()}
            for p, s in self.state.items()
            if s
        }
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``. Its groups must hold as many parameters as this
        optimizer's, and each state array the shape of its parameter; arrays are copied onto
        each parameter's device and dtype. Nothing changes if any check fails."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = list(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(
                f"an optimizer state_dict has exactly the keys 'state' and 'param_groups', "
                f"got {keys}"
            )
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"the loaded state_dict has {len(saved_groups)} parameter groups, but this "
                f"{name} has {len(self.param_groups)}"
            )

        param_of: dict[int, Tensor] = {}
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {i} of the loaded state_dict holds "
                    f"{len(saved['params'])} parameters, but group {i} of this {name} holds "
                    f"{len(group['params'])}"
                )
            hyper = {k: v for k, v in saved.items() if k != "params"}
            missing = sorted(set(self.defaults) - set(hyper))
            unknown = sorted(set(hyper) - {*self.defaults, *_SCHEDULER_KEYS})
            if missing or unknown:
                raise ValueError(
                    f"parameter group {i} of the loaded state_dict does not fit {name} "
                    f"(missing {missing}, unexpected {unknown}): was it saved by another optimizer?"
                )
            self._check_hyperparameters(hyper)
            param_of.update(zip((int(j) for j in saved["params"]), group["params"], strict=True))
            new_groups.append({"params": group["params"], **hyper})

        new_state = {}
        for index, saved in state_dict["state"].items():
            index = int(index)  # JSON turns the integer keys into strings
            if index not in param_of:
                raise ValueError(
                    f"the loaded state_dict has state for parameter {index}, but its groups list "
                    f"only {sorted(param_of)}"
                )
            if set(saved) != set(self.state_keys):
                raise ValueError(
                    f"the state of parameter {index} in the loaded state_dict has keys "
                    f"{sorted(saved)}, but {name} keeps {sorted(self.state_keys)}"
                )
            p = param_of[index]
            new_state[p] = {key: _load_value(index, key, value, p) for key, value in saved.items()}

        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in group.items() if k != "params"]
        return "\n".join(lines) + "\n)"


def _check_parameter(p: Any) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(f"an optimizer can only optimize Tensors, but one of the params is a "
                        f"{type(p).__name__}")
    if not p.is_leaf:
        raise ValueError(
            f"can't optimize a non-leaf Tensor (shape {p.shape}, made by {p.grad_fn}); "
            "optimize the leaf it was computed from"
        )
    if not is_floating(p.dtype):
        raise TypeError(f"can only optimize floating-point Tensors, got dtype {p.dtype} "
                        f"(shape {p.shape})")


def _check_grad(p: Tensor) -> None:
    grad = p.grad
    if (tuple(grad.shape), grad.dtype, backend.device_of(grad)) != (p.shape, p.dtype, p.device):
        raise ValueError(
            f"a parameter of shape {p.shape}, dtype {p.dtype} on {p.device} has a gradient of "
            f"shape {tuple(grad.shape)}, dtype {grad.dtype} on {backend.device_of(grad)}"
        )


def _copy(value: Any) -> Any:
    """Arrays are copied; ints (such as Adam's step count) are immutable already."""
    return value.copy() if hasattr(value, "shape") else value


def _load_value(index: int, key: str, value: Any, p: Tensor) -> Any:
    """A saved state value, checked against its parameter and copied onto its device and dtype.

    ``"step"`` is a count, kept as an int (PyTorch keeps it as a 0-d tensor); every other value
    is an array the shape of the parameter.
    """
    if key == "step":
        return int(value)
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != p.shape:
        found = f"shape {tuple(shape)}" if shape is not None else f"a {type(value).__name__}"
        raise ValueError(
            f"state {key!r} of parameter {index} in the loaded state_dict has {found}, but the "
            f"parameter has shape {p.shape}"
        )
    return p.xp.array(backend.to_device(value, p.device), dtype=p.dtype)
