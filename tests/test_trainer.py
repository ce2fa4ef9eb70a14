"""The Trainer on toy tasks: the step against a hand-written loop, masking, clipping, optimizers, schedules,
stopping rules, metrics.jsonl, non-finite losses, and exact resume."""

import json
import math
import os
import signal

import pytest
import torch
from conftest import PaddedToyTask, StreamToyTask, ToyLanguageModel

from rnnkit.errors import InputError
from rnnkit.nn import detach_state
from rnnkit.train import RunDirectory, TrainConfig, Trainer, seed_everything, summed_token_loss
from rnnkit.train.divergence import Diverged
from rnnkit.train.optim import Schedule, ScheduleSettings


def make_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return ToyLanguageModel(**kwargs)


def clone_weights(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def assert_same_weights(first, second):
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_truncated_bptt_step_equals_a_hand_written_loop():
    task = StreamToyTask()
    model, reference = make_model(), make_model()
    config = TrainConfig(epochs=None, max_steps=4, lr=0.1, optimizer="sgd", clip=0.5)
    Trainer(model, task, config).fit()

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    state = None
    for inputs, targets in list(task.train_batches(0, 0))[:4]:
        logits, state = reference(inputs, state)  # (N, L, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        optimizer.step()
        state = detach_state(state)
    for (name, tensor), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(tensor, expected, rtol=1e-6, atol=1e-7, msg=name)


def test_padded_batches_mask_padding_and_average_over_real_tokens():
    task = PaddedToyTask()
    model, reference = make_model(), make_model()
    Trainer(model, task, TrainConfig(epochs=None, max_steps=1, lr=1.0, optimizer="sgd", clip=None)).fit()

    # The same step computed one unpadded sequence at a time.
    chosen = task.sequences[: task.batch_size]
    total = sum(len(sequence) - 1 for sequence in chosen)
    loss = sum(
        torch.nn.functional.cross_entropy(reference(s[None, :-1])[0][0], s[1:], reduction="sum") for s in chosen
    ) / total
    loss.backward()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter -= parameter.grad
    for (name, tensor), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(tensor, expected, rtol=1e-5, atol=1e-6, msg=name)


def test_loss_summed_over_time_averages_over_sequences():
    task = PaddedToyTask()
    mean_model, sum_model = make_model(), make_model()
    base = dict(epochs=None, max_steps=1, lr=1.0, optimizer="sgd", clip=None)
    Trainer(mean_model, task, TrainConfig(**base)).fit()
    Trainer(sum_model, task, TrainConfig(**base, loss_over_time="sum")).fit()
    initial = make_model()
    inputs, targets = task.batch(0)
    tokens, sequences = int((targets != 0).sum()), inputs.size(0)
    for name, start in initial.state_dict().items():
        mean_step = mean_model.state_dict()[name] - start
        sum_step = sum_model.state_dict()[name] - start
        torch.testing.assert_close(sum_step, mean_step * tokens / sequences, rtol=1e-4, atol=1e-6)


def test_summed_token_loss_counts_only_real_tokens():
    logits = torch.randn(2, 3, 5)  # (N, L, V)
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])  # (N, L), 0 = padding
    loss_sum, tokens = summed_token_loss(logits, targets, pad_index=0)
    expected = sum(torch.nn.functional.cross_entropy(logits[n, t], targets[n, t], reduction="sum")
                   for n, t in [(0, 0), (0, 1), (1, 0)])
    assert tokens == 3
    torch.testing.assert_close(loss_sum, expected)


@pytest.mark.parametrize("clip, clip_value", [(0.01, None), (None, 0.001)])
def test_clipping_bounds_the_update(clip, clip_value):
    model = make_model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    config = TrainConfig(epochs=None, max_steps=1, lr=1.0, optimizer="sgd", clip=clip, clip_value=clip_value)
    Trainer(model, StreamToyTask(), config).fit()
    step = torch.cat([p.detach().flatten() for p in model.parameters()]) - before
    if clip is not None:
        assert step.norm() <= clip + 1e-6  # float32 rounding of parameter - update
    else:
        assert step.abs().max() <= clip_value + 1e-6


@pytest.mark.parametrize("optimizer, momentum", [("adam", 0.0), ("adamw", 0.0), ("sgd", 0.9)])
def test_each_optimizer_lowers_the_loss(optimizer, momentum):
    losses = []
    config = TrainConfig(epochs=3, lr=0.3 if optimizer == "sgd" else 0.02, optimizer=optimizer, momentum=momentum)
    Trainer(make_model(), StreamToyTask(n_tokens=200, vocab_size=4), config, on_step=lambda step, loss: losses.append(loss)).fit()
    assert sum(losses[-5:]) < sum(losses[:5])


