"""Selective copying (rnnkit.diagnose.selective_copy): the data, the model's size, and that training learns it."""

import pytest
import torch

from rnnkit.diagnose.selective_copy import (SelectiveCopy, SelectiveCopyConfig, SelectiveCopyModel,
                                            copy_model_parameter_count, matched_hidden_sizes, token_accuracy,
                                            train_selective_copy)
from rnnkit.errors import InputError


def test_batch_scatters_the_tokens_in_order_then_asks_for_them():
    task = SelectiveCopy(tokens=5, vocab=16)
    inputs, targets = task.batch(200, 30, torch.Generator().manual_seed(0))
    assert inputs.shape == (200, 35) and targets.shape == (200, 5)
    assert (inputs[:, 30:] == task.marker).all()
    assert ((targets >= 1) & (targets <= 14)).all()
    body = inputs[:, :30]
    for row, target in zip(body, targets):
        data = row[row != task.noise]
        assert torch.equal(data, target)  # exactly the K tokens, in their order, everything else noise
    first = (body != task.noise).float().argmax(dim=1)
    assert len(first.unique()) > 5  # the positions change from sequence to sequence
    assert set(targets.flatten().tolist()) == set(range(1, 15))  # every data symbol is drawn
    assert task.baseline() == pytest.approx(1 / 14)


