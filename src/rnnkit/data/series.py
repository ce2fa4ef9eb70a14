r"""Numeric time series from CSV: reading, chronological splits, scaling and sliding windows.

A series file is a CSV with a header row and one row per time step, oldest first::

    "Month","Passengers"          <- header: the column names
    "1949-01",112                 <- one step: an optional date, then numbers
    "1949-02",118

:func:`read_series` keeps the target column and any feature columns (the target is always feature 0, so the
network reads its own past), and optionally a date column, which serves as labels and tells the sampling
frequency (:func:`infer_frequency`). Every value must be a finite number of magnitude at most
:data:`MAX_MAGNITUDE`: an empty, NaN, infinite, huge or non-numeric cell is an :class:`~rnnkit.errors.InputError`
naming ``file:line`` and the column.

The time axis of T steps is cut in three consecutive parts (:func:`chronological_split`)::

    [0, train_end)            training: the windows the network learns from, and the scaling statistics
    [train_end, valid_end)    validation: model selection (the last --valid-fraction of what precedes the holdout)
    [valid_end, T)            holdout: the last --test-fraction, never seen in training or selection

A forecast *origin* t is the first step forecast: the network reads the N steps ``[t - N, t)`` and predicts
the H target values ``[t, t + H)``. An origin belongs to a part when all of its H targets lie in it; its
inputs may reach back into earlier parts (:func:`window_origins`).

Transforms (:class:`SeriesTransform`), all fitted on the training part only:

    log            z = ln y for the target (multiplicative seasonality and trend become additive)
    standard       z = (x - mean) / std per column
    difference     inputs and outputs of the target relative to the window's last value:
                   the network reads z_{t-N..t-1} - z_{t-1} and predicts z_{t+h-1} - z_{t-1}, h = 1..H,
                   so that its output 0 is the naive forecast and a trend never leaves the training range
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.checks import fraction_for
from rnnkit.errors import InputError

from .catalog import missing_file_hint
from .reading import csv_rows, unbalanced_quote

SCALINGS = ("standard", "none")
# The largest magnitude a value may have: the network computes in float32, whose squares overflow at 1.8e19,
# and a loss or an RMSE sums up to ~1e8 squared errors; 1e15 keeps every such sum finite (a value of 1e308 gave
# an MAE of inf and a MASE of nan).
MAX_MAGNITUDE = 1e15

# The seasonal period m each sampling frequency suggests: a year of months, quarters or weeks, a day of
# hours. Daily data get the week (7), as R's forecast package and Hyndman & Athanasopoulos's "Forecasting:
# Principles and Practice" do: most daily series are driven by human activity (sales, traffic, visits).
# A natural daily series with a yearly cycle (temperatures) wants --season 365, given explicitly.
SEASON_OF_FREQUENCY = {"hourly": 24, "daily": 7, "weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 1}

# The median spacing of the dates (in days) that names each frequency, with some slack for uneven months.
_FREQUENCY_DAYS = (("hourly", 1 / 24, 1 / 24), ("daily", 1, 1), ("weekly", 7, 7), ("monthly", 28, 31),
                   ("quarterly", 89, 92), ("yearly", 365, 366))
_MONTHS_PER_STEP = {"monthly": 1, "quarterly": 3, "yearly": 12}


@dataclass
class Series:
    """A numeric series read from CSV.

    Attributes:
        path: the file it came from (for messages).
        columns: the F input columns, the target first.
        values: (T, F) float64, row t is step t.
        dates: the T date strings of the date column, or None.
        lines: the file line of each row, for messages about a value.
    """

    path: str
    columns: list[str]
    values: np.ndarray
    dates: list[str] | None
    lines: list[int]

    @property
    def target(self) -> np.ndarray:
        """(T,) the target column."""
        return self.values[:, 0]

    def __len__(self) -> int:
        return self.values.shape[0]


def read_series(path: str | Path, target: str, features: list[str] | None = None,
                date_column: str | None = None) -> Series:
    """Read ``target`` (and the ``features`` columns, and ``date_column``) from the CSV at ``path``.

    The target is always the first input column; naming it again in ``features`` changes nothing.
    Trailing blank lines are ignored; any other blank line, short row or bad value is an InputError.
    """
    path = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            text = file.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the --data path{missing_file_hint(path)}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory; give a CSV file with --data") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; save the CSV as UTF-8") from None
    rows = []
    for start, end, row in csv_rows(text, path):  # strict: a quote never closed names its line
        if end > start:  # numbers and dates hold no line break: a quote left open swallowed the rows after it
            raise unbalanced_quote(path, start, end)
        rows.append((start, row))
    while rows and not rows[-1][1]:
        rows.pop()
    if not rows:
        raise InputError(f"{path} is empty; give a CSV with a header row and one row per time step")
    header = [name.strip() for name in rows[0][1]]
    wanted = [target] + [name for name in dict.fromkeys(features or []) if name != target]
    indices = [_column_index(header, name, path, flag) for name, flag in
               [(target, "--target")] + [(name, "--features") for name in wanted[1:]]]
    date_index = None if date_column is None else _column_index(header, date_column, path, "--date-column")
    if date_column is not None and date_column in wanted:
        role = "--target" if date_column == target else "one of --features"
        raise InputError(f"--date-column {date_column} is also {role}; give the column that holds the dates")

    values, dates, lines = [], [], []
    for line_number, row in rows[1:]:
        if not row:
            raise InputError(f"{path}:{line_number}: blank line; each row is one time step: remove it or fill it in")
        if len(row) < len(header):
            raise InputError(f"{path}:{line_number}: {len(row)} fields, the header has {len(header)}; "
                             "every row needs a value for each column")
        values.append([_number(row[index], header[index], path, line_number) for index in indices])
        if date_index is not None:
            dates.append(row[date_index].strip())
        lines.append(line_number)
    if not values:
        raise InputError(f"{path} has a header but no rows; give one row per time step")
    return Series(path, wanted, np.array(values, dtype=np.float64).reshape(len(values), len(wanted)),
                  dates if date_index is not None else None, lines)


def _column_index(header: list[str], name: str, path: str, flag: str) -> int:
    if name not in header:
        shown = ", ".join(header)
        raise InputError(f"{path}: no column {name!r} ({flag}); the columns are: {shown}")
    return header.index(name)


def _number(text: str, column: str, path: str, line: int) -> float:
    text = text.strip()
    if not text:
        raise InputError(f"{path}:{line}: column {column!r} is empty; fill in the missing value (e.g. interpolate)")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path}:{line}: column {column!r} holds {text!r}, not a number; "
                         "give plain decimal numbers") from None
    if not math.isfinite(value):
        fix = "replace the missing value (e.g. interpolate)" if math.isnan(value) else "give a finite number"
        raise InputError(f"{path}:{line}: column {column!r} is {text}; {fix}")
    if abs(value) > MAX_MAGNITUDE:
        raise InputError(f"{path}:{line}: column {column!r} holds {text}, too large to scale (beyond ±{MAX_MAGNITUDE:g}); "
                         "give the column in larger units (e.g. divided by a million)")
    return value


# ------------------------------------------------------------------------------------------- dates


@dataclass(frozen=True)
class Frequency:
    """A regular sampling frequency read from the dates: its name and the season it suggests."""

    name: str
    season: int


def parse_dates(dates: list[str]) -> np.ndarray | None:
    """The ISO 8601 dates ("1949-01", "1981-01-01", "2020-03-01T12:00") as datetime64, or None if any
    does not parse (the dates are then labels only)."""
    try:
        return np.array([np.datetime64(text) for text in dates])
    except ValueError:
        return None


def _is_date(text: str) -> bool:
    try:
        np.datetime64(text)
    except ValueError:
        return False
    return True


def check_date_order(series: Series) -> None:
    """InputError unless the dates are usable: a date column whose values are not dates at all serves as labels,
    but one that mixes dates with something else has a garbled row (named here, where it would otherwise
    silently cost the frequency and the season); and parseable dates must increase strictly (time order)."""
    if series.dates is None:
        return
    parsed = parse_dates(series.dates)
    if parsed is None:
        flags = [_is_date(text) for text in series.dates]
        if any(flags):
            row = flags.index(False)
            example = series.dates[flags.index(True)]
            raise InputError(f"{series.path}:{series.lines[row]}: date {series.dates[row]!r} is not an ISO date like "
                             f"{example!r} in the other rows; fix the row (dates such as 2020-01-31)")
        return
    if len(parsed) < 2:
        return
    steps = np.diff(parsed.astype("datetime64[s]")).astype(np.int64)  # (T - 1,) seconds
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        row = int(bad[0]) + 1
        raise InputError(f"{series.path}:{series.lines[row]}: date {series.dates[row]} does not come after "
                         f"{series.dates[row - 1]}; sort the rows by date, oldest first, one row per date")


def infer_frequency(dates: list[str] | None) -> Frequency | None:
    """The frequency of regularly spaced ISO dates from their median spacing, or None (no dates, unparseable,
    or a spacing that is none of hourly, daily, weekly, monthly, quarterly, yearly)."""
    parsed = None if dates is None or len(dates) < 2 else parse_dates(dates)
    if parsed is None:
        return None
    spacing_days = float(np.median(np.diff(parsed.astype("datetime64[s]")).astype(np.int64))) / 86400
    for name, low, high in _FREQUENCY_DAYS:
        if low * 0.99 <= spacing_days <= high * 1.01:
            return Frequency(name, SEASON_OF_FREQUENCY[name])
    return None


def future_dates(dates: list[str] | None, steps: int) -> list[str] | None:
    """The ``steps`` dates after the last of ``dates`` at their frequency (same precision), or None."""
    frequency = infer_frequency(dates)
    if frequency is None:
        return None
    last = np.datetime64(dates[-1])
    unit = np.datetime_data(last.dtype)[0]
    ahead = np.arange(1, steps + 1)
    if frequency.name in _MONTHS_PER_STEP:
        months = last.astype("datetime64[M]") + ahead * _MONTHS_PER_STEP[frequency.name]  # (steps,)
        return [str(np.datetime_as_string(month, unit=unit if unit in ("Y", "M") else "D")) for month in months]
    parsed = parse_dates(dates).astype("datetime64[s]")
    spacing = np.median(np.diff(parsed).astype(np.int64)).astype(np.int64)  # seconds
    following = last.astype("datetime64[s]") + ahead * np.timedelta64(int(spacing), "s")  # (steps,)
    return [str(np.datetime_as_string(moment, unit=unit)) for moment in following]


# ------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Split:
    """Train ``[0, train_end)``, validation ``[train_end, valid_end)``, holdout ``[valid_end, length)``."""

    train_end: int
    valid_end: int
    length: int

    @property
    def valid_steps(self) -> int:
        return self.valid_end - self.train_end

    @property
    def test_steps(self) -> int:
        return self.length - self.valid_end


def chronological_split(length: int, test_fraction: float, valid_fraction: float) -> Split:
    """Cut T steps in time order: the last ``round(T * test_fraction)`` are the holdout, then the last
    ``round(rest * valid_fraction)`` of the rest are validation (rounding half up)."""
    if not 0 < test_fraction < 1:
        raise InputError(f"--test-fraction must be in (0, 1), got {test_fraction}; e.g. 0.2 holds out the last fifth")
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    test = math.floor(length * test_fraction + 0.5)
    valid = math.floor((length - test) * valid_fraction + 0.5)
    return Split(length - test - valid, length - test, length)


def window_origins(start: int, end: int, window: int, horizon: int) -> np.ndarray:
    """The origins t whose H targets ``[t, t + H)`` lie in ``[start, end)`` and whose N inputs
    ``[t - N, t)`` exist (t >= N): ``max(start, N) <= t <= end - H``, in order."""
    return np.arange(max(start, window), end - horizon + 1)


def sliding_windows(values: np.ndarray, origins: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, N, F) = ``values[t - N : t]`` and targets (n, H) = ``values[t : t + H, 0]`` per origin t.

    ``values`` is (T, F) with the target in column 0; horizon 0 gives targets of width 0 (a future forecast).
    """
    origins = np.asarray(origins, dtype=np.int64)
    steps = np.arange(window)  # (N,)
    inputs = values[origins[:, None] - window + steps[None, :]]  # (n, N, F)
    ahead = np.arange(horizon)  # (H,)
    targets = values[origins[:, None] + ahead[None, :], 0] if horizon else np.zeros((len(origins), 0))  # (n, H)
    return inputs, targets


