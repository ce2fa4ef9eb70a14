"""--time-budget pays for the end of the run (issue 26): training stops early enough that the final validation
and checkpoint end within the budget too (a 150 s `make run` trained for 246 s).

The Trainer-level tests use a task whose steps and validation batches take known wall time (sleeps), so that
they hold on a busy machine: the validation is most of the budget, as on a CPU with a large validation text.
"""

import time

import pytest
import torch

from rnnkit.train import RunDirectory, TrainConfig, Trainer
from rnnkit.train.budget import FinalWork, probe_validation
from rnnkit.train.task import Task, TaskLoss

STEP_SECONDS = 0.01
VALID_BATCH_SECONDS = 0.02
VALID_BATCHES = 50  # 1 s of validation, 0.3 s of which a probe runs (PROBE_SECONDS below)


@pytest.fixture(autouse=True)
def short_probes(monkeypatch):
    """Probes of 0.3 s instead of 1 s: the tests' budgets are seconds, not minutes."""
    monkeypatch.setattr("rnnkit.train.budget.PROBE_SECONDS", 0.3)


class SlowValidationTask(Task):
    """Training steps of about 10 ms and a validation of 50 batches of 20 ms each, on a one-weight model whose
    own compute is negligible (so the timings hold however busy the machine is)."""

    def __init__(self, batches_per_epoch: int = 10_000):
        self.batches_per_epoch = batches_per_epoch

    def num_train_batches(self):
        return self.batches_per_epoch

    def train_batches(self, epoch, start):
        return (torch.ones(1, 1) for _ in range(start, self.batches_per_epoch))  # (N=1, 1)

    def valid_batches(self):
        return [torch.ones(1, 1)] * VALID_BATCHES

    def loss(self, model, batch, state):
        time.sleep(STEP_SECONDS if model.training else VALID_BATCH_SECONDS)
        return TaskLoss(model(batch).square().sum(), 1, 1, None)


def model():
    torch.manual_seed(0)
    return torch.nn.Linear(1, 1)


def timed_fit(task, config, run_dir=None, log=None) -> tuple[dict, float]:
    trainer = Trainer(model(), task, config, run_dir=run_dir, log=log)
    start = time.monotonic()
    report = trainer.fit()
    return report, time.monotonic() - start


def test_the_whole_run_with_its_final_validation_and_checkpoint_ends_within_the_budget(tmp_path):
    budget = 2.5
    report, seconds = timed_fit(SlowValidationTask(), TrainConfig(epochs=None, time_budget=budget),
                                run_dir=RunDirectory.create(tmp_path / "run"))
    assert report["stop_reason"] == "time_budget"
    # Before: training ran to 2.5 s, then 1 s of validation followed. Now the run ends within the budget,
    # and it does not give away more than a little of it (two steps, the margin on 1 s, scheduling noise).
    assert budget - 0.6 <= seconds <= budget + 0.3, seconds  # before: budget + 1 s
    assert report["steps"] > 10 and "valid_loss" in report
    assert RunDirectory.open(tmp_path / "run").load().meta["trainer"]["position"]["step"] == report["steps"]


def test_a_budget_shorter_than_the_final_work_trains_a_few_steps_and_says_so(tmp_path):
    """The steps that show the machine's speed (6), then the validation timed again, then the stop."""
    lines = []
    report, _ = timed_fit(SlowValidationTask(), TrainConfig(epochs=None, time_budget=1.0),
                          run_dir=RunDirectory.create(tmp_path / "run"), log=lines.append)
    assert 1 <= report["steps"] <= 8 and report["stop_reason"] == "time_budget"
    assert RunDirectory.open(tmp_path / "run").holds_run()
    assert any(line.startswith("note: the final validation and checkpoint take about") and "--time-budget" in line
               for line in lines), lines


def test_an_epoch_end_measures_the_validation_and_the_budget_uses_it():
    trainer = Trainer(model(), SlowValidationTask(batches_per_epoch=5), TrainConfig(epochs=1))
    trainer.fit()
    measured = trainer.stops.final_work.validation
    assert VALID_BATCHES * VALID_BATCH_SECONDS <= measured <= VALID_BATCHES * VALID_BATCH_SECONDS + 0.5


def test_without_a_budget_nothing_is_probed():
    class Counting(SlowValidationTask):
        probes = 0

        def valid_batches(self):
            Counting.probes += 1
            return super().valid_batches()

    Trainer(model(), Counting(), TrainConfig(max_steps=2)).fit()
    assert Counting.probes == 1  # the final report's validation only


