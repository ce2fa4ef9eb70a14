"""Tests generated from the cell registry: registering a cell is all it takes for it to be tested.

For every registered cell, the explicit engine (hand-written BPTT) must equal the reference engine (the
cell's own step equations under autograd) in outputs, states and every gradient, float64 within 1e-10,
over layers x directions x batch_first x padded / packed (unsorted lengths) / unbatched input; with the
regularisers drawn the same; under gradcheck and gradgradcheck; chunk by chunk; and its trace gates must
be the gates of its equations.
"""

from __future__ import annotations

import itertools
import zlib

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_sequence

import rnnkit.nn as rn
from rnnkit.nn.engines.explicit import SequenceRun
from rnnkit.nn.engines.reference import reference_sequence

CELLS = rn.cell_names()
IN, H = 3, 4
RTOL = 1e-10


def step_engines(name: str) -> list[str]:
    """rnnkit's fast engines for this cell, each tested against the reference: the explicit (step) engine,
    and the scan engine for linear recurrences."""
    return ["explicit", "scan"] if rn.get_cell(name).linear else ["explicit"]


def make(name, engine, seed=0, **kwargs):
    torch.manual_seed(seed)
    return rn.Recurrent(name, IN, H, engine=engine, dtype=torch.float64, **kwargs)


def twin(name, engine, **kwargs):
    """The same layer twice (same weights): on ``engine`` and on the reference engine."""
    ours = make(name, engine, **kwargs)
    ref = make(name, "reference", **kwargs)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def inputs(kind: str, batch_first: bool, seed: int):
    torch.manual_seed(seed)
    L, N = 5, 3
    if kind == "packed":
        leaves = [torch.randn(n, IN, dtype=torch.float64, requires_grad=True) for n in (3, 5, 2)]
        return pack_sequence(leaves, enforce_sorted=False), leaves
    shape = (L, IN) if kind == "unbatched" else ((N, L, IN) if batch_first else (L, N, IN))
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    return x, [x]


def initial_state(layer, kind, seed):
    torch.manual_seed(seed + 1)
    k = layer.num_layers * (2 if layer.bidirectional else 1)
    batch = () if kind == "unbatched" else (3,)
    parts = [torch.randn(k, *batch, size, dtype=torch.float64, requires_grad=True) for size in layer.cell.state_sizes()]
    return parts, (tuple(parts) if len(parts) == 2 else parts[0])


def flat(result):
    output, state = result
    out = output.data if isinstance(output, PackedSequence) else output
    return [out, *(state if isinstance(state, tuple) else (state,))]