def check_target_varies(series: Series, steps: int, path: str,
                        fix: str = "give a --target column that varies") -> None:
    """InputError naming the column when the target is one value over the first ``steps`` steps (the training
    part): there is nothing to learn from it, and its seasonal-naive error, which scales MASE, is zero."""
    part = series.target[:steps]  # (steps,)
    if len(part) and np.all(part == part[0]):
        raise InputError(f"{path}: the target column {series.columns[0]!r} holds the same value, {part[0]:g}, on "
                         f"every row of the training part ({len(part):,} steps): there is nothing to learn or to "
                         f"score; {fix}")


def check_training_lengths(split: Split, window: int, horizon: int, path: str, valid_fraction: float = 0.0) -> None:
    """InputError naming the lengths and the fix when a part is too short for N + H (training needs all three),
    or when a --valid-fraction above 0 holds out no step (which would train without validation, unsaid)."""
    length, need = split.length, window + horizon
    before_holdout = split.valid_end
    if valid_fraction > 0 and split.valid_steps == 0:
        raise InputError(f"{path}: --valid-fraction {valid_fraction:g} holds out none of the {before_holdout} steps before "
                         f"the holdout; use at least {fraction_for(horizon, before_holdout):g} (--horizon {horizon} steps), "
                         "or 0 for no validation")
    if need > length:
        raise InputError(f"{path}: the series has {length} steps, too few for --window {window} + --horizon "
                         f"{horizon} = {need}; lower --window or --horizon")
    if split.train_end < need:
        raise InputError(
            f"{path}: the training part has {split.train_end} of the {length} steps (the last {split.test_steps} are "
            f"the holdout, {split.valid_steps} before them validation), too few for --window {window} + --horizon "
            f"{horizon} = {need}; lower --window or --horizon, or --test-fraction / --valid-fraction"
        )
    if 0 < split.valid_steps < horizon:
        raise InputError(f"{path}: the validation part has {split.valid_steps} steps, fewer than --horizon {horizon}; "
                         "raise --valid-fraction (or set it to 0 for no validation)")
    check_holdout_length(split, window, horizon, path)


