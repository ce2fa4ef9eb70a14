"""How to train: :class:`TrainConfig`, saved inside every checkpoint.

    >>> TrainConfig(epochs=3, lr=0.01).optimizer
    'adam'
    >>> TrainConfig(epochs=None)
    Traceback (most recent call last):
    ...
    rnnkit.errors.InputError: the run has no end; give --epochs or --time-budget
"""

from dataclasses import dataclass

from rnnkit.checks import check_choice, check_finite, check_positive, check_seed
from rnnkit.errors import InputError

from .optim import OPTIMIZERS, SCHEDULES, check_optimizer_settings, resolve_clock

LOSS_OVER_TIME = ("mean", "sum")


@dataclass
class TrainConfig:
    """How to train; saved inside every checkpoint.

    Args:
        epochs: passes over the training batches; None = until the time budget (or max_steps) ends the run.
        time_budget: seconds of wall time for the whole run (across resumes), its final validation and
            checkpoint included: training stops early enough for them to end within it (see
            :mod:`rnnkit.train.budget`).
        max_steps: stop after this many optimizer steps in total (a hook for tests and short trials).
        lr: learning rate. optimizer: ``adam``, ``adamw``, ``sgd`` or ``ntasgd`` (AWD-LSTM's non-monotonically
            triggered averaged SGD). momentum: SGD's momentum. nonmono: NT-ASGD's n, the epochs the validation
            loss may fail to beat the best before them before averaging begins.
        weight_decay: None keeps the optimizer's default (0 for Adam and SGD, 0.01 for AdamW).
        schedule: ``constant``, ``step`` (Zaremba), ``cosine`` or ``plateau`` (see :mod:`rnnkit.train.optim`).
        schedule_clock: what ``step`` and ``cosine`` move with: ``steps`` (optimizer steps and epochs), ``time``
            (the time budget's progress, so the schedule anneals inside the budget whatever the speed), or
            ``auto``: ``time`` when a time budget gives the schedule its length, else ``steps``
            (:func:`rnnkit.train.optim.resolve_clock`).
        lr_decay: the factor of ``step`` and ``plateau``. decay_after: epochs before ``step`` starts decaying.
        plateau_patience: epochs without improvement before ``plateau`` decays.
        clip: maximum global gradient norm (None: no clipping). clip_value: clamp each gradient element.
        loss_over_time: ``mean`` averages the loss over every target token; ``sum`` sums it over the time
            steps of each sequence and averages over sequences (the seeds' "loss summed over time").
        patience: early stopping after this many epochs without a better validation loss (None: never).
        stop_at: stop at the end of the first epoch whose score reaches this: the score that picks the best
            epoch (the task's ``selection``: at or above it for a score it maximises, at or below for one it
            minimises; without a selection, the validation loss at or below it). None: never.
        save_every: also checkpoint every this many steps (None: at the end of each epoch and when stopping).
        log_gradients: every this many steps, record ‖∂L/∂h_t‖ for each step t of the current batch in
            ``gradients.jsonl`` of the run directory (tasks with a ``gradient_flow`` method; None: never).
        seed: seeds the model's initialisation, dropout and data order.
    """

    epochs: int | None = 10
    time_budget: float | None = None
    max_steps: int | None = None
    lr: float = 2e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    nonmono: int = 5
    weight_decay: float | None = None
    schedule: str = "constant"
    schedule_clock: str = "auto"
    lr_decay: float = 0.5
    decay_after: int = 4
    plateau_patience: int = 0
    clip: float | None = 5.0
    clip_value: float | None = None
    loss_over_time: str = "mean"
    patience: int | None = None
    stop_at: float | None = None
    save_every: int | None = None
    log_gradients: int | None = None
    seed: int = 1234

    def __post_init__(self):
        check_positive("epochs", self.epochs, integer=True)
        check_positive("time-budget", self.time_budget)
        check_positive("max-steps", self.max_steps, integer=True)
        check_positive("lr", self.lr)
        check_positive("clip", self.clip)
        check_positive("clip-value", self.clip_value)
        check_positive("patience", self.patience, integer=True)
        check_positive("save-every", self.save_every, integer=True)
        check_positive("log-gradients", self.log_gradients, integer=True)
        check_positive("nonmono", self.nonmono, integer=True)
        # Library users build TrainConfig directly: every number is checked here as the flags check it.
        for flag, value in (("momentum", self.momentum), ("weight-decay", self.weight_decay),
                            ("lr-decay", self.lr_decay), ("stop-at", self.stop_at)):
            check_finite(flag, value)
        for flag, value in (("decay-after", self.decay_after), ("plateau-patience", self.plateau_patience)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"--{flag} must be a whole number, got {value!r}")
        check_seed("seed", self.seed)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        resolve_clock(self.schedule, self.schedule_clock, self.time_budget, self.epochs)  # refused up front
        check_choice("loss-over-time", self.loss_over_time, LOSS_OVER_TIME)
        if not 0 < self.lr_decay <= 1:
            raise InputError(f"--lr-decay must be in (0, 1], got {self.lr_decay}; e.g. --lr-decay 0.5")
        if not 0 <= self.momentum < 1:
            raise InputError(f"--momentum must be in [0, 1), got {self.momentum}; e.g. --momentum 0.9")
        check_optimizer_settings(self.optimizer, self.momentum)  # refused here, before a run directory is made
        if self.weight_decay is not None and self.weight_decay < 0:
            raise InputError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.decay_after < 0 or self.plateau_patience < 0:
            raise InputError("--decay-after and the plateau patience must be >= 0")
        if self.epochs is None and self.time_budget is None and self.max_steps is None:
            raise InputError("the run has no end; give --epochs or --time-budget")
