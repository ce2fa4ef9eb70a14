r"""Keras-style ``model.fit(X, y, epochs=20)`` / ``model.predict(X)`` for in-memory arrays.

The seeds' first example, Keras on the left and rnnkit on the right::

    Sequential([SimpleRNN(8, activation="tanh",       SequenceClassifier(1, input_size=1, hidden_size=8,
                          input_shape=(5, 1)),                           cell="rnn")
                Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam",                   (optimizer and loss are arguments of fit)
                  loss="binary_crossentropy")
    model.fit(X, y, epochs=20)                        history = model.fit(X, y, epochs=20,
                                                                          loss="binary_crossentropy")
    model.predict(X)                                  model.predict(X)

Training runs on the shared :class:`~rnnkit.train.Trainer` through
:class:`~rnnkit.models.array_training.ArrayTask`, with the loss averaged over the samples of each mini-batch:

    binary_crossentropy   -[y log σ(z) + (1 - y) log(1 - σ(z))]      one sigmoid output, y in [0, 1]
    cross_entropy         -log softmax(z)_y                          C ≥ 2 outputs, y in {0, .., C-1}
    mse                   (1/K) Σ_k (z_k - y_k)^2                    K real outputs

(``sparse_categorical_crossentropy`` and ``mean_squared_error``, Keras's names, are accepted too.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .array_training import ArrayTask, fit_task
from .recurrent_encoder import check_lengths, check_whole_number

LOSS_NAMES = {
    "binary_crossentropy": "binary_crossentropy",
    "cross_entropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "mse": "mse",
    "mean_squared_error": "mse",
}


@dataclass
class History:
    """What :meth:`FitPredict.fit` returns, as Keras's ``History``: one value per epoch under ``"loss"``
    (the mean training loss per sample) and, with validation data, ``"val_loss"``."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)


class FitPredict:
    """Adds ``fit`` and ``predict`` on arrays to a many-to-one model.

    The model provides ``num_outputs``, ``vocab_size`` (token-id input) or ``input_size`` (feature
    input), ``default_loss()`` (the loss name its output layer is made for) and ``output_activation(z)``
    (what ``predict`` applies to the outputs: sigmoid, softmax or nothing).
    """

    def fit(self, X, y, *, epochs: int = 1, batch_size: int = 32, loss: str | None = None,
            optimizer: str = "adam", lr: float = 1e-3, lengths=None, validation_data: tuple | None = None,
            shuffle: bool = True, clip: float | None = None, seed: int | None = None,
            verbose: int = 0) -> History:
        """Train on in-memory data; returns a :class:`History` of per-epoch losses.

        Args:
            X: NumPy array or tensor: (N, L) token ids for a model with ``vocab_size``, (N, L, F) floats
                for a model with ``input_size``. Pad variable-length rows and give ``lengths``.
            y: (N,) or (N, 1) labels (0/1 for binary_crossentropy, class ids for cross_entropy) or
                (N, K) real targets (mse).
            epochs: passes over the data. Default 1, as Keras.
            batch_size: samples per optimizer step. Default 32, as Keras.
            loss: ``"binary_crossentropy"``, ``"cross_entropy"`` or ``"mse"``; None picks the model's own
                (binary for one output, cross-entropy for C ≥ 2 classes, MSE for a regressor).
            optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``. lr: the learning rate. Default 1e-3, as Keras's Adam.
            lengths: (N,) real lengths of the rows of X, or None when no row is padded.
            validation_data: ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``; adds ``"val_loss"``.
            shuffle: read the samples in a new order each epoch. clip: maximum gradient norm (None: none).
            seed: fixes the order of the samples (None: drawn from torch's generator).
            verbose: 1 prints one line per epoch; 0 (default) is silent.
        """
        name = self._loss_name(loss)
        check_whole_number("epochs", epochs)
        check_whole_number("batch_size", batch_size)
        inputs, targets, row_lengths = self._prepare(X, y, lengths, name, "X", "y")
        valid = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise InputError("validation_data must be (X_val, y_val) or (X_val, y_val, lengths_val)")
            valid = self._prepare(*validation_data[:2], validation_data[2] if len(validation_data) == 3 else None,
                                  name, "X_val", "y_val")
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()))
        task = ArrayTask(name, inputs, targets, row_lengths, batch_size, shuffle, seed, valid)
        records = fit_task(self, task, epochs=epochs, lr=lr, optimizer=optimizer, clip=clip, seed=seed,
                           log=print if verbose else None)
        history = History(history={"loss": [record["train_loss"] for record in records]},
                          epoch=list(range(len(records))))
        if valid is not None:
            history.history["val_loss"] = [record["valid_loss"] for record in records]
        return history

    @torch.no_grad()
    def predict(self, X, *, lengths=None, batch_size: int = 256):
        """Probabilities (classifier) or values (regressor) for X, (N, num_outputs).

        Returns a NumPy array for NumPy (or list) input, a tensor for tensor input. Runs in evaluation
        mode (no dropout) and restores the model's mode afterwards.
        """
        check_whole_number("batch_size", batch_size)
        inputs = self._check_inputs(_as_tensor("X", X))
        row_lengths = self._check_row_lengths(lengths, inputs)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            parts = []
            for start in range(0, inputs.size(0), batch_size):
                chunk = inputs[start:start + batch_size].to(device)
                chunk_lengths = None if row_lengths is None else row_lengths[start:start + batch_size]
                parts.append(self.output_activation(self(chunk, chunk_lengths)))  # (n, K)
        finally:
            self.train(was_training)
        predictions = torch.cat(parts)  # (N, K)
        return predictions if isinstance(X, Tensor) else predictions.cpu().numpy()

    # --- checks: every user mistake becomes one InputError line -----------------------------------

    def _loss_name(self, loss: str | None) -> str:
        natural = self.default_loss()
        if loss is None:
            return natural
        if loss not in LOSS_NAMES:
            raise InputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSS_NAMES)}")
        if LOSS_NAMES[loss] != natural:
            raise InputError(
                f"{type(self).__name__} with {self.num_outputs} output(s) trains with loss={natural!r}, not {loss!r}; "
                f"pass loss={natural!r} or build the model for {loss!r}"
            )
        return LOSS_NAMES[loss]

    def _prepare(self, X, y, lengths, loss: str, x_name: str, y_name: str) -> tuple[Tensor, Tensor, Tensor | None]:
        inputs = self._check_inputs(_as_tensor(x_name, X), x_name)
        targets = _check_targets(_as_tensor(y_name, y), loss, self.num_outputs, inputs.size(0), x_name, y_name)
        if targets.is_floating_point():
            targets = targets.to(next(self.parameters()).dtype)  # a float64 model compares float64 targets
        return inputs, targets, self._check_row_lengths(lengths, inputs)

    def _check_inputs(self, inputs: Tensor, name: str = "X") -> Tensor:
        if inputs.dim() == 0 or inputs.size(0) == 0:
            raise InputError(f"{name} holds no samples; give at least one sequence")
        if self.vocab_size is not None:
            if inputs.dim() != 2 or inputs.is_floating_point():
                raise InputError(f"{name} must be (N, L) integer token ids for this model, got {inputs.dtype} "
                                 f"of shape {tuple(inputs.shape)}")
            if int(inputs.min()) < 0 or int(inputs.max()) >= self.vocab_size:
                raise InputError(f"{name} holds token ids outside [0, {self.vocab_size}); encode it with the "
                                 f"model's vocabulary")
            return inputs.long()
        if inputs.dim() != 3 or inputs.size(2) != self.input_size:
            raise InputError(f"{name} must have shape (N, L, {self.input_size}) (samples, steps, features), got "
                             f"{tuple(inputs.shape)}; one feature per step is {name}.reshape(N, L, 1)")
        inputs = inputs.float() if not inputs.is_floating_point() else inputs
        _check_finite(inputs, name)
        return inputs

    def _check_row_lengths(self, lengths, inputs: Tensor) -> Tensor | None:
        if lengths is None:
            return None
        lengths = _as_tensor("lengths", lengths)
        check_lengths(lengths, inputs.size(0), inputs.size(1))
        return lengths.long()