def test_same_generator_seed_same_batch():
    task = SelectiveCopy(tokens=3, vocab=8)
    a = task.batch(4, 10, torch.Generator().manual_seed(7))
    b = task.batch(4, 10, torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru", "mingru"])
def test_parameter_count_is_the_models(cell):
    model = SelectiveCopyModel(cell, vocab=16, hidden_size=12, num_layers=2, tokens=4)
    assert copy_model_parameter_count(cell, 12, 16, 2) == sum(p.numel() for p in model.parameters())
    logits = model(torch.zeros(3, 20, dtype=torch.long))
    assert logits.shape == (3, 4, 16)


def test_matched_sizes_share_the_lstms_budget():
    sizes = matched_hidden_sizes(64, ["lstm", "gru", "mingru"], vocab=16, num_layers=2)
    assert sizes["lstm"] == 64
    assert sizes["gru"] > 64 and sizes["mingru"] > sizes["gru"]  # fewer parameters per unit, more units
    budget = copy_model_parameter_count("lstm", 64, 16, 2)
    assert abs(copy_model_parameter_count("mingru", sizes["mingru"], 16, 2) - budget) / budget < 0.02


def test_mistakes_are_one_line_input_errors():
    with pytest.raises(InputError, match="length 3 < tokens 4"):
        SelectiveCopyConfig(cell="lstm", length=3, tokens=4)
    with pytest.raises(InputError, match="unknown cell"):
        SelectiveCopyConfig(cell="transformer")
    with pytest.raises(InputError, match="vocab"):
        SelectiveCopyConfig(cell="lstm", vocab=2)
    with pytest.raises(InputError, match="hidden_size"):
        SelectiveCopyConfig(cell="lstm", hidden_size=0)


@pytest.mark.parametrize("cell", ["mingru", "lstm"])
def test_training_learns_a_small_instance(cell):
    """Far above chance (1/4) in a few hundred steps: two tokens among twelve positions."""
    config = SelectiveCopyConfig(cell=cell, length=12, tokens=2, vocab=6, hidden_size=32, num_layers=1,
                                 batch_size=32, lr=1e-2, steps=400, eval_every=50, eval_size=256, stop_above=0.9)
    row = train_selective_copy(config)
    assert row["metric"] >= 0.9 and row["stop_reason"] == "stop_above"
    assert row["task"] == "selective-copy" and row["metric_name"] == "token_accuracy"
    assert row["baseline"] == pytest.approx(0.25)
    assert row["curve"][-1][0] == row["steps"] and row["parameters"] == copy_model_parameter_count(cell, 32, 6, 1)


def test_untrained_model_is_near_chance():
    torch.manual_seed(0)
    task = SelectiveCopy(tokens=4, vocab=10)
    inputs, targets = task.batch(512, 20, torch.Generator().manual_seed(1))
    model = SelectiveCopyModel("gru", 10, 16, 1, tokens=4)
    assert token_accuracy(model, inputs, targets) < 0.3  # 1/8 by chance; a model that knew would be near 1


SUBNORMAL = 1e-40  # below float32's smallest normal number, 1.18e-38


def flushed() -> bool:
    """Whether this thread reads float32 subnormals as 0 now."""
    return (torch.tensor([SUBNORMAL]) * 1.0).item() == 0.0


def test_flush_denormals_reads_subnormals_as_zero_inside_only():
    from rnnkit.diagnose.selective_copy import flush_denormals

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    assert not flushed()
    with flush_denormals():
        assert flushed()
    assert not flushed()
    with pytest.raises(RuntimeError), flush_denormals():
        raise RuntimeError("a failed run")
    assert not flushed()  # restored after a failure too


def test_training_runs_with_subnormals_flushed(monkeypatch):
    import rnnkit.diagnose.selective_copy as selective_copy

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    seen = []
    monkeypatch.setattr(selective_copy, "train_on_fresh_batches", lambda *args, **kwargs: seen.append(flushed()) or {})
    selective_copy.train_selective_copy(SelectiveCopyConfig(cell="gru", length=8, tokens=2, hidden_size=4, steps=1))
    assert seen == [True] and not flushed()


class ScriptedScores(SelectiveCopy):
    """Selective copying whose held-out token accuracy is read from a script, one value per measurement."""

    def __init__(self, scores):
        super().__init__(tokens=2, vocab=6)
        self.scores = list(scores)

    def held_out_scores(self, model, inputs, targets):
        return {"token_accuracy": self.scores.pop(0)}


def test_fresh_batches_keep_the_weights_of_the_best_held_out_score():
    from rnnkit.diagnose.fresh_training import FreshBatches

    task = FreshBatches(ScriptedScores([0.3, 0.8, 0.5]), 12, batch_size=2, eval_every=1, eval_size=4, seed=0)
    model = torch.nn.Linear(2, 2)
    for fill in (1.0, 2.0, 3.0):  # the second measurement (0.8) is the best, with every weight 2.0
        with torch.no_grad():
            model.weight.fill_(fill)
        task.score_validation(model)
    assert task.best_score == 0.8
    assert (task.best_state["weight"] == 2.0).all() and (model.weight == 3.0).all()  # a copy, not the live tensor


def test_keep_best_leaves_the_model_with_its_best_measurement():
    from rnnkit.diagnose.fresh_training import train_on_fresh_batches

    config = SelectiveCopyConfig(cell="gru", length=12, tokens=2, vocab=6, hidden_size=16, num_layers=1,
                                 batch_size=16, lr=3e-2, steps=120, eval_every=20, eval_size=256, stop_above=1.1)
    task = SelectiveCopy(tokens=2, vocab=6)
    torch.manual_seed(0)
    model = SelectiveCopyModel("gru", 6, 16, 1, tokens=2)
    row = train_on_fresh_batches(model, task, config, target=None, name="test", keep_best=True)
    scores = [value for _, _, value in row["curve"]]
    assert row["best_metric"] == max(scores) and row["metric"] == scores[-1]
    assert row["best_step"] == row["curve"][scores.index(max(scores))][0]
    inputs, targets = task.batch(256, 12, torch.Generator().manual_seed(task.held_out_seed))
    assert token_accuracy(model, inputs, targets) == pytest.approx(row["best_metric"])


def test_keep_best_needs_a_selected_score():
    from rnnkit.diagnose.fresh_training import train_on_fresh_batches
    from rnnkit.diagnose.memory_tasks import AddingProblem, MemoryTaskConfig

    with pytest.raises(ValueError, match="keep_best"):
        train_on_fresh_batches(torch.nn.Linear(2, 1), AddingProblem(), MemoryTaskConfig("adding", 10, "lstm", 4),
                               target=None, name="test", keep_best=True)
