"""Issue 27, deliverable 3, the Trainer's part: schedules on the time budget's clock, speeds measured after a
warm-up, a final partial epoch's validation competing for the best, AWD's step scaled after clipping, and
subnormal floats flushed while training.

The clock-dependent tests run the Trainer on a fake clock: every training step advances it by a known number
of seconds, so they hold however busy the machine is (and take milliseconds).
"""

import json
import math
from pathlib import Path

import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.train import RunDirectory, TrainConfig, Trainer
from rnnkit.train.budget import WARMUP_STEPS
from rnnkit.train.denormals import flush_denormal_enabled, flushed_denormals
from rnnkit.train.optim import resolve_clock
from rnnkit.train.task import Task, TaskLoss


class FakeClock:
    """time.monotonic / time.perf_counter / time.sleep of the train package, on a clock the test moves."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    perf_counter = monotonic

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    for module in ("stops", "trainer", "budget"):
        monkeypatch.setattr(f"rnnkit.train.{module}.time", fake)
    return fake


class TimedTask(Task):
    """A regression y = 2x on a one-weight model whose training steps take ``step_seconds(i)`` on the fake
    clock (i: the 0-based training step of this task object); validation takes no time."""

    def __init__(self, clock: FakeClock, step_seconds, batches_per_epoch: int = 10_000, validation: bool = False):
        self.clock, self.step_seconds = clock, step_seconds
        self.batches_per_epoch, self.validation = batches_per_epoch, validation
        self.steps = 0
        self.flushed: list[bool] = []  # whether subnormals read as zero, at each step

    def num_train_batches(self):
        return self.batches_per_epoch

    def train_batches(self, epoch, start):
        return (torch.full((4, 1), 1.0) for _ in range(start, self.batches_per_epoch))  # (N, 1)

    def valid_batches(self):
        return [torch.full((4, 1), 1.0)] if self.validation else None

    def loss(self, model, batch, state):
        if model.training:
            self.clock.sleep(self.step_seconds(self.steps))
            self.steps += 1
            self.flushed.append(flush_denormal_enabled())
        error = model(batch) - 2 * batch  # (N, 1)
        return TaskLoss(error.square().sum(), batch.size(0), batch.size(0), None)


def one_weight() -> torch.nn.Module:
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    return model


def lr_trace(trainer: Trainer, clock: FakeClock) -> list[tuple[float, float]]:
    """(elapsed seconds, learning rate) after every step of ``trainer.fit()``."""
    trace = []
    start = clock.now
    trainer.on_step = lambda step, loss: trace.append((clock.now - start, trainer.optimizer.param_groups[0]["lr"]))
    return trace


# ----------------------------------------------------------------------------------------- the schedule's clock

@pytest.mark.parametrize("seconds_per_step", [0.5, 2.0])
def test_cosine_on_the_time_clock_anneals_inside_the_budget_whatever_the_speed(clock, seconds_per_step):
    budget = 200.0
    config = TrainConfig(epochs=None, time_budget=budget, schedule="cosine", lr=0.1, optimizer="sgd")
    trainer = Trainer(one_weight(), TimedTask(clock, lambda i: seconds_per_step), config)
    trace = lr_trace(trainer, clock)
    report = trainer.fit()
    assert report["stop_reason"] == "time_budget"
    room = budget - trainer.stops.final_work.reserve()
    for elapsed, lr in trace:  # lr * (1 + cos(pi p)) / 2 with p = elapsed / room, at every step
        assert lr == pytest.approx(0.05 * (1 + math.cos(math.pi * min(1.0, elapsed / room))), abs=2e-3)
    assert trace[-1][1] < 0.001  # annealed by the end, at 100 steps as at 400
    middle = min(trace, key=lambda point: abs(point[0] - room / 2))
    assert middle[1] == pytest.approx(0.05, abs=0.003)


def test_the_steps_clock_would_have_left_the_rate_high(clock):
    """What went wrong before: a cosine sized from epochs that the budget cuts short."""
    config = TrainConfig(epochs=1, time_budget=100.0, schedule="cosine", lr=0.1, optimizer="sgd",
                         schedule_clock="steps")
    trainer = Trainer(one_weight(), TimedTask(clock, lambda i: 1.0, batches_per_epoch=1000), config)
    trace = lr_trace(trainer, clock)
    trainer.fit()
    assert trace[-1][1] > 0.09


def test_with_epochs_too_the_schedule_follows_whichever_ends_first(clock):
    """Fast steps: the epochs end well inside the budget, and the cosine has annealed when they do."""
    config = TrainConfig(epochs=2, time_budget=1000.0, schedule="cosine", lr=0.1, optimizer="sgd")
    trainer = Trainer(one_weight(), TimedTask(clock, lambda i: 0.1, batches_per_epoch=50), config)
    trace = lr_trace(trainer, clock)
    assert trainer.fit()["stop_reason"] == "epochs"
    assert trace[49][1] == pytest.approx(0.05, abs=1e-3) and trace[-1][1] == pytest.approx(0.0, abs=1e-9)


def test_the_step_schedule_on_the_time_clock_spreads_its_epochs_over_the_budget(clock):
    config = TrainConfig(epochs=4, time_budget=100.0, schedule="step", lr=0.1, optimizer="sgd", decay_after=1,
                         lr_decay=0.5)
    trainer = Trainer(one_weight(), TimedTask(clock, lambda i: 1.0), config)
    trace = lr_trace(trainer, clock)
    assert trainer.fit()["stop_reason"] == "time_budget"
    room = 100.0 - trainer.stops.final_work.reserve()
    for elapsed, lr in trace:
        virtual_epoch = min(math.floor(4 * elapsed / room), 3) + 1
        if abs(4 * elapsed / room - round(4 * elapsed / room)) > 0.05:  # not at a boundary the reserve moves
            assert lr == pytest.approx(0.1 * 0.5 ** (virtual_epoch - 1))
    assert trace[-1][1] == pytest.approx(0.1 * 0.5 ** 3)


def test_a_resumed_run_goes_on_along_the_same_curve(clock, tmp_path):
    budget = 100.0
    settings = dict(epochs=None, time_budget=budget, schedule="cosine", lr=0.1, optimizer="sgd", save_every=10)
    whole = Trainer(one_weight(), TimedTask(clock, lambda i: 1.0), TrainConfig(**settings))
    whole_trace = lr_trace(whole, clock)
    whole.fit()

    first = Trainer(one_weight(), TimedTask(clock, lambda i: 1.0), TrainConfig(**settings, max_steps=40),
                    run_dir=RunDirectory.create(tmp_path / "run"))
    first.fit()
    clock.sleep(5000.0)  # the time between the sessions is no training time
    second = Trainer(one_weight(), TimedTask(clock, lambda i: 1.0), TrainConfig(**settings),
                     run_dir=RunDirectory.open(tmp_path / "run"))
    second.restore(RunDirectory.open(tmp_path / "run").load("latest"))
    resumed_trace = lr_trace(second, clock)
    second.fit()
    assert second.schedule.state_dict()["clock"] == "time"
    for (_, lr), (_, expected) in zip(resumed_trace, whole_trace[40:]):
        assert lr == pytest.approx(expected, abs=2e-3)
    assert len(whole_trace) - 2 <= 40 + len(resumed_trace) <= len(whole_trace) + 2


def test_the_clock_is_time_with_a_budget_that_gives_the_length_and_steps_otherwise():
    assert resolve_clock("cosine", "auto", 60.0, None) == "time"
    assert resolve_clock("step", "auto", 60.0, 10) == "time"
    assert resolve_clock("step", "auto", 60.0, None) == "steps"  # no length to spread
    assert resolve_clock("cosine", "auto", None, 10) == "steps"
    assert resolve_clock("cosine", "steps", 60.0, 10) == "steps"
    TrainConfig(epochs=None, time_budget=60.0, schedule="cosine")  # before: "the cosine schedule needs the run's length"
    with pytest.raises(InputError, match="--schedule-clock time needs --time-budget"):
        TrainConfig(epochs=3, schedule="cosine", schedule_clock="time")
    with pytest.raises(InputError, match="give --epochs"):
        TrainConfig(epochs=None, time_budget=60.0, schedule="step", schedule_clock="time")
    with pytest.raises(InputError, match="--schedule-clock must be one of"):
        TrainConfig(schedule_clock="wall")


# ----------------------------------------------------------------------------------------- speed after warm-up

def test_the_measured_speed_leaves_the_warm_up_steps_out(clock):
    """The first steps take 5 s (allocations, kernels), the others 0.1 s: the warm speed is the others'."""
    task = TimedTask(clock, lambda i: 5.0 if i < WARMUP_STEPS else 0.1)
    report = Trainer(one_weight(), task, TrainConfig(epochs=None, max_steps=20)).fit()
    assert report["warm_tokens_per_second"] == pytest.approx(4 / 0.1)
    assert report["tokens_per_second"] == pytest.approx(20 * 4 / (WARMUP_STEPS * 5.0 + (20 - WARMUP_STEPS) * 0.1))
    short = Trainer(one_weight(), TimedTask(clock, lambda i: 1.0), TrainConfig(epochs=None, max_steps=WARMUP_STEPS))
    assert "warm_tokens_per_second" not in short.fit()  # no step after the warm-up: no warm speed


