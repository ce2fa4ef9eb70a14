"""Keras-style fit / predict: the seeds' example runs and its loss falls, the three losses, one-to-one
regression, validation history, repeatability, NumPy in / NumPy out, and every bad input as one InputError line."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.models import History, SequenceClassifier, SequenceRegressor

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seeds_simple_rnn.py"


def binary_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return SequenceClassifier(1, input_size=1, hidden_size=8, cell="rnn", **kwargs)


def seeds_data(seed=0):
    generator = np.random.default_rng(seed)
    return generator.random((10, 5, 1)), generator.integers(0, 2, size=(10, 1))  # X (N, L, F), y (N, 1)


def test_seeds_example_runs_and_its_loss_falls(capsys):
    history, predictions = runpy.run_path(str(EXAMPLE))["main"]()
    losses = history.history["loss"]
    assert len(losses) == 20
    assert losses[-1] < losses[0]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(losses, losses[1:]))  # one full batch per epoch
    assert isinstance(predictions, np.ndarray) and predictions.shape == (10, 1)
    assert ((predictions > 0) & (predictions < 1)).all()
    printed = capsys.readouterr().out
    assert "loss per epoch" in printed and "predictions" in printed


def test_binary_classifier_fits_separable_sequences():
    X = np.linspace(0, 1, 40).reshape(40, 1, 1).repeat(3, axis=1)  # (N=40, L=3, F=1)
    y = (X[:, 0, 0] > 0.5).astype(int)  # (N,)
    model = binary_model()
    history = model.fit(X, y, epochs=60, lr=0.05, batch_size=8, seed=0)
    assert isinstance(history, History) and history.epoch == list(range(60))
    assert history.history["loss"][-1] < 0.2
    assert ((model.predict(X)[:, 0] > 0.5) == y.astype(bool)).mean() >= 0.95


def test_cross_entropy_on_token_ids_with_lengths():
    torch.manual_seed(0)
    # the class is the first token; the rest is noise and padding
    X = np.random.default_rng(0).integers(1, 4, size=(30, 6))  # (N, L) ids 1..3
    y = X[:, 0] - 1  # (N,) classes 0..2
    lengths = np.random.default_rng(1).integers(1, 7, size=30)  # (N,)
    model = SequenceClassifier(3, vocab_size=4, embedding_dim=6, hidden_size=8, bidirectional=True)
    history = model.fit(X, y, lengths=lengths, epochs=40, lr=0.05, loss="sparse_categorical_crossentropy", seed=0)
    assert history.history["loss"][-1] < 0.1
    probabilities = model.predict(X, lengths=lengths)  # (N, 3)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    assert (probabilities.argmax(1) == y).all()


def test_one_to_one_regression_hours_studied_to_score():
    """The seeds' one-to-one example: 10 hours studied → 95 points, each student a sequence of one step."""
    torch.manual_seed(0)
    hours = np.array([1.0, 3.0, 5.0, 8.0, 10.0]).reshape(5, 1, 1)  # (N, L=1, F=1)
    scores = np.array([40.0, 55.0, 70.0, 85.0, 95.0])  # (N,)
    model = SequenceRegressor(input_size=1, hidden_size=8, cell="rnn")
    model.fit(hours / 10, scores / 100, epochs=300, lr=0.05, loss="mse")
    assert abs(model.predict(np.array([[[1.0]]]))[0, 0] * 100 - 95) < 2


def test_validation_data_adds_val_loss_and_tensors_give_tensors():
    X, y = seeds_data()
    model = binary_model()
    history = model.fit(torch.tensor(X), torch.tensor(y), epochs=3, validation_data=(X[:4], y[:4]), seed=0)
    assert len(history.history["val_loss"]) == 3
    predictions = model.predict(torch.tensor(X))
    assert isinstance(predictions, torch.Tensor) and predictions.shape == (10, 1)


def test_same_seed_same_history_and_predict_keeps_the_mode():
    X, y = seeds_data()
    first = binary_model(dropout=0.0).fit(X, y, epochs=3, batch_size=4, seed=7).history["loss"]
    model = binary_model(dropout=0.0)
    assert model.fit(X, y, epochs=3, batch_size=4, seed=7).history["loss"] == first
    model.train()
    model.predict(X)
    assert model.training
    model.eval()
    model.predict(X)
    assert not model.training


X_GOOD, Y_GOOD = seeds_data()


@pytest.mark.parametrize("X, y, kwargs, message", [
    (X_GOOD[:, :, 0], Y_GOOD, {}, r"shape \(N, L, 1\)"),
    (X_GOOD[None], Y_GOOD, {}, r"shape \(N, L, 1\)"),
    (np.concatenate([X_GOOD, X_GOOD], axis=2), Y_GOOD, {}, r"shape \(N, L, 1\)"),
    (X_GOOD, Y_GOOD[:9], {}, "y has 9 rows but X has 10"),
    (np.where(np.arange(50).reshape(10, 5, 1) == 7, np.nan, X_GOOD), Y_GOOD, {}, "X holds NaN"),
    (X_GOOD, np.where(np.arange(10).reshape(10, 1) == 3, np.nan, Y_GOOD), {}, "y holds NaN"),
    (X_GOOD, Y_GOOD + 1, {}, "0/1 labels"),
    (X_GOOD, Y_GOOD.reshape(5, 2), {}, "y has 5 rows"),
    (np.array([["a"] * 5] * 10), Y_GOOD, {}, "real numbers"),
    ([[[0.1]] * 5, [[0.2]] * 3], [0, 1], {}, "ragged"),
    (X_GOOD, Y_GOOD, {"loss": "mse"}, "trains with loss='binary_crossentropy'"),
    (X_GOOD, Y_GOOD, {"loss": "hinge"}, "unknown loss"),
    (X_GOOD, Y_GOOD, {"epochs": 0}, "epochs"),
    (X_GOOD, Y_GOOD, {"lengths": np.full(10, 6)}, "lengths must lie in"),
    (X_GOOD, Y_GOOD, {"validation_data": (X_GOOD,)}, "validation_data"),
    (X_GOOD, Y_GOOD, {"validation_data": (X_GOOD[:, :, 0], Y_GOOD)}, "X_val must have shape"),
])
def test_bad_fit_inputs_are_one_input_error_line(X, y, kwargs, message):
    with pytest.raises(InputError, match=message) as caught:
        binary_model().fit(X, y, **kwargs)
    assert "\n" not in str(caught.value)


def test_bad_labels_and_ids_for_multiclass_and_token_models():
    model = SequenceClassifier(3, vocab_size=5, hidden_size=4)
    X = np.ones((4, 3), dtype=int)
    with pytest.raises(InputError, match=r"class ids outside \[0, 3\)"):
        model.fit(X, np.array([0, 1, 2, 3]))
    with pytest.raises(InputError, match="whole class ids"):
        model.fit(X, np.array([0, 1, 2, 1.5]))
    with pytest.raises(InputError, match=r"token ids outside \[0, 5\)"):
        model.fit(X * 5, np.array([0, 1, 2, 1]))
    with pytest.raises(InputError, match="integer token ids"):
        model.predict(X.astype(float))
    regressor = SequenceRegressor(2, input_size=1, hidden_size=4)
    with pytest.raises(InputError, match=r"shape \(4, 2\)"):
        regressor.fit(np.ones((4, 3, 1)), np.ones(4))
