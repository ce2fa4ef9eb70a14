"""Progress everywhere (issue 26): validation, evaluate, predict, beam search and bench show a bar with a rate and
the time left on a terminal, and nothing under --json, when stderr is not a terminal, or to Python callers.

A terminal is simulated by making ``sys.stderr.isatty()`` true (pytest captures stderr into a file).
"""

import importlib
import json
import re
import sys
import time

import pytest
from cli_helpers import run_cli

from bad_inputs import data
from rnnkit.tasks.spec import spec, task_names
from rnnkit.tasks.trained import SELECTION, best_by
from rnnkit.train import Task
from rnnkit.train.progress import ProgressBar, progress_shown, tracked

# tqdm's "[elapsed<left, rate unit/s]" once it has a rate: the time left and the rate are numbers
RATE_AND_LEFT = re.compile(r"\d\d:\d\d<\d\d:\d\d, +[\d.]+[kM]?(tok|sent|text|batch|config|it)/s")
BAR = re.compile(r"\d+/\d+ \[\d\d:\d\d<")  # a bar with a total: "3/40 [00:01<00:12"


@pytest.fixture
def terminal(monkeypatch):
    """Every captured stderr of the test claims to be a terminal (pytest swaps the stream between phases)."""
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True)


def slow(items, seconds=0.2):
    for item in items:
        time.sleep(seconds)
        yield item


def test_a_tracked_loop_shows_its_rate_and_the_time_left_on_a_terminal(capsys, terminal):
    with progress_shown(True):
        assert list(tracked(slow(range(4)), "evaluate", total=8, unit="sent", size=lambda item: 2)) == [0, 1, 2, 3]
    err = capsys.readouterr().err
    assert "evaluate" in err and RATE_AND_LEFT.search(err), err


def test_a_tracked_loop_is_silent_unless_a_command_asks_on_a_terminal(capsys, monkeypatch):
    assert list(tracked(range(3), "evaluate")) == [0, 1, 2]  # Python callers: no bar
    with progress_shown(True):  # asked, but stderr is no terminal
        assert list(tracked(range(3), "evaluate")) == [0, 1, 2]
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True)
    with progress_shown(False):  # --json
        assert list(tracked(range(3), "evaluate")) == [0, 1, 2]
        assert not ProgressBar(True).enabled  # the Trainer's bar too
    assert capsys.readouterr().err == ""


def test_only_the_outermost_loop_shows_a_bar(capsys, terminal):
    with progress_shown(True):
        for _ in tracked(range(2), "outer"):
            assert list(tracked(range(2), "inner")) == [0, 1]
    err = capsys.readouterr().err
    assert "outer" in err and "inner" not in err


def test_a_loop_left_early_closes_its_bar(capsys, terminal):
    with progress_shown(True):
        for item in tracked(range(10), "first"):
            break
        assert list(tracked(range(2), "second")) == [0, 1]  # not silenced by the first, left open
    assert "second" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    text = data.lm_text(root / "tiny.txt")
    csv = data.classify_csv(root / "reviews.csv")
    source, target = data.parallel(root / "train.de", root / "train.en")
    return {"text": text, "csv": csv, "source": source, "target": target, "root": root}


