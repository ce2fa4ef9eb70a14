"""``rnnkit train forecast``, and how ``rnnkit evaluate`` / ``rnnkit predict`` on a forecast run print.

    rnnkit train forecast --data CSV --target COL [--features COL,...] [--date-column COL] --window N
        [--horizon H] [--season M] [--test-fraction 0.2] [--valid-fraction 0.1] [--scale standard|none]
        [--log/--no-log] [--difference/--no-difference] [network and training flags] [--out DIR] [--json]
    rnnkit train forecast --resume DIR [--epochs N | --time-budget S]
    rnnkit evaluate RUN --data CSV [--checkpoint auto|best|latest] [--json]
    rnnkit predict RUN --data CSV [--output forecast.csv] [--checkpoint auto|best|latest] [--json]

``train`` ends with the holdout backtest of the best checkpoint (by validation MAE) beside the naive and
seasonal-naive baselines. ``evaluate`` prints the same report for the last --test-fraction of any CSV with the
run's columns (split by the run's fractions; the MASE scale comes from that CSV's own training part).
``predict`` prints the H values after the end of the series; with --output it writes them to a CSV (``date,forecast``,
or ``step,forecast`` without dates) and a PNG beside it (same name, ``.png``): history, backtest, actuals, forecast.
"""

import click

from rnnkit.cli.options import Finite, Positive, recurrent_options, regulariser_options, training_options
from rnnkit.cli.task_command import TaskCommand, lines, saved_line, stopped_line, train_command_of
from rnnkit.tasks.forecast import SPEC
from rnnkit.tasks.forecast_backtest import format_report


def backtest(report: dict, options: dict, run) -> str:
    """``rnnkit evaluate``: the backtest table of the series."""
    return f"{options['data']}, model {run.path} ({run.checkpoint.path.name})\n{format_report(report)}"


def forecast(result: dict, options: dict, run) -> str:
    """``rnnkit predict``: where the CSV and the plot were written, or the forecast itself."""
    if "csv" in result:
        plot = f"\nplot: {result['png']}" if result["png"] else ""  # none beside a device or a pipe
        return f"forecast of {len(result['forecast'])} steps after the end of {options['data']}: {result['csv']}{plot}"
    return "\n".join(f"{next(iter(row.values()))}\t{row['forecast']:.6g}" for row in result["forecast"])


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
    text={"evaluate": backtest, "predict": forecast},
)
train_command = train_command_of(COMMAND)
