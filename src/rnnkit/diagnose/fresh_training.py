"""The synthetic benchmarks (adding, copy memory, selective copying) as a task of the Trainer: fresh random batches
at every step (an endless supply, as in the papers) and a fixed held-out set measured every ``eval_every`` steps.

:class:`FreshBatches` gives the :class:`~rnnkit.train.Trainer` exactly that: an epoch is ``eval_every`` fresh
batches, and the held-out set is its validation data. So the one training loop runs the benchmarks too, with
its order of a step, its global gradient-norm clipping, its checks for divergence, its progress bar and lines,
its time budget and its stop at a target (``TrainConfig.stop_at``); :func:`train_on_fresh_batches` reads the
result row from the Trainer's history: the last held-out metric, the learning curve and why the run stopped.

A problem (:class:`~rnnkit.diagnose.memory_tasks.AddingProblem`, ``CopyMemory``,
:class:`~rnnkit.diagnose.selective_copy.SelectiveCopy`) tells the task how to draw a batch, its loss, and its
metric: the validation loss itself, or the score its ``selection`` names (token accuracy).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Protocol

import torch
from torch import Tensor, nn

from rnnkit.errors import InputError
from rnnkit.models.recurrent import check_engine
from rnnkit.models.size import parameter_count
from rnnkit.train import DistContext, Task, TaskLoss, TrainConfig, Trainer
from rnnkit.train.divergence import Diverged
from rnnkit.train.task import Baseline

EVAL_CHUNK = 256  # held-out sequences per forward pass when measuring
TEST_SEED = 20261207  # the test sequences' own seed: no problem's held-out set, no training seed in use

# The Trainer's reasons to stop, as the rows name them; the target's is the problem's (stop_below, stop_above).
STOP_REASONS = {"max_steps": "steps", "epochs": "steps", "time_budget": "time_budget", "interrupted": "interrupted"}


@dataclass(kw_only=True)
class FreshSettings:
    """How a model trains on fresh batches: the settings every synthetic problem's config shares (a problem's
    config adds what it trains: the length, the cell, its sizes, its target).

    Args:
        batch_size, lr, clip: Adam's batch (fresh sequences every step) and learning rate; the global gradient
            norm is clipped to ``clip`` (None: no clipping).
        steps: the most optimizer steps. time_budget: the most seconds (None: no limit).
        eval_every: steps between measurements on the held-out set of ``eval_size`` sequences.
        seed: model initialisation and training data; the held-out set has its own fixed seed.
        engine: the layer's engine (``"auto"`` or a name of :func:`rnnkit.nn.engine_names`).
    """

    batch_size: int = 32
    lr: float = 1e-3
    clip: float | None = 1.0
    steps: int = 2000
    time_budget: float | None = None
    eval_every: int = 100
    eval_size: int = 1000
    seed: int = 0
    engine: str = "auto"

    def __post_init__(self):
        check_engine(self.engine)
        positive_integers(self, ("batch_size", "steps", "eval_every", "eval_size"))


def positive_integers(config, names: tuple[str, ...]) -> None:
    """InputError for the first of ``config``'s settings ``names`` that is not a positive integer."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")