def test_a_benchmark_calibration_sizes_its_epochs_from_the_warm_speed(monkeypatch, tmp_path):
    """The calibration run's report gives both speeds; the epochs that fit follow the warm one."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import tagging_run

    report = {"tokens_per_second": 100.0, "warm_tokens_per_second": 1000.0}
    monkeypatch.setattr(tagging_run, "rnnkit", lambda *args: json.dumps(report))
    epochs, measured = tagging_run.calibrated_epochs(["train", "tag", "--out", str(tmp_path / "x")], 600.0,
                                                     train_tokens=10_000, dev_tokens=3_000,
                                                     dev_slice=tmp_path / "dev", smoke=False)
    assert measured["tokens_per_second"] == 1000  # at 100 tokens/s (warm-up included) it would say 5 epochs
    assert epochs == min(tagging_run.MAX_EPOCHS, int(0.92 * 600 / (11_000 / 1000)))


# ----------------------------------------------------------------------------------------- a partial epoch's best

def partial_run(clock, tmp_path, improving: bool):
    """Two epochs of 10 steps of 1 s; the budget stops the run in the third. ``improving``: the weight keeps
    approaching the target (the partial epoch validates best); else after the first epoch the learning rate
    makes every step overshoot further (each error 1.2 times the last: the partial epoch validates worst)."""
    task = TimedTask(clock, lambda i: 1.0, batches_per_epoch=10, validation=True)
    config = TrainConfig(epochs=None, time_budget=25.0, lr=0.02 if improving else 0.3, optimizer="sgd", clip=None)
    trainer = Trainer(one_weight(), task, config, run_dir=RunDirectory.create(tmp_path / "run"))
    if not improving:
        trainer.on_step = lambda step, loss: trainer.optimizer.param_groups[0].__setitem__(
            "lr", 0.3 if step < 10 else 1.1)
    return trainer.fit()


def test_a_budget_stop_mid_epoch_validates_it_and_its_score_can_be_the_best(clock, tmp_path):
    report = partial_run(clock, tmp_path, improving=True)
    assert report["stop_reason"] == "time_budget" and report["partial_epoch"]
    assert 2 < report["epoch"] < 3 and report["best_partial"] is True
    assert report["best_valid_loss"] == report["valid_loss"]
    run = RunDirectory.open(tmp_path / "run")
    best = run.load("best")
    assert best.meta["trainer"]["position"]["step"] == report["steps"]  # best.json points at the partial epoch
    assert best.meta["trainer"]["position"]["best_partial"] is True
    assert best.meta["trainer"]["position"]["best_epoch"] == report["epoch"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["partial_epoch"] is True and lines[-1]["valid_loss"] == report["valid_loss"]
    assert len(lines) == 3  # two epochs and the partial one, logged once


def test_a_worse_partial_epoch_leaves_the_best_where_it_was(clock, tmp_path):
    report = partial_run(clock, tmp_path, improving=False)
    assert report["partial_epoch"] and "best_partial" not in report
    assert report["best_valid_loss"] < report["valid_loss"]
    best = RunDirectory.open(tmp_path / "run").load("best")
    assert best.meta["trainer"]["position"]["step"] in (10, 20)
    assert best.meta["trainer"]["position"]["best_partial"] is False


# ----------------------------------------------------------------------------------------- AWD's scaled step

class ScaledStepTask(Task):
    """One batch whose loss asks for the step's rate times ``scale`` (as the LM task's variable windows do)."""

    def __init__(self, scale: float):
        self.scale = scale

    def num_train_batches(self):
        return 1

    def train_batches(self, epoch, start):
        return iter([torch.tensor([[1.0, 2.0], [3.0, -1.0]])][start:])  # (N=2, 2)

    def valid_batches(self):
        return None

    def loss(self, model, batch, state):
        error = model(batch) - batch.sum(dim=1, keepdim=True) * 3  # (N, 1)
        return TaskLoss(error.square().sum(), batch.size(0), batch.size(0), None, self.scale)


def test_the_step_is_scaled_after_clipping_and_for_that_step_only():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    start = [p.detach().clone() for p in model.parameters()]
    batch = next(ScaledStepTask(0.4).train_batches(0, 0))
    # AWD-LSTM: the gradient of the mean loss, clipped to norm 0.5, then a step at 0.1 * 0.4
    expected_model = torch.nn.Linear(2, 1)
    expected_model.load_state_dict(model.state_dict())
    (ScaledStepTask(0.4).loss(expected_model, batch, None).loss_sum / 2).backward()
    norm = torch.nn.utils.clip_grad_norm_(expected_model.parameters(), 0.5)
    assert norm > 0.5  # the clip is active
    expected = [p.detach() - 0.1 * 0.4 * p.grad for p in expected_model.parameters()]
    trainer = Trainer(model, ScaledStepTask(0.4), TrainConfig(epochs=1, lr=0.1, optimizer="sgd", clip=0.5))
    trainer.fit()
    for got, want, before in zip(model.parameters(), expected, start):
        assert torch.allclose(got, want, atol=1e-6)
        # scaling the gradient before the clip (the old way) would have stepped the full clipped length
        assert not torch.allclose(got - before, (want - before) / 0.4, atol=1e-4)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.1  # the scale held for that step only


# ----------------------------------------------------------------------------------------- subnormal floats

def test_training_flushes_subnormals_and_restores_the_mode(clock):
    assert not flush_denormal_enabled()
    task = TimedTask(clock, lambda i: 0.1)
    Trainer(one_weight(), task, TrainConfig(epochs=None, max_steps=3)).fit()
    assert task.flushed == [True] * 3 and not flush_denormal_enabled()

    task = TimedTask(clock, lambda i: 0.1)
    Trainer(one_weight(), task, TrainConfig(epochs=None, max_steps=3), flush_denormals=False).fit()
    assert task.flushed == [False] * 3


def test_the_mode_is_restored_after_a_failure_and_kept_when_it_was_on(clock):
    class Failing(TimedTask):
        def loss(self, model, batch, state):
            raise InputError("bad batch")

    with pytest.raises(InputError, match="bad batch"):
        Trainer(one_weight(), Failing(clock, lambda i: 0.1), TrainConfig(epochs=1)).fit()
    assert not flush_denormal_enabled()
    try:
        torch.set_flush_denormal(True)
        Trainer(one_weight(), TimedTask(clock, lambda i: 0.1), TrainConfig(epochs=None, max_steps=2)).fit()
        assert flush_denormal_enabled()  # the caller's mode, not the default
        with flushed_denormals(enabled=False):
            assert flush_denormal_enabled()
    finally:
        torch.set_flush_denormal(False)


# ----------------------------------------------------------------------------------------- a search's budget

@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_common

    return bench_common


def test_a_search_budget_keeps_the_runs_and_the_final_evaluation_inside_it(benchmarks):
    """Each run takes its share plus 30 s of start-up; the final evaluation a start-up and 3 validations."""
    clock = FakeClock()
    budget = benchmarks.SearchBudget(3000.0, count=5, evaluations=2, evaluated=3.0, clock=clock.monotonic)
    start, shares = clock.now, []
    for _ in range(5):
        shares.append(budget.share())
        clock.sleep(30.0 + shares[-1])  # the process's start, then the run's budget to the last second
        budget.observe(30.0 + shares[-1], {"elapsed_seconds": shares[-1], "validation_seconds": 20.0})
    assert budget.final == pytest.approx(2 * 30.0 + 3 * 20.0)
    clock.sleep(budget.final)
    assert clock.now - start <= 3000.0 + 1e-6 and not budget.overrun
    assert shares[0] == pytest.approx(600.0) and shares[1] < shares[0]  # the later runs pay for what the first showed
    assert max(shares[1:]) - min(shares[1:]) < 1e-6  # and share the rest equally
    # the old split (3000 / 5 each) would have overrun by five start-ups and the evaluation: 270 s
    assert sum(shares) == pytest.approx(3000.0 - 5 * 30.0 - 120.0)


def test_a_budget_too_small_for_the_start_ups_says_it_overran(benchmarks):
    clock = FakeClock()
    budget = benchmarks.SearchBudget(100.0, count=3, clock=clock.monotonic)
    clock.sleep(budget.share() + 90.0)
    budget.observe(33.3 + 90.0, {"elapsed_seconds": 33.3})
    assert budget.share() == budget.floor and budget.overrun


def test_the_sst2_search_stays_inside_its_minutes(benchmarks, monkeypatch, tmp_path):
    """classify_sst2.py --search, its `rnnkit` runs replaced by ones that take their --time-budget and a start-up
    of 40 s on a fake clock, and evaluations that take a start-up and their share of the validation."""
    import classify_sst2

    clock = FakeClock()
    monkeypatch.setattr(benchmarks, "time", clock)
    monkeypatch.setattr(classify_sst2, "time", clock)
    budgets = []

    def fake_rnnkit(*args):
        if args[0] == "train":
            seconds = float(args[args.index("--time-budget") + 1])
            budgets.append(seconds)
            clock.sleep(40.0 + seconds)
            return json.dumps({"best_valid_accuracy": 0.8 + len(budgets) / 100, "valid_accuracy": 0.8,
                               "best_epoch": 2, "epoch": 2.5, "stop_reason": "time_budget", "elapsed_seconds": seconds,
                               "validation_seconds": 15.0, "run_dir": args[args.index("--out") + 1]})
        clock.sleep(40.0 + 15.0 * (2 if args[3].endswith("dev.tsv") else 1))  # the full dev set: two halves' worth
        return json.dumps({"accuracy": 0.85, "examples": 4})

    monkeypatch.setattr(classify_sst2, "rnnkit", fake_rnnkit)
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\n" + "".join(f"s{i}\t{i % 2}\n" for i in range(8)))
    args = classify_sst2.argparse.Namespace(configs=None, smoke=False, out=str(tmp_path / "sst2"))
    start = clock.now
    result = classify_sst2.search(None, args, 45.0, tmp_path / "train.tsv", dev, [])
    assert len(budgets) == len(benchmarks.CONFIGS) and result["over_budget"] is False
    assert clock.now - start <= 45 * 60  # before: 45 min of budgets, then 5 start-ups and 2 evaluations more
    assert clock.now - start >= 45 * 60 - 60  # and the budget is used
    assert result["share_minutes"][0] == pytest.approx(9.0)
