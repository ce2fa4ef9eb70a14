"""Which finished epoch is the best so far: the one with the task's chosen validation score at its best
(``Task.selection``: a score's name and ``"max"`` or ``"min"``), or without a choice the lowest validation loss.
The best checkpoint (``best.json``), early stopping and the report's ``best_epoch`` all follow it.

A score that is not finite (or is missing) never becomes best; of equal scores the first epoch stays best.
What is best so far is kept in the run's :class:`~rnnkit.train.position.Position`, so a resumed run goes on
from it.
"""

import math

from .position import Position


class BestEpoch:
    """The best-epoch rule of one task: ``selection`` is its ``Task.selection`` (None: the validation loss)."""

    def __init__(self, selection: tuple[str, str] | None):
        self.selection = selection

    def score(self, valid_loss: float | None, record: dict) -> float | None:
        """The number "best" maximises: the task's chosen validation score, else minus the validation loss;
        None when there is none or it is not finite (such a checkpoint never becomes best)."""
        if self.selection is None:
            return None if valid_loss is None else -valid_loss
        name, direction = self.selection
        value = record.get(f"valid_{name}")
        if value is None or not math.isfinite(value):
            return None
        return value if direction == "max" else -value

    def observe(self, position: Position, valid_loss: float | None, record: dict, partial: bool = False) -> bool:
        """Keep in ``position`` what epoch ``position.epoch + 1``, just validated (``record``), changes: the best
        score and its epoch, the epochs without improvement, the lowest validation loss; whether it is the best.

        ``partial``: the record is of a partial epoch, validated when a stop came in its middle (its
        ``record["epoch"]``, a fraction, becomes the best epoch, marked ``best_partial``); it competes for the
        best but is no epoch for patience."""
        score = self.score(valid_loss, record)
        improved = score is not None and (position.best_score is None or score > position.best_score)
        if valid_loss is not None and (position.best_valid_loss is None or valid_loss < position.best_valid_loss):
            position.best_valid_loss = valid_loss
        if improved:
            position.best_score = score
            position.best_epoch = record["epoch"] if partial else position.epoch + 1
            position.best_partial = partial
            if not partial:
                position.epochs_without_improvement = 0
        elif score is not None and not partial:
            position.epochs_without_improvement += 1
        return improved

    def reached(self, valid_loss: float | None, record: dict, target: float) -> bool:
        """Whether the epoch just validated (``record``) reached ``target`` (``TrainConfig.stop_at``): its score
        at or above it for a score the task maximises, at or below it for a loss or a score it minimises."""
        score = self.score(valid_loss, record)
        maximised = self.selection is not None and self.selection[1] == "max"
        return score is not None and score >= (target if maximised else -target)

    def report(self, position: Position) -> dict:
        """The best epoch so far and its score, as ``{"best_epoch": 3, "best_valid_accuracy": 0.91}``; empty
        without a selection or a score."""
        if self.selection is None or position.best_epoch is None:
            return {}
        name, direction = self.selection
        return {"best_epoch": position.best_epoch,
                f"best_valid_{name}": position.best_score if direction == "max" else -position.best_score}

    def epoch_in_history(self, position: Position) -> int | None:
        """The first finished epoch whose score equals the best (checkpoints of older versions did not record
        it)."""
        for record in position.history:
            if self.score(record.get("valid_loss"), record) == position.best_score:
                return record["epoch"]
        return None
