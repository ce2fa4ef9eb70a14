"""Argument checks shared by every layer: each raises :class:`~rnnkit.errors.InputError` with one line that
names the argument, what it must be, and what it got.

    >>> check_whole_number("hidden_size", 0)
    Traceback (most recent call last):
    ...
    rnnkit.errors.InputError: hidden_size must be a whole number of at least 1, got 0
    >>> check_choice("optimizer", "adam", ("adam", "sgd"))
    >>> check_positive("lr", float("nan"))
    Traceback (most recent call last):
    ...
    rnnkit.errors.InputError: --lr must be a finite number, got nan
"""

import math
import os

from rnnkit.errors import InputError

# Every seed seeds NumPy's legacy generator too, which takes 0 to 2**32 - 1 (torch takes up to 2**64 - 1).
MAX_SEED = 2**32 - 1

# Sane ranges of the float settings whose huge values are finite yet meaningless, so that a typo is refused
# naming its flag rather than surfacing later as "training diverged: lower --lr" or a traceback.
# A forget-gate bias b opens the gate to σ(b): σ(±17) is already 1 or 0 in float32, so nothing past ±100
# differs, and 1e308 is infinite in float32 (the gate's pre-activation becomes inf, then nan).
FORGET_BIAS_LIMIT = 100.0
# Weights drawn from ±X: past 10 every tanh/σ unit saturates at the first step (Zaremba et al. use 0.1).
MAX_INIT_RANGE = 10.0
# Weight decay multiplies the weights by (1 - lr·λ) each step (or adds λ·w to the gradient): past 10 it
# outweighs any loss the model could learn from.
MAX_WEIGHT_DECAY = 10.0
# The tempo of a MIDI file is stored as microseconds per quarter note in 24 bits (at most 16,777,215 µs: about
# 3.58 bpm); past 1000 bpm a quarter note lasts 60 ms, faster than any notated music.
MIN_BPM, MAX_BPM = 4.0, 1000.0
# GNMT's length normalisation divides a hypothesis's log-probability by ((5 + |Y|) / 6)^α; Wu et al. tune α in
# [0.6, 1]. Past 10 the longest hypothesis wins whatever its words (and past ~250 the divisor overflows).
MAX_LENGTH_PENALTY = 10.0


def check_whole_number(name: str, value, minimum: int = 1) -> None:
    """InputError unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be a whole number of at least {minimum}, got {value!r}")


def check_dropout(value, name: str = "dropout") -> None:
    """InputError unless ``value`` is a probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InputError(f"{name} must be in [0, 1), got {value!r}")


def check_finite(flag: str, value) -> None:
    """InputError unless ``value`` is None or a finite number (not a bool): nan passes every comparison, so a
    range check alone lets it through (``nan <= 0`` is False)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"--{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"--{flag} must be a finite number, got {value}")


def check_positive(flag: str, value, integer: bool = False) -> None:
    """InputError unless ``value`` is None or a finite number > 0 (and, with ``integer``, a whole number);
    ``flag`` is named as the command-line option ``--flag``."""
    if value is None:
        return
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise InputError(f"--{flag} must be a whole number, got {value!r}")
    check_finite(flag, value)
    if value <= 0:
        raise InputError(f"--{flag} must be > 0, got {value}")


def check_seed(flag: str, value) -> None:
    """InputError unless ``value`` is a whole number from 0 to :data:`MAX_SEED`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise InputError(f"--{flag} must be a whole number from 0 to {MAX_SEED}, got {value!r}")


def check_choice(flag: str, value: str, choices) -> None:
    """InputError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"--{flag} must be one of {', '.join(choices)}, got {value!r}")


def fraction_for(needed: int, total: int) -> float:
    """The smallest fraction, at two significant digits, that holds out at least ``needed`` of ``total`` items
    when the held-out count is ``round(fraction * total)`` (or ``total - round(total * (1 - fraction))``):
    what to suggest when a --valid-fraction holds out too little.

        >>> fraction_for(1, 1900), round(0.00079 * 1900)
        (0.00079, 2)
    """
    exact = (needed + 0.5) / total  # rounds to at least `needed` whichever way a half goes
    digits = 1 - math.floor(math.log10(exact))
    return math.ceil(exact * 10**digits) / 10**digits


def machine_memory() -> int | None:
    """Bytes of physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: float) -> str:
    """``"1.5 GB"``: a size in the largest unit that keeps it at least 1 (powers of 1000).

        >>> format_bytes(1.5e9), format_bytes(123)
        ('1.5 GB', '123 B')
    """
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


# Training keeps each parameter four times: the weight, its gradient and the optimizer's two moments (Adam).
TRAINING_COPIES = 4


def check_training_memory(parameters: int, bytes_per_parameter: int, fix: str, what: str = "training the model") -> None:
    """InputError when training ``parameters`` parameters (weights, gradients, optimizer state) cannot fit in this
    machine's memory; ``fix`` says which flags to lower."""
    check_fits_in_memory(TRAINING_COPIES * bytes_per_parameter * parameters,
                         f"{what} ({parameters:,} parameters: weights, gradients, optimizer state)", fix)


def check_fits_in_memory(needed: int, what: str, fix: str, available: int | None = None) -> None:
    """InputError when ``needed`` bytes exceed this machine's physical memory (``available``: for tests):
    an allocation that large would fail with a traceback or push the machine into swap."""
    available = machine_memory() if available is None else available
    if available is not None and needed > available:
        raise InputError(f"{what} needs about {format_bytes(needed)} of memory, more than this machine's "
                         f"{format_bytes(available)}; {fix}")
