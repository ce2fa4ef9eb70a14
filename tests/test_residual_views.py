"""A language model trained with `--block residual` in `explain` (traced block by block), `diagnose gradients
--run` and `train lm --log-gradients` (per-step ‖∂L/∂h_t‖ unrolled through the blocks): each matches the model's
own forward pass and gradient."""

import json
import re

import pytest
import torch
import torch.nn.functional as F

from rnnkit.diagnose.gradients import language_model_gradient_flow, per_step_gradient_norms
from rnnkit.models import LanguageModel
from rnnkit.viz.activations import trace_stack
from cli_helpers import run_cli

TEXT = "".join(f"def f{i}(x):\n    s = 'a{i}'\n    return [x, (s, {i % 7})]\n\n" for i in range(20))


def residual_model(cell: str = "lstm", **options) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(vocab_size=12, cell=cell, hidden_size=6, num_layers=2, embedding_dim=4, block="residual",
                         **options).double()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_trace_is_the_models_forward_pass(cell):
    model = residual_model(cell).eval()
    x = model.embedding(torch.randint(0, 12, (2, 9)))  # (N, L, E)
    state = model.rnn(x[:, :3])[1]
    with torch.no_grad():
        output, final = model.rnn(x[:, 3:], state)  # (N, L, W)
    trace = trace_stack(model.rnn, x[:, 3:], state)
    torch.testing.assert_close(trace.output, output)
    h_n = final[0] if isinstance(final, tuple) else final  # (K, N, H)
    torch.testing.assert_close(trace.hidden[:, :, -1], h_n)  # (K, N, H): each block's last h_t
    assert (trace.cell is None) == (cell == "gru")
    if cell == "lstm":
        torch.testing.assert_close(trace.cell[:, :, -1], final[1])


@pytest.mark.parametrize("options", [{}, {"dropout": 0.3, "locked_dropout": True}])
def test_per_step_norms_unroll_the_blocks_as_the_model_runs_them(options):
    model = residual_model(**options).eval()
    tokens = torch.randint(0, 12, (2, 8))  # (N, L)
    targets = torch.randint(0, 12, (2, 8))
    x = model.embedding(tokens)  # (N, L, E)
    flow = per_step_gradient_norms(model.rnn, x, loss="sum", parameters=list(model.parameters()),
                                   loss_fn=lambda t, y: F.cross_entropy(model.decoder(y), targets[:, t],
                                                                        reduction="sum"))
    assert flow.hidden.shape == (2, 8) and flow.cell.shape == (2, 8) and (flow.hidden > 0).all()
    # the same loss through the model's own forward pass: the same parameter gradient
    logits, _ = model(tokens)  # (N, L, V)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)).item()
    assert flow.parameter_norm == pytest.approx(norm, rel=1e-9)


def test_locked_branch_dropout_keeps_one_mask_over_the_steps():
    model = residual_model(dropout=0.5, locked_dropout=True).train()
    x = model.embedding(torch.randint(0, 12, (1, 6))).detach()  # (N, L, E)
    torch.manual_seed(3)
    flow = per_step_gradient_norms(model.rnn, x, loss="last")
    assert torch.isfinite(flow.hidden).all() and flow.hidden[-1, -1] > 0


def test_language_model_gradient_flow_of_a_residual_model():
    model = residual_model().float().eval()
    flow = language_model_gradient_flow(model, torch.randint(0, 12, (30,)))
    assert flow.hidden.shape == (2, 29) and flow.hidden[-1, -1] > 0 and flow.hidden[0, 0] > 0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("residual")
    data = root / "train.txt"
    data.write_text(TEXT)
    from rnnkit.cli import main

    try:
        main(["train", "lm", "--data", str(data), "--block", "residual", "--layers", "2", "--hidden", "8",
              "--seq-len", "10", "--batch-size", "4", "--max-steps", "4", "--log-gradients", "2", "--seed", "0",
              "--quiet", "--out", str(root / "run")])
    except SystemExit as exit:
        assert exit.code in (0, None)
    return root / "run"


def test_train_logs_the_gradient_flow_of_a_residual_stack(run):
    records = [json.loads(line) for line in (run / "gradients.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert all(len(r["hidden"]) == 10 and all(v > 0 for v in r["hidden"]) and r["parameter_norm"] > 0
               for r in records)


def test_explain_traces_a_residual_run_on_the_static_page(capsys, run, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(TEXT[:200])
    page = tmp_path / "page.html"
    code, out, err = run_cli(capsys, "explain", str(run), "--text", str(probe), "--json", "--out", str(page),
                             "--top", "40")
    assert code == 0, err
    assert "residual blocks (--block residual)" in err  # the page cannot run the blocks: static, and said so
    report = json.loads(out)
    states = {(m["layer"], m["state"]) for matches in report["ranking"].values() for m in matches}
    assert {layer for layer, _ in states} == {0, 1} and {"hidden", "cell", "tanh_cell"} >= {s for _, s in states}
    data = json.loads(re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>',
                                page.read_text(), re.S).group(1))
    assert data["model"] is None and "0/tanh_cell" in data["activations"]
    assert len(data["gradient"]["norms"]) == 2  # the gradient tab: both blocks' layers


def test_diagnose_gradients_reads_a_residual_run(capsys, run, tmp_path):
    code, out, err = run_cli(capsys, "diagnose", "gradients", "--run", str(run), "--length", "20", "--hidden", "4",
                             "--cells", "rnn", "--out", str(tmp_path / "g.png"))
    assert code == 0, err
    assert "trained: " in out and "‖∂L/∂h_T‖/‖∂L/∂h_1‖" in out


def test_diagnose_memory_refuses_a_residual_run_in_one_line(capsys, run, tmp_path):
    out = tmp_path / "m.png"
    code, _, err = run_cli(capsys, "diagnose", "memory", str(run), "--length", "8", "--out", str(out))
    assert code != 0 and "--block residual" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not out.exists()
