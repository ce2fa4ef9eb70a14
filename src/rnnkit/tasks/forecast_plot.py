"""The picture of a forecast: the history, the backtest over the holdout, the actuals and the future forecast.

One PNG drawn by matplotlib's Agg canvas on its own Figure: no display needed, and nothing touches pyplot's
global state (or the backend another module chose)::

    history      the whole series, thin grey; the holdout part of it (the actuals) in black
    backtest     the model's H-step forecasts from holdout origins H apart (paths that do not overlap), orange
    forecast     the H steps after the end of the series, dashed blue
    horizon      where the forecast starts (a dotted line at the last observation) and the span of its H steps,
                 shaded blue
    holdout      a shaded span from its first step to the end of the series

The x axis shows the dates when the series has regular ISO dates, else step numbers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rnnkit.extras import require
from rnnkit.files import write_output


def forecast_png(path: str | Path, *, x: np.ndarray, actuals: np.ndarray, holdout_start: int,
                 backtest_origins: np.ndarray, backtest_forecasts: np.ndarray, future_x: np.ndarray,
                 future: np.ndarray, title: str) -> None:
    """Write the plot to ``path`` atomically (an existing file is replaced only by a complete new one).

    Args:
        x: (T,) the positions of the steps: datetime64 dates or step numbers. actuals: (T,) the target.
        holdout_start: index of the holdout's first step.
        backtest_origins: (n,) origins of the backtest forecasts (n may be 0); backtest_forecasts: (n, H).
        future_x: (H,) positions of the future steps; future: (H,) the forecast.
    """
    figure = require("matplotlib.figure", "viz").Figure(figsize=(10, 4.5), dpi=100)
    require("matplotlib.backends.backend_agg", "viz").FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.axvspan(x[holdout_start], x[-1], color="0.93", label="holdout")
    axes.plot(x[:holdout_start + 1], actuals[:holdout_start + 1], color="0.55", linewidth=1, label="history")
    axes.plot(x[holdout_start:], actuals[holdout_start:], color="black", linewidth=1.2, label="actual")
    horizon = backtest_forecasts.shape[1] if backtest_forecasts.ndim == 2 else 0
    shown = backtest_origins[::max(horizon, 1)]
    for index, origin in enumerate(shown):
        row = int(np.flatnonzero(backtest_origins == origin)[0])
        axes.plot(x[origin:origin + horizon], backtest_forecasts[row], color="tab:orange", linewidth=1.4,
                  marker="." if horizon == 1 else None, label="backtest forecast" if index == 0 else None)
    # Where the forecast starts and how far it reaches: a line at the last observation, the horizon shaded.
    axes.axvspan(x[-1], future_x[-1], color="tab:blue", alpha=0.08, label=f"forecast horizon ({len(future)} steps)")
    axes.axvline(x[-1], color="tab:blue", linewidth=0.9, linestyle=":", label="forecast starts")
    # Join the future forecast to the last observation so that the line continues the series.
    axes.plot(np.concatenate([x[-1:], future_x]), np.concatenate([actuals[-1:], future]), color="tab:blue",
              linestyle="--", linewidth=1.6, label="forecast")
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")  # inside the axes, where it covers the fewest points
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_output(Path(path), buffer.getvalue())
