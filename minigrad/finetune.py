"""Fine-tuning a BERT for text or token classification: seed 001's recipe, top to bottom.

Seed 001 (§5.2): a classification head on the encoder, AdamW at lr 2e-5, batch 16, 5 epochs,
texts cut to 128 tokens, then a per-class precision/recall/F1 report; seed 003 adds warmup,
seed 002 early stopping. :func:`finetune` wires the pieces that do the work:

1. **data** (:mod:`minigrad.data.datasets`): sorted label ids; one class, or a label that
   training never shows, refused; missing validation/test sets split off the training set;
2. **tokenize once** (:mod:`minigrad.data.encoding`), each batch cut to its longest sequence;
3. **the loss**: the head's cross-entropy, of [CLS] for a text, of each word's first piece for
   a sentence (:mod:`minigrad.classifier`); with a ``teacher``, the distillation loss against
   its logits, for a student of ``student_layers`` of the model's layers (:mod:`minigrad.distill`);
4. **the update**: AdamW, no decay on biases and LayerNorm (``decay_bias_and_norm`` decays
   them too), linear warmup then decay (Hugging Face's Trainer's defaults). The gradient norm
   is clipped at the Trainer's 1.0 for a model from scratch or PEFT, whose larger rates were
   chosen with clipping, and not when fine-tuning a pretrained model (:meth:`FinetuneConfig.
   grad_clip`): in a short run of MiniLM on reviews (376 steps,
   ``benchmarks/finetune_vs_hf.py``) no clipping scored higher on each of 3 seeds (0.7925 test
   accuracy against 0.7832), with the norm above 1.0 on three steps in four;
5. **the loop** (:func:`minigrad.train.fit`), scoring the validation set after each epoch and,
   with ``patience``, stopping early and restoring the best epoch; with ``prune_sparsity``,
   magnitude pruning on a cubic schedule after every step (:mod:`minigrad.compress.prune`;
   a model that was pruned before keeps its zeros);
6. **the end**: the test report, and the model directory (``model.safetensors``,
   ``config.json``, the tokenizer, ``metrics.json``, ``history.json``, ``curves.png``) written
   as a unit by :func:`minigrad.checkpoint.save_pretrained`.

With ``distributed`` set, under ``mpiexec -n N``, each of the N ranks trains a copy of the model
(:class:`minigrad.distributed.DistributedDataParallel`) on its shard of every batch
(:class:`minigrad.distributed.DistributedSampler`): ``batch_size`` is the global batch, cut into N
slices of ``batch_size / N``, so N ranks take the steps one process would; rank 0 alone writes.

With ``peft`` set (:mod:`minigrad.peft`: LoRA, adapters, prompt tuning, BitFit) the loaded
model is frozen and wrapped, only its trainable weights reach the optimizer, and the directory
holds the adapter (``adapter_model.safetensors``, ``adapter_config.json``) instead of the model.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import minigrad
from minigrad import checkpoint, distill, nn, peft
from minigrad.classifier import (
    ARCHITECTURES,
    Classifier,
    check_max_length,
    encode,
    forward,
    is_bio,
    load_model,
    predict_logits,
    score,
)
from minigrad.compress.prune import MagnitudePruner, check_sparsity, global_sparsity, is_pruned
from minigrad.data import datasets
from minigrad.data.datasets import SEQUENCE, TOKEN, Examples, TextExamples, TokenExamples
from minigrad.data.encoding import IGNORE_INDEX, Encoded, training_batches
from minigrad.models.bert import NAMED_CONFIGS
from minigrad.optim import AdamW, get_linear_schedule_with_warmup, param_groups_for_weight_decay
from minigrad.train import (
    CURVES_FILE,
    HISTORY_FILE,
    PRECISIONS,
    History,
    TrainConfig,
    fit,
    seed_everything,
)

# Seed 001's learning rate for a pretrained encoder. A randomly initialised one has nothing to
# preserve and far to go: it takes a rate 25 times larger. On rotten-tomatoes (bert-tiny, 2,000
# reviews, 3 epochs, batch 16) 1e-4 never left the majority class in 375 steps, 5e-4 and 1e-3
# both reached 69-70% test accuracy, and 2e-3 failed (51%); 5e-4 is the rate with room on
# both sides.
PRETRAINED_LR = 2e-5
FROM_SCRATCH_LR = 5e-4
# A PEFT method trains few weights, from zero (LoRA's B, the adapters' up-projections) or from
# nothing pretrained (the prompt), at rates 10-1000 times the full model's, as in the papers:
# LoRA 5e-4 (Hu et al. 2021, RoBERTa-base on SST-2), Houlsby adapters 3e-4 (the middle of their
# 3e-5/3e-4/3e-3 grid), BitFit 1e-3 (the top of its 1e-4..1e-3 grid), prompt tuning 3e-2
# (Lester et al. used 0.3 with Adafactor). These suit the recipe's 5 epochs. Short runs want
# more: MiniLM on 1,600 rotten-tomatoes reviews for 1 epoch (100 steps of 16, 64 tokens) left
# the majority class (60% of the test reviews) with full fine-tuning at 2e-5, LoRA at 5e-4,
# adapters at 5e-4 and 2e-3, BitFit at 1e-3 and 5e-3, prompt tuning at 3e-3; it reached 78%
# with full fine-tuning at 1e-4, 72% and 76% with LoRA at 2e-3 and 5e-3, 66% with the prompt
# at 0.1. (A frozen model gives its trainable weights the full model's gradients: tested.)
PEFT_LR = {"lora": 5e-4, "adapter": 3e-4, "prompt": 3e-2, "bitfit": 1e-3}
METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class FinetuneConfig:
    """Everything that decides how :func:`finetune` trains (seed 001's recipe as defaults)."""

    task: str = SEQUENCE            # or "token-classification"
    model: str = "minilm"           # "minilm", "bert-tiny", "bert-mini" or a checkpoint directory
    lr: float | None = None         # None: PRETRAINED_LR, or FROM_SCRATCH_LR for a named size
    batch_size: int = 16
    max_length: int = 128           # tokens per example, [CLS] and [SEP] included
    epochs: int = 5
    warmup_ratio: float = 0.1       # the share of the steps over which lr rises from 0
    weight_decay: float = 0.01      # AdamW's, on weight matrices only (unless the next is set)
    decay_bias_and_norm: bool = False  # decay biases and LayerNorm too (a plain AdamW loop's)
    max_grad_norm: float | None = None  # clip at this norm (0: never); None: grad_clip()
    seed: int = 0                   # the head's initial weights, dropout, the batch order
    patience: int | None = None     # stop after this many epochs without a better validation
    max_train_examples: int | None = None  # train on a seeded random subset of this size
    max_steps: int | None = None    # stop after this many optimizer steps, if before the end
    vocab: str | Path | None = None  # vocab.txt of a from-scratch model (default: MiniLM's)
    out_dir: str | Path | None = None  # the model; out_dir/checkpoints/ each epoch, for resume
    resume: bool = False            # continue from out_dir's last complete epoch
    command: dict | None = None     # how the run was started, kept in its checkpoints
    eval_batch_size: int = 64
    device: str = "cpu"
    precision: str = "fp32"         # "bf16" or "fp16": mixed precision (TrainConfig.precision)
    progress: bool = True           # the progress bar and a line per epoch
    # knowledge distillation (minigrad.distill): a student of fewer layers, on a teacher's logits
    student_layers: int | None = None  # keep this many of the model's layers, evenly spaced
    teacher: str | Path | None = None  # a fine-tuned classifier whose logits the model learns
    temperature: float = 2.0        # T of the teacher's soft targets softmax(logits / T)
    alpha: float = 0.5              # the weight of the soft targets; 1 - alpha the labels'
    # Magnitude pruning of the encoder's Linear weights to this sparsity (None: none), on Zhu &
    # Gupta's cubic schedule from prune_start to prune_end (fractions of the training steps;
    # the steps after prune_end recover at the final sparsity), masks recomputed every
    # prune_frequency steps.
    prune_sparsity: float | None = None
    prune_start: float = 0.0
    prune_end: float = 0.7
    prune_frequency: int = 10
    # parameter-efficient fine-tuning (minigrad.peft): the model frozen, a few weights trained
    peft: str | None = None         # "lora", "adapter", "prompt", "bitfit"; None: every weight
    lora_r: int = 8                 # LoRA's rank, scaling lora_alpha / lora_r
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = ("query", "value")
    adapter_size: int = 64          # a bottleneck adapter's hidden units
    num_virtual_tokens: int = 20    # prompt tuning's trainable vectors before the text
    merge: bool = False             # lora, bitfit: save the merged plain model, not the adapter
    dropout: float | None = None    # every dropout rate of the model (hidden, attention, head)
    distributed: bool = False       # one rank of an MPI world (mpiexec -n N): see the module doc

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.peft is not None:
            return PEFT_LR[self.peft]
        return FROM_SCRATCH_LR if self.model in NAMED_CONFIGS else PRETRAINED_LR

    def grad_clip(self) -> float | None:
        """The global gradient norm to clip at, or None: ``max_grad_norm`` when set (0: never
        clip); otherwise none for full fine-tuning of a pretrained model (it learned better
        unclipped in a short run: see the README) and Hugging Face's 1.0 for a model from
        scratch or PEFT, whose learning rates (25-1500 times larger) were chosen with it."""
        if self.max_grad_norm is not None:
            return self.max_grad_norm or None
        return 1.0 if self.peft is not None or self.model in NAMED_CONFIGS else None

    def peft_config(self) -> peft.PeftConfig | None:
        """The :mod:`minigrad.peft` configuration of ``peft`` and its options (None: full
        fine-tuning), with the base model it refers to."""
        if self.peft is None:
            return None
        options = {"lora": {"r": self.lora_r, "lora_alpha": self.lora_alpha,
                            "lora_dropout": self.lora_dropout,
                            "target_modules": self.lora_target_modules},
                   "adapter": {"adapter_size": self.adapter_size},
                   "prompt": {"num_virtual_tokens": self.num_virtual_tokens}, "bitfit": {}}
        return peft.METHODS[self.peft](**options[self.peft],
                                       base_model_name_or_path=peft.base_reference(self.model))

    def check(self) -> None:
        if self.task not in ARCHITECTURES:
            raise ValueError(f"unknown task {self.task!r}; tasks: {list(ARCHITECTURES)}")
        for name in ("batch_size", "max_length", "epochs", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm is not None and not self.max_grad_norm >= 0:
            raise ValueError(f"max_grad_norm must be >= 0 (0: never clip), got "
                             f"{self.max_grad_norm}")
        for name in ("patience", "max_train_examples", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got "
                             f"{self.precision!r}")
        if self.student_layers is not None and self.student_layers < 1:
            raise ValueError(f"student_layers must be at least 1, got {self.student_layers}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"the temperature must be positive, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha, the weight of the teacher's soft targets, must be in "
                             f"[0, 1], got {self.alpha}")
        if self.prune_sparsity is not None:
            check_sparsity(self.prune_sparsity, "prune_sparsity")
        if not 0 <= self.prune_start <= self.prune_end <= 1 or self.prune_frequency < 1:
            raise ValueError(f"pruning needs 0 <= prune_start <= prune_end <= 1 and "
                             f"prune_frequency >= 1, got {self.prune_start}, {self.prune_end} "
                             f"and {self.prune_frequency}")
        if self.peft is not None:
            if self.peft not in peft.METHODS:
                raise ValueError(f"unknown PEFT method {self.peft!r}; methods: "
                                 f"{', '.join(peft.METHODS)}")
            if self.model in NAMED_CONFIGS:
                raise ValueError(f"PEFT ({self.peft}) trains a few weights on top of a pretrained "
                                 f"model, but {self.model} starts from random weights; fine-tune "
                                 "minilm or a checkpoint directory, or train every weight")
            if self.student_layers is not None:
                raise ValueError(f"PEFT ({self.peft}) trains on top of a base model that stays "
                                 "on disk, and a student of student_layers is a new model: "
                                 "train the student first, then PEFT on its directory")
            self.peft_config()  # the method's options, checked
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.merge and self.peft not in ("lora", "bitfit"):
            raise ValueError(f"merge folds LoRA or BitFit into the model's weights; it does not "
                             f"apply to {'full fine-tuning' if self.peft is None else self.peft}")


@dataclasses.dataclass
class FinetuneResult:
    """What :func:`finetune` gives back: the classifier, its history, the test metrics (the
    dict written to ``metrics.json``), the report as text, and the test set's predictions."""

    classifier: Classifier
    history: History
    metrics: dict[str, Any]
    report: str
    test: Examples
    predictions: list  # the predicted class id of each test text, or tags of each sentence
    out_dir: Path | None = None


def finetune(train: Examples, valid: Examples | None = None, test: Examples | None = None,
             config: FinetuneConfig | None = None) -> FinetuneResult:
    """Fine-tune ``config.model`` on ``train`` and score it on ``test``.

    ``train``/``valid``/``test`` are :class:`~minigrad.data.datasets.TextExamples` (sequence
    classification) or :class:`~minigrad.data.datasets.TokenExamples` (token classification);
    a missing ``valid`` or ``test`` is split off ``train``. With ``config.out_dir`` the model
    directory (with ``metrics.json``, ``history.json`` and ``curves.png``) is written there.

    The run holds ``out_dir`` from start to end (:class:`minigrad.checkpoint.OutputLock`: it
    must be writable, and a second run into it is refused at once).

    Raises:
        DataError: one class, a label of ``valid``/``test`` that ``train`` lacks, too few
            examples.
        ValueError: a bad setting, such as a ``max_length`` above the model's position limit.
    """
    config = config or FinetuneConfig()
    config.check()
    if config.distributed:  # every rank refuses a bad setting before any collective starts
        from minigrad import distributed

        world = distributed.world_size()
        if config.batch_size % world:
            raise distributed.WorldError(
                f"--batch-size {config.batch_size} is the global batch and must divide evenly "
                f"among the {world} ranks; use a multiple of {world}")
        if distributed.rank() != 0:  # rank 0 alone shows progress and writes out_dir
            config = dataclasses.replace(config, progress=False)
            return _finetune(train, valid, test, config, writes=False)
    if config.out_dir is None:
        return _finetune(train, valid, test, config)
    with checkpoint.OutputLock(config.out_dir):
        return _finetune(train, valid, test, config)


def _finetune(train: Examples, valid: Examples | None, test: Examples | None,
              config: FinetuneConfig, writes: bool = True) -> FinetuneResult:
    kind = TokenExamples if config.task == TOKEN else TextExamples
    for name, examples in (("train", train), ("valid", valid), ("test", test)):
        if examples is not None and not isinstance(examples, kind):
            raise TypeError(f"{config.task} takes {kind.__name__} as {name}, got "
                            f"{type(examples).__name__}")

    # --- 1. data: labels, splits ---------------------------------------------------------------
    names = datasets.class_names(train)
    label2id = {name: i for i, name in enumerate(names)}
    for examples in (valid, test):
        if examples is not None:
            datasets.check_labels(examples, label2id, train)
    train, valid, test = datasets.split_examples(train, valid, test)
    if config.max_train_examples is not None and config.max_train_examples < len(train):
        train = datasets.random_split(train, [config.max_train_examples,
                                              len(train) - config.max_train_examples],
                                      datasets.SPLIT_SEED)[0]

    # --- 2. the model, and the examples tokenized once -------------------------------------------
    teacher = None if config.teacher is None else distill.load_teacher(
        config.teacher, config.task, names, config.max_length, config.device)
    seed_everything(config.seed)  # the new head's weights
    model, tokenizer = load_model(config.model, config.task, len(names), config.vocab)
    if config.dropout is not None:
        set_dropout(model, config.dropout)
    check_max_length(config.max_length, model.config, config.model)
    if config.student_layers is not None:  # DistilBERT's start: every other layer
        model = distill.make_student(model, config.student_layers, config.model)
    if config.peft is not None:  # the model frozen; the method's weights and the head train
        model = peft.get_peft_model(model, config.peft_config())
        if model.num_virtual_tokens:
            check_max_length(config.max_length + model.num_virtual_tokens, model.config,
                             f"{config.model} after {model.num_virtual_tokens} virtual tokens")
    model.to(config.device)
    classifier = Classifier(model, tokenizer, names, config.task, config.max_length,
                            config.eval_batch_size)
    start = time.perf_counter()
    train_enc, valid_enc = encode(classifier, train, label2id), encode(classifier, valid,
                                                                       label2id)
    tokenize_seconds = time.perf_counter() - start

    # --- 3-4. the loss, the optimizer and the schedule ------------------------------------------
    def loss_fn(model: nn.Module, batch: dict[str, np.ndarray]) -> minigrad.Tensor:
        return forward(model, batch).loss

    if teacher is not None:  # the teacher's soft targets beside the labels
        loss_fn = distill.distillation_objective(teacher, tokenizer, config.temperature,
                                                 config.alpha)
    steps = math.ceil(len(train) / config.batch_size) * config.epochs
    if config.max_steps is not None:  # the schedules (lr, pruning) end at the last step taken
        steps = min(steps, config.max_steps)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    params = ([p for _, p in trainable] if config.decay_bias_and_norm
              else param_groups_for_weight_decay(trainable, config.weight_decay))
    optimizer = AdamW(params, lr=config.learning_rate(), weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer,
                                                math.ceil(config.warmup_ratio * steps), steps)
    pruner = None  # magnitude pruning after each step; a model pruned before keeps its zeros
    if config.prune_sparsity is not None or is_pruned(model):
        pruner = MagnitudePruner(model, config.prune_sparsity or 0.0,
                                 round(config.prune_start * steps), round(config.prune_end * steps),
                                 frequency=config.prune_frequency)

    # --- 5. the loop, scoring the validation set after each epoch -------------------------------
    eval_seconds = 0.0
    predict = predict_logits

    def evaluate(model: nn.Module) -> dict[str, float]:
        nonlocal eval_seconds
        begin = time.perf_counter()
        scores = score(classifier, valid, valid_enc, predict)
        eval_seconds += time.perf_counter() - begin
        metrics = {f"val_{k}": scores[k] for k in ("loss", "accuracy", "macro_f1", "entity_f1")
                   if k in scores}
        if config.progress:
            tqdm.write("validation: " + ", ".join(f"{k[4:]} {v:.4f}" for k, v in
                                                  metrics.items()))
        return metrics

    key = "val_entity_f1" if config.task == TOKEN and is_bio(names) else "val_macro_f1"
    out_dir = Path(config.out_dir) if config.out_dir is not None else None
    checkpoints = None if out_dir is None else out_dir / checkpoint.RUN_CHECKPOINTS
    train_config = TrainConfig(
        epochs=config.epochs, max_steps=config.max_steps, max_grad_norm=config.grad_clip(),
        seed=config.seed,
        early_stopping_metric=key if config.patience else None, early_stopping_mode="max",
        patience=config.patience or 1, restore_best=config.patience is not None,
        out_dir=checkpoints, save_checkpoints=checkpoints is not None, save_total_limit=1,
        checkpoint_extra={"command": config.command}, progress=config.progress,
        precision=config.precision,
        title=f"fine-tuning {config.model} ({config.task}) on {train.source}")
    trained, batches = model, lambda epoch: training_batches(
        train_enc, config.batch_size, np.random.default_rng([config.seed, epoch]))
    if config.distributed:  # each rank scores a share of the rows, gathered on all
        predict = _shared_predict
        trained, batches = _data_parallel(model, train_enc, config)
    start = time.perf_counter()
    history = fit(trained, loss_fn, batches, optimizer, train_config, scheduler=scheduler,
                  evaluate=evaluate, resume_from=config.resume, on_step=pruner)
    train_seconds = time.perf_counter() - start - eval_seconds

    # --- 6. the test report and the model directory ----------------------------------------------
    test_scores = score(classifier, test, predict=predict)
    model.eval()
    n_steps = len(history.steps)
    metrics = {
        "task": config.task, "model": config.model, "labels": names,
        "precision": config.precision,
        **{k: test_scores[k] for k in ("accuracy", "macro_f1", "entity_f1", "words_cut_off")
           if k in test_scores},
        "test_loss": test_scores["loss"], "report": test_scores["report"],
        "parameters": {"trainable": sum(p.numel() for _, p in trainable),
                       "all": model.num_parameters()},
        "data": {"train": train.source, "valid": valid.source, "test": test.source,
                 "n_train": len(train), "n_valid": len(valid), "n_test": len(test)},
        "config": {**dataclasses.asdict(config), "lr": config.learning_rate(),
                   "out_dir": None if out_dir is None else str(out_dir),
                   "vocab": None if config.vocab is None else str(config.vocab),
                   "teacher": None if config.teacher is None else str(config.teacher)},
        "timing": {"tokenize_seconds": tokenize_seconds, "train_seconds": train_seconds,
                   "validation_seconds": eval_seconds, "steps": n_steps,
                   "seconds_per_step": train_seconds / max(n_steps, 1)},
        "history": history.to_dict(),
    }
    if pruner is not None:
        metrics["sparsity"] = global_sparsity(model)  # of the pruned weights, exactly 0
    if out_dir is not None and writes:
        if config.merge:  # a plain model: LoRA folded into its weights
            classifier.model = model.merge_and_unload()
        classifier.save(out_dir, {METRICS_FILE: metrics, HISTORY_FILE: history.to_dict(),
                                  CURVES_FILE: history.png(train_config.title)})
    return FinetuneResult(classifier, history, metrics, test_scores["report_text"], test,
                          test_scores["predictions"], out_dir)


def set_dropout(model: nn.Module, p: float) -> None:
    """Every dropout of a BERT (embeddings, attention weights, hidden layers, the head) at rate
    ``p``, recorded in its config so that the saved ``config.json`` says so."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = p
    model.config.classifier_dropout = None  # follows hidden_dropout_prob


def _data_parallel(model: nn.Module, train_enc: Any, config: FinetuneConfig) -> tuple[Any, Any]:
    """The model wrapped for data-parallel training, and this rank's batches of each epoch:
    its :class:`~minigrad.distributed.DistributedSampler` shard of the one-process order, cut
    into slices of batch_size / N (so step k's slices together are the one-process batch k)."""
    from minigrad import distributed

    sizes = distributed.all_gather_object(len(train_enc))
    if len(set(sizes)) != 1:
        raise distributed.WorldError(f"the ranks read different training sets: {sizes} "
                                     "examples on ranks 0..N-1; give every rank the same data")
    ddp = distributed.DistributedDataParallel(model)
    sampler = distributed.DistributedSampler(len(train_enc), seed=config.seed)
    local = config.batch_size // ddp.world_size

    def batches(epoch: int) -> list[dict[str, np.ndarray]]:
        sampler.set_epoch(epoch)
        rows = sampler.indices()
        return [train_enc.batch(rows[i:i + local]) for i in range(0, len(rows), local)]

    return ddp, batches


def _shared_predict(model: nn.Module, encoded: Encoded, batch_size: int,
                    ) -> tuple[list[np.ndarray] | np.ndarray, float | None]:
    """:func:`~minigrad.classifier.predict_logits` with the rows shared among the ranks (rank r
    takes rows r, r + N, ...), the logits gathered back into order on every rank and the loss
    weighted by each rank's examples (or labelled tokens)."""
    from minigrad import distributed

    world, rank = distributed.world_size(), distributed.rank()
    rows = np.arange(rank, len(encoded), world)
    part = Encoded({key: a[rows] for key, a in encoded.arrays.items()},
                   None if encoded.word_starts is None else [encoded.word_starts[i] for i in rows])
    logits, loss = predict_logits(model, part, batch_size)
    labels = part.arrays.get("labels")
    weight = 0 if labels is None else (int((labels != IGNORE_INDEX).sum())
                                       if part.word_starts is not None else len(rows))
    shares = distributed.all_gather_object((list(logits), loss, weight))
    ordered: list = [None] * len(encoded)
    for r, (share, _, _) in enumerate(shares):
        ordered[r::world] = share
    total = sum(w for _, _, w in shares)
    mean = sum(m * w for _, m, w in shares if m is not None) / total if total else None
    return (ordered if encoded.word_starts is not None else np.stack(ordered)), mean
