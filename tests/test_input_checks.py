"""Every flag and every input checked (issue 17): a bad value is one line ``error: ...`` naming the problem and
the fix, exit status 2, no traceback, and nothing the user had is changed; an output never replaces an input or
one of a run directory's own files; ``--json`` is always JSON; a non-finite result is never a success.

The runs the tests apply (a character language model, a forecaster, a translator) are trained once per module,
a few steps each.
"""

import ast
import json
import math
from pathlib import Path

import click
import pytest
import torch

import rnnkit.cli
from rnnkit.checks import MAX_SEED, fraction_for
from rnnkit.cli import cli, main
from rnnkit.cli.json_output import not_finite, to_json
from rnnkit.cli.options import FiniteFloat
from rnnkit.cli.task_command import RunCommand
from rnnkit.data.corpus import split_train_valid
from rnnkit.errors import InputError
from rnnkit.tasks.spec import build_within_memory, tasks_with
from rnnkit.train import TrainConfig
from cli_helpers import assert_one_line_error, run_cli, snapshot

CLI = Path(rnnkit.cli.__file__).resolve().parent
TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(60))  # ~1,900 characters
LM = ["--layers", "1", "--hidden", "8", "--seq-len", "8", "--batch-size", "4", "--seed", "0", "--quiet"]


def series_csv(path: Path, steps: int = 60, bad: str | None = None, row: int = 40) -> Path:
    """A monthly sine series; ``bad`` replaces the value of step ``row`` (file line ``row + 2``)."""
    values = [f"{10 + 3 * math.sin(2 * math.pi * t / 12):.4f}" for t in range(steps)]
    if bad is not None:
        values[row] = bad
    path.write_text("month,value\n" + "".join(f"{2000 + t // 12}-{t % 12 + 1:02d},{v}\n" for t, v in enumerate(values)))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder with three runs trained a few steps each (lm, forecast, translate) and their inputs (text.txt,
    series.csv, source.txt, target.txt). Being module-scoped, it is made before a test's capsys captures."""
    root = tmp_path_factory.mktemp("runs")
    (root / "text.txt").write_text(TEXT)
    series_csv(root / "series.csv")
    pairs = [(f"ein {w} {v}.", f"a {e} {u}.") for w, e in (("Hund", "dog"), ("Mann", "man"), ("Kind", "child"))
             for v, u in (("läuft", "runs"), ("schläft", "sleeps"))] * 3
    (root / "source.txt").write_text("".join(s + "\n" for s, _ in pairs))
    (root / "target.txt").write_text("".join(t + "\n" for _, t in pairs))
    commands = {
        "lm": ["train", "lm", "--data", root / "text.txt", *LM, "--max-steps", "3"],
        "forecast": ["train", "forecast", "--data", root / "series.csv", "--target", "value", "--window", "6",
                     "--hidden", "4", "--epochs", "1", "--quiet"],
        "translate": ["train", "translate", "--source", root / "source.txt", "--target", root / "target.txt",
                      "--hidden", "4", "--embedding", "4", "--min-freq", "1", "--max-steps", "2", "--quiet"],
    }
    for name, args in commands.items():
        try:
            main([str(arg) for arg in args] + ["--out", str(root / name)])
        except SystemExit as exit:
            assert not exit.code, f"{name} run failed"
    return root


# ------------------------------------------------------------------------------------------- 1. flags


def _options():
    """(command path, option) for every option of every rnnkit command (train TASK, evaluate, diagnose gradients...;
    ``evaluate RUN`` with the flags of each task's runs)."""
    found = []

    def walk(command: click.Command, path: str):
        if isinstance(command, click.Group):
            for name in command.list_commands(None):
                walk(command.get_command(None, name), f"{path} {name}".strip())
        else:
            found.extend((path, option) for option in command.params if isinstance(option, click.Option))
            if isinstance(command, RunCommand):
                for task in tasks_with(command.name):
                    walk(command.for_task(task), f"{path} ({task})")

    walk(cli, "")
    return found


