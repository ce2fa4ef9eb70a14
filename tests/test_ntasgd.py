"""NT-ASGD: SGD before the trigger, AWD-LSTM's non-monotone trigger, torch.optim.ASGD's average after it,
the averaged weights swapped in and out, and a checkpoint saved with them resuming exactly; then NT-ASGD as
the Trainer's ``optimizer="ntasgd"``: the averaged weights validated, saved and left in the model, and a
resumed run equal to an uninterrupted one."""

import copy
import json

import pytest
import torch
from cli_helpers import latest_weights, run_cli
from conftest import StreamToyTask, ToyLanguageModel

from rnnkit.errors import InputError
from rnnkit.train import OPTIMIZERS, RunDirectory, TrainConfig, Trainer, seed_everything
from rnnkit.train.ntasgd import NTASGD, averaged_weights, observe_validation
from rnnkit.train.optim import build_optimizer


def model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    return model, x, y


def train(model, optimizer, x, y, steps: int) -> None:
    for i in range(steps):
        rows = slice(8 * (i % 8), 8 * (i % 8) + 8)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
        optimizer.step()


def trigger(optimizer: NTASGD) -> None:
    """Fire the trigger: nonmono + 1 improving losses, then a worse one."""
    n = optimizer.param_groups[0]["nonmono"]
    losses = [10.0 - i for i in range(n + 1)] + [100.0]
    assert [optimizer.observe(v) for v in losses] == [False] * (n + 1) + [True]


def test_before_the_trigger_it_is_plain_sgd_with_weight_decay():
    model, x, y = model_and_data()
    reference = copy.deepcopy(model)
    train(model, NTASGD(model.parameters(), lr=0.3, weight_decay=0.01), x, y, steps=12)
    train(reference, torch.optim.SGD(reference.parameters(), lr=0.3, weight_decay=0.01), x, y, steps=12)
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)


@pytest.mark.parametrize("nonmono", [1, 2, 5])
def test_trigger_is_awd_lstms_non_monotone_rule(nonmono):
    # AWD-LSTM: switch when len(losses) > nonmono and loss > min(losses[:-nonmono]), checked before appending.
    losses = [5.0, 4.0, 4.5, 4.2, 3.9, 4.1, 4.3, 4.6, 4.8, 3.0, 5.0, 6.0]
    expected_at = None
    for k, v in enumerate(losses):
        if len(losses[:k]) > nonmono and v > min(losses[:k][:-nonmono]):
            expected_at = k
            break
    optimizer = NTASGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, nonmono=nonmono)
    switched = [optimizer.observe(v) for v in losses]
    assert switched.index(True) == expected_at and switched.count(True) == 1
    assert optimizer.averaging


def test_no_validation_data_never_triggers():
    optimizer = NTASGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, nonmono=1)
    assert not any(optimizer.observe(None) for _ in range(10)) and not optimizer.averaging


def test_after_the_trigger_it_averages_every_iterate_of_sgd():
    # The oracle: plain SGD from the same weights, its iterates after each step recorded and averaged by hand.
    model, x, y = model_and_data(1)
    optimizer = NTASGD(model.parameters(), lr=0.2, nonmono=2)
    train(model, optimizer, x, y, steps=5)
    trigger(optimizer)
    assert optimizer.switch_step == 5
    reference = copy.deepcopy(model)
    sgd = torch.optim.SGD(reference.parameters(), lr=0.2)
    iterates = []
    for i in range(11):
        train(model, optimizer, x[8 * (i % 8):], y[8 * (i % 8):], steps=1)
        train(reference, sgd, x[8 * (i % 8):], y[8 * (i % 8):], steps=1)
        iterates.append([p.detach().clone() for p in reference.parameters()])
    for index, (ours, theirs) in enumerate(zip(model.parameters(), reference.parameters())):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
        mean = torch.stack([step[index] for step in iterates]).mean(0)
        torch.testing.assert_close(optimizer.state[ours]["average"], mean, rtol=0, atol=1e-6)
    assert optimizer.param_groups[0]["averaged_steps"] == 11


