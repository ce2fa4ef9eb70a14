"""The registry of cell types by name; cells register themselves with ``@register_cell``.

:func:`get_cell` also takes a cell of the user's own package by reference (``"my_package.cells:IndRNN"``) or by
the name of a ``rnnkit.cells`` entry point (:mod:`rnnkit.nn.cells.plugins`): it is imported and registered then.
"""

from __future__ import annotations

from .base import Cell
from .plugins import SPELLING, entry_point_names, entry_point_reference, is_reference, load_reference

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
    """The registered cell names, in registration order (a plugin cell from the time it is first loaded)."""
    return tuple(_REGISTRY)


def get_cell(name: str) -> type[Cell]:
    """The cell class registered as ``name`` (or an alias such as ``"rnn"``), or that ``name`` refers to:
    ``"module:Class"`` or a ``rnnkit.cells`` entry point's name (imported and registered now); ValueError, one
    sentence naming the choices or what is missing, otherwise."""
    if isinstance(name, str) and ALIASES.get(name, name) in _REGISTRY:
        return _REGISTRY[ALIASES.get(name, name)]
    if is_reference(name):
        return load_reference(name, _register_loaded)
    reference = entry_point_reference(name) if isinstance(name, str) else None
    if reference is not None:
        return load_reference(reference, _register_loaded)
    raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(cell_choices())}, or a cell of your own "
                     f"package as {SPELLING}")


def cell_choices() -> tuple[str, ...]:
    """Every name :func:`get_cell` takes as it is (besides references): the registered cells, their aliases and
    the ``rnnkit.cells`` entry points of the installed packages."""
    return tuple(dict.fromkeys((*cell_names(), *ALIASES, *entry_point_names())))


def cell_reference(name: str) -> str:
    """What a model built from the user's choice ``name`` saves as its cell: ``name`` itself, checked (ValueError
    as :func:`get_cell`), except the name of a ``rnnkit.cells`` entry point not registered yet, which is saved as
    its ``module:Class``: a run whose package is uninstalled then names the module that is missing."""
    reference = None if name in _REGISTRY or name in ALIASES or is_reference(name) else entry_point_reference(name)
    get_cell(reference or name)
    return reference or name


def _register_loaded(cell: type[Cell]) -> type[Cell]:
    """Register a cell loaded by reference unless it already is (its module may register it itself)."""
    return cell if _REGISTRY.get(cell.name) is cell else register_cell(cell)
