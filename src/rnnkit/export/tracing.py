r"""While a model is traced for export, its rnnkit layers answer through an exportable function, and packing
passes the lengths along.

Neither exporter can follow rnnkit's engines (Python loops over time, custom ops) nor ``pack_padded_sequence``
(pytorch #62240, #171978). Inside :func:`layer_calls`:

* every rnnkit recurrent layer's forward normalises its input (batch first or not, unbatched, a padded batch with
  lengths, a learned initial state) to time-major x (L, N, In), full states h0 (D*layers, N, P) [c0] and lengths
  (N,) int64 or None, and calls ``run(layer, index, x, h0, c0, lengths) -> (y, h_n, c_n)`` (y (L, N, D*P), c_n None
  without a cell state); the result goes back in the caller's layout;
* ``pack_padded_sequence`` and ``pad_packed_sequence`` (torch's, and the names in the global namespaces of the
  model's classes' code) return and take a :class:`PaddedSequence`, the padded batch with its lengths, rows unsorted:
  the exported graph takes lengths as an input and needs no sorting;
* :func:`real_packing` undoes the swap for code that must compute for real inside.

Everything is restored on the way out, also after an error.
"""

from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.utils.rnn as rnn_utils
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..errors import InputError
from ..nn.layer import RecurrentBase


def find_layers(module: nn.Module) -> list[RecurrentBase]:
    """The rnnkit recurrent layers inside ``module`` (itself included), in ``modules()`` order."""
    return [m for m in module.modules() if isinstance(m, RecurrentBase)]


def check_exportable(layer: RecurrentBase) -> None:
    """InputError for what an exported graph cannot reproduce: a fresh random initial state at every call."""
    if layer.init_state == "random":
        raise InputError("a layer with init_state='random' draws a new initial state at every call, which an "
                         "exported graph cannot; pass h0 explicitly or set layer.init_state = 'zeros' before export")


class PaddedSequence:
    """What ``pack_padded_sequence`` returns during an export: x (L, N, F) time-major, zeros past each length,
    and lengths (N,) int64, rows in the caller's order."""

    def __init__(self, x: Tensor, lengths: Tensor):
        self.x, self.lengths = x, lengths


def _pack(input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True) -> PaddedSequence:
    lengths = lengths.long() if isinstance(lengths, Tensor) else torch.as_tensor(lengths, dtype=torch.int64)
    return PaddedSequence(input.transpose(0, 1) if batch_first else input, lengths)


def _pad(sequence, batch_first: bool = False, padding_value: float = 0.0, total_length: int | None = None):
    if not isinstance(sequence, PaddedSequence):
        raise InputError("export: pad_packed_sequence got a PackedSequence that was not made by "
                         "pack_padded_sequence; pack the padded batch with pack_padded_sequence in the model")
    y, lengths = sequence.x, sequence.lengths  # (L, N, F), zeros past each length
    if padding_value:
        mask = torch.arange(y.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)  # (L, N)
        y = torch.where(mask.unsqueeze(2), y, padding_value)
    if total_length is not None and total_length > y.shape[0]:
        y = torch.cat([y, y.new_full((total_length - y.shape[0], *y.shape[1:]), padding_value)])
    return (y.transpose(0, 1) if batch_first else y), lengths


_PACKING = {"pack_padded_sequence": (rnn_utils.pack_padded_sequence, _pack),
            "pad_packed_sequence": (rnn_utils.pad_packed_sequence, _pad)}
_SWAPPED: list = []  # the namespaces whose packing functions are swapped now


def _swap(namespaces: list[dict], to_export: bool) -> None:
    for namespace in namespaces:
        for name, (real, placeholder) in _PACKING.items():
            if namespace.get(name) is (real if to_export else placeholder):
                namespace[name] = placeholder if to_export else real


def _namespaces(module: nn.Module) -> list[dict]:
    """The global namespaces in which the model's code looks the packing functions up: torch's module and those of
    the functions of every class in the model (a module file, a script's or a notebook's namespace); rnnkit's layers
    pack for real inside, so theirs are left alone."""
    found = {id(rnn_utils.__dict__): rnn_utils.__dict__}
    for m in module.modules():
        if isinstance(m, RecurrentBase):
            continue
        for cls in type(m).__mro__:
            if cls.__module__.startswith("torch."):
                continue
            for value in vars(cls).values():
                if isinstance(value, types.FunctionType):
                    found.setdefault(id(value.__globals__), value.__globals__)
    return list(found.values())


@contextlib.contextmanager
def real_packing():
    """torch's own packing functions within (for a placeholder's real computation during an export)."""
    namespaces = list(_SWAPPED)
    _swap(namespaces, to_export=False)
    try:
        yield
    finally:
        _swap(namespaces, to_export=True)


def _swap_time_batch(layer: RecurrentBase, x: Tensor) -> Tensor:
    """(N, L, ·) <-> (L, N, ·) for a ``batch_first`` layer; x as it is otherwise."""
    return x.transpose(0, 1) if layer.batch_first else x


def _layer_forward(layer: RecurrentBase, index: int, run, input, hx=None, *, resets=None):
    """A layer's forward during an export: normalise to time-major, ``run``, restore the caller's layout."""
    if resets is not None:
        raise InputError("export: a layer called with resets cannot be exported; call it without resets "
                         "(feed each segment with its own initial state instead)")
    if isinstance(input, PackedSequence):
        raise InputError("export: a PackedSequence made by pack_sequence cannot be exported; pad the batch and "
                         "pack it with pack_padded_sequence(x, lengths) inside the model")
    lengths, unbatched = None, False
    if isinstance(input, PaddedSequence):
        x, lengths = input.x, input.lengths  # (L, N, In), (N,)
    else:
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else _swap_time_batch(layer, input)  # (L, N, In)
    states = () if hx is None else ((hx,) if isinstance(hx, Tensor) else tuple(hx))
    if unbatched:
        states = tuple(s.unsqueeze(1) for s in states)  # the caller's (D*layers, P) -> (D*layers, 1, P)
    if not states and layer.init_state == "learned":
        learned = layer._initial_state(_swap_time_batch(layer, x))  # (D*layers, N, P) from x, batched by now
        states = (learned,) if isinstance(learned, Tensor) else tuple(learned)
    if not states:
        states = layer._zero_state(x, x.shape[1])
    y, h_n, c_n = run(layer, index, x, states[0], states[1] if len(states) > 1 else None, lengths)
    state = (h_n, c_n) if layer.cell.has_cell_state else h_n
    if lengths is not None:
        return PaddedSequence(y, lengths), state
    if unbatched:
        y = y.squeeze(1)
        state = tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)
    return _swap_time_batch(layer, y) if not unbatched else y, state


def _bound_forward(layer: RecurrentBase, index: int, run):
    """The export-time forward of one layer, with the layer's own signature (the TorchScript exporter reads it)."""

    def forward(input, hx=None, resets=None):
        return _layer_forward(layer, index, run, input, hx, resets=resets)

    return forward


@contextlib.contextmanager
def layer_calls(module: nn.Module, run):
    """Within: every rnnkit layer of ``module`` computes by ``run`` and packing passes lengths (see the module).
    Yields the layers, in the order of their ``index``."""
    layers = find_layers(module)
    for layer in layers:
        check_exportable(layer)
    namespaces = _namespaces(module)
    for index, layer in enumerate(layers):
        layer.forward = _bound_forward(layer, index, run)
    _swap(namespaces, to_export=True)
    _SWAPPED[:] = namespaces
    try:
        yield layers
    finally:
        _swap(namespaces, to_export=False)
        _SWAPPED.clear()
        for layer in layers:
            del layer.forward
