r"""The fused engine: PyTorch's own kernels (oneDNN on CPU, cuDNN on GPU) for the cells that have one (``rnn_tanh``,
``rnn_relu``, ``lstm``, ``gru``), the whole stack at once, as torch.nn's layers call them.

It cannot run what lives inside rnnkit's recurrence: recurrent dropout in training, zoneout, ``bptt_window`` while
gradients are on, resets. With weight drop it runs the kernel over the weight-dropped matrices; with locked dropout
between layers, one layer at a time with one mask per sequence between them.
"""

from __future__ import annotations

import torch
from torch import Tensor, _VF
from torch.nn.utils.rnn import PackedSequence

from .base import Engine

_KERNELS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def run_fused(mode: str, source: Tensor | PackedSequence, states: tuple[Tensor, ...], weights: list[Tensor],
              bias: bool, num_layers: int, dropout: float, training: bool, bidirectional: bool):
    """The whole stack on PyTorch's kernel for ``mode``, as torch.nn's layers call it.

    ``source`` is time-major (L, N, H_in) or a PackedSequence with rows sorted; ``weights`` the flat
    list torch.nn uses (per layer and direction: w_ih, w_hh, b_ih, b_hh[, w_hr]). Returns the output
    (a tensor, or the packed data) and the final states as a tuple.
    """
    hx = states if mode == "LSTM" else states[0]
    kernel = _KERNELS[mode]
    if isinstance(source, PackedSequence):
        result = kernel(source.data, source.batch_sizes, hx, weights, bias, num_layers, dropout, training,
                        bidirectional)
    else:
        result = kernel(source, hx, weights, bias, num_layers, dropout, training, bidirectional, False)
    return result[0], tuple(result[1:])


class FusedEngine(Engine):
    """PyTorch's fused kernels over the layer's weights (weight-dropped in training)."""

    name = "fused"
    summary = "PyTorch's fused kernels (oneDNN on CPU, cuDNN on GPU): rnn_tanh, rnn_relu, lstm, gru"
    whole_stack = True

    def refusal(self, layer) -> str | None:
        if layer.cell.fused_mode is None:
            return f"cell {layer.cell.name!r} has no fused PyTorch kernel; use engine='auto' or 'explicit'"
        for option in ("bptt_window", "recurrent_dropout", "zoneout"):
            if getattr(layer, option):
                return f"{option} needs engine='explicit' or 'native' (or 'auto'): PyTorch's fused kernels cannot run it"
        return None

    def run_stack(self, layer, input, hx, resets):
        batch = layer._normalise(input, hx)
        weights = []
        for index in range(layer.num_layers):
            for direction in range(layer._directions()):
                weights.extend(layer._layer_params(index, direction).values())
        source = batch.packed if batch.packed is not None else batch.x
        mode = layer.cell.fused_mode
        if not (layer.locked_dropout and layer.dropout and layer.training and layer.num_layers > 1):
            output, states = run_fused(mode, source, batch.states, weights, layer.bias, layer.num_layers,
                                       layer.dropout, layer.training, layer.bidirectional)
            return layer._finish(batch, output, states)
        # locked dropout between layers: the kernel one layer at a time, one mask per sequence between them
        D, per_layer = layer._directions(), len(weights) // layer.num_layers
        finals = []
        for index in range(layer.num_layers):
            rows = slice(index * D, (index + 1) * D)
            output, states = run_fused(mode, source, tuple(s[rows] for s in batch.states),
                                       weights[index * per_layer:(index + 1) * per_layer], layer.bias, 1, 0.0,
                                       layer.training, layer.bidirectional)
            finals.append(states)
            source = output if batch.packed is None else PackedSequence(output, batch.packed.batch_sizes)
            if index < layer.num_layers - 1:
                source = layer._drop_between_layers(source)
        states = tuple(torch.cat(parts) for parts in zip(*finals))
        return layer._finish(batch, output, states)
