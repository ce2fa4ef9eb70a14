"""The seeds' first RNN example, in rnnkit: a simple RNN reads 10 random sequences and says 0 or 1.

The seeds build it in Keras as ``Sequential([SimpleRNN(8, activation="tanh", input_shape=(5, 1)),
Dense(1, activation="sigmoid")])``, compile it with Adam and binary cross-entropy, fit 20 epochs and
predict. Here the same network is a many-to-one :class:`rnnkit.models.SequenceClassifier` with one
sigmoid output on an Elman (tanh) cell of 8 hidden units. The labels are random, so the point is the
workflow and a falling training loss, not accuracy.

    .venv/bin/python examples/seeds_simple_rnn.py     # .venv as `make test` sets it up (rnnkit installed)
"""

import numpy as np
import torch

from rnnkit.models import SequenceClassifier


def main(seed: int = 0):
    np.random.seed(seed)
    torch.manual_seed(seed)
    X = np.random.rand(10, 5, 1)  # 10 samples, 5 steps, 1 feature per step
    y = np.random.randint(0, 2, size=(10, 1))  # one 0/1 label per sample

    model = SequenceClassifier(1, input_size=1, hidden_size=8, cell="rnn")  # SimpleRNN(8) + Dense(1, sigmoid)
    history = model.fit(X, y, epochs=20, loss="binary_crossentropy", optimizer="adam", lr=1e-3, seed=seed)
    y_pred = model.predict(X)  # (10, 1) probabilities of label 1

    print("loss per epoch:", " ".join(f"{loss:.4f}" for loss in history.history["loss"]))
    print("predictions:")
    print(y_pred)
    return history, y_pred


if __name__ == "__main__":
    main()
