"""``rnnkit train TASK``, and ``rnnkit evaluate`` / ``predict`` / ``generate RUN``, written once for every task.

A task's command module (``rnnkit.cli.commands.NAME``) declares a :class:`TaskCommand`: the task's spec
(:class:`~rnnkit.tasks.spec.TaskSpec`), its training flags, how its report reads, and how the results of its
operations read as text. What its runs do (evaluate, predict, generate) and their options are declared in the task
module itself (:mod:`rnnkit.tasks.operations`). From that this module builds

    the train command      flags -> settings; --resume: the run's saved settings with the changes a resumed
                           run allows; the run in its process group (rnnkit.tasks.run); the report; exit 130
                           with the command that continues an interrupted run
    an operation's command RUN, the operation's options as flags, --checkpoint, --json: the operation applied to
                           the run through rnnkit.load's TrainedRun, its result printed (operation_command)
    RunCommand             ``rnnkit evaluate RUN``: RUN's task read first, then only its flags parsed, so that
                           --help lists those, and a flag of another task is one line naming the tasks that take it

Example (a task's command module)::

    COMMAND = TaskCommand(SPEC, help="Train a text classifier ...", options=(...), report=report,
                          text={"evaluate": scores_table, "predict": prediction_lines})
    train_command = train_command_of(COMMAND)
"""

import inspect
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import click

from rnnkit.cli.json_output import not_finite, to_json
from rnnkit.cli.interrupts import exit_status, last_signal
from rnnkit.cli.options import FiniteFloat, absolute, checkpoint_option, config_option, recipe_option
from rnnkit.cli.options import explicit_options, new_run_path, train_config_from
from rnnkit.data.catalog import resolve, role_of
from rnnkit.errors import InputError
from rnnkit.tasks.operations import FLAGS, Choice, Flag, Float, Inputs, Int, Option
from rnnkit.tasks.run import run_in_process_group
from rnnkit.tasks.spec import CHANGEABLE_ON_RESUME, RunSettings, TaskSpec, tasks_with
from rnnkit.tasks.trained import TrainedRun, best_by, best_by_every_task, checkpoint_choice
from rnnkit.train import Checkpoint, RunDirectory, TrainConfig, distributed
from rnnkit.train.progress import log_line, progress_shown, warn_line

# A step limit belongs to one invocation (a hook for trials and tests): a resumed run does not inherit it.
SESSION_ONLY = {"max_steps"}


@dataclass(frozen=True)
class TaskCommand:
    """One task on the command line.

    Args:
        spec: the task's spec; its evaluate / predict / generate are ``rnnkit evaluate / predict / generate RUN``.
        help: the train command's help text (first line: the summary in ``rnnkit train --help``).
        options: the task's click options for ``rnnkit train NAME``, in --help order (the network and
            training groups included, with the task's defaults); --config and --resume are added.
        report: ``report(report, run_path, settings) -> str``: the lines a finished run prints.
        text: by operation name, ``text(result, options, run) -> str | None``: what its result prints without
            --json, from the options given and the :class:`~rnnkit.tasks.trained.TrainedRun` (None: nothing more;
            an operation without one prints its JSON).
        check: ``check(options)``: refuses a combination of flags the spec cannot say (one InputError).
    """

    spec: TaskSpec
    help: str
    options: tuple[Callable, ...]
    report: Callable[[dict, Path, RunSettings], str]
    text: Mapping[str, Callable[[Any, dict, TrainedRun], str | None]] = field(default_factory=dict)
    check: Callable[[dict], None] | None = None


# ------------------------------------------------------------------------------------------- train


def train_command_of(command: TaskCommand) -> click.Command:
    """The click command ``rnnkit train NAME`` of a task."""

    @click.pass_context
    def callback(ctx: click.Context, **options) -> None:
        train(command, ctx, options)

    for decorator in reversed((config_option, recipe_option, *command.options, click.option(
            "--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off."))):
        callback = decorator(callback)
    return click.command(command.spec.name, cls=TrainCommand, help=command.help)(callback)


