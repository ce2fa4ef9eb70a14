r"""Cells from the user's own packages, by reference: ``"my_package.cells:IndRNN"``, or the name of a
``rnnkit.cells`` entry point.

A cell class written outside rnnkit (a subclass of :class:`~rnnkit.nn.cells.base.Cell`, see the docs page
"Add a cell") is usable wherever a registered name is (``Recurrent``, every model, ``--cell``) once it is
named one of two ways:

* ``module:attribute``, the spelling of Python's entry points: ``module`` is imported as ``import`` would
  (so it must be installed or on ``PYTHONPATH``), ``attribute`` is looked up in it (dots go deeper:
  ``pkg.cells:Family.Cell``);
* the name of an entry point in the group ``rnnkit.cells`` that an installed package declares, e.g. in its
  ``pyproject.toml``::

      [project.entry-points."rnnkit.cells"]
      indrnn = "my_package.cells:IndRNN"

The class is registered under its own ``name`` when it is loaded (if its module did not do so already), so
``cell_names()`` lists it from then on. A model saves the spelling it was given (its ``cell`` setting), so
a run trained on ``"my_package.cells:IndRNN"`` imports the module again wherever it is loaded; when the
module is gone, the one line says which module is missing and how to make it importable.

Every failure is one ``ValueError`` sentence naming the reference, what is wrong and the fix.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re

from .base import Cell

ENTRY_POINT_GROUP = "rnnkit.cells"
# module.path:attribute.path, each part a Python identifier (no relative imports: a run is loaded from anywhere)
_IDENTIFIER = r"[^\W\d]\w*"
_REFERENCE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*")
SPELLING = "module:Class, e.g. my_package.cells:IndRNN"


def is_reference(name) -> bool:
    """Whether ``name`` is spelled as a reference to a class in a module (it holds a ``:``)."""
    return isinstance(name, str) and ":" in name


def entry_point_names() -> tuple[str, ...]:
    """The names of the cells that installed packages declare in the ``rnnkit.cells`` entry-point group."""
    return tuple(sorted({point.name for point in _entry_points()}))


def entry_point_reference(name: str) -> str | None:
    """The ``module:attribute`` of the ``rnnkit.cells`` entry point called ``name``, or None."""
    return next((point.value for point in _entry_points() if point.name == name), None)


def _entry_points():
    try:
        return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # a broken distribution's metadata must not stop the built-in cells from working
        return ()


def load_reference(reference: str, register) -> type[Cell]:
    """The cell class that ``reference`` (``module:attribute``) names, imported and registered with ``register``
    (:func:`rnnkit.nn.cells.registry.register_cell`) unless it is already; ValueError, one sentence, otherwise.

    The module is imported with the interpreter's own search path: an installed package, or a folder on
    ``PYTHONPATH`` (the working directory counts only where Python puts it on the path).
    """
    if not _REFERENCE.fullmatch(reference.strip()):
        raise ValueError(f"cell {reference!r} is not a cell name nor a reference to one; write a registered name or "
                         f"{SPELLING}")
    module_name, _, attribute = reference.strip().partition(":")
    module = _import(reference, module_name)
    found = module
    for depth, part in enumerate(attribute.split(".")):
        if not hasattr(found, part):
            where = module_name + "".join("." + p for p in attribute.split(".")[:depth])
            raise ValueError(f"cell {reference!r}: {where} has no attribute {part!r}; check the name after ':' "
                             f"(the cell class)")
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, Cell)):
        what = f"the class {found.__name__}" if isinstance(found, type) else f"a {type(found).__name__}"
        raise ValueError(f"cell {reference!r} names {what}, not a cell class; name a subclass of rnnkit.nn.Cell")
    if inspect.isabstract(found):
        missing = ", ".join(sorted(found.__abstractmethods__))
        raise ValueError(f"cell {reference!r}: {found.__name__} does not define {missing}; a cell class defines "
                         "parameter_specs, reference_step and workspace")
    name = getattr(found, "name", None)
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"cell {reference!r}: the class needs a registry name without ':' (a class attribute "
                         f"`name = \"...\"`), got {name!r}")
    return register(found)


def _import(reference: str, module_name: str):
    """``importlib.import_module(module_name)``, its failures as one sentence: which module is missing (the
    one named, or one it imports) and how to make it importable."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            top = missing.split(".")[0]
            raise ValueError(f"cell {reference!r}: no module named {missing!r}; install the package that provides "
                             f"it, or put the folder that holds {top!r} on PYTHONPATH") from None
        raise ValueError(f"cell {reference!r}: module {module_name!r} imports {missing!r}, which is not installed; "
                         f"install it (pip install ...) or put it on PYTHONPATH") from None
    except Exception as error:  # the user's module is broken: the first line of why, not rnnkit's traceback
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"cell {reference!r}: importing {module_name!r} failed with {type(error).__name__}"
                         f"{': ' + first if first else ''}; fix that module") from None
