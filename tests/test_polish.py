"""What a newcomer met (issue 26, deliverable 5), each fixed as a class:

- no ``[x<=None]`` (click's range of a flag open at both ends) in any command's --help;
- --config's example in each train command's --help is a key of that command (it is accepted);
- "`rnnkit generate` does nothing with it: " never ends in an empty hint;
- under torchrun only rank 0 prints (each line once);
- the LM's `evaluate` scores every token after the first, and says so;
- a missing extra (sacrebleu, scikit-learn, matplotlib, mido) is one line before the work that needs it;
- plots: a legend beside its axes stays inside the figure, empty panels are hidden, the forecast plot marks the
  horizon;
- the Makefile takes TORCH_INDEX_URL for the torch install line (the default line unchanged).

(`caption predict` taking any picture is tested in tests/test_cli_caption.py and tests/test_captioner.py.)
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path

import click
import numpy as np
import pytest
import torch

from bad_inputs.cases import train as train_line
from bad_inputs.workspace import Workspace, run_quietly
from cli_helpers import assert_one_line_error, run_cli
from rnnkit.cli import cli
from rnnkit.cli.commands import task_names
from rnnkit.cli.task_command import RunCommand, not_an_operation_of

ROOT = Path(__file__).resolve().parents[1]


def every_command():
    """(path, click command) of every command and subcommand, with each task's flags of evaluate/predict/generate."""
    ctx = click.Context(cli, info_name="rnnkit")
    stack = [("rnnkit", cli, ctx)]
    while stack:
        path, command, context = stack.pop()
        yield path, command, context
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                child = command.get_command(context, name)
                stack.append((f"{path} {name}", child, click.Context(child, info_name=name, parent=context)))
        if isinstance(command, RunCommand):
            for task in task_names():
                if command._lookup(task, "").spec.operation(command.name) is not None:
                    child = command.for_task(task)
                    stack.append((f"{path} ({task})", child, click.Context(child, info_name=path, parent=context)))


def test_no_help_text_shows_an_open_range_as_none():
    helps = {path: command.get_help(context) for path, command, context in every_command()}
    assert len(helps) > 20 and any("train lm" in path for path in helps)
    shown = {path: re.findall(r"\[[^\]]*None[^\]]*\]", text) for path, text in helps.items()}
    assert not {path: found for path, found in shown.items() if found}


@pytest.mark.parametrize("task", task_names())
def test_the_config_example_of_each_train_command_is_one_of_its_keys(task, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "train", task, "--help")
    example = re.search(r"without '--' \(([^)]*?)\)", " ".join(out.split()))
    assert code == 0 and example, out
    config = tmp_path / "example.toml"
    config.write_text(example.group(1) + "\n")
    code, out, err = run_cli(capsys, "train", task, "--config", config, "--help")  # eager: the file is read first
    assert code == 0 and "Usage:" in out, err


def test_a_run_whose_task_has_no_other_operation_still_gets_a_hint():
    lonely = types.SimpleNamespace(noun="widget model", operations=())
    line = not_an_operation_of(lonely, "generate", "runs/w")
    assert line.startswith("runs/w holds a widget model; `rnnkit generate` does nothing with it: the tasks that "
                           "generate: lm, music;") and "rnnkit train lm" in line
    usual = types.SimpleNamespace(noun="classifier", operations=("evaluate", "predict"))
    line = not_an_operation_of(usual, "generate", "runs/c")
    assert "use `rnnkit evaluate runs/c` or `rnnkit predict runs/c` (the tasks that generate: lm, music)" in line
    assert not re.search(r": ?$|: \(|with it: $", line)


# ------------------------------------------------------------------------------------------- torchrun


