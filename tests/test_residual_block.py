"""The residual recurrent block (rnnkit.models.blocks, --block residual): shapes and state layout for every cell,
parity with a hand-written pre-norm block, gradients, padded batches, and every train task through the CLI; a residual
run saved, loaded, generated from and exported (ONNX through onnxruntime equals PyTorch)."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from bad_inputs.workspace import RUNS, Workspace, run_quietly
from rnnkit.errors import InputError
from rnnkit.models import LanguageModel, SequenceClassifier
from rnnkit.models.blocks import GatedMLP, ResidualRecurrent
from rnnkit.models.recurrent import recurrent_layer
from rnnkit.nn import cell_names
from rnnkit.nn.layer import RecurrentBase


def _state_of(stack, N):
    rows = stack.num_layers * (2 if stack.bidirectional else 1)
    h = 0.1 * torch.randn(rows, N, stack.hidden_size)
    return (h, 0.1 * torch.randn_like(h)) if stack.cell.has_cell_state else h


@pytest.mark.parametrize("cell", cell_names())
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_cell_in_the_block_keeps_torch_layouts(cell, bidirectional):
    torch.manual_seed(0)
    stack = recurrent_layer(cell, 5, 6, 2, bidirectional=bidirectional, block="residual")
    D = 2 if bidirectional else 1
    x = torch.randn(3, 4, 5)  # (N, L, F)
    hx = _state_of(stack, 3)
    y, state = stack(x, hx)
    assert y.shape == (3, 4, D * 6)
    parts = state if isinstance(state, tuple) else (state,)
    assert all(part.shape == (2 * D, 3, 6) for part in parts)
    assert isinstance(state, tuple) == stack.cell.has_cell_state
    # one recurrent layer per block, each found where export looks for them
    assert len([m for m in stack.modules() if isinstance(m, RecurrentBase)]) == 2


def _reference(stack: ResidualRecurrent, x, hx):
    """The block's equations written out with torch.nn.functional and the stack's own weights."""
    x = F.linear(x, stack.project.weight, stack.project.bias) if stack.project is not None else x
    states = []
    for k, block in enumerate(stack.blocks):
        h = F.layer_norm(x, (x.size(-1),), block.norm_rnn.weight, block.norm_rnn.bias)
        rows = slice(k, k + 1)
        h, state = block.rnn(h, tuple(p[rows] for p in hx) if isinstance(hx, tuple) else hx[rows])
        states.append(state)
        u = x + h
        v = F.layer_norm(u, (u.size(-1),), block.norm_mlp.weight, block.norm_mlp.bias)
        inner = block.mlp.inner
        w1, w2 = block.mlp.up.weight[:inner], block.mlp.up.weight[inner:]
        b1, b2 = block.mlp.up.bias[:inner], block.mlp.up.bias[inner:]
        m = F.linear((v @ w1.T + b1) * F.gelu(v @ w2.T + b2), block.mlp.down.weight, block.mlp.down.bias)
        x = u + m
    return F.layer_norm(x, (x.size(-1),), stack.norm.weight, stack.norm.bias), states


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_parity_with_a_hand_written_block(cell):
    torch.manual_seed(1)
    stack = recurrent_layer(cell, 7, 8, 2, block="residual").double()
    for parameter in stack.parameters():  # off the default gains, so that a missing norm or bias shows
        torch.nn.init.normal_(parameter, std=0.3)
    x = torch.randn(2, 5, 7, dtype=torch.double)
    hx = _state_of(stack, 2)
    hx = tuple(p.double() for p in hx) if isinstance(hx, tuple) else hx.double()
    y, state = stack(x, hx)
    want, states = _reference(stack, x, hx)
    torch.testing.assert_close(y, want)
    if isinstance(state, tuple):
        torch.testing.assert_close(state[0], torch.cat([s[0] for s in states]))
        torch.testing.assert_close(state[1], torch.cat([s[1] for s in states]))
    else:
        torch.testing.assert_close(state, torch.cat(states))


def test_gated_mlp_expands_three_times_and_gates():
    mlp = GatedMLP(4)
    assert mlp.up.out_features == 2 * 12 and mlp.down.in_features == 12
    with torch.no_grad():
        mlp.up.weight[12:].zero_()
        mlp.up.bias[12:].fill_(-50.0)  # GELU(-50) = 0: a closed gate lets nothing through
    assert torch.allclose(mlp(torch.randn(3, 4)), mlp.down.bias.expand(3, 4))


def test_gradients_match_finite_differences():
    torch.manual_seed(2)
    stack = recurrent_layer("gru", 3, 4, 2, bidirectional=True, block="residual").double()
    x = torch.randn(2, 4, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(4, 2, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: stack(a, b)[0], (x, h0))


def test_padded_rows_read_their_own_steps_only():
    """A packed batch: each row equals the row run alone at its length; the output is 0 past each length."""
    torch.manual_seed(3)
    stack = recurrent_layer("lstm", 4, 5, 2, bidirectional=True, block="residual").eval()
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h, c) = stack(packed)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=6)
    for n, length in enumerate(lengths.tolist()):
        alone, (h1, _) = stack(x[n:n + 1, :length])
        torch.testing.assert_close(y[n:n + 1, :length], alone, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h[:, n], h1[:, 0], atol=1e-5, rtol=1e-5)
        assert torch.all(y[n, length:] == 0)


def test_a_bad_block_is_one_line():
    with pytest.raises(InputError, match="unknown block 'resnet'; choose one of plain, residual"):
        recurrent_layer("lstm", 3, 4, block="resnet")


def test_models_take_the_block_and_an_old_config_loads_plain():
    lm = LanguageModel(20, cell="minlstm", hidden_size=8, embedding_dim=4, block="residual", init_range=0.1)
    assert isinstance(lm.rnn, ResidualRecurrent) and lm.config.block == "residual"
    assert torch.all(lm.rnn.norm.weight == 1)  # init_range draws the weights, not the norms' gains
    logits, state = lm(torch.randint(0, 20, (2, 5)))
    assert logits.shape == (2, 5, 20) and state.shape == (2, 2, 8)
    old = {k: v for k, v in lm.config.to_dict().items() if k != "block"}  # a run saved before --block
    assert not isinstance(LanguageModel.from_config(old).rnn, ResidualRecurrent)
    classifier = SequenceClassifier(3, vocab_size=30, hidden_size=6, bidirectional=True, block="residual")
    assert classifier(torch.randint(1, 30, (4, 7)), torch.tensor([7, 1, 3, 5])).shape == (4, 3)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("residual-data"), runs={})


@pytest.mark.parametrize("task", ["lm", "classify", "tag", "forecast", "translate", "caption", "music"])
def test_every_task_trains_a_step_with_the_residual_block(workspace, task, tmp_path):
    argv = ["train", task, *workspace.format(RUNS[task][1]), "--block", "residual", "--max-steps", "1",
            "--seed", "0", "--quiet", "--json", "--out", str(tmp_path / "run")]
    code, stdout, stderr = run_quietly(argv)
    assert code == 0, stderr
    assert json.loads(stdout)["steps"] == 1
    run = rnnkit.load(tmp_path / "run")
    assert run.checkpoint.meta["configs"]["model"]["block"] == "residual"
    assert any(isinstance(m, ResidualRecurrent) for m in run.model.modules())


@pytest.fixture(scope="module")
def residual_lm(workspace, tmp_path_factory):
    out = tmp_path_factory.mktemp("residual-lm") / "run"
    argv = ["train", "lm", *workspace.format(RUNS["lm"][1]), "--block", "residual", "--layers", "2", "--cell", "gru",
            "--seed", "0", "--quiet", "--out", str(out)]
    code, _, stderr = run_quietly(argv)
    assert code == 0, stderr
    return out


def test_a_residual_run_saves_loads_and_generates(residual_lm):
    run = rnnkit.load(residual_lm)
    assert isinstance(run.model.rnn, ResidualRecurrent) and run.model.rnn.num_layers == 2
    prime = next(s for s in run.trained.vocab.symbols if s.isalpha())
    first = run.generate(prime=prime, length=12, seed=3)
    assert first == run.generate(prime=prime, length=12, seed=3)  # the carried state is the same each time
    code, stdout, stderr = run_quietly(["generate", str(residual_lm), "--length", "12", "--seed", "3", "--prime",
                                        prime, "--json"])
    assert code == 0, stderr
    assert json.loads(stdout) == first


def test_a_residual_lm_exports_and_onnxruntime_equals_pytorch(residual_lm, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np

    from rnnkit.tasks.exporting import task_graphs

    run = rnnkit.load(residual_lm)
    report = run.export(format="onnx", out=tmp_path / "lm.onnx")
    graphs = task_graphs("lm", run.trained)
    files = [f for f in report["files"] if f.endswith(".onnx")]
    assert len(files) == len(graphs) == 2  # the whole-sequence graph and the one-step graph
    for graph, path in zip(graphs, files):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        live = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        got = live.run(None, {name: t.numpy() for name, t in zip(graph.input_names, graph.example_inputs)})
        with torch.no_grad():
            want = graph.module(*graph.example_inputs)
        for name, a, b in zip(graph.output_names, got, want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-5, rtol=1e-5, err_msg=f"{graph.role} {name}")
