"""One training loop for every task: (truncated) BPTT, clipping, schedules, validation, checkpoints, DDP.

A task (language model, classifier, tagger, ...) tells the :class:`Trainer` three things through the small
:class:`~rnnkit.train.task.Task` interface: which batches to train on, which to validate on, and the loss of one batch summed
over its target tokens (padding excluded). The Trainer does the rest, one step in a fixed order:

    1. forward       the task's loss, summed over this rank's target tokens
    2. totals        token / sequence counts and the loss summed over ranks (a no-op in one process)
    3. check         a non-finite loss stops training (Diverged: a one-line InputError); no checkpoint is written
    4. backward      of the loss averaged over tokens (or summed over time, averaged over sequences)
    5. clip          by value, then by global norm
    6. update        optimizer step (at the learning rate times the task's ``TaskLoss.lr_scale`` for this step
                     alone: AWD-LSTM's variable windows scale the step, after clipping), then the schedule
    7. carry         the hidden state, detached, into the next batch (truncated BPTT over streams)

Full BPTT over padded batches is the same loop with ``Task.carries_state = False``: every batch starts from
the model's initial state and the gradient flows through every step of every sequence.

A loss that stays finite but runs far above the task's baseline (the loss of a guess that knows nothing) over
an epoch, or over each hundred steps of one, stops the run too (:mod:`rnnkit.train.divergence`, which also
words the stop: the cause, the fix, and which checkpoints on disk are good, i.e. validated with a finite loss).

With NT-ASGD (``optimizer="ntasgd"``) every validation, every checkpoint's weights and the model that
``fit()`` leaves behind are the averaged weights once averaging has begun; the raw iterate that training
continues from is in the checkpoint's optimizer state, so a resumed run continues exactly.

A stop in the middle of an epoch validates that partial epoch before its checkpoint; at a time budget's stop
its score competes for the best (``best.json``): the record says ``partial_epoch`` and the report ``best_partial``.

Training runs with subnormal floats flushed to zero (``flush_denormals``, see :mod:`rnnkit.train.denormals`).
"""

import math
import time
from contextlib import ExitStack
from dataclasses import asdict
from typing import Callable

import torch

from rnnkit.nn import detach_state

from .best_epoch import BestEpoch
from .budget import MARGIN, RECHECK_SCALE, WARMUP_STEPS, probe_validation
from .denormals import flushed_denormals
from .checkpoint import GRADIENTS_FILE, Checkpoint, RunDirectory
from .config import TrainConfig
from .distributed import DistContext
from .divergence import Diverged, SavedRun, remedy, runaway, runaway_due, span_name
from .ntasgd import averaged_weights, observe_validation
from .optim import Schedule, ScheduleSettings, build_optimizer, resolve_clock
from .position import Position
from .progress import ProgressBar, format_record, progress_shown, tracked
from .rng import capture_rng, restore_rng
from .stops import Stops
from .task import Task, as_task
from .tensor_state import join_tensors, split_tensors


