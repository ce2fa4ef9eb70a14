"""torch.autograd.gradcheck (float64 central differences) on the hand-written BPTT of the torch cells,
called directly on the explicit engine's Function (the layer-level checks of every registered cell are
in test_cells.py)."""

import pytest
import torch

from rnnkit.nn import get_cell
from rnnkit.nn.engines.explicit import RecurrentSequenceFunction, SequenceRun

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
L, N, IN, H = 5, 3, 4, 6


def _inputs(name, proj=0, lengths=None, bias=True):
    cell = get_cell(name)(H, bias=bias, proj_size=proj)
    x = torch.randn(L, N, IN, dtype=torch.float64)
    if lengths is not None:  # zero padding past each length, as pad_packed_sequence gives
        for n, length in enumerate(lengths):
            x[length:, n] = 0
    x.requires_grad_()
    h0 = torch.randn(N, cell.output_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True) if cell.has_cell_state else None
    specs = cell.active_specs(IN)
    params = [(torch.randn(s.shape, dtype=torch.float64) * 0.5).requires_grad_() for s in specs]
    return cell, tuple(s.name for s in specs), (x, h0, c0, *params)


def _check(name, batch_sizes, window, **kwargs):
    cell, names, inputs = _inputs(name, **kwargs)
    run = SequenceRun(cell, names, batch_sizes, window)
    # (y, h_n, c_n or None, what the backward reads): the tensors
    fn = lambda *args: tuple(o for o in RecurrentSequenceFunction.apply(run, *args)[:3] if o is not None)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck_full_length(name):
    torch.manual_seed(0)
    _check(name, None, None)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck_without_bias(name):
    torch.manual_seed(1)
    _check(name, None, None, bias=False)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck_variable_lengths(name):
    torch.manual_seed(2)
    lengths = [5, 3, 2]  # sorted decreasing, as in a PackedSequence
    batch_sizes = [sum(length > t for length in lengths) for t in range(L)]
    _check(name, batch_sizes, None, lengths=lengths)


def test_gradcheck_lstm_projection():
    torch.manual_seed(4)
    _check("lstm", [3, 3, 2, 2, 1], None, proj=3, lengths=[5, 4, 2])
