"""Optimizers and learning-rate schedules, built from names so that a config file can choose them.

Optimizers: ``adam``, ``adamw`` and ``sgd`` (with optional momentum), all from ``torch.optim``, and ``ntasgd``:
AWD-LSTM's non-monotonically triggered averaged SGD (:mod:`rnnkit.train.ntasgd`), plain SGD until the
validation loss stops improving, then the running mean of the iterates is what is validated and saved.

Schedules, each a thin wrapper around a ``torch.optim.lr_scheduler`` class that says *when* it steps:

- ``constant``: the learning rate never changes.
- ``step``: Zaremba et al. (2014): keep ``lr`` for the first ``decay_after`` epochs, then multiply it by
  ``lr_decay`` after every further epoch (epoch ``e`` trains with ``lr * lr_decay ** max(0, e - decay_after)``).
- ``cosine``: cosine annealing from ``lr`` to 0 over every optimizer step of the run (needs a known length).
- ``plateau``: multiply by ``lr_decay`` whenever the validation loss stops improving for ``plateau_patience``
  epochs.

The clock of the epoch-based schedules (``step`` and ``cosine``): on ``steps`` they move with the optimizer steps
and the epochs; on ``time`` (the default when a time budget is given) with the run's progress

    p = max(elapsed / (budget - reserve), steps / total_steps)        (clamped to [0, 1], never going back)

where ``reserve`` is what the budget keeps for the final validation and checkpoint (:mod:`rnnkit.train.budget`)
and the second term counts only when ``--epochs`` is given too. Why: a schedule sized in steps from a speed
guessed before the run anneals only if the guess holds; a busy or slow machine cut a 60-minute cosine at a
learning rate still near its top. On the time clock cosine is ``lr * (1 + cos(pi p)) / 2`` and ``step`` trains
virtual epoch ``e = floor(p * epochs) + 1`` with ``lr * lr_decay ** max(0, e - decay_after)``: both reach their
end as the budget (or the epochs, whichever comes first) does. ``p`` is kept in the schedule's state, so a
resumed run (whose elapsed seconds the checkpoint keeps) goes on from it.

The schedule's state is plain numbers, so it is stored in the checkpoint's JSON.
"""

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch.optim import lr_scheduler

from rnnkit.checks import check_choice
from rnnkit.errors import InputError

from .ntasgd import NTASGD

OPTIMIZERS = ("adam", "adamw", "sgd", "ntasgd")
# AWD-LSTM's n: the trigger forgives this many latest validation losses.
NTASGD_NONMONO = 5
SCHEDULES = ("constant", "step", "cosine", "plateau")
SCHEDULE_CLOCKS = ("auto", "time", "steps")
EPOCH_BASED = ("step", "cosine")  # the schedules whose shape is laid over the run's length


def build_optimizer(
    name: str,
    parameters: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float | None = None,
    momentum: float = 0.0,
    nonmono: int = NTASGD_NONMONO,
) -> torch.optim.Optimizer:
    """Return the optimizer called ``name``; ``weight_decay=None`` keeps torch's default for it (0 for NT-ASGD).

    ``nonmono``: NT-ASGD's n (see :mod:`rnnkit.train.ntasgd`). NT-ASGD is plain SGD, so a momentum is refused
    rather than ignored."""
    decay = {} if weight_decay is None else {"weight_decay": weight_decay}
    # fused=True updates every parameter in one kernel: about 4x faster than the per-tensor loop on the CPU
    # for a large embedding (7 against 26 ms per step at 15k x 300), where the update is a large share of a step.
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, fused=True, **decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, fused=True, **decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, **decay)
    if name == "ntasgd":
        check_optimizer_settings(name, momentum)
        return NTASGD(parameters, lr=lr, nonmono=nonmono, **decay)
    raise InputError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def check_optimizer_settings(name: str, momentum: float) -> None:
    """InputError for a setting the optimizer ``name`` would ignore: NT-ASGD is plain SGD, without momentum.
    A config can call it up front, before a run directory is made."""
    if name == "ntasgd" and momentum:
        raise InputError(f"NT-ASGD takes no momentum (got --momentum {momentum:g}); drop --momentum or choose "
                         "--optimizer sgd")


@dataclass
class ScheduleSettings:
    """What a schedule needs to know; ``total_steps`` is None when the run's length is a time budget."""

    name: str = "constant"
    lr_decay: float = 0.5
    decay_after: int = 4
    plateau_patience: int = 0
    total_steps: int | None = None
    clock: str = "steps"
    epochs: int | None = None  # the time clock's step schedule spreads these epochs over the budget


