"""torch.autograd.gradcheck (float64 central differences) on the hand-written BPTT of each cell."""

import pytest
import torch

from rnnkit.nn.explicit import RecurrentLayerFunction

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
L, N, IN, H = 5, 3, 4, 6


def _inputs(mode, proj=0, lengths=None, bias=True):
    g = GATES[mode]
    p = proj or H
    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()
    x = torch.randn(L, N, IN, dtype=torch.float64)
    if lengths is not None:  # zero padding past each length, as pad_packed_sequence gives
        for n, length in enumerate(lengths):
            x[length:, n] = 0
    x.requires_grad_()
    h0 = leaf(N, p)
    c0 = leaf(N, H) if mode == "LSTM" else None
    w_ih, w_hh = leaf(g * H, IN, scale=0.5), leaf(g * H, p, scale=0.5)
    b_ih, b_hh = (leaf(g * H), leaf(g * H)) if bias else (None, None)
    w_hr = leaf(p, H, scale=0.5) if proj else None
    return x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr


def _check(mode, batch_sizes, window, inputs):
    fn = lambda *args: RecurrentLayerFunction.apply(mode, batch_sizes, window, *args)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", list(GATES))
def test_gradcheck_full_length(mode):
    torch.manual_seed(0)
    _check(mode, None, None, _inputs(mode))


@pytest.mark.parametrize("mode", list(GATES))
def test_gradcheck_without_bias(mode):
    torch.manual_seed(1)
    _check(mode, None, None, _inputs(mode, bias=False))


@pytest.mark.parametrize("mode", list(GATES))
def test_gradcheck_variable_lengths(mode):
    torch.manual_seed(2)
    lengths = [5, 3, 2]  # sorted decreasing, as in a PackedSequence
    batch_sizes = [sum(length > t for length in lengths) for t in range(L)]
    _check(mode, batch_sizes, None, _inputs(mode, lengths=lengths))


def test_gradcheck_lstm_projection():
    torch.manual_seed(4)
    _check("LSTM", [3, 3, 2, 2, 1], None, _inputs("LSTM", proj=3, lengths=[5, 4, 2]))