def test_the_reserve_is_two_steps_and_the_final_work_with_a_margin():
    final = FinalWork()
    final.checkpoint_bytes(4_000_000)
    final.observe_step(0.2)
    final.observe_validation(30.0)
    assert final.reserve() == pytest.approx(2 * 0.2 + 1.1 * (30.0 + 0.25 + 0.08))
    final.observe_step(1.0)  # a slow step counts at once
    assert final.step == 1.0
    final.observe_step(0.0)  # a fast one slowly
    assert final.step == pytest.approx(0.9)
    final.observe_checkpoint(0.5)
    assert final.checkpoint == 0.5


@pytest.mark.parametrize("sized", [True, False])
def test_the_probe_scales_the_first_batches_to_all_of_them(sized):
    ran = []

    def run_batch(batch):
        ran.append(batch)
        time.sleep(0.3 if batch in (0, 3) else 0.03)  # the first batch warms up; the fourth stalls: neither counts

    batches = (lambda: list(range(100))) if sized else (lambda: iter(range(100)))
    estimate = probe_validation(batches, run_batch)
    assert 100 * 0.03 <= estimate <= 100 * 0.03 * 1.5, estimate
    assert 6 <= len(ran) < 100  # a probe, not a validation


def test_the_probe_of_a_short_validation_is_the_validation():
    assert probe_validation(lambda: None, lambda batch: None) == 0.0
    assert probe_validation(lambda: [], lambda batch: None) == 0.0
    estimate = probe_validation(lambda: [1, 2], lambda batch: time.sleep(0.05))
    assert 0.1 <= estimate <= 0.2


def test_a_probed_validation_slows_down_as_the_steps_do():
    """A machine that gets busier after the probe: the estimate follows the steps (but never below half)."""
    final = FinalWork()
    final.observe_validation(10.0, probed=True)
    for seconds in (1.0, 0.1, 0.1, 0.1, 0.1, 0.1):  # the first step warms up: not part of the base
        final.observe_step(seconds)
    assert final.validation == pytest.approx(10.0, rel=0.05)
    for _ in range(30):  # three times slower
        final.observe_step(0.3)
    assert final.validation == pytest.approx(30.0, rel=0.05)
    for _ in range(30):  # much faster: never below half the timed one
        final.observe_step(0.001)
    assert final.validation == pytest.approx(5.0)
    final.observe_validation(12.0)  # measured now: now is its base
    assert final.validation == pytest.approx(12.0)


class StallingTask(SlowValidationTask):
    """Steps stall (ten times slower) for a while after the first 50: the validation itself does not slow."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def loss(self, model, batch, state):
        if model.training:
            self.steps += 1
            time.sleep(STEP_SECONDS * (10 if 50 < self.steps <= 80 else 1))
            return TaskLoss(model(batch).square().sum(), 1, 1, None)
        return super().loss(model, batch, state)


def test_a_stall_of_the_steps_does_not_end_the_run_early_when_the_validation_is_as_fast_as_ever(monkeypatch):
    """Scaled by the stalled steps, the 1 s validation looks like 10 s; timed again, it is 1 s: the run goes on."""
    monkeypatch.setattr("rnnkit.train.trainer.RECHECK_SCALE", 1.5)
    budget = 5.0
    report, seconds = timed_fit(StallingTask(), TrainConfig(epochs=None, time_budget=budget))
    assert report["stop_reason"] == "time_budget"
    assert budget - 1.0 <= seconds <= budget + 0.3, seconds  # without the second timing: 2 s


class BusyAtTheStartTask(SlowValidationTask):
    """The validation is five times slower while the probe before the first step times it (another process
    held the machine for those seconds), as fast as ever afterwards."""

    def __init__(self):
        super().__init__()
        self.validation_batches = 0

    def loss(self, model, batch, state):
        if not model.training:
            self.validation_batches += 1
            if self.validation_batches <= 6:  # the first probe: its warm-up batch and five timed ones
                time.sleep(4 * VALID_BATCH_SECONDS)
        return super().loss(model, batch, state)


def test_a_machine_busy_while_the_first_probe_ran_does_not_end_the_run_after_one_step():
    """The first probe says 5 s of validation (more than the budget); the steps show the machine is fast,
    the validation is timed again (1 s), and the run uses its budget."""
    budget = 4.0
    report, seconds = timed_fit(BusyAtTheStartTask(), TrainConfig(epochs=None, time_budget=budget))
    assert report["stop_reason"] == "time_budget" and report["steps"] > 20
    assert budget - 1.0 <= seconds <= budget + 0.3, seconds  # before: one step, about 2 s


def test_a_provisional_estimate_counts_once_its_base_is_known():
    final = FinalWork()
    final.observe_validation(100.0, probed=True, provisional=True)
    assert final.reserve() < 1 and not final.unconfirmed  # no step has shown the machine's speed yet
    for _ in range(6):
        final.observe_step(0.01)
    assert final.unconfirmed and final.reserve() < 1
    final.confirm()
    assert final.reserve() > 100
