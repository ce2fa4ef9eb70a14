"""Flags that several commands share, written once, and the click types they use.

The ``rnnkit train`` commands are built from these groups by :mod:`rnnkit.cli.task_command`: :data:`config_option`
(``--config FILE.toml``), :func:`recurrent_options` (the network), :func:`regulariser_options` (dropout on the
recurrent connections, zoneout, weight drop, forget-gate bias), :func:`training_options` (the loop and the
run directory); :func:`train_config_from` turns the parsed values into a :class:`~rnnkit.train.TrainConfig`.
"""

import json
import math
import re
import time
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Callable

import click
from click.core import ParameterSource

from rnnkit.checks import FORGET_BIAS_LIMIT, MAX_SEED, MAX_WEIGHT_DECAY
from rnnkit.train import OPTIMIZERS, SCHEDULE_CLOCKS, SCHEDULES, RunDirectory, TrainConfig


class FiniteFloat(click.FloatRange):
    """A float flag that refuses nan and ±inf, optionally within a range (click.FloatRange's arguments).

    click's FloatRange alone lets nan through (every comparison with nan is False), and a nan or an infinite
    learning rate, clip or time budget only fails later, as a traceback or a run that never stops.
    """

    name = "float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give a plain number such as 0.5", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        """The range for --help; nothing for a flag open at both ends (click would print ``[x<=None]``)."""
        return "" if self.min is None and self.max is None else super()._describe_range()


Finite = FiniteFloat()
Positive = click.IntRange(min=1)
PositiveFloat = FiniteFloat(min=0, min_open=True)
NonNegativeFloat = FiniteFloat(min=0)
Probability = FiniteFloat(0, 1, max_open=True)
Fraction = FiniteFloat(0, 1, max_open=True)  # a share held out: 0 for none, never all
Seed = click.IntRange(0, MAX_SEED)
ForgetBias = FiniteFloat(-FORGET_BIAS_LIMIT, FORGET_BIAS_LIMIT)  # why this range: rnnkit.checks
# Deeper stacks only cost time to build (every layer is a module) and never train; this keeps a typo such as
# --layers 1000000 from spending minutes before the memory check can refuse it.
MAX_LAYERS = 1000
Layers = click.IntRange(1, MAX_LAYERS)


def cell_choices() -> tuple[str, ...]:
    """The names ``--cell`` takes: every registered cell (:func:`rnnkit.nn.cell_names`) and their aliases
    (``rnn``, the name older runs use for the tanh RNN)."""
    from rnnkit.nn import ALIASES, cell_names

    return (*cell_names(), *ALIASES)


class CellName(click.ParamType):
    """``--cell``: a registered cell's name, or a cell of the user's own package (:mod:`rnnkit.nn.cells.plugins`):
    ``module:Class``, or the name of a ``rnnkit.cells`` entry point.

    The cell is loaded (its module imported) while the flags are parsed, so a missing module or a wrong name is one
    line before any data is read. The value is what the run saves (:func:`rnnkit.nn.cells.registry.cell_reference`):
    the name or reference as given, but an entry point as its ``module:Class``, so that a run whose package has
    gone names the module that is missing.
    """

    name = "cell"

    def get_metavar(self, param, ctx=None) -> str:
        from rnnkit.nn.cells.registry import cell_choices as every_cell

        return f"[{'|'.join(every_cell())}|MODULE:CLASS]"

    def convert(self, value, param, ctx):
        from rnnkit.nn.cells.registry import cell_reference

        try:
            return cell_reference(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)

    def problem(self, setting) -> str | None:
        """What a --config value of --cell must be instead (as :func:`config_value_problem` says it), or None."""
        from rnnkit.nn.cells.plugins import SPELLING, is_reference
        from rnnkit.nn.cells.registry import cell_choices as every_cell, cell_reference

        names = f"give one of {', '.join(repr(name) for name in every_cell())} (a quoted string), or {SPELLING}"
        if not isinstance(setting, str):
            return names
        try:
            cell_reference(setting)
        except ValueError as error:
            return str(error) if is_reference(setting) else names
        return None


class CommaList(click.ParamType):
    """A comma-separated list of names from ``choices``, in the order given, repeats dropped."""

    name = "LIST"

    def __init__(self, choices: tuple[str, ...], what: str):
        self.choices = choices
        self.what = what

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        names = [name.strip() for name in str(value).split(",")]
        if not any(names):
            self.fail(f"give one or more {self.what}s separated by commas, from {', '.join(self.choices)}", param, ctx)
        for name in names:
            if name not in self.choices:
                self.fail(f"unknown {self.what} {name!r}; choose from {', '.join(self.choices)}", param, ctx)
        return list(dict.fromkeys(names))


