"""AWD-LSTM's training toolbox in `train lm` (Merity et al. 2017): separate locked dropout rates on the
embedding output, between layers and on the output; variable-length BPTT windows with the step scaled by
length / bptt; AR / TAR in the training loss; old runs (without these settings) still load."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.streams import StreamBatcher, VariableStreamBatcher, variable_window_lengths
from rnnkit.data.text import CharVocab
from rnnkit.errors import InputError
from rnnkit.models import LanguageModel
from rnnkit.models.language_model import activation_regularisation
from rnnkit.nn import LockedDropout
from rnnkit.tasks.lm import Corpus, LanguageModelTask, LMDataConfig
from cli_helpers import assert_one_line_error, run_cli

TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(40))


def small_model(**options) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(vocab_size=30, hidden_size=8, num_layers=2, embedding_dim=8, engine="fused", **options)


def test_each_rate_is_locked_at_its_place_and_dropout_keeps_its_meaning():
    model = small_model(dropout=0.1, input_dropout=0.5, hidden_dropout=0.3, output_dropout=0.4)
    assert isinstance(model.input_dropout, LockedDropout) and model.input_dropout.p == 0.5
    assert isinstance(model.output_dropout, LockedDropout) and model.output_dropout.p == 0.4
    assert model.rnn.dropout == 0.3 and model.rnn.locked_dropout
    # no AWD rate given: --dropout everywhere, unlocked, as before these options existed
    plain = small_model(dropout=0.2)
    assert isinstance(plain.input_dropout, torch.nn.Dropout) and plain.input_dropout.p == 0.2
    assert isinstance(plain.output_dropout, torch.nn.Dropout) and plain.output_dropout.p == 0.2
    assert plain.rnn.dropout == 0.2 and not plain.rnn.locked_dropout


def test_the_masks_stay_the_same_over_time():
    model = small_model(input_dropout=0.5, output_dropout=0.5).train()
    torch.manual_seed(1)
    x = torch.ones(3, 6, 8)  # (N, L, E)
    dropped = model.input_dropout(x)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # one mask per sequence, every step
    assert (dropped == 0).any() and (dropped != 0).any()
    out = model.output_dropout(x)
    assert torch.equal(out, out[:, :1].expand_as(out))
    # between the layers (time-major there): one mask per sequence at every step
    between = small_model(hidden_dropout=0.5).train().rnn._drop_between_layers(torch.ones(6, 3, 8))  # (L, N, H)
    assert torch.equal(between, between[:1].expand_as(between)) and (between == 0).any()


def test_input_dropout_needs_an_embedding():
    with pytest.raises(InputError, match="input_dropout"):
        LanguageModel(vocab_size=30, hidden_size=8, embedding_dim=0, input_dropout=0.3)


def test_ar_and_tar_equal_a_hand_computation():
    output = torch.randn(2, 5, 4)  # (N, L, H)
    dropped = output * (torch.rand(2, 1, 4) > 0.5) * 2  # (N, L, H)
    value = activation_regularisation(output, dropped, ar=2.0, tar=1.0)
    ar = 2.0 * sum(float(v) ** 2 for v in dropped.flatten()) / dropped.numel()
    diffs = [float(output[n, t, j] - output[n, t - 1, j]) for n in range(2) for t in range(1, 5) for j in range(4)]
    tar = 1.0 * sum(d * d for d in diffs) / len(diffs)
    assert math.isclose(value.item(), ar + tar, rel_tol=1e-5)
    assert activation_regularisation(output, dropped).item() == 0.0


def task_of(**config) -> LanguageModelTask:
    vocab = CharVocab.build(TEXT)
    ids = vocab.encode(TEXT)
    data = LMDataConfig(seq_len=20, batch_size=4, **config)
    return LanguageModelTask(Corpus(vocab, ids, None, "text"), data, seed=3)


def gradients(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_the_training_loss_carries_ar_and_tar_in_its_gradient_not_its_value():
    task = task_of(ar=2.0, tar=1.0)
    model = LanguageModel(vocab_size=len(CharVocab.build(TEXT)), hidden_size=8, num_layers=1, embedding_dim=8,
                          engine="fused", output_dropout=0.5).train()
    inputs, targets = next(iter(task.train_batches(0, 0)))  # (N, L)
    torch.manual_seed(5)
    out = task.loss(model, (inputs, targets), None)
    out.loss_sum.backward()
    got = gradients(model)
    model.zero_grad()
    torch.manual_seed(5)  # the same dropout masks
    logits, _, output, dropped = model(inputs, None, outputs=True)
    ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    assert math.isclose(out.loss_sum.item(), ce.item(), rel_tol=1e-6)  # the value: the plain cross-entropy
    ar = 2.0 * dropped.pow(2).mean()
    tar = 1.0 * (output[:, 1:] - output[:, :-1]).pow(2).mean()
    (ce + targets.numel() * (ar + tar)).backward()
    assert torch.allclose(got, gradients(model), atol=1e-5)
    model.eval()  # evaluation: no regulariser at all
    assert task.loss(model, (inputs, targets), None).loss_sum.requires_grad


def test_variable_lengths_follow_awd_distribution():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor(variable_window_lengths(10**7, 70, 20000, generator), dtype=torch.float)
    half = lengths < 52  # N(35, 5) against N(70, 5): apart by 7 standard deviations
    assert 0.04 < half.float().mean() < 0.06
    assert abs(lengths[~half].mean() - 69.5) < 0.2 and abs(lengths[~half].std() - 5) < 0.2  # floor: -0.5
    assert abs(lengths[half].mean() - 34.5) < 0.5
    assert lengths.min() >= 5
    tight = variable_window_lengths(100, 10, 10, torch.Generator().manual_seed(1))
    assert len(tight) == 10 and sum(tight) <= 100


def test_the_batcher_reads_contiguous_windows_again_for_the_same_epoch():
    ids = torch.arange(2001)
    batcher = VariableStreamBatcher(ids, batch_size=2, seq_len=20, seed=7)
    fixed = StreamBatcher(ids, batch_size=2, seq_len=20)
    assert len(batcher) == len(fixed)
    windows = list(batcher)
    assert len({w[0].shape[1] for w in windows}) > 3  # lengths vary
    joined = torch.cat([inputs for inputs, _ in windows], dim=1)  # (N, ΣL)
    assert torch.equal(joined, fixed.inputs[:, : joined.shape[1]])  # stream n continues from window to window
    assert all(torch.equal(t[:, :-1], i[:, 1:]) for i, t in windows)
    first = batcher.lengths
    batcher.set_epoch(1)
    assert batcher.lengths != first
    batcher.set_epoch(0)
    assert batcher.lengths == first
    state = {**batcher.state_dict(), "window": 3}
    resumed = VariableStreamBatcher(ids, batch_size=2, seq_len=20, seed=7)
    resumed.set_epoch(1)
    resumed.load_state_dict(state)
    assert resumed.lengths == first and torch.equal(next(iter(resumed))[0], windows[3][0])


def test_a_variable_window_scales_the_step_by_its_length_over_bptt_not_the_gradient():
    """AWD-LSTM clips the gradient, then steps at lr * len / bptt: the task leaves the gradient as it is and
    asks the Trainer for the scaled step (TaskLoss.lr_scale; the Trainer's side: tests/test_trainer_clock.py)."""
    task = task_of(variable_bptt=True)
    batches = list(task.train_batches(0, 0))
    inputs, targets = next(b for b in batches if b[0].shape[1] != 20)
    model = LanguageModel(vocab_size=len(CharVocab.build(TEXT)), hidden_size=8, num_layers=1, embedding_dim=8,
                          engine="fused").train()
    out = task.loss(model, (inputs, targets), None)
    out.loss_sum.backward()
    trained = gradients(model)
    model.zero_grad()
    logits, _ = model(inputs, None)
    ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    ce.backward()
    assert math.isclose(out.loss_sum.item(), ce.item(), rel_tol=1e-6)
    assert torch.allclose(trained, gradients(model), atol=1e-6)
    assert out.lr_scale == pytest.approx(inputs.shape[1] / 20) and out.lr_scale != 1.0
    assert task.loss(model.eval(), (inputs, targets), None).lr_scale == 1.0  # validation steps nothing


def test_old_runs_load_and_keep_dropouts_meaning():
    old = {"vocab_size": 30, "cell": "lstm", "hidden_size": 8, "num_layers": 2, "embedding_dim": 8, "dropout": 0.3,
           "tie_weights": False, "engine": "auto", "init_range": None, "recurrent_dropout": 0.0, "zoneout": 0.0,
           "weight_drop": 0.0, "forget_bias": None, "embedding_dropout": 0.0, "locked_dropout": True, "block": "plain"}
    model = LanguageModel.from_config(old)
    assert model.config.input_dropout is None and model.rnn.dropout == 0.3
    assert isinstance(model.input_dropout, LockedDropout) and model.input_dropout.p == 0.3
    model.load_state_dict(small_model(dropout=0.3, locked_dropout=True).state_dict())
    old_data = {"data": None, "valid_data": None, "valid_fraction": 0.1, "level": "char", "seq_len": 64, "batch_size": 16}
    assert LMDataConfig(**old_data).variable_bptt is False


def test_cli_trains_with_every_flag(capsys, tmp_path):
    data = tmp_path / "tiny.txt"
    data.write_text(TEXT * 2)
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "lm", "--data", str(data), "--layers", "2", "--hidden", "16",
                             "--embedding", "16", "--seq-len", "10", "--batch-size", "4", "--epochs", "1",
                             "--input-dropout", "0.4", "--hidden-dropout", "0.25", "--output-dropout", "0.4",
                             "--embedding-dropout", "0.1", "--weight-drop", "0.2", "--variable-bptt",
                             "--ar", "2", "--tar", "1", "--seed", "0", "--out", str(run), "--json")
    assert code == 0, err
    from rnnkit.tasks.lm import from_run

    trained = from_run(run)
    config = trained.model.config
    assert (config.input_dropout, config.hidden_dropout, config.output_dropout) == (0.4, 0.25, 0.4)
    saved = trained.checkpoint.meta["configs"]["data"]
    assert saved["variable_bptt"] and saved["ar"] == 2 and saved["tar"] == 1
    assert math.isfinite(json.loads(out)["train_loss"])
    code, _, err = run_cli(capsys, "train", "lm", "--data", str(data), "--ar", "-1", "--out", str(tmp_path / "x"))
    assert_one_line_error(code, err, "--ar")
    assert not (tmp_path / "x").exists()  # nothing written for a refused run


def test_a_resumed_epoch_reads_the_windows_it_had_left():
    first = [inputs for inputs, _ in task_of(variable_bptt=True).train_batches(1, 0)]
    resumed = [inputs for inputs, _ in task_of(variable_bptt=True).train_batches(1, 2)]  # a new process, mid-epoch
    assert len(resumed) == len(first) - 2 and all(torch.equal(a, b) for a, b in zip(resumed, first[2:]))
    other_epoch = [inputs.shape[1] for inputs, _ in task_of(variable_bptt=True).train_batches(2, 0)]
    assert other_epoch != [inputs.shape[1] for inputs in first]
