"""`rnnkit explain` records tanh(c_t) beside c_t for a cell with a cell state (what Karpathy, Johnson & Fei-Fei
colour): its values are tanh of the recorded c, the streamed ranking and the page list it, and a cell without a
cell state records neither."""

import json
import re

import numpy as np
import torch

from rnnkit.data.text import CharVocab
from rnnkit.models import LanguageModel
from rnnkit.viz import collect_activations, recorded_states, write_page
from rnnkit.viz.streaming import stream_text
from cli_helpers import run_cli

TEXT = "".join(f"def f{i}(x):\n    s = 'a{i}'\n    return [x, (s, {i % 7})]\n\n" for i in range(12))


def model_of(cell: str) -> tuple[LanguageModel, CharVocab]:
    torch.manual_seed(0)
    vocab = CharVocab.build(TEXT)
    model = LanguageModel(len(vocab), cell=cell, hidden_size=6, num_layers=2, embedding_dim=5)
    with torch.no_grad():
        for parameter in model.rnn.parameters():
            parameter.mul_(4)  # large weights: cell states beyond ±1, where tanh(c) and c differ clearly
    return model.eval(), vocab


def test_tanh_c_is_tanh_of_the_recorded_c():
    model, vocab = model_of("lstm")
    activations = collect_activations(model, vocab, TEXT)
    assert activations.state_names == ["hidden", "cell", "tanh_cell"]
    for layer in range(2):
        c = activations.states[(layer, "cell")]  # (P, H)
        np.testing.assert_allclose(activations.states[(layer, "tanh_cell")], np.tanh(c), rtol=1e-6, atol=1e-7)
    assert np.abs(activations.states[(1, "cell")]).max() > 1.2  # so the comparison above is not tanh(c) ≈ c


def test_the_streamed_ranking_ranks_tanh_c_beside_c():
    model, vocab = model_of("lstm")
    explained = stream_text(model, vocab, TEXT, window_chars=len(TEXT), ranked=1000)
    window = explained.window
    np.testing.assert_allclose(window.states[(0, "tanh_cell")], np.tanh(window.states[(0, "cell")]), atol=1e-7)
    ranked = {m.state for matches in explained.ranking.values() for m in matches}
    assert ranked == {"hidden", "cell", "tanh_cell"}


def test_a_cell_without_a_cell_state_has_no_tanh_c():
    model, vocab = model_of("gru")
    assert recorded_states(model) == ["hidden"]
    assert collect_activations(model, vocab, TEXT[:50]).state_names == ["hidden"]


def test_the_page_offers_tanh_c(tmp_path):
    model, vocab = model_of("lstm")
    activations = collect_activations(model, vocab, TEXT[:200])
    page = write_page(tmp_path / "page.html", activations, {}, {"layer": 1, "state": "tanh_cell", "unit": 2}, "run")
    html = page.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>', html, re.S).group(1))
    assert data["states"] == ["hidden", "cell", "tanh_cell"] and data["selected"]["state"] == "tanh_cell"
    assert 'tanh_cell: "tanh(c)"' in html  # the state picker's label
    assert "Math.tanh(state.c[s.unit])" in html  # the live model shows tanh of its c


def test_explain_command_lists_and_selects_tanh_c(capsys, tmp_path):
    data = tmp_path / "train.txt"
    data.write_text(TEXT)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "lm", "--data", str(data), "--hidden", "8", "--seq-len", "10",
                           "--batch-size", "4", "--max-steps", "3", "--seed", "0", "--quiet", "--out", str(run))
    assert code == 0, err
    probe = tmp_path / "probe.py"
    probe.write_text(TEXT[:300])
    page = tmp_path / "page.html"
    code, out, err = run_cli(capsys, "explain", str(run), "--text", str(probe), "--json", "--top", "50",
                             "--state", "tanh_cell", "--layer", "0", "--unit", "1", "--out", str(page))
    assert code == 0, err
    report = json.loads(out)
    assert "tanh_cell" in {m["state"] for matches in report["ranking"].values() for m in matches}
    html = page.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>', html, re.S).group(1))
    assert data["selected"] == {"layer": 0, "state": "tanh_cell", "unit": 1}
