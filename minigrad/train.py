"""The training loop, written out plainly: seed document 004's recipe, one batch at a time.
Every trainer in minigrad (fine-tuning, MLM pre-training, the benchmarks) runs this one loop
and evaluates with its one evaluation loop, :func:`evaluate_batches`.

    initialize θ₀ and η
    repeat:
        forward     ŷ = f(x; θ)
        loss        L(ŷ, y)
        gradient    ∇θ L                   (loss.backward())
        update      θ ← θ − η·∇θ L          (optimizer.step(): SGD, Adam, ...)

Around that core :func:`fit` adds, each in a few lines of the loop and in this order:

- **gradient accumulation**: k micro-batches per update, each loss scaled by 1/k, so that the
  summed gradient is the gradient of the mean loss over the k micro-batches (with equal sizes,
  exactly the gradient of one batch k times larger);
- **gradient clipping** (``clip_grad_norm_``) and a **learning-rate schedule** stepped once per
  optimizer step;
- **evaluation** at the end of each epoch: the mean loss on validation arrays and/or a user
  ``evaluate(model) -> {name: value}`` callback, both in eval mode without a graph;
- **early stopping** on one of those metrics, with patience, optionally restoring the best
  weights;
- **determinism**: one seed fixes minigrad's generator (init, dropout), NumPy's global one, and
  the order of the batches of every epoch; the same seed gives the same numbers;
- **records**: a tqdm progress bar (loss and lr), ``history.json`` after every epoch (per-step
  loss and lr, per-epoch metrics), ``curves.png`` at the end, and optionally a resumable
  checkpoint each epoch;
- **many processes**: with the model wrapped in
  :class:`~minigrad.distributed.DistributedDataParallel` (and each rank given its shard of the
  data, :class:`~minigrad.distributed.DistributedSampler`) the same loop runs on every rank;
  each step's loss is averaged over the ranks, and only rank 0 writes files and draws the bar;
- **a per-step hook**: ``on_step(step)``, called after each optimizer step (and the scheduler's)
  with the number of steps taken so far, for whatever must follow every update: magnitude
  pruning re-applies its masks there (:mod:`minigrad.compress.prune`);
- **mixed precision** (``config.precision``): "bf16" and "fp16" run the forward and the loss
  under :class:`minigrad.amp.autocast` (the parameters stay float32 masters); "fp16" also
  scales the loss with a :class:`minigrad.amp.GradScaler`, unscales the gradients before
  clipping, skips the update (and the scheduler's step) when a gradient overflows, and counts
  the skipped steps in the history. bfloat16 has float32's range: no scaling.

A model never imports this module: the loop knows the model only through ``loss_fn``, and
the data only as batches: any list of batches, or a function ``epoch -> batches`` (a new order,
or new masks, each epoch). Arrays (a tuple or dict of arrays, one row per example) are cut
into batches of ``config.batch_size`` rows, shuffled per epoch by ``(seed, epoch)``.
"""

from __future__ import annotations

import dataclasses
import io
import math
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import minigrad
from minigrad import checkpoint
from minigrad.data.datasets import batch_indices
from minigrad.optim import clip_grad_norm_

Batch = Any  # whatever loss_fn takes: usually a tuple or dict of arrays
Data = tuple[np.ndarray, ...] | Mapping[str, np.ndarray]  # one row per example
Batches = Data | Iterable[Batch] | Callable[[int], Iterable[Batch]]

HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"
# TrainConfig.precision -> the autocast dtype (None: float32 throughout)
PRECISIONS = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


@dataclasses.dataclass
class TrainConfig:
    """Everything that decides how :func:`fit` trains, in one place (nanoGPT's style)."""

    epochs: int = 1
    batch_size: int = 32            # rows per micro-batch, when the data are arrays
    grad_accum_steps: int = 1       # micro-batches per optimizer step
    max_steps: int | None = None    # stop after this many optimizer steps, if sooner
    max_grad_norm: float | None = None  # clip the global gradient norm to this, if set
    seed: int = 0
    shuffle: bool = True            # arrays: a new order each epoch, fixed by (seed, epoch)
    early_stopping_metric: str | None = None  # a key of the epoch metrics, e.g. "val_loss"
    early_stopping_mode: str = "min"          # "min" for losses, "max" for accuracies
    patience: int = 3               # epochs without improvement before stopping
    restore_best: bool = False      # load the best epoch's weights at the end
    out_dir: str | Path | None = None  # history.json, curves.png, checkpoint-<step>/
    save_checkpoints: bool = False  # out_dir/checkpoint-<step>/ after every epoch
    save_total_limit: int | None = None  # keep the newest N (and the best epoch's), as HF's
    checkpoint_extra: dict | None = None  # JSON kept in every checkpoint (how to resume)
    progress: bool = True           # the tqdm bar
    title: str = "training curves"  # of curves.png
    precision: str = "fp32"         # "fp32", "bf16" (autocast) or "fp16" (autocast + GradScaler)


