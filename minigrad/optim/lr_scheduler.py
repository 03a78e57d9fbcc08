"""Learning-rate schedules: PyTorch's ``LambdaLR`` and ``StepLR``, and Hugging Face's warmups.

A scheduler sets ``group["lr"]`` of every parameter group to ``base_lr · factor(t)``, where
``base_lr`` is the group's learning rate when the scheduler was made (kept in the group as
``"initial_lr"``) and t = ``last_epoch`` counts the calls to ``step()``. Call
``scheduler.step()`` once after each ``optimizer.step()``; "epoch" is PyTorch's name for t, which
is usually an optimizer step in fine-tuning. Making the scheduler applies factor(0) at once.

The Hugging Face schedules (``get_linear_schedule_with_warmup`` and friends, from
``transformers.optimization``) are ``LambdaLR`` schedules with the same formulas and names.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable, Sequence
from typing import Any

from minigrad.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: a subclass says in ``get_lr()`` what each group's lr is at ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                    f"with last_epoch={last_epoch}; load the optimizer's state_dict first"
                )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """The learning rate of each parameter group at ``self.last_epoch``."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_lr()")

    def step(self) -> None:
        """Advance t by one and write the new learning rates into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (PyTorch's layout: the instance's attributes)."""
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of the same kind of scheduler; it must have one base lr
        per parameter group of this scheduler's optimizer."""
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            raise ValueError(
                f"the loaded state_dict does not fit {type(self).__name__}: missing keys "
                f"{sorted(expected - set(state_dict))}, unexpected keys "
                f"{sorted(set(state_dict) - expected)}"
            )
        groups = len(self.optimizer.param_groups)
        if len(state_dict["base_lrs"]) != groups:
            raise ValueError(
                f"the loaded state_dict has {len(state_dict['base_lrs'])} base_lrs, but the "
                f"optimizer has {groups} parameter groups"
            )
        self.__dict__.update(
            {key: (list(value) if isinstance(value, list) else value)
             for key, value in state_dict.items()}
        )


class LambdaLR(LRScheduler):
    """lr_t = base_lr · lr_lambda(t), with one function for all groups or one per group
    (PyTorch's ``torch.optim.lr_scheduler.LambdaLR``).

    Plain functions and lambdas are not saved by ``state_dict()`` (it holds None for them); a
    callable object's attributes are.
    """

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter "
                                 f"group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch)
                for base_lr, fn in zip(self.base_lrs, self.lr_lambdas, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else vars(fn).copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_lambdas = state_dict.get("lr_lambdas")
        if not isinstance(saved_lambdas, list) or len(saved_lambdas) != len(self.lr_lambdas):
            raise ValueError(
                f"the loaded state_dict does not fit LambdaLR: it needs 'lr_lambdas', a list "
                f"with one entry per parameter group ({len(self.lr_lambdas)})"
            )
        lambdas = self.lr_lambdas  # functions are not saved: keep this scheduler's own
        super().load_state_dict(state_dict)
        self.lr_lambdas = lambdas
        for fn, saved in zip(lambdas, saved_lambdas, strict=True):
            if saved is not None:
                vars(fn).update(saved)


class StepLR(LRScheduler):
    """Step decay: lr_t = base_lr · γ^⌊t / step_size⌋ (PyTorch's ``StepLR``).

    The learning rate is multiplied by γ every ``step_size`` steps.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        if not (isinstance(step_size, int) and step_size > 0):
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        if not gamma >= 0:
            raise ValueError(f"StepLR: gamma must be >= 0, got {gamma}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


# --- Hugging Face's schedules --------------------------------------------------------------
def _check_steps(num_warmup_steps: int, num_training_steps: int) -> None:
    if num_warmup_steps < 0:
        raise ValueError(f"num_warmup_steps must be >= 0, got {num_warmup_steps}")
    if num_training_steps < num_warmup_steps:
        raise ValueError(f"num_training_steps ({num_training_steps}) must be at least "
                         f"num_warmup_steps ({num_warmup_steps})")


def _constant(current_step: int) -> float:
    return 1.0


def _linear_with_warmup(current_step: int, *, num_warmup_steps: int,
                        num_training_steps: int) -> float:
    if current_step < num_warmup_steps:
        return current_step / max(1, num_warmup_steps)
    return max(0.0, (num_training_steps - current_step)
               / max(1, num_training_steps - num_warmup_steps))


def _cosine_with_warmup(current_step: int, *, num_warmup_steps: int, num_training_steps: int,
                        num_cycles: float) -> float:
    if current_step < num_warmup_steps:
        return current_step / max(1, num_warmup_steps)
    progress = (current_step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress)))


def get_constant_schedule(optimizer: Optimizer, last_epoch: int = -1) -> LambdaLR:
    """A constant learning rate: lr_t = base_lr."""
    return LambdaLR(optimizer, _constant, last_epoch)


def get_linear_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int,
                                    num_training_steps: int, last_epoch: int = -1) -> LambdaLR:
    """Linear warmup from 0 to base_lr over W steps, then linear decay to 0 at step T:

        factor(t) = t / max(1, W)                        for t < W
        factor(t) = max(0, (T − t) / max(1, T − W))      for t ≥ W
    """
    _check_steps(num_warmup_steps, num_training_steps)
    fn = functools.partial(_linear_with_warmup, num_warmup_steps=num_warmup_steps,
                           num_training_steps=num_training_steps)
    return LambdaLR(optimizer, fn, last_epoch)


def get_cosine_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int,
                                    num_training_steps: int, num_cycles: float = 0.5,
                                    last_epoch: int = -1) -> LambdaLR:
    """Linear warmup over W steps, then a cosine from base_lr down to 0 at step T:

        factor(t) = t / max(1, W)                                   for t < W
        progress  = (t − W) / max(1, T − W)
        factor(t) = max(0, ½·(1 + cos(π · 2·num_cycles · progress)))  for t ≥ W

    The default ``num_cycles=0.5`` is half a cosine period: one smooth descent to 0.
    """
    _check_steps(num_warmup_steps, num_training_steps)
    fn = functools.partial(_cosine_with_warmup, num_warmup_steps=num_warmup_steps,
                           num_training_steps=num_training_steps, num_cycles=num_cycles)
    return LambdaLR(optimizer, fn, last_epoch)
