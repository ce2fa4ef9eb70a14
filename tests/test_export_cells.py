"""rnnkit.export's core (issue 25): every registered cell exports to ONNX and matches onnxruntime within 1e-5 (float32)
with a dynamic length, explicit state and lengths, in both directions and stacked; a stream fed chunk by chunk equals
the whole sequence; models with pack_padded_sequence export; a cell registered here exports with no new code; the
torch.export program round-trips; bad inputs are one-line InputErrors that leave nothing behind."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit.nn as rn
from rnnkit.errors import InputError
from rnnkit.export import layer_to_onnx, load_exported_program, to_exported_program, to_onnx
from rnnkit.models.recurrent_encoder import RecurrentEncoder

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

IN, H, L, N = 3, 8, 7, 4  # H = 8: a layer norm over 5 units of random state (H = 5) is ill-conditioned enough that
# float32 runs (torch's own reference engine among them) differ from float64 by ~1e-5 in rare rows
LENGTHS = torch.tensor([7, 2, 5, 1])  # unsorted, one full row and a row of one step
TOLERANCE = 1e-5


def _session(model_or_path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _state(layer, n: int, generator):
    """Random h0 (and c0) in torch.nn's layout, so that the state inputs are exercised with non-zero values."""
    D = 2 if layer.bidirectional else 1
    h0 = torch.randn(D * layer.num_layers, n, layer.proj_size or layer.hidden_size, generator=generator)
    if not layer.cell.has_cell_state:
        return (h0,)
    return h0, torch.randn(D * layer.num_layers, n, layer.hidden_size, generator=generator)


def _feed(x, states, lengths=None):
    feed = {"x": x.numpy(), "h0": states[0].numpy()}
    if len(states) > 1:
        feed["c0"] = states[1].numpy()
    if lengths is not None:
        feed["lengths"] = lengths.numpy()
    return feed