@dataclasses.dataclass
class History:
    """What happened: one record per optimizer step and one per epoch.

    ``steps``: ``{"step", "epoch", "loss", "lr"}``, the loss being the mean over the step's
    micro-batches and lr the rate that step used; with ``max_grad_norm`` also ``"grad_norm"``,
    the global gradient norm before clipping (the step was clipped where it is above
    ``max_grad_norm``); in float16 training also ``"scale"``, the loss scale the step used, and
    ``"skipped"``, whether its update was skipped (a gradient overflowed). ``epochs``:
    ``{"epoch", "step", "train_loss", ...}`` plus every evaluation metric. Epochs count from 1.
    """

    steps: list[dict] = dataclasses.field(default_factory=list)
    epochs: list[dict] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    skipped_steps: int = 0  # float16: updates skipped because a gradient overflowed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**data)

    def save_json(self, path: str | Path) -> None:
        checkpoint.atomic_write_json(path, self.to_dict())

    def plot(self, path: str | Path, title: str = "training curves") -> None:
        """Save :meth:`png` to ``path``."""
        Path(path).write_bytes(self.png(title))

    def png(self, title: str = "training curves") -> bytes:
        """The loss curves (and any other metrics) as a PNG.

        Left: the loss of every step, the epoch means and the validation loss, against the
        optimizer step. Right, if there are other metrics: each of them against the epoch.
        """
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
        from matplotlib.ticker import MaxNLocator

        others = sorted({k for e in self.epochs for k in e} - {"epoch", "step", "train_loss",
                                                               "val_loss"})
        fig = Figure(figsize=(11 if others else 6, 4), layout="constrained")
        axes = fig.subplots(1, 2 if others else 1, squeeze=False)[0]
        ax = axes[0]
        ax.plot([s["step"] for s in self.steps], [s["loss"] for s in self.steps],
                lw=0.8, alpha=0.5, label="train loss (per step)")
        for key, label, marker in (("train_loss", "train loss (epoch mean)", "o"),
                                   ("val_loss", "validation loss", "s")):
            points = [(e["step"], e[key]) for e in self.epochs if key in e]
            if points:
                ax.plot(*zip(*points, strict=True), marker=marker, label=label)
        ax.set(xlabel="optimizer step", ylabel="loss", title="loss")
        ax.legend()
        if others:
            ax = axes[1]
            for key in others:
                points = [(e["epoch"], e[key]) for e in self.epochs if key in e]
                ax.plot(*zip(*points, strict=True), marker="o", label=key)
            ax.set(xlabel="epoch", ylabel="value", title="evaluation metrics")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend()
        fig.suptitle(title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def seed_everything(seed: int) -> None:
    """Seed minigrad's generator (weights, dropout) and NumPy's global one."""
    minigrad.manual_seed(seed)
    np.random.seed(seed)


def _num_rows(data: Data, name: str) -> int:
    arrays = list(data.values()) if isinstance(data, Mapping) else list(data)
    if not arrays:
        raise ValueError(f"{name} holds no arrays")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"the arrays of {name} have different lengths "
                         f"{[len(a) for a in arrays]}; each row is one example")
    return lengths.pop()


def _take(data: Data, rows: np.ndarray) -> Batch:
    """The same rows of every array: a tuple stays a tuple, a dict a dict."""
    if isinstance(data, Mapping):
        return {key: a[rows] for key, a in data.items()}
    return tuple(a[rows] for a in data)


def _is_arrays(data: Any) -> bool:
    """A tuple or dict of arrays (rows of examples), rather than a sequence of batches."""
    values = list(data.values()) if isinstance(data, Mapping) else data
    return isinstance(data, (tuple, Mapping)) and all(isinstance(a, np.ndarray) for a in values)


