"""What ``trace`` returns: every step's hidden state, cell state and gates of every layer and direction, in the
caller's layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from .batch import Batch, State


@dataclass
class Trace:
    """Everything a recurrent layer computed, step by step, from :meth:`RecurrentBase.trace`.

    Index 0 of every per-step tensor is ``layer * D + direction`` (as in ``h_n``); the step and
    batch dimensions follow the input's layout: (L, N) by default, (N, L) with ``batch_first``,
    (L,) for unbatched input. Steps past a sequence's length (padding) are 0.

    Attributes:
        output, state: what ``forward`` returns for the same input.
        hidden: h_t at every step, (num_layers * D, L, N, H_out).
        cell: c_t at every step for cells with a cell state, (num_layers * D, L, N, hidden_size);
            None otherwise.
        gates: gate activations at every step by the cell's ``gate_names``, each
            (num_layers * D, L, N, hidden_size): LSTM ``input``, ``forget``, ``cell``, ``output``;
            GRU ``reset``, ``update``, ``new``; empty for a plain RNN.
        lengths: (N,) sequence lengths; all L unless the input was packed.
        engine: the engine that recorded the steps.
    """

    output: Tensor | PackedSequence
    state: State
    hidden: Tensor
    cell: Tensor | None
    gates: dict[str, Tensor] = field(default_factory=dict)
    lengths: Tensor | None = None
    engine: str = "explicit"



def record_direction(gates: dict[str, Tensor], y: Tensor, cs: Tensor | None, direction: int, reverse,
            valid: Tensor | None) -> dict:
    """One layer-direction's per-step values in natural time order, padding zeroed.

    ``valid`` (L, N, 1) is 1 on real steps and 0 on padding (None when there is no padding).
    """
    def fix(t: Tensor) -> Tensor:
        t = t if direction == 0 else reverse(t)
        return t if valid is None else t.masked_fill(valid == 0, 0)  # whatever an engine left in the padding

    return {
        "hidden": fix(y),
        "cell": None if cs is None else fix(cs),
        "gates": {name: fix(g) for name, g in gates.items()},
    }


def assemble_trace(output, state, records: list[dict], batch: Batch, engine: str, batch_first: bool) -> Trace:
    """Stack per-layer records to (num_layers*D, L, N, ...) and put them in the input's layout."""
    packed = batch.layout[0] == "packed"
    unsorted = batch.layout[2] if packed else None

    def arrange(t: Tensor) -> Tensor:  # (K, L, N, ...) time-major, rows as computed
        if unsorted is not None:
            t = t.index_select(2, unsorted)  # back to the caller's row order
        if batch_first:
            t = t.transpose(1, 2)
        if not packed and not batch.layout[1]:
            t = t.squeeze(1 if batch_first else 2)  # unbatched
        return t

    def stack(key: str) -> Tensor:
        return arrange(torch.stack([r[key] for r in records]))

    cell = stack("cell") if records[0]["cell"] is not None else None
    gates = {name: arrange(torch.stack([r["gates"][name] for r in records])) for name in records[0]["gates"]}
    hidden = stack("hidden")
    if packed:
        lengths = batch.lengths if unsorted is None else batch.lengths.index_select(0, unsorted.cpu())
    else:
        L, N = records[0]["hidden"].shape[:2]
        lengths = torch.full((N,), L, dtype=torch.long)
    return Trace(output=output, state=state, hidden=hidden, cell=cell, gates=gates, lengths=lengths, engine=engine)