def _torch(layer, x, states, lengths=None):
    """The layer's own result: packed when lengths are given (PackedSequence's meaning), y padded with zeros."""
    hx = states[0] if len(states) == 1 else tuple(states)
    with torch.no_grad():
        if lengths is None:
            y, state = layer(x, hx)
        else:
            packed, state = layer(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
            y, _ = pad_packed_sequence(packed, total_length=x.shape[0])
    return (y, *(state if isinstance(state, tuple) else (state,)))


def _close(onnx_outputs, torch_outputs, what: str):
    assert len(onnx_outputs) == len(torch_outputs), what
    for name, got, want in zip(("y", "h_n", "c_n"), onnx_outputs, torch_outputs):
        # within 1e-5, relative where the values exceed 1 (numpy's allclose with atol = rtol = 1e-5): a cell state
        # grows past 1, and float32's rounding in a layer norm then reaches 1e-5 on the torch side alone
        error = float((np.abs(got - want.numpy()) / (1 + np.abs(want.numpy()))).max())
        assert error <= TOLERANCE, f"{what}: {name} differs by {error:.2e} (relative above 1)"


CASES = list(itertools.product(rn.cell_names(), (1, 2), (False, True), (False, True)))


@pytest.mark.parametrize("cell, layers, bidirectional, with_lengths", CASES,
                         ids=[f"{c}-{k}layer-{'bi' if b else 'uni'}-{'lengths' if w else 'full'}"
                              for c, k, b, w in CASES])
def test_every_registered_cell_matches_onnxruntime(cell, layers, bidirectional, with_lengths):
    """Torch vs onnxruntime on a batch of another L and N than any trace saw; without lengths, also a stream fed in
    chunks of 3, 1 and 4 steps (h_n, c_n carried) against the whole sequence."""
    generator = torch.Generator().manual_seed(hash((cell, layers, bidirectional)) % 2**31)
    torch.manual_seed(hash((cell, layers, bidirectional)) % 2**31)
    layer = rn.Recurrent(cell, IN, H, num_layers=layers, bidirectional=bidirectional).eval()
    session = _session(layer_to_onnx(layer, lengths=with_lengths))
    x = torch.randn(L, N, IN, generator=generator)
    states = _state(layer, N, generator)
    lengths = LENGTHS if with_lengths else None
    whole = session.run(None, _feed(x, states, lengths))
    _close(whole, _torch(layer, x, states, lengths), f"{cell} whole")
    assert [o.shape for o in whole] == [tuple(t.shape) for t in _torch(layer, x, states, lengths)]
    if with_lengths:
        return
    carried, pieces = [s.numpy() for s in states], []
    for start, stop in ((0, 3), (3, 4), (4, L)):
        feed = {"x": x[start:stop].numpy(), "h0": carried[0], **({"c0": carried[1]} if len(carried) > 1 else {})}
        y, *carried = session.run(None, feed)
        pieces.append(y)
    if not bidirectional:  # a reverse direction reads the future: chunks equal the whole for forward layers only
        np.testing.assert_allclose(np.concatenate(pieces), whole[0], atol=TOLERANCE, rtol=0)
        for got, want in zip(carried, whole[1:]):
            np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_the_routes_torch_cells_on_onnx_operators_the_rest_as_a_scan_of_their_step():
    """ONNX's LSTM/GRU/RNN for torch's four cells; a Scan per layer-direction otherwise; nothing unrolled: the graph
    does not grow with the length."""
    def ops(cell, **options):
        layer = rn.Recurrent(cell, IN, H, num_layers=2, bidirectional=True, **options).eval()
        return [node.op_type for node in layer_to_onnx(layer, lengths=True).graph.node]

    assert ops("lstm").count("LSTM") == 2 and "Scan" not in ops("lstm")
    assert ops("gru").count("GRU") == 2 and ops("rnn_relu").count("RNN") == 2
    for cell in ("layernorm_lstm", "mingru", "rglru"):
        assert ops(cell).count("Scan") == 4
    assert ops("lstm", proj_size=2).count("Scan") == 4  # ONNX's LSTM has no projection
    assert ops("gru", zoneout=0.2).count("Scan") == 4  # zoneout's evaluation mix is not in ONNX's GRU


@pytest.mark.parametrize("cell, options", [("lstm", {"proj_size": 2}), ("gru", {"zoneout": 0.3}),
                                           ("layernorm_gru", {"zoneout": 0.1})])
def test_projection_and_zoneout_take_the_scan_and_match(cell, options):
    torch.manual_seed(1)
    layer = rn.Recurrent(cell, IN, H, num_layers=2, bidirectional=True, **options).eval()
    generator = torch.Generator().manual_seed(1)
    x, states = torch.randn(L, N, IN, generator=generator), _state(layer, N, generator)
    _close(_session(layer_to_onnx(layer, lengths=True)).run(None, _feed(x, states, LENGTHS)),
           _torch(layer, x, states, LENGTHS), f"{cell} {options}")


def test_batch_first_torch_nn_layer_and_float64():
    torch.manual_seed(2)
    layer = rn.LSTM(IN, H, num_layers=2, batch_first=True, bidirectional=True).double().eval()
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(N, L, IN, generator=generator, dtype=torch.float64)
    states = tuple(s.double() for s in _state(layer, N, generator))
    model = layer_to_onnx(layer, lengths=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert "LSTM" not in [node.op_type for node in model.graph.node]  # onnxruntime's LSTM is float32 only
    got = _session(model).run(None, _feed(x, states, LENGTHS))
    hx = tuple(states)
    with torch.no_grad():
        packed, state = layer(pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False), hx)
    y, _ = pad_packed_sequence(packed, batch_first=True, total_length=L)
    _close(got, (y, *state), "batch-first LSTM")


class IndRNNForExport(rn.Cell):
    """h_t = relu(x_t W_ih^T + b_ih + u ⊙ h_{t-1}): the IndRNN of docs/extend/cell.md, registered by this test only.

    It declares no workspace, so it runs on the reference engine: export needs only the reference step."""

    name = "indrnn_export_test"
    recurrent_weight = None

    def parameter_specs(self, input_size):
        return [rn.ParamSpec("weight_ih", (self.hidden_size, input_size)), rn.ParamSpec("weight_hh", (self.hidden_size,)),
                rn.ParamSpec("bias_ih", (self.hidden_size,), bias=True)]

    def reference_step(self, p, x_t, state, h_in):
        a = x_t @ p["weight_ih"].t() + p["weight_hh"] * h_in  # (N, H)
        if "bias_ih" in p:
            a = a + p["bias_ih"]
        return (torch.relu(a),), {}

    def workspace(self):
        raise TypeError("this test cell runs on the reference engine only")


def test_a_cell_registered_here_exports_with_no_new_code():
    if IndRNNForExport.name not in rn.cell_names():
        rn.register_cell(IndRNNForExport)
    torch.manual_seed(3)
    layer = rn.Recurrent(IndRNNForExport.name, IN, H, num_layers=2, bidirectional=True, engine="reference").eval()
    generator = torch.Generator().manual_seed(3)
    x, states = torch.randn(L, N, IN, generator=generator), _state(layer, N, generator)
    _close(_session(layer_to_onnx(layer, lengths=True)).run(None, _feed(x, states, LENGTHS)),
           _torch(layer, x, states, LENGTHS), "registered IndRNN")


class PackedTagger(nn.Module):
    """A tagger-shaped model: embeddings, a packed bidirectional layer, a linear head on every step."""

    def __init__(self, cell: str):
        super().__init__()
        self.embed = nn.Embedding(11, IN)
        self.rnn = rn.Recurrent(cell, IN, H, num_layers=2, bidirectional=True, batch_first=True, init_state="learned")
        self.head = nn.Linear(2 * H, 4)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = self.rnn(packed)
        padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=tokens.shape[1])  # (N, L, 2H)
        return self.head(padded)


