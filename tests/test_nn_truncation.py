"""Truncated BPTT inside one call (bptt_window) and across calls (streaming with detached state)."""

import pytest
import torch

import rnnkit.nn as rn
from nn_helpers import LAYERS, flat, make_pair


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("window", [1, 3, 4])
def test_window_keeps_forward_and_cuts_gradient(name, window):
    torch.manual_seed(0)
    full, _ = make_pair(name, engine="explicit", num_layers=2)
    cut, _ = make_pair(name, engine="explicit", num_layers=2)
    cut.load_state_dict(full.state_dict())
    cut.bptt_window = window
    L = 10
    x = torch.randn(L, 2, 4, dtype=torch.float64, requires_grad=True)

    for a, b in zip(flat(full(x)), flat(cut(x))):
        assert torch.equal(a, b)  # forward unchanged, bit for bit

    out, _ = cut(x)
    (grad_x,) = torch.autograd.grad(out[-1].sum(), x)  # the loss of the last step only
    first_in_window = (L - 1) // window * window  # the window holding step L-1 starts here
    per_step = grad_x.abs().sum((1, 2))  # (L,)
    assert torch.all(per_step[:first_in_window] == 0)  # exactly 0 beyond the window
    assert torch.all(per_step[first_in_window:] > 0)


@pytest.mark.parametrize("name", LAYERS)
def test_window_gradient_equals_torch_nn_on_detached_chunks(name):
    """bptt_window=k is exactly: run chunks of k steps, carrying the state detached (one layer)."""
    torch.manual_seed(3)
    ours, ref = make_pair(name, engine="explicit")
    ours.bptt_window = 3
    x = torch.randn(8, 2, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(8, 2, ours.proj_size or ours.hidden_size, dtype=torch.float64)
    got = torch.autograd.grad((ours(x)[0] * weights).sum(), [x, *ours.parameters()])
    state, pieces = None, []
    for chunk in x.split(3):
        out, state = ref(chunk, state)
        state = rn.detach_state(state)
        pieces.append(out)
    want = torch.autograd.grad((torch.cat(pieces) * weights).sum(), [x, *ref.parameters()])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", LAYERS)
def test_window_longer_than_sequence_is_full_bptt(name):
    torch.manual_seed(1)
    full, _ = make_pair(name, engine="explicit", bidirectional=True)
    cut, _ = make_pair(name, engine="explicit", bidirectional=True)
    cut.load_state_dict(full.state_dict())
    cut.bptt_window = 50
    x = torch.randn(7, 2, 4, dtype=torch.float64, requires_grad=True)
    g_full = torch.autograd.grad(full(x)[0].sum(), [x, *full.parameters()])
    g_cut = torch.autograd.grad(cut(x)[0].sum(), [x, *cut.parameters()])
    for a, b in zip(g_full, g_cut):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("engine", ["explicit", "fused"])
def test_whole_sequence_equals_chunks_with_state_carried(name, engine):
    torch.manual_seed(2)
    layer, _ = make_pair(name, engine=engine, num_layers=2, batch_first=True)
    x = torch.randn(3, 12, 4, dtype=torch.float64)
    whole, whole_state = layer(x)
    state, pieces = None, []
    for chunk in x.split(5, dim=1):  # chunks of 5, 5 and 2 steps
        out, state = layer(chunk, state)
        state = rn.detach_state(state)
        pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces, 1), whole, rtol=1e-12, atol=1e-14)
    for a, b in zip(flat((whole, whole_state))[1:], flat((whole, state))[1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_detached_state_stops_gradient_at_the_call_boundary():
    layer = rn.LSTM(4, 5, engine="explicit", dtype=torch.float64)
    first = torch.randn(6, 2, 4, dtype=torch.float64, requires_grad=True)
    second = torch.randn(6, 2, 4, dtype=torch.float64)
    _, state = layer(first)
    carried = rn.detach_state(state)
    assert all(not s.requires_grad for s in carried)
    out, _ = layer(second, carried)
    out.sum().backward()
    assert first.grad is None  # nothing flowed back into the previous chunk
    _, state = layer(first)
    layer(second, state)[0].sum().backward()  # without detaching it does
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_detach_state_handles_none_tensor_and_tuple():
    assert rn.detach_state(None) is None
    t = torch.ones(2, requires_grad=True) * 2
    assert not rn.detach_state(t).requires_grad
    h, c = rn.detach_state((t, t))
    assert not h.requires_grad and not c.requires_grad
