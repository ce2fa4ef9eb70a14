r"""How every model builds its recurrent layers: a registered cell's name and the recurrent options in, an
:class:`rnnkit.nn.Recurrent` out, with one clear :class:`~rnnkit.errors.InputError` for a bad choice.

The options every model takes, beside its own:

* ``cell``: any name of :func:`rnnkit.nn.cell_names` (``"rnn"`` is the old name of ``"rnn_tanh"``), or a cell of
  the user's own package as ``"module:Class"`` (:mod:`rnnkit.nn.cells.plugins`; the model's config keeps the
  spelling, so a saved model imports it again);
* ``engine``: ``"auto"`` (default: PyTorch's kernel when the cell has one and no option needs rnnkit's
  engines) or any name of :func:`rnnkit.nn.engine_names`; :func:`use_engine` moves a built (or loaded) model's
  layers onto another;
* the regularisers inside the recurrence, :data:`RECURRENT_OPTIONS`: ``recurrent_dropout``, ``zoneout``,
  ``weight_drop`` and ``forget_bias`` (see :mod:`rnnkit.nn.regularisers`), and ``locked_dropout``: the dropout
  between layers with one mask per sequence;
* ``block``: how the layers stack (:mod:`rnnkit.models.blocks`): ``"plain"`` (default: on top of each other, as
  torch.nn.LSTM) or ``"residual"`` (pre-norm residual blocks with a gated MLP, as minGRU's and Griffin's stacks).

Models ask the cell what they need to know about it (:func:`has_cell_state`), never its name.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..nn import Cell, LockedDropout, Recurrent, engine_names, get_cell
from ..nn.layer import RecurrentBase
from .blocks import BLOCKS, ResidualRecurrent

# The regularisers inside the recurrence and how the layers stack, with their "off" values; every model takes
# them as keywords. A run saved before ``block`` existed loads as "plain", what it was.
RECURRENT_OPTIONS = {"recurrent_dropout": 0.0, "zoneout": 0.0, "weight_drop": 0.0, "forget_bias": None,
                     "locked_dropout": False, "block": "plain"}


def registered_cell(cell) -> type[Cell]:
    """The cell class registered as ``cell`` (or an alias such as ``"rnn"``), or a cell of the user's own package
    that ``cell`` names (``"my_package.cells:IndRNN"``, or a ``rnnkit.cells`` entry point: imported now, see
    :mod:`rnnkit.nn.cells.plugins`); one InputError naming the choices, or the module that is missing,
    otherwise."""
    try:
        return get_cell(cell)
    except ValueError as error:
        raise InputError(str(error)) from None


def engine_choices() -> tuple[str, ...]:
    """The names ``engine`` takes: ``"auto"`` and every registered engine (:func:`rnnkit.nn.engine_names`)."""
    return ("auto", *engine_names())


def check_block(block) -> None:
    """One InputError naming the choices for a ``block`` that is not one of :data:`rnnkit.models.blocks.BLOCKS`."""
    if block not in BLOCKS:
        raise InputError(f"unknown block {block!r}; choose one of {', '.join(BLOCKS)}")


def check_engine(engine) -> None:
    """One InputError naming the choices for an engine name that is not registered."""
    if engine not in engine_choices():
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(engine_choices())}")


def use_engine(model: nn.Module, engine: str) -> nn.Module:
    """Run every recurrent layer of ``model`` on ``engine`` from now on (a loaded model keeps its weights and its
    saved config); the layer's one sentence as an InputError where the engine cannot run its cell or options
    (the native engine not built, a cell without a native or fused kernel, zoneout on PyTorch's kernels)."""
    check_engine(engine)
    layers = [module for module in model.modules() if isinstance(module, RecurrentBase)]
    before = [layer.engine for layer in layers]
    try:
        for layer in layers:
            layer.engine = engine
    except ValueError as error:  # all or nothing: the layers already moved go back
        for layer, previous in zip(layers, before):
            layer.engine = previous
        raise InputError(str(error)) from None
    return model


def check_runs_on(cell: str, engine: str, **options) -> None:
    """InputError, the layer's one sentence, when ``engine`` cannot run ``cell`` with ``options``
    (:data:`RECURRENT_OPTIONS`): asked of a one-unit layer on the meta device (no memory, no random numbers drawn),
    before a model is built or trained."""
    with torch.device("meta"):
        recurrent_layer(cell, 1, 1, engine=engine, **options)


def engine_or_auto(cell: str, engine: str, **options) -> str:
    """``engine`` where it runs ``cell`` with ``options``, else ``"auto"``: for a layer whose cell the model fixes
    (the tagger's character BiLSTM), so that an engine chosen for the model's own cell (``--engine scan`` with a
    linear cell) does not refuse the model for a part the user did not choose."""
    try:
        check_runs_on(cell, engine, **options)
    except InputError:
        return "auto"
    return engine


def has_cell_state(cell: str) -> bool:
    """Whether the named cell carries a cell state c beside h (its state is then the pair (h, c)); InputError as
    :func:`registered_cell` for a name that is no cell."""
    return registered_cell(cell).has_cell_state


def sequence_dropout(p: float, locked: bool) -> nn.Module:
    """Dropout on (N, L, F) steps: a fresh mask per element, or with ``locked`` one mask per sequence kept over
    every step (variational dropout, as AWD-LSTM drops embeddings and outputs)."""
    return LockedDropout(p, batch_first=True) if locked else nn.Dropout(p)


def recurrent_options(options: dict) -> dict:
    """The recurrent options among ``options`` (unknown keys are the caller's business), with defaults."""
    return {name: options.get(name, default) for name, default in RECURRENT_OPTIONS.items()}


def recurrent_layer(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                    bidirectional: bool = False, dropout: float = 0.0, engine: str = "auto", block: str = "plain",
                    **options) -> Recurrent | ResidualRecurrent:
    """A model's recurrent layers, batch first, InputError for a bad cell, engine, block or option.

    ``block="plain"``: a :class:`rnnkit.nn.Recurrent` of ``num_layers`` layers (the dropout between layers is
    dropped for one layer, where it would do nothing); ``"residual"``: a
    :class:`~rnnkit.models.blocks.ResidualRecurrent` of ``num_layers`` pre-norm blocks, ``dropout`` on each
    block's branches. Both take and return the same input, output and state shapes. ``options`` are the rest of
    :data:`RECURRENT_OPTIONS`.
    """
    registered_cell(cell)
    check_engine(engine)
    check_block(block)
    unknown = sorted(set(options) - set(RECURRENT_OPTIONS))
    if unknown:
        raise InputError(f"unknown recurrent options {unknown}; the options are {', '.join(RECURRENT_OPTIONS)}")
    try:
        if block == "residual":
            return ResidualRecurrent(cell, input_size, hidden_size, num_layers, bidirectional=bidirectional,
                                     dropout=dropout, engine=engine, **options)
        return Recurrent(cell, input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional,
                         dropout=dropout if num_layers > 1 else 0.0, engine=engine, **options)
    except ValueError as error:
        raise InputError(str(error)) from None