def test_the_average_matches_torch_asgd_but_for_its_first_iterate():
    # AWD-LSTM's ASGD(lambd=0, t0=0) takes the same steps; its ax leaves out the first iterate (mu lags a step).
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
    ours, asgd = NTASGD([a], lr=0.5, nonmono=1), torch.optim.ASGD([b], lr=0.5, lambd=0.0, t0=0)
    trigger(ours)
    iterates = []
    for i in range(6):
        a.grad = b.grad = torch.tensor([1.0, -2.0, 0.5]) * (i + 1)
        ours.step()
        asgd.step()
        iterates.append(a.detach().clone())
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(asgd.state[b]["ax"], torch.stack(iterates[1:]).mean(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.state[a]["average"], torch.stack(iterates).mean(0), rtol=0, atol=1e-6)


def test_averaged_swaps_in_the_mean_and_restores_the_iterate():
    model, x, y = model_and_data(2)
    optimizer = NTASGD(model.parameters(), lr=0.1, nonmono=1)
    before = [p.detach().clone() for p in model.parameters()]
    with optimizer.averaged():  # nothing averaged yet: a no-op
        assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    trigger(optimizer)
    train(model, optimizer, x, y, steps=4)
    raw = [p.detach().clone() for p in model.parameters()]
    means = [optimizer.state[p]["average"].clone() for p in model.parameters()]
    assert not all(torch.equal(r, m) for r, m in zip(raw, means))
    with averaged_weights(optimizer):
        assert all(torch.equal(p, m) for p, m in zip(model.parameters(), means))
        with pytest.raises(RuntimeError, match="step"):
            optimizer.step()
        with pytest.raises(RuntimeError, match="nest"):
            with optimizer.averaged():
                pass
    assert all(torch.equal(p, r) for p, r in zip(model.parameters(), raw))
    assert all(torch.equal(optimizer.state[p]["average"], m) for p, m in zip(model.parameters(), means))


def test_averaged_weights_is_a_no_op_for_other_optimizers():
    parameter = torch.nn.Parameter(torch.ones(2))
    with averaged_weights(torch.optim.SGD([parameter], lr=1.0)):
        assert torch.equal(parameter, torch.ones(2))


def test_a_checkpoint_saved_inside_averaged_resumes_exactly():
    model, x, y = model_and_data(3)
    optimizer = NTASGD(model.parameters(), lr=0.2, nonmono=1)
    train(model, optimizer, x, y, steps=3)
    trigger(optimizer)
    train(model, optimizer, x, y, steps=5)
    with optimizer.averaged():  # what a trainer saves: the averaged weights, the raw iterate in the state
        weights = copy.deepcopy(model.state_dict())
        state = copy.deepcopy(optimizer.state_dict())
    # the uninterrupted run goes on
    train(model, optimizer, x, y, steps=6)
    # the resumed run: a fresh model and optimizer, the weights first, then the optimizer state
    resumed, _, _ = model_and_data(99)
    resumed.load_state_dict(weights)
    resumed_optimizer = NTASGD(resumed.parameters(), lr=0.2, nonmono=1)
    resumed_optimizer.load_state_dict(state)
    assert resumed_optimizer.averaging and not resumed_optimizer.param_groups[0]["swapped"]
    train(resumed, resumed_optimizer, x, y, steps=6)
    for ours, theirs in zip(resumed.parameters(), model.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        torch.testing.assert_close(resumed_optimizer.state[ours]["average"], optimizer.state[theirs]["average"],
                                   rtol=0, atol=0)


def test_a_parameter_without_gradient_keeps_its_value_in_the_mean():
    moving, still = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.full((1,), 3.0))
    optimizer = NTASGD([moving, still], lr=1.0, nonmono=1)
    trigger(optimizer)
    for _ in range(3):
        moving.grad = torch.ones(1)
        optimizer.step()
    assert torch.equal(optimizer.state[moving]["average"], torch.tensor([-2.0]))  # mean of -1, -2, -3
    assert torch.equal(optimizer.state[still]["average"], torch.tensor([3.0]))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"lr": 0}, "learning rate"), ({"lr": -1.0}, "learning rate"), ({"lr": 1.0, "weight_decay": -0.1}, "weight decay"),
    ({"lr": 1.0, "nonmono": 0}, "nonmono"), ({"lr": 1.0, "nonmono": 2.5}, "nonmono"),
])
def test_bad_settings_are_input_errors(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        NTASGD([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_observe_validation_is_a_no_op_for_other_optimizers():
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert not any(observe_validation(sgd, loss) for loss in (1.0, 0.5, 2.0, 3.0))
    ntasgd = NTASGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, nonmono=1)
    assert [observe_validation(ntasgd, loss) for loss in (1.0, 0.5, 2.0)] == [False, False, True]


def test_averaged_weights_inside_a_block_that_shows_them_changes_nothing():
    model, x, y = model_and_data(4)
    optimizer = NTASGD(model.parameters(), lr=0.1, nonmono=1)
    trigger(optimizer)
    train(model, optimizer, x, y, steps=3)
    with averaged_weights(optimizer):
        shown = [p.detach().clone() for p in model.parameters()]
        with averaged_weights(optimizer):  # e.g. a validation inside the Trainer's checkpoint block
            assert all(torch.equal(p, s) for p, s in zip(model.parameters(), shown))
        assert optimizer.shows_average
    assert not optimizer.shows_average


# ------------------------------------------------------------------------------------- in the Trainer


class HeldOutStreamTask(StreamToyTask):
    """The toy stream, validated on another random stream: once the model has learnt the token frequencies,
    all it learns is the training stream, so the validation loss stops improving and NT-ASGD switches (with
    these settings after epoch 7 of 12, at step 133)."""

    def __init__(self):
        super().__init__(n_tokens=400)
        self.held_out = StreamToyTask(n_tokens=400, seed=1)

    def valid_batches(self):
        return list(self.held_out.train_batches(0, 0))[:6]


NTASGD_CONFIG = dict(epochs=12, lr=2.0, optimizer="ntasgd", weight_decay=1e-4)


def ntasgd_trainer(run_dir=None, on_step=None, **overrides):
    seed_everything(0)
    model = ToyLanguageModel(hidden_size=16, num_layers=2, dropout=0.1)  # dropout: the RNG must resume too
    return Trainer(model, HeldOutStreamTask(), TrainConfig(**{**NTASGD_CONFIG, **overrides}), run_dir=run_dir,
                   on_step=on_step)


@torch.no_grad()
def validation_loss(model, task):
    """The validation loss per token of ``model`` computed here, by hand, over the task's validation stream."""
    model.eval()
    loss_sum, tokens, state = 0.0, 0, None
    for batch in task.valid_batches():
        out = task.loss(model, batch, state)
        loss_sum, tokens, state = loss_sum + out.loss_sum.item(), tokens + out.n_tokens, out.state
    model.train()
    return loss_sum / tokens


def test_ntasgd_is_a_trainer_optimizer():
    assert "ntasgd" in OPTIMIZERS
    assert TrainConfig(optimizer="ntasgd").optimizer == "ntasgd"
    optimizer = build_optimizer("ntasgd", [torch.nn.Parameter(torch.zeros(1))], lr=30.0)
    assert isinstance(optimizer, NTASGD) and optimizer.param_groups[0]["nonmono"] == 5  # AWD-LSTM's n
    assert optimizer.param_groups[0]["weight_decay"] == 0.0
    assert build_optimizer("ntasgd", [torch.nn.Parameter(torch.zeros(1))], lr=1.0, nonmono=2).param_groups[0]["nonmono"] == 2


def test_ntasgd_refuses_a_momentum_it_would_ignore():
    with pytest.raises(InputError, match="momentum"):
        build_optimizer("ntasgd", [torch.nn.Parameter(torch.zeros(1))], lr=30.0, momentum=0.9)


def test_after_the_trigger_the_trainer_validates_saves_and_leaves_the_average_of_the_iterates(tmp_path):
    iterates = []  # the raw weights after each step, as SGD leaves them
    record = lambda step, loss: iterates.append([p.detach().clone() for p in trainer.model.parameters()])  # noqa: E731
    trainer = ntasgd_trainer(RunDirectory.create(tmp_path / "run"), on_step=record)
    report = trainer.fit()
    switch = trainer.optimizer.switch_step
    assert switch is not None and switch <= 9 * 19 and len(iterates) == 12 * 19  # epochs of averaging after it

    # The oracle: the mean of the iterates after every step from the switch on, taken here by hand.
    mean = [torch.stack([weights[index] for weights in iterates[switch:]]).mean(0)
            for index in range(len(iterates[0]))]
    model = trainer.model
    for parameter, expected, raw in zip(model.parameters(), mean, iterates[-1]):
        torch.testing.assert_close(parameter, expected, rtol=0, atol=1e-6)  # what fit() leaves in the model
        assert not torch.equal(parameter, raw)
    # the latest checkpoint holds those weights, and the reported validation loss is theirs
    saved = latest_weights(tmp_path / "run")
    assert all(torch.equal(saved[name], tensor) for name, tensor in model.state_dict().items())
    assert report["valid_loss"] == pytest.approx(validation_loss(model, HeldOutStreamTask()), rel=1e-6)
    # before the switch the raw iterate was validated: epoch 1's loss is that of the weights after step 19
    first = ToyLanguageModel(hidden_size=16, num_layers=2, dropout=0.1)
    with torch.no_grad():
        for parameter, value in zip(first.parameters(), iterates[18]):
            parameter.copy_(value)
    first_record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first_record["valid_loss"] == pytest.approx(validation_loss(first, HeldOutStreamTask()), rel=1e-6)


# Stops mid-epoch before and after the switch (at step 133), and at the end of the epoch that switched.
@pytest.mark.parametrize("stop_at", [5 * 19 + 3, "the switch", 10 * 19 + 7])
def test_ntasgd_resume_equals_an_uninterrupted_run(tmp_path, stop_at):
    whole = ntasgd_trainer(RunDirectory.create(tmp_path / "whole"))
    whole_report = whole.fit()
    if stop_at == "the switch":
        stop_at = whole.optimizer.switch_step
    ntasgd_trainer(RunDirectory.create(tmp_path / "parts"), max_steps=stop_at).fit()
    resumed = ntasgd_trainer(RunDirectory.open(tmp_path / "parts"))
    seed_everything(99)  # the restored RNG states must win over whatever the process has
    resumed.restore(resumed.run_dir.load())
    resumed_report = resumed.fit()

    assert resumed.optimizer.switch_step == whole.optimizer.switch_step
    assert 5 * 19 + 3 < whole.optimizer.switch_step < 10 * 19 + 7
    expected, got = latest_weights(tmp_path / "whole"), latest_weights(tmp_path / "parts")
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    for ours, theirs in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(ours, theirs)
        assert torch.equal(resumed.optimizer.state[ours]["average"], whole.optimizer.state[theirs]["average"])
    assert resumed_report["valid_loss"] == whole_report["valid_loss"]
    metrics = (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()
    expected_losses = [record["valid_loss"] for record in whole.position.history]
    assert [json.loads(line)["valid_loss"] for line in metrics] == expected_losses


def test_a_second_fit_trains_on_from_the_raw_iterate():
    # fit() leaves the averages in the model; a further fit() must continue from the iterate, as one long run.
    straight = ntasgd_trainer(epochs=12)
    straight.fit()
    twice = ntasgd_trainer(epochs=10)
    twice.fit()
    twice.config.epochs = 12
    twice.fit()
    for ours, theirs in zip(twice.model.parameters(), straight.model.parameters()):
        assert torch.equal(ours, theirs)


def test_the_command_line_trains_with_ntasgd(capsys, tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the cat sat on the mat and the dog sat on the log\n" * 40)
    code, stdout, stderr = run_cli(capsys, "train", "lm", "--data", corpus, "--layers", "1", "--hidden", "16",
                                   "--seq-len", "10", "--batch-size", "4", "--epochs", "1", "--optimizer", "ntasgd",
                                   "--lr", "1", "--out", tmp_path / "run", "--quiet", "--json")
    assert code == 0, stderr
    run = RunDirectory.open(tmp_path / "run").load()
    assert run.meta["configs"]["train"]["optimizer"] == "ntasgd"
    assert run.meta["trainer"]["optimizer"]["param_groups"][0]["nonmono"] == 5
    assert json.loads(stdout)["steps"] > 0


def test_nonmono_flag_reaches_the_optimizer_and_the_checkpoint(capsys, tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the cat sat on the mat and the dog sat on the log\n" * 40)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", corpus, "--layers", "1", "--hidden", "16",
                              "--seq-len", "10", "--batch-size", "4", "--epochs", "1", "--optimizer", "ntasgd",
                              "--nonmono", "2", "--lr", "1", "--out", tmp_path / "run", "--quiet")
    assert code == 0, stderr
    meta = RunDirectory.open(tmp_path / "run").load().meta
    assert meta["configs"]["train"]["nonmono"] == 2
    assert meta["trainer"]["optimizer"]["param_groups"][0]["nonmono"] == 2
    with pytest.raises(InputError, match="nonmono"):
        TrainConfig(optimizer="ntasgd", nonmono=0)