def array_batches(data: Data, batch_size: int, rng: np.random.Generator | None = None,
                  name: str = "data") -> list[Batch]:
    """``data``'s rows cut into batches of ``batch_size``, in ``rng``'s order if given."""
    return [_take(data, rows) for rows in batch_indices(_num_rows(data, name), batch_size, rng)]


def _epoch_batches(batches: Batches, epoch: int, config: TrainConfig, name: str) -> list:
    """The batches of one epoch, whatever form they were given in."""
    if callable(batches):
        return list(batches(epoch))
    if _is_arrays(batches):
        rng = np.random.default_rng([config.seed, epoch]) if config.shuffle else None
        return array_batches(batches, config.batch_size, rng, name)
    if iter(batches) is batches:
        raise TypeError(f"{name} is a one-shot iterator; give a list of batches or a function "
                        "epoch -> batches, so that every epoch can read them")
    return list(batches)


def evaluate_batches(model: Any, batches: Iterable[Batch],
                     fn: Callable[[Any, Batch], Any]) -> list:
    """``fn(model, batch)`` for every batch, in eval mode and without a graph: the one
    evaluation loop. Returns the list of results; the model's mode is restored, and nothing
    stays switched off once it returns (it is no generator paused inside ``no_grad``)."""
    was_training = model.training
    model.eval()
    try:
        with minigrad.no_grad():
            return [fn(model, batch) for batch in batches]
    finally:
        model.train(was_training)


def validation_loss(model: Any, loss_fn: Callable[[Any, Batch], minigrad.Tensor],
                    data: Batches, batch_size: int) -> float:
    """The mean of ``loss_fn`` over ``data``. With arrays, each batch is weighted by its rows;
    other batches are weighted equally."""
    if _is_arrays(data):
        batches = array_batches(data, batch_size, name="val_data")
        losses = evaluate_batches(model, batches, lambda m, b: loss_fn(m, b).item())
        sizes = [len(next(iter(b.values())) if isinstance(b, Mapping) else b[0])
                 for b in batches]
        return float(np.dot(losses, sizes) / sum(sizes))
    return float(np.mean(evaluate_batches(model, data, lambda m, b: loss_fn(m, b).item())))


