r"""An rnnkit recurrent layer run over a padded batch of variable-length sequences.

Padded steps never reach a result: the batch is packed (``pack_padded_sequence``), so the layer reads
exactly ``lengths[n]`` steps of row n in each direction, and the backward direction of a bidirectional
layer starts at each row's own last step rather than at the padding. With D = 2 if bidirectional else 1:

    outputs[n, t] = [h_t^fwd ; h_t^bwd]                for t < lengths[n], 0 for the padded steps
    final[n]      = [h_{lengths[n]}^fwd ; h_1^bwd]     the last layer's end of each direction

This is the shared reading step of the understanding structures (many-to-one classifiers and regressors,
the synchronous many-to-many tagger, the tagger's character-level word features).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..checks import check_dropout, check_whole_number  # noqa: F401  (re-exported for the other models)
from ..errors import InputError
from .recurrent import recurrent_layer


def check_lengths(lengths: Tensor | None, batch: int, steps: int) -> None:
    """InputError unless ``lengths`` is None or (N,) whole numbers in [1, L]."""
    if lengths is None:
        return
    if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.is_floating_point():
        raise InputError(f"lengths must be a 1-D integer tensor of {batch} sequence lengths, got {lengths!r}")
    if lengths.numel() != batch:
        raise InputError(
            f"lengths has {lengths.numel()} entries for a batch of {batch} sequences; give one per sequence"
        )
    if torch.compiler.is_exporting():
        return  # the values of a traced graph's input are unknown here; the exported contract states the range
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise InputError(
            f"lengths must lie in [1, {steps}] (the padded length), got values from {int(lengths.min())} "
            f"to {int(lengths.max())}; drop empty sequences and pad to the longest"
        )


def step_mask(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """(N, L) bool, True on the real steps ``t < lengths[n]`` and False on padding (all True without lengths)."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)  # (N, L)


class RecurrentEncoder(nn.Module):
    r"""A recurrent layer from :mod:`rnnkit.nn` that reads padded batches with their lengths.

    Args:
        input_size: F, the width of each step's input vector.
        hidden_size: H, the width of each direction's hidden state.
        cell: any registered cell (:func:`rnnkit.nn.cell_names`). Default ``"lstm"``.
        num_layers: stacked recurrent layers. Default 1.
        bidirectional: read each sequence in both directions (D = 2). Default False.
        dropout: dropout between stacked layers (ignored with one layer). Default 0.
        engine: ``"auto"`` (default), ``"fused"`` (PyTorch kernels) or ``"explicit"`` (rnnkit's hand-written BPTT).
        options: the regularisers of :data:`rnnkit.models.recurrent.RECURRENT_OPTIONS` (``recurrent_dropout``,
            ``zoneout``, ``weight_drop``, ``forget_bias``).

    Inputs: x, lengths
        x: (N, L, F) float steps, batch first.
        lengths: (N,) integer lengths in [1, L], or None when every sequence is L steps long.

    Outputs: outputs, final
        outputs: (N, L, D * H) the last layer's hidden state at every step, 0 on padded steps.
        final: (N, D * H) the last layer's final hidden state of each direction (forward at step
            ``lengths[n]``, backward at step 1).

    Example::

        >>> encoder = RecurrentEncoder(3, 8, cell="gru", bidirectional=True)
        >>> outputs, final = encoder(torch.randn(2, 5, 3), torch.tensor([5, 2]))
        >>> outputs.shape, final.shape
        (torch.Size([2, 5, 16]), torch.Size([2, 16]))
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "lstm", num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, engine: str = "auto", **options):
        super().__init__()
        check_whole_number("input_size", input_size)
        check_whole_number("hidden_size", hidden_size)
        check_whole_number("num_layers", num_layers)
        check_dropout(dropout)
        self.directions = 2 if bidirectional else 1
        self.output_size = self.directions * hidden_size
        self.rnn = recurrent_layer(cell, input_size, hidden_size, num_layers, bidirectional=bidirectional,
                                   dropout=dropout, engine=engine, **options)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        N, L = x.shape[0], x.shape[1]
        check_lengths(lengths, N, L)
        if lengths is None:
            outputs, state = self.rnn(x)  # (N, L, D*H)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_outputs, state = self.rnn(packed)
            outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=L)  # (N, L, D*H)
        h_n = state[0] if isinstance(state, tuple) else state  # (num_layers*D, N, H): a cell state comes as (h_n, c_n)
        last_layer = h_n[-self.directions:]  # (D, N, H)
        final = last_layer.transpose(0, 1).reshape(N, self.output_size)  # (N, D*H)
        return outputs, final
