"""The part of a training job that depends on the task: :class:`Task`, which the Trainer drives.

A task says which batches to train on, which to validate on, and the loss of one batch summed over its
target tokens (padding excluded); the optional parts have defaults, so a task overrides only what it has.
In a distributed run the task gives each rank only its own rows (a contiguous block of the global batch,
in rank order), so that the carried state of all ranks concatenated along dim 1 is the global one.
"""

import math
from abc import ABC, abstractmethod
from typing import Any, Iterable, Iterator, NamedTuple

import torch

from .losses import TaskLoss


class Baseline(NamedTuple):
    """The mean loss per target of a guess that knows nothing, against which a runaway loss is judged.

    loss: in the units of the task's loss per target (nats for cross-entropy). description: what the guess
    is, as the stop message names it ("a uniform guess over 65 characters").
    """

    loss: float
    description: str


def uniform_baseline(classes: int, what: str = "classes") -> Baseline:
    """A uniform guess over ``classes`` choices: ln(classes) nats per target, what cross-entropy starts from.

        >>> uniform_baseline(65, "characters")
        Baseline(loss=4.174387269895637, description='a uniform guess over 65 characters')
    """
    return Baseline(math.log(classes), f"a uniform guess over {classes} {what}")


class Task(ABC):
    """The interface between a task and the :class:`~rnnkit.train.Trainer`.

    Class attributes (override as needed):
        carries_state: True for truncated BPTT over streams: each batch continues the previous one's
            sequences and the Trainer carries the hidden state across. Default False (full BPTT).
        target_unit: what ``TaskLoss.n_tokens`` counts, shown in the progress rate (default ``tok``).
        selection: ``(score name, "max" | "min")``: which of :meth:`score_validation`'s scores picks the best
            checkpoint and drives early stopping; None (default): the validation loss does.
    """

    carries_state: bool = False
    target_unit: str = "tok"
    selection: tuple[str, str] | None = None

    @abstractmethod
    def num_train_batches(self) -> int:
        """Batches in one epoch."""

    @abstractmethod
    def train_batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The training batches of ``epoch`` (0-based), from batch index ``start`` on (to resume mid-epoch)."""

    @abstractmethod
    def valid_batches(self) -> Iterable[Any] | None:
        """The validation batches, or None when the task has no validation data."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: Any, state: Any) -> TaskLoss:
        """The loss of ``batch`` under ``model`` starting from ``state`` (None: the model's initial state)."""

    def metrics(self, loss: float) -> dict[str, float]:
        """Figures derived from a mean loss per token, e.g. perplexity, bits per character (default none)."""
        return {}

    def score_validation(self, model: torch.nn.Module) -> dict[str, float]:
        """Scores of the whole validation set beyond the loss (``{"accuracy": 0.93}``), ``model`` in eval
        mode; they join each epoch's record as ``valid_<name>``. Default: none."""
        return {}

    def gradient_flow(self, model: torch.nn.Module, batch: Any, state: Any) -> dict | None:
        """For ``TrainConfig.log_gradients``: the gradient's flow back through time on one batch, e.g.
        ``{"hidden": [‖∂L/∂h_t‖ for t = 1..L]}``; None (default): the task does not record it."""
        return None

    def baseline_loss(self) -> Baseline | None:
        """The loss per target of a guess that knows nothing, e.g. ``uniform_baseline(vocab_size, "words")``
        for a language model; the Trainer stops a run whose mean training loss runs far above it (see
        :mod:`rnnkit.train.divergence`). None (default): the task has none, and a runaway loss is not judged
        (only a non-finite one)."""
        return None


class _ProtocolTask(Task):
    """A task object written against the duck-typed interface of rnnkit 0.1 (no :class:`Task` base): its
    methods are used as they are, and the optional ones it lacks take :class:`Task`'s defaults."""

    def __init__(self, task: Any):
        self.task = task
        defaults = {name: getattr(Task, name) for name in ("carries_state", "target_unit", "selection")}
        self.carries_state, self.target_unit, self.selection = (
            getattr(task, name, default) for name, default in defaults.items())

    def num_train_batches(self) -> int:
        return self.task.num_train_batches()

    def train_batches(self, epoch: int, start: int) -> Iterator[Any]:
        return self.task.train_batches(epoch, start)

    def valid_batches(self):
        return self.task.valid_batches()

    def loss(self, model, batch, state) -> TaskLoss:
        return self.task.loss(model, batch, state)

    def metrics(self, loss: float) -> dict[str, float]:
        return self.task.metrics(loss) if hasattr(self.task, "metrics") else {}

    def score_validation(self, model) -> dict[str, float]:
        return self.task.score_validation(model) if hasattr(self.task, "score_validation") else {}

    def gradient_flow(self, model, batch, state) -> dict | None:
        return self.task.gradient_flow(model, batch, state) if hasattr(self.task, "gradient_flow") else None

    def baseline_loss(self) -> Baseline | None:
        return self.task.baseline_loss() if hasattr(self.task, "baseline_loss") else None


def as_task(task: Any) -> Task:
    """``task`` itself when it is a :class:`Task`, else an adapter for an object of the older duck-typed
    interface: the one place that asks an object which optional parts it has."""
    return task if isinstance(task, Task) else _ProtocolTask(task)