class Problem(Protocol):
    """A synthetic problem: its batches, its loss and its metric.

    ``name``: the task of the result rows. ``metric_name``: what the rows' metric is. ``selection``: None when the
    metric is the validation loss (a mean per target: ``loss`` with ``reduction="mean"``), else the Trainer's
    ``(score name, "max" | "min")`` of :meth:`held_out_scores`. ``target_unit``: what a loss's count counts.
    ``held_out_seed``: the seed of the held-out set, one fixed set per length whatever the training seed.
    """

    name: str
    metric_name: str
    selection: tuple[str, str] | None
    target_unit: str
    held_out_seed: int

    def batch(self, n: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` fresh (inputs, targets) of length ``length``, drawn from ``generator``."""

    def encode(self, inputs: Tensor) -> Tensor:
        """The model's input for ``inputs`` (one-hot vectors for symbol ids, or the inputs as they are)."""

    def loss(self, output: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """The loss of ``output`` against ``targets``: its mean per target, or with ``"sum"`` its sum."""

    def baseline(self, length: int) -> float:
        """The metric of a model that remembers nothing, at this length."""

    def knows_nothing(self) -> Baseline:
        """The loss per target of a guess that knows nothing, against which the Trainer judges a runaway loss."""

    def held_out_scores(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, float]:
        """Scores of the held-out set beyond the loss (``{"token_accuracy": 0.93}``), or none."""


class FreshBatches(Task):
    """``eval_every`` fresh batches of ``batch_size`` sequences of ``length`` steps per epoch, drawn from one
    generator seeded with ``seed`` (so a run is repeatable, from its start: it has no run directory to resume
    from); the held-out set of ``eval_size`` sequences, drawn from the problem's ``held_out_seed``, validates.

    For a problem with a ``selection`` (a score, not the loss), the task keeps in memory a copy of the weights
    of the best held-out score so far (``best_state``, ``best_score``): there is no run
    directory for a ``best.pt``, and a benchmark that scores a test set must score the checkpoint that the
    held-out set chose, not the model as the budget happened to stop it."""

    def __init__(self, problem: Problem, length: int, *, batch_size: int, eval_every: int, eval_size: int, seed: int):
        self.problem = problem
        self.length = length
        self.batch_size = batch_size
        self.eval_every = eval_every
        self.generator = torch.Generator().manual_seed(seed)
        self.held_out = problem.batch(eval_size, length, torch.Generator().manual_seed(problem.held_out_seed))
        self.selection = problem.selection
        self.target_unit = problem.target_unit
        self.best_state: dict[str, Tensor] | None = None
        self.best_score: float | None = None

    def num_train_batches(self) -> int:
        return self.eval_every

    def train_batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        for _ in range(start, self.eval_every):
            yield self.problem.batch(self.batch_size, self.length, self.generator)

    def valid_batches(self) -> list[tuple[Tensor, Tensor]]:
        inputs, targets = self.held_out
        return list(zip(inputs.split(EVAL_CHUNK), targets.split(EVAL_CHUNK)))

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor], state: Any) -> TaskLoss:
        inputs, targets = batch
        output = model(self.problem.encode(inputs))
        return TaskLoss(self.problem.loss(output, targets, reduction="sum"), targets.numel(), len(inputs), None)

    def score_validation(self, model: nn.Module) -> dict[str, float]:
        scores = self.problem.held_out_scores(model, *self.held_out)
        if self.selection is not None:
            score, best = scores[self.selection[0]], self.best_score
            if best is None or (score > best if self.selection[1] == "max" else score < best):
                self.best_score = score
                self.best_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        return scores

    def baseline_loss(self) -> Baseline:
        return self.problem.knows_nothing()

    def metric(self, record: dict) -> float:
        """The problem's metric in one of the Trainer's records: the validation loss or the selected score."""
        return record["valid_loss" if self.selection is None else f"valid_{self.selection[0]}"]

    @torch.no_grad()
    def measure(self, model: nn.Module, sequences: tuple[Tensor, Tensor] | None = None) -> float:
        """The problem's metric of ``model`` now on ``sequences`` (inputs, targets), by default the held-out set
        (after a stop on divergence, whose weights the Trainer kept finite: it stops before an update that is not).
        """
        inputs, targets = self.held_out if sequences is None else sequences
        model.eval()
        try:
            if self.selection is not None:
                return self.problem.held_out_scores(model, inputs, targets)[self.selection[0]]
            chunks = zip(inputs.split(EVAL_CHUNK), targets.split(EVAL_CHUNK))
            losses = [self.loss(model, batch, None) for batch in chunks]
            return sum(out.loss_sum.item() for out in losses) / sum(out.n_tokens for out in losses)
        finally:
            model.train()


def train_on_fresh_batches(model: nn.Module, problem: Problem, config: FreshSettings, *, target: float | None, name: str,
                           log: Callable[[str], None] | None = None, log_every_seconds: float = 30.0,
                           keep_best: bool = False, test_size: int | None = None) -> dict:
    """Train ``model`` on fresh batches of ``problem`` with the Trainer (Adam, the gradient's global norm clipped to
    ``config.clip``) until ``config.steps``, ``config.time_budget``, ``target`` (the metric at or past it, in the
    direction it improves) or divergence; returns the result row. With ``keep_best`` (a problem with a
    ``selection`` only), ``model`` ends with the weights of its best held-out measurement, not its last. With
    ``test_size``, the model it ends with is measured once more on ``test_size`` fresh sequences of their own seed
    (``TEST_SEED``): a test set that neither the stop rule nor ``keep_best`` has read.

    Args:
        config: a :class:`~rnnkit.diagnose.memory_tasks.MemoryTaskConfig` or
            :class:`~rnnkit.diagnose.selective_copy.SelectiveCopyConfig`: the training settings
            (:class:`FreshSettings`), ``length``, ``cell`` and ``hidden_size``.
        name: the run in the progress lines. log: receives the Trainer's line of a measurement (at most one
            every ``log_every_seconds``, prefixed with ``name``) and the run's last line; with it, the Trainer's
            progress bar shows on stderr.

    Returns:
        ``{"task", "length", "cell", "hidden_size", "parameters", "metric_name", "metric" (the last held-out
        measurement), "baseline", "steps", "seconds", "stop_reason" ("steps", "time_budget", "stop_below" or
        "stop_above" for the target, "interrupted" or "diverged"), "curve": [[step, seconds, metric], ...],
        "config": {...}}``; with a ``selection``, ``"best_metric"`` and ``"best_step"`` too (the best held-out
        measurement and its step); with ``test_size``, ``"test_metric"`` and ``"test_size"``.
    """
    if keep_best and problem.selection is None:
        raise ValueError(f"keep_best needs a problem scored by a selection; {problem.name} is scored by its loss")
    task = FreshBatches(problem, config.length, batch_size=config.batch_size, eval_every=config.eval_every,
                        eval_size=config.eval_size, seed=config.seed)
    train_config = TrainConfig(epochs=math.ceil(config.steps / config.eval_every), max_steps=config.steps,
                               time_budget=config.time_budget, lr=config.lr, optimizer="adam", clip=config.clip,
                               stop_at=target, seed=config.seed)
    trainer = Trainer(model, task, train_config, dist=DistContext(device=next(model.parameters()).device),
                      progress_bar=log is not None, log=_every(log_every_seconds, name, log))
    curve, stop_reason, divergence = _fit(trainer, task)
    if stop_reason == "stop_at":
        stop_reason = "stop_below" if problem.selection is None or problem.selection[1] == "min" else "stop_above"
    row = {
        "task": problem.name,
        "length": config.length,
        "cell": config.cell,
        "hidden_size": config.hidden_size,
        "parameters": parameter_count(model),
        "metric_name": problem.metric_name,
        "metric": curve[-1][2],
        "baseline": problem.baseline(config.length),
        "steps": trainer.position.step,
        "seconds": curve[-1][1],
        "stop_reason": STOP_REASONS.get(stop_reason, stop_reason),
        "curve": curve,
        "config": asdict(config),
    }
    if task.best_state is not None:
        row["best_metric"] = task.best_score
        row["best_step"] = next((step for step, _, value in curve if value == task.best_score), row["steps"])
        if keep_best:
            model.load_state_dict(task.best_state)
    if test_size is not None:
        test = problem.batch(test_size, config.length, torch.Generator().manual_seed(TEST_SEED))
        row["test_metric"], row["test_size"] = task.measure(model, test), test_size
    if log is not None:
        if divergence is not None:
            log(f"{name}: {divergence}")
        log(f"{name}: done after {row['steps']:,} steps, {row['seconds']:.0f}s ({row['stop_reason']}): test "
            f"{problem.metric_name} {row['metric']:.4g}, baseline {row['baseline']:.4g}")
    return row


def _fit(trainer: Trainer, task: FreshBatches) -> tuple[list[list[float]], str, str | None]:
    """Run ``trainer``: (the curve [[step, seconds, metric]] of every measurement, the Trainer's reason to stop
    or "diverged", the Trainer's line on a divergence or None). The last point is the model as it stopped."""
    try:
        report = trainer.fit()
    except Diverged as stop:
        position = trainer.position
        last = [position.step, round(trainer.stops.elapsed(), 2), task.measure(trainer.model)]
        return [*(_point(record, task) for record in position.history), last], "diverged", str(stop)
    curve = [_point(record, task) for record in trainer.position.history]
    if not curve or curve[-1][0] != report["step"]:  # a stop between measurements: the report measured it
        curve.append(_point(report, task))
    return curve, report["stop_reason"], None


def _point(record: dict, task: FreshBatches) -> list[float]:
    """[step, seconds, metric] of one of the Trainer's records."""
    return [record["step"], round(record["elapsed_seconds"], 2), task.metric(record)]


def _every(seconds: float, name: str, log: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``log`` with ``name: `` before each line, passing the first line and then one at most every ``seconds``."""
    if log is None:
        return None
    last = -math.inf

    def every(line: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= seconds:
            log(f"{name}: {line}")
            last = now

    return every
