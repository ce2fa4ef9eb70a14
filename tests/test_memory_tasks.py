"""rnnkit.diagnose.memory_tasks: the adding problem and copy memory (data, baselines), equal parameter budgets,
and the training loop (it learns, and stops for each of its reasons)."""

import math

import pytest
import torch

from rnnkit.diagnose.memory_tasks import (
    TASKS,
    AddingProblem,
    CopyMemory,
    MemoryTaskConfig,
    MemoryTaskModel,
    matched_hidden_sizes,
    memory_model_parameter_count,
    train_memory_task,
)
from rnnkit.errors import InputError



@pytest.mark.parametrize("length", [2, 3, 10, 101])
def test_adding_batch_has_two_markers_one_per_half_and_the_target_is_their_sum(length):
    inputs, targets = AddingProblem().batch(64, length, torch.Generator().manual_seed(0))
    assert inputs.shape == (64, length, 2) and targets.shape == (64,)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    assert (markers.sum(1) == 2).all()
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    torch.testing.assert_close(targets, (values * markers).sum(1))


def test_adding_baseline_is_the_mse_of_predicting_the_mean():
    task = AddingProblem()
    _, targets = task.batch(100_000, 20, torch.Generator().manual_seed(1))
    mse = task.loss(torch.ones(len(targets), 1), targets).item()
    assert task.baseline(20) == pytest.approx(1 / 6)
    assert mse == pytest.approx(1 / 6, abs=0.004)


@pytest.mark.parametrize("length", [1, 5, 100])
def test_copy_batch_layout(length):
    task = CopyMemory()
    inputs, targets = task.batch(16, length, torch.Generator().manual_seed(2))
    assert inputs.shape == targets.shape == (16, length + 20)
    data = inputs[:, :10]
    assert ((data >= 1) & (data <= 8)).all()
    assert (inputs[:, 10 : length + 9] == 0).all()  # T - 1 blanks
    assert (inputs[:, length + 9] == 9).all() and (inputs == 9).sum() == 16  # one delimiter each
    assert (inputs[:, length + 10 :] == 0).all()
    assert (targets[:, : length + 10] == 0).all()
    assert torch.equal(targets[:, length + 10 :], data)


def test_copy_baseline_is_the_cross_entropy_of_blanks_then_a_uniform_guess():
    task = CopyMemory()
    length = 30
    _, targets = task.batch(8, length, torch.Generator().manual_seed(3))
    logits = torch.full((8, length + 20, 10), -1e9)
    logits[:, : length + 10, 0] = 0.0  # certain of the blank while waiting
    logits[:, length + 10 :, 1:9] = 0.0  # uniform over the 8 data symbols when recalling
    assert task.loss(logits, targets).item() == pytest.approx(task.baseline(length), rel=1e-6)
    assert task.baseline(100) == pytest.approx(10 * math.log(8) / 120)