@pytest.mark.parametrize("rank, lines", [("1", 0), ("0", 1)])
def test_under_torchrun_only_rank_zero_prints(rank, lines, tmp_path, monkeypatch, capsys):
    """Every rank runs the command; rank 1's refusal of a flag is not printed a second time."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored after the test: rank 1 points them at os.devnull
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    code, out, err = run_cli(capsys, "train", "lm", "--data", tmp_path / "x.txt", "--hidden", "0")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == lines and ("--hidden" in err) == bool(lines), err


def test_the_group_summary_is_logged_on_rank_zero_only():
    from rnnkit.tasks.run import train
    from rnnkit.tasks.spec import spec

    logged = []

    class Stop(Exception):
        pass

    class NotMain:
        is_main, is_distributed, rank, world_size = False, True, 1, 2

    prepared = types.SimpleNamespace(summary="corpus: ...", run_info={}, model=None, task=None)
    with pytest.raises(Exception):  # the Trainer refuses the stand-ins; the summary line comes before it
        train(spec("lm"), types.SimpleNamespace(train=None), dist=NotMain(), log=logged.append, prepared=prepared)
    assert logged == []


# ------------------------------------------------------------------------------------------- LM evaluate


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> tuple[Path, Path]:
    workspace = Workspace(tmp_path_factory.mktemp("lm"), runs={})
    code, _, err = run_quietly(workspace.format(shlex.split(train_line("lm", steps="--max-steps 3 --epochs 1"))))
    assert code == 0, err
    return workspace.path("out"), workspace["text"]


def test_lm_evaluate_scores_every_token_after_the_first(lm_run, tmp_path, capsys):
    """A text whose length fits no whole batch of windows: every token after the first is scored, once; in one
    stream, exactly as one pass over the whole text scores it."""
    from rnnkit.tasks.lm import from_run

    run, text_path = lm_run
    text = text_path.read_text()[:503]  # (503 - 1) = 4 streams · 125 + 2 left over, windows of 10 and one of 5
    sample = tmp_path / "sample.txt"
    sample.write_text(text)
    code, out, err = run_cli(capsys, "evaluate", run, "--data", sample, "--batch-size", "4", "--seq-len", "10",
                             "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert scored["tokens"] == len(text) - 1
    trained = from_run(str(run))
    ids = trained.vocab.encode(text)[None].long()  # (1, T)
    with torch.no_grad():
        logits, _ = trained.model.eval()(ids[:, :-1])  # (1, T - 1, V): one stream, all of it at once
        expected = torch.nn.functional.cross_entropy(logits[0].double(), ids[0, 1:]).item()
    assert scored["loss"] == pytest.approx(expected, rel=0.05)  # 4 streams start from a zero state, not one
    code, out, err = run_cli(capsys, "evaluate", run, "--data", sample, "--batch-size", "1", "--seq-len", "10",
                             "--json")
    one_stream = json.loads(out)  # windows of 10 carrying the state: the one pass exactly
    assert code == 0 and one_stream["tokens"] == len(text) - 1, err
    assert one_stream["loss"] == pytest.approx(expected, rel=1e-5)
    code, out, _ = run_cli(capsys, "evaluate", run, "--data", sample, "--batch-size", "4", "--seq-len", "10")
    assert code == 0 and f"({len(text) - 1:,} tokens of {sample}: every one after the first)" in out


# ------------------------------------------------------------------------------------------- missing extras


def without(monkeypatch, *modules: str) -> None:
    """Make rnnkit.extras.require find none of ``modules`` (top-level names), as if not installed."""
    import importlib

    def import_module(name, package=None):
        if name.split(".")[0] in modules:
            raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}", name=name.split(".")[0])
        return importlib.import_module(name, package)

    monkeypatch.setattr("rnnkit.extras.importlib", types.SimpleNamespace(import_module=import_module))


def forbid(monkeypatch, target: str) -> None:
    """Fail the test if ``target`` (the work a missing extra must come before) is called."""
    def called(*args, **kwargs):
        raise AssertionError(f"{target} ran before the missing extra was reported")
    monkeypatch.setattr(target, called)


@pytest.mark.parametrize("argv, module, extra, work", [
    (train_line("translate"), "sacrebleu", "translate", "rnnkit.train.trainer.Trainer.fit"),
    (train_line("classify"), "sklearn", "classify", "rnnkit.train.trainer.Trainer.fit"),
    ("evaluate {translate} --source {src} --target {tgt}", "sacrebleu", "translate",
     "rnnkit.tasks.translate.translate_sentences"),
    ("evaluate {classify} --data {csv}", "sklearn", "classify", "rnnkit.tasks.classify.class_probabilities"),
    ("predict {forecast} --data {series} --output {tmp}/f.csv", "matplotlib", "viz",
     "rnnkit.tasks.forecast.forecast_future"),
    ("generate {music} --midi {tmp}/m.mid", "mido", "music", "rnnkit.tasks.music.generate_music"),
    ("generate {music} --plot {tmp}/m.png", "matplotlib", "viz", "rnnkit.tasks.music.generate_music"),
    ("diagnose gradients --length 5 --hidden 4 --cells gru --out {tmp}/g.png", "matplotlib", "viz",
     "rnnkit.diagnose.report.gradient_report"),
    ("bench memory-tasks --tasks adding --lengths 4 --cells gru --hidden 4 --steps 2 --eval-size 8 --quiet "
     "--out {tmp}/b", "matplotlib", "viz", "rnnkit.diagnose.memory_bench._train"),
])
def test_a_missing_extra_is_reported_before_the_work(argv, module, extra, work, small_runs, tmp_path, monkeypatch,
                                                      capsys):
    workspace = Workspace(tmp_path, runs=small_runs)
    args = workspace.format(shlex.split(argv))
    before = sorted(p.name for p in tmp_path.iterdir())
    without(monkeypatch, module)
    forbid(monkeypatch, work)
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, f"rnnkit[{extra}]")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run, no output begun


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny runs of the tasks whose operations need an extra."""
    from bad_inputs.workspace import RUNS

    root = tmp_path_factory.mktemp("runs")
    inputs = Workspace(root / "data", runs={})
    runs = {}
    for name in ("translate", "classify", "forecast", "music"):
        task, arguments = RUNS[name]
        code, _, err = run_quietly(["train", task, *inputs.format(arguments), "--seed", "0", "--quiet", "--out",
                                    str(root / name)])
        assert code == 0, err
        runs[name] = root / name
    return runs


