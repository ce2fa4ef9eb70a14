r"""The forecasting task: from a window of N past steps of F features, the next H values of the target.

Direct multi-step forecasting with one many-to-one :class:`~rnnkit.models.SequenceRegressor`: it reads the
window (N, F) (the target is always feature 0) and outputs all H future target values at once, so no forecast
is fed back as an input. The data flow (see :mod:`rnnkit.data.series` for the formats)::

    CSV → Series (T, F) → chronological split: train | validation | holdout
        → SeriesTransform fitted on train (log, standard scaling, difference), saved as JSON in the checkpoint
        → windows: origin t reads [t - N, t), predicts [t, t + H)
        → SequenceRegressor(num_outputs=H, input_size=F), MSE on the transformed targets
        → validation MAE (target units) picks the best checkpoint: selection = ("mae", "min")
        → holdout backtest by rolling origin beside the naive and seasonal-naive baselines

The backtest and the forecast after the end of a series are :mod:`rnnkit.tasks.forecast_backtest`'s; the
picture of a forecast is :mod:`rnnkit.tasks.forecast_plot`'s.

The season m (for the seasonal-naive baseline and MASE) is ``--season`` when given; otherwise the one the
date column's frequency suggests (:data:`~rnnkit.data.series.SEASON_OF_FREQUENCY`: monthly 12, quarterly 4,
weekly 52, daily 7, hourly 24), falling back to 1 (no seasonality) without dates or when the training part
is too short for it.

Example::

    from rnnkit.tasks.run import train
    config = ForecastDataConfig(data="airline.csv", target="Passengers", date_column="Month", window=24, horizon=12,
                                log=True, difference=True)
    report = train(SPEC, RunSettings(config, {"cell": "lstm", "hidden_size": 32}, TrainConfig(epochs=100)),
                   run_dir=RunDirectory.create("runs/airline"))
    report["holdout"]["model"]["mase"], report["holdout"]["seasonal_naive"]["mase"]
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from rnnkit.data.series import SCALINGS, Series, SeriesTransform, Split, check_date_order, check_holdout_length
from rnnkit.data.series import check_target_varies, check_training_lengths, chronological_split, infer_frequency
from rnnkit.data.series import future_dates, parse_dates, read_series, sliding_windows, window_origins
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.files import check_distinct_outputs, output_destination, write_output
from rnnkit.metrics import forecast as metrics
from rnnkit.models import SequenceRegressor
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, RunDirectory, Task, TaskLoss, seed_everything
from rnnkit.train.outputs import check_output
from rnnkit.train.task import Baseline

from .forecast_backtest import backtest, backtest_report, forecast_future, predict_windows
from .operations import File, Operation, Option
from .spec import NETWORK_OPTIONS, REGULARISER_OPTIONS, Prepared, RunSettings, TaskSpec
from .spec import build_within_memory

NAME = "forecast"


@dataclass
class ForecastDataConfig:
    """Which series, how it is split, transformed and windowed; saved inside every checkpoint.

    Args:
        data: the CSV file (header row, one row per step, oldest first).
        target: the column to forecast. features: further input columns (the target is always one).
        date_column: a column of ISO dates: labels for the output, and the frequency that suggests the season.
        window: N, past steps the network reads. horizon: H, future steps it forecasts (direct, all at once).
        season: m of the seasonal-naive baseline and of MASE; None infers it from the dates (else 1).
        test_fraction: the holdout, the last share of the series. valid_fraction: the share of what precedes
            the holdout that is held out (at its end) for validation; 0 for none.
        scale: ``standard`` (zero mean, unit variance per column, training statistics) or ``none``.
        log: model the log of the target (positive series with multiplicative trend or seasonality).
        difference: inputs and outputs of the target relative to each window's last value (trending series).
        batch_size: windows per optimizer step (over all processes).
    """

    data: str
    target: str
    features: list[str] = field(default_factory=list)
    date_column: str | None = None
    window: int = 24
    horizon: int = 1
    season: int | None = None
    test_fraction: float = 0.2
    valid_fraction: float = 0.1
    scale: str = "standard"
    log: bool = False
    difference: bool = False
    batch_size: int = 32

    def __post_init__(self):
        for flag, value in (("window", self.window), ("horizon", self.horizon), ("batch-size", self.batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--{flag} must be a whole number >= 1, got {value!r}"
                                 + ("; it is how many steps each window forecasts" if flag == "horizon" else ""))
        if self.season is not None and (not isinstance(self.season, int) or self.season < 1):
            raise InputError(f"--season must be a whole number >= 1, got {self.season!r}; 1 means no seasonality")
        if self.scale not in SCALINGS:
            raise InputError(f"--scale must be standard or none, got {self.scale!r}")
        # Validates the fractions with the flags' messages.
        chronological_split(100, self.test_fraction, self.valid_fraction)


@dataclass
class ForecastData:
    """A series ready for the network: the raw values, the split, the season and the fitted transform.

    Attributes:
        series: the values as read. split: train / validation / holdout boundaries.
        season: m. season_source: why m (``--season``, ``monthly dates``, ``no dates``, ...).
        transform: the fitted (or saved) transform. encoded: (T, F) the network's numbers.
    """

    series: Series
    split: Split
    season: int
    season_source: str
    transform: SeriesTransform
    encoded: np.ndarray

    def windows(self, origins: np.ndarray, window: int, horizon: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Network inputs (n, N, F), output targets (n, H) and each window's last encoded target (n,)."""
        raw_inputs, raw_targets = sliding_windows(self.encoded, origins, window, horizon)
        inputs, last = self.transform.window_inputs(raw_inputs)
        targets = self.transform.window_targets(raw_targets, last)
        return torch.from_numpy(inputs).float(), torch.from_numpy(targets).float(), last