def _as_tensor(name: str, value) -> Tensor:
    """A tensor of a NumPy array, a (nested) list or a tensor; InputError for ragged or non-numeric data."""
    if isinstance(value, Tensor):
        return value.detach()
    try:
        array = np.asarray(value)
    except ValueError:
        raise InputError(f"{name} is ragged (rows of different lengths); pad it to a rectangle and pass lengths=")
    if array.dtype == object:
        raise InputError(f"{name} is ragged or holds non-numbers; give a rectangular numeric array")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise InputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array))


def _check_finite(values: Tensor, name: str) -> None:
    if values.is_floating_point() and not torch.isfinite(values).all():
        bad = (~torch.isfinite(values)).nonzero()[0].tolist()
        raise InputError(f"{name} holds NaN or infinity (first at index {tuple(bad)}); clean or impute it first")


def _check_targets(y: Tensor, loss: str, num_outputs: int, samples: int, x_name: str, y_name: str) -> Tensor:
    """y as the loss wants it: (N, 1) floats for binary, (N,) class ids for cross-entropy, (N, K) for MSE."""
    if y.dim() == 0 or y.size(0) != samples:
        rows = 0 if y.dim() == 0 else y.size(0)
        raise InputError(f"{y_name} has {rows} rows but {x_name} has {samples}; give one target per sequence")
    _check_finite(y, y_name)
    if loss == "mse":
        expected = (samples,) if num_outputs == 1 and y.dim() == 1 else (samples, num_outputs)
        if tuple(y.shape) != expected:
            raise InputError(f"{y_name} must have shape ({samples}, {num_outputs}) for {num_outputs} outputs, "
                             f"got {tuple(y.shape)}")
        return y.float().reshape(samples, num_outputs)
    if y.dim() > 2 or (y.dim() == 2 and y.size(1) != 1):
        raise InputError(f"{y_name} must hold one label per sequence, shape ({samples},) or ({samples}, 1); "
                         f"got {tuple(y.shape)}")
    y = y.reshape(samples)
    if loss == "binary_crossentropy":
        if int((y < 0).sum()) or int((y > 1).sum()):
            raise InputError(f"{y_name} must hold 0/1 labels (or probabilities in [0, 1]) for binary_crossentropy")
        return y.float().unsqueeze(1)  # (N, 1)
    if y.is_floating_point() and not torch.equal(y, y.round()):
        raise InputError(f"{y_name} must hold whole class ids for cross_entropy; convert it with y.astype(int)")
    if int(y.min()) < 0 or int(y.max()) >= num_outputs:
        raise InputError(f"{y_name} holds class ids outside [0, {num_outputs}); the model has {num_outputs} classes")
    return y.long()  # (N,)
