"""Non-finite and runaway losses in the Trainer (issue 17): a runaway loss stops the run; "good" means
validated with a finite loss, and the stop's one line says truly which checkpoints are on disk (after an
overwrite too); a setting that is not a finite number is named as the cause; the report holds no NaN or
Infinity."""

import json
import math

import pytest
import torch
from cli_helpers import snapshot
from conftest import StreamToyTask, ToyLanguageModel

from rnnkit.errors import InputError
from rnnkit.train import RunDirectory, TrainConfig, Trainer, seed_everything
from rnnkit.train.divergence import RUNAWAY_WINDOW, remedy, runaway_threshold
from rnnkit.train.task import uniform_baseline

VOCAB = 7  # the toy tasks' vocabulary: a uniform guess scores ln 7 = 1.95 nats per token
BASELINE = uniform_baseline(VOCAB, "tokens")
STEPS_PER_EPOCH = 19  # StreamToyTask(): 400 tokens in 4 streams of 5-token windows


class JudgedTask(StreamToyTask):
    """The toy stream with a baseline, whose training loss is multiplied by ``scale`` (1: the real loss) or,
    with ``constant``, replaced by that loss per token (the gradient stays the real one's, scaled to zero)."""

    def __init__(self, scale=1.0, constant=None, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.constant = scale, constant

    def baseline_loss(self):
        return BASELINE

    def loss(self, model, batch, state):
        out = super().loss(model, batch, state)
        if not model.training:
            return out
        if self.constant is not None:
            return out._replace(loss_sum=out.loss_sum * 0 + self.constant * out.n_tokens)
        return out._replace(loss_sum=out.loss_sum * self.scale)


class UnjudgedTask(JudgedTask):
    """The same without a baseline, as a regression task may be: a runaway loss is not judged."""

    def baseline_loss(self):
        return None


def model():
    seed_everything(0)
    return ToyLanguageModel()


def fit_raises(task, config, run_dir=None, on_step=None) -> str:
    with pytest.raises(InputError) as caught:
        Trainer(model(), task, config, run_dir=run_dir, on_step=on_step).fit()
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------- runaway losses


def test_a_runaway_loss_over_an_epoch_stops_the_run_before_its_checkpoint(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    message = fit_raises(JudgedTask(scale=1e6), TrainConfig(epochs=2), run_dir=run)
    assert message.startswith("training diverged: mean loss ")
    assert "over epoch 1 is far above 1.95, the loss of a uniform guess over 7 tokens" in message
    assert "lower --lr (now 0.002)" in message and "--clip 1.0" in message
    assert "no checkpoint was written" in message
    assert not (tmp_path / "run" / "latest.json").exists()


@pytest.mark.parametrize("offset, stops", [(-0.01, False), (0.01, True)])
def test_the_line_is_three_baselines_and_ten(offset, stops):
    threshold = 3 * math.log(VOCAB) + 10
    assert runaway_threshold(BASELINE) == pytest.approx(threshold)
    task, config = JudgedTask(constant=threshold + offset), TrainConfig(epochs=1)
    if stops:
        assert "over epoch 1" in fit_raises(task, config)
    else:
        assert Trainer(model(), task, config).fit()["stop_reason"] == "epochs"


def test_a_long_epoch_is_judged_every_window_of_steps():
    long_epoch = dict(n_tokens=4 * 5 * (RUNAWAY_WINDOW + 50) + 1)  # 150 steps per epoch
    steps = []
    message = fit_raises(JudgedTask(scale=1e6, **long_epoch), TrainConfig(epochs=1),
                         on_step=lambda step, loss: steps.append(step))
    assert "over the first 100 steps of epoch 1" in message and steps[-1] == RUNAWAY_WINDOW


def test_a_run_shorter_than_the_window_is_judged_when_it_stops(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    message = fit_raises(JudgedTask(scale=1e6), TrainConfig(epochs=None, max_steps=5), run_dir=run)
    assert "over the first 5 steps of epoch 1" in message
    assert not (tmp_path / "run" / "latest.json").exists()  # the runaway weights were not saved


def test_a_healthy_run_is_not_stopped():
    report = Trainer(model(), JudgedTask(), TrainConfig(epochs=2, lr=0.05)).fit()
    assert report["stop_reason"] == "epochs" and report["train_loss"] < math.log(VOCAB)


def test_a_task_without_baseline_is_stopped_only_by_a_non_finite_loss():
    # As documented: a task with no baseline (a regression's MSE has no uniform guess) is not judged.
    report = Trainer(model(), UnjudgedTask(scale=1e6), TrainConfig(epochs=1)).fit()
    assert report["stop_reason"] == "epochs" and report["train_loss"] > 1e5


def test_a_runaway_in_a_later_epoch_keeps_the_good_checkpoint(tmp_path):
    task = JudgedTask()
    run = RunDirectory.create(tmp_path / "run")

    def run_away_in_epoch_2(step, loss):
        if step == STEPS_PER_EPOCH:
            task.scale = 1e6

    message = fit_raises(task, TrainConfig(epochs=3), run_dir=run, on_step=run_away_in_epoch_2)
    assert "over epoch 2" in message
    valid_loss = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())["valid_loss"]
    assert f"best.json and latest.json (epoch 1, step 19, validation loss {valid_loss:.4g}) are intact" in message
    assert run.load("best").meta["trainer"]["position"]["step"] == STEPS_PER_EPOCH


# ------------------------------------------------------------------------------------- non-finite losses


def scale_weights_at(step_to_blow, trainer_model, factor=1e38):
    def on_step(step, loss):
        if step == step_to_blow:
            with torch.no_grad():
                for parameter in trainer_model.parameters():
                    parameter.mul_(factor).clamp_(-3e38, 3e38)  # finite, but every logit overflows
    return on_step


def test_the_last_good_checkpoint_is_a_validated_one_not_the_latest(tmp_path):
    # Finite weights scaled up by a runaway update pass the weight check and are saved (--save-every 1), but
    # score Infinity: the line must name epoch 1's checkpoint as the good one, and the latest as not validated.
    run = RunDirectory.create(tmp_path / "run")
    net = model()
    trainer = Trainer(net, StreamToyTask(), TrainConfig(epochs=2, save_every=1), run_dir=run,
                      on_step=scale_weights_at(STEPS_PER_EPOCH + 3, net))
    with pytest.raises(InputError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "training diverged: the training loss became" in message and "at step 23 (epoch 2)" in message
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert (f"best.json (epoch 1, step 19, validation loss {record['valid_loss']:.4g}) and latest.json "
            "(step 22, not validated) are intact") in message
    # what the line says is what is on disk: the best one scores finite, the latest does not
    best, latest = run.load("best"), run.load("latest")
    assert best.meta["trainer"]["position"]["step"] == 19 and latest.meta["trainer"]["position"]["step"] == 22
    scores = []
    for checkpoint in (best, latest):
        fresh = ToyLanguageModel()
        checkpoint.load_weights(fresh)
        scores.append(validation_loss(fresh))
    assert scores[0] == pytest.approx(record["valid_loss"], rel=1e-6) and not math.isfinite(scores[1])


@torch.no_grad()
def validation_loss(net):
    task, loss_sum, tokens, state = StreamToyTask(), 0.0, 0, None
    net.eval()
    for batch in task.valid_batches():
        out = task.loss(net, batch, state)
        loss_sum, tokens, state = loss_sum + out.loss_sum.item(), tokens + out.n_tokens, out.state
    return loss_sum / tokens


def test_a_non_finite_validation_loss_writes_no_checkpoint_and_keeps_the_best(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    net = model()
    trainer = Trainer(net, StreamToyTask(), TrainConfig(epochs=3), run_dir=run,
                      on_step=scale_weights_at(2 * STEPS_PER_EPOCH, net))  # the last step of epoch 2
    with pytest.raises(InputError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "training diverged: the validation loss became" in message and "at step 38 (epoch 2)" in message
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert f"best.json and latest.json (epoch 1, step 19, validation loss {record['valid_loss']:.4g}) are intact" \
        in message
    assert run.load("best").path == run.load("latest").path
    assert run.load().meta["trainer"]["position"]["step"] == STEPS_PER_EPOCH


class ScriptedScoreTask(StreamToyTask):
    """Validation scored with a scripted number that selects the best checkpoint (like forecasting's MAE)."""

    selection = ("mae", "min")

    def __init__(self, scores):
        super().__init__()
        self.scores = iter(scores)

    def score_validation(self, model):
        return {"mae": next(self.scores)}


@pytest.mark.parametrize("scores, best_epoch", [([math.inf, math.inf], None), ([math.nan, 2.0, 3.0], 2)])
def test_a_non_finite_selection_score_never_becomes_best(tmp_path, scores, best_epoch):
    run = RunDirectory.create(tmp_path / "run")
    report = Trainer(model(), ScriptedScoreTask(scores), TrainConfig(epochs=len(scores)), run_dir=run).fit()
    assert report.get("best_epoch") == best_epoch
    assert (tmp_path / "run" / "best.json").exists() == (best_epoch is not None)


# ------------------------------------------------------------------------------------- the cause named


@pytest.mark.parametrize("setting, value, seen, named", [
    ("clip", math.nan, "the training loss became nan at step 2",
     "--clip is nan, not a finite number; give a finite --clip such as 1.0"),
    ("clip_value", math.nan, "the gradient norm became nan at step 1", "--clip-value is nan"),
    ("lr", math.inf, "the training loss became nan at step 2", "--lr is inf"),
])
def test_a_setting_that_is_not_a_number_is_named_as_the_cause(setting, value, seen, named):
    # A library user can build such a TrainConfig (the command line refuses it up front).
    config = TrainConfig(epochs=1, optimizer="sgd")
    setattr(config, setting, value)
    message = fit_raises(StreamToyTask(), config)
    assert message.startswith(f"training diverged: {seen}")
    assert named in message and "lower --lr" not in message


@pytest.mark.parametrize("clip, advice", [
    (None, "lower --lr (now 0.1) or clip gradients (--clip 1.0)"),
    (5.0, "lower --lr (now 0.1) or clip gradients harder (--clip 1.0; now 5)"),
    (0.5, "lower --lr (now 0.1)"),
])
def test_the_advice_fits_the_clipping_in_use(clip, advice):
    assert remedy(TrainConfig(lr=0.1, clip=clip)) == advice


# ------------------------------------------------------------------------------------- --overwrite


class PoisonedTask(StreamToyTask):
    """The loss of the third training step is NaN."""

    def loss(self, model, batch, state):
        out = super().loss(model, batch, state)
        if model.training:
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3:
                return out._replace(loss_sum=out.loss_sum * math.nan)
        return out


class LoggedPoisonedTask(PoisonedTask):
    """The same, recording the gradient's flow (--log-gradients): a record file written before any checkpoint."""

    def gradient_flow(self, model, batch, state):
        return {"hidden": [1.0]}


@pytest.fixture
def old_run(tmp_path):
    path = tmp_path / "run"
    Trainer(model(), StreamToyTask(), TrainConfig(epochs=1), run_dir=RunDirectory.create(path)).fit()
    return path


def test_an_overwrite_that_diverges_before_writing_keeps_the_old_run(old_run):
    before = snapshot(old_run)
    message = fit_raises(PoisonedTask(), TrainConfig(epochs=1),
                         run_dir=RunDirectory.create(old_run, overwrite=True))
    assert message.endswith(f"no checkpoint of this run was written; the old run in {old_run} is intact")
    assert snapshot(old_run) == before


def test_an_overwrite_that_diverges_after_an_unvalidated_checkpoint_keeps_the_old_run(old_run):
    """Before: the new run's first (mid-epoch, unvalidated) checkpoint replaced the old run, then it diverged."""
    before = snapshot(old_run)
    message = fit_raises(PoisonedTask(), TrainConfig(epochs=1, save_every=1),
                         run_dir=RunDirectory.create(old_run, overwrite=True))
    assert message.endswith("this run's checkpoints (none validated) were removed; the old run in "
                            f"{old_run} is intact (an --overwrite replaces it only with an end-of-epoch checkpoint)")
    assert snapshot(old_run) == before


def test_an_overwrite_whose_first_record_came_before_diverging_keeps_the_old_run(old_run):
    """Before: the new run's first gradients line removed the old run."""
    before = snapshot(old_run)
    message = fit_raises(LoggedPoisonedTask(), TrainConfig(epochs=1, log_gradients=1),
                         run_dir=RunDirectory.create(old_run, overwrite=True))
    assert message.endswith(f"no checkpoint of this run was written; the old run in {old_run} is intact")
    assert snapshot(old_run) == before


def test_an_overwrite_replaces_the_old_run_at_its_first_epoch_end(old_run):
    run_dir = RunDirectory.create(old_run, overwrite=True)
    Trainer(model(), StreamToyTask(), TrainConfig(epochs=1, save_every=1), run_dir=run_dir).fit()
    records = [json.loads(line) for line in (old_run / "metrics.jsonl").read_text().splitlines()]
    assert not run_dir.replacing and [record["epoch"] for record in records] == [1]
    checkpoint = RunDirectory.open(old_run).load()
    assert checkpoint.meta["trainer"]["position"]["step"] == records[0]["step"]
    assert sorted(p.name for p in (old_run / "checkpoints").iterdir()) == [checkpoint.path.name]


# ------------------------------------------------------------------------------------- the report


@pytest.mark.parametrize("task, config, reason", [
    (StreamToyTask(valid=False), TrainConfig(epochs=1), "no validation data"),
    (StreamToyTask(), TrainConfig(epochs=None, max_steps=3), "no epoch has finished"),
])
def test_a_missing_best_validation_loss_is_none_with_its_reason(task, config, reason):
    report = Trainer(model(), task, config).fit()
    assert report["best_valid_loss"] is None and report["best_valid_loss_reason"] == reason
    json.dumps(report, allow_nan=False)  # every float finite: the report is JSON as it is
