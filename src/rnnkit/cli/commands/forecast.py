"""``rnnkit train forecast``, and ``rnnkit evaluate`` / ``rnnkit predict`` of a forecast run.

    rnnkit train forecast --data CSV --target COL [--features COL,...] [--date-column COL] --window N
        [--horizon H] [--season M] [--test-fraction 0.2] [--valid-fraction 0.1] [--scale standard|none]
        [--log/--no-log] [--difference/--no-difference] [network and training flags] [--out DIR] [--json]
    rnnkit train forecast --resume DIR [--epochs N | --time-budget S]
    rnnkit evaluate DIR --data CSV [--checkpoint auto|best|latest] [--json]
    rnnkit predict DIR --data CSV [--output forecast.csv] [--checkpoint auto|best|latest] [--json]

``train`` ends with the holdout backtest of the best checkpoint (by validation MAE) beside the naive and
seasonal-naive baselines. ``evaluate`` prints the same report for the last --test-fraction of any CSV with the
run's columns (split by the run's fractions; the MASE scale comes from that CSV's own training part).
``predict`` writes the H values after the end of the series to a CSV (``date,forecast``, or ``step,forecast``
without dates) and a PNG beside it (same name, ``.png``): history, backtest, actuals and forecast.
"""

import csv
import io
from pathlib import Path

import click
import numpy as np

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import Finite, Positive, recurrent_options, regulariser_options, training_options
from rnnkit.cli.outputs import check_output
from rnnkit.cli.task_command import Applies, TaskCommand, lines, saved_line, show, stopped_line, train_command_of
from rnnkit.data.series import future_dates, parse_dates, window_origins
from rnnkit.errors import InputError
from rnnkit.files import write_atomic
from rnnkit.tasks import forecast
from rnnkit.tasks.forecast import SPEC, backtest, forecast_future, format_report, series_for


def evaluate(run_dir, checkpoint, options) -> None:
    """Backtest the run's model on the last --test-fraction of --data: the same report as training's."""
    trained = SPEC.from_run(run_dir, checkpoint=checkpoint)
    data_path = _data_flag(options, run_dir, "evaluate")
    show(forecast.evaluate(trained, data_path), options,
         lambda report: f"{data_path}, model {run_dir} ({checkpoint.path.name})\n{format_report(report)}")


def predict(run_dir, checkpoint, options) -> None:
    """Forecast the --horizon steps after the end of --data; write the CSV and its PNG; print both paths."""
    from rnnkit.tasks.forecast_plot import forecast_png

    data_path = _data_flag(options, run_dir, "predict")
    output = Path(options["output"] or "forecast.csv")
    if output.suffix.lower() == ".png":
        raise InputError(f"--output {output} ends in .png, the name of the plot written beside the CSV; "
                         "give a .csv name")
    for written in (output, output.with_suffix(".png")):
        check_output(written, "--output", inputs=[data_path], create_parent=True, example="forecast.csv")
    png = output.with_suffix(".png")

    trained = SPEC.from_run(run_dir, checkpoint=checkpoint)
    data, config = series_for(trained, data_path, backtest=False)
    model = trained.model
    future = forecast_future(model, data, config)
    dates = future_dates(data.series.dates, config.horizon)
    key = "date" if dates is not None else "step"
    labels = dates if dates is not None else list(range(1, config.horizon + 1))

    origins = window_origins(data.split.valid_end, data.split.length, config.window, config.horizon)
    result = backtest(model, data, config) if len(origins) else None
    positions, future_positions = _positions(data.series.dates, dates, len(data.series), config.horizon)
    output.parent.mkdir(parents=True, exist_ok=True)
    forecast_png(
        png, x=positions, actuals=data.series.target, holdout_start=data.split.valid_end,
        backtest_origins=result.origins if result else np.zeros(0, dtype=np.int64),
        backtest_forecasts=result.forecasts["model"] if result else np.zeros((0, config.horizon)),
        future_x=future_positions, future=future,
        title=f"{config.target}: {config.horizon}-step forecast ({Path(data_path).name})",
    )
    write_atomic(output, _forecast_csv(key, labels, future))
    if options["as_json"]:
        rows = [{key: label, "forecast": float(value)} for label, value in zip(labels, future)]
        click.echo(to_json({"forecast": rows, "csv": str(output), "png": str(png)}))
    else:
        click.echo(f"forecast of {config.horizon} steps after the end of {data_path}: {output}")
        click.echo(f"plot: {png}")


# ------------------------------------------------------------------------------------------- helpers


def _data_flag(options: dict, run_dir: str, command: str) -> str:
    if not options.get("data"):
        raise InputError(f"{run_dir} holds a forecaster: give the series with `rnnkit {command} {run_dir} --data CSV`")
    return options["data"]


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


def report(report: dict, run_path, settings) -> str:
    validation = None
    if "valid_mae" in report:
        validation = f"validation (last epoch): MAE {report['valid_mae']:.4g}, MASE {report['valid_mase']:.4f}"
    holdout = report["holdout"]
    return lines(stopped_line(report, None), validation,
                 f"{format_report(holdout)}\n  (checkpoint: {holdout['checkpoint']})",
                 saved_line(report, f"forecast with: rnnkit predict {{run}} --data {settings.data.data}"))


def _features(ctx, param, value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


COMMAND = TaskCommand(
    SPEC,
    help="""Train a forecaster: a window of past steps in, the next --horizon values of --target out.

    The last --test-fraction is held out and backtested by rolling origin at the end: MAE, RMSE and MASE of the
    model beside the naive and seasonal-naive forecasts on the same origins.
    """,
    options=(
        click.option("--data", metavar="CSV", help="The series: a CSV with a header row, one row per step, oldest first."),
        click.option("--target", metavar="COL", help="The column to forecast (always also an input feature)."),
        click.option("--features", metavar="COL,...", callback=_features,
                     help="Further input columns, comma-separated. Default: the target alone."),
        click.option("--date-column", metavar="COL",
                     help="A column of ISO dates: labels of the forecast, and its frequency suggests --season."),
        click.option("--window", type=int, metavar="N", help="Past steps each forecast reads."),
        click.option("--horizon", type=int, default=1, show_default=True, metavar="H",
                     help="Future steps each forecast gives (direct: all H at once)."),
        click.option("--season", type=Positive, metavar="M",
                     help="Period of the seasonal-naive baseline and of MASE. Default: from the dates (monthly 12, quarterly 4, "
                          "weekly 52, daily 7 (a week: give 365 for a yearly cycle), hourly 24), else 1 (no seasonality)."),
        click.option("--test-fraction", type=Finite, default=0.2, show_default=True,
                     help="The holdout: the last share of the series, never seen in training or model selection."),
        click.option("--valid-fraction", type=Finite, default=0.1, show_default=True,
                     help="Validation: the last share of what precedes the holdout; it picks the best checkpoint (0: none)."),
        click.option("--scale", type=click.Choice(["standard", "none"]), default="standard", show_default=True,
                     help="Standardise each column with the training part's mean and deviation."),
        click.option("--log/--no-log", default=False, show_default=True,
                     help="Model ln(target): for positive series whose trend or seasonal swing grows with the level."),
        click.option("--difference/--no-difference", default=False, show_default=True,
                     help="Read and predict the target relative to each window's last value (trending series)."),
        recurrent_options(hidden=32, layers=1),
        regulariser_options(embedding=False),
        training_options(lr=3e-3, epochs=SPEC.default_epochs, batch_size=32),
    ),
    report=report,
    evaluate=Applies(evaluate, ("data",)),
    predict=Applies(predict, ("data", "output")),
)
train_command = train_command_of(COMMAND)