def resolve_season(config: ForecastDataConfig, series: Series, train_end: int) -> tuple[int, str]:
    """m and the reason for it: the flag, the dates' frequency, or 1."""
    if config.season is not None:
        return config.season, "--season"
    frequency = infer_frequency(series.dates)
    if frequency is None:
        return 1, "no regular dates" if series.dates is not None else "no --date-column"
    if frequency.season >= train_end:
        return 1, f"{frequency.name} dates, but the training part is shorter than {frequency.season}"
    return frequency.season, f"{frequency.name} dates"


def load_data(config: ForecastDataConfig, transform: SeriesTransform | None = None,
                season: tuple[int, str] | None = None, training: bool = True) -> ForecastData:
    """Read and prepare ``config.data``; a trained model passes its saved ``transform`` and (season, source).

    ``training`` checks that every part is long enough to train (:func:`series_for` checks the holdout alone).
    """
    series = read_series(config.data, config.target, config.features, config.date_column)
    check_date_order(series)
    split = chronological_split(len(series), config.test_fraction, config.valid_fraction)
    if training:
        check_training_lengths(split, config.window, config.horizon, config.data, config.valid_fraction)
        check_target_varies(series, split.train_end, config.data)
    season, source = season or resolve_season(config, series, split.train_end)
    transform = transform or SeriesTransform.fit(series, split.train_end, config.scale, config.log, config.difference)
    return ForecastData(series, split, season, source, transform, transform.encode(series))


