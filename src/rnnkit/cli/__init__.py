"""The ``rnnkit`` command.

    rnnkit train TASK [...] [--out DIR] [--resume DIR]     TASK: lm, classify, tag, forecast, translate, caption
    rnnkit evaluate RUN [...] [--json]          the flags of RUN's task: `rnnkit evaluate RUN --help` lists them
    rnnkit predict RUN [...] [--json]
    rnnkit generate RUN [...] [--json]
    rnnkit translate | explain | diagnose | bench ...
    rnnkit doctor [--json]                                  (versions, CPU, the engines that run here)
    torchrun --nproc-per-node=2 -m rnnkit train lm ...        (data-parallel training)

Each command lives in its own module of :mod:`rnnkit.cli.commands`, imported only when it runs. Every flag of
``train`` can also come from a TOML file given with ``--config``: its keys are the flag names without
``--`` (``seq-len = 128``); flags on the command line win over the file. A user mistake prints one line
``error: ...`` on stderr and exits with status 2, without a traceback.

This package is the whole command line, and the only part of rnnkit that knows click: it parses flags, calls
the tasks and the library below it, and prints. Its modules, each importing only those below it:

    __init__        the entry point (``main``) and the command groups
    commands/       one module per command; a task's module declares its TaskCommand
    task_command    ``train TASK``, ``evaluate`` / ``predict`` / ``generate RUN`` written once from a task's
                    TaskCommand and the operations its task module declares
    options         flags that several commands share, and their click types
    outputs         where a command may write a file it was asked for
    json_output     ``--json``: JSON without Infinity or NaN
    interrupts      SIGINT and SIGTERM: one line, status 130 or 143, within a second
"""

import importlib
import signal
import sys

import click

from rnnkit import __version__
from rnnkit.cli.commands import TOP_LEVEL_COMMANDS, task_names
from rnnkit.cli.interrupts import (
    INTERRUPTED_STATUSES,
    Interrupted,
    exit_now,
    exit_status,
    message,
    signals_as_exceptions,
)
from rnnkit.errors import InputError
from rnnkit.files import forget_created_outputs, remove_created_outputs

EXIT_USER_ERROR = 2


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rnnkit`` console script and of ``python -m rnnkit`` (``argv`` None: the process is
    rnnkit's own, so a command that does not stop within a second of SIGINT/SIGTERM is ended; see
    :mod:`rnnkit.cli.interrupts`). A command that fails removes the outputs it had created."""
    forget_created_outputs()
    try:
        with signals_as_exceptions(watchdog=argv is None):
            _run(argv)
    except SystemExit as exit:
        if exit.code not in (None, 0):
            remove_created_outputs()
        if argv is None and exit.code in INTERRUPTED_STATUSES:
            # Everything is cleaned up and said; the interpreter's own shutdown (PyTorch's destructors) can take
            # longer than the second an interrupted command has, on a busy machine.
            exit_now(exit.code)
        raise


def _run(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="rnnkit", standalone_mode=False)
    except click.exceptions.Abort as abort:
        # click turns an EOFError into Abort as it does Ctrl-C; rnnkit never prompts, so an EOFError is a file
        # that ended too early (a reader that missed it), not an interruption.
        if isinstance(abort.__context__, EOFError):
            _fail(f"a file ended unexpectedly ({abort.__context__}); check that the input files are complete",
                  EXIT_USER_ERROR)
        _interrupted(abort.__context__)
    except click.ClickException as error:
        _fail(" ".join(error.format_message().split()), error.exit_code)
    except InputError as error:
        _fail(str(error), EXIT_USER_ERROR)
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `rnnkit generate run | head`): not an error.
        sys.stderr.close()
    except (Interrupted, KeyboardInterrupt) as interruption:
        _interrupted(interruption)


def _interrupted(interruption: BaseException | None) -> None:
    """One line and 130 (SIGINT) or 143 (SIGTERM), the outputs the command had created removed first."""
    number = interruption.number if isinstance(interruption, Interrupted) else signal.SIGINT
    _fail(message(number, remove_created_outputs()), exit_status(number))


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class LazyGroup(click.Group):
    """A command group whose commands are imported on first use, so that ``rnnkit train lm`` never imports
    (or depends on) the translation or forecasting code. ``lazy`` maps a command name to (module, attribute)."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy={name: (f"rnnkit.cli.commands.{module}", attribute)
                                  for name, (module, attribute) in TOP_LEVEL_COMMANDS.items()},
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rnnkit")
def cli() -> None:
    """rnnkit: recurrent neural networks on PyTorch: train, generate, evaluate."""


@cli.group(cls=LazyGroup, lazy={name: (f"rnnkit.cli.commands.{name}", "train_command") for name in task_names()})
def train() -> None:
    """Train a model for a task; checkpoints and metrics go to a run directory (--out)."""
