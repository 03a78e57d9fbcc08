"""Mixed precision: ``autocast`` (as ``torch.autocast``) and dynamic loss scaling
(``GradScaler``, as ``torch.amp.GradScaler``).

autocast
--------
Inside ``with mg.autocast(dtype=mg.bfloat16):`` (or ``mg.float16``) the ops that gain most from
half precision take half-precision inputs: matmul, linear, einsum and attention cast their
float32 arguments to the autocast dtype (on the CPU they then compute in float32 and round the
result back, :class:`minigrad.autograd.Function`), while softmax, log_softmax, LayerNorm, the
losses and the reductions cast half inputs up to float32 (the policy of each op:
:func:`minigrad.ops.autocast_to`). Parameters stay float32 masters: each cast is an op in the
graph, so their gradients arrive in float32; a parameter's half copy is made once per region.
What the half ops save for backward is half precision: the memory saving.

GradScaler
----------

Why: float16's smallest normal number is 2⁻¹⁴ ≈ 6.1e-5 (subnormals reach 2⁻²⁴ ≈ 6e-8), and many
gradient elements of a real training step are smaller than that: in float16 they *underflow* to
zero and the update loses them. Multiplying the loss by a scale S multiplies every gradient by S
(the chain rule is linear in the upstream gradient), lifting them into float16's range; dividing
the gradients by S before the update restores their true values. Too large an S overflows
instead (inf or NaN), so the scale is found dynamically:

    scaled loss    L_S = S·L                      (``scale(loss)``, then ``backward()``)
    unscale        g = g_S / S                    (``unscale_(optimizer)``, in place)
    step           skip the update if any g is inf or NaN, else optimizer.step()
    update         inf/NaN seen:  S ← S·backoff (0.5), and the run of good steps restarts
                   otherwise:     after growth_interval (2000) good steps in a row, S ← S·growth (2)

Torch's defaults: S₀ = 2¹⁶. The scale is a float32 number and 1/S is computed in float32, as
torch does, so the unscaled gradients are bit for bit torch's. Call ``unscale_`` yourself before
clipping (clipping must see the true gradients); ``step`` calls it when you have not.

The order of calls per iteration is torch's::

    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # optional, before clip_grad_norm_
    scaler.step(optimizer)
    scaler.update()
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import autograd, backend, dtypes
from minigrad.tensor import Tensor, as_dtype

_DEFAULT_DTYPE = {"cpu": "bfloat16", "cuda": "float16"}  # torch's defaults per device type
_depth = 0  # autocast regions entered and not left (enabled or not): the cache lives till 0


class autocast:  # noqa: N801 (torch's name)
    """Run the ops inside in mixed precision (module docstring), as ``torch.autocast``: a
    context manager or a decorator; regions nest, and ``autocast(enabled=False)`` turns it off
    inside one.

    ``device_type`` ("cpu" or "cuda") names the device whose tensors are cast, as in torch;
    ``dtype`` is float16 or bfloat16 (default: bfloat16 on the CPU, float16 on cuda, whose
    CuPy arrays have no bfloat16). ``cache_enabled``: reuse a parameter's half copy within the
    region (torch's default, True).
    """

    def __init__(self, device_type: str = "cpu", dtype: Any = None, enabled: bool = True,
                 cache_enabled: bool = True):
        if device_type not in _DEFAULT_DTYPE:
            raise ValueError(f"autocast: device_type must be 'cpu' or 'cuda', got "
                             f"{device_type!r}")
        dtype = as_dtype(_DEFAULT_DTYPE[device_type] if dtype is None else dtype)
        if not dtypes.is_half(dtype):
            raise TypeError(f"autocast: dtype must be a half-precision floating-point dtype "
                            f"(mg.float16 or mg.bfloat16), got {dtype}")
        if enabled:
            backend.check_dtype_on(dtype, device_type)
        self.device_type, self.dtype = device_type, dtype
        self.enabled, self.cache_enabled = bool(enabled), bool(cache_enabled)
        self._previous: list[Any] = []

    def __enter__(self) -> autocast:
        global _depth
        _depth += 1
        state = (self.device_type, self.dtype, self.cache_enabled) if self.enabled else None
        self._previous.append(autograd.set_autocast_state(state))
        return self

    def __exit__(self, *exc: Any) -> None:
        global _depth
        autograd.set_autocast_state(self._previous.pop())
        _depth -= 1
        if _depth == 0:  # the outermost region: its parameters' copies go, as in torch
            autograd.autocast_cache.clear()

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device_type, self.dtype, self.enabled, self.cache_enabled):
                return func(*args, **kwargs)

        return wrapper


def is_autocast_enabled() -> bool:
    """Whether the ops now run inside an enabled autocast region."""
    return autograd.autocast_state() is not None

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    """Dynamic loss scaling (module docstring), torch's names, defaults and errors.

    ``enabled=False`` makes every method a pass-through (``scale`` returns the loss as it is,
    ``step`` just steps), so one training loop serves float32 and float16.
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if int(growth_interval) != growth_interval or growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive integer, got "
                             f"{growth_interval}")
        if not (np.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"GradScaler: init_scale must be positive and finite, got "
                             f"{init_scale}")
        self.device = device
        self._enabled = enabled
        self._scale = np.float32(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0  # good steps in a row since the last change of scale
        self._per_optimizer: dict[int, dict[str, Any]] = {}
        self._scaled = False  # scale() was called since the last update()

    # --- the four calls of an iteration ------------------------------------------------------
    def scale(self, outputs: Any) -> Any:
        """S·outputs: a Tensor, or a list/tuple/dict of them (each multiplied)."""
        if not self._enabled:
            return outputs
        self._scaled = True
        if isinstance(outputs, Tensor):
            return outputs * float(self._scale)
        if isinstance(outputs, list | tuple):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        raise TypeError(f"GradScaler.scale: expected a Tensor (or a list, tuple or dict of "
                        f"them), got {type(outputs).__name__}")

    def unscale_(self, optimizer: Any) -> None:
        """Divide every gradient of ``optimizer``'s parameters by S, in place, and note whether
        any is inf or NaN. Once per optimizer per iteration: a second call would divide twice."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update(): the gradients would be divided by the scale twice")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step(); call update() first")
        if not self._scaled:
            raise RuntimeError(f"GradScaler: unscale_() or step() without scale(loss) since the "
                               f"last update(): the gradients were not multiplied by the scale "
                               f"({float(self._scale):g}), so dividing them by it would shrink "
                               f"them; call scaler.scale(loss).backward()")
        inv_scale = np.float32(1.0) / self._scale  # float32, as torch's reciprocal
        found_inf = False
        with autograd.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    found_inf = found_inf or not bool(p.xp.isfinite(g).all())
                    g *= g.dtype.type(inv_scale)
        state["found_inf"], state["stage"] = found_inf, _UNSCALED

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """``optimizer.step()`` unless the unscaled gradients hold an inf or NaN (then skipped:
        returns None). Unscales first if :meth:`unscale_` was not called."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update()")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale: float | None = None) -> None:
        """Back off on an inf/NaN seen this iteration, grow after ``growth_interval`` good steps
        in a row; or set the scale to ``new_scale``. Ends the iteration."""
        if not self._enabled:
            return
        if new_scale is not None:
            if not (np.isfinite(new_scale) and new_scale > 0):
                raise ValueError(f"GradScaler.update: new_scale must be positive and finite, "
                                 f"got {new_scale}")
            self._scale = np.float32(new_scale)
        else:
            stepped = [s for s in self._per_optimizer.values() if s["stage"] != _READY]
            if not stepped:
                raise RuntimeError("update() without unscale_() or step() this iteration: no "
                                   "gradients were checked for inf/NaN")
            if any(s["found_inf"] for s in stepped):
                self._scale = np.float32(self._scale * np.float32(self._backoff_factor))
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = np.float32(self._scale * np.float32(self._growth_factor))
                    if np.isfinite(grown):  # torch keeps the old scale rather than reach inf
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer.clear()
        self._scaled = False

    # --- inspection and checkpoints ------------------------------------------------------------
    def get_scale(self) -> float:
        return float(self._scale) if self._enabled else 1.0

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """torch's keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker."""
        if not self._enabled:
            return {}
        return {"scale": float(self._scale), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty: it was "
                               "saved from a disabled GradScaler")
        self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])

    def _state(self, optimizer: Any) -> dict[str, Any]:
        return self._per_optimizer.setdefault(id(optimizer),
                                              {"stage": _READY, "found_inf": False})