class TrainCommand(click.Command):
    """``rnnkit train NAME``: under torchrun, rank 0 alone prints, from before the flags are parsed (so that a bad
    flag, too, is one line and not one per rank)."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        speak_on_rank_zero_only()
        return super().make_context(info_name, args, parent, **extra)


def train(command: TaskCommand, ctx: click.Context, options: dict) -> None:
    """The one sequence of every train command: settings, resume, the run, the report, the exit status."""
    spec = command.spec
    if command.check is not None:
        command.check(options)
    recipe = options.pop("recipe", None)
    if options["resume"] and recipe is not None:  # before the recipe's data is looked for
        raise InputError("--recipe and --resume: a resumed run keeps the settings it started with (its recipe "
                         "included); drop --recipe")
    explicit = explicit_options(ctx)
    given = given_settings(spec, options, explicit)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(spec, options)
        recipe = checkpoint.meta["configs"].get("recipe")
        given = resumed_settings(spec, checkpoint.meta["configs"], given, explicit)
        if not options["quiet"]:
            announce_recorded_files(spec, given[0], explicit, run_path)
    else:
        missing = [how for option, how in spec.required.items() if options[option] in (None, "")]
        if missing:
            raise InputError(f"give {', '.join(missing)}; or continue a run with --resume DIR")
        run_path = new_run_path(options, spec.name)
    data, model, sections, train_config = given
    settings = RunSettings(spec.data_config(**data), model, train_config, sections, recipe=recipe)
    quiet = options["quiet"]
    report = run_in_process_group(
        spec, settings, run_path, device=options["device"], checkpoint=checkpoint, overwrite=options["overwrite"],
        progress_bar=not quiet and not options["as_json"] and sys.stderr.isatty(),
        log=None if quiet else log_line, warn=warn_line)
    if report is None:  # not rank 0
        return
    if recipe is not None:
        report = {"recipe": recipe, **report}
    click.echo(to_json(report) if options["as_json"] else command.report(report, run_path, settings))
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit {spec.train_command} --resume {run_path}", err=True)
        sys.exit(exit_status(last_signal()))  # 130 after SIGINT, 143 after SIGTERM
    refuse_not_finite(report, "the run's report", "the run diverged or its data overflows: lower --lr, clip "
                                                  "gradients (--clip 1) or rescale the data")


def speak_on_rank_zero_only() -> None:
    """Under torchrun every rank runs the same command: rank 0 alone prints (each line once, its errors and
    warnings included); the other ranks' stdout and stderr go to the null device from here on (a rank that
    fails still ends torchrun with its exit status, and rank 0 reports the group's failure)."""
    if distributed.launched_rank() != 0:
        sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (the process's own)


def given_settings(spec: TaskSpec, options: dict, explicit: set[str]) -> tuple[dict, dict, dict, TrainConfig]:
    """(data values, model options, further sections, TrainConfig) that the flags describe; paths absolute,
    so that a run directory works from any working directory, and a dataset's name (``--data ptb``) its
    downloaded file for the field's role (:func:`rnnkit.data.catalog.resolve`)."""
    data = {f.name: options[spec.option_of(f.name)] for f in fields(spec.data_config)}
    for name in spec.path_fields:
        data[name] = absolute(resolve(data[name], role_of(name)))
    model = {field: options[option] for option, field in spec.model_options.items()}
    sections = {name: {field: options[option] for option, field in mapping.items()}
                for name, mapping in spec.sections.items()}
    return data, model, sections, train_config_from(options, explicit, spec.default_epochs)


def open_for_resume(spec: TaskSpec, options: dict) -> tuple[Path, Checkpoint]:
    """The run directory named by --resume and its latest checkpoint, after checking the flags around it."""
    if options["out"] and Path(options["out"]).resolve() != Path(options["resume"]).resolve():
        raise InputError("--out and --resume name different directories; a resumed run writes into its own, drop --out")
    if options["overwrite"]:
        raise InputError("--overwrite and --resume contradict each other; give only one")
    run_path = Path(options["resume"])
    # for_training: a run another training holds, with a link where the run writes, or with damaged pointers
    # is refused now, before any data is read.
    checkpoint = RunDirectory.open(run_path, for_training=True).load()
    spec.check_run(checkpoint.meta, run_path)
    return run_path, checkpoint


def announce_recorded_files(spec: TaskSpec, data: dict, explicit: set[str], run_path: Path) -> None:
    """One line on stderr per file a resumed run reads because the run recorded it (not because the user
    named it now), before it is read: a resumed run reads no file unsaid (unless --quiet)."""
    for name in spec.path_fields:
        option = spec.option_of(name)
        if data.get(name) and option not in explicit:
            click.echo(f"resuming {run_path}: reading {data[name]} (--{option.replace('_', '-')}, recorded in the run)",
                       err=True)


def resumed_settings(spec: TaskSpec, saved: dict, given: tuple, explicit: set[str]) -> tuple[dict, dict, dict, TrainConfig]:
    """The run's ``saved`` configs (``checkpoint.meta["configs"]``), with the explicit changes a resumed run
    allows; InputError for any other change. Model settings the task takes from its data are left out."""
    data, model, sections, train_config = given
    changeable = CHANGEABLE_ON_RESUME | spec.changeable
    data = resumed(saved["data"], data, {f.name: spec.option_of(f.name) for f in fields(spec.data_config)},
                   explicit, changeable, "data settings")
    saved_model = {name: value for name, value in saved["model"].items() if name not in spec.derived_model_fields}
    model = resumed(saved_model, model, _inverse(spec.model_options), explicit, changeable, "model shape")
    sections = {name: resumed(saved[name], values, _inverse(spec.sections[name]), explicit, changeable,
                              f"{name} settings") for name, values in sections.items()}
    train_values = resumed(saved["train"], asdict(train_config), {}, explicit, changeable, "training settings")
    return data, model, sections, TrainConfig(**train_values)


def resumed(saved: dict, given: dict, option_of: dict[str, str], explicit: set[str], changeable: set[str],
            kept: str) -> dict:
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


def _inverse(option_to_field) -> dict[str, str]:
    return {field: option for option, field in option_to_field.items()}


# ------------------------------------------------------------------------------------------- evaluate, predict, generate

LOADED = "rnnkit.checkpoint"  # ctx.meta: (which, the checkpoint) RunCommand loaded to read the run's task
BEST = best_by_every_task()  # what --checkpoint best is, before the run (and so its task) is known


def operation_option(option: Option, default) -> Callable:
    """The click option of an operation's option: its flag, and a click type with the kind's bounds."""
    kind = option.kind
    if isinstance(kind, Flag):
        return click.option(option.flag, option.name, is_flag=True, default=bool(default), help=option.help)
    if isinstance(kind, Int):
        kind_type = click.IntRange(kind.low, kind.high)
    elif isinstance(kind, Float):
        kind_type = FiniteFloat(kind.low, kind.high, min_open=kind.low_open, max_open=kind.high_open)
    elif isinstance(kind, Choice):
        kind_type = click.Choice(kind.values)
    else:
        kind_type = click.STRING
    return click.option(option.flag, option.name, type=kind_type, default=default,
                        show_default=default not in (None, ""), help=option.help,
                        metavar=None if isinstance(kind, Choice) else kind.metavar)


def operation_command(command: TaskCommand, name: str, *, title: str | None = None,
                      help: str | None = None) -> click.Command:
    """The click command of one task's operation ``name``: RUN, the operation's options as flags, --checkpoint and
    --json (``rnnkit evaluate RUN`` once RUN's task is known; ``rnnkit translate RUN``, with its own ``title``)."""
    operation = command.spec.operation(name)

    @click.pass_context
    def callback(ctx: click.Context, run_dir: str, which: str, as_json: bool, **options) -> None:
        apply(ctx, command, name, run_dir, which, as_json, options)

    as_json = "one JSON object per input line" if name == "predict" else "the result as one JSON object"
    decorators = (click.argument("run_dir", metavar="RUN"),
                  *(operation_option(option, operation.defaults[option.name]) for option in operation.options),
                  checkpoint_option(best=best_by(command.spec.name)),
                  click.option("--json", "as_json", is_flag=True, help=f"Print {as_json}."))
    for decorator in reversed(decorators):
        callback = decorator(callback)
    text = help or (f"{inspect.cleandoc(operation.help)}\n\nRUN holds a {command.spec.noun}: these are the flags of "
                    f"task {command.spec.name!r}.")
    return click.command(title or name, help=text)(callback)


def apply(ctx: click.Context, command: TaskCommand, name: str, run_dir: str, which: str, as_json: bool,
          options: dict) -> None:
    """Apply the operation ``name`` to the run (the library's :class:`~rnnkit.tasks.trained.TrainedRun`) and
    print its result: as JSON with --json, else as the task's ``text`` says; then one line and a non-zero exit if
    a number in it is not finite (a score of inf is no success)."""
    loaded = ctx.meta.get(LOADED)
    checkpoint = loaded[1] if loaded is not None and loaded[0] == which else RunDirectory.open(run_dir).load(which)
    command.spec.check_run(checkpoint.meta, run_dir)
    run = TrainedRun(run_dir, checkpoint)
    for option in command.spec.operation(name).options:
        if isinstance(option.kind, Inputs) and option.kind.stdin and options[option.name] is None:
            if sys.stdin.isatty():
                click.echo(f"reading {option.kind.what}, from stdin (end with Ctrl-D)", err=True)
            options[option.name] = sys.stdin
    with progress_shown(not as_json):  # a bar with the rate and time left, on a terminal only
        result = run.apply(name, options, FLAGS, {"warn": warn_line, "stream": None if as_json else _write_now})
    if as_json:
        for item in result if isinstance(result, list) else [result]:
            click.echo(to_json(item))
    elif name in command.text:
        text = command.text[name](result, options, run)
        if text is not None:
            click.echo(text)
    else:
        click.echo(to_json(result))
    refuse_not_finite(result, "the result", "the model or the data overflows: check the data's scale, or "
                                            "use another checkpoint (--checkpoint)")
    if name == "evaluate":  # which checkpoint the scores are of, and why that one (stderr: --json stays JSON)
        click.echo(checkpoint_choice(checkpoint, run_dir, which, command.spec.name), err=True)


def _write_now(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class RunCommand(click.Command):
    """``rnnkit evaluate RUN [OPTIONS]`` (``predict``, ``generate``) for the runs of every task.

    RUN's task is read before the flags are parsed; then the command of that task's operation
    (:func:`operation_command`) parses them, so ``--help`` lists that task's flags only, and a flag of another
    task is one line naming the tasks that take it. Without RUN, ``--help`` lists the flags of every task.

    Args:
        name: the operation: evaluate, predict or generate.
        summary: one line for ``rnnkit --help``.
        lookup: ``lookup(task, run_dir)`` -> the task's :class:`TaskCommand` (one line for an unknown task).
        names: ``names()`` -> every task's name.
    """

    def __init__(self, name: str, summary: str, lookup: Callable[[str | None, str], TaskCommand],
                 names: Callable[[], tuple[str, ...]]):
        self._lookup, self._names, self._commands = lookup, names, {}
        super().__init__(name, short_help=summary, help=summary,
                         params=[click.Argument(["run_dir"], metavar="RUN")])
        for decorator in (checkpoint_option(best=BEST), click.option("--json", "as_json", is_flag=True,
                                                                     help="Print the result as JSON.")):
            decorator(self)

    @property
    def help(self) -> str:
        """The summary, then every task's flags (each task's modules are imported when this is read)."""
        tasks = [(name, self._lookup(name, "").spec.operation(self.name)) for name in self._names()]
        flags = [f"{name}: " + (", ".join(_shown(option) for option in operation.options) or "none")
                 for name, operation in tasks if operation is not None]
        without = [name for name, operation in tasks if operation is None]
        return "\n\n".join([self._summary, f"The flags are those of RUN's task: `rnnkit {self.name} RUN --help` lists "
                             "them. By task:", *flags,
                             *([f"({', '.join(without)}: no {self.name}.)"] if without else [])])

    @help.setter
    def help(self, value: str) -> None:
        self._summary = value

    def for_task(self, task: str) -> click.Command:
        """The command that parses the flags of ``task``'s runs."""
        if task not in self._commands:
            self._commands[task] = operation_command(self._lookup(task, ""), self.name)
        return self._commands[task]

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        run_dir, which = self._locate(args)
        if run_dir is None:
            if args and not {"-h", "--help"} & set(args):
                raise click.UsageError(f"Missing argument 'RUN': give the run directory first, `rnnkit {self.name} RUN "
                                       "[OPTIONS]`")
            return super().make_context(info_name, args, parent, **extra)  # the flags of every task, or no RUN
        checkpoint = RunDirectory.open(run_dir).load(which)
        task = checkpoint.meta.get("task")
        command = self._lookup(task, run_dir)
        if command.spec.operation(self.name) is None:
            raise InputError(not_an_operation_of(command.spec, self.name, run_dir))
        try:
            ctx = self.for_task(task).make_context(info_name, args, parent, **extra)
        except click.NoSuchOption as error:
            takers = tasks_with(self.name, error.option_name.lstrip("-").replace("-", "_"))
            if not takers:
                raise
            raise InputError(f"{error.option_name} is not an option of task {task!r}; the tasks that take it: "
                             f"{', '.join(takers)}") from None
        ctx.meta[LOADED] = (which, checkpoint)
        return ctx

    def _locate(self, args: list[str]) -> tuple[str | None, str]:
        """(RUN, the checkpoint asked for) among ``args``, before they are parsed: RUN is the first argument that
        is neither a flag nor a flag's value. Flags before RUN are told apart from values by the flags of every
        task (whose modules are imported then); RUN first, as the usage writes it, needs none of them."""
        run_dir, which, index = None, "auto", 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                run_dir = run_dir or next(iter(args[index + 1:]), None)
                break
            if arg.startswith("-") and arg != "-":
                flag, has_value, value = arg.partition("=")
                if flag == "--checkpoint":
                    if not has_value:
                        index += 1
                        value = args[index] if index < len(args) else ""
                    which = value if value in ("auto", "best", "latest") else "auto"  # else the parser says why
                elif run_dir is None and not has_value and flag in self._valued_flags():
                    index += 1
            elif run_dir is None:
                run_dir = arg
            index += 1
        return run_dir, which

    def _valued_flags(self) -> set[str]:
        """Every flag of this operation, in any task, that takes a value."""
        flags = set()
        for name in self._names():
            operation = self._lookup(name, "").spec.operation(self.name)
            flags |= {option.flag for option in (operation.options if operation else ()) if not isinstance(option.kind, Flag)}
        return flags


def not_an_operation_of(spec: TaskSpec, name: str, run_dir: str) -> str:
    """The line for ``rnnkit NAME RUN`` where RUN's task has no operation ``name``: what RUN's task does instead
    (its other operations), or, where it has none, which tasks do ``name``; never an empty hint."""
    instead = " or ".join(f"`rnnkit {other} {run_dir}`" for other in spec.operations)
    takers = tasks_with(name)
    if instead:
        hint = f"use {instead} (the tasks that {name}: {', '.join(takers) or 'none'})"
    elif takers:
        hint = f"the tasks that {name}: {', '.join(takers)}; train a run of one (`rnnkit train {takers[0]}`)"
    else:
        hint = f"no task's runs {name}; see `rnnkit {name} --help`"
    return f"{run_dir} holds a {spec.noun}; `rnnkit {name}` does nothing with it: {hint}"


def _shown(option: Option) -> str:
    return f"{option.flag} {option.kind.metavar}".rstrip()


def refuse_not_finite(result: dict, what: str, fix: str) -> None:
    """InputError naming the numbers of ``result`` that are inf or nan, if any: printed as null (--json) or
    ``inf``, they must not end in exit status 0 as if the command had succeeded."""
    found = not_finite(result)
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise InputError(f"{what} holds numbers that are not finite ({shown}); {fix}")


def stopped_line(report: dict, unit: str | None = "tokens") -> str:
    """The first line of every train report: why and when the run stopped, and its speed."""
    rate = f", {report['tokens_per_second']:,.0f} {unit}/s" if unit else ""
    return (f"stopped by {report['stop_reason']} after {report['steps']:,} steps "
            f"({report['elapsed_seconds']:.0f}s{rate})")


def best_line(report: dict, name: str, shown: str) -> str:
    """``; best accuracy 0.9100 at epoch 3 (--checkpoint best)`` when the run has a best epoch by ``name``."""
    key = f"best_valid_{name}"
    if key not in report:
        return ""
    return f"; best {shown} {report[key]:.4f} at epoch {report['best_epoch']} (--checkpoint best)"


def saved_line(report: dict, next_step: str) -> str | None:
    """The last line: where the run is, and the command that uses it (``{run}``: the run directory)."""
    if "run_dir" not in report:
        return None
    return f"run saved in {report['run_dir']}; {next_step.format(run=report['run_dir'])}"


def validation_line(report: dict, scores: dict[str, str]) -> str | None:
    """The validation loss (and perplexity) with the ``scores`` shown by name, each with its format
    (``{"bleu": "BLEU (greedy) {:.2f}"}``)."""
    if "valid_loss" not in report:
        return None
    parts = [f"validation: loss {report['valid_loss']:.4f} nats/token"]
    if "valid_perplexity" in report:
        parts.append(f"perplexity {report['valid_perplexity']:.2f}")
    parts += [shown.format(report[f"valid_{name}"]) for name, shown in scores.items() if f"valid_{name}" in report]
    return ", ".join(parts)


def lines(*parts: str | None) -> str:
    return "\n".join(part for part in parts if part)
