"""Flags that several ``rnnkit train`` tasks share, written once: the recurrent network and the training loop.

Each task's command stacks the decorators it needs::

    @train.command("classify")
    @config_option
    @recurrent_options(hidden=128, bidirectional=True)
    @training_options(lr=2e-3, epochs=10)
    @click.option("--data", ...)
    def train_classify(ctx, **options): ...

and turns the parsed values into a :class:`~rnnkit.train.TrainConfig` with :func:`train_config_from`.
"""

import sys
import time
import tomllib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Callable

import click
from click.core import ParameterSource
from tqdm import tqdm

from rnnkit.errors import InputError
from rnnkit.train import OPTIMIZERS, SCHEDULES, Checkpoint, RunDirectory, TrainConfig, distributed

EXIT_INTERRUPTED = 130

# A step limit belongs to one invocation (a hook for trials and tests): a resumed run does not inherit it.
SESSION_ONLY = {"max_steps"}

Positive = click.IntRange(min=1)
PositiveFloat = click.FloatRange(min=0, min_open=True)
Probability = click.FloatRange(0, 1, max_open=True)


def checkpoint_option(best: str = "the lowest validation loss", prefix: str = "") -> Callable:
    """``--checkpoint auto|best|latest`` (into the parameter ``which``) for the commands that apply a trained run.

    The default, auto, takes the best checkpoint when the run has one: a run that trained past its best
    epoch should be applied as it was at its best, as the benchmarks score it.
    """
    return click.option("--checkpoint", "which", type=click.Choice(["auto", "best", "latest"]), default="auto",
                        show_default=True,
                        help=f"{prefix}Which checkpoint of the run: best ({best}), latest, or auto: best when the "
                             "run has one, else latest.")


def _stack(*decorators: Callable) -> Callable:
    """One decorator applying ``decorators`` in the order they are listed (the first is the first flag in --help)."""
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return apply


# ------------------------------------------------------------------------------------------- --config


def _load_config_file(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Eager callback of --config: the TOML keys become defaults, so command-line flags still win."""
    if value is None:
        return
    try:
        table = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.BadParameter(f"{value}: no such file; check the path", param=param) from None
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"cannot read {value} as UTF-8 text ({error})", param=param) from None
    except tomllib.TOMLDecodeError as error:
        raise click.BadParameter(f"{value} is not valid TOML ({error})", param=param) from None
    by_flag = {
        option.opts[0].lstrip("-"): option.name
        for option in ctx.command.params
        if isinstance(option, click.Option) and option.name != "config" and option.opts[0].startswith("--")
    }
    for key, setting in table.items():
        if key not in by_flag:
            hint = f" (did you mean {key.replace('_', '-')!r}?)" if key.replace("_", "-") in by_flag else ""
            raise click.BadParameter(
                f"unknown key {key!r} in {value}{hint}; keys are the flag names without '--', "
                f"see `rnnkit {ctx.command_path.split(' ', 1)[-1]} --help`",
                param=param,
            )
        if isinstance(setting, dict):
            raise click.BadParameter(f"key {key!r} in {value} is a table; give a plain value", param=param)
    ctx.default_map = {**(ctx.default_map or {}), **{by_flag[key]: setting for key, setting in table.items()}}


config_option = click.option(
    "--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False, callback=_load_config_file,
    help="TOML file of settings; keys are flag names without '--' (seq-len = 128). Flags given here win.",
)


def explicit_options(ctx: click.Context) -> set[str]:
    """Options the user set (command line, config file or environment), as opposed to defaults."""
    return {
        name for name in ctx.params
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }


# ------------------------------------------------------------------------------------------- the network


def recurrent_options(*, hidden: int = 256, layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                      cell: str = "lstm") -> Callable:
    """--cell --layers --hidden --bidirectional --dropout --engine, with the task's defaults."""
    return _stack(
        click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default=cell, show_default=True,
                     help="Recurrent cell."),
        click.option("--layers", type=Positive, default=layers, show_default=True, help="Stacked recurrent layers."),
        click.option("--hidden", type=Positive, default=hidden, show_default=True,
                     help="Hidden units per layer (per direction)."),
        click.option("--bidirectional/--unidirectional", default=bidirectional, show_default=True,
                     help="Read each sequence in both directions."),
        click.option("--dropout", type=Probability, default=dropout, show_default=True,
                     help="Dropout probability on embeddings and between layers, in [0, 1)."),
        click.option("--engine", type=click.Choice(["fused", "explicit"]), default="fused", show_default=True,
                     help="fused: PyTorch's kernels; explicit: rnnkit's loop with hand-written BPTT."),
    )