DYNAMIC = {"tokens": {0: "N", 1: "L"}, "lengths": {0: "N"}, "scores": {0: "N", 1: "L"}}


@pytest.mark.parametrize("cell", ["gru", "minlstm"])
def test_a_pack_padded_sequence_model_exports_with_lengths_as_an_input(cell, tmp_path):
    torch.manual_seed(4)
    model = PackedTagger(cell).eval()
    with torch.no_grad():
        model.rnn.h0.normal_()  # a learned initial state that is not zero reaches the graph
    tokens, lengths = torch.randint(0, 11, (N, L)), LENGTHS
    path = to_onnx(model, tmp_path / "tagger.onnx", (tokens, lengths), input_names=["tokens", "lengths"],
                   output_names=["scores"], dynamic_axes=DYNAMIC, metadata={"cell": cell, "labels": ["a", "b"]})
    assert path == tmp_path / "tagger.onnx" and [p.name for p in tmp_path.iterdir()] == ["tagger.onnx"]
    saved = onnx.load(path)
    assert {o.domain for o in saved.opset_import} == {""}  # no placeholder node or domain is left
    assert {p.key: p.value for p in saved.metadata_props} == {"cell": cell, "labels": json.dumps(["a", "b"])}
    session = _session(path)
    for rows, steps in ((N, L), (3, 10), (1, 1)):  # other batch sizes and lengths than the trace's
        tokens = torch.randint(0, 11, (rows, steps))
        lengths = torch.randint(1, steps + 1, (rows,))
        lengths[0] = steps
        with torch.no_grad():
            want = model(tokens, lengths)
        (got,) = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
        np.testing.assert_allclose(got, want.numpy(), atol=TOLERANCE, rtol=0)
    assert model.rnn.forward.__func__ is type(model.rnn).forward  # the layer's own forward is back


def test_rnnkit_recurrent_encoder_exports(tmp_path):
    torch.manual_seed(5)
    encoder = RecurrentEncoder(IN, H, cell="layernorm_lstm", num_layers=2, bidirectional=True).eval()
    x = torch.randn(N, L, IN)
    path = to_onnx(encoder, tmp_path / "encoder.onnx", (x, LENGTHS), input_names=["x", "lengths"],
                   output_names=["outputs", "final"],
                   dynamic_axes={"x": {0: "N", 1: "L"}, "lengths": {0: "N"}, "outputs": {0: "N", 1: "L"},
                                 "final": {0: "N"}})
    x2, lengths2 = torch.randn(3, 9, IN), torch.tensor([4, 9, 1])
    with torch.no_grad():
        want = encoder(x2, lengths2)
    got = _session(path).run(None, {"x": x2.numpy(), "lengths": lengths2.numpy()})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), atol=TOLERANCE, rtol=0)