def check_holdout_length(split: Split, window: int, horizon: int, path: str) -> None:
    """InputError unless the holdout has at least one origin (H targets in it, N inputs before)."""
    if split.test_steps < horizon:
        raise InputError(f"{path}: the holdout (the last {split.test_steps} of {split.length} steps) is shorter than "
                         f"--horizon {horizon}; raise --test-fraction or lower --horizon")
    if split.length - horizon < window:
        raise InputError(f"{path}: the series has {split.length} steps, too few for --window {window} + --horizon "
                         f"{horizon} = {window + horizon}; give a longer series")


# ------------------------------------------------------------------------------------------- transforms


@dataclass
class SeriesTransform:
    """What turns the raw (T, F) values into the network's numbers and its outputs back into target units.

    Attributes:
        log: take ln of the target (column 0) first; needs positive values.
        difference: make the target's inputs and outputs relative to each window's last value.
        mean, std: per column (after the log), from the training part; 0 and 1 with scaling ``none``.
    """

    log: bool
    difference: bool
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, series: Series, train_end: int, scale: str, log: bool, difference: bool) -> "SeriesTransform":
        """Statistics of the training part ``[0, train_end)`` of ``series``."""
        if scale not in SCALINGS:
            raise InputError(f"--scale must be standard or none, got {scale!r}")
        columns = series.values.shape[1]
        transform = cls(log, difference, [0.0] * columns, [1.0] * columns)
        if scale == "standard":
            train = transform._logged(series)[:train_end]  # (T_train, F)
            std = train.std(axis=0)
            # A constant column carries no information to scale; dividing by 1 keeps it finite.
            transform.mean, transform.std = train.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()
        return transform

    def encode(self, series: Series) -> np.ndarray:
        """(T, F) the network's numbers for every step of ``series``."""
        if len(self.mean) != series.values.shape[1]:
            raise InputError(f"{series.path} gives {series.values.shape[1]} columns, the model reads {len(self.mean)}")
        return (self._logged(series) - np.array(self.mean)) / np.array(self.std)

    def _logged(self, series: Series) -> np.ndarray:
        values = series.values.copy()
        if self.log:
            bad = np.flatnonzero(values[:, 0] <= 0)
            if bad.size:
                row = int(bad[0])
                raise InputError(f"{series.path}:{series.lines[row]}: --log needs positive values of "
                                 f"{series.columns[0]!r}, found {values[row, 0]:g}; drop --log or shift the series")
            values[:, 0] = np.log(values[:, 0])
        return values

    def window_inputs(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, N, F) encoded windows → the network's inputs (n, N, F) and each window's last target (n,)."""
        last = inputs[:, -1, 0].copy()  # (n,)
        if self.difference:
            inputs = inputs.copy()
            inputs[:, :, 0] -= last[:, None]
        return inputs, last

    def window_targets(self, targets: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(n, H) encoded targets → what the network learns to output (relative to ``last`` with difference)."""
        return targets - last[:, None] if self.difference else targets

    def decode(self, outputs: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(n, H) network outputs → forecasts in the target's own units (undo difference, scaling, log)."""
        encoded = outputs + last[:, None] if self.difference else outputs
        values = encoded * self.std[0] + self.mean[0]
        return np.exp(values) if self.log else values

    def to_dict(self) -> dict:
        return {"log": self.log, "difference": self.difference, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, saved: dict) -> "SeriesTransform":
        return cls(bool(saved["log"]), bool(saved["difference"]), [float(v) for v in saved["mean"]],
                   [float(v) for v in saved["std"]])
