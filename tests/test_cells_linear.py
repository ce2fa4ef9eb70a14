"""The linear cells (mingru, minlstm, rglru) on the scan engine and the step engine.

The oracle is a plain loop over time of each cell's equations as issue 13 states them, written here apart from
the cells' code; the scan engine must equal the step (explicit) engine and the reference engine in outputs, states
and every gradient (float64, 1e-10) over layers x directions x batch_first x packed (unsorted) x unbatched input,
with the regularisers that act on a linear recurrence, under gradcheck and gradgradcheck, over 16,384 steps in
float32, and step by step with the state carried (generation).
"""

from __future__ import annotations

import itertools
import math
import zlib

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_sequence

import rnnkit.nn as rn

LINEAR = ["mingru", "minlstm", "rglru"]
IN, H = 3, 4
TOL = 1e-10

# --- the oracle: each cell's equations in a plain loop --------------------------------------------------------------
def _g(v):
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def loop_mingru(x, h, p):
    ys = []
    for x_t in x:
        v = x_t @ p["weight_ih"].t() + p["bias_ih"]
        z, cand = torch.sigmoid(v[:, :H]), _g(v[:, H:])
        h = (1 - z) * h + z * cand
        ys.append(h)
    return torch.stack(ys)


def loop_minlstm(x, h, p):
    ys = []
    for x_t in x:
        v = x_t @ p["weight_ih"].t() + p["bias_ih"]
        f, i, cand = torch.sigmoid(v[:, :H]), torch.sigmoid(v[:, H:2 * H]), _g(v[:, 2 * H:])
        h = f / (f + i) * h + i / (f + i) * cand
        ys.append(h)
    return torch.stack(ys)


def loop_rglru(x, h, p):
    ys = []
    for x_t in x:
        u = x_t @ p["weight_in"].t() + p["bias_in"]
        r = torch.sigmoid(u @ p["weight_a"].t() + p["bias_a"])
        i = torch.sigmoid(u @ p["weight_x"].t() + p["bias_x"])
        a = torch.exp(-8 * r * F.softplus(-p["lambda"]))
        h = a * h + torch.sqrt(1 - a ** 2) * (i * u)
        ys.append(h)
    return torch.stack(ys)


LOOPS = {"mingru": loop_mingru, "minlstm": loop_minlstm, "rglru": loop_rglru}


def make(name, engine, seed=0, dtype=torch.float64, **kwargs):
    torch.manual_seed(seed)
    return rn.Recurrent(name, IN, H, engine=engine, dtype=dtype, **kwargs)


def twins(name, engines, **kwargs):
    """The same layer (same weights) on each engine."""
    layers = [make(name, e, **kwargs) for e in engines]
    for layer in layers[1:]:
        layer.load_state_dict(layers[0].state_dict())
    return layers


def inputs(kind, batch_first, seed, L=6, N=3):
    torch.manual_seed(seed)
    if kind == "packed":
        leaves = [torch.randn(n, IN, dtype=torch.float64, requires_grad=True) for n in (3, L, 2)]
        return pack_sequence(leaves, enforce_sorted=False), leaves
    shape = (L, IN) if kind == "unbatched" else ((N, L, IN) if batch_first else (L, N, IN))
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    return x, [x]


def initial_state(layer, kind, seed):
    torch.manual_seed(seed + 1)
    k = layer.num_layers * (2 if layer.bidirectional else 1)
    batch = () if kind == "unbatched" else (3,)
    h0 = torch.randn(k, *batch, H, dtype=torch.float64, requires_grad=True)
    return h0


def flat(result):
    output, h_n = result
    return [output.data if isinstance(output, PackedSequence) else output, h_n]


def weighted_sum(tensors, seed):
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in tensors)


def assert_close(got, want, tol=TOL):
    torch.testing.assert_close(got, want, rtol=tol, atol=tol * float(want.detach().abs().max() + 1e-30))


def run_all(layers, x, leaves, h0, seed, rng_seed=123):
    """Outputs and the gradients of every input, state and parameter, for each layer (same masks drawn)."""
    results = []
    for layer in layers:
        torch.manual_seed(rng_seed)
        out = flat(layer(x, h0))
        wrt = [*leaves, *([] if h0 is None else [h0]), *layer.parameters()]
        grads = torch.autograd.grad(weighted_sum(out, seed), wrt, retain_graph=True)
        results.append((out, grads))
    return results


def assert_same(results, tol=TOL):
    (out0, grads0), *rest = results
    for out, grads in rest:
        for a, b in zip(out, out0, strict=True):
            assert_close(a, b, tol)
        for a, b in zip(grads, grads0, strict=True):
            assert_close(a, b, tol)


