"""`rnnkit explain` and rnnkit.viz on tiny language models trained for a few steps: the activations match the
model's own forward pass, the page carries the text, the weights (or, static, the activations) and the gradient
safely, the ranking of the features that vary is printed, `--json` gives the final states and next-token
probabilities, and every bad input gives one line, exit status 2 and no page."""

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.diagnose.gradients import language_model_gradient_flow
from rnnkit.nn import Recurrent
from rnnkit.tasks.lm import from_run
from rnnkit.train import RunDirectory
from rnnkit.viz import (FEATURES, browser_model, collect_activations, final_outputs, rank_units, recorded_states,
                        text_features, write_page)
from cli_helpers import assert_one_line_error, run_cli

TRAIN_TEXT = "".join(f"def f{i}(x):\n    s = '</script> & <b>'\n    return [x, (s, {i % 7})]\n\n" for i in range(30))
PROBE = "def f(x):\n    s = '</script> & <b>'\n    return [x, (s, 3)]\n"
TINY = ["--hidden", "8", "--seq-len", "10", "--batch-size", "4", "--max-steps", "5", "--seed", "0", "--quiet", "--json"]


def train(directory: Path, *extra: str) -> Path:
    data = directory.parent / "train.txt"
    data.write_text(TRAIN_TEXT)
    try:
        main(["train", "lm", "--data", str(data), *TINY, *extra, "--out", str(directory)])
    except SystemExit as exit:
        assert exit.code in (0, None)
    return directory


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "lstm": train(root / "lstm", "--layers", "2"),
        "gru": train(root / "gru", "--layers", "1", "--cell", "gru"),
        "word": train(root / "word", "--layers", "1", "--level", "word"),
    }


