"""``rnnkit train TASK``, ``rnnkit evaluate`` and ``rnnkit predict``, written once for every task.

A task's command module (``rnnkit.cli.commands.NAME``) declares a :class:`TaskCommand`: the task's spec
(:class:`~rnnkit.tasks.spec.TaskSpec`), its own flags, how its report reads, and what ``evaluate`` and
``predict`` do on its runs (:class:`Applies`: a function and the flags it takes). From that this module builds

    the train command      flags -> settings; --resume: the run's saved settings with the changes a resumed
                           run allows; the run in its process group (rnnkit.tasks.run); the report; exit 130
                           with the command that continues an interrupted run
    evaluate / predict     the run's checkpoint, its task's command, the flags checked against those the task
                           takes (one line naming them otherwise), then the task's function

Example (a task's command module)::

    COMMAND = TaskCommand(SPEC, help="Train a text classifier ...", options=(...), report=report,
                          evaluate=Applies(evaluate, ("data",)), predict=Applies(predict, ("input_path",)))
    train_command = train_command_of(COMMAND)
"""

import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import click

from rnnkit.cli.json_output import not_finite, to_json
from rnnkit.cli.options import EXIT_INTERRUPTED, absolute, config_option, explicit_options, new_run_path
from rnnkit.cli.options import train_config_from
from rnnkit.data.reading import decode_text
from rnnkit.errors import InputError
from rnnkit.tasks.run import run_in_process_group
from rnnkit.tasks.spec import CHANGEABLE_ON_RESUME, RunSettings, TaskSpec
from rnnkit.train import Checkpoint, RunDirectory, TrainConfig
from rnnkit.train.progress import log_line, warn_line

# A step limit belongs to one invocation (a hook for trials and tests): a resumed run does not inherit it.
SESSION_ONLY = {"max_steps"}
# Flags every evaluate / predict takes, whatever the run's task.
ALWAYS_TAKEN = {"which", "as_json"}


@dataclass(frozen=True)
class Applies:
    """What ``rnnkit evaluate`` or ``rnnkit predict`` does on a run of one task: ``run(run_dir, checkpoint,
    options)``, and the parameters (beyond ``--checkpoint`` and ``--json``) it takes, by name."""

    run: Callable[[str, Checkpoint, dict], None]
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskCommand:
    """One task on the command line.

    Args:
        spec: the task's spec.
        help: the train command's help text (first line: the summary in ``rnnkit train --help``).
        options: the task's click options for ``rnnkit train NAME``, in --help order (the network and
            training groups included, with the task's defaults); --config and --resume are added.
        report: ``report(report, run_path, settings) -> str``: the lines a finished run prints.
        evaluate, predict, generate: what ``rnnkit evaluate`` / ``predict`` / ``generate`` do on its runs
            (None: nothing).
        instead: for a command the task has no use for, what to do instead (``{run}`` is the run directory).
        check: ``check(options)``: refuses a combination of flags the spec cannot say (one InputError).
    """

    spec: TaskSpec
    help: str
    options: tuple[Callable, ...]
    report: Callable[[dict, Path, RunSettings], str]
    evaluate: Applies | None = None
    predict: Applies | None = None
    generate: Applies | None = None
    instead: str = ""
    check: Callable[[dict], None] | None = None


# ------------------------------------------------------------------------------------------- train


def train_command_of(command: TaskCommand) -> click.Command:
    """The click command ``rnnkit train NAME`` of a task."""

    @click.pass_context
    def callback(ctx: click.Context, **options) -> None:
        train(command, ctx, options)

    for decorator in reversed((config_option, *command.options, click.option(
            "--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off."))):
        callback = decorator(callback)
    return click.command(command.spec.name, help=command.help)(callback)


