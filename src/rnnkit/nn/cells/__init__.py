r"""The cell registry: every cell type by name, one file each.

    >>> from rnnkit.nn import cell_names, get_cell
    >>> cell_names()[:4]
    ('rnn_tanh', 'rnn_relu', 'lstm', 'gru')
    >>> get_cell("lstm").has_cell_state, get_cell("gru").gate_names
    (True, ('reset', 'update', 'new'))

Adding a cell: write a subclass of :class:`rnnkit.nn.cells.base.Cell` in its own file, decorated with
``@register_cell``, and add the module to the import line below (cells of your own code register the
same way, from anywhere). ``"rnn"`` is accepted as the old name of ``"rnn_tanh"``.
"""

from . import rnn, lstm, gru, layernorm_lstm, layernorm_gru, mingru, minlstm, rglru  # noqa: F401  (the registration line)
from .base import Cell, ParamSpec, Workspace
from .registry import ALIASES, cell_names, get_cell, register_cell

__all__ = ["Cell", "ParamSpec", "Workspace", "register_cell", "cell_names", "get_cell", "ALIASES"]
