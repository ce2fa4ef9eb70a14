"""What a run shows while it trains: a progress bar per epoch and one line per finished epoch.

    >>> format_record({"epoch": 2, "step": 40, "train_loss": 1.25, "lr": 0.002, "tokens_per_second": 1500.0,
    ...                "elapsed_seconds": 12.4}, epochs=5)
    'epoch 2/5  step 40  train_loss 1.2500  lr 0.002  1,500 tok/s  12s'
"""

import sys

from tqdm import tqdm


class ProgressBar:
    """A tqdm bar per epoch showing loss and the rate of targets per second (tqdm adds the ETA); silent when
    disabled. ``unit`` names what the rate counts (``tok``, ``texts``, ``windows``)."""

    def __init__(self, enabled: bool, unit: str = "tok"):
        self.enabled = enabled
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