def _check_config(config: TrainConfig) -> None:
    if config.epochs < 1 or config.batch_size < 1 or config.grad_accum_steps < 1:
        raise ValueError(f"epochs, batch_size and grad_accum_steps must be at least 1, got "
                         f"{config.epochs}, {config.batch_size}, {config.grad_accum_steps}")
    if config.save_total_limit is not None and config.save_total_limit < 1:
        raise ValueError(f"save_total_limit must be at least 1, got {config.save_total_limit}")
    if config.max_steps is not None and config.max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {config.max_steps}")
    if config.early_stopping_mode not in ("min", "max"):
        raise ValueError(f"early_stopping_mode must be 'min' or 'max', "
                         f"got {config.early_stopping_mode!r}")
    if config.save_checkpoints and config.out_dir is None:
        raise ValueError("save_checkpoints needs an out_dir to write the checkpoints into")
    if config.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got "
                         f"{config.precision!r}")


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _save_checkpoint(out_dir: Path, model: Any, optimizer: Any, scheduler: Any, step: int,
                     epoch: int, history: History, config: TrainConfig, scaler: Any) -> None:
    """``out_dir/checkpoint-<step>``; then, with ``save_total_limit``, drop all but the newest
    ones and the best epoch's (which restore_best reads on resuming)."""
    checkpoint.save_training_state(out_dir / f"checkpoint-{step}", model, optimizer, scheduler,
                                   step=step, epoch=epoch, history=history.to_dict(),
                                   extra=config.checkpoint_extra, scaler=scaler)
    if config.save_total_limit is None:
        return
    steps = sorted(e["step"] for e in history.epochs)
    keep = {f"checkpoint-{s}" for s in steps[-config.save_total_limit:]}
    if config.restore_best and history.best_epoch is not None:
        keep.add(f"checkpoint-{_best_step(history)}")
    for old in out_dir.glob("checkpoint-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def _best_step(history: History) -> int:
    """The optimizer step at the end of the best epoch (its checkpoint's number)."""
    return next(e["step"] for e in history.epochs if e["epoch"] == history.best_epoch)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` in ``directory`` (its commit record written),
    or None."""
    done = [p for p in Path(directory).glob("checkpoint-*")
            if (p / checkpoint.TRAINER_STATE_FILE).is_file() and p.name[11:].isdigit()]
    return max(done, key=lambda p: int(p.name[11:]), default=None)


def fit(model: Any, loss_fn: Callable[[Any, Batch], minigrad.Tensor], train_data: Batches,
        optimizer: Any, config: TrainConfig | None = None, *, scheduler: Any = None,
        val_data: Batches | None = None,
        evaluate: Callable[[Any], Mapping[str, float]] | None = None,
        resume_from: str | Path | bool | None = None,
        on_step: Callable[[int], None] | None = None) -> History:
    """Train ``model`` on ``train_data`` and return its :class:`History`.

    ``train_data`` (and ``val_data``) is a list of batches, a function ``epoch -> batches``
    (epochs count from 1), or a tuple or dict of arrays with one row per example, which is cut
    into batches of ``config.batch_size`` rows in the same container. ``loss_fn(model, batch)``
    runs the forward pass and returns the scalar loss Tensor, e.g.::

        def loss_fn(model, batch):
            x, y = batch
            return F.cross_entropy(model(minigrad.tensor(x)), y)

    ``evaluate(model)`` returns extra metrics each epoch (called in eval mode, without a
    graph). ``fit`` starts by seeding minigrad and NumPy with ``config.seed``; seed before
    building the model too (:func:`seed_everything`) for the same initial weights.

    ``resume_from`` is a checkpoint directory written by an earlier run with
    ``save_checkpoints``, or True for the newest complete one in ``config.out_dir`` (as Hugging
    Face's ``resume_from_checkpoint=True``): the weights, optimizer, scheduler, random generators
    and history are restored, and training continues with the next epoch exactly as the first
    run would have. A run that does not resume removes the ``checkpoint-*`` of earlier runs
    from ``out_dir``, which a later resume would otherwise take for its own.

    ``on_step(step)`` is called after every optimizer step, once the gradients are zeroed and
    the scheduler has stepped, with the number of optimizer steps taken so far (1, 2, ...,
    counting on from the checkpoint when resuming); what it changes in the model is what the
    next step and the epoch's evaluation and checkpoint see.

    ``config.precision`` "bf16" or "fp16" trains in mixed precision (the module docstring);
    the weights, and so every checkpoint, stay float32.

    A loss that is not finite stops the run with ``FloatingPointError`` naming the step.
    """
    config = config or TrainConfig()
    _check_config(config)
    out_dir = Path(config.out_dir) if config.out_dir is not None else None
    # Under DistributedDataParallel every rank runs this loop: rank 0 alone writes and shows.
    writes = getattr(model, "rank", 0) == 0
    across_ranks = getattr(model, "average_across_ranks", lambda value: value)
    if resume_from is True:
        resume_from = None if out_dir is None else latest_checkpoint(out_dir)
        if resume_from is None:
            raise checkpoint.CheckpointError(f"{out_dir}: no complete epoch to resume from (no "
                                             f"checkpoint-*/{checkpoint.TRAINER_STATE_FILE})")
    if out_dir is not None and writes:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume_from and config.save_checkpoints:
            for old in out_dir.glob("checkpoint-*"):
                shutil.rmtree(old)
    k = config.grad_accum_steps
    half = PRECISIONS[config.precision]
    device = next((p.device for p in model.parameters()), "cpu")  # whose tensors autocast casts
    autocast = minigrad.autocast(device, dtype=half or "bfloat16", enabled=half is not None)
    scaler = minigrad.amp.GradScaler(device, enabled=config.precision == "fp16")
    quiet = {"over": "ignore", "invalid": "ignore"} if scaler.is_enabled() else {}

    seed_everything(config.seed)
    history, step, start_epoch, best_weights = History(), 0, 0, None
    if resume_from:
        saved = checkpoint.load_training_state(resume_from, model, optimizer, scheduler,
                                               scaler=scaler)
        history, step, start_epoch = History.from_dict(saved.history), saved.step, saved.epoch
        if config.restore_best and history.best_epoch is not None:
            # The best epoch's weights are those of its own checkpoint, beside this one.
            best_weights = checkpoint.load_safetensors(
                Path(resume_from).parent / f"checkpoint-{_best_step(history)}"
                / checkpoint.MODEL_FILE)
    optimizer.zero_grad()

    for epoch in range(start_epoch + 1, config.epochs + 1):
        # --- train one epoch: forward, loss, gradient, update --------------------------------
        model.train()
        micro_batches = _epoch_batches(train_data, epoch, config, "train_data")
        if not micro_batches:
            raise ValueError(f"train_data gave no batch for epoch {epoch}")
        updates = [micro_batches[i:i + k] for i in range(0, len(micro_batches), k)]
        if config.max_steps is not None:
            updates = updates[:max(config.max_steps - step, 0)]
        bar = tqdm(updates, desc=f"epoch {epoch}/{config.epochs}", unit="step",
                   disable=not (config.progress and writes))
        epoch_losses = []
        for group in bar:
            step_loss = 0.0
            for batch in group:
                with autocast:  # fp32: off
                    loss = loss_fn(model, batch)  # forward and loss
                loss = loss / len(group)  # the step's loss is the mean over its micro-batches
                with np.errstate(**quiet):  # fp16: an overflow is the scaler's to find, no warning
                    scaler.scale(loss).backward()  # gradients (×S in fp16), added to each p.grad
                step_loss += loss.item()
            step_loss = across_ranks(step_loss)  # the global batch's loss, the same on all ranks
            if not math.isfinite(step_loss):
                raise FloatingPointError(
                    f"the loss is {step_loss} at step {step + 1} (epoch {epoch}): training "
                    "diverged; lower the learning rate (--lr) or clip gradients")
            grad_norm = None
            if config.max_grad_norm is not None:
                scaler.unscale_(optimizer)  # clipping sees the true gradients
                with np.errstate(**quiet):  # (an inf gradient: the scaler skips this step)
                    grad_norm = clip_grad_norm_(model.parameters(), config.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # the first group's, as the bar shows it
            scale = scaler.get_scale()
            scaler.step(optimizer)  # the update θ ← θ − η·(Adam's, SGD's) step; fp16: unless
            scaler.update()         # a gradient overflowed (then the scale halves)
            skipped = scaler.get_scale() < scale
            optimizer.zero_grad()
            if scheduler is not None and not skipped:
                scheduler.step()
            step += 1
            if on_step is not None:
                on_step(step)
            epoch_losses.append(step_loss)
            record = {"step": step, "epoch": epoch, "loss": step_loss, "lr": lr}
            if grad_norm is not None:
                record["grad_norm"] = grad_norm  # before clipping, as Hugging Face logs it
            if scaler.is_enabled():
                record.update(scale=scale, skipped=skipped)
                history.skipped_steps += skipped
            history.steps.append(record)
            bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.3g}")

        # --- evaluate ------------------------------------------------------------------------
        metrics = {"train_loss": float(np.mean(epoch_losses))}
        if val_data is not None:
            metrics["val_loss"] = validation_loss(model, loss_fn, val_data, config.batch_size)
        if evaluate is not None:
            results = evaluate_batches(model, [None], lambda m, _: evaluate(m))[0]
            metrics.update({key: float(v) for key, v in results.items()})
        history.epochs.append({"epoch": epoch, "step": step, **metrics})

        # --- early stopping ------------------------------------------------------------------
        stop = config.max_steps is not None and step >= config.max_steps
        if config.early_stopping_metric is not None:
            if config.early_stopping_metric not in metrics:
                raise KeyError(f"early_stopping_metric {config.early_stopping_metric!r} is not "
                               f"among this epoch's metrics {sorted(metrics)}")
            value = metrics[config.early_stopping_metric]
            if _improved(value, history.best_metric, config.early_stopping_mode):
                history.best_epoch, history.best_metric = epoch, value
                if config.restore_best:
                    best_weights = {name: a.copy() for name, a in model.state_dict().items()}
            patience_out = epoch - history.best_epoch >= config.patience
            history.stopped_early = patience_out and epoch < config.epochs
            stop = stop or patience_out

        # --- record --------------------------------------------------------------------------
        if out_dir is not None and writes:
            history.save_json(out_dir / HISTORY_FILE)
            if config.save_checkpoints:
                _save_checkpoint(out_dir, model, optimizer, scheduler, step, epoch, history,
                                 config, scaler)
        if stop:
            break

    if best_weights is not None:
        with minigrad.no_grad():
            model.load_state_dict(best_weights)
    if out_dir is not None and writes:
        history.plot(out_dir / CURVES_FILE, title=config.title)
    return history
