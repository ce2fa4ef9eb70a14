"""How many parameters a model has: :func:`parameter_count` of a built module, and :func:`cell_parameter_count`
of a recurrent layer before it is built, from its cell's own parameter list; :func:`size_for_budget` sizes models
of different cells to one parameter budget.

    >>> from rnnkit.nn import LSTM
    >>> parameter_count(LSTM(3, 4))
    144
    >>> cell_parameter_count("lstm", hidden_size=4, input_size=3)
    144
    >>> size_for_budget(lambda h: cell_parameter_count("gru", h, 3), budget=144)     # a GRU of 144 parameters
    5

A count is a number; how it is shown (``f"{count:,} parameters"``) is the caller's business.
"""

from __future__ import annotations

import math
from typing import Callable

from torch import nn

from .recurrent import registered_cell


def parameter_count(module: nn.Module) -> int:
    """The number of parameter elements of ``module`` (a parameter shared by two submodules counted once)."""
    return sum(parameter.numel() for parameter in module.parameters())


def cell_parameter_count(cell: str, hidden_size: int, input_size: int) -> int:
    """The number of parameter elements of one layer and direction of ``cell`` (any registered cell) with these
    sizes, from the cell's parameter list without building it; InputError for an unknown cell."""
    specs = registered_cell(cell)(hidden_size).active_specs(input_size)
    return sum(math.prod(spec.shape) for spec in specs)


def size_for_budget(count: Callable[[int], int], budget: int) -> int:
    """The size (≥ 1) whose parameter count ``count(size)``, which grows with the size, is nearest to ``budget``;
    of two equally near, the smaller."""
    size = 1
    while count(size + 1) < budget:  # the best size lies below the one whose count first passes the budget
        size += 1
    return min((size, size + 1), key=lambda h: abs(count(h) - budget))
