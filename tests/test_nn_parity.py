"""The explicit engine against torch.nn over the whole grid of options; the fused engine is torch.nn's own
forward (one delegation test per class: comparing torch.nn with itself over the grid proves nothing).

Outputs, final states, and the gradients of the input, the initial states and every parameter must
agree: float64 within 1e-10 relative, float32 within 1e-5 relative.
"""

import itertools
import zlib

import pytest
import torch

from nn_helpers import LAYERS, as_hx, flat, make_pair, packed_input, random_state

RTOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def assert_close_relative(got, want, dtype):
    """Elementwise within rtol, with an absolute floor of rtol times the tensor's largest value:
    an element that cancels to near 0 in a sum is judged on the scale of the sum's terms."""
    rtol = RTOL[dtype]
    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * float(want.detach().abs().max()) + 1e-30)

GRID = list(itertools.product(
    LAYERS,  # rnn_tanh, rnn_relu, lstm, lstm_proj, gru
    [1, 2, 3],  # num_layers
    [False, True],  # bidirectional
    [False, True],  # batch_first
    [True, False],  # bias
    ["batched", "unbatched", "packed"],
))


def _run(layer, kind, x, states):
    return flat(layer(x, as_hx(layer, states)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("engine", ["explicit"])
@pytest.mark.parametrize("name,num_layers,bidirectional,batch_first,bias,kind", GRID,
                         ids=["-".join(map(str, g)) for g in GRID])
def test_matches_torch_nn(name, num_layers, bidirectional, batch_first, bias, kind, engine, dtype):
    torch.manual_seed(zlib.crc32(f"{name}{num_layers}{bidirectional}{batch_first}{bias}{kind}".encode()))
    ours, ref = make_pair(name, engine=engine, dtype=dtype, num_layers=num_layers,
                          bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    L, N = 6, 3
    if kind == "packed":
        x, leaves = packed_input([4, 6, 2], dtype)
    else:
        shape = (L, 4) if kind == "unbatched" else ((N, L, 4) if batch_first else (L, N, 4))
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        leaves = [x]
    states = random_state(ours, None if kind == "unbatched" else N, dtype)

    got = _run(ours, kind, x, states)
    want = _run(ref, kind, x, states)
    for g, w in zip(got, want, strict=True):
        assert_close_relative(g, w, dtype)

    # one scalar that uses every output and state with random weights, so no gradient is trivial
    weights = [torch.randn_like(w) for w in want]
    inputs = [*leaves, *states]
    grads_ours = torch.autograd.grad(sum((g * r).sum() for g, r in zip(got, weights)),
                                     inputs + list(ours.parameters()), retain_graph=True)
    grads_ref = torch.autograd.grad(sum((w * r).sum() for w, r in zip(want, weights)),
                                    inputs + list(ref.parameters()))
    for g, w in zip(grads_ours, grads_ref, strict=True):
        assert_close_relative(g, w, dtype)


@pytest.mark.parametrize("name", LAYERS)
def test_state_dict_round_trips_both_ways(name):
    ours, ref = make_pair(name, engine="explicit", num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for key, value in ours.state_dict().items():
        assert value.shape == ref.state_dict()[key].shape
    fresh_ref = type(ref)(**_config(ref))
    fresh_ref.load_state_dict(ours.state_dict())  # strict: rnnkit -> torch.nn
    fresh_ours = type(ours)(**_config(ref), engine="explicit")
    fresh_ours.load_state_dict(ref.state_dict())  # strict: torch.nn -> rnnkit
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(fresh_ours.double()(x)[0], fresh_ref.double()(x)[0])


def _config(layer):
    cfg = dict(input_size=layer.input_size, hidden_size=layer.hidden_size, num_layers=layer.num_layers,
               bidirectional=layer.bidirectional, bias=layer.bias, batch_first=layer.batch_first)
    if getattr(layer, "proj_size", 0):
        cfg["proj_size"] = layer.proj_size
    if hasattr(layer, "nonlinearity"):
        cfg["nonlinearity"] = layer.nonlinearity
    return cfg


@pytest.mark.parametrize("name", LAYERS)
def test_initialisation_is_torch_nn(name):
    ours_cls, torch_cls, extra = LAYERS[name]
    torch.manual_seed(7)
    ours = ours_cls(4, 5, 2, **extra)
    torch.manual_seed(7)
    ref = torch_cls(4, 5, 2, **extra)
    for (k1, v1), (k2, v2) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
        assert k1 == k2
        assert torch.equal(v1, v2)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("engine", ["explicit", "fused"])
def test_hx_defaults_to_zeros(name, engine):
    ours, ref = make_pair(name, engine=engine, num_layers=2)
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    for g, w in zip(flat(ours(x)), flat(ref(x))):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru"])
def test_fused_engine_is_torch_nn_forward(name, monkeypatch):
    """engine="fused" hands the call to the torch.nn class's forward, untouched."""
    ours, ref = make_pair(name, engine="fused", num_layers=2, bidirectional=True)
    calls = []
    torch_forward = type(ours)._torch_forward

    def spy(self, input, hx=None):
        calls.append(self)
        return torch_forward(self, input, hx)

    monkeypatch.setattr(type(ours), "_torch_forward", spy)
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    for g, w in zip(flat(ours(x)), flat(ref(x)), strict=True):
        assert torch.equal(g, w)
    assert calls == [ours]