class ForecastTask(Task):
    """Windows of a series for the :class:`~rnnkit.train.Trainer`: full BPTT over each window, MSE loss.

    Each epoch reads the training windows in an order drawn from ``seed + epoch``; in a distributed run each
    rank takes its own contiguous block of every batch. The validation score is the MAE (and MASE) of the
    validation forecasts in the target's units, which selects the best checkpoint.
    """

    target_unit = "windows"  # what n_tokens counts: one target per window
    selection = ("mae", "min")

    def __init__(self, data: ForecastData, config: ForecastDataConfig, seed: int, dist: DistContext | None = None):
        self.dist = dist or DistContext()
        self.dist.check_batch_size(config.batch_size)
        self.data, self.config, self.seed = data, config, seed
        window, horizon, split = config.window, config.horizon, data.split
        self.train = data.windows(window_origins(0, split.train_end, window, horizon), window, horizon)[:2]
        self.valid_origins = window_origins(split.train_end, split.valid_end, window, horizon)
        self.valid = data.windows(self.valid_origins, window, horizon) if len(self.valid_origins) else None
        self.scale = metrics.mase_scale(data.series.target[:split.train_end], data.season)

    def num_train_batches(self) -> int:
        full, rest = divmod(self.train[0].size(0), self.config.batch_size)
        # A last batch smaller than the number of processes would leave a rank without rows.
        return full + (1 if rest >= self.dist.world_size else 0)

    def train_batches(self, epoch: int, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        inputs, targets = self.train
        order = torch.randperm(inputs.size(0), generator=torch.Generator().manual_seed(self.seed + epoch))
        size = self.config.batch_size
        for index in range(start, self.num_train_batches()):
            rows = order[index * size:(index + 1) * size].tensor_split(self.dist.world_size)[self.dist.rank]
            yield inputs[rows], targets[rows]  # (n, N, F), (n, H)

    def valid_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if self.valid is None:
            return None
        inputs, targets, _ = self.valid
        rows = torch.arange(inputs.size(0)).tensor_split(self.dist.world_size)[self.dist.rank]
        return [(inputs[chunk], targets[chunk]) for chunk in rows.split(self.config.batch_size)]

    def loss(self, model: torch.nn.Module, batch, state) -> TaskLoss:
        inputs, targets = batch  # (n, N, F), (n, H)
        outputs = model(inputs)  # (n, H)
        # Mean over the H steps, summed over windows: the Trainer divides by the number of windows.
        loss_sum = torch.nn.functional.mse_loss(outputs, targets, reduction="none").mean(1).sum()
        return TaskLoss(loss_sum, inputs.size(0), inputs.size(0), None)

    def baseline_loss(self) -> Baseline:
        """The MSE of forecasting every training window by the mean of the training targets (per horizon
        step, in the network's scale): the regression's guess that knows nothing."""
        targets = self.train[1]  # (n, H)
        return Baseline(float(((targets - targets.mean(0)) ** 2).mean()), "forecasting the training mean")

    def score_validation(self, model: torch.nn.Module) -> dict[str, float]:
        """MAE and MASE of the validation forecasts in target units (every rank scores all of them)."""
        if self.valid is None:
            return {}
        inputs, _, last = self.valid
        forecasts = predict_windows(model, inputs, last, self.data.transform, self.config.batch_size)  # (n, H)
        actuals = sliding_windows(self.data.series.values, self.valid_origins, self.config.window,
                                  self.config.horizon)[1]  # (n, H)
        error = metrics.mae(forecasts, actuals)
        return {"mae": error, "mase": error / self.scale}


def build_model(input_size: int, horizon: int, model_options: dict) -> SequenceRegressor:
    """The many-to-one regressor reading ``input_size`` features per step and writing ``horizon`` values."""
    return SequenceRegressor(num_outputs=horizon, input_size=input_size, **model_options)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read and split the series (a resumed run's must have its columns and scaling), build the model."""
    config, seed = settings.data, settings.train.seed
    seed_everything(seed)
    data = load_data(config)
    if checkpoint is not None and (data.series.columns != checkpoint.meta["columns"]
                                   or data.transform.to_dict() != checkpoint.meta["transform"]):
        raise InputError(f"{config.data} is not the series this run was trained on (other columns or "
                         "scaling statistics); resume with the run's own CSV")
    model = build_within_memory(lambda: build_model(len(data.series.columns), config.horizon, settings.model))
    task = ForecastTask(data, config, seed, dist)
    run_info = {"configs": {"data": asdict(config), "model": model.config}, "transform": data.transform.to_dict(),
                "season": data.season, "season_source": data.season_source, "columns": data.series.columns}
    split = data.split
    summary = (f"series: {config.data}: {split.length:,} steps × {len(data.series.columns)} features; "
               f"train {split.train_end:,}, validation {split.valid_steps:,}, holdout {split.test_steps:,}; "
               f"{task.train[0].size(0):,} training windows; season {data.season} ({data.season_source}); "
               f"model {parameter_count(model):,} parameters")
    return Prepared(model, task, run_info, summary, data=data)


def finish(report: dict, prepared: Prepared, run_dir: RunDirectory | None) -> dict:
    """Add ``holdout``: the backtest (:func:`backtest_report`) of the best checkpoint by validation MAE (the
    latest without validation; the final weights without a run directory), named in ``holdout["checkpoint"]``."""
    model = prepared.model.cpu().eval()
    checkpoint_used = "latest" if run_dir is not None else "final weights"
    if run_dir is not None and (run_dir.path / "best.json").is_file():
        run_dir.load("best").load_weights(model)
        checkpoint_used = "best"
    report["holdout"] = backtest_report(model, prepared.data, prepared.task.config)
    report["holdout"]["checkpoint"] = checkpoint_used
    return report


@dataclass
class TrainedForecaster:
    """A trained model (eval mode, CPU) with what it needs to read a series: its data config, the saved
    transform, and the season of its baselines and MASE (and why that season)."""

    model: SequenceRegressor
    config: ForecastDataConfig
    transform: SeriesTransform
    season: int
    season_source: str


def from_checkpoint(checkpoint: Checkpoint) -> TrainedForecaster:
    """The trained forecaster of a loaded forecast checkpoint."""
    meta = checkpoint.meta
    model = checkpoint.load_weights(SequenceRegressor(**meta["configs"]["model"]))
    return TrainedForecaster(model.eval(), ForecastDataConfig(**meta["configs"]["data"]),
                             SeriesTransform.from_dict(meta["transform"]), int(meta["season"]),
                             f"{meta['season_source']}, as trained")


def series_for(trained: TrainedForecaster, data_path: str, backtest: bool = True) -> tuple[ForecastData, ForecastDataConfig]:
    """Another CSV with the run's columns, prepared for ``trained``: its saved transform and season, the CSV's
    own split by the run's fractions. ``backtest`` checks that the holdout has at least one origin."""
    config = replace(trained.config, data=data_path)
    data = load_data(config, trained.transform, (trained.season, trained.season_source), training=False)
    if backtest:
        check_holdout_length(data.split, config.window, config.horizon, data_path)
        # the MASE scale is the seasonal-naive error of its training part
        check_target_varies(data.series, data.split.train_end, data_path, "give a series in which it varies")
    return data, config


def evaluate(trained: TrainedForecaster, data: str) -> dict:
    """The backtest report (:func:`backtest_report`) of the trained model on the holdout of another CSV with the
    run's columns, split by the run's fractions: the report training ends with, on other data."""
    series, config = series_for(trained, data)
    return backtest_report(trained.model, series, config)


def predict(trained: TrainedForecaster, data: str, output: str | None = None) -> dict:
    """The ``--horizon`` values after the end of the series in the CSV ``data``:
    ``{"forecast": [{"date" (or "step"): ..., "forecast": value}, ...]}``; with ``output``, also written there as a
    CSV (``date,forecast``, or ``step,forecast`` without dates) with a PNG beside it (the same name, ``.png``):
    history, backtest, actuals and forecast; their paths are added as ``"csv"`` and ``"png"`` (None: ``output``
    is a device or a pipe, which takes the CSV alone)."""
    png = None
    if output is not None:
        if Path(output).suffix.lower() == ".png":
            raise InputError(f"--output {output} ends in .png, the name of the plot written beside the CSV; "
                             "give a .csv name")
        check_output(output, "--output", inputs=[data], create_parent=True, example="forecast.csv")
        # A device or a pipe (/dev/null, /dev/stdout, a FIFO) takes the CSV alone: "beside" it a plot would be a
        # new file among the devices (/dev/null.png).
        png = None if output_destination(output)[1] else Path(output).with_suffix(".png")
    if png is not None:
        check_output(png, "--output", inputs=[data], create_parent=True, example="forecast.csv")
        # f.csv a link to f.png (or the reverse): the plot would replace the forecast
        check_distinct_outputs((("--output", output), ("its plot", png)))
        require("matplotlib.figure", "viz")  # the plot beside the CSV: said before the work
    series, config = series_for(trained, data, backtest=False)
    future = forecast_future(trained.model, series, config)
    dates = future_dates(series.series.dates, config.horizon)
    key = "date" if dates is not None else "step"
    labels = dates if dates is not None else list(range(1, config.horizon + 1))
    result = {"forecast": [{key: label, "forecast": float(value)} for label, value in zip(labels, future)]}
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        if png is not None:
            _forecast_png(trained, series, config, dates, future, png, data)
        write_output(Path(output), _forecast_csv(key, labels, future))
        result.update(csv=str(output), png=None if png is None else str(png))
    return result


def _forecast_png(trained: TrainedForecaster, series: ForecastData, config: ForecastDataConfig,
                  dates: list[str] | None, future: np.ndarray, png: Path, data: str) -> None:
    """The plot of a forecast: the series, the backtest over its holdout (when it has origins), the future."""
    from .forecast_plot import forecast_png

    origins = window_origins(series.split.valid_end, series.split.length, config.window, config.horizon)
    result = backtest(trained.model, series, config) if len(origins) else None
    positions, future_positions = _positions(series.series.dates, dates, len(series.series), config.horizon)
    forecast_png(
        png, x=positions, actuals=series.series.target, holdout_start=series.split.valid_end,
        backtest_origins=result.origins if result else np.zeros(0, dtype=np.int64),
        backtest_forecasts=result.forecasts["model"] if result else np.zeros((0, config.horizon)),
        future_x=future_positions, future=future,
        title=f"{config.target}: {config.horizon}-step forecast ({Path(data).name})",
    )


def _positions(dates: list[str] | None, future: list[str] | None, length: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """x positions of the T steps and of the H future steps: dates when both parse, else step numbers."""
    parsed = None if dates is None or future is None else parse_dates(dates)
    if parsed is not None:
        return parsed, parse_dates(future)
    return np.arange(length), np.arange(length, length + horizon)


def _forecast_csv(key: str, labels: list, values: np.ndarray) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key, "forecast"])
    for label, value in zip(labels, values):
        writer.writerow([label, f"{float(value):.10g}"])
    return buffer.getvalue().encode()


EVALUATE = Operation(evaluate, """Backtest on the last --test-fraction of a series with the run's columns: MAE, RMSE
    and MASE of the model beside the naive and seasonal-naive forecasts, the report training ends with.""", (
    Option("data", File("CSV"), "The series: a CSV with the run's columns.", required="the series"),
))
PREDICT = Operation(predict, "The --horizon values after the end of a series; with --output, a CSV and its plot.", (
    Option("data", File("CSV"), "The series (the run's columns) to forecast from.", required="the series"),
    Option("output", File("PATH"), "Write the forecast to this CSV, and a PNG plot beside it (same name, .png). "
                                   "Default: write no file."),
))


SPEC = TaskSpec(
    name=NAME, noun="forecaster", data_config=ForecastDataConfig, prepare=prepare, from_checkpoint=from_checkpoint,
    model_options={**NETWORK_OPTIONS, **REGULARISER_OPTIONS},
    path_fields=("data",), changeable=frozenset({"data"}), derived_model_fields=("num_outputs", "input_size"),
    required={"data": "--data CSV (the series)", "target": "--target COL (the column to forecast)",
              "window": "--window N (past steps each forecast reads)"},
    default_epochs=60, finish=finish, evaluate=EVALUATE, predict=PREDICT,
)

# The trained model of a run directory: from_run(run_dir, which="auto") -> TrainedForecaster.
from_run = SPEC.from_run
