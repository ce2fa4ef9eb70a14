"""NT-ASGD: SGD before the trigger, AWD-LSTM's non-monotone trigger, torch.optim.ASGD's average after it,
the averaged weights swapped in and out, and a checkpoint saved with them resuming exactly."""

import copy

import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.train.ntasgd import NTASGD, averaged_weights


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