def learning_rates(settings, epochs=7, steps_per_epoch=3, valid_losses=None):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = Schedule(optimizer, settings)
    rates = []
    for epoch in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            optimizer.step()
            schedule.after_step()
        schedule.after_epoch(valid_losses[epoch] if valid_losses else 1.0)
    return rates


def test_step_decay_follows_zaremba():
    rates = learning_rates(ScheduleSettings("step", lr_decay=0.5, decay_after=4))
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]


def test_cosine_anneals_to_zero_over_the_run():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = Schedule(optimizer, ScheduleSettings("cosine", total_steps=10))
    rates = []
    for _ in range(10):
        optimizer.step()
        schedule.after_step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[4] == pytest.approx(0.5) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_plateau_decays_when_validation_stops_improving():
    rates = learning_rates(ScheduleSettings("plateau", lr_decay=0.5), epochs=4, valid_losses=[3.0, 2.0, 2.5, 2.5])
    assert rates == [1.0, 1.0, 1.0, 0.5]


def test_cosine_without_a_known_length_is_refused():
    """On the steps clock; on the time clock (the default with a budget) the budget is its length
    (tests/test_trainer_clock.py)."""
    with pytest.raises(InputError, match="--epochs"):
        Trainer(make_model(), StreamToyTask(),
                TrainConfig(epochs=None, time_budget=5, schedule="cosine", schedule_clock="steps"))


class ConstantValidationTask(StreamToyTask):
    """Validation loss that never improves, whatever the model learns."""

    def loss(self, model, batch, state):
        out = super().loss(model, batch, state)
        return out if model.training else out._replace(loss_sum=torch.tensor(float(out.n_tokens)))


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    report = Trainer(make_model(), ConstantValidationTask(n_tokens=100), TrainConfig(epochs=10, patience=2),
                     run_dir=RunDirectory.create(tmp_path / "run")).fit()
    assert report["stop_reason"] == "early_stopping"
    assert report["epoch"] == 3 and report["best_valid_loss"] == pytest.approx(1.0)


class ScoredTask(StreamToyTask):
    """A task that scores validation with its own number, which peaks at epoch 2 while the loss keeps falling."""

    selection = ("score", "max")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.scores = iter([0.5, 0.9, 0.7, 0.6])

    def score_validation(self, model):
        assert not model.training
        return {"score": next(self.scores)}


