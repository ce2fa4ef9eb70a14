"""The regularisers of rnnkit.nn: recurrent dropout, zoneout, weight drop, forget bias, locked and
embedding dropout: their masks have the structure the papers define, and each is off in evaluation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit.nn as rn
from rnnkit.nn.engines import explicit as explicit_engine
from rnnkit.nn.native import has_kernel


def capture_runs(monkeypatch):
    """Record the SequenceRun (with its masks) of every layer-direction the explicit engine runs."""
    runs = []
    original = explicit_engine.forward_sequence

    def spy(run, *args):
        runs.append(run)
        return original(run, *args)

    monkeypatch.setattr(explicit_engine, "forward_sequence", spy)
    return runs


def test_recurrent_dropout_mask_is_fixed_over_time_and_differs_between_sequences(monkeypatch):
    runs = capture_runs(monkeypatch)
    layer = rn.Recurrent("lstm", 3, 64, recurrent_dropout=0.5, engine="explicit")
    layer(torch.randn(7, 4, 3))
    mask = runs[0].recurrent_mask  # (N, H): one per sequence, used at every step
    assert mask.shape == (4, 64)
    assert set(mask.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    assert not torch.equal(mask[0], mask[1])  # each sequence draws its own
    # the same at every step: the step engine multiplies h_{t-1} by this one (N, H) mask, and the
    # reference engine, given the same mask, agrees with it (test_cells); a second call draws anew
    layer(torch.randn(7, 4, 3))
    assert not torch.equal(runs[1].recurrent_mask, mask)


def test_recurrent_dropout_acts_where_h_enters_w_hh():
    """A GRU's direct path z * h_{t-1} reads the unmasked state: with W_hh = 0 the mask changes nothing."""
    layer = rn.Recurrent("gru", 3, 8, recurrent_dropout=0.9, engine="explicit")
    with torch.no_grad():
        layer.weight_hh_l0.zero_()
    x, h0 = torch.randn(5, 2, 3), torch.randn(1, 2, 8)
    torch.testing.assert_close(layer(x, h0)[0], layer.eval()(x, h0)[0])


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout", "weight_drop"])
def test_each_regulariser_is_deterministic_in_evaluation(option):
    layer = rn.Recurrent("lstm", 3, 8, num_layers=2, **{option: 0.5}).eval()
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize("option", ["recurrent_dropout", "weight_drop"])
def test_dropouts_are_the_identity_in_evaluation(option):
    torch.manual_seed(0)
    plain = rn.Recurrent("gru", 3, 8, engine="explicit")
    regularised = rn.Recurrent("gru", 3, 8, engine="explicit", **{option: 0.5})
    regularised.load_state_dict(plain.state_dict())
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(regularised.eval()(x)[0], plain.eval()(x)[0])
    assert not torch.allclose(regularised.train()(x)[0], plain(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "layernorm_gru"])
def test_zoneout_in_evaluation_is_its_expectation(cell):
    """Eval: h_t = p h_{t-1} + (1 - p) h~_t (and c_t alike), written out by hand with the cell's step."""
    p = 0.3
    layer = rn.Recurrent(cell, 3, 5, zoneout=p, dtype=torch.float64).eval()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    params = {s.name: getattr(layer, f"{s.name}_l0") for s in layer.cell.active_specs(3)}
    state = tuple(x.new_zeros(2, size) for size in layer.cell.state_sizes())
    outputs = []
    for t in range(6):
        new, _ = layer.cell.reference_step(params, x[t], state, state[0])
        state = tuple(p * old + (1 - p) * s for old, s in zip(state, new))
        outputs.append(state[0])
    torch.testing.assert_close(layer(x)[0], torch.stack(outputs))


def test_zoneout_in_training_keeps_units_per_step(monkeypatch):
    runs = capture_runs(monkeypatch)
    layer = rn.Recurrent("lstm", 3, 32, zoneout=0.4, engine="explicit")
    layer(torch.randn(10, 4, 3))
    mask_h, mask_c = runs[0].zoneout_h, runs[0].zoneout_c
    assert mask_h.shape == mask_c.shape == (10, 4, 32)
    assert not torch.equal(mask_h[0], mask_h[1])  # a fresh mask at every step
    assert 0.25 < float(mask_h.mean()) < 0.55


def test_zoneout_kept_units_hold_their_value(monkeypatch):
    runs = capture_runs(monkeypatch)
    layer = rn.Recurrent("gru", 3, 16, zoneout=0.5, engine="explicit")
    x = torch.randn(5, 2, 3)
    out, _ = layer(x)
    keep = runs[0].zoneout_h.bool()  # (L, N, H)
    previous = torch.cat([torch.zeros(1, 2, 16), out[:-1]])
    torch.testing.assert_close(out[keep], previous[keep])


@pytest.mark.parametrize("engine", ["fused", "explicit"])
def test_weight_drop_leaves_the_stored_weights_untouched(engine):
    layer = rn.LSTM(3, 8, weight_drop=0.5, engine=engine)
    before = layer.weight_hh_l0.detach().clone()
    out, _ = layer(torch.randn(5, 2, 3))
    out.sum().backward()
    torch.testing.assert_close(layer.weight_hh_l0.detach(), before)
    assert layer.weight_hh_l0.grad is not None and (layer.weight_hh_l0.grad == 0).any()  # dropped entries