@pytest.fixture
def probe(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    return path


def page_data(page: Path) -> dict:
    """The JSON data of a page, read back the way the browser does."""
    match = re.search(r'<script type="application/json" id="rnnkit-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(match.group(1))


# ------------------------------------------------------------------------------------------- the Python API


def test_activations_match_the_models_forward_pass(runs):
    model, vocab, _ = from_run(runs["lstm"])
    activations = collect_activations(model, vocab, PROBE)
    assert activations.fed.all() and activations.states.keys() == {
        (layer, state) for layer in (0, 1) for state in ("hidden", "cell", "tanh_cell")}
    with torch.no_grad():
        logits, (h_n, c_n) = model(vocab.encode(PROBE).unsqueeze(0))  # (1, P, V)
    probs = torch.softmax(logits[0], -1)  # (P, V)
    best = probs.topk(5, -1)
    np.testing.assert_array_equal(activations.top_ids, best.indices.numpy())
    np.testing.assert_allclose(activations.top_probs, best.values.numpy(), atol=1e-5)
    np.testing.assert_allclose(activations.states[(1, "hidden")][-1], h_n[1, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(activations.states[(0, "cell")][-1], c_n[0, 0].numpy(), atol=1e-5)
    assert activations.predictions(0)[0] == (vocab.symbols[best.indices[0, 0]], pytest.approx(best.values[0, 0].item()))


def test_characters_outside_the_vocabulary_are_skipped_not_fed(runs):
    model, vocab, _ = from_run(runs["lstm"])
    activations = collect_activations(model, vocab, "def é(x):")
    plain = collect_activations(model, vocab, "def (x):")
    assert activations.fed.tolist() == [True] * 4 + [False] + [True] * 4
    assert activations.unknown.tolist() == (~activations.fed).tolist()
    assert np.isnan(activations.states[(0, "hidden")][4]).all() and activations.top_ids[4].tolist() == [-1] * 5
    # The model reads on as if the character were not there.
    np.testing.assert_allclose(activations.states[(1, "cell")][activations.fed], plain.states[(1, "cell")], atol=1e-6)
    assert activations.predictions(4) == []


def test_word_model_positions_are_words_and_newlines(runs):
    model, vocab, _ = from_run(runs["word"])
    text = "def f(x):\n    zebra return\n"
    activations = collect_activations(model, vocab, text)
    pieces = [text[a:b] for a, b in activations.spans]
    assert pieces == ["def", "f(x):", "\n", "zebra", "return", "\n"]
    assert activations.unknown.tolist() == [False, True, False, True, False, False]  # read as <unk>
    assert activations.fed.all() and activations.states[(0, "hidden")].shape == (6, 8)
    assert activations.state_names == ["hidden", "cell", "tanh_cell"]


def test_page_holds_the_text_and_quantised_activations(runs, tmp_path):
    model, vocab, _ = from_run(runs["lstm"])
    text = PROBE + "é\u2028"
    activations = collect_activations(model, vocab, text)
    ranking = rank_units(activations.states, text_features(text, activations.last_read), mask=activations.fed)
    page = write_page(tmp_path / "page.html", activations, ranking, {"layer": 1, "state": "cell", "unit": 3}, "<run>")
    html = page.read_text()
    assert html.count("</script>") == 3  # data, model.js, page.js: the text's own </script> is escaped in the JSON
    assert "&lt;run&gt;" in html and "<run>" not in html
    data = page_data(page)
    assert data["text"] == text and data["selected"] == {"layer": 1, "state": "cell", "unit": 3}
    assert data["model"] is None and data["gradient"] is None  # the static page: activations computed here
    assert "\u2028" not in html  # a line separator ends a JavaScript string in older engines: escaped
    assert data["notFed"] == [len(PROBE), len(PROBE) + 1] and data["top"]["ids"][len(PROBE)] is None
    for (layer, state), values in activations.states.items():
        block = data["activations"][f"{layer}/{state}"]
        q = np.frombuffer(base64.b64decode(block["q"]), dtype=np.int8).reshape(8, len(activations.spans))  # (H, P)
        restored = q.T / 127 * np.array(block["scale"])  # (P, H)
        fed = activations.fed
        np.testing.assert_allclose(restored[fed], values[fed], atol=np.max(block["scale"]) / 127 + 1e-3)
        if state == "hidden":
            assert block["scale"] == [1.0] * 8  # h is tanh-bounded: shown on the fixed -1..1 scale
    symbols = data["top"]["symbols"]
    assert [(symbols[i], p) for i, p in zip(data["top"]["ids"][0], data["top"]["probs"][0])] == \
        [(s, round(p, 3)) for s, p in activations.predictions(0)]


def test_live_page_holds_the_weights_as_float32(runs, tmp_path):
    model, vocab, _ = from_run(runs["lstm"])
    activations = collect_activations(model, vocab, PROBE)
    page = write_page(tmp_path / "page.html", activations, {}, title="run", model=browser_model(model, vocab))
    data = page_data(page)
    assert "activations" not in data and "top" not in data and data["ids"] == activations.ids.tolist()
    spec = data["model"]
    assert spec["cell"] == "lstm" and spec["layers"] == 2 and spec["hidden"] == 8 and spec["symbols"] == vocab.symbols
    weights = np.frombuffer(base64.b64decode(spec["weights"]), dtype="<f4")
    named = dict(model.named_parameters())
    expected = {"decoder.weight": named["decoder.weight"], "decoder.bias": named["decoder.bias"],
                **{f"{name[-1]}/{name[4:-3]}": value for name, value in named.items() if name.startswith("rnn.")}}
    if model.embedding is not None:
        expected["embedding.weight"] = named["embedding.weight"]
    assert spec["embedding"] == (model.embedding is not None)
    assert set(spec["tensors"]) == set(expected)
    for name, (offset, shape) in spec["tensors"].items():
        assert shape == list(expected[name].shape)
        stored = weights[offset : offset + int(np.prod(shape))].reshape(shape)
        np.testing.assert_array_equal(stored, expected[name].detach().numpy())
    # each layer's step: its cell's equations traced on its own parameters, which the page reads by these names
    assert len(spec["steps"]) == 2 and all(step["inputs"][-3:] == ["x", "h", "c"] for step in spec["steps"])
    assert {f"{k}/{name}" for k, step in enumerate(spec["steps"]) for name in step["inputs"][:-3]} == {
        name for name in expected if "/" in name}


def test_final_outputs_are_the_forward_pass_after_the_whole_text(runs):
    model, vocab, _ = from_run(runs["lstm"])
    outputs = final_outputs(model, vocab, PROBE + "é")  # é is skipped
    with torch.no_grad():
        logits, (h_n, _) = model(vocab.encode(PROBE).unsqueeze(0))  # (1, P, V)
    np.testing.assert_allclose(outputs["hidden"], h_n[:, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["next"], torch.softmax(logits[0, -1].double(), -1).numpy(), atol=1e-6)
    assert sum(outputs["next"]) == pytest.approx(1.0)
    empty = final_outputs(model, vocab, "")
    assert empty["hidden"] == [[0.0] * 8] * 2
    with torch.no_grad():
        np.testing.assert_allclose(empty["next"], torch.softmax(model.decoder.bias.double(), -1).numpy(), atol=1e-6)


def test_recorded_states_ask_the_layer(runs):
    assert recorded_states(from_run(runs["lstm"])[0]) == ["hidden", "cell", "tanh_cell"]
    assert recorded_states(from_run(runs["gru"])[0]) == ["hidden"]


def test_page_spans_count_utf16_units_as_javascript_does(runs, tmp_path):
    model, vocab, _ = from_run(runs["lstm"])
    text = "x = '\U0001F600'\n    s = 1\n"  # an emoji: one code point, two UTF-16 units
    activations = collect_activations(model, vocab, text)
    page = write_page(tmp_path / "page.html", activations, {}, {"layer": 0, "state": "hidden", "unit": 0}, "run")
    data = page_data(page)
    utf16 = text.encode("utf-16-le")
    pieces = [utf16[2 * start : 2 * end].decode("utf-16-le") for start, end in data["spans"]]  # JS text.slice
    assert pieces == list(text)


# ------------------------------------------------------------------------------------------- the command


def test_explain_writes_the_page_and_prints_the_ranking(capsys, runs, probe, tmp_path):
    page = tmp_path / "units.html"
    code, stdout, stderr = run_cli(capsys, "explain", runs["lstm"], "--text", probe, "--out", page, "--json", "--top", "3")
    assert code == 0, stderr
    report = json.loads(stdout)
    ranking = report["ranking"]
    # the probe has no comment, no speaker, one indentation: those features are constant and not ranked
    assert report["constant"] == ["in_comment", "after_speaker"]
    assert list(ranking) == [name for name in FEATURES if name not in report["constant"]]
    for matches in ranking.values():
        assert 1 <= len(matches) <= 3
        assert [abs(m["correlation"]) for m in matches] == sorted((abs(m["correlation"]) for m in matches), reverse=True)
        for m in matches:
            assert 0 <= m["layer"] < 2 and m["state"] in ("hidden", "cell", "tanh_cell") and 0 <= m["unit"] < 8
    model, vocab, _ = from_run(runs["lstm"])
    final = final_outputs(model, vocab, PROBE)
    assert report["hidden"] == final["hidden"]
    assert report["next"] == dict(zip(vocab.symbols, final["next"]))  # labelled by token ...
    assert list(report["next"].values()) == sorted(final["next"], reverse=True)  # ... the most likely first
    data = page_data(page)
    assert report["page"] == str(page) and data["text"] == PROBE and data["ranking"] == ranking
    assert data["constant"] == [FEATURES[name] for name in report["constant"]]
    assert data["model"]["cell"] == "lstm" and data["static"] is None  # the page runs the model
    best = max((m for matches in ranking.values() for m in matches), key=lambda m: abs(m["correlation"]))
    assert data["selected"] == {k: best[k] for k in ("layer", "state", "unit")}  # shown first: the best unit

    gradient = data["gradient"]  # ‖∂L/∂h_t‖ of the prediction of the last character from the ones before
    flow = language_model_gradient_flow(model, vocab.encode(PROBE))
    assert gradient["positions"] == list(range(len(PROBE) - 1)) and gradient["target"] == "\u23ce"
    np.testing.assert_allclose(gradient["norms"], flow.hidden.numpy(), rtol=1e-3)
    assert "depends on its state after reading position t" in gradient["caption"]

    code, stdout, stderr = run_cli(capsys, "explain", runs["lstm"], "--text", probe, "--layer", "0", "--state", "hidden",
                                   "--unit", "5")
    assert code == 0, stderr
    default_page = runs["lstm"] / "explain.html"
    lines = stdout.splitlines()
    assert lines[0].startswith(f"page: {default_page}") and "layer 0 hidden unit 5" in lines[0]
    assert [line.split("  ")[0] for line in lines[1:-1]] == [FEATURES[name] for name in ranking]
    assert lines[-1] == "not ranked, constant over this text: inside a comment, after a line naming a speaker (NAME:)"
    assert page_data(default_page)["selected"] == {"layer": 0, "state": "hidden", "unit": 5}


@pytest.mark.parametrize("engine", ["explicit", "reference"])
def test_explain_runs_the_model_on_the_engine_given(capsys, runs, probe, tmp_path, engine, monkeypatch):
    code, stdout, stderr = run_cli(capsys, "explain", runs["lstm"], "--text", probe, "--out", tmp_path / "a.html", "--json")
    assert code == 0, stderr
    default = json.loads(stdout)

    traced = []  # (the layer's engine, the engine its trace was recorded on), per trace
    trace = Recurrent.trace

    def recording(layer, *args, **kwargs):
        result = trace(layer, *args, **kwargs)
        traced.append((layer.engine, result.engine))
        return result

    monkeypatch.setattr(Recurrent, "trace", recording)
    code, stdout, stderr = run_cli(capsys, "explain", runs["lstm"], "--text", probe, "--out", tmp_path / "b.html",
                                   "--json", "--engine", engine)
    assert code == 0, stderr
    report = json.loads(stdout)
    # the layers run on the engine given; a trace is recorded on it where it keeps the gates, else on explicit
    assert traced and set(traced) == {(engine, "explicit")}
    np.testing.assert_allclose(report["hidden"], default["hidden"], atol=1e-5)
    assert report["next"].keys() == default["next"].keys()
    np.testing.assert_allclose([report["next"][token] for token in default["next"]], list(default["next"].values()),
                               atol=1e-5)
    assert report["ranking"].keys() == default["ranking"].keys()


def test_a_cell_whose_step_uses_an_operation_the_page_lacks_gets_the_static_page(capsys, runs, probe, tmp_path,
                                                                                 monkeypatch):
    from rnnkit.viz.step_program import browser_ops

    monkeypatch.setattr("rnnkit.viz.step_program.browser_ops", lambda: browser_ops() - {"aten.tanh.default"})
    code, stdout, stderr = run_cli(capsys, "explain", runs["lstm"], "--text", probe, "--out", tmp_path / "p.html")
    assert code == 0, stderr
    assert stderr.count("\n") == 1 and "the page cannot run this model in the browser" in stderr
    data = page_data(tmp_path / "p.html")
    assert data["model"] is None
    assert data["static"] == "the page has no JavaScript for aten.tanh.default, which the 'lstm' cell's step uses"
    assert set(data["activations"]) == {f"{k}/{s}" for k in (0, 1) for s in ("hidden", "cell", "tanh_cell")}


def test_unknown_characters_are_counted_and_shown(capsys, runs, tmp_path):
    text = tmp_path / "accents.txt"
    text.write_text("def f(x):\n    return 'é→é'\n")
    code, stdout, stderr = run_cli(capsys, "explain", runs["lstm"], "--text", text, "--out", tmp_path / "p.html")
    assert code == 0, stderr
    assert stderr.startswith("note: 3 characters of") and "'é', '→'" in stderr and "greyed" in stderr
    assert page_data(tmp_path / "p.html")["notFed"] == [22, 23, 24]


def test_max_chars_cuts_the_text(capsys, runs, probe, tmp_path):
    code, _, stderr = run_cli(capsys, "explain", runs["gru"], "--text", probe, "--max-chars", "12",
                              "--out", tmp_path / "p.html")
    assert code == 0, stderr
    assert "reading the first 12" in stderr
    data = page_data(tmp_path / "p.html")
    assert data["text"] == PROBE[:12] and data["states"] == ["hidden"] and data["cell"] == "gru"
    assert data["model"]["cell"] == "gru" and len(data["gradient"]["positions"]) == 11


def test_word_model_page(capsys, runs, tmp_path):
    text = tmp_path / "words.txt"
    text.write_text("def f(x):\n    zebra return [x,\n")
    code, stdout, stderr = run_cli(capsys, "explain", runs["word"], "--text", text, "--out", tmp_path / "p.html")
    assert code == 0, stderr
    assert "2 words of" in stderr and "<unk>" in stderr
    data = page_data(tmp_path / "p.html")
    assert data["level"] == "word" and data["model"]["level"] == "word" and data["model"]["whitespace"].startswith("\t")


# ------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def other_task_run(tmp_path):
    run = RunDirectory.create(tmp_path / "classifier")
    run.save(torch.nn.Linear(2, 2), tensors={}, meta={"task": "classify", "configs": {}})
    return run.path


@pytest.mark.parametrize("case, words", [
    ("other task", ["holds a 'classify' run, not a language model"]),
    ("not a run", ["is not an rnnkit run directory"]),
    ("empty text", ["is empty"]),
    ("blank text", ["is empty"]),
    ("missing text", ["no such file"]),
    ("no known character", ["none of the characters", "vocabulary"]),
    ("layer", ["--layer 2 is out of range", "0 to 1"]),
    ("unit", ["--unit 8 is out of range", "0 to 7"]),
    ("cell of a GRU", ["GRU", "no cell state"]),
    ("out in a missing directory", ["does not exist"]),
    ("engine that cannot run the cell", ["scan engine runs linear recurrences only", "'lstm'"]),
])
def test_bad_input_one_line_and_nothing_written(capsys, runs, probe, other_task_run, tmp_path, case, words):
    run, text, extra = runs["lstm"], probe, []
    page = tmp_path / "page.html"
    page.write_text("an earlier page")
    if case == "other task":
        run = other_task_run
    elif case == "not a run":
        run = tmp_path / "plain"
        run.mkdir()
    elif case in ("empty text", "blank text", "no known character"):
        text = tmp_path / "bad.txt"
        text.write_text({"empty text": "", "blank text": " \n\n", "no known character": "éé→"}[case])
    elif case == "missing text":
        text = tmp_path / "nothing.txt"
    elif case == "layer":
        extra = ["--layer", "2"]
    elif case == "unit":
        extra = ["--unit", "8"]
    elif case == "cell of a GRU":
        run, extra = runs["gru"], ["--state", "cell"]
    elif case == "out in a missing directory":
        page = tmp_path / "missing" / "page.html"
    elif case == "engine that cannot run the cell":
        extra = ["--engine", "scan"]
    code, stdout, stderr = run_cli(capsys, "explain", run, "--text", text, "--out", page, *extra)
    assert_one_line_error(code, stderr, *words)
    assert stdout == ""
    if page.parent.is_dir():
        assert page.read_text() == "an earlier page"  # a refused command leaves the earlier page alone
