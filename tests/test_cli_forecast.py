"""`rnnkit train forecast`, `rnnkit evaluate` and `rnnkit predict` end to end on a tiny seasonal series (sine +
trend) where the model beats the naive baselines in seconds, and every bad input giving one line on stderr, exit
status 2 and nothing lost."""

import contextlib
import io
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.errors import InputError
from rnnkit.tasks.forecast import from_run as load_trained
from rnnkit.train import RunDirectory
from cli_helpers import assert_one_line_error, assert_resumed_exactly, snapshot

STEPS = 120  # ten years of months
TINY = ["--window", "12", "--horizon", "2", "--difference", "--hidden", "16", "--epochs", "10",
        "--batch-size", "16", "--lr", "0.01", "--seed", "0"]


def seasonal_csv(path: Path, steps: int = STEPS, dates: bool = True) -> Path:
    """y = 10 + 0.1 t + 3 sin(2πt/12) + noise, monthly from 2000-01, with a second column x."""
    t = np.arange(steps)
    y = 10 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, steps)
    header = "month,value,x" if dates else "value,x"
    rows = [(f"{2000 + i // 12}-{i % 12 + 1:02d}," if dates else "") + f"{v:.4f},{np.cos(i):.3f}" for i, v in enumerate(y)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def run_cli(*args) -> tuple[int, str, str]:
    """Run `rnnkit ARGS` in this process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the tests that only read it: (csv, run directory, training report)."""
    root = tmp_path_factory.mktemp("forecast")
    data = seasonal_csv(root / "monthly.csv")
    run = root / "run"
    code, stdout, stderr = run_cli("train", "forecast", "--data", data, "--target", "value", "--date-column", "month",
                                   *TINY, "--out", run, "--quiet", "--json")
    assert code == 0, stderr
    return data, run, json.loads(stdout)


# ------------------------------------------------------------------------------------------- happy paths


def test_train_beats_the_naive_baselines(trained):
    data, run, report = trained
    holdout = report["holdout"]
    assert report["stop_reason"] == "epochs" and report["epoch"] == 10
    assert holdout["season"] == 12 and holdout["season_source"] == "monthly dates"  # inferred from the dates
    assert holdout["horizon"] == 2 and holdout["holdout_steps"] == 24 and holdout["origins"] == 23
    assert holdout["checkpoint"] == "best"
    model, naive, seasonal = holdout["model"], holdout["naive"], holdout["seasonal_naive"]
    assert model["mae"] < 0.6 * naive["mae"] and model["mae"] < 0.6 * seasonal["mae"]
    assert model["mase"] == pytest.approx(model["mae"] / holdout["mase_scale"])
    assert model["rmse"] >= model["mae"]

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 10 and all({"valid_mae", "valid_mase"} <= record.keys() for record in records)
    best = min(records, key=lambda record: record["valid_mae"])
    best_checkpoint = RunDirectory.open(run).load("best")
    assert best_checkpoint.meta["trainer"]["position"]["step"] == best["step"]
    meta = best_checkpoint.meta
    assert meta["task"] == "forecast" and meta["season"] == 12 and meta["columns"] == ["value"]
    assert meta["transform"]["difference"] is True and len(meta["transform"]["mean"]) == 1


def test_human_report_shows_the_three_methods(tmp_path):
    data = seasonal_csv(tmp_path / "s.csv", dates=False)
    code, stdout, stderr = run_cli("train", "forecast", "--data", data, "--target", "value", "--features", "x,value",
                                   *TINY[:-4], "--epochs", "2", "--out", tmp_path / "run")
    assert code == 0, stderr
    assert "holdout:" in stdout and "season 1: no --date-column" in stdout
    for method in ("model", "naive", "seasonal naive"):
        assert f"\n  {method} " in stdout
    assert "rnnkit predict" in stdout
    assert "training windows" in stderr and "epoch 2/2" in stderr
    assert load_trained(tmp_path / "run").config.features == ["x", "value"]


def test_evaluate_repeats_the_training_report(trained):
    data, run, report = trained
    code, stdout, stderr = run_cli("evaluate", run, "--data", data, "--checkpoint", "best", "--json")
    assert code == 0, stderr
    evaluated = json.loads(stdout)
    for method in ("model", "naive", "seasonal_naive"):
        assert evaluated[method] == pytest.approx(report["holdout"][method])
    assert evaluated["season_source"] == "monthly dates, as trained"
    code, stdout, _ = run_cli("evaluate", run, "--data", data)
    assert code == 0 and "seasonal naive" in stdout and "MASE" in stdout


def test_predict_writes_the_csv_and_a_png(trained, tmp_path):
    data, run, _ = trained
    output = tmp_path / "out" / "next.csv"
    code, stdout, stderr = run_cli("predict", run, "--data", data, "--output", output, "--checkpoint", "best")
    assert code == 0, stderr
    png = output.with_suffix(".png")
    assert str(output) in stdout and str(png) in stdout
    lines = output.read_text().splitlines()
    assert lines[0] == "date,forecast" and [line.split(",")[0] for line in lines[1:]] == ["2010-01", "2010-02"]
    future = [float(line.split(",")[1]) for line in lines[1:]]
    # The series continues its trend and season: ~22 + 3 sin(0), ~22.1 + 3 sin(π/6).
    assert future == pytest.approx([22.0, 23.6], abs=1.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0

    code, stdout, _ = run_cli("predict", run, "--data", data, "--output", output, "--checkpoint", "best", "--json")
    answer = json.loads(stdout)
    assert code == 0 and answer["csv"] == str(output) and answer["png"] == str(png)
    assert [row["date"] for row in answer["forecast"]] == ["2010-01", "2010-02"]
    assert [row["forecast"] for row in answer["forecast"]] == pytest.approx(future, abs=1e-6)


def test_no_dates_and_no_validation(tmp_path):
    data = seasonal_csv(tmp_path / "s.csv", dates=False)
    code, stdout, stderr = run_cli("train", "forecast", "--data", data, "--target", "value", *TINY[:-4], "--epochs", "1",
                                   "--valid-fraction", "0", "--out", tmp_path / "run", "--quiet", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert "valid_mae" not in report and report["holdout"]["checkpoint"] == "latest"  # nothing to select by
    assert report["holdout"]["season"] == 1 and report["holdout"]["holdout_steps"] == 24
    output = tmp_path / "f.csv"
    code, _, stderr = run_cli("predict", tmp_path / "run", "--data", data, "--output", output)
    assert code == 0, stderr
    assert [line.split(",")[0] for line in output.read_text().splitlines()] == ["step", "1", "2"]
    assert output.with_suffix(".png").stat().st_size > 1000


def test_resume_continues_exactly(tmp_path):
    data = seasonal_csv(tmp_path / "s.csv")
    common = ["--data", data, "--target", "value", *TINY[:-4], "--dropout", "0.3", "--layers", "2", "--quiet", "--json"]
    for run, epochs in (("straight", "4"), ("stopped", "2")):
        code, _, stderr = run_cli("train", "forecast", *common, "--epochs", epochs, "--out", tmp_path / run)
        assert code == 0, stderr
    code, stdout, stderr = run_cli("train", "forecast", "--resume", tmp_path / "stopped", "--epochs", "4", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["epoch"] == 4
    assert_resumed_exactly(tmp_path / "straight", tmp_path / "stopped", epochs=4)

    before = snapshot(tmp_path / "stopped")
    code, _, stderr = run_cli("train", "forecast", "--resume", tmp_path / "stopped", "--window", "10")
    assert_one_line_error(code, stderr, "--window 10 differs from the run's 12")
    other = seasonal_csv(tmp_path / "other.csv", steps=STEPS + 12)
    code, _, stderr = run_cli("train", "forecast", "--resume", tmp_path / "stopped", "--data", other, "--epochs", "5")
    assert_one_line_error(code, stderr, "not the series this run was trained on")
    assert snapshot(tmp_path / "stopped") == before


def test_a_new_run_needs_data_target_and_window(tmp_path):
    code, _, stderr = run_cli("train", "forecast", "--data", seasonal_csv(tmp_path / "s.csv"), "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, "give --target COL", "--window N", "--resume DIR")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------- bad input


def train_args(data, out, *extra):
    return ["train", "forecast", "--data", data, "--target", "value", *TINY, "--out", out, "--quiet", *extra]


@pytest.mark.parametrize("extra, words", [
    (["--target", "sales"], ["no column 'sales'", "the columns are: month, value, x"]),
    (["--features", "x,y"], ["no column 'y' (--features)", "month, value, x"]),
    (["--date-column", "Month"], ["no column 'Month' (--date-column)"]),
    (["--window", "200"], ["the series has 120 steps", "--window 200 + --horizon 2 = 202", "lower --window"]),
    (["--window", "90"], ["the training part has 86 of the 120 steps", "= 92", "--test-fraction"]),
    (["--horizon", "0"], ["--horizon must be a whole number >= 1, got 0"]),
    (["--window", "0"], ["--window must be a whole number >= 1"]),
    (["--horizon", "12", "--test-fraction", "0.05", "--valid-fraction", "0.2"],
     ["the holdout (the last 6 of 120 steps) is shorter than --horizon 12", "raise --test-fraction"]),
    (["--season", "100"], ["the training part has 86 steps", "--season 100"]),
    (["--test-fraction", "1.5"], ["--test-fraction must be in (0, 1)"]),
])
def test_bad_training_flags_give_one_line(tmp_path, extra, words):
    data = seasonal_csv(tmp_path / "s.csv")
    code, _, stderr = run_cli(*train_args(data, tmp_path / "run", *extra))
    assert_one_line_error(code, stderr, *words)
    assert not (tmp_path / "run" / "latest.json").exists()


@pytest.mark.parametrize("cell, words", [
    ("", ["bad.csv:5", "column 'value' is empty"]),
    ("nan", ["bad.csv:5", "column 'value' is nan"]),
    ("twelve", ["bad.csv:5", "column 'value' holds 'twelve', not a number"]),
])
def test_bad_values_name_file_line_and_column(tmp_path, cell, words):
    data = seasonal_csv(tmp_path / "bad.csv")
    lines = data.read_text().splitlines()
    month = lines[4].split(",")[0]
    lines[4] = f"{month},{cell},0.5"
    data.write_text("\n".join(lines) + "\n")
    code, _, stderr = run_cli(*train_args(data, tmp_path / "run"))
    assert_one_line_error(code, stderr, *words)


def test_missing_file(tmp_path):
    code, _, stderr = run_cli(*train_args(tmp_path / "absent.csv", tmp_path / "run"))
    assert_one_line_error(code, stderr, "absent.csv: no such file")


def test_evaluate_and_predict_refuse_bad_series_and_keep_outputs(trained, tmp_path):
    data, run, _ = trained
    before = snapshot(run)
    output = tmp_path / "forecast.csv"
    output.write_text("earlier output\n")
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(data.read_text().replace("value", "level"))
    code, _, stderr = run_cli("predict", run, "--data", renamed, "--output", output)
    assert_one_line_error(code, stderr, "no column 'value' (--target)", "month, level, x")
    assert output.read_text() == "earlier output\n"

    short = tmp_path / "short.csv"
    short.write_text("\n".join(data.read_text().splitlines()[:11]) + "\n")  # 10 steps: holdout 2, window 12
    code, _, stderr = run_cli("evaluate", run, "--data", short)
    assert_one_line_error(code, stderr, "short.csv", "--window 12")
    code, _, stderr = run_cli("predict", run, "--data", short, "--output", output)
    assert_one_line_error(code, stderr, "10 steps, fewer than the model's --window 12")
    code, _, stderr = run_cli("evaluate", run)
    assert_one_line_error(code, stderr, "--data CSV")
    code, _, stderr = run_cli("predict", run, "--data", data, "--output", tmp_path / "plot.png")
    assert_one_line_error(code, stderr, "ends in .png")
    assert output.read_text() == "earlier output\n" and snapshot(run) == before


def test_another_tasks_directory_is_refused(tmp_path):
    run = RunDirectory.create(tmp_path / "lm")
    run.save(torch.nn.Linear(2, 2), {}, {"task": "lm", "configs": {}})
    with pytest.raises(InputError, match=r"holds a 'lm' run, not a 'forecast' one; .*rnnkit train forecast"):
        load_trained(tmp_path / "lm")
    code, _, stderr = run_cli("predict", tmp_path / "lm", "--data", "x.csv")
    assert_one_line_error(code, stderr, "language model")