def test_weight_drop_on_the_fused_engine_is_one_mask_per_call():
    torch.manual_seed(0)
    layer = rn.LSTM(3, 8, weight_drop=0.5)
    x = torch.randn(5, 2, 3)
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(a, b)  # a new mask each call
    reference = nn.LSTM(3, 8)
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer.eval()(x)[0], reference(x)[0])  # no mask in evaluation


@pytest.mark.parametrize("cell,bias_name", [("lstm", "bias_ih"), ("layernorm_lstm", "bias")])
def test_forget_bias_shifts_the_forget_block_only(cell, bias_name):
    torch.manual_seed(0)
    plain = rn.Recurrent(cell, 3, 4, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    shifted = rn.Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, forget_bias=3.0)
    for name, value in shifted.named_parameters():
        diff = value.detach() - getattr(plain, name).detach()
        if name.startswith(bias_name + "_l"):
            torch.testing.assert_close(diff, torch.tensor([0.0] * 4 + [3.0] * 4 + [0.0] * 8))
        else:
            assert (diff == 0).all()


def test_forget_bias_on_a_cell_without_forget_gate_is_refused():
    with pytest.raises(ValueError, match="no forget gate"):
        rn.Recurrent("gru", 3, 4, forget_bias=1.0)


def test_options_that_need_rnnkit_engines_refuse_fused():
    with pytest.raises(ValueError, match="zoneout needs engine='explicit'"):
        rn.Recurrent("lstm", 3, 4, zoneout=0.1, engine="fused")
    with pytest.raises(ValueError, match="no fused PyTorch kernel"):
        rn.Recurrent("layernorm_lstm", 3, 4, engine="fused")
    with pytest.raises(ValueError, match="recurrent_dropout must be a probability"):
        rn.Recurrent("lstm", 3, 4, recurrent_dropout=1.0)


def test_auto_engine_runs_fused_when_it_can():
    layer = rn.Recurrent("lstm", 3, 4, recurrent_dropout=0.2)
    assert layer._engine_now() == ("native" if rn.native_available() else "explicit")
    assert layer.eval()._engine_now() == "fused"  # recurrent dropout is the identity in evaluation
    assert rn.Recurrent("layernorm_gru", 3, 4)._engine_now() == (
        "native" if has_kernel("layernorm_gru") else "explicit")


@pytest.mark.parametrize("cell,cls", [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn_tanh", nn.RNN)])
def test_recurrent_exchanges_state_dicts_with_torch_nn(cell, cls):
    ours = rn.Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    theirs = cls(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for engine in ("fused", "explicit"):
        ours.engine = engine
        torch.testing.assert_close(ours(x)[0], theirs(x)[0])
    ours.load_state_dict(cls(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64).state_dict())


def test_locked_dropout_shares_one_mask_over_time():
    drop = rn.LockedDropout(0.5, batch_first=True)
    y = drop(torch.ones(4, 9, 16))
    assert torch.equal(y[:, 0], y[:, 8])
    assert not torch.equal(y[0], y[1])
    assert torch.equal(drop.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    embedding = nn.Embedding(50, 8)
    tokens = torch.arange(50).repeat(2, 1)  # every word twice
    out = rn.embedding_dropout(embedding, tokens, 0.5, training=True)  # (2, 50, 8)
    dropped = (out[0] == 0).all(1)
    assert dropped.any() and not dropped.all()
    assert torch.equal(dropped, (out[1] == 0).all(1))  # every occurrence of a dropped word
    torch.testing.assert_close(out[0][~dropped], 2 * embedding.weight[~dropped])
    torch.testing.assert_close(rn.embedding_dropout(embedding, tokens, 0.5, training=False), embedding(tokens))


@pytest.mark.parametrize("engine", ["fused", "explicit"])
@pytest.mark.parametrize("packed", [False, True])
def test_locked_dropout_between_layers_keeps_one_mask_per_sequence(engine, packed, monkeypatch):
    """With W_ih of layer 1 the identity and W_hh zero, layer 1's pre-activations show layer 0's dropped
    output: a unit dropped for a sequence is dropped at every step."""
    torch.manual_seed(0)
    layer = rn.Recurrent("rnn_relu", 4, 6, num_layers=2, dropout=0.5, locked_dropout=True, engine=engine)
    with torch.no_grad():
        layer.weight_ih_l1.copy_(torch.eye(6))
        layer.weight_hh_l1.zero_()
        layer.bias_ih_l1.zero_()
        layer.bias_hh_l1.zero_()
        layer.weight_hh_l0.zero_()
        layer.bias_ih_l0.fill_(5.0)  # layer 0's outputs are all positive: a zero is a dropped unit
    x = torch.rand(7, 3, 4)
    if packed:
        x = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([7, 7, 7]))
    out, _ = layer(x)
    out = torch.nn.utils.rnn.pad_packed_sequence(out)[0] if packed else out  # (L, N, 6)
    dropped = out == 0
    assert dropped.any() and not dropped.all()
    assert torch.equal(dropped, dropped[:1].expand_as(dropped))  # the same units at every step