class OutputPath(click.ParamType):
    """The path of something a command writes (a file, or a run or results directory): never empty, never
    holding a NUL. An empty ``--out ""`` (a shell variable that was never set) would otherwise fall back to the
    default unannounced, and a NUL fails in the system call with a traceback."""

    name = "path"

    def __init__(self, example: str = "out.txt"):
        self.example = example

    def convert(self, value, param, ctx):
        text = str(value)
        if not text.strip():
            self.fail(f"an empty path; give the name to write, e.g. {self.example}, or leave the flag out for its "
                      "default", param, ctx)
        if "\0" in text:
            self.fail(f"{text!r} holds a NUL character, which no file name can; give a plain name", param, ctx)
        return text


class LengthList(click.ParamType):
    """A comma-separated list of positive integers (sequence lengths), in the order given, repeats dropped; with
    ``increasing``, a list that must rise strictly (the cutoffs of an adaptive softmax)."""

    name = "T,T,..."

    def __init__(self, increasing: bool = False, what: str = "lengths such as 100,200"):
        self.increasing, self.what = increasing, what

    def convert(self, value, param, ctx):
        if isinstance(value, list):  # a TOML list of a --config file or recipe: checked as its text would be
            value = ",".join(str(item) for item in value)
        numbers = []
        for text in str(value).split(","):
            text = text.strip()
            if not text.isdigit() or int(text) < 1:
                self.fail(f"{text!r} is not a positive integer; give {self.what}", param, ctx)
            numbers.append(int(text))
        if self.increasing and any(b <= a for a, b in zip(numbers, numbers[1:])):
            self.fail(f"{value} does not rise strictly; give {self.what}", param, ctx)
        return list(dict.fromkeys(numbers))


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
    if not table:
        # An empty file is most often the wrong file: say so rather than train on the defaults unasked.
        raise click.BadParameter(f"{value} holds no settings; write flag names as keys (e.g. hidden = 256) "
                                 "or leave out --config", param=param)
    by_flag = {
        option.opts[0].lstrip("-"): option
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
        expected = config_value_problem(by_flag[key], setting)
        if expected:
            raise click.BadParameter(f"key {key!r} in {value} is {_toml(setting)}; {expected}", param=param)
    ctx.default_map = {**(ctx.default_map or {}), **{by_flag[key].name: setting for key, setting in table.items()}}


def _load_recipe(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Eager callback of --recipe: the recipe's settings become defaults beneath --config's and the flags given, so
    that any flag given (or a --config key) overrides the recipe. A recipe of another task is one line."""
    if value is None:
        return None
    from rnnkit.errors import InputError
    from rnnkit.tasks.recipe import recipe_for_task

    try:
        recipe = recipe_for_task(value, ctx.command.name)
    except InputError as error:
        raise click.BadParameter(str(error), param=param) from None
    by_flag = {option.opts[0].lstrip("-"): option for option in ctx.command.params
               if isinstance(option, click.Option) and option.opts[0].startswith("--")}
    for key, setting in recipe.settings.items():
        problem = ("not a flag of this command" if key not in by_flag or key in ("recipe", "config")
                   else config_value_problem(by_flag[key], setting))
        if problem:  # a shipped recipe that no longer fits its command: rnnkit's own mistake, said plainly
            raise click.BadParameter(f"recipe {value!r} sets {key} = {_toml(setting)}: {problem}; the recipe file "
                                     f"{recipe.path} needs updating", param=param)
    # --config (eager too) may come first or after: its keys win either way
    ctx.default_map = {**{by_flag[key].name: setting for key, setting in recipe.settings.items()},
                       **(ctx.default_map or {})}
    return value


recipe_option = click.option(
    "--recipe", metavar="NAME", is_eager=True, callback=_load_recipe,
    help="Start from a named recipe's settings (`rnnkit recipes` lists them); --config keys and flags given win.")


def config_value_problem(option: click.Option, setting) -> str | None:
    """What the TOML ``setting`` of ``option`` must be instead, or None when its type fits the flag's.

    click converts a default leniently (``int(3.5)`` is 3, ``int(True)`` is 1), so without this check
    ``hidden = 3.5`` would train 3 units and ``epochs = true`` one epoch.
    """
    if option.is_flag:
        return None if isinstance(setting, bool) else "give true or false"
    kind = option.type
    if isinstance(kind, CellName):
        return kind.problem(setting)
    if isinstance(kind, click.Choice):
        fits = isinstance(setting, str) and setting in kind.choices
        return None if fits else f"give one of {', '.join(repr(choice) for choice in kind.choices)} (a quoted string)"
    if isinstance(kind, click.types.IntParamType):
        fits = isinstance(setting, int) and not isinstance(setting, bool)
        return None if fits else "give a whole number without a decimal point, e.g. 10"
    if isinstance(kind, click.types.FloatParamType):
        fits = isinstance(setting, (int, float)) and not isinstance(setting, bool)
        return None if fits else "give a number, e.g. 0.5"
    if isinstance(kind, LengthList):
        fits = isinstance(setting, str) or (isinstance(setting, list) and all(
            isinstance(item, int) and not isinstance(item, bool) for item in setting))
        return None if fits else "give a list of whole numbers, e.g. [2000, 6000]"
    return None if isinstance(setting, str) else "give a quoted string"


def _toml(setting) -> str:
    """A TOML value as it is written in the file (``true``, ``3.5``, ``"lstm"``)."""
    if isinstance(setting, bool):
        return "true" if setting else "false"
    if isinstance(setting, str):
        return json.dumps(setting)
    return str(setting)


# The keys --config's help shows as its example, the first the command has (each train command has --hidden).
_EXAMPLE_KEYS = ("seq-len", "hidden", "epochs")


class ConfigOption(click.Option):
    """``--config``, whose --help example is a key of the command it is in (``seq-len = 128`` where there is a
    --seq-len, else ``hidden = 256``, ...), with that flag's own default as the value: an example key the command
    does not take would be refused as unknown."""

    def get_help_record(self, ctx: click.Context):
        name, text = super().get_help_record(ctx)
        return name, text.replace("{example}", config_example(ctx.command))


def config_example(command: click.Command) -> str:
    """``key = value`` for one flag of ``command`` that takes a value, from :data:`_EXAMPLE_KEYS` where it can."""
    valued = {option.opts[0].lstrip("-"): option.default for option in command.params
              if isinstance(option, click.Option) and option.opts[0].startswith("--") and not option.is_flag
              and option.name != "config" and isinstance(option.default, (int, float, str))
              and not isinstance(option.default, bool)}  # a flag with a plain default: its value is an example
    key = next((key for key in _EXAMPLE_KEYS if key in valued), next(iter(valued), None))
    return "flag-name = value" if key is None else f"{key} = {_toml(valued[key])}"


config_option = click.option(
    "--config", cls=ConfigOption, type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
    callback=_load_config_file,
    help="TOML file of settings; keys are flag names without '--' ({example}). Flags given here win.",
)


def explicit_options(ctx: click.Context) -> set[str]:
    """Options the user set (command line, config file or environment), as opposed to defaults."""
    return {
        name for name in ctx.params
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }


# ------------------------------------------------------------------------------------------- the network


def cell_option(default: str = "lstm") -> Callable:
    return click.option("--cell", type=CellName(), default=default, show_default=True,
                        help="Recurrent cell: a registered name, or a cell class of your own package as "
                             "module:Class (importable: installed or on PYTHONPATH).")


def auto_engine_words() -> str:
    """What ``engine="auto"`` runs, in words, read from the numbered rules of :mod:`rnnkit.nn.engines.registry`'s
    docstring (the one place where auto is decided), so that the words follow the rules when they change."""
    from rnnkit.nn.engines import registry

    order = re.findall(r"^\d+\.\s+(?:else\s+)?``(\w+)``", registry.__doc__ or "", re.MULTILINE)
    if not order:
        return "the fastest engine that runs the cell and its options"
    return f"the first of {', '.join(order)} that runs the cell, its options and the input"


def engine_option(note: str = "") -> Callable:
    """``--engine``: auto or any registered engine (:func:`rnnkit.nn.engine_names`), each described in --help by
    its own ``summary``; ``note`` (a sentence) says what the command does with it where that is not plain."""
    from rnnkit.nn import engine_names, get_engine

    names = engine_names()
    engines = "; ".join(f"{name}: {get_engine(name).summary}" for name in names)
    return click.option("--engine", type=click.Choice(("auto", *names)), default="auto", show_default=True,
                        help=f"How the recurrent layers run. auto: {auto_engine_words()}; {engines}. "
                             f"`rnnkit doctor` says which this machine runs.{' ' + note if note else ''}")


def block_option() -> Callable:
    """``--block plain|residual``: how the recurrent layers stack (:mod:`rnnkit.models.blocks`)."""
    return click.option("--block", type=click.Choice(("plain", "residual")), default="plain", show_default=True,
                        help="How the --layers stack: plain (each layer reads the one below) or residual (pre-norm "
                             "blocks: LayerNorm, layer, residual add, LayerNorm, gated MLP, residual add; as the "
                             "minGRU paper and Griffin stack their recurrences).")


def regulariser_options(embedding: bool = False) -> Callable:
    """--recurrent-dropout --zoneout --weight-drop --forget-bias (every recurrent model), and
    --embedding-dropout and --locked-dropout where the model has an embedding (lm, classify, tag)."""
    return _stack(
        click.option("--recurrent-dropout", type=Probability, default=0.0, show_default=True,
                     help="Dropout on the hidden state fed back at each step (one mask per sequence)."),
        click.option("--zoneout", type=Probability, default=0.0, show_default=True,
                     help="Probability that each hidden unit keeps its previous value at a step (training only)."),
        click.option("--weight-drop", type=Probability, default=0.0, show_default=True,
                     help="DropConnect on the hidden-to-hidden weights, one mask per forward pass."),
        click.option("--forget-bias", type=ForgetBias, metavar="B",
                     help="Add B to the forget gate's bias at initialisation (LSTM family; Jozefowicz 2015: 1). "
                          "Default: nothing added."),
        *([click.option("--embedding-dropout", type=Probability, default=0.0, show_default=True,
                        help="Drop whole words: rows of the embedding matrix, per batch."),
           click.option("--locked-dropout/--no-locked-dropout", default=False, show_default=True,
                        help="Keep each sequence's --dropout masks the same at every step (AWD-LSTM's variational "
                             "dropout): on the embeddings, between layers and on the outputs.")]
          if embedding else []),
    )


def recurrent_options(*, hidden: int = 256, layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                      cell: str = "lstm") -> Callable:
    """--cell --layers --hidden --bidirectional --dropout --engine --block, with the task's defaults."""
    return _stack(
        cell_option(cell),
        click.option("--layers", type=Layers, default=layers, show_default=True, help="Stacked recurrent layers."),
        click.option("--hidden", type=Positive, default=hidden, show_default=True,
                     help="Hidden units per layer (per direction)."),
        click.option("--bidirectional/--unidirectional", default=bidirectional, show_default=True,
                     help="Read each sequence in both directions."),
        click.option("--dropout", type=Probability, default=dropout, show_default=True,
                     help="Dropout probability on embeddings and between layers, in [0, 1)."),
        engine_option(),
        block_option(),
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
        click.option("--nonmono", type=Positive, default=5, show_default=True,
                     help="NT-ASGD: start averaging once the validation loss is worse than the best before the "
                          "last N epochs (AWD-LSTM: 5)."),
        click.option("--weight-decay", type=FiniteFloat(0, MAX_WEIGHT_DECAY),
                     help="Weight decay. Default: the optimizer's (AdamW 0.01, others 0)."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default="constant", show_default=True,
                     help="Learning-rate schedule: step = ×--lr-decay each epoch after --decay-after; cosine; plateau."),
        click.option("--schedule-clock", type=click.Choice(SCHEDULE_CLOCKS), default="auto", show_default=True,
                     help="What step and cosine move with: time = the --time-budget's progress (anneals inside it "
                          "whatever the speed), steps = optimizer steps and epochs; auto = time with a budget."),
        click.option("--lr-decay", type=FiniteFloat(0, 1, min_open=True), default=0.5, show_default=True,
                     help="Factor of the step and plateau schedules."),
        click.option("--plateau-patience", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Plateau schedule: epochs without a lower validation loss before the rate decays."),
        click.option("--decay-after", type=click.IntRange(min=0), default=4, show_default=True,
                     help="Epochs at the full rate before the step schedule decays."),
        click.option("--clip", type=NonNegativeFloat, default=5.0, show_default=True,
                     help="Clip the gradient's global norm to this (0: no clipping)."),
        click.option("--clip-value", type=PositiveFloat, help="Also clamp each gradient element to ±X."),
        click.option("--patience", type=Positive, help="Early stopping: epochs without a better validation score."),
        click.option("--save-every", type=Positive, help="Also checkpoint every N steps (always: each epoch and at a stop)."),
        click.option("--seed", type=Seed, default=1234, show_default=True, help="Seed of initialisation, dropout and data order."),
        click.option("--out", type=OutputPath("runs/my-run"), metavar="DIR",
                     help="Run directory. Default: runs/TASK-DATE-TIME."),
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
