"""Knowledge distillation: a smaller classifier, the student, trained on the logits of a
fine-tuned one, the teacher.

Hinton, Vinyals and Dean (2015) train the student on the teacher's class probabilities softened
by a temperature T, beside the labels (:func:`minigrad.nn.functional.distillation_loss`):

    ℓ = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y)      (s student, t teacher logits)

DistilBERT (Sanh et al. 2019) starts the student as the teacher with every other layer taken
out: the teacher's embeddings, its head (pooler and classifier) and its layers 0, 2, 4, ...
(:func:`student_from_teacher`, :func:`teacher_layers`).

Nothing here reads data, trains or saves. The recipe is fine-tuning's
(:func:`minigrad.finetune.finetune`: the data, the encoding, AdamW, the one loop
:func:`minigrad.train.fit`, the scoring and the one writer), told by three of its settings:
``model`` (where the student starts: the teacher's directory for DistilBERT's start),
``student_layers`` (how many of its layers the student keeps) and ``teacher`` (whose logits it
learns from, with ``temperature`` and ``alpha``). :func:`distill` sets them; so does
``minigrad distill``. The student is saved as an ordinary fine-tuned classifier
(:meth:`minigrad.classifier.Classifier.load`, ``minigrad predict``).
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import minigrad
from minigrad import backend, checkpoint, nn
from minigrad.classifier import Classifier, check_max_length, forward
from minigrad.data.datasets import SEQUENCE, TOKEN, Examples, TokenExamples
from minigrad.data.encoding import IGNORE_INDEX
from minigrad.data.tokenizer import BertTokenizer
from minigrad.models.bert import BertForSequenceClassification, BertForTokenClassification
from minigrad.nn import functional as F

if TYPE_CHECKING:
    from minigrad.finetune import FinetuneConfig, FinetuneResult

# A parameter of encoder layer i: (prefix, i, the rest), e.g. "bert.encoder.layer.", "4",
# ".attention.self.query.weight".
LAYER_PARAMETER = re.compile(r"(.*\bencoder\.layer\.)(\d+)(\..+)")


def teacher_layers(num_teacher_layers: int, num_student_layers: int) -> list[int]:
    """The teacher layers a student of k layers starts from: ⌊i·L/k⌋ for i = 0, ..., k-1.

    Evenly spaced from the first layer: every other one when L = 2k, DistilBERT's choice
    (MiniLM's 6 layers → 3: layers 0, 2, 4; bert-base's 12 → 6: 0, 2, ..., 10); every third for
    L = 3k (MiniLM → 2: layers 0 and 3); all of them for k = L.
    """
    if not 1 <= num_student_layers <= num_teacher_layers:
        raise ValueError(f"a student of a {num_teacher_layers}-layer teacher keeps 1 to "
                         f"{num_teacher_layers} of its layers, got {num_student_layers}")
    return [i * num_teacher_layers // num_student_layers for i in range(num_student_layers)]


def student_from_teacher(teacher: nn.Module, layers: int | Sequence[int]) -> nn.Module:
    """A BERT classifier made of ``teacher``'s weights with fewer encoder layers.

    ``teacher`` is a :class:`BertForSequenceClassification` or
    :class:`BertForTokenClassification`; ``layers`` is the number k of layers to keep (those of
    :func:`teacher_layers`) or the teacher's layer indices, in increasing order. The student
    has the teacher's config with ``num_hidden_layers = k``, its own copies (not views) of the
    teacher's embeddings, head (pooler and classifier) and chosen layers (its layer j is the
    teacher's ``layers[j]``), and the teacher's dtype, device and training mode. With every
    layer kept it computes what the teacher computes.
    """
    if not isinstance(teacher, BertForSequenceClassification | BertForTokenClassification):
        raise TypeError(f"student_from_teacher: the teacher must be a BertForSequenceClassification"
                        f" or BertForTokenClassification, got {type(teacher).__name__}")
    n = teacher.config.num_hidden_layers
    if isinstance(layers, numbers.Integral):
        layers = teacher_layers(n, layers)
    layers = [int(i) for i in layers]
    if not layers or any(not 0 <= i < n for i in layers) or layers != sorted(set(layers)):
        raise ValueError(f"student_from_teacher: layers {layers} are not increasing indices of "
                         f"the teacher's {n} layers (0 to {n - 1})")
    where = {teacher_index: j for j, teacher_index in enumerate(layers)}

    state = {}  # the student's name → the teacher's array
    for name, array in teacher.state_dict().items():
        match = LAYER_PARAMETER.fullmatch(name)
        if match is None:  # embeddings, pooler, classifier
            state[name] = array
        elif int(match[2]) in where:
            state[f"{match[1]}{where[int(match[2])]}{match[3]}"] = array
    first = next(teacher.parameters())
    student = type(teacher)(dataclasses.replace(teacher.config, num_hidden_layers=len(layers)))
    student.to(first.dtype).to(first.device)
    student.load_state_dict(state)  # strict: every parameter comes from the teacher, copied
    return student.train(teacher.training)


def make_student(model: nn.Module, num_layers: int, name: str) -> nn.Module:
    """The student of ``num_layers`` layers that a fine-tuning run trains: see
    :func:`student_from_teacher`. ``num_layers`` must be below the model's own count (``name``
    names the model in the error): a student of every layer would be the model itself."""
    n = model.config.num_hidden_layers
    if not num_layers < n:
        raise ValueError(f"a student of {num_layers} layers is not smaller than {name}, which "
                         f"has {n}; give fewer than {n} layers")
    return student_from_teacher(model, num_layers)


def load_teacher(directory: str | Path, task: str, label_names: Sequence[str],
                 max_length: int, device: str = "cpu") -> Classifier:
    """The fine-tuned classifier in ``directory``, on ``device`` and in evaluation mode (no
    dropout: its logits are the targets), refused unless it fits the run: the same task and
    labels (in the same order, the class ids), and at least ``max_length`` positions."""
    try:
        teacher = Classifier.load(directory)
    except checkpoint.CheckpointError as exc:
        raise checkpoint.CheckpointError(f"the teacher must be a fine-tuned classifier: {exc}"
                                         ) from None
    if teacher.task != task:
        raise ValueError(f"the teacher {directory} is a {teacher.task} model; the data is for "
                         f"{task}")
    if teacher.label_names != list(label_names):
        raise ValueError(f"the teacher {directory} was fine-tuned on the labels "
                         f"{teacher.label_names}, but the data's are {list(label_names)}; "
                         "distil on data with the teacher's labels")
    check_max_length(max_length, teacher.model.config, f"{directory} (the teacher)")
    teacher.model.to(device)
    teacher.model.eval()
    return teacher


def _tokenizer_settings(tokenizer: BertTokenizer) -> tuple:
    """What decides the ids of a text, bar the length it is cut to."""
    kwargs = {k: v for k, v in tokenizer.init_kwargs.items() if k != "model_max_length"}
    return tokenizer.vocab, kwargs


def distillation_objective(teacher: Classifier, tokenizer: BertTokenizer,
                           temperature: float = 2.0, alpha: float = 0.5,
                           ) -> Callable[[nn.Module, dict[str, np.ndarray]], minigrad.Tensor]:
    """``loss_fn(student, batch)`` for :func:`minigrad.train.fit`: the distillation loss of the
    student's logits against the teacher's, computed on the same batch without a graph.

    Both read the ids of ``tokenizer`` (the student's), so it must be the teacher's: the same
    vocabulary and settings, else a ValueError. For token classification every token's logits
    are an example; the tokens whose label is ignored (padding, [CLS], [SEP], the pieces after
    a word's first) count in neither term.
    """
    if _tokenizer_settings(tokenizer) != _tokenizer_settings(teacher.tokenizer):
        raise ValueError(f"the student's tokenizer ({tokenizer.source}) is not the teacher's "
                         f"({teacher.tokenizer.source}): the teacher would read other ids; start "
                         "the student from a model with the teacher's vocabulary")

    def loss_fn(student: nn.Module, batch: dict[str, np.ndarray]) -> minigrad.Tensor:
        inputs = {key: a for key, a in batch.items() if key != "labels"}
        logits = forward(student, inputs).logits  # (B, C), or (B, S, C) for tokens
        with minigrad.no_grad():
            targets = forward(teacher.model, inputs).logits  # the same shape, constants
        c = logits.shape[-1]
        labels = backend.to_device(batch["labels"], logits.device).reshape(-1)  # (B,) or (B·S,)
        return F.distillation_loss(logits.reshape(-1, c), targets.reshape(-1, c), labels,
                                   T=temperature, alpha=alpha, ignore_index=IGNORE_INDEX)

    return loss_fn


def distill(train: Examples, valid: Examples | None = None, test: Examples | None = None, *,
            teacher: str | Path, layers: int = 3, temperature: float = 2.0, alpha: float = 0.5,
            config: FinetuneConfig | None = None) -> FinetuneResult:
    """Distil the fine-tuned classifier in ``teacher`` into a student of ``layers`` of its
    layers (:func:`teacher_layers`: every other one), trained on the teacher's logits at
    ``temperature`` with weight ``alpha`` (and on the labels with 1 − ``alpha``).

    The rest is :func:`minigrad.finetune.finetune` with ``config`` (the batch size, epochs,
    learning rate, ``out_dir``...): the same data handling, loop, scoring and model directory;
    the task follows the examples (TokenExamples: token classification).
    """
    from minigrad.finetune import FinetuneConfig, finetune  # finetune imports this module

    config = dataclasses.replace(
        config or FinetuneConfig(), model=str(teacher), teacher=teacher, student_layers=layers,
        temperature=temperature, alpha=alpha,
        task=TOKEN if isinstance(train, TokenExamples) else SEQUENCE)
    return finetune(train, valid, test, config)
