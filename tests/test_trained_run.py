"""One task contract: every task's evaluate / predict / generate, declared in its task module, is the same call in
Python (``rnnkit.load(RUN).evaluate(...)``) and on the command line (``rnnkit evaluate RUN ...``).

Generated from the task registry: for each task and each operation it declares, a tiny trained run (one epoch of
the bad-input corpus's settings) gives in Python exactly what the command prints with ``--json``; ``--help`` on a
run lists that task's flags only; a flag of another task is one line naming the tasks that take it; an operation
the task lacks is one line naming the tasks that have it, in both.
"""

import json
import re
from pathlib import Path

import pytest

import rnnkit
from bad_inputs.workspace import RUNS, Workspace, train_runs
from cli_helpers import assert_one_line_error, run_cli
from rnnkit.cli.commands import task_names
from rnnkit.cli.json_output import to_json
from rnnkit.errors import InputError
from rnnkit.tasks.operations import OPERATIONS
from rnnkit.tasks.spec import spec, tasks_with

# What each operation of each task is applied to here, its options by name: "{name}" is an input of the bad-input
# corpus (bad_inputs.workspace) or one written below, "{tmp}" the test's folder.
EXAMPLES = {
    "lm": {"evaluate": {"data": "{text}"}, "generate": {"prime": "def", "length": 30, "temperature": 0.8, "seed": 0}},
    "classify": {"evaluate": {"data": "{csv}"}, "predict": {"input": "{texts}"}},
    "tag": {"evaluate": {"data": "{conllu}", "batch_size": 3}, "predict": {"input": "{sentences}"}},
    "forecast": {"evaluate": {"data": "{series}"}, "predict": {"data": "{series}", "output": "{tmp}/out/forecast.csv"}},
    "translate": {"evaluate": {"source": "{src}", "target": "{tgt}", "beam": 2},
                  "predict": {"input": "{src}", "length_penalty": 0.0}},
    "caption": {"evaluate": {}, "predict": {"input": "{png}"}},
    "music": {"evaluate": {"split": "valid"},
              "generate": {"steps": 6, "seed": 0, "prime_piece": "test:0", "prime_steps": 2, "midi": "{tmp}/x.mid"}},
}
TEXTS = {"texts": "the film was great\nawful and boring\n", "sentences": "the cat sees a dog .\nAnna likes the dog .\n"}
CASES = [(task, name) for task in task_names() for name in spec(task).operations]
MISSING = [(task, name) for task in task_names() for name in OPERATIONS if spec(task).operation(name) is None]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny run per task (its inputs in ``runs["data"]``)."""
    root = tmp_path_factory.mktemp("tiny-runs")
    for task in task_names():
        assert task in RUNS, f"add the settings of a tiny {task} run to tests/bad_inputs/workspace.py"
    return {"data": root / "data", **train_runs(root, task_names())}


def example(runs, tmp_path, task: str, name: str) -> dict:
    """The options of ``EXAMPLES[task][name]`` with their paths made."""
    workspace = Workspace(runs["data"], runs={})
    for file_name, text in TEXTS.items():
        (tmp_path / f"{file_name}.txt").write_text(text)
    paths = {"tmp": tmp_path, **{file_name: tmp_path / f"{file_name}.txt" for file_name in TEXTS}}

    def made(value):
        if not isinstance(value, str) or "{" not in value:
            return value
        key = value[1:value.index("}")]
        return value.replace("{" + key + "}", str(paths[key] if key in paths else workspace[key]))

    return {option: made(value) for option, value in EXAMPLES[task][name].items()}


def flags(options: dict) -> list[str]:
    """The command line of ``options``: ``--name-with-dashes VALUE``, or ``--flag`` for True."""
    argv = []
    for option, value in options.items():
        argv += [f"--{option.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return argv


def test_every_task_and_operation_has_an_example():
    declared = {task: set(spec(task).operations) for task in task_names()}
    assert {task: set(names) for task, names in EXAMPLES.items()} == declared
    assert {"caption", "classify", "forecast", "lm", "music", "tag", "translate"} <= set(task_names())


@pytest.mark.parametrize("task, name", CASES, ids=[f"{task}-{name}" for task, name in CASES])
def test_python_gives_what_the_command_prints_with_json(runs, tmp_path, capsys, task, name):
    options = example(runs, tmp_path, task, name)
    code, out, err = run_cli(capsys, name, runs[task], *flags(options), "--json")
    assert code == 0, err
    run = rnnkit.load(runs[task])
    assert run.task == task and name in run.operations and run.model.training is False
    result = getattr(run, name)(**options)
    if isinstance(result, list):
        printed = [json.loads(line) for line in out.splitlines()]
        assert len(printed) == len(result) > 0
    else:
        printed = json.loads(out)
    assert json.loads(to_json(result)) == printed


@pytest.mark.parametrize("task, name", CASES, ids=[f"{task}-{name}" for task, name in CASES])
def test_help_on_a_run_lists_its_tasks_flags_only(runs, capsys, task, name):
    code, out, err = run_cli(capsys, name, runs[task], "--help")
    assert code == 0, err
    shown = set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", out, re.MULTILINE))
    declared = {option.flag for option in spec(task).operation(name).options}
    assert shown == declared | {"--checkpoint", "--json", "--help"}
    assert f"task '{task}'" in out


@pytest.mark.parametrize("task, name", CASES, ids=[f"{task}-{name}" for task, name in CASES])
def test_a_flag_of_another_task_is_one_line_naming_the_tasks_that_take_it(runs, capsys, task, name):
    own = [option.name for option in spec(task).operation(name).options]
    others = sorted({option.name for other in tasks_with(name) for option in spec(other).operation(name).options} - set(own))
    for option in others:
        flag = "--" + option.replace("_", "-")
        code, _, err = run_cli(capsys, name, runs[task], flag, "1")
        assert_one_line_error(code, err)
        assert err.strip() == (f"error: {flag} is not an option of task '{task}'; the tasks that take it: "
                               f"{', '.join(tasks_with(name, option))}")
        expected = (f"{option} is not an option of {name}() for task '{task}'; its options: "
                    f"{', '.join(own)} (the tasks that take it: "
                    f"{', '.join(tasks_with(name, option))})")
        with pytest.raises(InputError, match=f"^{re.escape(expected)}$"):
            getattr(rnnkit.load(runs[task]), name)(**{option: 1})


@pytest.mark.parametrize("task, name", MISSING, ids=[f"{task}-{name}" for task, name in MISSING])
def test_an_operation_the_task_lacks_is_one_line_naming_the_tasks_that_have_it(runs, capsys, task, name):
    having = ", ".join(tasks_with(name))
    code, _, err = run_cli(capsys, name, runs[task])
    assert_one_line_error(code, err, f"holds a {spec(task).noun}", f"`rnnkit {name}` does nothing with it",
                          f"the tasks that {name}: {having}")
    for other in spec(task).operations:
        assert f"`rnnkit {other} {runs[task]}`" in err
    with pytest.raises(InputError, match=f"has no {name}\\(\\) .*; the tasks with {name}\\(\\): {having}$"):
        getattr(rnnkit.load(runs[task]), name)()


def test_help_without_a_run_lists_every_tasks_flags(capsys):
    for name in OPERATIONS:
        code, out, err = run_cli(capsys, name, "--help")
        assert code == 0, err
        for task in tasks_with(name):
            shown = ", ".join(f"{o.flag} {o.kind.metavar}".rstrip() for o in spec(task).operation(name).options)
            assert f"{task}: {shown}" in " ".join(out.split()), task


def test_options_in_python_are_checked_in_one_line(runs):
    run = rnnkit.load(runs["lm"])
    assert run.generate("def", 5, seed=1) == run.generate(prime="def", length=5, seed=1)  # in the declared order
    for call, words in [
        (lambda: run.generate(length=0), "length must be a whole number ≥ 1 and ≤ 10000000, got 0"),
        (lambda: run.generate(temperature=float("nan")), "temperature must be a finite number > 0"),
        (lambda: run.generate(greedy="yes"), "greedy must be True or False"),
        (lambda: run.generate("def", prime="x"), "got prime twice"),
        (lambda: run.evaluate(), "holds a language model: give the text to score with data=FILE"),
        (lambda: run.evaluate(runs["data"] / "tiny.txt", unknown="maybe"), "unknown must be one of error, skip"),
        (lambda: run.generate(top_k=3, bogus=1), "bogus is not an option of generate() for task 'lm'; its options: "
                                                 "prime, length, temperature, top_k, top_p, greedy, seed"),
        (lambda: rnnkit.load(runs["lm"], checkpoint="first"), "checkpoint must be one of auto, best, latest"),
    ]:
        with pytest.raises(InputError, match=re.escape(words)):
            call()


def test_inputs_may_be_given_in_python_as_the_items_themselves(runs, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text(TEXTS["texts"])
    classifier = rnnkit.load(runs["classify"])
    assert classifier.predict(TEXTS["texts"].splitlines()) == classifier.predict(texts)
    tagger = rnnkit.load(runs["tag"])
    sentences = TEXTS["sentences"].splitlines()
    assert tagger.predict(sentences) == tagger.predict([line.split() for line in sentences])
    with pytest.raises(InputError, match="holds a classifier: give the texts with input=FILE"):
        classifier.predict()


def test_the_command_reads_predicts_inputs_from_stdin(runs, capsys, monkeypatch):
    code, out, err = run_cli(capsys, "predict", runs["classify"], "--json", stdin=TEXTS["texts"], monkeypatch=monkeypatch)
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == rnnkit.load(runs["classify"]).predict(
        TEXTS["texts"].splitlines())


def test_flags_may_come_before_the_run(runs, capsys):
    text = runs["data"] / "tiny.txt"
    code, out, err = run_cli(capsys, "evaluate", "--data", text, "--checkpoint", "latest", runs["lm"], "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads(to_json(rnnkit.load(runs["lm"], "latest").evaluate(text)))
