"""MAE, RMSE, MASE and the naive / seasonal-naive baselines against values computed by hand."""

import numpy as np
import pytest

from rnnkit.errors import InputError
from rnnkit.metrics.forecast import baseline_forecasts, mae, mase_scale, naive_forecast, rmse, scores
from rnnkit.metrics.forecast import seasonal_naive_forecast


def test_mae_and_rmse_by_hand():
    forecasts = np.array([[1.0, 2.0], [3.0, 4.0]])
    actuals = np.array([[2.0, 2.0], [0.0, 4.0]])  # errors 1, 0, 3, 0
    assert mae(forecasts, actuals) == pytest.approx(1.0)
    assert rmse(forecasts, actuals) == pytest.approx(np.sqrt(10 / 4))


def test_mase_scale_is_the_in_sample_seasonal_naive_mae():
    train = np.array([1.0, 3.0, 2.0, 5.0])
    assert mase_scale(train, 1) == pytest.approx((2 + 1 + 3) / 3)  # |3-1|, |2-3|, |5-2|
    assert mase_scale(train, 2) == pytest.approx((1 + 2) / 2)  # |2-1|, |5-3|
    assert mase_scale(train, 3) == pytest.approx(4.0)  # |5-1|


def test_mase_scale_refuses_too_short_or_exactly_periodic_training_parts():
    with pytest.raises(InputError, match=r"the training part has 4 steps, too few .* --season 4"):
        mase_scale(np.arange(4.0), 4)
    with pytest.raises(InputError, match="MASE is undefined"):
        mase_scale(np.array([1.0, 2.0, 1.0, 2.0, 1.0]), 2)


def test_scores_divide_the_mae_by_the_scale():
    result = scores(np.array([[1.0, 1.0]]), np.array([[2.0, 4.0]]), scale=2.0)
    assert result == pytest.approx({"mae": 2.0, "rmse": np.sqrt(5.0), "mase": 1.0})


def test_naive_repeats_the_last_value():
    np.testing.assert_array_equal(naive_forecast(np.array([4.0, 7.0, 5.0]), 3), [5, 5, 5])


def test_seasonal_naive_repeats_the_last_period():
    history = np.arange(1.0, 9.0)  # y_1..y_8 = 1..8, y_T = 8
    # m = 3: the last period is y_6, y_7, y_8 = 6, 7, 8, repeated: ŷ_9..ŷ_13 = 6, 7, 8, 6, 7
    np.testing.assert_array_equal(seasonal_naive_forecast(history, 5, 3), [6, 7, 8, 6, 7])
    np.testing.assert_array_equal(seasonal_naive_forecast(history, 2, 1), [8, 8])  # m = 1 is the naive forecast
    with pytest.raises(InputError, match="needs 12 past values"):
        seasonal_naive_forecast(history, 2, 12)


def test_baselines_from_each_origin_use_only_the_past():
    target = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    naive, seasonal = baseline_forecasts(target, np.array([4, 5]), horizon=2, season=2)
    np.testing.assert_array_equal(naive, [[40, 40], [50, 50]])
    np.testing.assert_array_equal(seasonal, [[30, 40], [40, 50]])


def test_mase_of_a_rolling_origin_backtest_by_hand():
    train = np.array([1.0, 2.0, 4.0, 3.0, 5.0])  # naive in-sample errors 1, 2, 1, 2: scale 1.5
    series = np.concatenate([train, [6.0, 4.0, 7.0]])
    origins = np.array([5, 6])  # one-step forecasts of 6 and 4 (then 7: H = 2 → origins 5, 6)
    naive, _ = baseline_forecasts(series, origins, horizon=2, season=1)
    actuals = np.array([[6.0, 4.0], [4.0, 7.0]])
    # naive: from 5 → 5, 5 (errors 1, 1); from 6 → 6, 6 (errors 2, 1): MAE 5/4, MASE (5/4)/1.5
    result = scores(naive, actuals, mase_scale(train, 1))
    assert result["mae"] == pytest.approx(1.25) and result["mase"] == pytest.approx(1.25 / 1.5)
