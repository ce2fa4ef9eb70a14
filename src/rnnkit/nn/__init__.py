"""Recurrent layers: ``Recurrent(cell, ...)`` for any registered cell, and torch.nn's ``RNN``, ``LSTM``,
``GRU`` and their cells, run by rnnkit's engines.

* :func:`cell_names` lists the registered cells, :func:`get_cell` returns one by name (its
  ``has_cell_state``, ``gate_names``, parameters and equations), :func:`register_cell` adds yours;
* engines (:func:`engine_names`): ``"fused"`` (PyTorch's kernels), ``"native"`` (the recurrence loop in C++;
  :func:`native_available`, :func:`native_info`), ``"explicit"`` (rnnkit's unrolled loop with a hand-written
  backpropagation through time, in Python), ``"scan"`` (linear cells, the whole sequence at once), ``"reference"``
  (the cell's equations under autograd), ``"auto"``;
* regularisers: ``recurrent_dropout``, ``zoneout``, ``weight_drop``, ``forget_bias`` on every layer;
  :class:`LockedDropout` and :func:`embedding_dropout` for models.
"""

from .cell_layers import GRUCell, LSTMCell, RNNCell
from .cells import ALIASES, Cell, ParamSpec, Workspace, cell_names, get_cell, register_cell
from .engines import Engine, engine_names, get_engine, register_engine
from .layer import Recurrent, Trace, detach_state
from .layers import GRU, LSTM, RNN
from .native import native_available, native_info
from .regularisers import LockedDropout, embedding_dropout

__all__ = ["Recurrent", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Trace", "detach_state",
           "cell_names", "get_cell", "register_cell", "Cell", "ParamSpec", "Workspace", "ALIASES",
           "engine_names", "get_engine", "register_engine", "Engine", "native_available", "native_info",
           "LockedDropout", "embedding_dropout"]
