"""The registry of cell types by name; cells register themselves with ``@register_cell``."""

from __future__ import annotations

from .base import Cell

_REGISTRY: dict[str, type[Cell]] = {}
ALIASES = {"rnn": "rnn_tanh"}
"""Old cell names still accepted, alias → registry name: ``"rnn"`` is rnnkit 0.1's name for the tanh RNN, still in
old run directories."""


def register_cell(cell: type[Cell] | None = None, *, title: str | None = None):
    """Register a cell class under its ``name``; a class decorator, bare (``@register_cell``) or with the name
    plots and tables show (``@register_cell(title="LSTM")``; the registry name when not given)."""
    if cell is None:
        return lambda cls: register_cell(cls, title=title)
    if not (isinstance(cell, type) and issubclass(cell, Cell)):
        raise TypeError(f"register_cell expects a subclass of rnnkit.nn.cells.base.Cell, got {cell!r}")
    if cell.name in _REGISTRY and _REGISTRY[cell.name] is not cell:
        raise ValueError(f"a cell named {cell.name!r} is already registered; give yours another name")
    if title is not None:
        cell.title = title
    _REGISTRY[cell.name] = cell
    return cell


def cell_names() -> tuple[str, ...]:
    """The registered cell names, in registration order."""
    return tuple(_REGISTRY)


def get_cell(name: str) -> type[Cell]:
    """The cell class registered as ``name`` (or an alias such as ``"rnn"``); ValueError naming the choices."""
    if isinstance(name, str) and ALIASES.get(name, name) in _REGISTRY:
        return _REGISTRY[ALIASES.get(name, name)]
    raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(cell_names())}")
