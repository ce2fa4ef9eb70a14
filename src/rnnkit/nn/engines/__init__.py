r"""The engines that run a recurrent layer over a sequence.

* ``fused``: PyTorch's fused kernels (oneDNN on CPU, cuDNN on GPU) for the cells that have one
  (:func:`run_fused`, the whole stack at once);
* ``explicit``: rnnkit's unrolled loop with a hand-written BPTT, for any cell
  (:mod:`rnnkit.nn.engines.explicit`);
* ``reference``: the cell's own equations under autograd (:mod:`rnnkit.nn.engines.reference`);
* ``scan``: linear recurrences h_t = a_t ⊙ h_{t-1} + b_t, the whole sequence at once
  (:mod:`rnnkit.nn.engines.scan`).

``SEQUENCE_ENGINES`` maps an engine's name to the function that runs one layer in one direction:
``engine(run, x, h0, c0, params) -> (y, h_n, c_n)``.
"""

from __future__ import annotations

from torch import Tensor, _VF
from torch.nn.utils.rnn import PackedSequence

from .explicit import RecurrentSequenceFunction, SequenceRun
from .reference import reference_sequence
from .scan import scan_sequence


def run_explicit(run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
    result = RecurrentSequenceFunction.apply(run, x, h0, c0, *p.values())
    return result if len(result) == 3 else (*result, None)


SEQUENCE_ENGINES = {"explicit": run_explicit, "reference": reference_sequence, "scan": scan_sequence}

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
