"""The seeds' stock example in rnnkit: 100 days of 4 prices in, the next day's close out, 30 windows a batch.

The seeds describe PyTorch's ``nn.RNN`` input with it: 4 features per day (open, close, high, low), a sequence
of 100 days, a batch of 30, so a batch is (30, 100, 4) with ``batch_first=True``. Here the prices are a random
walk (no download), the windows come from :mod:`rnnkit.data.series` (training statistics, chronological
split) and the network is a many-to-one :class:`rnnkit.models.SequenceRegressor`:

    prices (T, 4) → windows (n, 100, 4) → LSTM → last hidden state → linear → next close (n, 1)

A random walk's next step cannot be predicted, so the best forecast is about today's close (the naive
forecast); the example prints both errors on the last fifth of the days, which the model never saw.

    .venv/bin/python examples/seeds_stock.py     # .venv as `make test` sets it up (rnnkit installed)
"""

import numpy as np
import torch

from rnnkit.data.series import Series, SeriesTransform, chronological_split, sliding_windows, window_origins
from rnnkit.metrics.forecast import mae
from rnnkit.models import SequenceRegressor

COLUMNS = ["close", "open", "high", "low"]  # the target first: rnnkit's series keep it as feature 0
WINDOW, HORIZON, BATCH = 100, 1, 30


def random_walk_prices(days: int, seed: int = 0) -> np.ndarray:
    """(days, 4) close, open, high, low of a geometric random walk starting at 100."""
    generator = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(generator.normal(0, 0.01, days)))  # (T,)
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(generator.normal(0, 0.003, days))  # (T,)
    spread = np.abs(generator.normal(0, 0.005, (days, 2)))  # (T, 2)
    high = np.maximum(open_, close) * (1 + spread[:, 0])
    low = np.minimum(open_, close) * (1 - spread[:, 1])
    return np.stack([close, open_, high, low], axis=1)  # (T, 4)


def main(days: int = 600, epochs: int = 10, seed: int = 0):
    torch.manual_seed(seed)
    series = Series("random walk", COLUMNS, random_walk_prices(days, seed), None, list(range(2, days + 2)))
    split = chronological_split(days, test_fraction=0.2, valid_fraction=0.0)  # the last 20% is the holdout
    transform = SeriesTransform.fit(series, split.train_end, "standard", log=False, difference=False)
    encoded = transform.encode(series)  # (T, 4), scaled with the training days' mean and deviation

    X, y = sliding_windows(encoded, window_origins(0, split.train_end, WINDOW, HORIZON), WINDOW, HORIZON)
    model = SequenceRegressor(HORIZON, input_size=len(COLUMNS), hidden_size=32)  # nn.LSTM(4, 32) + Linear(32, 1)
    batch = torch.from_numpy(X[:BATCH]).float()
    print(f"one batch: {tuple(batch.shape)} (batch, days, features) → {tuple(model(batch).shape)} (batch, next close)")
    history = model.fit(X, y, epochs=epochs, batch_size=BATCH, lr=3e-3, seed=seed)

    test_origins = window_origins(split.valid_end, days, WINDOW, HORIZON)
    X_test, _ = sliding_windows(encoded, test_origins, WINDOW, HORIZON)
    forecasts = transform.decode(model.predict(X_test).astype(np.float64), X_test[:, -1, 0])  # (n, 1) prices
    actuals = series.target[test_origins][:, None]  # (n, 1)
    naive = series.target[test_origins - 1][:, None]  # (n, 1): today's close
    errors = {"model": mae(forecasts, actuals), "naive": mae(naive, actuals)}
    print("training loss per epoch:", " ".join(f"{loss:.4f}" for loss in history.history["loss"]))
    print(f"next-day close on the last {len(test_origins)} days: MAE model {errors['model']:.3f}, "
          f"naive (today's close) {errors['naive']:.3f}")
    return history, tuple(batch.shape), tuple(model(batch).shape), errors


if __name__ == "__main__":
    main()