class Trainer:
    """Trains ``model`` on ``task`` as ``config`` says, writing checkpoints and metrics to ``run_dir``.

    Args:
        model: the unwrapped model; it is moved to the context's device and, when distributed, wrapped in DDP.
        task: supplies batches, the loss and task metrics (a :class:`~rnnkit.train.task.Task`; an object of
            the older duck-typed interface is adapted).
        config: a :class:`TrainConfig`.
        run_dir: where checkpoints and ``metrics.jsonl`` go (None: nothing is written).
        run_info: what the task stores beside the trainer's state in each checkpoint:
            ``{"task": name, "configs": {...}, ...}``; the Trainer adds ``configs["train"]``.
        dist: the distributed context (default: one process on the CPU).
        progress_bar: show a tqdm bar (rank 0 only).
        log: receives one line per finished epoch (rank 0 only); None is silent.
        on_step: called as ``on_step(step, loss)`` after every step with the mean loss per token.
        flush_denormals: train (and validate) with subnormal floats read as zero; the process's mode is
            restored when fit() returns or fails (:mod:`rnnkit.train.denormals`). False: leave the mode alone.

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
        flush_denormals: bool = True,
    ):
        self.dist = dist or DistContext()
        self.model = model.to(self.dist.device)
        self.network = self.dist.wrap(self.model)
        self.task = task = as_task(task)
        self.config = config
        self.run_dir = run_dir
        self.run_info = run_info or {}
        self.log = log if self.dist.is_main else None
        self.on_step = on_step
        self.flush_denormals = flush_denormals
        self._partial_record: dict | None = None  # the validated record of a stop mid-epoch, this session
        self._session_steps = 0  # steps of this fit() call: its first WARMUP_STEPS warm up
        self.validation_seconds: float | None = None  # the latest validation's duration, its scores included
        if self.dist.rank > 0:
            # Rank 0 keeps the seeded stream (a 1-process run's); the others draw their own dropout masks.
            torch.manual_seed(config.seed + self.dist.rank)
        self.optimizer = build_optimizer(
            config.optimizer, self.model.parameters(), config.lr, config.weight_decay, config.momentum, config.nonmono
        )
        self.batches_per_epoch = task.num_train_batches()
        total_steps = config.epochs * self.batches_per_epoch if config.epochs is not None else None
        self.position = Position()
        self.carried_state = None
        self._progress = ProgressBar(progress_bar and self.dist.is_main, task.target_unit)
        self._valid_count: int | None = None
        self.stops = Stops(config, self.dist)
        clock = resolve_clock(config.schedule, config.schedule_clock, config.time_budget, config.epochs)
        self.schedule = Schedule(
            self.optimizer,
            ScheduleSettings(config.schedule, config.lr_decay, config.decay_after, config.plateau_patience, total_steps,
                             clock, config.epochs),
            progress=self._run_progress,
        )
        self.best_epoch = BestEpoch(task.selection)
        self._baseline = task.baseline_loss()
        # With overwrite, an earlier run stays in run_dir until this run has a checkpoint worth more
        # (RunDirectory.create): an end-of-epoch one, or the last one of a fit that ends normally.
        self._saved = SavedRun(None if run_dir is None else run_dir.path,
                               old_run=run_dir is not None and run_dir.replacing)
        # The averaged weights that fit() leaves in the model (NT-ASGD); closed before training on.
        self._shown_average = ExitStack()

    # ----------------------------------------------------------------------------------------- resume

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint``: weights, optimizer, schedule, position, carried state, RNG states."""
        self._shown_average.close()
        state = checkpoint.meta["trainer"]
        checkpoint.load_weights(self.model)
        optimizer_state = join_tensors(state["optimizer"], checkpoint.tensors)
        # JSON turned the optimizer's integer parameter ids into strings; torch matches them as ints.
        optimizer_state["state"] = {int(key): value for key, value in optimizer_state["state"].items()}
        self.optimizer.load_state_dict(optimizer_state)
        self.schedule.load_state_dict(state["schedule"])
        self.position = Position(**state["position"])
        self.stops.elapsed_before_session = self.position.elapsed_seconds
        carried = join_tensors(state["carry"], checkpoint.tensors)
        self.carried_state = None if carried is None else _map_state(
            carried, lambda full: self.dist.local_rows(full).to(self.dist.device)
        )
        restore_rng(join_tensors(state["rng"], checkpoint.tensors), self.dist)
        if self.position.best_epoch is None and self.position.best_score is not None:
            self.position.best_epoch = self.best_epoch.epoch_in_history(self.position)
        # The run on disk is this one; its latest checkpoint was validated if it ended an epoch.
        history = self.position.history
        at_epoch_end = self.position.batch_index == 0 and history and history[-1].get("step") == self.position.step
        self._saved = SavedRun(self._saved.path, latest_step=self.position.step,
                               latest_valid_loss=history[-1].get("valid_loss") if at_epoch_end else None)
        if self.run_dir is not None and self.dist.is_main:
            self.run_dir.rewrite_metrics(self.position.history)

    # ----------------------------------------------------------------------------------------- training

    def fit(self) -> dict:
        """Train until the epochs, the time budget, max_steps, early stopping or a signal ends the run.

        Returns the final report: the last epoch's metrics (or those of the partial epoch at a mid-epoch
        stop), ``stop_reason``, ``best_valid_loss`` (None with ``best_valid_loss_reason`` when no epoch had one),
        ``steps``, ``validation_seconds`` (the latest validation's duration, when this session ran one),
        overall ``tokens_per_second`` and ``warm_tokens_per_second`` (each session's first
        budget.WARMUP_STEPS steps left out; absent when no later step ran), ``best_partial`` when the best
        checkpoint is a partial epoch's. The model is left with the weights that were validated
        last: the averaged ones with NT-ASGD once it averages.
        """
        self.stops.start_session()
        self._session_steps = 0
        self._shown_average.close()  # train on from the raw iterate, not from the average shown after a fit()
        try:
            with self.stops.on_signals(), flushed_denormals(self.flush_denormals):
                if self.config.time_budget is not None:
                    self._estimate_final_work()
                reason = self.stops.limit_reached(self.position)
                while reason is None:
                    reason = self._train_epoch()
                    if self.position.batch_index == self.batches_per_epoch:
                        reason = self._finish_epoch() or reason
                    else:
                        self._check_runaway()  # a stop before the next window of steps is judged over what ran
                        if reason is None:
                            self._save_checkpoint(best=False)
                        else:
                            self._finish_partial_epoch(compete=reason == "time_budget")
                    reason = reason or self.stops.limit_reached(self.position)
                report = self._final_report(reason)
            self._finish_replacement()  # a run that ended normally replaces the old run, whatever it validated
        except BaseException:
            # A failure (a divergence, bad data, a second Ctrl-C) leaves an old run that --overwrite kept as it was.
            if self.run_dir is not None and self.dist.is_main:
                self.run_dir.abandon_replacement()
            raise
        finally:
            self._progress.close()
        self._shown_average.enter_context(averaged_weights(self.optimizer))
        return report

    def _train_epoch(self) -> str | None:
        """Run the epoch's remaining batches; return why it stopped early, or None when it ran to the end."""
        position = self.position
        if position.batch_index == 0:
            self.carried_state = None  # every epoch reads the streams from their beginning again
        self._progress.start_epoch(position.epoch + 1, self.batches_per_epoch, position.batch_index)
        step_start = time.perf_counter()
        for batch in self.task.train_batches(position.epoch, position.batch_index):
            if self._recheck_final_work():
                step_start = time.perf_counter()  # the probe's time is no step's
            loss, tokens, stop_reason = self._train_step(batch)
            step_end = time.perf_counter()
            position.epoch_seconds += step_end - step_start
            position.total_step_seconds += step_end - step_start
            position.total_tokens += tokens
            self._session_steps += 1
            if self._session_steps > WARMUP_STEPS:  # the warm-up's steps show no speed (budget.WARMUP_STEPS)
                position.warm_tokens += tokens
                position.warm_step_seconds += step_end - step_start
            self.stops.final_work.observe_step(step_end - step_start)
            self._progress.update(loss, tokens / max(step_end - step_start, 1e-9))
            if self.on_step is not None:
                self.on_step(position.step, loss)
            if runaway_due(position.batch_index, self.batches_per_epoch):
                self._check_runaway()  # before a checkpoint can keep the runaway weights
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
        stop_wishes = self.stops.wishes(position.step + 1)
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

        # 6. update: the task's lr_scale scales this step alone, after clipping (AWD-LSTM clips, then scales
        # the step by the window's length), so a clipped gradient still moves the weights by lr_scale as much
        if out.lr_scale != 1.0:
            rates = [group["lr"] for group in self.optimizer.param_groups]
            for group in self.optimizer.param_groups:
                group["lr"] *= out.lr_scale
        self.optimizer.step()
        if out.lr_scale != 1.0:
            for group, rate in zip(self.optimizer.param_groups, rates):
                group["lr"] = rate
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
        if not self.dist.is_main or self.run_dir is None:
            return
        flow = self.task.gradient_flow(self.model, batch, state)
        if flow is not None:
            self.run_dir.append_record(GRADIENTS_FILE, {"step": self.position.step + 1,
                                                        "epoch": self.position.epoch + 1, **flow})

    def _finish_epoch(self) -> str | None:
        """Validate, step the schedule, checkpoint and log; return "stop_at" when the epoch reached the config's
        ``stop_at``, "early_stopping" when patience ran out."""
        position = self.position
        start = time.perf_counter()
        valid_loss = self.validate()
        record = self._metrics_record(valid_loss, epoch=position.epoch + 1)  # with the task's own scores
        self.validation_seconds = time.perf_counter() - start
        self.stops.final_work.observe_validation(self.validation_seconds)
        improved = self.best_epoch.observe(position, valid_loss, record)
        self.schedule.after_epoch(valid_loss)
        observe_validation(self.optimizer, valid_loss)  # NT-ASGD may start averaging; before the checkpoint keeps it
        position.epoch += 1
        position.batch_index = 0
        position.epoch_loss_sum, position.epoch_tokens, position.epoch_seconds = 0.0, 0, 0.0
        position.history.append(record)
        # Checkpoint before the metrics line: a crash in between is repaired on resume from the history.
        self._save_checkpoint(best=improved, valid_loss=valid_loss)
        self._write_metrics(record)
        if self.config.stop_at is not None and self.best_epoch.reached(valid_loss, record, self.config.stop_at):
            return "stop_at"
        if self.config.patience is not None and position.epochs_without_improvement >= self.config.patience:
            return "early_stopping"
        return None

    def _finish_partial_epoch(self, compete: bool) -> None:
        """At a stop in the middle of an epoch: validate what it trained, then checkpoint and log the record,
        marked ``partial_epoch``. ``compete`` (a time budget's stop, which cut the run's last epoch short): its
        score competes for the best, and best.json moves to this checkpoint when it wins. A stop by max_steps
        (a trial) or a signal (a pause before a resume) leaves the best to finished epochs. Patience, NT-ASGD's
        trigger and the schedule count finished epochs only: a resumed run's epoch ends as if the stop had
        not happened."""
        position = self.position
        start = time.perf_counter()
        valid_loss = self.validate()
        record = self._metrics_record(valid_loss, epoch=position.epoch + position.batch_index / self.batches_per_epoch)
        self.validation_seconds = time.perf_counter() - start
        record["partial_epoch"] = True
        improved = compete and self.best_epoch.observe(position, valid_loss, record, partial=True)
        self._save_checkpoint(best=improved, valid_loss=valid_loss)
        self._write_metrics(record)
        self._partial_record = record

    def _run_progress(self) -> float:
        """The run's progress p for a schedule on the time clock (see :mod:`rnnkit.train.optim`): the share
        of the budget's training time (the budget less the final work's reserve) elapsed, or of the epochs'
        steps taken (the step that just ended counted), whichever is further."""
        config, position = self.config, self.position
        room = config.time_budget - self.stops.final_work.reserve()
        progress = self.stops.elapsed() / room if room > 0 else 1.0
        if config.epochs is not None:
            progress = max(progress, (position.step + 1) / (config.epochs * self.batches_per_epoch))
        return progress

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean validation loss per token over all ranks, or None when the task has no validation data; of the
        averaged weights once NT-ASGD averages."""
        batches = self.task.valid_batches()
        if batches is None:
            return None
        self.model.eval()
        loss_sum, tokens, state = 0.0, 0, None
        total = self._valid_batch_count() if self._progress.enabled else None
        with averaged_weights(self.optimizer), progress_shown(self._progress.enabled):
            for batch in tracked(batches, "validation", total=total):
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

    def _valid_batch_count(self) -> int | None:
        """How many validation batches there are (counted once, by iterating them when they have no len)."""
        if self._valid_count is None:
            batches = self.task.valid_batches()
            if batches is not None:
                self._valid_count = len(batches) if hasattr(batches, "__len__") else sum(1 for _ in batches)
        return self._valid_count

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
        record["elapsed_seconds"] = self.stops.elapsed()
        return record

    @torch.no_grad()
    def _validation_scores(self) -> dict[str, float]:
        """The task's own validation scores; every rank scores the whole validation set, so all decide alike."""
        self.model.eval()
        try:  # the task's decoding (BLEU, exact match) shows a bar where its loop is tracked
            with averaged_weights(self.optimizer), progress_shown(self._progress.enabled):
                return self.task.score_validation(self.model)
        finally:
            self.model.train()

    def _final_report(self, reason: str | None) -> dict:
        position = self.position
        if position.batch_index > 0 and self._partial_record is not None:
            record = dict(self._partial_record)
        elif position.batch_index > 0:  # a resumed run whose limit was reached before its first step
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
        if self.validation_seconds is not None:  # what a search sizes its final evaluation from
            record["validation_seconds"] = self.validation_seconds
        if position.warm_step_seconds:  # the speed after each session's warm-up: what calibrations should read
            record["warm_tokens_per_second"] = position.warm_tokens / position.warm_step_seconds
        if position.best_valid_loss is None:
            # Every validation loss the Trainer keeps is finite (a non-finite one stops the run): None means none.
            record["best_valid_loss_reason"] = (
                "no validation data" if "valid_loss" not in record else "no epoch has finished")
        record.update(self.best_epoch.report(position))
        if position.best_partial:
            record["best_partial"] = True  # best.json holds the partial epoch validated at the stop
        if self.run_dir is not None:
            record["run_dir"] = str(self.run_dir.path)
        return record

    def _write_metrics(self, record: dict) -> None:
        if self.run_dir is not None and self.dist.is_main:
            self.run_dir.append_metrics(record)
        if self.log is not None:
            self.log(format_record(record, self.config.epochs, self.task.target_unit))

    def _check_runaway(self) -> None:
        """Stop with one line when the epoch's mean training loss so far ran far above the task's baseline."""
        position = self.position
        if position.epoch_tokens == 0:
            return
        span = span_name(position.epoch + 1, position.batch_index, self.batches_per_epoch)
        problem = runaway(position.epoch_loss_sum / position.epoch_tokens, span, self._baseline)
        if problem is not None:
            raise self._stopped(f"training diverged: {problem}")

    def _diverged(self, what: str, step: int) -> Diverged:
        return self._stopped(f"training diverged: {what} at step {step} (epoch {self.position.epoch + 1})")

    def _stopped(self, problem: str) -> Diverged:
        """The one line of a stop on divergence: the problem, its fix, and what the run directory holds."""
        return Diverged(f"{problem}; {remedy(self.config)}; {self._saved.describe(self.position)}")

    # ----------------------------------------------------------------------------------------- checkpoints

    def _save_checkpoint(self, best: bool, valid_loss: float | None = None) -> None:
        """Write a checkpoint of everything needed to continue exactly (only rank 0 writes); ``valid_loss``:
        its validation loss at the end of an epoch, None mid-epoch (not validated). With NT-ASGD averaging,
        the weights saved are the averages and the optimizer state holds the raw iterate."""
        if self.run_dir is None:
            return
        start = time.perf_counter()
        with averaged_weights(self.optimizer):
            self._write_checkpoint(best, valid_loss)
        self.stops.final_work.observe_checkpoint(time.perf_counter() - start)

    def _estimate_final_work(self) -> None:
        """Estimate the final validation and checkpoint before the first step, so that a time budget pays for
        them (:mod:`rnnkit.train.budget`); the model's weights, the RNG streams and the data are untouched."""
        final = self.stops.final_work
        # The checkpoint writes the weights and the optimizer's state (at most two moments per weight).
        final.checkpoint_bytes(3 * sum(p.numel() * p.element_size() for p in self.model.parameters()))
        self._probe_validation(provisional=True)
        left = self.config.time_budget - self.stops.elapsed()
        needed = 2 * final.step + MARGIN * (final.validation + final.checkpoint)
        if self.log is not None and needed >= left:
            self.log(f"note: the final validation and checkpoint take about {needed:.0f}s, more than the "
                     f"{max(left, 0):.0f}s of --time-budget left; the run trains a few steps (a smaller validation "
                     "set leaves time to train)")

    @torch.no_grad()
    def _probe_validation(self, provisional: bool = False) -> None:
        """Time the validation on its first batches (budget.probe_validation), in eval mode, carrying the state;
        ``provisional``: before the first step (see budget.FinalWork.observe_validation)."""
        state = None

        def run_batch(batch) -> None:
            nonlocal state
            out = self.task.loss(self.model, _to_device(batch, self.dist.device), state)
            out.loss_sum.item()  # waits for the device
            state = out.state if self.task.carries_state else None

        self.model.eval()
        try:
            seconds = probe_validation(self.task.valid_batches, run_batch)
            self.stops.final_work.observe_validation(seconds, probed=True, provisional=provisional)
        finally:
            self.model.train()

    def _recheck_final_work(self) -> bool:
        """Before a time budget stops the run on a validation estimate scaled up by slower steps, time the
        validation again (a stall of the machine slows the steps for a while: the validation it stops for may
        be as fast as ever). Whether it probed. The steps after a probe are its new base, so a probe comes
        again only after a further slowdown (each costs about budget.PROBE_SECONDS)."""
        final = self.stops.final_work
        if self.config.time_budget is None:
            return False
        if final.unconfirmed:  # the probe before the first step: would it stop the run, as the steps go now?
            final.confirm()
            if not self.stops.out_of_time(final.step):
                return False
        # Looking a step ahead: the stop is decided in the middle of the coming step.
        elif final.scale() <= RECHECK_SCALE or not self.stops.out_of_time(final.step):
            return False
        self._probe_validation()
        return True

    def _write_checkpoint(self, best: bool, valid_loss: float | None) -> None:
        carried = None if self.carried_state is None else _map_state(self.carried_state, self.dist.gather_rows)
        carry_json, carry_tensors = split_tensors(carried, "carry")
        rng_json, rng_tensors = split_tensors(capture_rng(self.dist), "rng")
        # Every rank checks (their weights are equal), so that all of them stop together.
        if not all(torch.isfinite(parameter).all() for parameter in self.model.parameters()):
            raise self._diverged("a weight became non-finite", self.position.step)
        if not self.dist.is_main:
            return
        self.position.elapsed_seconds = self.stops.elapsed()
        optimizer_json, optimizer_tensors = split_tensors(self.optimizer.state_dict(), "optimizer")
        meta = {**self.run_info, "configs": {**self.run_info.get("configs", {}), "train": asdict(self.config)}}
        meta["trainer"] = {
            "position": asdict(self.position),
            "optimizer": optimizer_json,
            "schedule": self.schedule.state_dict(),
            "carry": carry_json,
            "rng": rng_json,
            "world_size": self.dist.world_size,
            "selection": self.best_epoch.selection,  # what best.json is best by: evaluate says it
        }
        # An end-of-epoch checkpoint (validated, when there is validation data) may replace the old run of an
        # --overwrite; a mid-epoch one may not.
        at_epoch_end = self.position.batch_index == 0
        self.run_dir.save(self.model, {**optimizer_tensors, **carry_tensors, **rng_tensors}, meta, best=best,
                          validated=at_epoch_end)
        self._saved.saved(self.position.step, valid_loss)
        self._note_replacement()

    def _finish_replacement(self) -> None:
        if self.run_dir is not None and self.dist.is_main:
            self.run_dir.finish_replacement()
            self._note_replacement()

    def _note_replacement(self) -> None:
        """Record the step at which this run replaced the old run of an --overwrite, once it has."""
        if self._saved.old_run and self._saved.replaced_at_step is None and not self.run_dir.replacing:
            self._saved.replaced_at_step = self.position.step



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
