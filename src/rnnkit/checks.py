"""Argument checks shared by every layer: each raises :class:`~rnnkit.errors.InputError` with one line that
names the argument, what it must be, and what it got.

    >>> check_whole_number("hidden_size", 0)
    Traceback (most recent call last):
    ...
    rnnkit.errors.InputError: hidden_size must be a whole number of at least 1, got 0
    >>> check_choice("optimizer", "adam", ("adam", "sgd"))
"""

from rnnkit.errors import InputError


def check_whole_number(name: str, value, minimum: int = 1) -> None:
    """InputError unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be a whole number of at least {minimum}, got {value!r}")


def check_dropout(value, name: str = "dropout") -> None:
    """InputError unless ``value`` is a probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InputError(f"{name} must be in [0, 1), got {value!r}")


def check_positive(flag: str, value, integer: bool = False) -> None:
    """InputError unless ``value`` is None or > 0 (and, with ``integer``, a whole number); ``flag`` is named
    as the command-line option ``--flag``."""
    if value is None:
        return
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise InputError(f"--{flag} must be a whole number, got {value!r}")
    if value <= 0:
        raise InputError(f"--{flag} must be > 0, got {value}")


def check_choice(flag: str, value: str, choices) -> None:
    """InputError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"--{flag} must be one of {', '.join(choices)}, got {value!r}")
