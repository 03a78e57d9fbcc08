"""Optimizers, learning-rate schedules and gradient clipping.

The path of an update: ``loss.backward()`` fills each parameter's ``.grad``;
:func:`clip_grad_norm_` may rescale them; ``optimizer.step()`` applies the update rule of
:class:`SGD`, :class:`Adam` or :class:`AdamW` to ``p.data``; ``scheduler.step()`` sets the next
learning rate; ``optimizer.zero_grad()`` clears the gradients for the next batch.
"""

from minigrad.optim.adam import Adam, AdamW
from minigrad.optim.clip import clip_grad_norm_
from minigrad.optim.lr_scheduler import (
    LambdaLR,
    LRScheduler,
    StepLR,
    get_constant_schedule,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.regularization import l1_penalty, param_groups_for_weight_decay
from minigrad.optim.sgd import SGD

__all__ = [
    "SGD", "Adam", "AdamW", "LRScheduler", "LambdaLR", "Optimizer", "StepLR", "clip_grad_norm_",
    "get_constant_schedule", "get_cosine_schedule_with_warmup",
    "get_linear_schedule_with_warmup", "l1_penalty", "param_groups_for_weight_decay",
]
