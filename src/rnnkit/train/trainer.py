"""One training loop for every task: (truncated) BPTT, clipping, schedules, validation, checkpoints, DDP.

A task (language model, classifier, tagger, ...) tells the :class:`Trainer` three things through the small
:class:`Task` interface: which batches to train on, which to validate on, and the loss of one batch summed
over its target tokens (padding excluded). The Trainer does the rest, one step in a fixed order:

    1. forward       the task's loss, summed over this rank's target tokens
    2. totals        token / sequence counts and the loss summed over ranks (a no-op in one process)
    3. check         a non-finite loss stops training with a one-line InputError; no checkpoint is written
    4. backward      of the loss averaged over tokens (or summed over time, averaged over sequences)
    5. clip          by value, then by global norm
    6. update        optimizer step, then the per-step schedule
    7. carry         the hidden state, detached, into the next batch (truncated BPTT over streams)

Full BPTT over padded batches is the same loop with ``Task.carries_state = False``: every batch starts from
the model's initial state and the gradient flows through every step of every sequence.
"""

import math
import random
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Protocol

import numpy as np
import torch
from tqdm import tqdm

from rnnkit.errors import InputError
from rnnkit.nn import detach_state

from .checkpoint import Checkpoint, RunDirectory, join_tensors, split_tensors
from .distributed import DistContext
from .optim import OPTIMIZERS, SCHEDULES, Schedule, ScheduleSettings, build_optimizer

LOSS_OVER_TIME = ("mean", "sum")
GRADIENTS_FILE = "gradients.jsonl"