# --- the cells as issue 13 names them ------------------------------------------------------------------------------
def test_registered_with_the_issues_parameters():
    assert set(LINEAR) <= set(rn.cell_names())
    shapes = {
        "mingru": {"weight_ih_l0": (2 * H, IN), "bias_ih_l0": (2 * H,)},
        "minlstm": {"weight_ih_l0": (3 * H, IN), "bias_ih_l0": (3 * H,)},
        "rglru": {"weight_in_l0": (H, IN), "bias_in_l0": (H,), "weight_a_l0": (H, H), "bias_a_l0": (H,),
                  "weight_x_l0": (H, H), "bias_x_l0": (H,), "lambda_l0": (H,)},
    }
    for name, want in shapes.items():
        layer = rn.Recurrent(name, IN, H)
        assert {k: tuple(v.shape) for k, v in layer.named_parameters()} == want
        assert rn.get_cell(name).linear and not rn.get_cell(name).has_cell_state
    bidirectional = rn.Recurrent("rglru", IN, H, num_layers=2, bidirectional=True)
    assert "lambda_l1_reverse" in dict(bidirectional.named_parameters())
    assert bidirectional.weight_in_l1.shape == (H, 2 * H)


def test_rglru_decay_initialised_as_griffin():
    layer = rn.Recurrent("rglru", IN, 512)
    decay = torch.sigmoid(layer.lambda_l0.detach().double()) ** 8  # a^c = σ(Λ)^c
    assert decay.min() >= 0.9 - 1e-9 and decay.max() <= 0.999 + 1e-9
    assert abs(decay.mean().item() - 0.9495) < 0.01  # uniform, not bunched at one end


def test_minlstm_forget_bias_goes_to_the_forget_rows():
    plain, biased = make("minlstm", "explicit"), make("minlstm", "explicit", forget_bias=1.0)
    diff = (biased.bias_ih_l0 - plain.bias_ih_l0).detach()
    assert torch.equal(diff, torch.cat([torch.ones(H), torch.zeros(2 * H)]).double())


def test_mingru_activation_g_is_the_issues():
    from rnnkit.nn.cells.mingru import g

    v = torch.tensor([-3.0, -0.5, 0.0, 0.25, 2.0], dtype=torch.float64)
    torch.testing.assert_close(g(v), torch.tensor([torch.sigmoid(torch.tensor(-3.0)).item(),
                                                   torch.sigmoid(torch.tensor(-0.5)).item(), 0.5, 0.75, 2.5],
                                                  dtype=torch.float64))