def train(command: TaskCommand, ctx: click.Context, options: dict) -> None:
    """The one sequence of every train command: settings, resume, the run, the report, the exit status."""
    spec = command.spec
    if command.check is not None:
        command.check(options)
    explicit = explicit_options(ctx)
    given = given_settings(spec, options, explicit)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(spec, options)
        given = resumed_settings(spec, checkpoint.meta["configs"], given, explicit)
        if not options["quiet"]:
            announce_recorded_files(spec, given[0], explicit, run_path)
    else:
        missing = [how for option, how in spec.required.items() if options[option] in (None, "")]
        if missing:
            raise InputError(f"give {', '.join(missing)}; or continue a run with --resume DIR")
        run_path = new_run_path(options, spec.name)
    data, model, sections, train_config = given
    settings = RunSettings(spec.data_config(**data), model, train_config, sections)
    quiet = options["quiet"]
    report = run_in_process_group(
        spec, settings, run_path, device=options["device"], checkpoint=checkpoint, overwrite=options["overwrite"],
        progress_bar=not quiet and not options["as_json"] and sys.stderr.isatty(),
        log=None if quiet else log_line, warn=warn_line)
    if report is None:  # not rank 0
        return
    click.echo(to_json(report) if options["as_json"] else command.report(report, run_path, settings))
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit {spec.train_command} --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    refuse_not_finite(report, "the run's report", "the run diverged or its data overflows: lower --lr, clip "
                                                  "gradients (--clip 1) or rescale the data")


def given_settings(spec: TaskSpec, options: dict, explicit: set[str]) -> tuple[dict, dict, dict, TrainConfig]:
    """(data values, model options, further sections, TrainConfig) that the flags describe; paths absolute,
    so that a run directory works from any working directory."""
    data = {f.name: options[spec.option_of(f.name)] for f in fields(spec.data_config)}
    for name in spec.path_fields:
        data[name] = absolute(data[name])
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


# ------------------------------------------------------------------------------------------- evaluate, predict


def apply(ctx: click.Context, command: TaskCommand, applies: Applies | None, run_dir: str, checkpoint: Checkpoint,
          options: dict) -> None:
    """Run ``applies`` (the task's evaluate or predict) on the run, after checking that every flag the user
    gave is one it takes."""
    noun, name = command.spec.noun, ctx.info_name
    if applies is None:
        raise InputError(f"{run_dir} holds a {noun}; `rnnkit {name}` does nothing with it: "
                         + command.instead.format(run=run_dir))
    flags = {param.name: param.opts[0] for param in ctx.command.params if isinstance(param, click.Option)}
    taken = ALWAYS_TAKEN | set(applies.options)
    refused = sorted(explicit_options(ctx) & (set(flags) - taken), key=list(flags).index)
    if refused:
        takes = ", ".join(flags[option] for option in flags if option in taken)
        not_taken = "/".join(flags[option] for option in flags if option not in taken)
        raise InputError(f"{run_dir} holds a {noun}; `rnnkit {name}` reads it with {takes} instead of "
                         f"{' '.join(flags[option] for option in refused)} (drop {not_taken})")
    applies.run(run_dir, checkpoint, options)


def read_stdin(encoding: str = "utf-8") -> str:
    """Standard input as text, decoded as rnnkit decodes a file (newlines normalised; one line for bytes the
    encoding cannot decode, instead of Python's UnicodeDecodeError)."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a text stream without bytes underneath (a test's StringIO)
        return sys.stdin.read().replace("\r\n", "\n")
    return decode_text(raw.read(), "stdin", encoding,
                       fix=f"pipe {encoding} text (iconv -t {encoding} converts it), or give --input FILE")


def show(result: dict, options: dict, text: Callable[[dict], str]) -> None:
    """What evaluate / predict found: ``result`` as one JSON object with --json, else the lines ``text(result)``;
    then one line and a non-zero exit if a number in it is not finite (a score of inf is no success)."""
    click.echo(to_json(result) if options.get("as_json") else text(result))
    refuse_not_finite(result, "the result", "the model or the data overflows: check the data's scale, or "
                                            "use another checkpoint (--checkpoint)")


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
