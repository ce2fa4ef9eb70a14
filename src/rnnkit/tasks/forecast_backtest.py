r"""What a trained forecaster is judged by and what it forecasts: the rolling-origin backtest over a holdout
beside the naive and seasonal-naive baselines, and the forecast after the end of a series.

Backtest (rolling origin): every origin t in the holdout with all H targets in it forecasts from the N values
before it, which may lie before the holdout; MAE, RMSE and MASE (:mod:`rnnkit.metrics.forecast`) run over all
these n × H forecasts, for the model and for both baselines on exactly the same origins (:func:`backtest_report`,
the report training ends with and ``rnnkit evaluate`` gives). MASE scales by the in-sample seasonal-naive MAE of
the training part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from rnnkit.data.series import SeriesTransform, sliding_windows, window_origins
from rnnkit.errors import InputError
from rnnkit.metrics import forecast as metrics

if TYPE_CHECKING:
    from .forecast import ForecastData, ForecastDataConfig

METHODS = ("model", "naive", "seasonal_naive")


@torch.no_grad()
def predict_windows(model: torch.nn.Module, inputs: torch.Tensor, last: np.ndarray, transform: SeriesTransform,
                    batch_size: int = 256) -> np.ndarray:
    """(n, H) forecasts in target units for network inputs (n, N, F) with their windows' last targets (n,)."""
    device = next(model.parameters()).device
    outputs = [model(chunk.to(device)).cpu() for chunk in inputs.split(batch_size)]  # [(b, H)]
    return transform.decode(torch.cat(outputs).double().numpy(), last)


@dataclass
class Backtest:
    """Rolling-origin forecasts over the holdout: origins (n,), and (n, H) arrays in target units."""

    origins: np.ndarray
    actuals: np.ndarray
    forecasts: dict[str, np.ndarray]


def backtest(model: torch.nn.Module, data: ForecastData, config: ForecastDataConfig) -> Backtest:
    """The model's and both baselines' forecasts from every holdout origin (inputs may precede the holdout)."""
    window, horizon = config.window, config.horizon
    origins = window_origins(data.split.valid_end, data.split.length, window, horizon)
    inputs, _, last = data.windows(origins, window, horizon)
    actuals = sliding_windows(data.series.values, origins, window, horizon)[1]  # (n, H)
    naive, seasonal = metrics.baseline_forecasts(data.series.target, origins, horizon, data.season)
    model_forecasts = predict_windows(model, inputs, last, data.transform, config.batch_size)
    return Backtest(origins, actuals, {"model": model_forecasts, "naive": naive, "seasonal_naive": seasonal})


def backtest_report(model: torch.nn.Module, data: ForecastData, config: ForecastDataConfig) -> dict:
    """MAE, RMSE and MASE of the model and both baselines on the same holdout origins, and what they were:
    ``{"model": {...}, "naive": {...}, "seasonal_naive": {...}, "origins", "horizon", "season", ...}``."""
    result = backtest(model, data, config)
    split = data.split
    scale = metrics.mase_scale(data.series.target[:split.train_end], data.season)
    report = {method: metrics.scores(result.forecasts[method], result.actuals, scale) for method in METHODS}
    report.update(origins=len(result.origins), horizon=config.horizon, window=config.window, season=data.season,
                  season_source=data.season_source, holdout_steps=split.test_steps, series_steps=split.length,
                  mase_scale=scale, data=config.data)
    return report


@torch.no_grad()
def forecast_future(model: torch.nn.Module, data: ForecastData, config: ForecastDataConfig) -> np.ndarray:
    """(H,) the target values after the end of the series, forecast from its last N steps."""
    length = data.split.length
    if length < config.window:
        raise InputError(f"{config.data} has {length} steps, fewer than the model's --window {config.window}; "
                         "give at least that many")
    inputs, _, last = data.windows(np.array([length]), config.window, 0)
    return predict_windows(model, inputs, last, data.transform)[0]


def format_report(report: dict) -> str:
    """The backtest as a short table: one line per method with MAE, RMSE and MASE."""
    lines = [f"holdout: the last {report['holdout_steps']:,} of {report['series_steps']:,} steps, "
             f"{report['origins']:,} origins × {report['horizon']} steps ahead; "
             f"MASE scale {report['mase_scale']:.4g} (season {report['season']}: {report['season_source']})",
             f"  {'':<16}{'MAE':>12}{'RMSE':>12}{'MASE':>10}"]
    for method in METHODS:
        row = report[method]
        lines.append(f"  {method.replace('_', ' '):<16}{row['mae']:>12.4g}{row['rmse']:>12.4g}{row['mase']:>10.4f}")
    return "\n".join(lines)
