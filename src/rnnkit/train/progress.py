"""What a run shows while it works: a progress bar per epoch, one line per finished epoch, and a bar with a rate
and the time left around any long loop of a command (validation, evaluate, predict, beam search, bench).

Bars are for a person at a terminal: they show only on a terminal's stderr, and never while a command prints
``--json`` or was told to be quiet. A command says so once, around its work (:func:`progress_shown`); the
library's loops wrap what they iterate in :func:`tracked`, which is a plain pass-through unless a bar is wanted,
so that Python callers (``rnnkit.load(RUN).evaluate(...)``) see nothing. Only the outermost tracked loop shows
a bar (an evaluate's batches, not the beam search inside each).

    with progress_shown(not as_json):                       # the command line, around the work
        for batch in tracked(batches, "evaluate", unit="seq", size=len):   # the library's loop
            ...

    >>> format_record({"epoch": 2, "step": 40, "train_loss": 1.25, "lr": 0.002, "tokens_per_second": 1500.0,
    ...                "elapsed_seconds": 12.4}, epochs=5)
    'epoch 2/5  step 40  train_loss 1.2500  lr 0.002  1,500 tok/s  12s'
"""

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")

# Whether the command being run wants bars (None: it did not say; a ProgressBar's own flag decides), and
# whether a tracked loop shows one now (a loop inside it stays silent).
_WANTED: ContextVar[bool | None] = ContextVar("rnnkit_progress_wanted", default=None)
_OPEN: ContextVar[bool] = ContextVar("rnnkit_progress_open", default=False)


def on_terminal() -> bool:
    """Whether stderr is a terminal: the only place a bar is drawn."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@contextmanager
def progress_shown(wanted: bool) -> Iterator[None]:
    """Within the block, :func:`tracked` loops show a bar when ``wanted`` and stderr is a terminal; with
    ``wanted`` False no bar shows at all (the Trainer's included): a command printing ``--json``."""
    token = _WANTED.set(bool(wanted))
    try:
        yield
    finally:
        _WANTED.reset(token)


def tracked(items: Iterable[Item], what: str, *, total: int | None = None, unit: str = "batch",
            size: Callable[[Item], int] | None = None) -> Iterator[Item]:
    """``items``, one by one; inside ``progress_shown(True)`` on a terminal, with a bar named ``what`` showing
    the rate in ``unit``/s and the time left. ``total``: how many units there are (default: ``len(items)``, or
    none known: then the bar shows the rate only); ``size(item)``: the units one item counts (default 1: a
    batch of sentences counts its sentences with ``size=len``)."""
    if not (_WANTED.get() and not _OPEN.get() and on_terminal()):
        yield from items
        return
    if total is None and size is None and hasattr(items, "__len__"):
        total = len(items)
    bar = tqdm(total=total, desc=what, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
    token = _OPEN.set(True)
    try:
        for item in items:
            yield item
            bar.update(1 if size is None else size(item))
    finally:
        bar.close()
        try:
            _OPEN.reset(token)
        except ValueError:  # the loop was left unfinished and closed from another context: nothing to undo
            pass


class ProgressBar:
    """A tqdm bar per epoch showing loss and the rate of targets per second (tqdm adds the ETA); silent when
    disabled. ``unit`` names what the rate counts (``tok``, ``texts``, ``windows``)."""

    def __init__(self, enabled: bool, unit: str = "tok"):
        # A command printing --json says so (progress_shown(False)); a bar is drawn on a terminal only.
        self.enabled = enabled and _WANTED.get() is not False and on_terminal()
        self.unit = unit
        self._bar: tqdm | None = None
        self._smoothed_rate: float | None = None

    def start_epoch(self, epoch: int, total: int, initial: int) -> None:
        self.close()
        if self.enabled:
            self._bar = tqdm(total=total, initial=initial, desc=f"epoch {epoch}", unit="batch",
                             leave=False, dynamic_ncols=True, file=sys.stderr)

    def update(self, loss: float, tokens_per_second: float) -> None:
        if self._bar is None:
            return
        # An exponential average keeps the shown rate steady across uneven steps.
        rate = self._smoothed_rate
        self._smoothed_rate = tokens_per_second if rate is None else 0.9 * rate + 0.1 * tokens_per_second
        self._bar.set_postfix({"loss": f"{loss:.3f}", f"{self.unit}/s": f"{self._smoothed_rate:,.0f}"}, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_record(record: dict, epochs: int | None, unit: str = "tok") -> str:
    """One epoch's metrics record as the line a run logs."""
    epoch = record["epoch"]
    shown = f"{epoch}/{epochs}" if isinstance(epoch, int) and epochs else f"{epoch:.2f}"
    parts = [f"epoch {shown}", f"step {record['step']}"]
    parts += [f"{key} {record[key]:.4f}" for key in record if key.startswith(("train_", "valid_"))]
    parts += [f"lr {record['lr']:.3g}", f"{record['tokens_per_second']:,.0f} {unit}/s", f"{record['elapsed_seconds']:.0f}s"]
    return "  ".join(parts)


def log_line(line: str) -> None:
    """One progress line on stderr; tqdm.write keeps an active progress bar intact below it."""
    tqdm.write(line, file=sys.stderr)


def warn_line(line: str) -> None:
    """A ``warning: ...`` line on stderr (data skipped, truncated or read as unknown), beside the progress bar."""
    tqdm.write(f"warning: {line}", file=sys.stderr)
