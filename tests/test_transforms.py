"""PyTorch's transforms on every engine, as torch.nn's layers take them (issue 23), generated over
``rnnkit.nn.engine_names()`` and a few cells; a combination an engine cannot run is skipped with its refusal:

* ``gradcheck(..., check_batched_grad=True)`` (a backward vmapped by the older vmap that gradcheck runs) on a small
  float64 problem, parameters included;
* ``torch.func.vmap(torch.func.grad(...))``: per-example gradients equal to a loop of plain backward passes; vmap
  over the forward with parameters that vary too (an ensemble); a plain backward vmapped by ``torch.func.vmap``;
* ``torch.autocast("cpu", dtype=torch.bfloat16)``: the output in bfloat16 where torch.nn's LSTM computes in it (the
  fused engine: exactly torch.nn's layers), or one clear refusal (the native engine, float32/float64 kernels); a
  backward inside the block, gradients to the float32 parameters;
* ``torch.compile``: one tiny model per engine equal to eager, forward and gradients (``aot_eager``; ``fullgraph``
  where the engine allows it), and one real Inductor compile through ``linear_rows``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit.nn as rn
from rnnkit.nn.ops.linear import linear_rows

ENGINES = rn.engine_names()
CELLS = ("lstm", "gru", "layernorm_lstm", "mingru")
IN, H, L, N = 3, 4, 3, 2
# the torch.nn class of a fused cell, whose behaviour under autocast the fused engine reproduces
TORCH_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN}


def _layer(cell: str, engine: str, dtype=torch.float64, **options):
    """The layer, or the test skipped with the engine's own refusal (the cell or option it cannot run)."""
    try:
        return rn.Recurrent(cell, IN, H, engine=engine, dtype=dtype, **options)
    except ValueError as refusal:
        pytest.skip(f"{engine} cannot run {cell}: {refusal}")


def _states(layer, batch: int | None, dtype=torch.float64) -> tuple[torch.Tensor, ...]:
    k = layer.num_layers * (2 if layer.bidirectional else 1)
    shape = (k, H) if batch is None else (k, batch, H)
    return tuple(torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(1 + layer.cell.has_cell_state))


def _call(layer, params: dict, x, states):
    """The layer as a function of its parameters: (output, h_n[, c_n])."""
    hx = states if layer.cell.has_cell_state else states[0]
    output, state = torch.func.functional_call(layer, params, (x, hx))
    return (output, *state) if isinstance(state, tuple) else (output, state)


grid = pytest.mark.parametrize("engine,cell", [(e, c) for e in ENGINES for c in CELLS])


# --- gradcheck with batched gradients ------------------------------------------------------------------------------
@grid
def test_gradcheck_with_batched_grad(engine, cell):
    torch.manual_seed(0)
    layer = _layer(cell, engine, bidirectional=True)
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(L, N, IN, dtype=torch.float64, requires_grad=True)
    states = _states(layer, N)
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    n = len(states)

    def fn(x, *rest):
        return _call(layer, dict(zip(names, rest[n:])), x, rest[:n])

    # a workspace that writes its gradients over its forward buffers answers a second backward through the same
    # graph from the reference equations: equal to rounding, not bitwise (as in test_cells.py)
    reuses = engine == "explicit" and layer.cell.workspace().reuses_buffers
    assert torch.autograd.gradcheck(fn, (x, *states, *params), eps=1e-6, atol=1e-7, check_batched_grad=True,
                                    nondet_tol=1e-12 if reuses else 0.0)


