"""Series from CSV: reading (every bad cell as one file:line error), dates and their frequency, chronological
splits and sliding windows with exact indices, the transforms, and the seeds' stock example."""

import runpy
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.series import SeriesTransform, Split, check_date_order, check_training_lengths, chronological_split
from rnnkit.data.series import future_dates, infer_frequency, read_series, sliding_windows, window_origins
from rnnkit.errors import InputError

STOCK_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seeds_stock.py"


def write(tmp_path, text, name="series.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


# ------------------------------------------------------------------------------------------- reading


def test_read_quoted_crlf_csv_with_target_first(tmp_path):
    path = write(tmp_path, '"Month","a","Passengers"\r\n"1949-01",1.5,112\r\n"1949-02",2.5,118\r\n"1949-03",-3e1,132')
    series = read_series(path, "Passengers", ["a", "Passengers"], "Month")
    assert series.columns == ["Passengers", "a"]
    np.testing.assert_array_equal(series.values, [[112, 1.5], [118, 2.5], [132, -30]])
    assert series.dates == ["1949-01", "1949-02", "1949-03"]
    assert series.lines == [2, 3, 4] and len(series) == 3
    np.testing.assert_array_equal(series.target, [112, 118, 132])


def test_trailing_blank_lines_are_ignored(tmp_path):
    series = read_series(write(tmp_path, "y\n1\n2\n\n\n"), "y")
    assert series.values.shape == (2, 1) and series.dates is None


@pytest.mark.parametrize("body, words", [
    ("y,x\n1,2\n,3\n", ["series.csv:3", "'y'", "empty"]),
    ("y,x\n1,2\nNaN,3\n", ["series.csv:3", "'y'", "NaN"]),
    ("y,x\n1,2\n3,abc\n", ["series.csv:3", "'x'", "'abc'", "not a number"]),
    ("y,x\n1,2\n3,inf\n", ["series.csv:3", "'x'", "inf"]),
    ("y,x\n1,2\n\n3,4\n", ["series.csv:3", "blank line"]),
    ("y,x\n1,2\n3\n", ["series.csv:3", "1 fields", "header has 2"]),
    ("", ["series.csv", "empty"]),
    ("y,x\n", ["no rows"]),
])
def test_bad_cells_name_file_line_and_column(tmp_path, body, words):
    with pytest.raises(InputError) as error:
        read_series(write(tmp_path, body), "y", ["x"])
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_missing_file_and_missing_columns(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_series(tmp_path / "absent.csv", "y")
    path = write(tmp_path, "Month,y\n2000-01,1\n")
    with pytest.raises(InputError, match=r"no column 'sales' \(--target\); the columns are: Month, y"):
        read_series(path, "sales")
    with pytest.raises(InputError, match=r"no column 'z' \(--features\); the columns are: Month, y"):
        read_series(path, "y", ["z"])
    with pytest.raises(InputError, match=r"no column 'Date' \(--date-column\)"):
        read_series(path, "y", date_column="Date")


def test_dates_out_of_order_are_refused(tmp_path):
    series = read_series(write(tmp_path, "d,y\n2000-01-01,1\n2000-01-03,2\n2000-01-02,3\n"), "y", date_column="d")
    with pytest.raises(InputError, match=r"series.csv:4: date 2000-01-02 does not come after 2000-01-03; sort"):
        check_date_order(series)


# ------------------------------------------------------------------------------------------- dates


@pytest.mark.parametrize("dates, name, season", [
    (["1949-01", "1949-02", "1949-03"], "monthly", 12),
    (["1981-01-01", "1981-01-02", "1981-01-03"], "daily", 7),
    (["2000-01-01", "2000-04-01", "2000-07-01", "2000-10-01"], "quarterly", 4),
    (["2000-01-03", "2000-01-10", "2000-01-17"], "weekly", 52),
    (["2000-01-01T00:00", "2000-01-01T01:00", "2000-01-01T02:00"], "hourly", 24),
])
def test_frequency_and_its_season(dates, name, season):
    frequency = infer_frequency(dates)
    assert (frequency.name, frequency.season) == (name, season)


def test_no_frequency_without_regular_iso_dates():
    assert infer_frequency(None) is None
    assert infer_frequency(["Jan 49", "Feb 49"]) is None
    assert infer_frequency(["2000-01-01", "2000-01-04", "2000-01-07"]) is None  # every 3 days: no named frequency


def test_future_dates_continue_at_the_same_precision():
    assert future_dates(["1960-11", "1960-12"], 3) == ["1961-01", "1961-02", "1961-03"]
    assert future_dates(["1990-12-30", "1990-12-31"], 2) == ["1991-01-01", "1991-01-02"]
    assert future_dates(["a", "b"], 2) is None


# ------------------------------------------------------------------------------------------- splits, windows


def test_chronological_split_exact_boundaries():
    assert chronological_split(20, 0.2, 0.25) == Split(12, 16, 20)  # holdout 4, validation 4 of the other 16
    assert chronological_split(144, 0.2, 0.1) == Split(103, 115, 144)  # 28.8 → 29, 11.5 → 12 (half up)
    assert chronological_split(10, 0.3, 0.0) == Split(7, 7, 10)
    with pytest.raises(InputError, match="--test-fraction"):
        chronological_split(10, 0.0, 0.1)
    with pytest.raises(InputError, match="--valid-fraction"):
        chronological_split(10, 0.2, 1.0)


def test_windows_of_a_tiny_series_exact_indices():
    values = np.stack([np.arange(10.0), 100 + np.arange(10.0)], axis=1)  # (T=10, F=2): value = its index
    split = chronological_split(10, 0.2, 0.25)  # train [0, 6), validation [6, 8), holdout [8, 10)
    assert split == Split(6, 8, 10)
    assert window_origins(0, split.train_end, 3, 2).tolist() == [3, 4]  # targets [3, 5) and [4, 6)
    assert window_origins(split.train_end, split.valid_end, 3, 2).tolist() == [6]
    assert window_origins(split.valid_end, 10, 3, 2).tolist() == [8]  # inputs [5, 8) reach back before it
    assert window_origins(split.valid_end, 10, 3, 1).tolist() == [8, 9]
    inputs, targets = sliding_windows(values, np.array([3, 4]), 3, 2)
    assert inputs.shape == (2, 3, 2) and targets.shape == (2, 2)
    np.testing.assert_array_equal(inputs[:, :, 0], [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(inputs[:, :, 1], [[100, 101, 102], [101, 102, 103]])
    np.testing.assert_array_equal(targets, [[3, 4], [4, 5]])
    future, none = sliding_windows(values, np.array([10]), 3, 0)  # the window after the end of the series
    np.testing.assert_array_equal(future[0, :, 0], [7, 8, 9])
    assert none.shape == (1, 0)


def test_lengths_too_short_say_the_lengths_and_the_fix():
    with pytest.raises(InputError, match=r"the series has 10 steps, too few for --window 9 \+ --horizon 2 = 11; lower"):
        check_training_lengths(chronological_split(10, 0.2, 0.25), 9, 2, "s.csv")
    with pytest.raises(InputError, match=r"the training part has 6 of the 10 steps .*--window 5 \+ --horizon 2 = 7"):
        check_training_lengths(chronological_split(10, 0.2, 0.25), 5, 2, "s.csv")
    with pytest.raises(InputError, match=r"the validation part has 2 steps, fewer than --horizon 3"):
        check_training_lengths(chronological_split(20, 0.2, 0.125), 3, 3, "s.csv")
    with pytest.raises(InputError, match=r"the holdout \(the last 2 of 20 steps\) is shorter than --horizon 3"):
        check_training_lengths(chronological_split(20, 0.1, 0.0), 3, 3, "s.csv")
    check_training_lengths(chronological_split(10, 0.2, 0.25), 3, 2, "s.csv")


# ------------------------------------------------------------------------------------------- transforms


def test_standard_scaling_uses_the_training_part_only(tmp_path):
    series = read_series(write(tmp_path, "y,x\n1,5\n3,5\n100,7\n"), "y", ["x"])
    transform = SeriesTransform.fit(series, 2, "standard", log=False, difference=False)
    assert transform.mean == [2.0, 5.0] and transform.std == [1.0, 1.0]  # x is constant there: std 1, not 0
    np.testing.assert_allclose(transform.encode(series), [[-1, 0], [1, 0], [98, 2]])
    assert SeriesTransform.from_dict(transform.to_dict()) == transform
    unscaled = SeriesTransform.fit(series, 2, "none", log=False, difference=False)
    np.testing.assert_array_equal(unscaled.encode(series), series.values)


def test_log_and_difference_round_trip(tmp_path):
    series = read_series(write(tmp_path, "y\n" + "\n".join(str(v) for v in [1, 2, 4, 8, 16, 32])), "y")
    transform = SeriesTransform.fit(series, 4, "standard", log=True, difference=True)
    encoded = transform.encode(series)  # (6, 1)
    windows, targets = sliding_windows(encoded, np.array([3]), 3, 2)
    inputs, last = transform.window_inputs(windows)
    assert inputs[0, -1, 0] == 0  # relative to the window's last value
    np.testing.assert_allclose(inputs[0, :, 0], encoded[:3, 0] - encoded[2, 0])
    outputs = transform.window_targets(targets, last)
    np.testing.assert_allclose(transform.decode(outputs, last), [[8, 16]])  # back in the series' units
    np.testing.assert_allclose(transform.decode(np.zeros((1, 2)), last), [[4, 4]])  # output 0 = the naive forecast


def test_log_needs_positive_values(tmp_path):
    series = read_series(write(tmp_path, "y\n1\n0\n2\n"), "y")
    with pytest.raises(InputError, match=r"series.csv:3: --log needs positive values of 'y', found 0; drop --log"):
        SeriesTransform.fit(series, 2, "standard", log=True, difference=False)


# ------------------------------------------------------------------------------------------- seeds' example


def test_seeds_stock_example_shapes_and_falling_loss(capsys):
    history, batch_shape, output_shape, errors = runpy.run_path(str(STOCK_EXAMPLE))["main"](days=260, epochs=3)
    assert batch_shape == (30, 100, 4) and output_shape == (30, 1)
    losses = history.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert errors["model"] > 0 and errors["naive"] > 0
    assert "(30, 100, 4)" in capsys.readouterr().out