@pytest.mark.parametrize("task", ["adding", "copy"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_parameter_count_formula_matches_the_model(task, cell):
    spec = TASKS[task]
    model = MemoryTaskModel(cell, spec.input_size, 13, spec.output_size, spec.per_step)
    expected = memory_model_parameter_count(cell, 13, spec.input_size, spec.output_size)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("task", ["adding", "copy"])
@pytest.mark.parametrize("reference", [64, 128])
def test_matched_hidden_sizes_give_equal_parameter_budgets(task, reference):
    spec = TASKS[task]
    sizes = matched_hidden_sizes(task, reference, ["rnn", "lstm", "gru"])
    assert sizes["lstm"] == reference and sizes["rnn"] > sizes["gru"] > reference
    counts = [memory_model_parameter_count(cell, h, spec.input_size, spec.output_size) for cell, h in sizes.items()]
    assert max(counts) / min(counts) < 1.03
    for cell, h in sizes.items():  # no other size comes closer to the LSTM's count
        budget = counts[1]
        best = abs(memory_model_parameter_count(cell, h, spec.input_size, spec.output_size) - budget)
        for other in (h - 1, h + 1):
            assert abs(memory_model_parameter_count(cell, other, spec.input_size, spec.output_size) - budget) >= best


def test_model_outputs_and_forget_bias():
    model = MemoryTaskModel("lstm", 2, 5, 1, per_step=False, forget_bias=1.0)
    assert model(torch.rand(3, 7, 2)).shape == (3, 1)
    torch.manual_seed(0)
    plain = MemoryTaskModel("lstm", 2, 5, 1, per_step=False, forget_bias=0.0)
    torch.manual_seed(0)
    shifted = MemoryTaskModel("lstm", 2, 5, 1, per_step=False, forget_bias=1.0)
    shift = (shifted.rnn.bias_ih_l0 - plain.rnn.bias_ih_l0).tolist()
    assert shift == pytest.approx([0] * 5 + [1] * 5 + [0] * 10)
    assert MemoryTaskModel("gru", 10, 4, 10, per_step=True)(torch.rand(2, 6, 10)).shape == (2, 6, 10)


def test_training_learns_a_short_adding_problem():
    config = MemoryTaskConfig("adding", 4, "lstm", 16, batch_size=64, lr=1e-2, steps=300, eval_every=100, eval_size=500)
    result = train_memory_task(config)
    assert result["steps"] == 300 and result["stop_reason"] == "steps"
    assert [point[0] for point in result["curve"]] == [100, 200, 300]
    assert result["metric"] < 0.02 < result["baseline"]  # far below 1/6: it learned to add the marked values
    assert result["parameters"] == memory_model_parameter_count("lstm", 16, 2, 1)
    # the test set: as many fresh sequences of their own seed, which the stop rule never read
    assert result["test_size"] == 500 and result["test_metric"] != result["metric"]
    assert result["test_metric"] < 0.02


def test_the_test_set_is_not_the_held_out_set():
    from rnnkit.diagnose.fresh_training import TEST_SEED, FreshBatches

    problem = AddingProblem()
    held_out = FreshBatches(problem, 6, batch_size=2, eval_every=1, eval_size=8, seed=0).held_out
    test = problem.batch(8, 6, torch.Generator().manual_seed(TEST_SEED))
    assert TEST_SEED != problem.held_out_seed and not torch.equal(held_out[0], test[0])


def test_training_stops_below_a_target_on_a_time_budget_and_is_reproducible():
    base = dict(task="copy", length=3, cell="gru", hidden_size=8, batch_size=4, eval_size=16)
    early = train_memory_task(MemoryTaskConfig(**base, steps=50, eval_every=2, stop_below=100.0))
    assert early["stop_reason"] == "stop_below" and early["steps"] == 2
    timed = train_memory_task(MemoryTaskConfig(**base, steps=10_000, time_budget=1e-9))
    # a budget spent before the first step takes none (the Trainer checks it before every step); the untrained
    # model is measured all the same
    assert timed["stop_reason"] == "time_budget" and timed["steps"] == 0 and timed["curve"][-1][0] == 0
    again = train_memory_task(MemoryTaskConfig(**base, steps=50, eval_every=2, stop_below=100.0))
    assert again["metric"] == early["metric"]


def test_bad_configurations():
    with pytest.raises(InputError, match="unknown task 'sorting'"):
        MemoryTaskConfig("sorting", 10, "lstm", 8)
    with pytest.raises(InputError, match="unknown cell 'elman'"):
        MemoryTaskConfig("adding", 10, "elman", 8)
    with pytest.raises(InputError, match="at least 2"):
        MemoryTaskConfig("adding", 1, "lstm", 8)
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        MemoryTaskConfig("copy", 10, "lstm", 8, batch_size=0)
    with pytest.raises(InputError, match="unknown cell"):
        matched_hidden_sizes("adding", 8, ["lstm", "transformer"])


def test_a_diverging_run_gives_a_row_stopped_by_divergence_and_the_trainers_line():
    """The Trainer judges the runaway loss (far above the 1/6 of predicting the mean) and stops; the row says so."""
    config = MemoryTaskConfig("adding", 4, "lstm", 8, batch_size=8, lr=1e6, clip=None, steps=20, eval_every=2,
                              eval_size=16)
    lines = []
    row = train_memory_task(config, log=lines.append)
    assert row["stop_reason"] == "diverged" and row["steps"] < 20
    assert row["curve"][-1][0] == row["steps"] and row["metric"] == row["curve"][-1][2]
    assert any("training diverged" in line for line in lines) and "(diverged)" in lines[-1]
