"""Recurrent layers with torch.nn's interface: ``RNN``, ``LSTM``, ``GRU`` and their cells.

Each layer runs on one of two engines: ``"fused"`` (PyTorch's kernels) or ``"explicit"``
(rnnkit's unrolled loop with a hand-written backpropagation through time).
"""

from .cell_layers import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN, Trace, detach_state

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Trace", "detach_state"]
