"""Training on in-memory arrays: what ``model.fit(X, y)`` of :mod:`rnnkit.models.fit_predict` runs.

:class:`ArrayTask` cuts (inputs, targets, lengths) tensors into mini-batches for the :class:`~rnnkit.train.Trainer`,
and :func:`fit_task` trains a model on one and returns the per-epoch records. The Trainer trains any module and
knows no model: a model that trains itself, as Keras's do, reaches down to it from here.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ..train import DistContext, Task, TaskLoss, TrainConfig, Trainer


def summed_sample_loss(name: str, outputs: Tensor, targets: Tensor) -> Tensor:
    """The loss ``name`` (``"binary_crossentropy"``, ``"cross_entropy"`` or ``"mse"``) summed over the samples
    of a batch: outputs (N, K); targets (N, 1) floats, (N,) class ids or (N, K) floats, as that loss wants."""
    if name == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(outputs, targets, reduction="sum")  # targets (N, 1)
    if name == "cross_entropy":
        return F.cross_entropy(outputs, targets, reduction="sum")  # targets (N,) class ids
    return F.mse_loss(outputs, targets, reduction="none").mean(1).sum()  # targets (N, K)


class ArrayTask(Task):
    """In-memory (inputs, targets, lengths) tensors cut into mini-batches, for the :class:`~rnnkit.train.Trainer`.

    Each epoch reads the samples in a fresh order drawn from ``seed + epoch`` (when ``shuffle``), so that a
    run is repeatable and a resumed epoch reads the same order. Every batch starts from the model's initial
    state (full BPTT); the loss counts one "token" per sample.
    """

    def __init__(self, name: str, inputs: Tensor, targets: Tensor, lengths: Tensor | None, batch_size: int,
                 shuffle: bool, seed: int, valid: tuple[Tensor, Tensor, Tensor | None] | None = None):
        self.name = name
        self.data = (inputs, targets, lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.valid = valid

    def num_train_batches(self) -> int:
        return math.ceil(self.data[0].size(0) / self.batch_size)

    def train_batches(self, epoch: int, start: int) -> Iterator[tuple]:
        N = self.data[0].size(0)
        if self.shuffle:
            order = torch.randperm(N, generator=torch.Generator().manual_seed(self.seed + epoch))  # (N,)
        else:
            order = torch.arange(N)  # (N,)
        for index in range(start, self.num_train_batches()):
            rows = order[index * self.batch_size:(index + 1) * self.batch_size]
            yield _select(self.data, rows)

    def valid_batches(self) -> list[tuple] | None:
        if self.valid is None:
            return None
        rows = torch.arange(self.valid[0].size(0)).split(self.batch_size)
        return [_select(self.valid, chunk) for chunk in rows]

    def loss(self, model: torch.nn.Module, batch: tuple, state) -> TaskLoss:
        inputs, targets, lengths = batch
        outputs = model(inputs, lengths)  # (N, K)
        return TaskLoss(summed_sample_loss(self.name, outputs, targets), inputs.size(0), inputs.size(0), None)


def _select(data: tuple[Tensor, Tensor, Tensor | None], rows: Tensor) -> tuple:
    inputs, targets, lengths = data
    return inputs[rows], targets[rows], None if lengths is None else lengths[rows]


def fit_task(model: torch.nn.Module, task: ArrayTask, *, epochs: int, lr: float, optimizer: str, clip: float | None,
             seed: int, log: Callable[[str], None] | None = None) -> list[dict]:
    """Train ``model`` on ``task`` (on the device of its parameters, nothing written); returns each epoch's record."""
    config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, clip=clip, seed=seed)
    trainer = Trainer(model, task, config, dist=DistContext(device=next(model.parameters()).device), log=log)
    trainer.fit()
    return trainer.position.history