@pytest.fixture(scope="module")
def runs(inputs, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    commands = {
        "lm": ["train", "lm", "--data", inputs["text"], "--layers", "1", "--hidden", "8", "--embedding", "8",
               "--seq-len", "10", "--batch-size", "4", "--epochs", "1"],
        "classify": ["train", "classify", "--data", inputs["csv"], "--hidden", "8", "--embedding", "8",
                     "--batch-size", "8", "--epochs", "1"],
        "translate": ["train", "translate", "--source", inputs["source"], "--target", inputs["target"], "--hidden",
                      "8", "--embedding", "8", "--batch-size", "8", "--min-freq", "1", "--epochs", "1"],
    }
    from bad_inputs.workspace import run_quietly
    for name, argv in commands.items():
        code, _, err = run_quietly([str(arg) for arg in argv] + ["--seed", "0", "--quiet", "--out", str(root / name)])
        assert code == 0, err
    return {name: root / name for name in commands}


def test_training_shows_a_validation_bar_on_a_terminal(capsys, terminal, inputs, tmp_path):
    code, _, err = run_cli(capsys, "train", "lm", "--data", inputs["text"], "--layers", "1", "--hidden", "8",
                           "--seq-len", "10", "--batch-size", "4", "--epochs", "1", "--out", tmp_path / "run")
    assert code == 0, err
    assert re.search(r"validation: +\d+%.*\d+/\d+ \[", err), err
    code, _, err = run_cli(capsys, "train", "lm", "--data", inputs["text"], "--layers", "1", "--hidden", "8",
                           "--seq-len", "10", "--batch-size", "4", "--epochs", "1", "--out", tmp_path / "quiet",
                           "--json")
    assert code == 0 and "validation" not in err and "batch/s" not in err, err


@pytest.mark.parametrize("command, name", [
    (["evaluate", "{lm}", "--data", "{text}"], "evaluate"),
    (["evaluate", "{classify}", "--data", "{csv}"], "classify"),
    (["predict", "{classify}", "--input", "{csv}"], "classify"),
    (["evaluate", "{translate}", "--source", "{source}", "--target", "{target}", "--beam", "3"], "beam search (3)"),
    (["translate", "{translate}", "--input", "{source}"], "search"),
])
def test_applying_a_run_shows_a_bar_on_a_terminal_and_none_under_json(capsys, terminal, runs, inputs, command,
                                                                       name):
    if command[:2] == ["evaluate", "{translate}"]:
        pytest.importorskip("sacrebleu")
    argv = [str(runs.get(arg[1:-1], inputs.get(arg[1:-1]))) if arg.startswith("{") else arg for arg in command]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert name in err and BAR.search(err), err
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0 and not BAR.search(err) and name not in err, err


def test_bench_shows_its_configurations_on_a_terminal_and_nothing_under_json(capsys, terminal, tmp_path):
    bench = ["bench", "memory-tasks", "--tasks", "adding", "--lengths", "4", "--cells", "rnn,gru", "--hidden", "4",
             "--steps", "2", "--eval-size", "8"]
    code, _, err = run_cli(capsys, *bench, "--out", tmp_path / "b1")
    assert code == 0, err
    assert re.search(r"configurations: +\d+%.*\d/2 \[", err), err
    code, _, err = run_cli(capsys, *bench, "--out", tmp_path / "b2", "--json")
    assert code == 0 and "configurations" not in err and not BAR.search(err), err


# ------------------------------------------------------------------------------------------- which checkpoint


def test_evaluate_says_it_scores_the_best_checkpoint_and_by_what(capsys, runs, inputs):
    code, out, err = run_cli(capsys, "evaluate", runs["classify"], "--data", inputs["csv"], "--json")
    assert code == 0, err
    best = json.loads((runs["classify"] / "best.json").read_text())["checkpoint"]
    assert re.fullmatch(rf"scoring checkpoint {best} \(epoch 1, step \d+\): the best, by the highest validation "
                        r"accuracy \([\d.]+\); --checkpoint latest scores the last one\n", err), err
    json.loads(out)  # stdout stays one JSON object
    code, _, err = run_cli(capsys, "evaluate", runs["lm"], "--data", inputs["text"], "--checkpoint", "latest")
    assert code == 0 and err.endswith(": the latest, as --checkpoint latest asks\n"), err
    code, _, err = run_cli(capsys, "evaluate", runs["lm"], "--data", inputs["text"], "--checkpoint", "best")
    assert code == 0 and "the best, by the lowest validation loss (" in err and "as --checkpoint best asks" in err


@pytest.mark.parametrize("flags, why", [
    (["--valid-fraction", "0", "--epochs", "1"], "it was trained without validation data"),
    (["--max-steps", "2"], "no epoch with a validation score has finished"),
])
def test_evaluate_says_why_it_scores_the_latest(capsys, inputs, tmp_path, flags, why):
    code, _, err = run_cli(capsys, "train", "lm", "--data", inputs["text"], "--layers", "1", "--hidden", "8",
                           "--seq-len", "10", "--batch-size", "4", "--quiet", "--out", tmp_path / "run", *flags)
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "run", "--data", inputs["text"])
    assert code == 0 and f": the latest, because the run has no best checkpoint ({why})\n" in err, err


@pytest.mark.parametrize("task, words", [
    ("classify", "the highest validation accuracy"), ("translate", "the highest validation BLEU"),
    ("lm", "the lowest validation loss"),
])
def test_the_checkpoint_help_names_the_tasks_own_metric(capsys, runs, task, words):
    code, out, _ = run_cli(capsys, "evaluate", runs[task], "--help")
    assert code == 0 and words in " ".join(out.split()), out


def test_the_table_of_what_best_is_by_agrees_with_the_tasks():
    """SELECTION names what each task's Task.selection declares (tag chooses per run: F1 or accuracy)."""
    for name in task_names():
        module = importlib.import_module(spec(name).prepare.__module__)
        declared = {cls.selection for cls in vars(module).values()
                    if isinstance(cls, type) and issubclass(cls, Task) and cls is not Task}
        if name == "tag":
            assert SELECTION["tag"] == ("f1", "max") and "accuracy" in best_by("tag")
            continue
        assert declared == {SELECTION.get(name)}, (name, declared)