FLOAT_OPTIONS = [(path, option) for path, option in _options()
                 if isinstance(option.type, click.types.FloatParamType)]
SEED_OPTIONS = [(path, option) for path, option in _options() if option.name in ("seed", "composition_seed")]


@pytest.mark.parametrize("path, option", FLOAT_OPTIONS, ids=[f"{p} {o.opts[0]}" for p, o in FLOAT_OPTIONS])
@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_no_float_flag_accepts_nan_or_inf(path, option, text):
    """click's FloatRange lets nan through (nan <= 0 is False): every float flag is a FiniteFloat."""
    assert isinstance(option.type, FiniteFloat), f"{path} {option.opts[0]} is {option.type!r}"
    with pytest.raises(click.BadParameter, match="not a finite number"):
        option.type.convert(text, option, None)


def test_the_flag_tables_are_not_empty():
    assert len(FLOAT_OPTIONS) > 40 and len(SEED_OPTIONS) >= 10


@pytest.mark.parametrize("path, option", SEED_OPTIONS, ids=[f"{p} {o.opts[0]}" for p, o in SEED_OPTIONS])
@pytest.mark.parametrize("text", ["-1", str(2**32), str(2**70)])
def test_no_seed_flag_accepts_what_numpy_and_torch_cannot_seed(path, option, text):
    with pytest.raises(click.BadParameter):
        option.type.convert(text, option, None)
    assert option.type.convert(str(MAX_SEED), option, None) == MAX_SEED


