"""trace(): every step's hidden state, cell state and gates, consistent with the equations."""

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import rnnkit.nn as rn
from nn_helpers import LAYERS, flat, make_pair


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_trace_shapes_and_agreement_with_forward(name, batch_first):
    torch.manual_seed(0)
    layer, _ = make_pair(name, engine="fused", num_layers=2, bidirectional=True, batch_first=batch_first)
    L, N = 6, 3
    x = torch.randn((N, L, 4) if batch_first else (L, N, 4), dtype=torch.float64)
    trace = layer.trace(x)
    for a, b in zip(flat((trace.output, trace.state)), flat(layer(x))):
        torch.testing.assert_close(a, b)
    h_out = layer.proj_size or layer.hidden_size
    steps = (N, L) if batch_first else (L, N)
    assert trace.hidden.shape == (4, *steps, h_out)
    # the last layer's per-step hidden states, both directions side by side, are the output
    torch.testing.assert_close(torch.cat([trace.hidden[2], trace.hidden[3]], -1), trace.output)
    expected_gates = {"lstm": {"input", "forget", "cell", "output"}, "lstm_proj": {"input", "forget", "cell", "output"},
                      "gru": {"reset", "update", "new"}}.get(name, set())
    assert set(trace.gates) == expected_gates
    for gate in trace.gates.values():
        assert gate.shape == (4, *steps, layer.hidden_size)
    assert (trace.cell is not None) == name.startswith("lstm")
    assert torch.equal(trace.lengths, torch.full((N,), L))


def test_lstm_trace_satisfies_the_cell_equations():
    torch.manual_seed(1)
    layer = rn.LSTM(4, 5, dtype=torch.float64)
    x = torch.randn(7, 2, 4, dtype=torch.float64)
    tr = layer.trace(x)
    i, f, g, o = (tr.gates[k][0] for k in ("input", "forget", "cell", "output"))  # (L, N, H)
    c_prev = torch.cat([torch.zeros(1, 2, 5, dtype=torch.float64), tr.cell[0, :-1]])
    torch.testing.assert_close(tr.cell[0], f * c_prev + i * g)
    torch.testing.assert_close(tr.hidden[0], o * torch.tanh(tr.cell[0]))
    assert ((i > 0) & (i < 1)).all() and ((g > -1) & (g < 1)).all()


def test_gru_trace_satisfies_the_cell_equations():
    torch.manual_seed(2)
    layer = rn.GRU(4, 5, dtype=torch.float64)
    x = torch.randn(7, 2, 4, dtype=torch.float64)
    tr = layer.trace(x)
    z, n = tr.gates["update"][0], tr.gates["new"][0]
    h_prev = torch.cat([torch.zeros(1, 2, 5, dtype=torch.float64), tr.hidden[0, :-1]])
    torch.testing.assert_close(tr.hidden[0], (1 - z) * n + z * h_prev)


def test_trace_of_packed_input_is_in_caller_order_with_zero_padding():
    torch.manual_seed(3)
    layer = rn.LSTM(4, 5, bidirectional=True, dtype=torch.float64)
    lengths = [3, 6, 2]
    seqs = [torch.randn(n, 4, dtype=torch.float64) for n in lengths]
    tr = layer.trace(pack_sequence(seqs, enforce_sorted=False))
    assert tr.lengths.tolist() == lengths
    for n, seq in enumerate(seqs):  # each row equals the sequence traced alone
        alone = layer.trace(seq)
        torch.testing.assert_close(tr.hidden[:, : lengths[n], n], alone.hidden)
        torch.testing.assert_close(tr.gates["forget"][:, : lengths[n], n], alone.gates["forget"])
        assert torch.all(tr.hidden[:, lengths[n]:, n] == 0)
        assert torch.all(tr.gates["forget"][:, lengths[n]:, n] == 0)


def test_trace_builds_no_graph_and_unbatched_shapes():
    layer = rn.GRU(4, 5, num_layers=2)
    tr = layer.trace(torch.randn(6, 4))
    assert tr.hidden.shape == (2, 6, 5) and tr.gates["reset"].shape == (2, 6, 5)
    assert not tr.hidden.requires_grad and not tr.output.requires_grad
