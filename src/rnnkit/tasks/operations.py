"""What a trained run of a task does besides training, declared in the task's own module: evaluate, predict
and generate, each with its options.

A task module declares each operation its runs have as an :class:`Operation`: the function that does it and its
options, each an :class:`Option` (its name, the :class:`Kind` of value it takes, its help); its spec holds them
(``TaskSpec(..., evaluate=..., predict=..., generate=...)``). Two callers are built from the same declarations:

    rnnkit.load(RUN)               ``run.evaluate("valid.txt")``, ``run.generate(prime="def ", length=200)``: the
                                   option ``top_k`` is the keyword ``top_k=`` (rnnkit.tasks.trained)
    rnnkit evaluate RUN [FLAGS]    the same options as flags (``--top-k``), those of the run's task only (rnnkit.cli)

An operation's function takes the task's trained object (what ``SPEC.from_checkpoint`` gives) and the options by
keyword; the defaults in its signature are the options' defaults. It returns what ``--json`` prints: numbers,
strings, lists and dicts. Two parameters, where it has them, are not options but what its caller does with what
happens meanwhile (:data:`HOOKS`): ``warn(line)`` for a warning (the command line prints ``warning: ...``, Python
issues a UserWarning) and ``stream(text)`` for text as it is made (the command line writes it at once).

Example (in a task module)::

    def evaluate(trained, data: str | None = None, split: str = "test") -> dict:
        ...

    EVALUATE = Operation(evaluate, "NLL per time step (nats) and frame accuracy on one split of the data.", (
        Option("data", File("FILE|DIR"), "The music to score. Default: the run's data."),
        Option("split", Choice(("train", "valid", "test")), "The split of the data to score."),
    ))
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

from rnnkit.checks import MAX_SEED
from rnnkit.data.catalog import resolve
from rnnkit.data.reading import decode_text, read_lines
from rnnkit.errors import InputError

# The operations a task may declare, in the order they are listed.
OPERATIONS = ("evaluate", "predict", "generate")
# The options that read a dataset's file, by name, and the role of the file a dataset's name stands for there
# (``rnnkit evaluate RUN --data ptb`` scores ptb.test.txt); see rnnkit.data.catalog.
DATASET_OPTIONS = {"data": "test", "source": "test.source", "target": "test.target"}
# Parameters of an operation's function that are not options: what the caller does with warnings and with
# text made piece by piece (see the module's docstring).
HOOKS = ("warn", "stream")


# ------------------------------------------------------------------------------------------- kinds of value


class Kind:
    """What values an option takes. ``check(value, name)`` checks (and normalises) a value given in Python; the
    command line parses its flag with a click type of the same bounds (rnnkit.cli.task_command)."""

    metavar = "TEXT"

    def check(self, value, name: str):
        return value


@dataclass(frozen=True)
class Text(Kind):
    """A string."""

    metavar: str = "TEXT"

    def check(self, value, name: str) -> str:
        if not isinstance(value, str):
            raise InputError(f"{name} must be a string, got {value!r}")
        return value


@dataclass(frozen=True)
class File(Kind):
    """The path of a file to read or to write: a string or an ``os.PathLike``, passed on as a string."""

    metavar: str = "FILE"

    def check(self, value, name: str) -> str:
        if not isinstance(value, (str, os.PathLike)):
            raise InputError(f"{name} must be a file path, got {value!r}")
        if not str(os.fspath(value)).strip():  # a shell variable that was never set: never "the default file"
            raise InputError(f"{name} is an empty path; give the path of a file")
        return os.fspath(value)


@dataclass(frozen=True)
class Int(Kind):
    """A whole number from ``low`` to ``high`` (None: no bound)."""

    low: int | None = None
    high: int | None = None
    metavar: str = "N"

    def check(self, value, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not _within(value, self.low, self.high):
            raise InputError(f"{name} must be a whole number{_bounds(self.low, self.high)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Float(Kind):
    """A finite number from ``low`` to ``high`` (None: no bound), each bound excluded when ``*_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    metavar: str = "X"

    def check(self, value, name: str) -> float:
        fits = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                and _within(value, self.low, self.high, self.low_open, self.high_open))
        if not fits:
            raise InputError(f"{name} must be a finite number"
                             f"{_bounds(self.low, self.high, self.low_open, self.high_open)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``values``."""

    values: tuple[str, ...]

    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.values) + "]"

    def check(self, value, name: str) -> str:
        if value not in self.values:
            raise InputError(f"{name} must be one of {', '.join(self.values)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Flag(Kind):
    """On or off: True or False (a flag without a value on the command line)."""

    metavar: str = ""

    def check(self, value, name: str) -> bool:
        if not isinstance(value, bool):
            raise InputError(f"{name} must be True or False, got {value!r}")
        return value


@dataclass(frozen=True)
class Inputs(Kind):
    """What an operation is applied to: a file of them (a path, as on the command line), or in Python the items
    themselves (a list of ``what``, or an array); with ``stdin``, the command line reads them from standard input
    when the flag is not given (as a stream, which :func:`input_lines` reads)."""

    what: str
    metavar: str = "FILE"
    stdin: bool = False

    def check(self, value, name: str):
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
        if isinstance(value, (list, tuple)):
            return list(value)
        if hasattr(value, "read") or hasattr(value, "shape"):  # a stream (standard input), an array
            return value
        raise InputError(f"{name} must be a file path or a list of {self.what}, got {value!r}")


SEED = Int(0, MAX_SEED)


def _within(value, low, high, low_open: bool = False, high_open: bool = False) -> bool:
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    return above and below


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '≥'} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '≤'} {high}")
    return (" " + " and ".join(parts)) if parts else ""