# --- every engine against the plain loop ---------------------------------------------------------------------------
ENGINES = ["explicit", "reference", "scan"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", LINEAR)
def test_engine_equals_the_plain_loop(name, engine):
    layer = make(name, engine)
    torch.manual_seed(9)
    x = torch.randn(70, 3, IN, dtype=torch.float64, requires_grad=True)  # long enough for the blocked scan
    h0 = torch.randn(1, 3, H, dtype=torch.float64, requires_grad=True)
    p = {n[: -len("_l0")]: t for n, t in layer.named_parameters()}
    y, h_n = layer(x, h0)
    want = LOOPS[name](x, h0[0], p)
    assert_close(y, want)
    assert_close(h_n[0], want[-1])
    wrt = [x, h0, *p.values()]
    got = torch.autograd.grad(weighted_sum([y], 4), wrt)
    expected = torch.autograd.grad(weighted_sum([want], 4), wrt)
    for a, b in zip(got, expected, strict=True):
        assert_close(a, b)


# --- the scan engine against the step engine and the reference, over the option grid -------------------------------
GRID = list(itertools.product(LINEAR, [1, 2], [False, True], [False, True], ["batched", "packed", "unbatched"]))


@pytest.mark.parametrize("name,num_layers,bidirectional,batch_first,kind", GRID,
                         ids=["-".join(map(str, g)) for g in GRID])
def test_scan_equals_step_engine(name, num_layers, bidirectional, batch_first, kind):
    seed = zlib.crc32(f"{name}{num_layers}{bidirectional}{batch_first}{kind}".encode())
    layers = twins(name, ["scan", "explicit", "reference"], num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first)
    x, leaves = inputs(kind, batch_first, seed)
    h0 = initial_state(layers[0], kind, seed)
    assert_same(run_all(layers, x, leaves, h0, seed))


REGULARISED = [("zoneout", 0.3), ("bptt_window", 2), ("dropout", 0.3), ("init_state", "learned")]


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("option,value", REGULARISED, ids=[o for o, _ in REGULARISED])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_scan_with_regularisers_equals_step_engine(name, option, value, training):
    """Zoneout keeps the recurrence linear (a' = m + (1 − m) a, b' = (1 − m) b); truncation restarts the reverse
    scan at each window; the same masks are drawn on every engine."""
    seed = zlib.crc32(f"{name}{option}".encode())
    layers = twins(name, ["scan", "explicit", "reference"], num_layers=2, bidirectional=True, **{option: value})
    for layer in layers:
        layer.train(training)
    x, leaves = inputs("packed", False, seed, L=7)
    h0 = None if option == "init_state" else initial_state(layers[0], "packed", seed)  # learned: the layer's own
    assert_same(run_all(layers, x, leaves, h0, seed))


@pytest.mark.parametrize("name", LINEAR)
def test_truncation_stops_the_gradient_on_the_scan_engine(name):
    layer = make(name, "scan", bptt_window=3)
    x = torch.randn(9, 2, IN, dtype=torch.float64, requires_grad=True)
    y, _ = layer(x)
    (dx,) = torch.autograd.grad(y[7].sum(), x)
    assert dx[:6].abs().sum() == 0 and dx[6:8].abs().sum() > 0


@pytest.mark.parametrize("name", LINEAR)
def test_gradcheck_scan_engine(name):
    """Central differences against the scan engine's backward, packed, bidirectional, zoneout in evaluation."""
    layer = make(name, "scan", bidirectional=True, zoneout=0.2).eval()
    x, leaves = inputs("packed", False, 7, L=5)
    h0 = initial_state(layer, "packed", 7)
    names = [n for n, _ in layer.named_parameters()]

    def fn(*tensors):
        packed = pack_sequence(list(tensors[:3]), enforce_sorted=False)
        params = dict(zip(names, tensors[4:]))
        return tuple(flat(torch.func.functional_call(layer, params, (packed, tensors[3]))))

    assert torch.autograd.gradcheck(fn, (*leaves, h0, *layer.parameters()), eps=1e-6, atol=1e-7)


# (double backward on the scan engine: tests/test_cells.py, test_double_backward_is_exact)


# --- long sequences, and generation step by step -------------------------------------------------------------------
@pytest.mark.parametrize("name", LINEAR)
def test_long_sequence_float32_is_finite_and_equals_the_step_engine(name):
    L = 16_384
    scan, step = twins(name, ["scan", "explicit"], dtype=torch.float32)
    torch.manual_seed(11)
    x = torch.randn(L, 2, IN, requires_grad=True)
    results = []
    for layer in (scan, step):
        y, h_n = layer(x)
        grads = torch.autograd.grad(weighted_sum([y[-100:], h_n], 2), [x, *layer.parameters()])
        assert torch.isfinite(y).all() and all(torch.isfinite(g).all() for g in grads)
        results.append(([y, h_n], grads))
    assert_same(results, tol=1e-4)


@pytest.mark.parametrize("engine", ["explicit", "scan"])
@pytest.mark.parametrize("name", LINEAR)
def test_generation_with_the_state_carried_equals_the_whole_sequence(name, engine):
    """One step per call (the generation loop: O(1) memory per token) equals one call over the sequence."""
    layer = make(name, engine, num_layers=2)
    torch.manual_seed(5)
    x = torch.randn(80, 2, IN, dtype=torch.float64)
    with torch.no_grad():
        whole, h_whole = layer(x)
        state, steps = None, []
        for x_t in x.split(1):
            out, state = layer(x_t, state)
            steps.append(out)
    assert_close(torch.cat(steps), whole)
    assert_close(state, h_whole)


def test_auto_picks_the_native_engine_for_linear_cells_else_scan():
    layer = rn.Recurrent("mingru", IN, H)
    assert layer._engine_now() == ("native" if rn.native_available() and "mingru" in rn.native_info()["kernels"]
                                   else "scan")
    assert layer.half()._engine_now() == "scan"  # float16: the native kernels run float32 and float64 only
    with pytest.raises(ValueError, match="linear"):
        rn.Recurrent("lstm", IN, H, engine="scan")


def test_rglru_decay_near_one_keeps_the_input_scale():
    """sqrt(1 − a²) from expm1: exact for a near 1, where 1 − a*a would lose every digit in float32."""
    cell = rn.get_cell("rglru")(H)
    p = {"weight_a": torch.zeros(H, H), "weight_x": torch.zeros(H, H), "lambda": torch.full((H,), 20.0)}
    u = torch.ones(1, 1, H)
    a, b, _ = cell.linear_coefficients(u.clone(), p)
    log_a = -8 * 0.5 * math.log1p(math.exp(-20.0))
    assert torch.allclose(b, torch.full_like(b, 0.5 * math.sqrt(-math.expm1(2 * log_a))), rtol=1e-5)
    assert (1 - a * a == 0).all()  # a rounds to 1 in float32: the naive sqrt(1 − a²) would give b = 0


def test_time_chunks_cover_the_sequence_once():
    from rnnkit.nn.ops.chunks import CHUNK_ELEMENTS, time_chunks

    for L, per_step in [(1, 1), (4096, 2048), (1000, 3 * CHUNK_ELEMENTS), (77, 100)]:
        chunks = time_chunks(L, per_step, torch.device("cpu"))
        assert [i for w in chunks for i in range(w.start, w.stop)] == list(range(L))
        assert all((w.stop - w.start) * per_step <= max(CHUNK_ELEMENTS, per_step) for w in chunks)
    assert time_chunks(4096, 2048, torch.device("meta")) == [slice(0, 4096)]  # one launch per operation on a GPU
