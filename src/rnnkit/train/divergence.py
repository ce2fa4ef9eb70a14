"""When a training run has diverged, and how its stop says so: what happened, the fix, and what is on disk.

A run diverges in one of two ways. Its loss (or a gradient norm, or a weight) stops being a finite number,
which the Trainer sees at the step where it happens. Or its loss stays finite but runs away: ``--lr 1e6`` on a
character model gives millions of nats per character, a model far worse than one that knows nothing. The second
is judged against the task's *baseline*, the loss of a guess that knows nothing (a uniform guess over C classes
scores ln C per target; see :class:`~rnnkit.train.task.Baseline`):

    runaway  when  the mean training loss  >  RUNAWAY_FACTOR * baseline + RUNAWAY_MARGIN   (3 b + 10)

over a whole epoch, or over the first ``RUNAWAY_WINDOW`` (100) steps of an epoch and every further hundred, so
that a long epoch (or a run shorter than one) is judged too. Why these numbers: an untrained model guesses
about uniformly, so a healthy run starts near the baseline and falls below it; a mean three times above it has
learnt to be confidently wrong. The margin of 10 (nats for cross-entropy) protects tasks with few classes,
whose baseline is small (ln 2 = 0.69): a binary classifier must average a probability of about e^-12 on the
right answer to cross 3 ln 2 + 10. A runaway run is stopped long before that matters: it sits orders of
magnitude above the line (3.5e6 against 22.5 for 65 characters).

The stop is one line (a :class:`Diverged`, which is an :class:`~rnnkit.errors.InputError`): what happened, the
fix (the setting that is not a finite number when that is the cause, else a lower ``--lr`` or harder clipping),
and what the run directory truly holds (:class:`SavedRun`). A checkpoint is *good* when its validation loss is
finite: only the checkpoints written at the end of an epoch are validated; a ``--save-every`` checkpoint
written mid-epoch is named as "not validated", because finite weights and finite training losses do not make
a model good (weights scaled up by a runaway update stay finite and can still score Infinity).

    >>> from rnnkit.train.task import uniform_baseline
    >>> runaway(3.5e6, "epoch 1", uniform_baseline(65, "characters"))
    'mean loss 3.5e+06 over epoch 1 is far above 4.17, the loss of a uniform guess over 65 characters'
    >>> runaway(4.0, "epoch 1", uniform_baseline(65, "characters")) is None
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import InputError

from .config import TrainConfig
from .position import Position
from .task import Baseline

RUNAWAY_FACTOR = 3.0
RUNAWAY_MARGIN = 10.0
RUNAWAY_WINDOW = 100

# A setting that is not a finite number is the cause whatever the learning rate; the example replaces it.
_FINITE_SETTINGS = {"lr": "1e-3", "clip": "1.0", "clip_value": "0.5", "weight_decay": "1e-6", "momentum": "0.9"}


class Diverged(InputError):
    """The Trainer's stop on divergence: one line, as every InputError; a caller that trains many models in
    turn (a benchmark) catches it to record the run as diverged and go on with the next."""


def runaway_threshold(baseline: Baseline) -> float:
    """The mean training loss above which a run has run away (module docstring)."""
    return RUNAWAY_FACTOR * baseline.loss + RUNAWAY_MARGIN


def runaway(mean_loss: float, span: str, baseline: Baseline | None) -> str | None:
    """What is wrong when ``mean_loss`` (the mean over ``span``, e.g. "epoch 1") ran away; None when it did not
    or the task has no baseline (a regression task that gives none is never judged)."""
    if baseline is None or mean_loss <= runaway_threshold(baseline):
        return None
    return (f"mean loss {mean_loss:.3g} over {span} is far above {baseline.loss:.3g}, "
            f"the loss of {baseline.description}")


def runaway_due(batch_index: int, batches_per_epoch: int) -> bool:
    """Whether the epoch's running mean is judged after batch ``batch_index`` (1-based) of the epoch."""
    return batch_index == batches_per_epoch or batch_index % RUNAWAY_WINDOW == 0