# ------------------------------------------------------------------------------------------- options, operations


@dataclass(frozen=True)
class Option:
    """One option of an operation.

    Args:
        name: the keyword in Python (``top_k``); on the command line the flag ``--top-k``.
        kind: the values it takes (:class:`Text`, :class:`File`, :class:`Int`, :class:`Float`, :class:`Choice`,
            :class:`Flag`, :class:`Inputs`).
        help: one or two sentences for ``--help``.
        required: what must be given, for the message when it is not ("the text to score"); None: optional.
    """

    name: str
    kind: Kind
    help: str
    required: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Spelling:
    """How messages name an option: as the command line's flag (``--top-k N``) or as Python's keyword
    (``top_k=N``)."""

    flags: bool

    def name(self, option: Option) -> str:
        return option.flag if self.flags else option.name

    def given(self, option: Option) -> str:
        """How to give the option: ``--data FILE``, or ``data=FILE``."""
        if not option.kind.metavar:
            return self.name(option)
        return f"{option.flag} {option.kind.metavar}" if self.flags else f"{option.name}={option.kind.metavar}"


FLAGS = Spelling(flags=True)
KEYWORDS = Spelling(flags=False)


@dataclass(frozen=True)
class Operation:
    """One operation of a task's trained runs (see the module's docstring).

    Args:
        run: ``run(trained, **options)`` -> what ``--json`` prints; its signature gives the options' defaults
            and may add the :data:`HOOKS`.
        help: what it does, for ``--help`` (first sentence: the summary).
        options: its options, in ``--help`` order; the first ones may be given positionally in Python.
    """

    run: Callable[..., Any]
    help: str
    options: tuple[Option, ...] = ()

    def __post_init__(self):
        parameters = inspect.signature(self.run).parameters
        missing = [option.name for option in self.options if option.name not in parameters]
        if missing:
            raise TypeError(f"{self.run.__qualname__} has no parameter for the options {', '.join(missing)}")

    @property
    def defaults(self) -> dict[str, Any]:
        """Each option's default: the default of its parameter (None where it has none)."""
        parameters = inspect.signature(self.run).parameters
        return {option.name: None if parameters[option.name].default is inspect.Parameter.empty
                else parameters[option.name].default for option in self.options}

    @property
    def hooks(self) -> tuple[str, ...]:
        parameters = inspect.signature(self.run).parameters
        return tuple(hook for hook in HOOKS if hook in parameters)

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)

    def values(self, given: dict[str, Any], spelling: Spelling, subject: str) -> dict[str, Any]:
        """Every option's value: ``given`` (by name, None: not given) checked, else the default; InputError
        naming the option (as ``spelling`` spells it) for a bad value or a missing required one. ``subject``
        begins that message ("runs/x holds a language model")."""
        values = self.defaults
        for option in self.options:
            value = given.get(option.name)
            if value is not None:
                values[option.name] = option.kind.check(value, spelling.name(option))
                if isinstance(option.kind, File) and option.name in DATASET_OPTIONS:
                    values[option.name] = resolve(values[option.name], DATASET_OPTIONS[option.name])
            elif option.required and values[option.name] is None:
                raise InputError(f"{subject}: give {option.required} with {spelling.given(option)}")
        return values

    def call(self, trained, values: dict[str, Any], hooks: dict[str, Callable | None]):
        """``run(trained, **values)``, with those of ``hooks`` it takes."""
        return self.run(trained, **values, **{hook: hooks.get(hook) for hook in self.hooks})


# ------------------------------------------------------------------------------------------- reading inputs


def input_lines(given, what: str, encoding: str = "utf-8", read: Callable[[str], list[str]] | None = None
                ) -> tuple[list[str], str]:
    """The lines an operation is applied to (``what`` they are: "texts, one per line"), and their name for
    messages: a list of strings is the lines
    themselves ("the given list"); a path, the file's lines (``read(path)``, default
    :func:`~rnnkit.data.reading.read_lines` in ``encoding``); a stream (the command line's standard input), the
    lines of its text ("stdin"), decoded as a file is. Blank lines are kept; the newline ending the last line
    starts no new one."""
    if isinstance(given, list):
        if not all(isinstance(line, str) for line in given):
            raise InputError(f"give the {what} as a list of strings, or the path of a file of them")
        return given, "the given list"
    if isinstance(given, str):
        return (read or (lambda path: read_lines(path, encoding, what=what)))(given), given
    raw = getattr(given, "buffer", given)
    data = raw.read()
    text = (decode_text(data, "stdin", encoding, fix=f"pipe {encoding} text (iconv -t {encoding} converts it), or "
                        "give --input FILE") if isinstance(data, bytes) else data.replace("\r\n", "\n"))
    if not text:
        raise InputError(f"no {what.split(',')[0]} on stdin; pipe {what}, or give --input FILE")
    lines = text.split("\n")
    return (lines[:-1] if text.endswith("\n") else lines), "stdin"