def resolve_clock(schedule: str, clock: str, time_budget: float | None, epochs: int | None) -> str:
    """The clock an epoch-based schedule runs on: ``"time"`` or ``"steps"``. ``"auto"`` is ``"time"`` when a time
    budget is given and the schedule's length is known from it (cosine; ``step`` with ``--epochs`` too), else
    ``"steps"``; ``"time"`` without a budget, or for ``step`` without epochs, is refused (InputError)."""
    check_choice("schedule-clock", clock, SCHEDULE_CLOCKS)
    if clock == "auto":
        known = schedule == "cosine" or (schedule == "step" and epochs is not None)
        return "time" if time_budget is not None and known else "steps"
    if clock == "time" and time_budget is None:
        raise InputError("--schedule-clock time needs --time-budget (the time it anneals over); give one, or "
                         "--schedule-clock steps")
    if clock == "time" and schedule == "step" and epochs is None:
        raise InputError("--schedule-clock time spreads the step schedule's --epochs over the budget; give "
                         "--epochs, or --schedule-clock steps")
    return clock


class Schedule:
    """Steps a torch learning-rate scheduler at the right moments: after each optimizer step or each epoch.

    How the Trainer (:mod:`rnnkit.train.trainer`) uses it::

        schedule = Schedule(sgd, ScheduleSettings("step", lr_decay=0.5, decay_after=4))
        for epoch in range(13):
            for batch in batches:
                ...; sgd.step(); schedule.after_step()
            schedule.after_epoch(valid_loss)

    On the time clock, ``progress()`` gives the run's progress p (see the module docstring) whenever the
    schedule moves, i.e. after every step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, settings: ScheduleSettings,
                 progress: Callable[[], float] | None = None):
        self.settings = settings
        self.timed = settings.clock == "time" and settings.name in EPOCH_BASED
        if self.timed and progress is None:
            raise ValueError("a schedule on the time clock needs progress()")
        self._optimizer = optimizer
        self._progress_of = progress
        self.progress = 0.0
        if self.timed:
            self._scheduler = None
            self._base_lrs = [group.setdefault("initial_lr", group["lr"]) for group in optimizer.param_groups]
            self._apply()
        else:
            self._scheduler = _build_scheduler(optimizer, settings)

    def after_step(self) -> None:
        """Called after every optimizer step; the cosine schedule moves here, and every schedule on time."""
        if self.timed:
            self.progress = max(self.progress, min(1.0, max(0.0, self._progress_of())))
            self._apply()
        elif self.settings.name == "cosine":
            self._scheduler.step()

    def after_epoch(self, valid_loss: float | None) -> None:
        """Called once at the end of each epoch with its validation loss (None when there was none)."""
        if self.timed:
            return  # the progress moved with every step
        if self.settings.name == "step":
            self._scheduler.step()
        elif self.settings.name == "plateau" and valid_loss is not None:
            self._scheduler.step(valid_loss)

    def factor(self, progress: float) -> float:
        """The time clock's learning rate over the base one at ``progress`` p in [0, 1]."""
        settings = self.settings
        if settings.name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        epoch = min(math.floor(progress * settings.epochs), settings.epochs - 1) + 1  # virtual, 1-based
        return settings.lr_decay ** max(0, epoch - settings.decay_after)

    def _apply(self) -> None:
        factor = self.factor(self.progress)
        for group, base in zip(self._optimizer.param_groups, self._base_lrs):
            group["lr"] = base * factor

    def state_dict(self) -> dict:
        """The scheduler's counters (or the time clock's progress), all plain JSON values (floats may be
        infinite)."""
        if self.timed:
            return {"clock": "time", "progress": self.progress}
        return {} if self._scheduler is None else self._scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Go on from a checkpoint's state; one of the other clock (a resume that gave or dropped
        --time-budget) is not this schedule's: the time clock then starts from the run's progress now, the
        step clock from its beginning."""
        if self.timed:
            if state.get("clock") == "time":
                self.progress = float(state["progress"])
            self._apply()  # the next step moves it on, from the resumed run's elapsed time
        elif self._scheduler is not None and state.get("clock") != "time":
            self._scheduler.load_state_dict(state)


def _build_scheduler(optimizer: torch.optim.Optimizer, settings: ScheduleSettings):
    if settings.name == "constant":
        return None
    if settings.name == "step":
        # LambdaLR's counter k is the number of finished epochs, so epoch e = k + 1.
        decay, after = settings.lr_decay, settings.decay_after
        return lr_scheduler.LambdaLR(optimizer, lambda k: decay ** max(0, k + 1 - after))
    if settings.name == "cosine":
        if settings.total_steps is None:
            raise InputError("the cosine schedule needs the run's length; give --epochs, or --time-budget with "
                             "--schedule-clock time or auto")
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, settings.total_steps))
    if settings.name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=settings.lr_decay, patience=settings.plateau_patience
        )
    raise InputError(f"unknown schedule {settings.name!r}; choose one of {', '.join(SCHEDULES)}")