# --- torch.func ----------------------------------------------------------------------------------------------------
@grid
def test_vmap_of_grad_gives_per_example_gradients(engine, cell):
    torch.manual_seed(1)
    layer = _layer(cell, engine, bidirectional=True)
    params = {name: p.detach() for name, p in layer.named_parameters()}
    xs = torch.randn(4, L, IN, dtype=torch.float64)  # 4 examples, each an unbatched sequence
    shape = _states(layer, None)[0].shape
    h0s = torch.randn(4, *shape, dtype=torch.float64)  # h0 per example; c0 (cells with one) shared
    c0 = torch.randn(shape, dtype=torch.float64) if layer.cell.has_cell_state else None

    def loss(params, x, h0):
        outputs = _call(layer, params, x, (h0,) if c0 is None else (h0, c0))
        return sum((o * o).sum() for o in outputs)

    grads, values = torch.func.vmap(torch.func.grad_and_value(loss, argnums=(0, 1)), in_dims=(None, 0, 0))(
        params, xs, h0s)
    for b in range(4):
        leaves = {name: p.clone().requires_grad_() for name, p in params.items()}
        x = xs[b].clone().requires_grad_()
        value = loss(leaves, x, h0s[b])
        want = torch.autograd.grad(value, [*leaves.values(), x])
        torch.testing.assert_close(values[b], value.detach(), rtol=1e-12, atol=1e-12)
        for name, g in zip(leaves, want):
            torch.testing.assert_close(grads[0][name][b], g, rtol=1e-10, atol=1e-10, msg=name)
        torch.testing.assert_close(grads[1][b], want[-1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("engine,cell", [(e, c) for e in ENGINES for c in ("lstm", "mingru")])
def test_vmap_with_options_inside_the_recurrence(engine, cell):
    """Zoneout (evaluation), a truncation window and resets shared by every example ride along vmap's dimension."""
    torch.manual_seed(7)
    layer = _layer(cell, engine, zoneout=0.3, bptt_window=2, num_layers=2).eval()
    params = {name: p.detach() for name, p in layer.named_parameters()}
    xs = torch.randn(3, 5, IN, dtype=torch.float64)
    resets = torch.tensor([False, False, True, False, True])

    def loss(params, x):
        return torch.func.functional_call(layer, params, (x,), {"resets": resets})[0].square().sum()

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, xs)
    for b in range(3):
        leaves = {name: p.clone().requires_grad_() for name, p in params.items()}
        want = torch.autograd.grad(loss(leaves, xs[b]), list(leaves.values()))
        for name, g in zip(leaves, want):
            torch.testing.assert_close(grads[name][b], g, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("engine,cell", [(e, c) for e in ENGINES for c in ("lstm", "mingru")])
@pytest.mark.parametrize("randomness", ["same", "different"])
def test_vmap_in_training_with_masks_drawn_under_vmap(engine, cell, randomness):
    """Recurrent dropout, zoneout and dropout between layers in training: the masks drawn under vmap (per example with
    "different") equal the reference engine's from the same seed (it runs under vmap as plain operations), in the
    outputs and in per-example gradients."""
    options = {"zoneout": 0.3, "num_layers": 2, "dropout": 0.2}
    if cell == "lstm":
        options["recurrent_dropout"] = 0.3
    layer = _layer(cell, engine, **options)
    reference = _layer(cell, "reference", **options)
    reference.load_state_dict(layer.state_dict())
    xs = torch.randn(3, L, N, IN, dtype=torch.float64)
    xs[1] = xs[0]  # two equal examples: equal outputs with the same masks, different ones with masks per example
    outputs = []
    for model in (layer, reference):
        torch.manual_seed(8)
        outputs.append(torch.func.vmap(lambda x: model(x)[0], randomness=randomness)(xs))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-12, atol=1e-12)
    assert torch.equal(outputs[0][0], outputs[0][1]) == (randomness == "same")
    grads = []  # and per-example gradients through those masks
    for model in (layer, reference):
        params = {name: p.detach() for name, p in model.named_parameters()}
        torch.manual_seed(9)
        grads.append(torch.func.vmap(torch.func.grad(
            lambda params, x: torch.func.functional_call(model, params, (x,))[0].square().sum()),
            in_dims=(None, 0), randomness=randomness)(params, xs))
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("engine,cell", [(e, c) for e in ENGINES for c in ("lstm", "mingru")])
def test_vmap_over_an_ensemble(engine, cell):
    """Parameters batched along vmap's dimension as well as the input (torch.func.stack_module_state)."""
    if engine == "fused":
        pytest.skip("PyTorch's fused kernels have no vmap rule for weights batched along vmap's dimension "
                    "(torch.nn.LSTM fails the same: 'Batching rule not implemented for aten::lstm.input')")
    torch.manual_seed(2)
    models = [_layer(cell, engine, num_layers=2) for _ in range(3)]
    params, buffers = torch.func.stack_module_state(models)
    x = torch.randn(3, L, N, IN, dtype=torch.float64)

    def run(params, buffers, x):
        return torch.func.functional_call(models[0], (params, buffers), (x,))[0]

    output = torch.func.vmap(run)(params, buffers, x)
    for b, model in enumerate(models):
        torch.testing.assert_close(output[b], model(x[b])[0], rtol=1e-12, atol=1e-12)


@grid
def test_plain_backward_vmapped_by_torch_func(engine, cell):
    """``torch.func.vmap`` over ``torch.autograd.grad`` of one forward (a Jacobian's rows, as jacrev does)."""
    torch.manual_seed(3)
    layer = _layer(cell, engine)
    x = torch.randn(L, N, IN, dtype=torch.float64, requires_grad=True)
    output, _ = layer(x)
    vs = torch.randn(3, *output.shape, dtype=torch.float64)
    rows = torch.func.vmap(lambda v: torch.autograd.grad(output, (x, layer.weight_ih_l0), v, retain_graph=True))(vs)
    for b in range(3):
        want = torch.autograd.grad(output, (x, layer.weight_ih_l0), vs[b], retain_graph=True)
        for got, expected in zip(rows, want):
            torch.testing.assert_close(got[b], expected, rtol=1e-10, atol=1e-10)


# --- autocast ------------------------------------------------------------------------------------------------------
def _torch_dtype_under_autocast(torch_class) -> torch.dtype:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return torch_class(IN, H)(torch.randn(L, N, IN))[0].dtype


@grid
def test_autocast_computes_in_bfloat16_as_torch_nn_or_refuses(engine, cell):
    torch.manual_seed(4)
    layer = _layer(cell, engine, dtype=torch.float32, num_layers=2, bidirectional=True)
    x = torch.randn(L, N, IN, requires_grad=True)
    if engine == "native":
        with torch.autocast("cpu", dtype=torch.bfloat16), \
                pytest.raises(ValueError, match=r"^the native engine runs float32 and float64 on the CPU, not "
                                                r"torch.bfloat16 \(torch.autocast's dtype\) on cpu; use engine="):
            layer(x)
        return
    want, _ = layer(x)
    # the fused engine is torch.nn's own kernels: torch.nn's dtype for that cell (a GRU stays float32 there); every
    # other engine computes in bfloat16, as torch.nn's LSTM does
    expected = _torch_dtype_under_autocast(TORCH_CLASSES[cell] if engine == "fused" else nn.LSTM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, state = layer(x)
        assert output.dtype == expected
        (output.float().square().sum() + sum(s.float().sum() for s in (state if isinstance(state, tuple) else
                                                                          (state,)))).backward()  # inside the block
    torch.testing.assert_close(output.float(), want, rtol=0, atol=0.05)
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name


def test_autocast_auto_passes_over_the_native_engine():
    """Where auto picks the native engine (zoneout on an LSTM), under autocast it picks the explicit one, which
    computes in bfloat16, rather than the float32 kernels; a float64 model, which autocast leaves alone, keeps it."""
    layer = rn.Recurrent("lstm", IN, H, zoneout=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer._engine_now() == "explicit"
        assert layer(torch.randn(L, N, IN))[0].dtype == torch.bfloat16
        assert layer.double()._engine_now() == ("native" if rn.native_available() else "explicit")
        assert layer(torch.randn(L, N, IN, dtype=torch.float64))[0].dtype == torch.float64


@pytest.mark.parametrize("engine", ENGINES)
def test_autocast_takes_the_state_of_an_earlier_call(engine):
    """A bfloat16 state from a call under autocast fed back with float32 input (generation, streaming)."""
    layer = _layer("lstm" if engine != "scan" else "mingru", engine, dtype=torch.float32)
    if engine == "native":
        pytest.skip("the native engine refuses autocast (test above)")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, state = layer(torch.randn(L, N, IN))
        output, _ = layer(torch.randn(L, N, IN), state)
    assert output.dtype == (torch.bfloat16 if engine != "fused" else _torch_dtype_under_autocast(nn.LSTM))


# --- torch.compile -------------------------------------------------------------------------------------------------
# fullgraph where the engine allows it: the explicit and scan engines' autograd.Functions write into preallocated
# buffers through out= views and set the workspace's attributes from the backward, which Dynamo does not trace
# inside an autograd.Function: it breaks the graph there and runs the Function eagerly
FULLGRAPH = {"explicit": False, "scan": False}


@pytest.mark.parametrize("engine", ENGINES)
def test_compile_equals_eager(engine):
    torch.manual_seed(5)
    cell = "mingru" if engine == "scan" else "lstm"
    layer = _layer(cell, engine, dtype=torch.float32)
    x = torch.randn(L, N, IN, requires_grad=True)
    want, _ = layer(x)
    want_grads = torch.autograd.grad(want.sum(), [x, *layer.parameters()])
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=FULLGRAPH.get(engine, True))
    output, _ = compiled(x)
    grads = torch.autograd.grad(output.sum(), [x, *layer.parameters()])
    torch.testing.assert_close(output, want)
    for got, expected in zip(grads, want_grads):
        torch.testing.assert_close(got, expected)


def test_inductor_compiles_linear_rows():
    """Inductor took rnnkit's oneDNN product (mkldnn._linear_pointwise) and failed on it; traced, linear_rows is
    torch.addmm. Once on the function itself (fullgraph), once through the scan engine's Function."""
    torch.manual_seed(6)
    x, w, b = torch.randn(5, IN), torch.randn(2 * H, IN), torch.randn(2 * H)
    compiled = torch.compile(linear_rows, fullgraph=True)
    torch.testing.assert_close(compiled(x, w, b), linear_rows(x, w, b))
    layer = rn.Recurrent("mingru", IN, H, engine="scan")
    x = torch.randn(L, N, IN, requires_grad=True)
    want, _ = layer(x)
    output, _ = torch.compile(layer)(x)  # the default backend: Inductor
    torch.testing.assert_close(output, want)
    torch.testing.assert_close(torch.autograd.grad(output.sum(), x)[0], torch.autograd.grad(want.sum(), x)[0])
