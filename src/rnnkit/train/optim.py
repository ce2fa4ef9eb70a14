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

The schedule's state is plain numbers, so it is stored in the checkpoint's JSON.
"""

from dataclasses import dataclass
from typing import Iterable

import torch
from torch.optim import lr_scheduler

from rnnkit.errors import InputError

from .ntasgd import NTASGD

OPTIMIZERS = ("adam", "adamw", "sgd", "ntasgd")
# AWD-LSTM's n: the trigger forgives this many latest validation losses.
NTASGD_NONMONO = 5
SCHEDULES = ("constant", "step", "cosine", "plateau")


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


class Schedule:
    """Steps a torch learning-rate scheduler at the right moments: after each optimizer step or each epoch.

    How the Trainer (:mod:`rnnkit.train.trainer`) uses it::

        schedule = Schedule(sgd, ScheduleSettings("step", lr_decay=0.5, decay_after=4))
        for epoch in range(13):
            for batch in batches:
                ...; sgd.step(); schedule.after_step()
            schedule.after_epoch(valid_loss)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, settings: ScheduleSettings):
        self.settings = settings
        self._scheduler = _build_scheduler(optimizer, settings)

    def after_step(self) -> None:
        """Called after every optimizer step; only the cosine schedule moves here."""
        if self.settings.name == "cosine":
            self._scheduler.step()

    def after_epoch(self, valid_loss: float | None) -> None:
        """Called once at the end of each epoch with its validation loss (None when there was none)."""
        if self.settings.name == "step":
            self._scheduler.step()
        elif self.settings.name == "plateau" and valid_loss is not None:
            self._scheduler.step(valid_loss)

    def state_dict(self) -> dict:
        """The scheduler's counters, all plain JSON values (floats may be infinite)."""
        return {} if self._scheduler is None else self._scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self._scheduler is not None:
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
            raise InputError("the cosine schedule needs the run's length; give --epochs (with or without --time-budget)")
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, settings.total_steps))
    if settings.name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=settings.lr_decay, patience=settings.plateau_patience
        )
    raise InputError(f"unknown schedule {settings.name!r}; choose one of {', '.join(SCHEDULES)}")