def span_name(epoch: int, batch_index: int, batches_per_epoch: int) -> str:
    """The steps an epoch's running mean covers: "epoch 2", or "the first 100 steps of epoch 2"."""
    if batch_index == batches_per_epoch:
        return f"epoch {epoch}"
    return f"the first {batch_index} step{'s' if batch_index != 1 else ''} of epoch {epoch}"


def remedy(config: TrainConfig) -> str:
    """The fix for a diverged run. A library user can build a :class:`TrainConfig` with a setting that is not a
    finite number (``clip=nan`` turns every gradient into NaN); then that setting is the cause, not ``--lr``."""
    for name, example in _FINITE_SETTINGS.items():
        value = getattr(config, name)
        if isinstance(value, float) and not math.isfinite(value):
            flag = name.replace("_", "-")
            return f"--{flag} is {value}, not a finite number; give a finite --{flag} such as {example}"
    advice = f"lower --lr (now {config.lr:g})"
    if config.clip is None:
        return f"{advice} or clip gradients (--clip 1.0)"
    if config.clip > 1.0:
        return f"{advice} or clip gradients harder (--clip 1.0; now {config.clip:g})"
    return advice


@dataclass
class SavedRun:
    """What a run directory holds of this run, so that a stop on divergence says it truly.

    ``old_run``: the directory held an earlier run when the Trainer began, which this run replaces
    (``RunDirectory.create(overwrite=True)`` keeps it whole until this run has an end-of-epoch checkpoint or
    ends normally, and a failure before that leaves it as it was); ``replaced_at_step``: the step at which this
    run replaced it; ``latest_step``: the step of this run's latest checkpoint (None: none written);
    ``latest_valid_loss``: its validation loss, None when it was written mid-epoch and so not validated.
    """

    path: Path | None
    old_run: bool = False
    replaced_at_step: int | None = None
    latest_step: int | None = None
    latest_valid_loss: float | None = None

    def saved(self, step: int, valid_loss: float | None) -> None:
        """Record a checkpoint of ``step``, validated with ``valid_loss`` (None: not validated)."""
        self.latest_step, self.latest_valid_loss = step, valid_loss

    def describe(self, position: Position) -> str:
        """One clause: which checkpoints of this run are on disk and which of them is good; the old run's fate."""
        if self.path is None:
            return "nothing was saved (no run directory)"
        if self.old_run and self.replaced_at_step is None:
            if self.latest_step is None:
                return f"no checkpoint of this run was written; the old run in {self.path} is intact"
            return (f"this run's checkpoints (none validated) were removed; the old run in {self.path} is intact "
                    "(an --overwrite replaces it only with an end-of-epoch checkpoint)")
        if self.latest_step is None:
            return "no checkpoint was written"
        replaced = f"the old run in {self.path} was replaced at step {self.replaced_at_step}; " if self.old_run else ""
        latest = self._checkpoint(self.latest_step, self.latest_valid_loss, position)
        best = _best_record(position)
        if best is None:
            return (f"{replaced}{self.path / 'latest.json'} ({latest}) is intact; no checkpoint of this run has a "
                    "finite validation loss yet")
        best_text = self._checkpoint(best["step"], best["valid_loss"], position)
        if best["step"] == self.latest_step:
            return f"{replaced}{self.path / 'best.json'} and latest.json ({best_text}) are intact"
        return f"{replaced}{self.path / 'best.json'} ({best_text}) and latest.json ({latest}) are intact"

    @staticmethod
    def _checkpoint(step: int, valid_loss: float | None, position: Position) -> str:
        if valid_loss is None:
            return f"step {step}, not validated"
        epoch = next((record["epoch"] for record in position.history if record.get("step") == step), None)
        where = f"epoch {epoch}, step {step}" if epoch is not None else f"step {step}"
        return f"{where}, validation loss {valid_loss:.4g}"


def _best_record(position: Position) -> dict | None:
    """The history record of the best checkpoint (best.json), if it has a finite validation loss."""
    if position.best_epoch is None:
        return None
    for record in position.history:
        if record.get("epoch") == position.best_epoch and math.isfinite(record.get("valid_loss", math.nan)):
            return record
    return None
