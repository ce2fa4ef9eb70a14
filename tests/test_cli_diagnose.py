"""`rnnkit diagnose gradients|memory` and `rnnkit bench memory-tasks` end to end on tiny sizes: the JSON numbers,
the PNGs, a language-model run directory, and every bad input giving one line on stderr and exit status 2."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from rnnkit.data.text import CharVocab
from rnnkit.models import LanguageModel
from rnnkit.tasks.lm import LMDataConfig
from rnnkit.train import RunDirectory
from rnnkit.train.checkpoint import rewrite_meta

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEXT = "def f(x):\n    return x + 1\n\n" * 4  # 112 characters
TINY = ["--length", "6", "--hidden", "4"]


def make_lm_run(path, text_file, cell="lstm", embedding=4, layers=2):
    """A language-model run directory as `rnnkit train lm` leaves it (untrained weights suffice here)."""
    vocab = CharVocab.build(TEXT)
    model = LanguageModel(len(vocab), cell=cell, hidden_size=6, num_layers=layers, embedding_dim=embedding)
    meta = {"task": "lm", "configs": {"data": asdict(LMDataConfig(data=str(text_file))), "model": model.config.to_dict()},
            "vocab": vocab.to_dict()}
    RunDirectory.create(path).save(model, tensors={}, meta=meta)
    return path


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "code.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture
def lm_run(tmp_path, text_file):
    return make_lm_run(tmp_path / "run", text_file)


# ------------------------------------------------------------------------------------------- gradients


def test_gradients_fresh_layers_json_and_png(capsys, tmp_path):
    out = tmp_path / "g.png"
    code, stdout, stderr = run_cli(capsys, "diagnose", "gradients", *TINY, "--clip", "0.01", "--out", out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert out.read_bytes().startswith(PNG_MAGIC) and report["plot"] == str(out)
    # the seeds' story at the defaults: tanh RNN, LSTM with forget bias 0, +1, +3, GRU
    assert list(report["cells"]) == ["rnn", "lstm", "lstm+1", "lstm+3", "gru"]
    assert [c["label"] for c in report["cells"].values()] == [
        "tanh RNN", "LSTM", "LSTM, forget bias +1", "LSTM, forget bias +3", "GRU"]
    assert report["init"] == "PyTorch's default init, forget bias 0/+1/+3" and report["loss"] == "last"
    assert report["length"] == 6 and report["run"] is None and report["caption"].startswith("Each curve is ‖∂L/∂h_t‖")
    for key, numbers in report["cells"].items():
        norms = numbers["norms"][0]
        assert len(norms) == 6 and numbers["ratio"] == pytest.approx(norms[-1] / norms[0])
        assert 0 < numbers["clip_scale"] < 1  # the clip is far below the gradient's norm
        assert numbers["clipped_ratio"] == pytest.approx(numbers["ratio"])  # clipping keeps the shape
        assert numbers["clipped_norms"][0][-1] == pytest.approx(norms[-1] * numbers["clip_scale"])
        assert (numbers["cell_norms"] is not None) == key.startswith("lstm")
    ratios = [report["cells"][key]["ratio"] for key in ("lstm", "lstm+1", "lstm+3")]
    assert ratios[0] > ratios[1] > ratios[2]  # a larger forget bias lets more of the gradient through


def test_gradients_human_output_loss_sum_and_cells(capsys, tmp_path):
    out = tmp_path / "g.png"
    code, stdout, stderr = run_cli(capsys, "diagnose", "gradients", *TINY, "--cells", "lstm,rnn,layernorm_gru",
                                   "--loss", "sum", "--forget-bias", "1", "--out", out)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert "forget bias +1" in lines[0] and "summed over all steps" in lines[0]
    assert lines[1].lstrip().startswith("LSTM, forget bias +1 (H=4") and lines[2].lstrip().startswith("tanh RNN")
    assert lines[3].lstrip().startswith("LayerNorm GRU") and "‖∂L/∂h_T‖/‖∂L/∂h_1‖ = " in lines[1]
    assert lines[4].startswith("Each curve is ‖∂L/∂h_t‖, how much the loss summed over all steps")
    assert lines[-1] == f"plot: {out}" and out.is_file()


@pytest.mark.parametrize("how", ["--run", "argument"])
def test_gradients_of_a_language_model_run(capsys, tmp_path, lm_run, how):
    out = tmp_path / "g.png"
    run = ["--run", lm_run] if how == "--run" else [lm_run]
    code, stdout, stderr = run_cli(capsys, "diagnose", "gradients", *run, "--length", "20", "--hidden", "4",
                                   "--cells", "lstm", "--forget-bias", "0,3", "--out", out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["source"] == "fresh and run" and report["text"] == str(tmp_path / "code.txt")  # the run's own text
    assert list(report["cells"]) == ["lstm", "lstm+3"]  # the fresh curves stay beside the trained model's
    numbers = report["run"]
    assert len(numbers["norms"]) == 2 and len(numbers["norms"][0]) == 20  # two layers, 20 steps
    assert len(numbers["ratios"]) == 2 and numbers["ratio"] == numbers["ratios"][1]
    assert numbers["label"].startswith(f"trained: {lm_run}") and "black: the trained model" in report["caption"]
    assert out.read_bytes().startswith(PNG_MAGIC)

    code, stdout, _ = run_cli(capsys, "diagnose", "gradients", *run, "--length", "20", "--hidden", "4",
                              "--cells", "gru", "--out", out)
    assert code == 0
    assert stdout.splitlines()[2].lstrip().startswith(f"trained: {lm_run} (lstm, 2×6)")


def test_gradients_run_given_twice(capsys, tmp_path, lm_run):
    code, _, stderr = run_cli(capsys, "diagnose", "gradients", lm_run, "--run", lm_run, "--out", tmp_path / "g.png")
    assert_one_line_error(code, stderr, "the run is given twice")


def test_memory_of_a_two_layer_lstm_run(capsys, tmp_path, lm_run):
    out = tmp_path / "m.png"
    code, stdout, stderr = run_cli(capsys, "diagnose", "memory", lm_run, "--length", "8", "--out", out)
    assert code == 0, stderr
    title, line, plot_line = stdout.splitlines()
    assert "top layer of 2" in title and "'d' replaced by " in title  # the text starts with "def"
    assert line.lstrip().startswith("lstm") and "forget" in line and plot_line == f"plot: {out}"


def test_memory_of_a_one_hot_rnn_run_on_given_text(capsys, tmp_path, text_file):
    run = make_lm_run(tmp_path / "run", text_file, cell="rnn", embedding=0, layers=1)
    other = tmp_path / "other.txt"
    other.write_text("x + f(1)\n" * 3)
    out = tmp_path / "m.png"
    code, stdout, stderr = run_cli(capsys, "diagnose", "memory", run, "--text", other, "--length", "12", "--out", out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    numbers = report["cells"]["rnn"]
    assert len(numbers["jacobian"]) == 12 and numbers["gate_saturation"] is None
    assert numbers["replaced"].startswith("'x' replaced by ") and report["text"] == str(other)
    assert out.read_bytes().startswith(PNG_MAGIC)


# ------------------------------------------------------------------------------------------- memory


def test_memory_fresh_layers_json_human_and_png(capsys, tmp_path):
    out = tmp_path / "m.png"
    code, stdout, stderr = run_cli(capsys, "diagnose", "memory", *TINY, "--out", out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert set(report["cells"]) == {"rnn", "lstm", "gru"}
    assert report["cells"]["rnn"]["gate_saturation"] is None
    assert set(report["cells"]["lstm"]["gate_saturation"]) == {"input", "forget", "output"}
    for numbers in report["cells"].values():
        assert len(numbers["jacobian"]) == len(numbers["replacement"]) == 6
        assert numbers["jacobian"][0] > numbers["jacobian"][-1] > 0  # x_1 fades but is not gone after 6 steps
    assert out.read_bytes().startswith(PNG_MAGIC)

    code, stdout, _ = run_cli(capsys, "diagnose", "memory", *TINY, "--cells", "lstm", "--out", out)
    assert code == 0
    assert "(t=1)" in stdout and "(t=6)" in stdout and "forget" in stdout and stdout.endswith(f"plot: {out}\n")


# ------------------------------------------------------------------------------------------- bench


def test_bench_memory_tasks_tiny(capsys, tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "memory-tasks", "--lengths", "3,5", "--cells", "rnn,lstm", "--hidden", "4", "--steps", "2",
            "--eval-every", "1", "--eval-size", "8", "--batch-size", "4", "--out", out]
    code, stdout, stderr = run_cli(capsys, *args, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    rows = report["results"]
    assert [(r["task"], r["length"], r["cell"]) for r in rows] == [
        (task, t, cell) for task in ("adding", "copy") for t in (3, 5) for cell in ("rnn", "lstm")]
    assert all(r["steps"] == 2 and len(r["curve"]) == 2 for r in rows)
    assert rows[0]["baseline"] == pytest.approx(1 / 6) and rows[0]["metric_name"] == "mse"
    assert "equal parameter budgets" in stderr
    assert (out / "memory_tasks.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((out / "results.json").read_text())["results"] == rows

    code, stdout, _ = run_cli(capsys, *args, "--tasks", "copy", "--quiet")
    assert code == 0
    header, *table, plot_line, results_line = stdout.splitlines()
    assert header.split()[:6] == ["task", "T", "cell", "hidden", "params", "metric"] and len(table) == 4
    assert table[0].split()[:3] == ["copy", "3", "rnn"] and plot_line == f"plot: {out / 'memory_tasks.png'}"


def test_bench_selective_copy_with_the_new_cells(capsys, tmp_path):
    out = tmp_path / "sc"
    args = ["bench", "memory-tasks", "--tasks", "selective-copy", "--lengths", "20", "--cells", "lstm,mingru,rglru",
            "--hidden", "8", "--steps", "3", "--eval-every", "3", "--eval-size", "16", "--batch-size", "4",
            "--stop-above", "0.99", "--out", out, "--json"]
    code, stdout, stderr = run_cli(capsys, *args)
    assert code == 0, stderr
    rows = json.loads(stdout)["results"]
    assert [(r["task"], r["length"], r["cell"]) for r in rows] == [
        ("selective-copy", 20, cell) for cell in ("lstm", "mingru", "rglru")]
    assert all(r["metric_name"] == "token_accuracy" and r["baseline"] == pytest.approx(1 / 14) for r in rows)
    assert all(0 <= r["metric"] <= 1 and r["steps"] == 3 for r in rows)
    assert (out / "memory_tasks.png").read_bytes().startswith(PNG_MAGIC)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["gradients", "memory"])
def test_directory_that_is_not_a_run(capsys, tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = run_cli(capsys, "diagnose", command, empty, "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, "not an rnnkit run directory")
    code, _, stderr = run_cli(capsys, "diagnose", command, tmp_path / "missing", "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, "does not exist")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("command", ["gradients", "memory"])
def test_run_of_another_task(capsys, tmp_path, text_file, command):
    run = make_lm_run(tmp_path / "run", text_file)
    checkpoint = RunDirectory.open(run).load()
    rewrite_meta(checkpoint.path, {**checkpoint.meta, "task": "classify"})  # signed: a deliberate change
    code, _, stderr = run_cli(capsys, "diagnose", command, run, "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, "'classify' run, not a language model")


@pytest.mark.parametrize("command", ["gradients", "memory"])
@pytest.mark.parametrize("bad, fragment", [
    (["--length", "1"], "--length"),
    (["--length", "x"], "--length"),
    (["--cells", "lstm,elman"], "unknown cell 'elman'"),
    (["--cells", ","], "--cells"),
    (["--text", "t.txt"], "--text needs"),
    (["--checkpoint", "best"], "--checkpoint needs"),
])
def test_bad_flags(capsys, tmp_path, command, bad, fragment):
    code, _, stderr = run_cli(capsys, "diagnose", command, *bad, "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, fragment)


@pytest.mark.parametrize("bad", ["x", "1,,y", "inf", ""])
def test_bad_forget_bias_list(capsys, tmp_path, bad):
    code, _, stderr = run_cli(capsys, "diagnose", "gradients", *TINY, "--forget-bias", bad, "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, "--forget-bias")


@pytest.mark.parametrize("command", ["gradients", "memory"])
def test_bad_input_with_a_run(capsys, tmp_path, lm_run, command):
    out = tmp_path / "x.png"
    if command == "memory":  # gradients draws fresh layers beside the run's model; memory measures the run alone
        code, _, stderr = run_cli(capsys, "diagnose", command, lm_run, "--hidden", "8", "--out", out)
        assert_one_line_error(code, stderr, "--hidden describes fresh layers")
    code, _, stderr = run_cli(capsys, "diagnose", command, lm_run, "--length", "500", "--out", out)
    assert_one_line_error(code, stderr, "has only 112 char tokens")
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("naïve € text " * 20)
    code, _, stderr = run_cli(capsys, "diagnose", command, lm_run, "--text", foreign, "--out", out)
    assert_one_line_error(code, stderr, "the model never saw", "'ï'")
    code, _, stderr = run_cli(capsys, "diagnose", command, lm_run, "--out", tmp_path / "no" / "x.png")
    assert_one_line_error(code, stderr, "does not exist")
    assert not out.exists()


@pytest.mark.parametrize("bad, fragment", [
    (["--tasks", "adding,sorting"], "unknown task 'sorting'"),
    (["--cells", "transformer"], "unknown cell 'transformer'"),
    (["--lengths", "100,x"], "'x' is not a positive integer"),
    (["--lengths", "0"], "'0' is not a positive integer"),
    (["--lengths", "-5"], "'-5' is not a positive integer"),
    (["--lengths", "2.5"], "'2.5' is not a positive integer"),
    (["--lengths", "1"], "too short for the adding task"),
    (["--steps", "0"], "--steps"),
])
def test_bench_bad_input(capsys, tmp_path, bad, fragment):
    code, _, stderr = run_cli(capsys, "bench", "memory-tasks", *bad, "--out", tmp_path / "b")
    assert_one_line_error(code, stderr, fragment)
    assert not (tmp_path / "b").exists()


def test_bench_out_is_a_file(capsys, tmp_path):
    file = tmp_path / "f"
    file.write_text("keep")
    code, _, stderr = run_cli(capsys, "bench", "memory-tasks", "--out", file)
    assert_one_line_error(code, stderr, "is a file")
    assert file.read_text() == "keep"


# ------------------------------------------------------------------------------------------- --engine


@pytest.mark.parametrize("command", ["gradients", "memory"])
def test_fresh_layers_give_the_same_numbers_on_every_engine_that_runs_them(capsys, tmp_path, command):
    from rnnkit.nn import native_available

    engines = ["explicit", "reference", *(["native"] if native_available() else [])]
    reports = {}
    for engine in ["auto", *engines]:
        args = ["diagnose", command, *TINY, "--cells", "lstm,gru", "--out", tmp_path / f"{engine}.png", "--json"]
        code, stdout, stderr = run_cli(capsys, *args, *(["--engine", engine] if engine != "auto" else []))
        assert code == 0, stderr
        reports[engine] = json.loads(stdout)
        assert reports[engine]["engine"] == engine
    key = "norms" if command == "gradients" else "jacobian"
    for engine in engines:
        for cell, numbers in reports["auto"]["cells"].items():
            got = reports[engine]["cells"][cell][key]
            assert np.allclose(got, numbers[key], rtol=1e-6, atol=0), (engine, cell)


def test_memory_of_the_linear_cells_on_the_scan_engine(capsys, tmp_path):
    code, stdout, stderr = run_cli(capsys, "diagnose", "memory", *TINY, "--cells", "mingru,rglru", "--engine", "scan",
                                   "--out", tmp_path / "m.png", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["engine"] == "scan" and set(report["cells"]) == {"mingru", "rglru"}
    assert all(len(numbers["jacobian"]) == 6 for numbers in report["cells"].values())


@pytest.mark.parametrize("command", ["gradients", "memory"])
def test_a_run_on_the_engine_given(capsys, tmp_path, lm_run, command):
    cells = ["--cells", "lstm"] if command == "gradients" else []
    code, stdout, stderr = run_cli(capsys, "diagnose", command, lm_run, "--length", "8", "--engine", "explicit", *cells,
                                   "--out", tmp_path / "x.png", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert (report["run"] if command == "gradients" else report)["engine"] == "explicit"


def test_bench_memory_tasks_on_the_engine_given(capsys, tmp_path):
    out = tmp_path / "bench"
    code, stdout, stderr = run_cli(capsys, "bench", "memory-tasks", "--tasks", "adding,selective-copy",
                                   "--lengths", "16", "--cells", "gru", "--hidden", "4", "--steps", "1",
                                   "--eval-every", "1", "--eval-size", "4", "--batch-size", "2", "--engine", "explicit",
                                   "--quiet", "--out", out, "--json")
    assert code == 0, stderr
    rows = json.loads(stdout)["results"]
    assert [row["task"] for row in rows] == ["adding", "selective-copy"]
    assert all(row["config"]["engine"] == "explicit" and row["steps"] == 1 for row in rows)


@pytest.mark.parametrize("args, words", [
    (["diagnose", "gradients", *TINY, "--engine", "scan"], ["scan engine runs linear recurrences only", "'rnn_tanh'"]),
    (["diagnose", "memory", *TINY, "--cells", "lstm,mingru", "--engine", "fused"],
     ["'mingru' has no fused PyTorch kernel"]),
    (["bench", "memory-tasks", "--cells", "rnn,lstm", "--engine", "scan"],
     ["scan engine runs linear recurrences only"]),
    (["diagnose", "gradients", *TINY, "--engine", "warp"], ["--engine", "'warp'"]),
])
def test_an_engine_that_cannot_run_a_cell_is_one_line(capsys, tmp_path, args, words):
    out = tmp_path / ("bench" if args[0] == "bench" else "x.png")
    code, stdout, stderr = run_cli(capsys, *args, "--out", out)
    assert_one_line_error(code, stderr, *words)
    assert stdout == "" and not out.exists()


@pytest.mark.parametrize("command", ["gradients", "memory"])
def test_an_engine_that_cannot_run_the_runs_options_is_one_line(capsys, tmp_path, text_file, command):
    run = make_lm_run(tmp_path / "run", text_file)
    checkpoint = RunDirectory.open(run).load()
    model_config = {**checkpoint.meta["configs"]["model"], "zoneout": 0.1}  # PyTorch's kernels cannot run zoneout
    rewrite_meta(checkpoint.path, {**checkpoint.meta, "configs": {**checkpoint.meta["configs"], "model": model_config}})
    code, _, stderr = run_cli(capsys, "diagnose", command, run, "--length", "6", "--engine", "fused",
                              "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, "zoneout needs engine='explicit'")
    assert not (tmp_path / "x.png").exists()


def test_a_cell_without_a_native_kernel_is_one_line(capsys, tmp_path, monkeypatch):
    from rnnkit.nn import get_cell, native_available

    if not native_available():
        pytest.skip("the native engine is not built here (test_cli_doctor covers the engine turned off)")
    monkeypatch.setattr(get_cell("layernorm_gru"), "native_kernel", None)
    code, _, stderr = run_cli(capsys, "diagnose", "gradients", *TINY, "--cells", "lstm,layernorm_gru", "--engine",
                              "native", "--out", tmp_path / "x.png")
    assert_one_line_error(code, stderr, "cell 'layernorm_gru' has no native kernel", "engine='explicit'")
