"""Initial-state options, dropout between layers, input checks, and the cells."""

import pytest
import torch
from torch import nn

import rnnkit.nn as rn
from nn_helpers import LAYERS, flat, make_pair

ENGINES = ["explicit", "fused"]


# --- initial state -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("engine", ENGINES)
def test_learned_initial_state_is_used_and_trained(name, engine):
    ours_cls, _, extra = LAYERS[name]
    layer = ours_cls(4, 5, 2, bidirectional=True, init_state="learned", engine=engine, **extra)
    names = dict(layer.named_parameters())
    assert "h0" in names and names["h0"].shape == (4, layer.proj_size or 5)
    assert ("c0" in names) == isinstance(layer, nn.LSTM)
    with torch.no_grad():
        layer.h0.fill_(0.3)
    x = torch.randn(6, 3, 4)
    out, _ = layer(x)
    learned = [layer.h0, layer.c0] if isinstance(layer, nn.LSTM) else [layer.h0]
    by_hand = tuple(s.unsqueeze(1).expand(-1, 3, -1) for s in learned)  # (num_layers*D, N, H)
    hx = by_hand if isinstance(layer, nn.LSTM) else by_hand[0]
    torch.testing.assert_close(out, layer(x, hx)[0])  # same as passing the learned state by hand
    out.sum().backward()
    assert layer.h0.grad is not None and layer.h0.grad.abs().sum() > 0
    # torch.nn accepts the weights; the extra initial-state parameters are reported as unexpected
    ref = LAYERS[name][1](4, 5, 2, bidirectional=True, **extra)
    result = ref.load_state_dict(layer.state_dict(), strict=False)
    assert set(result.unexpected_keys) == ({"h0", "c0"} if isinstance(layer, nn.LSTM) else {"h0"})


@pytest.mark.parametrize("engine", ENGINES)
def test_random_initial_state_is_small_and_fresh_each_call(engine):
    layer = rn.GRU(4, 50, init_state="random", init_state_std=0.01, engine=engine)
    zero = rn.GRU(4, 50, engine=engine)
    zero.load_state_dict(layer.state_dict())
    x = torch.randn(1, 200, 4)  # one step: h_1 depends on h_0 directly
    a, b, z = layer(x)[0], layer(x)[0], zero(x)[0]
    assert not torch.equal(a, b)
    assert 0 < (a - z).abs().max() < 0.05


def test_init_state_rejects_unknown_values():
    with pytest.raises(ValueError, match="init_state"):
        rn.LSTM(4, 5, init_state="ones")
    with pytest.raises(ValueError, match="init_state_std"):
        rn.LSTM(4, 5, init_state="random", init_state_std=-1)


# --- dropout between layers ----------------------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("engine", ENGINES)
def test_dropout_between_layers_only_in_training(name, engine):
    torch.manual_seed(0)
    with_dropout, _ = make_pair(name, engine=engine, num_layers=3, dropout=0.5)
    without, _ = make_pair(name, engine=engine, num_layers=3)
    without.load_state_dict(with_dropout.state_dict())
    x = torch.randn(5, 4, 4, dtype=torch.float64)
    with_dropout.eval()
    for a, b in zip(flat(with_dropout(x)), flat(without(x))):
        torch.testing.assert_close(a, b)  # eval: no dropout at all
    with_dropout.train()
    train_out = with_dropout(x)[0]
    assert not torch.allclose(train_out, without(x)[0])  # training: dropout is active
    one_layer, _ = make_pair(name, engine=engine, num_layers=1)
    one_layer.load_state_dict({k: v for k, v in with_dropout.state_dict().items() if k.endswith("l0")})
    # dropout sits between layers: the first layer's final state is untouched by it
    torch.testing.assert_close(flat(with_dropout(x))[1][0], flat(one_layer(x))[1][0])


def test_explicit_dropout_zeroes_a_fraction_of_inter_layer_activations():
    torch.manual_seed(1)
    layer = rn.RNN(4, 200, 2, dropout=0.3, engine="explicit", nonlinearity="relu")
    with torch.no_grad():
        layer.weight_hh_l1.zero_()
        layer.weight_ih_l1.copy_(torch.eye(200))  # layer 2 sees its input through relu only
        layer.bias_ih_l1.zero_()
        layer.bias_hh_l1.zero_()
    x = torch.randn(1, 50, 4)
    out = layer(x)[0]  # (1, 50, 200): relu(dropout(layer-1 output))
    first = rn.RNN(4, 200, nonlinearity="relu")
    first.load_state_dict({k: v for k, v in layer.state_dict().items() if k.endswith("l0")})
    before = first(x)[0]
    alive = before > 0
    dropped = (out[alive] == 0).float().mean().item()
    assert 0.25 < dropped < 0.35
    kept = out[alive & (out > 0)] / before[alive & (out > 0)]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7), rtol=1e-3, atol=0)  # survivors scaled by 1/(1-p)