@dataclass
class TrainConfig:
    """How to train; saved inside every checkpoint.

    Args:
        epochs: passes over the training batches; None = until the time budget (or max_steps) ends the run.
        time_budget: seconds of wall time for the whole run (across resumes); training stops at the first
            step boundary past it, then validates once more.
        max_steps: stop after this many optimizer steps in total (a hook for tests and short trials).
        lr: learning rate. optimizer: ``adam``, ``adamw`` or ``sgd``. momentum: SGD's momentum.
        weight_decay: None keeps the optimizer's default (0 for Adam and SGD, 0.01 for AdamW).
        schedule: ``constant``, ``step`` (Zaremba), ``cosine`` or ``plateau`` (see :mod:`rnnkit.train.optim`).
        lr_decay: the factor of ``step`` and ``plateau``. decay_after: epochs before ``step`` starts decaying.
        plateau_patience: epochs without improvement before ``plateau`` decays.
        clip: maximum global gradient norm (None: no clipping). clip_value: clamp each gradient element.
        loss_over_time: ``mean`` averages the loss over every target token; ``sum`` sums it over the time
            steps of each sequence and averages over sequences (the seeds' "loss summed over time").
        patience: early stopping after this many epochs without a better validation loss (None: never).
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
    weight_decay: float | None = None
    schedule: str = "constant"
    lr_decay: float = 0.5
    decay_after: int = 4
    plateau_patience: int = 0
    clip: float | None = 5.0
    clip_value: float | None = None
    loss_over_time: str = "mean"
    patience: int | None = None
    save_every: int | None = None
    log_gradients: int | None = None
    seed: int = 1234

    def __post_init__(self):
        _check_positive("epochs", self.epochs, integer=True)
        _check_positive("time-budget", self.time_budget)
        _check_positive("max-steps", self.max_steps, integer=True)
        _check_positive("lr", self.lr)
        _check_positive("clip", self.clip)
        _check_positive("clip-value", self.clip_value)
        _check_positive("patience", self.patience, integer=True)
        _check_positive("save-every", self.save_every, integer=True)
        _check_positive("log-gradients", self.log_gradients, integer=True)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("loss-over-time", self.loss_over_time, LOSS_OVER_TIME)
        if not 0 < self.lr_decay <= 1:
            raise InputError(f"--lr-decay must be in (0, 1], got {self.lr_decay}; e.g. --lr-decay 0.5")
        if not 0 <= self.momentum < 1:
            raise InputError(f"--momentum must be in [0, 1), got {self.momentum}; e.g. --momentum 0.9")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise InputError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.decay_after < 0 or self.plateau_patience < 0:
            raise InputError("--decay-after and the plateau patience must be >= 0")
        if self.epochs is None and self.time_budget is None and self.max_steps is None:
            raise InputError("the run has no end; give --epochs or --time-budget")


class TaskLoss(NamedTuple):
    """What a task's loss returns for one batch.

    loss_sum: scalar tensor, the loss summed over every target token of the batch (padding excluded).
    n_tokens: the number of those target tokens. n_sequences: the number of sequences (batch rows).
    state: the hidden state to carry into the next batch, or None.
    """

    loss_sum: torch.Tensor
    n_tokens: int
    n_sequences: int
    state: Any


class Task(Protocol):
    """The part of a training job that depends on the task; the Trainer drives everything else.

    In a distributed run the task gives each rank only its own rows (a contiguous block of the global
    batch, in rank order), so that the carried state of all ranks concatenated along dim 1 is the global one.
    """

    carries_state: bool
    """True for truncated BPTT over streams: each batch continues the previous one's sequences."""

    def num_train_batches(self) -> int:
        """Batches in one epoch."""

    def train_batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The training batches of ``epoch`` (0-based), from batch index ``start`` on (to resume mid-epoch)."""

    def valid_batches(self) -> Iterable[Any] | None:
        """The validation batches, or None when the task has no validation data."""

    def loss(self, model: torch.nn.Module, batch: Any, state: Any) -> TaskLoss:
        """The loss of ``batch`` under ``model`` starting from ``state`` (None: the model's initial state)."""

    def metrics(self, loss: float) -> dict[str, float]:
        """Task-specific figures derived from a mean loss per token, e.g. perplexity, bits per character."""

    # Optional: a task that scores its validation data with more than the loss (accuracy, span F1) defines
    #
    #     def score_validation(self, model) -> dict[str, float]     # e.g. {"accuracy": 0.93}, model in eval mode
    #     selection: tuple[str, str] = ("accuracy", "max")          # which score picks the best checkpoint
    #
    # The scores join each epoch's record as ``valid_<name>``; ``selection`` replaces the validation loss as
    # the judge of "best" (best.json, early stopping, the plateau schedule still follows the loss).
    #
    # Optional, for ``TrainConfig.log_gradients``: the gradient's flow back through time on one batch,
    #
    #     def gradient_flow(self, model, batch, state) -> dict       # e.g. {"hidden": [‖∂L/∂h_t‖ for t = 1..L]}
    #
    # Optional: what ``TaskLoss.n_tokens`` counts, for the progress lines' rate (default "tok": target tokens):
    #
    #     target_unit: str = "texts"                                 # a classifier has one target per text


@dataclass
class Position:
    """Where training stands; saved in checkpoints so that a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    epoch_loss_sum: float = 0.0
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    total_tokens: int = 0
    total_step_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    best_valid_loss: float | None = None
    best_score: float | None = None
    epochs_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators: same seed, same initialisation and dropout."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``model`` on ``task`` as ``config`` says, writing checkpoints and metrics to ``run_dir``.

    Args:
        model: the unwrapped model; it is moved to the context's device and, when distributed, wrapped in DDP.
        task: supplies batches, the loss and task metrics (see :class:`Task`).
        config: a :class:`TrainConfig`.
        run_dir: where checkpoints and ``metrics.jsonl`` go (None: nothing is written).
        run_info: what the task stores beside the trainer's state in each checkpoint:
            ``{"task": name, "configs": {...}, ...}``; the Trainer adds ``configs["train"]``.
        dist: the distributed context (default: one process on the CPU).
        progress_bar: show a tqdm bar (rank 0 only).
        log: receives one line per finished epoch (rank 0 only); None is silent.
        on_step: called as ``on_step(step, loss)`` after every step with the mean loss per token.

    Example::

        seed_everything(1)
        trainer = Trainer(model, task, TrainConfig(epochs=3), run_dir=RunDirectory.create("runs/x"))
        report = trainer.fit()      # {"valid_loss": ..., "stop_reason": "epochs", ...}
    """

    def __init__(
        self,
        model: torch.nn.Module,
        task: Task,
        config: TrainConfig,
        *,
        run_dir: RunDirectory | None = None,
        run_info: dict | None = None,
        dist: DistContext | None = None,
        progress_bar: bool = False,
        log: Callable[[str], None] | None = None,
        on_step: Callable[[int, float], None] | None = None,
    ):
        self.dist = dist or DistContext()
        self.model = model.to(self.dist.device)
        self.network = self.dist.wrap(self.model)
        self.task = task
        self.config = config
        self.run_dir = run_dir
        self.run_info = run_info or {}
        self.log = log if self.dist.is_main else None
        self.on_step = on_step
        if self.dist.rank > 0:
            # Rank 0 keeps the seeded stream (a 1-process run's); the others draw their own dropout masks.
            torch.manual_seed(config.seed + self.dist.rank)
        self.optimizer = build_optimizer(
            config.optimizer, self.model.parameters(), config.lr, config.weight_decay, config.momentum
        )
        self.batches_per_epoch = task.num_train_batches()
        total_steps = config.epochs * self.batches_per_epoch if config.epochs is not None else None
        self.schedule = Schedule(
            self.optimizer,
            ScheduleSettings(config.schedule, config.lr_decay, config.decay_after, config.plateau_patience, total_steps),
        )
        self.position = Position()
        self.carried_state = None
        self._target_unit = getattr(task, "target_unit", "tok")
        self._progress = _ProgressBar(progress_bar and self.dist.is_main, self._target_unit)
        self._signal_name: str | None = None
        self._session_start = time.monotonic()
        self._elapsed_before_session = 0.0
        self._checkpoint_written = False

    # ----------------------------------------------------------------------------------------- resume

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint``: weights, optimizer, schedule, position, carried state, RNG states."""
        state = checkpoint.meta["trainer"]
        checkpoint.load_weights(self.model)
        optimizer_state = join_tensors(state["optimizer"], checkpoint.tensors)
        # JSON turned the optimizer's integer parameter ids into strings; torch matches them as ints.
        optimizer_state["state"] = {int(key): value for key, value in optimizer_state["state"].items()}
        self.optimizer.load_state_dict(optimizer_state)
        self.schedule.load_state_dict(state["schedule"])
        self.position = Position(**state["position"])
        self._elapsed_before_session = self.position.elapsed_seconds
        carried = join_tensors(state["carry"], checkpoint.tensors)
        self.carried_state = None if carried is None else _map_state(
            carried, lambda full: self.dist.local_rows(full).to(self.dist.device)
        )
        _restore_rng(join_tensors(state["rng"], checkpoint.tensors), self.dist)
        self._checkpoint_written = True
        if self.run_dir is not None and self.dist.is_main:
            self.run_dir.rewrite_metrics(self.position.history)

    # ----------------------------------------------------------------------------------------- training

    def fit(self) -> dict:
        """Train until the epochs, the time budget, max_steps, early stopping or a signal ends the run.

        Returns the final report: the last epoch's metrics (or those of the partial epoch at a mid-epoch
        stop), ``stop_reason``, ``best_valid_loss``, ``steps`` and overall ``tokens_per_second``.
        """
        self._session_start = time.monotonic()
        try:
            with self._stop_on_signals():
                reason = self._limit_reached()
                while reason is None:
                    reason = self._train_epoch()
                    if self.position.batch_index == self.batches_per_epoch:
                        reason = self._finish_epoch() or reason
                    else:
                        self._save_checkpoint(best=False)
                    reason = reason or self._limit_reached()
        finally:
            self._progress.close()
        return self._final_report(reason)

    def _train_epoch(self) -> str | None:
        """Run the epoch's remaining batches; return why it stopped early, or None when it ran to the end."""
        position = self.position
        if position.batch_index == 0:
            self.carried_state = None  # every epoch reads the streams from their beginning again
        self._progress.start_epoch(position.epoch + 1, self.batches_per_epoch, position.batch_index)
        step_start = time.perf_counter()
        for batch in self.task.train_batches(position.epoch, position.batch_index):
            loss, tokens, stop_reason = self._train_step(batch)
            step_end = time.perf_counter()
            position.epoch_seconds += step_end - step_start
            position.total_step_seconds += step_end - step_start
            position.total_tokens += tokens
            self._progress.update(loss, tokens / max(step_end - step_start, 1e-9))
            if self.on_step is not None:
                self.on_step(position.step, loss)
            if self.config.save_every and position.step % self.config.save_every == 0:
                self._save_checkpoint(best=False)
            if stop_reason is not None:
                return stop_reason
            step_start = time.perf_counter()
        return None

    def _train_step(self, batch) -> tuple[float, int, str | None]:
        """One optimizer step in the fixed order of the module docstring; returns (mean loss, tokens, stop)."""
        config, position = self.config, self.position
        self.network.train()
        batch = _to_device(batch, self.dist.device)

        state = self.carried_state if self.task.carries_state else None
        if config.log_gradients and (position.step + 1) % config.log_gradients == 0:
            self._log_gradient_flow(batch, state)

        # 1. forward: the loss summed over this rank's target tokens
        out = self.task.loss(self.network, batch, state)

        # 2. totals over ranks, with every rank's wish to stop, so that all ranks take the same decision
        stop_wishes = self._stop_wishes(position.step + 1)
        loss_sum, tokens, sequences, *stop_votes = self.dist.sum(
            [out.loss_sum.item(), out.n_tokens, out.n_sequences, *stop_wishes.values()]
        )
        tokens = int(tokens)

        # 3. a non-finite loss ends the run before it can reach the weights or a checkpoint
        if not math.isfinite(loss_sum):
            raise self._diverged(f"the training loss became {loss_sum}", position.step + 1)

        # 4. backward; DDP averages gradients over ranks, so the world size turns that average into a sum
        denominator = tokens if config.loss_over_time == "mean" else sequences
        self.optimizer.zero_grad(set_to_none=True)
        (out.loss_sum * (self.dist.world_size / denominator)).backward()

        # 5. clip: each element first, then the global norm
        if config.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), config.clip_value)
        if config.clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.clip)
            if not torch.isfinite(norm):
                raise self._diverged(f"the gradient norm became {norm.item()}", position.step + 1)

        # 6. update
        self.optimizer.step()
        self.schedule.after_step()

        # 7. carry the state into the next batch, cut from this batch's graph: truncated BPTT
        self.carried_state = detach_state(out.state) if self.task.carries_state else None

        position.step += 1
        position.batch_index += 1
        position.epoch_loss_sum += loss_sum
        position.epoch_tokens += tokens
        reason = next((name for name, votes in zip(stop_wishes, stop_votes) if votes > 0), None)
        return loss_sum / tokens, tokens, reason

    def _log_gradient_flow(self, batch, state) -> None:
        """Append the task's per-step gradient norms on ``batch`` to gradients.jsonl (rank 0; weights unchanged)."""
        flow = getattr(self.task, "gradient_flow", None)
        if flow is None or not self.dist.is_main or self.run_dir is None:
            return
        record = {"step": self.position.step + 1, "epoch": self.position.epoch + 1, **flow(self.model, batch, state)}
        self.run_dir.append_record(GRADIENTS_FILE, record)

    def _stop_wishes(self, next_step: int) -> dict[str, float]:
        config = self.config
        return {
            "max_steps": float(config.max_steps is not None and next_step >= config.max_steps),
            "time_budget": float(config.time_budget is not None and self._elapsed() >= config.time_budget),
            "interrupted": float(self._signal_name is not None),
        }

    def _limit_reached(self) -> str | None:
        """A reason to stop that holds before any further step (the same on every rank)."""
        config, position = self.config, self.position
        if config.epochs is not None and position.epoch >= config.epochs:
            return "epochs"
        if config.max_steps is not None and position.step >= config.max_steps:
            return "max_steps"
        if config.time_budget is not None:
            # Clocks differ between ranks: one rank stopping alone would leave the others waiting forever.
            votes = self.dist.sum([float(self._elapsed() >= config.time_budget)])[0]
            if votes > 0:
                return "time_budget"
        return None

    def _finish_epoch(self) -> str | None:
        """Validate, step the schedule, checkpoint and log; return "early_stopping" when patience ran out."""
        position = self.position
        valid_loss = self.validate()
        record = self._metrics_record(valid_loss, epoch=position.epoch + 1)
        score = self._selection_score(valid_loss, record)
        improved = score is not None and (position.best_score is None or score > position.best_score)
        if valid_loss is not None and (position.best_valid_loss is None or valid_loss < position.best_valid_loss):
            position.best_valid_loss = valid_loss
        if improved:
            position.best_score = score
            position.epochs_without_improvement = 0
        elif score is not None:
            position.epochs_without_improvement += 1
        self.schedule.after_epoch(valid_loss)
        position.epoch += 1
        position.batch_index = 0
        position.epoch_loss_sum, position.epoch_tokens, position.epoch_seconds = 0.0, 0, 0.0
        position.history.append(record)
        # Checkpoint before the metrics line: a crash in between is repaired on resume from the history.
        self._save_checkpoint(best=improved)
        self._write_metrics(record)
        if self.config.patience is not None and position.epochs_without_improvement >= self.config.patience:
            return "early_stopping"
        return None

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean validation loss per token over all ranks, or None when the task has no validation data."""
        batches = self.task.valid_batches()
        if batches is None:
            return None
        self.model.eval()
        loss_sum, tokens, state = 0.0, 0, None
        for batch in batches:
            out = self.task.loss(self.model, _to_device(batch, self.dist.device), state)
            loss_sum += out.loss_sum.item()
            tokens += out.n_tokens
            state = out.state if self.task.carries_state else None
        self.model.train()
        loss_sum, tokens = self.dist.sum([loss_sum, tokens])
        if tokens == 0:
            return None
        valid_loss = loss_sum / tokens
        if not math.isfinite(valid_loss):
            raise self._diverged(f"the validation loss became {valid_loss}", self.position.step)
        return valid_loss

    def _selection_score(self, valid_loss: float | None, record: dict) -> float | None:
        """The number "best" maximises: the task's chosen validation score, else minus the validation loss."""
        selection = getattr(self.task, "selection", None)
        if selection is None:
            return None if valid_loss is None else -valid_loss
        name, direction = selection
        value = record.get(f"valid_{name}")
        if value is None:
            return None
        return value if direction == "max" else -value

    # ----------------------------------------------------------------------------------------- reporting

    def _metrics_record(self, valid_loss: float | None, epoch: float) -> dict:
        position = self.position
        record: dict = {"epoch": epoch, "step": position.step}
        if position.epoch_tokens:
            train_loss = position.epoch_loss_sum / position.epoch_tokens
            record["train_loss"] = train_loss
            record.update({f"train_{name}": value for name, value in self.task.metrics(train_loss).items()})
        if valid_loss is not None:
            record["valid_loss"] = valid_loss
            record.update({f"valid_{name}": value for name, value in self.task.metrics(valid_loss).items()})
            record.update({f"valid_{name}": value for name, value in self._validation_scores().items()})
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["tokens_per_second"] = position.epoch_tokens / position.epoch_seconds if position.epoch_seconds else 0.0
        record["elapsed_seconds"] = self._elapsed()
        return record

    @torch.no_grad()
    def _validation_scores(self) -> dict[str, float]:
        """The task's own validation scores; every rank scores the whole validation set, so all decide alike."""
        score = getattr(self.task, "score_validation", None)
        if score is None:
            return {}
        self.model.eval()
        try:
            return score(self.model)
        finally:
            self.model.train()

    def _final_report(self, reason: str | None) -> dict:
        position = self.position
        if position.batch_index > 0:
            record = self._metrics_record(self.validate(), epoch=position.epoch + position.batch_index / self.batches_per_epoch)
            record["partial_epoch"] = True
            self._write_metrics(record)
        elif position.history:
            record = dict(position.history[-1])
        else:
            record = self._metrics_record(self.validate(), epoch=0)
        record.update(
            stop_reason=reason,
            steps=position.step,
            best_valid_loss=position.best_valid_loss,
            tokens_per_second=position.total_tokens / position.total_step_seconds if position.total_step_seconds else 0.0,
        )
        if self.run_dir is not None:
            record["run_dir"] = str(self.run_dir.path)
        return record

    def _write_metrics(self, record: dict) -> None:
        if self.run_dir is not None and self.dist.is_main:
            self.run_dir.append_metrics(record)
        if self.log is not None:
            self.log(_format_record(record, self.config.epochs, self._target_unit))

    def _diverged(self, what: str, step: int) -> InputError:
        if self._checkpoint_written and self.run_dir is not None:
            kept = f"the last good checkpoint in {self.run_dir.path} is intact"
        else:
            kept = "no checkpoint was written"
        return InputError(
            f"{what} at step {step} (epoch {self.position.epoch + 1}); lower --lr (now {self.config.lr:g}) "
            f"or clip gradients (--clip 1.0); {kept}"
        )

    # ----------------------------------------------------------------------------------------- checkpoints

    def _save_checkpoint(self, best: bool) -> None:
        """Write a checkpoint of everything needed to continue exactly (only rank 0 writes)."""
        if self.run_dir is None:
            return
        carried = None if self.carried_state is None else _map_state(self.carried_state, self.dist.gather_rows)
        carry_json, carry_tensors = split_tensors(carried, "carry")
        rng_json, rng_tensors = split_tensors(_capture_rng(self.dist), "rng")
        # Every rank checks (their weights are equal), so that all of them stop together.
        if not all(torch.isfinite(parameter).all() for parameter in self.model.parameters()):
            raise self._diverged("a weight became non-finite", self.position.step)
        if not self.dist.is_main:
            return
        self.position.elapsed_seconds = self._elapsed()
        optimizer_json, optimizer_tensors = split_tensors(self.optimizer.state_dict(), "optimizer")
        meta = {**self.run_info, "configs": {**self.run_info.get("configs", {}), "train": asdict(self.config)}}
        meta["trainer"] = {
            "position": asdict(self.position),
            "optimizer": optimizer_json,
            "schedule": self.schedule.state_dict(),
            "carry": carry_json,
            "rng": rng_json,
            "world_size": self.dist.world_size,
        }
        self.run_dir.save(self.model, {**optimizer_tensors, **carry_tensors, **rng_tensors}, meta, best=best)
        self._checkpoint_written = True

    # ----------------------------------------------------------------------------------------- helpers

    def _elapsed(self) -> float:
        return self._elapsed_before_session + time.monotonic() - self._session_start

    @contextmanager
    def _stop_on_signals(self):
        """Turn the first SIGINT / SIGTERM into a clean stop (checkpoint, then return); a second one kills."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(number, frame):
            self._signal_name = signal.Signals(number).name
            signal.signal(number, signal.SIG_DFL if number == signal.SIGTERM else signal.default_int_handler)

        previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


class _ProgressBar:
    """A tqdm bar per epoch showing loss and tokens/s (tqdm adds the ETA); silent when disabled."""

    def __init__(self, enabled: bool, unit: str = "tok"):
        self.enabled = enabled
        self.unit = unit
        self._bar: tqdm | None = None
        self._smoothed_rate: float | None = None

    def start_epoch(self, epoch: int, total: int, initial: int) -> None:
        self.close()
        if self.enabled:
            self._bar = tqdm(total=total, initial=initial, desc=f"epoch {epoch}", unit="batch",
                             leave=False, dynamic_ncols=True, file=sys.stderr)

    def update(self, loss: float, tokens_per_second: float) -> None:
        if self._bar is None:
            return
        # An exponential average keeps the shown rate steady across uneven steps.
        rate = self._smoothed_rate
        self._smoothed_rate = tokens_per_second if rate is None else 0.9 * rate + 0.1 * tokens_per_second
        self._bar.set_postfix({"loss": f"{loss:.3f}", f"{self.unit}/s": f"{self._smoothed_rate:,.0f}"}, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def summed_token_loss(logits: torch.Tensor, targets: torch.Tensor, pad_index: int | None = None) -> tuple[torch.Tensor, int]:
    """Cross-entropy summed over every target token, padding excluded: the ``loss_sum`` of a :class:`TaskLoss`.

    logits (N, L, C), targets (N, L) class indices; positions where ``targets == pad_index`` count for
    nothing. Returns (loss_sum scalar, number of counted tokens).
    """
    flat_logits = logits.reshape(-1, logits.size(-1))  # (N * L, C)
    flat_targets = targets.reshape(-1)  # (N * L,)
    if pad_index is None:
        return torch.nn.functional.cross_entropy(flat_logits, flat_targets, reduction="sum"), flat_targets.numel()
    loss_sum = torch.nn.functional.cross_entropy(flat_logits, flat_targets, reduction="sum", ignore_index=pad_index)
    return loss_sum, int((flat_targets != pad_index).sum())


def _format_record(record: dict, epochs: int | None, unit: str = "tok") -> str:
    epoch = record["epoch"]
    shown = f"{epoch}/{epochs}" if isinstance(epoch, int) and epochs else f"{epoch:.2f}"
    parts = [f"epoch {shown}", f"step {record['step']}"]
    parts += [f"{key} {record[key]:.4f}" for key in record if key.startswith(("train_", "valid_"))]
    parts += [f"lr {record['lr']:.3g}", f"{record['tokens_per_second']:,.0f} {unit}/s", f"{record['elapsed_seconds']:.0f}s"]
    return "  ".join(parts)


def _to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(item, device) for key, item in batch.items()}
    return batch


def _map_state(state, function):
    """Apply ``function`` to each tensor of a hidden state: a tensor or a tuple/list such as LSTM's (h, c)."""
    if isinstance(state, torch.Tensor):
        return function(state)
    return tuple(function(part) for part in state)


def _capture_rng(dist: DistContext) -> dict:
    """Every generator a training step may draw from; torch's from every rank (each has its own dropout)."""
    numpy_state = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": [state.cpu() for state in dist.gather_all(torch.get_rng_state().to(dist.device))],
    }
    if dist.device.type == "cuda":
        rng["cuda"] = [state.cpu() for state in dist.gather_all(torch.cuda.get_rng_state().to(dist.device))]
    return rng


def _restore_rng(rng: dict, dist: DistContext) -> None:
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    # A run resumed on a different number of ranks keeps the fresh seeds of the ranks it has no state for.
    if dist.rank < len(rng["torch"]):
        torch.set_rng_state(rng["torch"][dist.rank].to(torch.uint8))
    if "cuda" in rng and dist.device.type == "cuda" and dist.rank < len(rng["cuda"]):
        torch.cuda.set_rng_state(rng["cuda"][dist.rank].to(torch.uint8))


def _check_positive(flag: str, value, integer: bool = False) -> None:
    if value is None:
        return
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise InputError(f"--{flag} must be a whole number, got {value!r}")
    if value <= 0:
        raise InputError(f"--{flag} must be > 0, got {value}")


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"--{flag} must be one of {', '.join(choices)}, got {value!r}")