def weighted_sum(tensors, seed):
    """One scalar that uses every output with random weights, so that no gradient is trivial."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in tensors)


def assert_close(got, want):
    torch.testing.assert_close(got, want, rtol=RTOL, atol=RTOL * float(want.detach().abs().max() + 1e-30))


def compare(ours, ref, x, leaves, parts, hx, seed, rng_seed=123):
    torch.manual_seed(rng_seed)  # the same regulariser masks on both sides
    got = flat(ours(x, hx))
    torch.manual_seed(rng_seed)
    want = flat(ref(x, hx))
    for a, b in zip(got, want, strict=True):
        assert_close(a, b)
    wrt = [*leaves, *parts, *ours.parameters()]
    g1 = torch.autograd.grad(weighted_sum(got, seed), wrt, allow_unused=True, retain_graph=True)
    wrt_ref = [*leaves, *parts, *ref.parameters()]
    g2 = torch.autograd.grad(weighted_sum(want, seed), wrt_ref, allow_unused=True)
    for a, b in zip(g1, g2, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert_close(a, b)


GRID = list(itertools.product(CELLS, [1, 2], [False, True], [False, True], ["batched", "packed", "unbatched"]))


@pytest.mark.parametrize("name,num_layers,bidirectional,batch_first,kind", GRID,
                         ids=["-".join(map(str, g)) for g in GRID])
def test_explicit_equals_reference(name, num_layers, bidirectional, batch_first, kind):
    seed = zlib.crc32(f"{name}{num_layers}{bidirectional}{batch_first}{kind}".encode())
    for engine in step_engines(name):
        ours, ref = twin(name, engine, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
        x, leaves = inputs(kind, batch_first, seed)
        parts, hx = initial_state(ours, kind, seed)
        compare(ours, ref, x, leaves, parts, hx, seed)


REGULARISED = [("recurrent_dropout", 0.4), ("zoneout", 0.3), ("weight_drop", 0.5), ("bptt_window", 2),
               ("dropout", 0.3)]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("option,value", REGULARISED, ids=[o for o, _ in REGULARISED])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_regularised_explicit_equals_reference(name, option, value, training):
    cell = rn.get_cell(name)
    if option in ("recurrent_dropout", "weight_drop") and cell.recurrent_weight is None:
        pytest.skip(f"{name} has no recurrent weight matrix for {option} to act on")
    seed = zlib.crc32(f"{name}{option}".encode())
    for engine in step_engines(name):
        ours, ref = twin(name, engine, num_layers=2, bidirectional=True, **{option: value})
        ours.train(training)
        ref.train(training)
        x, leaves = inputs("packed", False, seed)
        parts, hx = initial_state(ours, "packed", seed)
        compare(ours, ref, x, leaves, parts, hx, seed)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck(name):
    """Central differences against the hand-written BPTT, with packed lengths and zoneout in evaluation."""
    layer = make(name, "explicit", num_layers=1, bidirectional=True, zoneout=0.2).eval()
    x, leaves = inputs("packed", False, 7)
    parts, _ = initial_state(layer, "packed", 7)
    params = list(layer.parameters())

    def fn(*tensors):
        n_leaves = len(leaves)
        packed = pack_sequence(list(tensors[:n_leaves]), enforce_sorted=False)
        state_parts = tensors[n_leaves:n_leaves + len(parts)]
        hx = tuple(state_parts) if len(state_parts) == 2 else state_parts[0]
        new = dict(zip([n for n, _ in layer.named_parameters()], tensors[n_leaves + len(parts):]))
        return tuple(flat(torch.func.functional_call(layer, new, (packed, hx))))

    # nondet_tol: a workspace that writes its gradients over its buffers answers a second backward through
    # the same graph from the reference equations: the same numbers up to rounding
    assert torch.autograd.gradcheck(fn, (*leaves, *parts, *params), eps=1e-6, atol=1e-7, nondet_tol=1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_double_backward_is_exact(name):
    """create_graph=True differentiates the reference equations on every fast engine: never a silent zero."""
    for engine in step_engines(name):
        layer = make(name, engine)
        params = dict(layer.named_parameters())
        torch.manual_seed(3)
        x = torch.randn(4, 2, IN, dtype=torch.float64, requires_grad=True)

        def fn(x, *weights):
            out, _ = torch.func.functional_call(layer, dict(zip(params, weights)), (x,))
            return out

        assert torch.autograd.gradgradcheck(fn, (x, *params.values()), eps=1e-6, atol=1e-6), engine


@pytest.mark.parametrize("name", CELLS)
def test_chunked_equals_whole(name):
    """Streaming: the sequence in chunks with the state carried equals the whole sequence."""
    layer = make(name, "explicit", num_layers=2)
    torch.manual_seed(5)
    x = torch.randn(9, 2, IN, dtype=torch.float64)
    whole, state_whole = layer(x)
    state, pieces = None, []
    for chunk in x.split(4):
        out, state = layer(chunk, state)
        pieces.append(out)
        state = rn.detach_state(state)
    assert_close(torch.cat(pieces), whole)
    for a, b in zip(flat((whole, state)), flat((whole, state_whole))):
        assert_close(a, b)


@pytest.mark.parametrize("name", CELLS)
def test_trace_gates_are_the_equations(name):
    """Trace's hidden states and gates equal the reference step's, step by step."""
    layer = make(name, "explicit")
    torch.manual_seed(6)
    x = torch.randn(5, 2, IN, dtype=torch.float64)
    trace = layer.trace(x)
    p = {s.name: getattr(layer, f"{s.name}_l0") for s in layer.cell.active_specs(IN)}
    zeros = [x.new_zeros(2, size) for size in layer.cell.state_sizes()]
    record: list = []
    y, _, _ = reference_sequence(SequenceRun(layer.cell, tuple(p)), x, zeros[0],
                                 zeros[1] if len(zeros) == 2 else None, p, record=record)
    assert_close(trace.hidden[0], y)
    assert set(trace.gates) == set(layer.cell.gate_names)
    for gate in layer.cell.gate_names:
        assert_close(trace.gates[gate][0], torch.stack([r[gate] for r in record]))
    assert (trace.cell is not None) == layer.cell.has_cell_state


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("engine", ["explicit", "reference", "auto"])
def test_empty_batch_and_empty_sequence_as_torch_nn(name, engine):
    layer = rn.Recurrent(name, IN, H, num_layers=2, engine=engine)
    out, _ = layer(torch.randn(5, 0, IN))
    assert out.shape == (5, 0, H)
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0 in RNN"):
        layer(torch.randn(0, 3, IN))


@pytest.mark.parametrize("name", CELLS)
def test_input_errors_in_torch_nn_words(name):
    layer = rn.Recurrent(name, IN, H)
    with pytest.raises(RuntimeError, match=f"input.size\\(-1\\) must be equal to input_size. Expected {IN}, got 5"):
        layer(torch.randn(4, 2, 5))
    bad = tuple(torch.zeros(1, 2, size + 1) for size in layer.cell.state_sizes())
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        layer(torch.randn(4, 2, IN), bad if len(bad) == 2 else bad[0])
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        layer(torch.randn(2, 4, 2, IN))


@pytest.mark.parametrize("name", CELLS)
def test_dropout_one_is_accepted(name):
    layer = rn.Recurrent(name, IN, H, num_layers=2, dropout=1.0)
    out, _ = layer(torch.randn(4, 2, IN))
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="dropout"):
        rn.Recurrent(name, IN, H, dropout=1.5)