# --- input checks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_input_checks(engine):
    lstm = rn.LSTM(4, 5, 2, engine=engine)
    with pytest.raises(ValueError, match="2D or 3D"):
        lstm(torch.randn(2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="input_size"):
        lstm(torch.randn(6, 3, 7))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size|Expected hidden size"):
        lstm(torch.randn(6, 3, 4), (torch.zeros(1, 3, 5), torch.zeros(2, 3, 5)))
    with pytest.raises(RuntimeError, match="3-D"):
        lstm(torch.randn(6, 3, 4), (torch.zeros(2, 5), torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="dtype"):
        lstm(torch.randn(6, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="hx dtype"):
        lstm(torch.randn(6, 3, 4), (torch.zeros(2, 3, 5, dtype=torch.float64), torch.zeros(2, 3, 5)))
    with pytest.raises(RuntimeError, match="is on meta"):
        lstm(torch.randn(6, 3, 4, device="meta"))
    gru = rn.GRU(4, 5, engine=engine)
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        gru(torch.randn(6, 3, 4), torch.zeros(1, 2, 5))
    with pytest.raises(RuntimeError, match="2-D"):
        gru(torch.randn(6, 4), torch.zeros(1, 3, 5))


def test_constructor_checks():
    with pytest.raises(ValueError, match="nonlinearity"):
        rn.RNN(4, 5, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="engine"):
        rn.LSTM(4, 5, engine="cuda")
    rn.LSTM(4, 5, 2, dropout=1.0)  # accepted, as torch.nn accepts it
    with pytest.raises(ValueError, match="dropout"):
        rn.LSTM(4, 5, 2, dropout=1.5)
    with pytest.raises(ValueError, match="dropout"):
        rn.LSTM(4, 5, 2, dropout=-0.1)
    with pytest.raises(ValueError, match="proj_size"):
        rn.GRU(4, 5, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        rn.RNN(4, 5, proj_size=2)
    with pytest.raises(ValueError, match="bptt_window needs engine='explicit'"):
        rn.LSTM(4, 5, bptt_window=3)
    with pytest.raises(ValueError, match="bptt_window"):
        rn.LSTM(4, 5, bptt_window=0, engine="explicit")
    layer = rn.LSTM(4, 5, engine="explicit", bptt_window=3)
    with pytest.raises(ValueError, match="bptt_window needs"):
        layer.engine = "fused"


def test_repr_names_the_engine():
    assert "engine='explicit'" in repr(rn.GRU(4, 5, engine="explicit", bptt_window=2))
    assert "bptt_window=2" in repr(rn.GRU(4, 5, engine="explicit", bptt_window=2))


# --- cells -------------------------------------------------------------------------------------------
CELLS = {"rnn_tanh": (rn.RNNCell, nn.RNNCell, {"nonlinearity": "tanh"}),
         "rnn_relu": (rn.RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
         "lstm": (rn.LSTMCell, nn.LSTMCell, {}),
         "gru": (rn.GRUCell, nn.GRUCell, {})}


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch_nn(name, engine, batched, bias):
    ours_cls, ref_cls, extra = CELLS[name]
    ours = ours_cls(4, 5, bias=bias, engine=engine, dtype=torch.float64, **extra)
    ref = ref_cls(4, 5, bias=bias, dtype=torch.float64, **extra)
    ref.load_state_dict(ours.state_dict())
    shape = (3, 4) if batched else (4,)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    state_shape = (3, 5) if batched else (5,)
    states = [torch.randn(state_shape, dtype=torch.float64, requires_grad=True)
              for _ in range(2 if name == "lstm" else 1)]
    hx = tuple(states) if name == "lstm" else states[0]
    got, want = ours(x, hx), ref(x, hx)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    g1 = torch.autograd.grad(sum(t.sum() for t in got), [x, *states, *ours.parameters()])
    g2 = torch.autograd.grad(sum(t.sum() for t in want), [x, *states, *ref.parameters()])
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(flat((ours(x), ours(x)))[0], flat((ref(x), ref(x)))[0])  # hx=None


def test_cell_checks():
    cell = rn.LSTMCell(4, 5, engine="explicit")
    with pytest.raises(ValueError, match="1D or 2D"):
        cell(torch.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match="input_size"):
        cell(torch.randn(3, 6))
    with pytest.raises(RuntimeError, match="Input batch size 3 doesn't match hidden0 batch size 2"):
        cell(torch.randn(3, 4), (torch.zeros(2, 5), torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="engine"):
        rn.GRUCell(4, 5, engine="fast")