# ------------------------------------------------------------------------------------------- plots


def test_a_legend_beside_its_axes_is_kept_inside_the_figure(tmp_path):
    from rnnkit.diagnose.plots import keep_legends_inside, plot_gradient_flow

    norms = [list(np.exp(-np.arange(30) / 8.0))]
    curves = {f"c{i}": {"cell": "gru", "label": f"a long label of curve {i}, with words", "norms": norms,
                        "ratio": 1e-3} for i in range(40)}
    path = plot_gradient_flow(curves, tmp_path / "g.png", "title")
    assert path.stat().st_size > 0
    # the same figure drawn again, measured: every legend's box within the figure's
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 5.4))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(right=0.7)
    ax = figure.subplots()
    for i in range(40):
        ax.plot(range(30), norms[0], label=f"a long label of curve {i}, with words")
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    renderer = figure.canvas.get_renderer()
    outside = legend.get_window_extent(renderer)
    assert outside.y0 < figure.bbox.y0  # 40 entries in one column do not fit: the case to fix
    keep_legends_inside(figure)
    inside = ax.get_legend().get_window_extent(figure.canvas.get_renderer())
    box = figure.bbox
    assert box.x0 <= inside.x0 and inside.x1 <= box.x1 + 0.5 and box.y0 <= inside.y0 and inside.y1 <= box.y1


def test_empty_panels_are_hidden():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rnnkit.diagnose.plots import hide_empty_panels

    figure = Figure()
    FigureCanvasAgg(figure)
    full, empty, masked = figure.subplots(1, 3)
    full.plot([1, 2], [1, 2])
    masked.set_yscale("log")
    masked.plot([1, 2], [float("nan"), 0.0])  # nothing a log axis can draw
    hide_empty_panels(figure)
    assert [ax.get_visible() for ax in (full, empty, masked)] == [True, False, False]


def test_the_forecast_plot_marks_where_the_forecast_starts_and_its_horizon(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from rnnkit.tasks.forecast_plot import forecast_png

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: saved.append(self) or a[0].write(b"png"))
    x = np.arange(30.0)
    forecast_png(tmp_path / "f.png", x=x, actuals=np.sin(x), holdout_start=20, backtest_origins=np.array([20]),
                 backtest_forecasts=np.zeros((1, 3)), future_x=np.arange(30.0, 33.0), future=np.zeros(3), title="t")
    ax = saved[0].axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "forecast starts" in labels and "forecast horizon (3 steps)" in labels
    start = next(line for line in ax.get_lines() if line.get_label() == "forecast starts")
    assert list(start.get_xdata()) == [29.0, 29.0]


# ------------------------------------------------------------------------------------------- Makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_the_makefile_takes_a_torch_index_url():
    def torch_line(*args):
        done = subprocess.run(["make", "-n", "-B", ".venv/.installed", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        return " ".join(next(line for line in done.stdout.splitlines() if "torch==" in line).split())

    assert torch_line() == ".venv/bin/pip install --quiet torch==2.13.0 'setuptools>=68' wheel ninja"
    url = "https://download.pytorch.org/whl/cpu"
    assert f"--extra-index-url {url} torch==2.13.0" in torch_line(f"TORCH_INDEX_URL={url}")
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in (ROOT / "README.md").read_text()