@pytest.mark.parametrize("args, words", [
    (["--seed", "-1"], ["--seed", "0<=x<=4294967295"]),
    (["--seed", str(2**70)], ["--seed", "0<=x<=4294967295"]),
    (["--lr", "nan"], ["--lr", "not a finite number"]),
    (["--lr", "inf"], ["--lr", "not a finite number"]),
    (["--lr", "-1"], ["--lr", "x>0"]),
    (["--clip", "nan"], ["--clip", "not a finite number"]),
    (["--clip", "inf"], ["--clip", "not a finite number"]),
    (["--clip-value", "nan"], ["--clip-value", "not a finite number"]),
    (["--time-budget", "nan"], ["--time-budget", "not a finite number"]),
    (["--time-budget", "inf"], ["--time-budget", "not a finite number"]),
    (["--time-budget", "-5"], ["--time-budget", "x>0"]),
    (["--weight-decay", "nan"], ["--weight-decay", "not a finite number"]),
    (["--momentum", "nan"], ["--momentum", "not a finite number"]),
    (["--dropout", "nan"], ["--dropout", "not a finite number"]),
    (["--forget-bias", "inf"], ["--forget-bias", "not a finite number"]),
    (["--valid-fraction", "nan"], ["--valid-fraction", "not a finite number"]),
    (["--layers", "1000000"], ["--layers", "1<=x<=1000"]),
    (["--hidden", "1000000000"], ["the model's sizes", "--hidden"]),
    (["--embedding", "10000000000"], ["lower the model's sizes", "--embedding"]),
])
def test_bad_training_flags_give_one_line_and_no_run(capsys, tmp_path, args, words):
    (tmp_path / "text.txt").write_text(TEXT)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", tmp_path / "text.txt", *LM, "--max-steps", "1",
                              "--out", tmp_path / "run", *args)
    assert_one_line_error(code, stderr, *words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("values", [
    {"lr": math.nan}, {"lr": math.inf}, {"clip": math.nan}, {"clip_value": math.inf}, {"time_budget": math.nan},
    {"time_budget": math.inf}, {"momentum": math.nan}, {"weight_decay": math.nan}, {"lr_decay": math.inf},
    {"seed": -1}, {"seed": 2**70}, {"seed": 1.5}, {"decay_after": 1.5},
])
def test_train_config_checks_what_library_users_give(values):
    with pytest.raises(InputError):
        TrainConfig(**values)


def test_a_model_larger_than_memory_is_refused_before_allocating(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("rnnkit.checks.machine_memory", lambda: 1_000_000)  # a 1 MB machine
    (tmp_path / "text.txt").write_text(TEXT)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", tmp_path / "text.txt", *LM, "--hidden", "256",
                              "--max-steps", "1", "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, "parameters", "needs about", "more than this machine's 1.0 MB",
                          "lower the model's sizes (--hidden")
    assert not (tmp_path / "run").exists()


def test_build_within_memory_builds_the_same_model():
    """The meta-device probe draws no random numbers: the model built after it is the one built without it."""
    torch.manual_seed(0)
    plain = torch.nn.LSTM(3, 5)
    torch.manual_seed(0)
    checked = build_within_memory(lambda: torch.nn.LSTM(3, 5))
    for a, b in zip(plain.parameters(), checked.parameters()):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------- 1b. --valid-fraction


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_valid_fraction_that_holds_out_nothing_is_refused_with_one_that_works(capsys, tmp_path, level):
    (tmp_path / "text.txt").write_text(TEXT)
    args = ["train", "lm", "--data", tmp_path / "text.txt", *LM, "--level", level, "--max-steps", "1"]
    code, _, stderr = run_cli(capsys, *args, "--valid-fraction", "0.00001", "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, "--valid-fraction 1e-05 holds out 0", "use at least", "or 0 for no validation")
    suggested = stderr.split("use at least ")[1].split(",")[0]
    code, stdout, stderr = run_cli(capsys, *args, "--valid-fraction", suggested, "--out", tmp_path / "run", "--json")
    assert code == 0, stderr
    assert "valid_loss" in json.loads(stdout)


@pytest.mark.parametrize("total, needed", [(1900, 2), (7, 2), (1_000_003, 2), (30, 1), (96, 12)])
def test_fraction_for_holds_out_what_it_promises(total, needed):
    fraction = fraction_for(needed, total)
    assert round(fraction * total) >= needed and math.floor(total * fraction + 0.5) >= needed
    assert len(split_train_valid("x" * total, fraction)[1]) >= needed


def test_forecast_valid_fraction_that_holds_out_nothing(capsys, tmp_path):
    data = series_csv(tmp_path / "s.csv")
    code, _, stderr = run_cli(capsys, "train", "forecast", "--data", data, "--target", "value", "--window", "6",
                              "--valid-fraction", "0.001", "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, stderr, "--valid-fraction 0.001 holds out none of the 48 steps", "use at least")


def test_classify_valid_fraction_that_holds_out_nothing(capsys, tmp_path):
    data = tmp_path / "texts.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(30)))
    code, _, stderr = run_cli(capsys, "train", "classify", "--data", data, "--valid-fraction", "0.001",
                              "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, stderr, "holds out no text", "largest class has 30", "use at least 0.05")


# ------------------------------------------------------------------------------------------- 2. TOML types


@pytest.mark.parametrize("line, words", [
    ("hidden = 3.5", ["'hidden'", "is 3.5", "whole number"]),
    ("epochs = true", ["'epochs'", "is true", "whole number"]),
    ("lr = true", ["'lr'", "is true", "give a number"]),
    ('lr = "fast"', ["'lr'", '"fast"', "give a number"]),
    ("lr = nan", ["--lr", "not a finite number"]),
    ("cell = 3", ["'cell'", "is 3", "'lstm'"]),
    ('cell = "tree"', ["'cell'", '"tree"', "give one of"]),
    ("tie-weights = 1", ["'tie-weights'", "is 1", "true or false"]),
    ("quiet = \"yes\"", ["'quiet'", "true or false"]),
    ("data = 5", ["'data'", "is 5", "quoted string"]),
    ("seed = -1", ["--seed", "0<=x<=4294967295"]),
])
def test_config_values_must_have_the_flags_type(capsys, tmp_path, line, words):
    (tmp_path / "text.txt").write_text(TEXT)
    config = tmp_path / "bad.toml"
    config.write_text(line + "\n")
    code, _, stderr = run_cli(capsys, "train", "lm", "--config", config, "--data", tmp_path / "text.txt",
                              "--max-steps", "1", "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, *words)
    if "'" in words[0]:
        assert "bad.toml" in stderr
    assert not (tmp_path / "run").exists()


def test_config_takes_an_int_where_a_float_is_expected(capsys, tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    config = tmp_path / "ok.toml"
    config.write_text("lr = 1\ndropout = 0\nhidden = 8\ntie-weights = false\n")
    code, _, stderr = run_cli(capsys, "train", "lm", "--config", config, "--data", tmp_path / "text.txt",
                              "--layers", "1", "--seq-len", "8", "--batch-size", "4", "--max-steps", "1",
                              "--out", tmp_path / "run", "--quiet")
    assert code == 0, stderr


# ------------------------------------------------------------------------------------------- 3, 4. outputs


@pytest.mark.parametrize("make_args, words", [
    (lambda r: ["predict", r / "forecast", "--data", r / "series.csv", "--output", r / "series.csv"],
     ["--output", "is the input file", "give another --output"]),
    (lambda r: ["predict", r / "forecast", "--data", r / "series.csv", "--output", r / "lm" / "best.csv"],
     None),  # a new name inside a run directory is fine (checked below: it is written)
    (lambda r: ["predict", r / "forecast", "--data", r / "series.csv", "--output", r / "forecast" / "metrics.jsonl"],
     ["is one of the files of the run directory", "give another --output"]),
    (lambda r: ["predict", r / "forecast", "--data", r / "series.csv", "--output", r / "lm"],
     ["--output", "is a directory", "forecast.csv"]),
    (lambda r: ["translate", r / "translate", "--input", r / "source.txt", "--output", r / "source.txt"],
     ["--output", "is the input file"]),
    (lambda r: ["predict", r / "translate", "--input", r / "source.txt", "--output", r / "source.txt"],
     ["--output", "is the input file"]),
    (lambda r: ["translate", r / "translate", "--input", r / "source.txt", "--output", r / "lm"],
     ["--output", "is a directory", "translations.txt"]),
    (lambda r: ["translate", r / "translate", "--input", r / "source.txt", "--output", r / "text.txt" / "x"],
     ["is a file, not a directory"]),
    (lambda r: ["translate", r / "translate", "--input", r / "source.txt", "--output", r / "missing" / "x"],
     ["does not exist", "create it"]),
    (lambda r: ["explain", r / "lm", "--text", r / "text.txt", "--out", r / "text.txt"], ["--out", "is the input file"]),
    (lambda r: ["explain", r / "lm", "--text", r / "text.txt", "--out", r / "lm" / "latest.json"],
     ["--out", "is one of the files of the run directory"]),
    (lambda r: ["explain", r / "lm", "--text", r / "text.txt", "--out", r / "lm" / "checkpoints" / "page.html"],
     ["is one of the files of the run directory"]),
    (lambda r: ["explain", r / "lm", "--text", r / "text.txt", "--out", r / "lm" / ".lock"],
     ["is one of the files of the run directory"]),
    (lambda r: ["diagnose", "gradients", "--run", r / "lm", "--text", r / "text.txt", "--out", r / "text.txt"],
     ["--out", "is the input file"]),
    (lambda r: ["diagnose", "memory", r / "lm", "--length", "5", "--text", r / "text.txt", "--out", r / "lm" / "best.json"],
     ["is one of the files of the run directory"]),
])
def test_outputs_never_replace_inputs_or_run_files(capsys, runs, make_args, words):
    before = snapshot(runs)
    code, _, stderr = run_cli(capsys, *make_args(runs))
    if words is None:
        assert code == 0, stderr
        assert (runs / "lm" / "best.csv").is_file()
        (runs / "lm" / "best.csv").unlink()
        (runs / "lm" / "best.png").unlink()
    else:
        assert_one_line_error(code, stderr, *words)
    assert snapshot(runs) == before


def test_a_symlink_to_the_input_is_the_input(capsys, runs, tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(runs / "series.csv")
    before = snapshot(runs)
    code, _, stderr = run_cli(capsys, "predict", runs / "forecast", "--data", runs / "series.csv", "--output", link)
    assert_one_line_error(code, stderr, "is the input file")
    assert snapshot(runs) == before


# ------------------------------------------------------------------------------------------- 5. series values


@pytest.mark.parametrize("value, words", [
    ("1e308", ["s.csv:42", "column 'value' holds 1e308, too large to scale", "larger units"]),
    ("-1e16", ["s.csv:42", "too large to scale"]),
    ("inf", ["s.csv:42", "column 'value' is inf", "finite number"]),
    ("-inf", ["s.csv:42", "column 'value' is -inf"]),
    ("nan", ["s.csv:42", "column 'value' is nan", "missing value"]),
])
@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_series_values_that_cannot_be_scaled_name_row_and_column(capsys, runs, tmp_path, value, words, command):
    data = series_csv(tmp_path / "s.csv", bad=value)
    args = {"train": ["train", "forecast", "--data", data, "--target", "value", "--window", "6", "--quiet",
                      "--out", tmp_path / "run"],
            "evaluate": ["evaluate", runs / "forecast", "--data", data],
            "predict": ["predict", runs / "forecast", "--data", data, "--output", tmp_path / "f.csv"]}[command]
    code, _, stderr = run_cli(capsys, *args)
    assert_one_line_error(code, stderr, *words)
    assert not (tmp_path / "run").exists() and not (tmp_path / "f.csv").exists()


# ------------------------------------------------------------------------------------------- 6. JSON


def test_to_json_writes_null_with_a_reason():
    report = {"valid_loss": math.inf, "holdout": {"model": {"mae": math.nan, "rmse": 1.5}}, "curve": [1.0, -math.inf]}
    text = to_json(report)
    assert "Infinity" not in text and "NaN" not in text
    parsed = json.loads(text)
    assert parsed["valid_loss"] is None and parsed["valid_loss_reason"] == "not finite: inf"
    assert parsed["holdout"]["model"] == {"mae": None, "rmse": 1.5, "mae_reason": "not finite: nan"}
    assert parsed["curve"] == [1.0, None]
    assert not_finite(report) == ["valid_loss = inf", "holdout.model.mae = nan", "curve[1] = -inf"]


def test_commands_print_json_only_through_to_json():
    """No command module (nor the command machinery) calls json.dumps: it would print Infinity and NaN."""
    modules = [*sorted((CLI / "commands").glob("*.py")), CLI / "task_command.py"]
    offenders = []
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "dumps" and getattr(node.value, "id", "") == "json":
                offenders.append(f"{module.name}:{node.lineno}")
    assert not offenders


@pytest.mark.parametrize("as_json", [True, False])
def test_a_non_finite_score_is_printed_honestly_and_is_no_success(capsys, runs, monkeypatch, as_json):
    scores = {"model": {"mae": math.inf, "rmse": math.inf, "mase": math.nan}, "naive": {"mae": 1.0, "rmse": 1.0,
              "mase": 1.0}, "seasonal_naive": {"mae": 1.0, "rmse": 1.0, "mase": 1.0}, "origins": 3, "horizon": 1,
              "window": 6, "season": 12, "season_source": "monthly dates", "holdout_steps": 12, "series_steps": 60,
              "mase_scale": 1.0}
    monkeypatch.setattr("rnnkit.tasks.forecast.backtest_report", lambda *args: scores)
    code, stdout, stderr = run_cli(capsys, "evaluate", runs / "forecast", "--data", runs / "series.csv",
                                   *(["--json"] if as_json else []))
    assert_one_line_error(code, stderr, "not finite", "model.mae = inf")
    if as_json:
        printed = json.loads(stdout)
        assert printed["model"]["mae"] is None and printed["model"]["mase_reason"] == "not finite: nan"


# ------------------------------------------------------------------------------------------- 7. unseen characters


def test_unseen_characters_are_named_and_can_be_skipped(capsys, runs, tmp_path):
    text = tmp_path / "other.txt"
    text.write_text(TEXT[:400] + "é€é\n")
    code, _, stderr = run_cli(capsys, "evaluate", runs / "lm", "--data", text)
    assert_one_line_error(code, stderr, "3 character(s) the model never saw", "'é', '€'", "--unknown skip")
    code, stdout, stderr = run_cli(capsys, "evaluate", runs / "lm", "--data", text, "--unknown", "skip", "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["skipped_characters"] == 3 and metrics["tokens"] > 0
    code, stdout, _ = run_cli(capsys, "evaluate", runs / "lm", "--data", text, "--unknown", "skip")
    assert code == 0 and "3 characters the model never saw skipped" in stdout


def test_skipping_leaves_the_score_of_known_text_unchanged(capsys, runs, tmp_path):
    """Skipping drops exactly the unseen characters: the score is that of the text without them."""
    (tmp_path / "with.txt").write_text(TEXT[:300].replace("return", "retürn"))
    (tmp_path / "without.txt").write_text(TEXT[:300].replace("return", "retrn"))
    scores = []
    for name in ("with.txt", "without.txt"):
        code, stdout, stderr = run_cli(capsys, "evaluate", runs / "lm", "--data", tmp_path / name, "--unknown", "skip",
                                       "--json")
        assert code == 0, stderr
        scores.append(json.loads(stdout))
    assert scores[0]["loss"] == scores[1]["loss"] and scores[0]["skipped_characters"] > 0


# ------------------------------------------------------------------------------------------- 9. resume


def test_resume_says_which_recorded_file_it_reads_before_reading_it(capsys, tmp_path):
    """Unless --quiet; the line comes before the data is read: a missing file is reported after it."""
    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", data, *LM, "--max-steps", "1", "--out", tmp_path / "run")
    assert code == 0, stderr
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", tmp_path / "run", "--max-steps", "2")
    assert code == 0, stderr
    assert f"resuming {tmp_path / 'run'}: reading {data} (--data, recorded in the run)" in stderr
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", tmp_path / "run", "--max-steps", "3", "--quiet")
    assert code == 0 and stderr == ""  # --quiet: no such line
    data.unlink()
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", tmp_path / "run", "--max-steps", "4")
    lines = stderr.strip().splitlines()
    assert code == 2 and lines[0].startswith("resuming") and lines[1].startswith("error: ") and "no such file" in lines[1]


# ------------------------------------------------------------------------------------------- 8. input files


def test_tie_weights_with_unequal_sizes_names_the_flags(capsys, tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", tmp_path / "text.txt", *LM, "--embedding", "8",
                              "--hidden", "16", "--tie-weights", "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, "--tie-weights", "--embedding equal to --hidden", "--embedding 16")


def test_a_conllu_line_with_a_broken_id_is_named(capsys, tmp_path):
    data = tmp_path / "broken.conllu"
    data.write_text("1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\none\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n\n" * 5)
    code, _, stderr = run_cli(capsys, "train", "tag", "--data", data, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, stderr, "broken.conllu:2", "ID 'one' is not a word number")
    data.write_text("one\tthe\tthe\tDET\tDT\t_\t0\t_\t_\t_\n\n" * 5)  # the first line too: still CoNLL-U
    code, _, stderr = run_cli(capsys, "train", "tag", "--data", data, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, stderr, "broken.conllu:1", "ID 'one'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("date_column, garbled, words", [
    ("month", "not-a-date", ["s.csv:42", "'not-a-date' is not an ISO date like '2000-01'"]),
    ("value", None, ["--date-column value is also --target"]),
])
def test_a_date_column_that_is_not_dates(capsys, tmp_path, date_column, garbled, words):
    data = series_csv(tmp_path / "s.csv")
    if garbled:
        lines = data.read_text().splitlines()
        lines[41] = garbled + "," + lines[41].split(",")[1]
        data.write_text("\n".join(lines) + "\n")
    code, _, stderr = run_cli(capsys, "train", "forecast", "--data", data, "--target", "value", "--window", "6",
                              "--date-column", date_column, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, stderr, *words)


def test_labels_that_are_no_dates_at_all_stay_labels(capsys, tmp_path):
    data = tmp_path / "s.csv"
    data.write_text("week,value\n" + "".join(f"w{t},{10 + math.sin(t):.3f}\n" for t in range(60)))
    code, _, stderr = run_cli(capsys, "train", "forecast", "--data", data, "--target", "value", "--window", "6",
                              "--date-column", "week", "--max-steps", "1", "--out", tmp_path / "run", "--quiet")
    assert code == 0, stderr


def test_pitches_outside_the_range_are_one_line():
    from rnnkit.data.music import Piece, PitchRange

    pieces = [Piece("a.mid", ((59,), (60,))), Piece("b.mid", ((61,),)), Piece("c.mid", ((80, 81),))]
    with pytest.raises(InputError) as refusal:
        PitchRange(60, 72).check(pieces, "widen --pitch-range to {needed}")
    assert str(refusal.value) == ("a.mid holds pitch 59, outside the pitch range 60-72 (1 more pieces hold pitches "
                                  "outside it too); widen --pitch-range to 59-81")


def test_stdin_that_is_not_utf8_is_one_line(capsys, runs, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("ein Hund l\xe4uft.\n".encode("latin-1"))))
    code, _, stderr = run_cli(capsys, "translate", runs / "translate")
    assert_one_line_error(code, stderr, "stdin:1", "byte 0xe4", "not UTF-8", "--input FILE")


def test_an_empty_npz_is_one_line_not_an_interruption(capsys, tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    code, _, stderr = run_cli(capsys, "train", "caption", "--data", tmp_path / "empty.npz", "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, "empty.npz is not a NumPy .npz archive")


def test_a_link_inside_a_run_directory_is_not_written_through(capsys, runs, tmp_path):
    outside = tmp_path / "outside.html"
    outside.write_text("the user's page")
    (runs / "lm" / "explain.html").symlink_to(outside)
    try:
        before = snapshot(runs)
        code, _, stderr = run_cli(capsys, "explain", runs / "lm", "--text", runs / "text.txt")
        assert_one_line_error(code, stderr, "explain.html is a symbolic link")
        assert snapshot(runs) == before and outside.read_text() == "the user's page"
    finally:
        (runs / "lm" / "explain.html").unlink()


BENCH = ["bench", "memory-tasks", "--tasks", "adding", "--lengths", "4", "--cells", "rnn", "--hidden", "4",
         "--steps", "2", "--eval-size", "8", "--quiet"]


@pytest.mark.parametrize("args, words", [
    (BENCH + ["--hidden", "1000000000"], ["training each cell", "lower --hidden"]),
    (BENCH + ["--out", "{runs}/lm"], ["--out", "in the run directory"]),
    (BENCH + ["--out", "{runs}/text.txt/bench"], ["text.txt is a file, not a directory"]),
    (["diagnose", "gradients", "--length", "6", "--cells", "rnn", "--out", "{tmp}/g.png", "--hidden", "1000000000"],
     ["--hidden 1000000000", "lower --hidden or --length"]),
    (["diagnose", "memory", "--length", "100000000000", "--hidden", "4", "--cells", "rnn", "--out", "{tmp}/m.png"],
     ["--length 100000000000", "lower --hidden or --length"]),
])
def test_bench_and_diagnose_refuse_before_any_work(capsys, runs, tmp_path, args, words):
    args = [arg.format(runs=runs, tmp=tmp_path) for arg in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "bench")]
    before = snapshot(runs)
    code, _, stderr = run_cli(capsys, *args)
    assert_one_line_error(code, stderr, *words)
    assert snapshot(runs) == before and not (tmp_path / "bench").exists()
