r"""Point-forecast accuracy and the two baselines every forecast is compared with.

For forecasts :math:`\hat y_{i,h}` of actuals :math:`y_{i,h}` (origin i, step h = 1..H), over all n·H values:

    MAE  = mean |y - ŷ|
    RMSE = sqrt(mean (y - ŷ)^2)
    MASE = MAE / Q,   Q = (1 / (T - m)) Σ_{t=m+1..T} |y_t - y_{t-m}|      (Hyndman & Koehler 2006)

Q is the in-sample MAE of the one-step seasonal-naive forecast on the training part y_1..y_T (period m;
m = 1 is the naive forecast), so MASE < 1 means the forecasts beat that in-sample benchmark, and MASE is
comparable across series of different units.

Baselines from an origin whose last observed value is y_T (fpp3's notation, section 5.2):

    naive             ŷ_{T+h} = y_T                                  (the last value, repeated)
    seasonal naive    ŷ_{T+h} = y_{T+h-m(k+1)},  k = floor((h-1)/m)  (the same season of the last period)
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import InputError


def mae(forecasts: np.ndarray, actuals: np.ndarray) -> float:
    """Mean absolute error over every value of two same-shaped arrays."""
    return float(np.mean(np.abs(np.asarray(actuals) - np.asarray(forecasts))))


def rmse(forecasts: np.ndarray, actuals: np.ndarray) -> float:
    """Root mean squared error over every value of two same-shaped arrays."""
    return float(np.sqrt(np.mean((np.asarray(actuals) - np.asarray(forecasts)) ** 2)))


def mase_scale(train: np.ndarray, season: int) -> float:
    """Q: the in-sample MAE of the one-step seasonal-naive forecast (period ``season``) on ``train`` (T,)."""
    train = np.asarray(train, dtype=np.float64)
    if season < 1:
        raise InputError(f"--season must be >= 1, got {season}")
    if len(train) <= season:
        raise InputError(f"the training part has {len(train)} steps, too few for the seasonal-naive scale of MASE "
                         f"with --season {season} (needs more than {season}); lower --season or --test-fraction")
    scale = float(np.mean(np.abs(train[season:] - train[:-season])))
    if scale == 0:
        raise InputError(f"MASE is undefined: the training part repeats itself exactly every {season} steps "
                         "(the seasonal-naive forecast has no error to scale by); check the series or --season")
    return scale


def scores(forecasts: np.ndarray, actuals: np.ndarray, scale: float) -> dict[str, float]:
    """{"mae", "rmse", "mase"} of ``forecasts`` against ``actuals`` with the MASE scale ``scale`` (Q)."""
    error = mae(forecasts, actuals)
    return {"mae": error, "rmse": rmse(forecasts, actuals), "mase": error / scale}


def naive_forecast(history: np.ndarray, horizon: int) -> np.ndarray:
    """(H,) the last value of ``history`` repeated."""
    return np.full(horizon, float(np.asarray(history)[-1]))


def seasonal_naive_forecast(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(H,) ŷ_{T+h} = y_{T+h-m(k+1)}, k = floor((h-1)/m): the last observed period, repeated."""
    history = np.asarray(history, dtype=np.float64)
    if len(history) < season:
        raise InputError(f"the seasonal-naive forecast needs {season} past values (--season), got {len(history)}")
    h = np.arange(1, horizon + 1)  # (H,)
    back = h - season * ((h - 1) // season + 1)  # in [1 - m, 0]: offset from y_T
    return history[len(history) - 1 + back]


def baseline_forecasts(target: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> tuple[np.ndarray, np.ndarray]:
    """The naive and seasonal-naive forecasts (n, H) from each origin t, each using ``target[:t]`` only."""
    target = np.asarray(target, dtype=np.float64)
    naive = np.stack([naive_forecast(target[:t], horizon) for t in origins])  # (n, H)
    seasonal = np.stack([seasonal_naive_forecast(target[:t], horizon, season) for t in origins])  # (n, H)
    return naive, seasonal
