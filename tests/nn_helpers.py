"""Shared builders for the rnnkit.nn tests: matching rnnkit / torch.nn layers and random inputs."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_sequence

import rnnkit.nn as rn

# name -> (rnnkit class, torch.nn class, extra constructor arguments)
LAYERS = {
    "rnn_tanh": (rn.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rn.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rn.LSTM, nn.LSTM, {}),
    "lstm_proj": (rn.LSTM, nn.LSTM, {"proj_size": 3}),
    "gru": (rn.GRU, nn.GRU, {}),
}

INPUT_SIZE, HIDDEN_SIZE = 4, 5


def make_pair(name: str, *, engine: str, dtype=torch.float64, **kwargs):
    """An rnnkit layer and a torch.nn layer with the same configuration and the same weights."""
    ours_cls, torch_cls, extra = LAYERS[name]
    kwargs = {**extra, **kwargs}
    ours = ours_cls(INPUT_SIZE, HIDDEN_SIZE, engine=engine, dtype=dtype, **kwargs)
    ref = torch_cls(INPUT_SIZE, HIDDEN_SIZE, dtype=dtype, **kwargs)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def h_out(layer) -> int:
    return layer.proj_size if getattr(layer, "proj_size", 0) > 0 else layer.hidden_size


def random_state(layer, batch: int | None, dtype) -> tuple[torch.Tensor, ...]:
    """A random initial state (requires grad) shaped for the layer; batch None = unbatched."""
    k = layer.num_layers * (2 if layer.bidirectional else 1)
    def make(size):
        shape = (k, size) if batch is None else (k, batch, size)
        return torch.randn(shape, dtype=dtype, requires_grad=True)
    h = make(h_out(layer))
    return (h, make(layer.hidden_size)) if isinstance(layer, nn.LSTM) else (h,)


def as_hx(layer, states):
    return states if isinstance(layer, nn.LSTM) else states[0]


def packed_input(lengths, dtype) -> tuple[PackedSequence, list[torch.Tensor]]:
    """Unsorted variable-length sequences (leaf tensors) and their PackedSequence."""
    seqs = [torch.randn(n, INPUT_SIZE, dtype=dtype, requires_grad=True) for n in lengths]
    return pack_sequence(seqs, enforce_sorted=False), seqs


def flat(result):
    """(output, state) -> list of tensors: packed data for packed output, states as a list."""
    output, state = result
    out = output.data if isinstance(output, PackedSequence) else output
    states = list(state) if isinstance(state, tuple) else [state]
    return [out, *states]
