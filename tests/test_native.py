"""The native engine (C++) against the reference equations, generated from the cell registry: every cell with a
native kernel, over the explicit engine's grid (layers × directions × batch_first × padded / packed unsorted /
unbatched × each regulariser in training and evaluation × bptt_window × resets), in float64 within 1e-10; and the
properties a fast engine must keep: gradcheck, chunked = whole, bitwise repeatability, threads, compile and export,
and the fallback when the extension is absent."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_sequence

import rnnkit.nn as rn
from rnnkit.nn.native import has_kernel

NATIVE_CELLS = [name for name in rn.cell_names() if has_kernel(rn.get_cell(name).native_kernel)]
needs_native = pytest.mark.skipif(not rn.native_available(),
                                  reason=f"the native engine is not built here: {rn.native_info()['reason']}")
IN, H, L, N = 4, 5, 7, 3
REGULARISERS = {"none": {}, "recurrent_dropout": {"recurrent_dropout": 0.3}, "zoneout": {"zoneout": 0.2},
                "weight_drop": {"weight_drop": 0.3}}
INPUTS = ("padded", "packed", "unbatched")


def _options(cell: str, regulariser: str) -> dict:
    options = dict(REGULARISERS[regulariser])
    if rn.get_cell(cell).recurrent_weight is None:  # recurrent dropout and weight drop act on W_hh
        options.pop("recurrent_dropout", None)
        options.pop("weight_drop", None)
    return options


def _pair(cell: str, **options):
    ref = rn.Recurrent(cell, IN, H, engine="reference", dtype=torch.float64, **options)
    native = rn.Recurrent(cell, IN, H, engine="native", dtype=torch.float64, **options)
    native.load_state_dict(ref.state_dict())
    return ref, native


def _input(kind: str, batch_first: bool):
    """Leaf inputs of the given kind, a function making the value passed to the layer from them, and resets of the
    matching shape."""
    if kind == "packed":
        seqs = [torch.randn(n, IN, dtype=torch.float64, requires_grad=True) for n in (4, L, 2)]
        resets = torch.rand(L, N) < 0.3
        return seqs, lambda: pack_sequence(seqs, enforce_sorted=False), resets
    shape = (L, IN) if kind == "unbatched" else ((N, L, IN) if batch_first else (L, N, IN))
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    resets = torch.rand(shape[:-1]) < 0.3
    return [x], lambda: x, resets


def _everything(layer, value, leaves, resets, seed: int) -> list[torch.Tensor]:
    """Output, final state and the gradients of inputs and parameters of one call, masks drawn from ``seed``."""
    torch.manual_seed(seed)
    output, state = layer(value(), resets=resets)
    out = output.data if isinstance(output, PackedSequence) else output
    states = state if isinstance(state, tuple) else (state,)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).pow(2).sum()
    loss = loss + sum(s.sin().sum() for s in states)
    grads = torch.autograd.grad(loss, [*leaves, *layer.parameters()])
    return [out, *states, *grads]


def _grid():
    """The explicit engine's grid, every factor varied against every other factor of the main table, the cheap
    switches (batch_first, training, window, resets) cycled through it."""
    main = list(itertools.product(NATIVE_CELLS, (1, 2), (False, True), INPUTS, REGULARISERS))
    switches = itertools.cycle(itertools.product((False, True), (True, False), (None, 3), (False, True)))
    return [(*case, *next(switches)) for case in main]


@needs_native
@pytest.mark.parametrize("cell,layers,bidirectional,kind,regulariser,batch_first,training,window,resets", _grid())
def test_native_equals_reference(cell, layers, bidirectional, kind, regulariser, batch_first, training, window,
                                 resets):
    torch.manual_seed(0)
    options = _options(cell, regulariser)
    ref, native = _pair(cell, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                        bptt_window=window, **options)
    ref.train(training)
    native.train(training)
    leaves, value, reset_mask = _input(kind, batch_first)
    reset_mask = reset_mask if resets else None
    want = _everything(ref, value, leaves, reset_mask, seed=1)
    got = _everything(native, value, leaves, reset_mask, seed=1)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_lstm_projection_and_no_bias(cell):
    cell_type = rn.get_cell(cell)
    options = {"bias": False}
    if cell_type.supports_projection:
        options["proj_size"] = 3
    torch.manual_seed(0)
    ref, native = _pair(cell, **options)
    leaves, value, resets = _input("padded", False)
    for w, g in zip(_everything(ref, value, leaves, resets, 1), _everything(native, value, leaves, resets, 1)):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_gradcheck(cell):
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, IN, H, engine="native", dtype=torch.float64, zoneout=0.2).eval()
    x = torch.randn(L, N, IN, dtype=torch.float64, requires_grad=True)
    resets = torch.rand(L, N) < 0.3

    def fn(x):
        output, state = layer(x, resets=resets)
        return (output, *(state if isinstance(state, tuple) else (state,)))

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7)


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_double_backward_differentiates_the_reference(cell):
    torch.manual_seed(0)
    ref, native = _pair(cell)
    x = torch.randn(L, N, IN, dtype=torch.float64, requires_grad=True)
    second = []
    for layer in (ref, native):
        output, _ = layer(x)
        (g,) = torch.autograd.grad(output.pow(2).sum(), x, create_graph=True)
        second.append(torch.autograd.grad(g.pow(2).sum(), x)[0])
    torch.testing.assert_close(second[1], second[0], rtol=0, atol=1e-10)


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_chunked_equals_whole(cell):
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, IN, H, engine="native", num_layers=2)
    x = torch.randn(12, N, IN)
    whole, final = layer(x)
    state, parts = None, []
    for chunk in x.split(5):
        out, state = layer(chunk, state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts), whole)
    for a, b in zip(state if isinstance(state, tuple) else (state,), final if isinstance(final, tuple) else (final,)):
        torch.testing.assert_close(a, b)


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_two_runs_are_bitwise_equal(cell):
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, 16, 32, engine="native", num_layers=2, bidirectional=True)
    x = torch.randn(20, 8, 16, requires_grad=True)
    runs = []
    for _ in range(2):
        output, _ = layer(x)
        runs.append([output, *torch.autograd.grad(output.pow(2).sum(), [x, *layer.parameters()])])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_one_and_two_threads_agree(cell):
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, 16, 64, engine="native")
    x = torch.randn(20, 16, 16, requires_grad=True)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            output, _ = layer(x)
            results.append([output, *torch.autograd.grad(output.pow(2).sum(), [x, *layer.parameters()])])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("engine", ["reference", "explicit", "native", "scan", "fused", "auto"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru"])
def test_resets_equal_running_the_segments_separately(engine, cell):
    """A reset before step t gives what the segment starting at t gives when run alone, in both directions."""
    if engine == "native" and not has_kernel(rn.get_cell(cell).native_kernel):
        pytest.skip(f"no native kernel for {cell} in this build")
    if engine == "scan" and not rn.get_cell(cell).linear or engine == "fused" and rn.get_cell(cell).fused_mode is None:
        pytest.skip(f"the {engine} engine does not run {cell}")
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, IN, H, engine=engine, bidirectional=True, dtype=torch.float64)
    x = torch.randn(10, 2, IN, dtype=torch.float64)
    resets = torch.zeros(10, 2, dtype=torch.bool)
    resets[4, 0] = resets[7, 1] = True
    output, _ = layer(x, resets=resets)
    for row, boundary in ((0, 4), (1, 7)):
        for segment in (slice(0, boundary), slice(boundary, 10)):
            alone, _ = layer(x[segment, row:row + 1])
            torch.testing.assert_close(output[segment, row:row + 1], alone, rtol=0, atol=1e-12)


def test_resets_of_the_wrong_shape_are_one_clear_error():
    layer = rn.Recurrent("lstm", IN, H, batch_first=True)
    with pytest.raises(ValueError, match=r"resets must be a bool tensor of shape \(N, L\) with batch_first"):
        layer(torch.randn(2, 6, IN), resets=torch.zeros(6, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="resets must be a bool tensor"):
        layer(torch.randn(2, 6, IN), resets=torch.zeros(2, 6))


@needs_native
def test_compile_fullgraph_sees_one_op():
    torch.manual_seed(0)
    model = rn.Recurrent("lstm", IN, H, engine="native", num_layers=2, recurrent_dropout=0.2).eval()
    x = torch.randn(L, N, IN)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    output, (h_n, c_n) = compiled(x)
    want, (h_want, c_want) = model(x)
    torch.testing.assert_close(output, want)
    torch.testing.assert_close(c_n, c_want)


@needs_native
def test_export_of_a_native_layer():
    torch.manual_seed(0)
    model = rn.Recurrent("gru", IN, H, engine="native").eval()
    x = torch.randn(L, N, IN)
    program = torch.export.export(model, (x,))
    assert any("rnnkit.forward" in str(node.target) for node in program.graph.nodes)
    output, h_n = program.module()(x)
    torch.testing.assert_close(output, model(x)[0])


def test_without_the_extension_auto_falls_back_and_native_says_why():
    """The fallback path: the extension made unavailable (RNNKIT_NATIVE=0), in a fresh interpreter."""
    code = ("import torch, rnnkit.nn as rn\n"
            "assert not rn.native_available()\n"
            "layer = rn.Recurrent('lstm', 3, 4, recurrent_dropout=0.2)\n"
            "assert layer._engine_now() == 'explicit', layer._engine_now()\n"
            "layer(torch.randn(5, 2, 3))\n"
            "try:\n"
            "    rn.Recurrent('lstm', 3, 4, engine='native')\n"
            "except ValueError as error:\n"
            "    print(error)\n")
    env = {**os.environ, "RNNKIT_NATIVE": "0"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("the native engine is not available: turned off by RNNKIT_NATIVE=0 in the "
                                     "environment")


@needs_native
def test_native_refuses_a_cell_without_a_kernel_in_one_line():
    class Plain(rn.get_cell("rnn_tanh")):
        name = "plain_without_kernel"
        native_kernel = None

    rn.register_cell(Plain)
    with pytest.raises(ValueError, match="has no native kernel; use engine='explicit'"):
        rn.Recurrent("plain_without_kernel", 3, 4, engine="native")
    assert rn.Recurrent("plain_without_kernel", 3, 4, recurrent_dropout=0.1)._engine_now() == "explicit"


@needs_native
@pytest.mark.parametrize("cell", [name for name in NATIVE_CELLS if hasattr(rn.get_cell(name), "native_gates")])
def test_trace_records_on_the_native_engine_what_the_explicit_engine_records(cell):
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, IN, H, num_layers=2, bidirectional=True, zoneout=0.1, dtype=torch.float64).eval()
    x = pack_sequence([torch.randn(n, IN, dtype=torch.float64) for n in (4, L, 2)], enforce_sorted=False)
    layer.engine = "native"
    native = layer.trace(x)
    layer.engine = "explicit"
    explicit = layer.trace(x)
    assert (native.engine, explicit.engine) == ("native", "explicit")
    torch.testing.assert_close(native.hidden, explicit.hidden, rtol=0, atol=1e-12)
    assert native.gates.keys() == explicit.gates.keys()
    for name in native.gates:
        torch.testing.assert_close(native.gates[name], explicit.gates[name], rtol=0, atol=1e-12)
    if explicit.cell is not None:
        torch.testing.assert_close(native.cell, explicit.cell, rtol=0, atol=1e-12)


def test_without_a_compiler_the_build_goes_on_without_the_extension(tmp_path):
    """The install's build step with a compiler that fails (CXX=/bin/false): it ends well, says why, builds nothing."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(root / name, tmp_path / name)
    shutil.copytree(root / "src" / "rnnkit" / "nn" / "native", tmp_path / "src" / "rnnkit" / "nn" / "native",
                    ignore=shutil.ignore_patterns("_C*", "*.py", "__pycache__", ".built"))
    env = {**os.environ, "CXX": "/bin/false"}
    result = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rnnkit: the native engine was not built" in result.stderr
    assert not list((tmp_path / "src" / "rnnkit" / "nn" / "native").glob("_C*"))