def test_a_task_score_picks_the_best_checkpoint_and_drives_early_stopping(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    report = Trainer(make_model(), ScoredTask(), TrainConfig(epochs=4, patience=2), run_dir=run).fit()
    records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [record["valid_score"] for record in records] == [0.5, 0.9, 0.7, 0.6]
    assert report["stop_reason"] == "early_stopping"
    assert run.load("best").meta["trainer"]["position"]["epoch"] == 2


def test_stop_at_ends_the_run_at_the_first_epoch_whose_score_reaches_it():
    scored = Trainer(make_model(), ScoredTask(), TrainConfig(epochs=4, stop_at=0.85)).fit()
    assert scored["stop_reason"] == "stop_at" and scored["epoch"] == 2 and scored["valid_score"] == 0.9

    full = Trainer(make_model(), StreamToyTask(), TrainConfig(epochs=3)).fit()
    losses = Trainer(make_model(), StreamToyTask(), TrainConfig(epochs=3, stop_at=1e9)).fit()
    assert losses["stop_reason"] == "stop_at" and losses["epoch"] == 1  # any loss is at or below 1e9
    never = Trainer(make_model(), StreamToyTask(), TrainConfig(epochs=3, stop_at=-1.0)).fit()
    assert never["stop_reason"] == "epochs" and never["valid_loss"] == full["valid_loss"]
    with pytest.raises(InputError, match="--stop-at must be a finite number"):
        TrainConfig(stop_at=float("nan"))


def test_time_budget_stops_the_run():
    report = Trainer(make_model(), StreamToyTask(n_tokens=4000), TrainConfig(epochs=None, time_budget=0.3)).fit()
    assert report["stop_reason"] == "time_budget" and report["steps"] >= 1
    # The budget includes the final validation and checkpoint, so the run ends before it rather than past it
    # (tests/test_time_budget.py holds it to that with known timings).
    assert report["elapsed_seconds"] < 5


def test_metrics_jsonl_has_one_line_per_epoch(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    report = Trainer(make_model(), StreamToyTask(), TrainConfig(epochs=3), run_dir=run).fit()
    records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1, 2, 3]
    assert [record["step"] for record in records] == [19, 38, 57]
    for record in records:
        assert {"train_loss", "train_perplexity", "valid_loss", "valid_perplexity", "lr",
                "tokens_per_second", "elapsed_seconds"} <= record.keys()
        assert record["valid_perplexity"] == pytest.approx(math.exp(record["valid_loss"]), rel=1e-6)
        assert record["tokens_per_second"] > 0
    assert report["valid_loss"] == records[-1]["valid_loss"] and report["stop_reason"] == "epochs"


class PoisonedTask(StreamToyTask):
    """The loss of the third step is NaN, as after an exploding update."""

    def loss(self, model, batch, state):
        out = super().loss(model, batch, state)
        self.calls = getattr(self, "calls", 0) + 1
        return out._replace(loss_sum=out.loss_sum * float("nan")) if self.calls == 3 else out


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    model = make_model()
    with pytest.raises(InputError) as caught:
        Trainer(model, PoisonedTask(), TrainConfig(epochs=1, save_every=1), run_dir=run).fit()
    message = str(caught.value)
    assert isinstance(caught.value, Diverged)  # a benchmark that trains many models catches it and goes on
    assert "step 3" in message and "--lr" in message and "--clip" in message
    assert message.endswith("latest.json (step 2, not validated) is intact; no checkpoint of this run has a finite "
                            "validation loss yet")  # mid-epoch checkpoints are not "good": none was validated
    assert "\n" not in message
    checkpoint = RunDirectory.open(run.path).load()
    assert checkpoint.meta["trainer"]["position"]["step"] == 2


def test_signal_stops_cleanly_with_a_checkpoint(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    # What was there before: Python's default, or SIG_IGN where the suite runs under nohup or in the background
    handler_before = signal.getsignal(signal.SIGINT)

    def interrupt_at_step_3(step, loss):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    report = Trainer(make_model(), StreamToyTask(), TrainConfig(epochs=2), run_dir=run, on_step=interrupt_at_step_3).fit()
    assert report["stop_reason"] == "interrupted" and report["steps"] == 4
    assert RunDirectory.open(run.path).load().meta["trainer"]["position"]["step"] == 4
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is given back


@pytest.mark.parametrize("task_class", [StreamToyTask, PaddedToyTask])
def test_resume_mid_epoch_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, task_class):
    config = dict(epochs=3, lr=0.01, schedule="step", decay_after=1)

    def run(directory, max_steps=None, resume=False):
        seed_everything(3)
        model = ToyLanguageModel(num_layers=2, dropout=0.3)
        trainer = Trainer(model, task_class(), TrainConfig(**config, max_steps=max_steps),
                          run_dir=RunDirectory.open(directory) if resume else RunDirectory.create(directory))
        if resume:
            seed_everything(99)  # the restored RNG states must win over whatever the process has
            trainer.restore(trainer.run_dir.load())
        return model, trainer.fit()

    whole, _ = run(tmp_path / "whole")
    run(tmp_path / "parts", max_steps=task_class().num_train_batches() + 1)
    resumed, report = run(tmp_path / "parts", resume=True)
    assert report["stop_reason"] == "epochs"
    assert_same_weights(clone_weights(whole), clone_weights(resumed))
    whole_metrics = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    parts_metrics = (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()
    assert len(whole_metrics) == len(parts_metrics) == 3
    for mine, theirs in zip(whole_metrics, parts_metrics):
        mine, theirs = json.loads(mine), json.loads(theirs)
        assert mine["valid_loss"] == theirs["valid_loss"] and mine["train_loss"] == theirs["train_loss"]


class DuckTypedTask:
    """A task written against rnnkit 0.1's duck-typed interface: no Task base, no optional parts."""

    carries_state = False

    def __init__(self):
        self.inner = PaddedToyTask()

    def num_train_batches(self):
        return self.inner.num_train_batches()

    def train_batches(self, epoch, start):
        return self.inner.train_batches(epoch, start)

    def valid_batches(self):
        return self.inner.valid_batches()

    def loss(self, model, batch, state):
        return self.inner.loss(model, batch, state)


def test_a_task_without_the_task_base_still_trains_with_the_defaults():
    seed_everything(0)
    duck = Trainer(make_model(), DuckTypedTask(), TrainConfig(epochs=1)).fit()
    seed_everything(0)
    based = Trainer(make_model(), PaddedToyTask(), TrainConfig(epochs=1)).fit()
    assert duck["valid_loss"] == based["valid_loss"] and "best_epoch" not in duck