def test_a_streaming_model_with_explicit_state_exports(tmp_path):
    """A language-model-shaped module whose forward takes and returns the state: chunks equal the whole."""

    class Stream(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rn.Recurrent("rglru", IN, H, num_layers=2, batch_first=True)
            self.head = nn.Linear(H, 2)

        def forward(self, x, h0):
            y, h_n = self.rnn(x, h0)
            return self.head(y), h_n

    torch.manual_seed(6)
    model = Stream().eval()
    x, h0 = torch.randn(2, L, IN), torch.zeros(2, 2, H)
    path = to_onnx(model, tmp_path / "stream.onnx", (x, h0), input_names=["x", "h0"], output_names=["y", "h_n"],
                   dynamic_axes={"x": {0: "N", 1: "L"}, "h0": {1: "N"}, "y": {0: "N", 1: "L"}, "h_n": {1: "N"}})
    session = _session(path)
    whole_y, whole_h = session.run(None, {"x": x.numpy(), "h0": h0.numpy()})
    state, pieces = h0.numpy(), []
    for start, stop in ((0, 2), (2, 3), (3, L)):
        y, state = session.run(None, {"x": x[:, start:stop].numpy(), "h0": state})
        pieces.append(y)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole_y, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(state, whole_h, atol=TOLERANCE, rtol=0)
    with torch.no_grad():
        np.testing.assert_allclose(whole_y, model(x, h0)[0].numpy(), atol=TOLERANCE, rtol=0)


def test_exported_program_round_trip_with_a_dynamic_length(tmp_path):
    torch.manual_seed(7)
    model = PackedTagger("mingru").eval()
    tokens = torch.randint(0, 11, (N, L))
    steps, rows = torch.export.Dim("L"), torch.export.Dim("N")
    path = to_exported_program(model, tmp_path / "tagger.pt2", (tokens, LENGTHS),
                               dynamic_shapes=({0: rows, 1: steps}, {0: rows}), metadata={"cell": "mingru"})
    program, metadata = load_exported_program(path)
    assert metadata == {"cell": "mingru"}
    assert not any("rnnkit" in str(node.target) for node in program.graph.nodes)  # torch operators only
    tokens2, lengths2 = torch.randint(0, 11, (3, 12)), torch.tensor([12, 5, 1])
    with torch.no_grad():
        want = model(tokens2, lengths2)
        got = program.module()(tokens2, lengths2)
    torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=0)


def test_a_model_with_no_rnnkit_layer_still_exports(tmp_path):
    model = nn.Sequential(nn.Linear(IN, 4), nn.Tanh())
    path = to_onnx(model, tmp_path / "plain.onnx", (torch.randn(2, IN),), input_names=["x"], output_names=["y"],
                   dynamic_axes={"x": {0: "N"}})
    x = torch.randn(5, IN)
    with torch.no_grad():
        np.testing.assert_allclose(_session(path).run(None, {"x": x.numpy()})[0], model(x).numpy(), atol=1e-6)


def test_bad_inputs_are_one_line_and_leave_nothing(tmp_path):
    layer = rn.Recurrent("gru", IN, H)
    missing = tmp_path / "no such folder" / "model.onnx"
    for call in (lambda: to_onnx(layer, missing, (torch.randn(L, N, IN),)),
                 lambda: layer_to_onnx(layer, missing),
                 lambda: to_exported_program(layer, missing.with_suffix(".pt2"), (torch.randn(L, N, IN),))):
        with pytest.raises(InputError, match="does not exist; create it") as error:
            call()
        assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "kept.onnx"
    existing.write_bytes(b"what the user had")
    with pytest.raises(InputError, match="init_state='random'"):
        to_onnx(rn.Recurrent("gru", IN, H, init_state="random"), existing, (torch.randn(L, N, IN),))
    assert existing.read_bytes() == b"what the user had"
    with pytest.raises(InputError, match="takes an rnnkit recurrent layer"):
        layer_to_onnx(nn.Linear(2, 2))
    with pytest.raises(InputError, match="opset 13 is too old"):
        to_onnx(layer, tmp_path / "old.onnx", (torch.randn(L, N, IN),), opset=13)
    assert layer.training and layer.forward.__func__ is type(layer).forward  # mode and forward restored


def test_unbatched_input_a_learned_state_and_a_layer_called_twice(tmp_path):
    """Two calls of one layer are two Scans over one copy of its weights; the second starts from the first's h_n."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rn.Recurrent("layernorm_gru", IN, H, init_state="learned")

        def forward(self, x):  # x (L, In), unbatched
            y1, h = self.rnn(x)
            y2, h2 = self.rnn(x, h)
            return y1 + y2, h2

    torch.manual_seed(8)
    model = Twice().eval()
    with torch.no_grad():
        model.rnn.h0.normal_()
    path = to_onnx(model, tmp_path / "twice.onnx", (torch.randn(5, IN),), input_names=["x"], output_names=["y", "h"],
                   dynamic_axes={"x": {0: "L"}, "y": {0: "L"}})
    saved = onnx.load(path)
    assert [node.op_type for node in saved.graph.node].count("Scan") == 2
    # one copy (stored transposed: the step bodies read W^T, rnnkit.export.onnx_optimize)
    assert sum(t.name.endswith(("weight_ih_l0", "weight_ih_l0_transposed")) for t in saved.graph.initializer) == 1
    x = torch.randn(9, IN)
    with torch.no_grad():
        want = model(x)
    for got, w in zip(_session(path).run(None, {"x": x.numpy()}), want):
        np.testing.assert_allclose(got, w.numpy(), atol=TOLERANCE, rtol=0)
