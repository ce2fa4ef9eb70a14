"""The task registry: every task found from its two modules (the tests are generated from what it finds), its
spec and command consistent; a run of no known task is refused in one line; optional packages missing give one
line naming the extra to install; ``import rnnkit.nn`` pulls in no optional package and no command-line code.
What each task's runs do (evaluate, predict, generate) is tested per task in tests/test_trained_run.py."""

import importlib
import subprocess
import sys

import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli

import rnnkit
from rnnkit import extras
from rnnkit.cli.commands import task_names
from rnnkit.errors import InputError
from rnnkit.tasks import spec as specs
from rnnkit.tasks.spec import spec
from rnnkit.train import RunDirectory


def test_every_task_is_found_from_its_task_and_command_modules():
    assert {"caption", "classify", "forecast", "lm", "music", "tag", "translate"} <= set(task_names())
    assert "forecast_plot" not in task_names() and "spec" not in task_names() and "trained" not in task_names()
    # the command line's registry (a command module beside each task module) is the library's (a SPEC)
    assert task_names() == specs.task_names()


@pytest.mark.parametrize("name", task_names())
def test_a_tasks_spec_and_command_agree(name):
    command = importlib.import_module(f"rnnkit.cli.commands.{name}")
    assert spec(name).name == name and command.COMMAND.spec is spec(name)
    assert command.train_command.name == name
    params = {param.name for param in command.train_command.params}
    # every saved setting has its flag, and every run can be resumed
    assert set(spec(name).model_options) <= params and "resume" in params and "config" in params
    for section in spec(name).sections.values():
        assert set(section) <= params
    assert {"recurrent_dropout", "zoneout", "weight_drop", "forget_bias"} <= params


def fake_run(tmp_path, task: str):
    run = RunDirectory.create(tmp_path / task)
    run.save(torch.nn.Linear(1, 1), {}, {"task": task, "configs": {}})
    return run.path


def test_a_run_of_no_known_task_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "evaluate", fake_run(tmp_path, "chess"), "--data", "x")
    assert_one_line_error(code, err, "unknown task 'chess'")
    with pytest.raises(InputError, match="holds a run of unknown task 'chess'"):
        rnnkit.load(tmp_path / "chess")


def test_a_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # as if not installed
    with pytest.raises(extras.MissingExtra, match=r"needs sacrebleu.*pip install 'rnnkit\[translate\]'"):
        extras.require("sacrebleu", "translate")
    assert extras.require("json", "viz").__name__ == "json"


def test_a_missing_extra_is_one_line_on_the_command_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    (tmp_path / "image.png").write_bytes(b"not really")
    from rnnkit.tasks.caption import read_image

    with pytest.raises(extras.MissingExtra, match=r"pip install 'rnnkit\[caption\]'"):
        read_image(str(tmp_path / "image.png"), 8, 8)


def test_importing_the_layers_pulls_in_no_optional_package_and_no_command_line():
    code = ("import sys, rnnkit.nn; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'sklearn', 'sacrebleu', 'PIL', 'click'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_regulariser_flags_reach_the_model_and_are_kept_on_resume(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\n" * 40)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "lm", "--data", corpus, "--hidden", "8", "--layers", "1", "--seq-len", "8",
                           "--batch-size", "2", "--max-steps", "2", "--recurrent-dropout", "0.2", "--zoneout", "0.1",
                           "--weight-drop", "0.3", "--forget-bias", "1", "--embedding-dropout", "0.1", "--quiet",
                           "--out", run)
    assert code == 0, err
    model = RunDirectory.open(run).load().meta["configs"]["model"]
    assert (model["recurrent_dropout"], model["zoneout"], model["weight_drop"], model["forget_bias"],
            model["embedding_dropout"]) == (0.2, 0.1, 0.3, 1.0, 0.1)
    code, _, err = run_cli(capsys, "train", "lm", "--resume", run, "--zoneout", "0.5", "--max-steps", "3")
    assert_one_line_error(code, err, "--zoneout 0.5 differs from the run's 0.1")


def test_train_help_lists_every_task(capsys):
    code, out, err = run_cli(capsys, "train", "--help")
    assert code == 0, err
    for name in task_names():
        assert f"  {name} " in out