# ------------------------------------------------------------------------------------------- training


def training_options(*, lr: float = 2e-3, epochs: int = 10, batch_size: int | None = 32) -> Callable:
    """The training loop's flags (TrainConfig's fields), the run directory, and how the result is shown.

    ``batch_size=None`` leaves --batch-size to the command (the language model defines its own).
    """
    batch = ([click.option("--batch-size", type=Positive, default=batch_size, show_default=True,
                           help="Sequences per optimizer step (over all processes).")]
             if batch_size is not None else [])
    return _stack(
        *batch,
        click.option("--epochs", type=Positive,
                     help=f"Passes over the training data. Default: {epochs}, or unlimited with --time-budget."),
        click.option("--time-budget", type=PositiveFloat, metavar="SECONDS",
                     help="Stop after this many seconds of the run (total across resumes)."),
        click.option("--max-steps", type=Positive, help="Stop after this many optimizer steps in total."),
        click.option("--lr", type=PositiveFloat, default=lr, show_default=True, help="Learning rate."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam", show_default=True, help="Optimizer."),
        click.option("--momentum", type=Probability, default=0.0, show_default=True, help="SGD momentum."),
        click.option("--weight-decay", type=click.FloatRange(min=0),
                     help="Weight decay. Default: the optimizer's (AdamW 0.01, others 0)."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default="constant", show_default=True,
                     help="Learning-rate schedule: step = ×--lr-decay each epoch after --decay-after; cosine; plateau."),
        click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
                     help="Factor of the step and plateau schedules."),
        click.option("--plateau-patience", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Plateau schedule: epochs without a lower validation loss before the rate decays."),
        click.option("--decay-after", type=click.IntRange(min=0), default=4, show_default=True,
                     help="Epochs at the full rate before the step schedule decays."),
        click.option("--clip", type=click.FloatRange(min=0), default=5.0, show_default=True,
                     help="Clip the gradient's global norm to this (0: no clipping)."),
        click.option("--clip-value", type=PositiveFloat, help="Also clamp each gradient element to ±X."),
        click.option("--patience", type=Positive, help="Early stopping: epochs without a better validation score."),
        click.option("--save-every", type=Positive, help="Also checkpoint every N steps (always: each epoch and at a stop)."),
        click.option("--seed", type=int, default=1234, show_default=True, help="Seed of initialisation, dropout and data order."),
        click.option("--out", metavar="DIR", help="Run directory. Default: runs/TASK-DATE-TIME."),
        click.option("--overwrite", is_flag=True, help="Replace the run already in --out."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="Where to train."),
        click.option("--json", "as_json", is_flag=True, help="Print the final metrics as one JSON object on stdout."),
        click.option("--quiet", is_flag=True, help="No progress bar and no per-epoch lines on stderr."),
    )


def train_config_from(options: dict, explicit: set[str], default_epochs: int = TrainConfig.epochs) -> TrainConfig:
    """The TrainConfig the flags describe: a time budget alone sets the run's length; --clip 0 turns clipping off."""
    values = {f.name: options[f.name] for f in fields(TrainConfig) if f.name in options}
    if values.get("epochs") is None:
        values["epochs"] = None if "time_budget" in explicit else default_epochs
    if values.get("clip") == 0:
        values["clip"] = None
    return TrainConfig(**values)


def new_run_path(options: dict, task: str) -> Path:
    """--out (checked: an existing run needs --overwrite), or runs/TASK-DATE-TIME."""
    path = Path(options["out"] or time.strftime(f"runs/{task}-%Y%m%d-%H%M%S"))
    RunDirectory.check_new(path, options["overwrite"])
    return path


def absolute(path: str | None) -> str | None:
    """Paths are saved absolute, so that a run directory works from any working directory."""
    return None if path is None else str(Path(path).resolve())


def require_task(checkpoint_meta: dict, task: str, run_dir: str | Path, command: str) -> None:
    """Refuse a run directory of another task with the command that made it."""
    found = checkpoint_meta.get("task")
    if found != task:
        raise InputError(
            f"{run_dir} holds a {found!r} run, not a {task!r} one; give the --out directory of `rnnkit {command}`"
        )


def run_training(train: Callable[..., dict], options: dict, run_path: Path, new_run: bool = True) -> dict | None:
    """Run ``train`` inside the (possibly distributed) process group of ``--device``.

    Rank 0 creates the run directory of a new run (only now, after the data was read); ``train`` is called
    with ``run_dir``, ``dist``, ``progress_bar`` and ``log`` as the flags --quiet and --json ask. Returns the
    report on rank 0 and None on the other ranks, which print nothing.
    """
    dist = distributed.setup(options["device"])
    try:
        run_dir = RunDirectory(run_path)
        if dist.is_main and new_run:
            run_dir = RunDirectory.create(run_path, options["overwrite"])
        quiet = options["quiet"]
        report = train(run_dir=run_dir, dist=dist,
                       progress_bar=not quiet and not options["as_json"] and sys.stderr.isatty(),
                       log=None if quiet else log_line)
    finally:
        distributed.teardown(dist)
    return report if dist.is_main else None


def log_line(line: str) -> None:
    """One progress line on stderr; tqdm.write keeps an active progress bar intact below it."""
    tqdm.write(line, file=sys.stderr)


# ------------------------------------------------------------------------------------------- --resume


def open_for_resume(options: dict, task: str, command: str) -> tuple[Path, Checkpoint]:
    """The run directory named by --resume and its latest checkpoint, after checking the flags around it."""
    if options["out"] and Path(options["out"]).resolve() != Path(options["resume"]).resolve():
        raise InputError("--out and --resume name different directories; a resumed run writes into its own, drop --out")
    if options["overwrite"]:
        raise InputError("--overwrite and --resume contradict each other; give only one")
    run_path = Path(options["resume"])
    checkpoint = RunDirectory.open(run_path).load()
    require_task(checkpoint.meta, task, run_path, command)
    return run_path, checkpoint


def resumed(saved: dict, given: dict, option_of: dict[str, str], explicit: set[str], changeable: set[str],
            kept: str = "settings") -> dict:
    """The saved settings (by field), except where the user explicitly changed one that a resumed run may
    change; InputError for any other change. ``option_of`` maps a field to its option's name where they
    differ; ``kept`` names what a resumed run keeps, for the message ("model shape")."""
    merged = dict(saved)
    for name, value in given.items():
        option = option_of.get(name, name)
        if option in SESSION_ONLY:
            merged[name] = value
        if option not in explicit:
            continue
        if option in changeable:
            merged[name] = value
        elif value != saved.get(name):
            flag = "--" + option.replace("_", "-")
            raise InputError(
                f"--resume: {flag} {value} differs from the run's {saved.get(name)}; a resumed run keeps its "
                f"{kept} (drop {flag}, or start a new run with another --out)"
            )
    return merged


def resumed_settings(saved: dict, data: dict, model: dict, train: TrainConfig, *, explicit: set[str],
                     changeable: set[str], model_fields: dict[str, str],
                     data_option_of: dict[str, str] | None = None) -> tuple[dict, dict, TrainConfig]:
    """The data settings, model options and TrainConfig of a run being resumed: the ``saved`` configs
    (``checkpoint.meta["configs"]``) with the explicit changes a resumed run allows (see :func:`resumed`).

    ``model_fields`` maps each model option to its model argument; ``data_option_of`` maps a data field to
    its option where the names differ.
    """
    data = resumed(saved["data"], data, data_option_of or {}, explicit, changeable, "data settings")
    saved_model = {field: saved["model"][field] for field in model_fields.values()}
    model = resumed(saved_model, model, {field: option for option, field in model_fields.items()}, explicit,
                    changeable, "model shape")
    train = TrainConfig(**resumed(saved["train"], asdict(train), {}, explicit, changeable, "training settings"))
    return data, model, train
