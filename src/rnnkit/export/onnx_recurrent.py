r"""One rnnkit recurrent layer stack (``Recurrent``, ``RNN``, ``LSTM``, ``GRU``) in evaluation mode as ONNX nodes.

The graph contract of a layer (:func:`layer_to_onnx`), torch.nn's layouts (L steps, N rows, D = 2 if
bidirectional else 1, P = proj_size or hidden_size, H = hidden_size):

    x        (L, N, In) float, or (N, L, In) with ``batch_first``; L and N are dynamic
    h0       (D * num_layers, N, P)     the state before step 0
    c0       (D * num_layers, N, H)     cells with a cell state only (the LSTM family)
    lengths  (N,) int64 in [1, L]       optional (``lengths=True``): row n's real steps are t < lengths[n]
    ->
    y        (L, N, D * P) (or (N, L, D * P)), zeros past each row's length
    h_n      (D * num_layers, N, P)     each row's state after its own last step (the reverse direction: after t = 0)
    c_n      (D * num_layers, N, H)

So a stream fed chunk by chunk, with each chunk's h_n/c_n as the next chunk's h0/c0, gives what the whole sequence
gives. Rows of state are ordered as torch.nn orders them: layer 0 forward, layer 0 reverse, layer 1 forward, ...

Two routes, both keeping L dynamic (nothing is unrolled):

* A cell with a torch kernel (``fused_mode``: rnn_tanh, rnn_relu, lstm, gru), in float32, without zoneout or a
  projection, becomes ONNX's own ``RNN`` / ``LSTM`` / ``GRU`` operator, one per layer, both directions in one node, with the
  gate blocks reordered (torch's LSTM i, f, g, o -> ONNX i, o, f, c; GRU r, z, n -> z, r, h with
  ``linear_before_reset=1``, which is torch's n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))), biases as
  ``B = [Wb; Rb]`` and ``lengths`` as ``sequence_lens`` (int32).
* Every other cell (and those: an LSTM with ``proj_size``, zoneout, float64) runs as an ONNX ``Scan`` per layer-direction
  whose body is the cell's reference step (:mod:`rnnkit.export.onnx_step`), its parameters outer-scope
  initializers. With lengths a mask m[t, n] = t < lengths[n] is scanned beside x: a row keeps its state and outputs
  zeros where the mask is 0. The reverse direction scans the padded time axis backwards with the same mask, which is
  exactly PackedSequence's reverse: the state stays h0 through the padding and starts at each row's last real step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..nn.layer import RecurrentBase
from .onnx_file import finish_model
from .onnx_graph import ONNX_DTYPES, GraphBuilder, helper, onnx
from .onnx_step import STEP_OPSET, step_body
from .tracing import check_exportable

OPSET = 17  # Scan with a body of opset 17 (LayerNormalization); ONNX's RNN/LSTM/GRU are older
# torch's gate blocks in ONNX's order: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) -> (z, r, h)
GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN_TANH": (0,), "RNN_RELU": (0,)}
ONNX_OPERATOR = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}


def uses_operator(layer: RecurrentBase) -> bool:
    """True when ONNX's own RNN/LSTM/GRU operator computes this layer exactly (else the Scan route). float32 only:
    onnxruntime's CPU kernels of those operators take no other type ("LSTM operator does not support double")."""
    return (layer.cell.fused_mode is not None and not layer.zoneout and not layer.proj_size
            and layer._first_weight().dtype == torch.float32)


@dataclass
class Sequence:
    """The names of a layer call's inputs inside a graph: time-major x (L, N, In); h0, c0 (D*layers, N, ·) or
    None for zeros; lengths (N,) int64 or None; and the mask (L, N, 1) bool, made when first needed."""

    x: str
    h0: str | None
    c0: str | None
    lengths: str | None
    mask: str | None = None


def add_recurrent(g: GraphBuilder, layer: RecurrentBase, seq: Sequence, weights: str) -> tuple[str, str, str | None]:
    """Append ``layer``'s computation over ``seq`` to ``g``; weights are initializers named ``{weights}{param}``.

    Returns the names of y (L, N, D*P) time-major, h_n (D*layers, N, P) and c_n (D*layers, N, H) or None."""
    check_exportable(layer)
    D = 2 if layer.bidirectional else 1
    P = layer.proj_size or layer.hidden_size
    dtype = ONNX_DTYPES[layer._first_weight().dtype]
    has_c = layer.cell.has_cell_state
    h0 = seq.h0 or _zeros(g, seq.x, D * layer.num_layers, P, dtype)
    c0 = (seq.c0 or _zeros(g, seq.x, D * layer.num_layers, layer.hidden_size, dtype)) if has_c else None
    x, h_n, c_n = seq.x, [], []
    for k in range(layer.num_layers):
        if uses_operator(layer):
            x, h, c = _operator_layer(g, layer, k, x, h0, c0, seq.lengths, weights)
            h_n.append(h)
            c_n.append(c)
            continue
        outputs = []
        for direction in range(D):
            row = k * D + direction
            y, h, c = _scan_direction(g, layer, k, direction, x, _state_row(g, h0, row),
                                      _state_row(g, c0, row) if has_c else None, seq, weights)
            outputs.append(y)
            h_n.append(g.op("Unsqueeze", h, g.ints(0)))  # (1, N, P)
            c_n.append(g.op("Unsqueeze", c, g.ints(0)) if has_c else None)
        x = outputs[0] if D == 1 else g.op("Concat", *outputs, axis=2)  # (L, N, D*P)
    h_all = h_n[0] if len(h_n) == 1 else g.op("Concat", *h_n, axis=0)
    c_all = None if not has_c else (c_n[0] if len(c_n) == 1 else g.op("Concat", *c_n, axis=0))
    return x, h_all, c_all


def _zeros(g: GraphBuilder, x: str, rows: int, size: int, dtype: int) -> str:
    """(rows, N, size) zeros, N read from x (L, N, In)."""
    n = g.op("Shape", x, start=1, end=2)
    shape = g.op("Concat", g.ints(rows), n, g.ints(size), axis=0)
    return g.op("ConstantOfShape", shape, value=helper.make_tensor("zero", dtype, [1], [0]))


def _state_row(g: GraphBuilder, state: str, row: int) -> str:
    """state[row] (N, ·) of a (D*layers, N, ·) state."""
    return g.op("Squeeze", g.op("Slice", state, g.ints(row), g.ints(row + 1), g.ints(0)), g.ints(0))


def _mask(g: GraphBuilder, seq: Sequence) -> str:
    """(L, N, 1) bool: t < lengths[n]; made once per layer call and shared by its Scans."""
    if seq.mask is None:
        steps = g.op("Squeeze", g.op("Shape", seq.x, start=0, end=1), g.ints(0))  # L, a scalar
        t = g.op("Range", g.const("zero", np.array(0, np.int64)), steps, g.const("one", np.array(1, np.int64)))
        less = g.op("Less", g.op("Unsqueeze", t, g.ints(1)), g.op("Unsqueeze", seq.lengths, g.ints(0)))  # (L, N)
        seq.mask = g.op("Unsqueeze", less, g.ints(2))
    return seq.mask


def _scan_direction(g: GraphBuilder, layer: RecurrentBase, k: int, direction: int, x: str, h0: str,
                    c0: str | None, seq: Sequence, weights: str) -> tuple[str, str, str | None]:
    """One layer-direction as a Scan over the cell's reference step; returns y (L, N, P), h (N, P), c (N, H)."""
    params = layer._layer_params(k, direction)  # by base name; evaluation mode: no weight drop
    masked = seq.lengths is not None
    body, inputs, param_inputs, outputs = step_body(layer.cell, params, layer._layer_input_size(k), masked,
                                                    layer.zoneout)
    tag = g.fresh(f"scan_l{k}{'r' if direction else ''}") + "/"
    outer = {name: g.initializer(f"{weights}{layer._param_name(name, k, direction)}", params[name])
             for name in param_inputs}
    _rename(body, lambda name: outer.get(name) or (f"{tag}{name}" if name else name))
    for value in list(body.input):
        if value.name in outer.values():
            body.input.remove(value)  # read from the outer scope
    body.name = tag + "step"
    states = [h0] + ([c0] if c0 is not None else [])
    scanned = [x] + ([_mask(g, seq)] if masked else [])
    n_states = len(states)
    reverse = [direction] * len(scanned)
    produced = g.node("Scan", states + scanned, n_states + 1, body=body, num_scan_inputs=len(scanned),
                      scan_input_directions=reverse, scan_output_directions=[direction])
    return produced[-1], produced[0], (produced[1] if n_states == 2 else None)


def _rename(graph, new_name) -> None:
    """Rename every value of ``graph`` (inputs, outputs, nodes, initializers, nested graphs) by ``new_name``."""
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = new_name(value.name)
    for tensor in graph.initializer:
        tensor.name = new_name(tensor.name)
    for node in graph.node:
        node.input[:] = [new_name(n) for n in node.input]
        node.output[:] = [new_name(n) for n in node.output]
        node.name = new_name(node.name) if node.name else node.name
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                _rename(sub, new_name)


def _operator_layer(g: GraphBuilder, layer: RecurrentBase, k: int, x: str, h0: str, c0: str | None,
                    lengths: str | None, weights: str) -> tuple[str, str, str | None]:
    """Layer k, both directions, as ONNX's RNN/LSTM/GRU: y (L, N, D*H), h_n (D, N, H), c_n (D, N, H)."""
    mode, H = layer.cell.fused_mode, layer.hidden_size
    D = 2 if layer.bidirectional else 1
    order = GATE_ORDER[mode]
    blocks = lambda t: torch.cat([t.detach()[i * H:(i + 1) * H] for i in order])  # noqa: E731  gate blocks reordered
    W, R, B = [], [], []
    for direction in range(D):
        p = layer._layer_params(k, direction)
        W.append(blocks(p["weight_ih"]))  # (G*H, In)
        R.append(blocks(p["weight_hh"]))  # (G*H, H)
        if "bias_ih" in p:
            B.append(torch.cat([blocks(p["bias_ih"]), blocks(p["bias_hh"])]))  # (2*G*H,): Wb then Rb
    name = f"{weights}onnx_l{k}_"
    inputs = [x, g.initializer(name + "W", torch.stack(W)), g.initializer(name + "R", torch.stack(R)),
              g.initializer(name + "B", torch.stack(B)) if B else "",
              g.op("Cast", lengths, to=onnx.TensorProto.INT32) if lengths else "",
              g.op("Slice", h0, g.ints(k * D), g.ints((k + 1) * D), g.ints(0))]  # (D, N, H)
    if mode == "LSTM":
        inputs.append(g.op("Slice", c0, g.ints(k * D), g.ints((k + 1) * D), g.ints(0)))
    attributes = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if mode == "GRU":
        attributes["linear_before_reset"] = 1
    if mode.startswith("RNN"):
        attributes["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * D
    outputs = g.node(ONNX_OPERATOR[mode], inputs, 3 if mode == "LSTM" else 2, **attributes)
    y = g.op("Transpose", outputs[0], perm=[0, 2, 1, 3])  # (L, D, N, H) -> (L, N, D, H)
    y = g.op("Reshape", y, g.ints(0, 0, -1))  # (L, N, D*H)
    return y, outputs[1], (outputs[2] if mode == "LSTM" else None)


def layer_to_onnx(layer: RecurrentBase, path=None, *, lengths: bool = False, opset: int = OPSET,
                  metadata: dict | None = None):
    """The ONNX model of one layer stack with the contract of this module (x, h0, [c0], [lengths] -> y, h_n, [c_n]).

    Args:
        layer: an rnnkit ``Recurrent``, ``RNN``, ``LSTM`` or ``GRU`` (exported as in evaluation mode).
        path: where to write it (atomically, checked); None: only return it.
        lengths: add the ``lengths`` input (int64, (N,)).
        opset: the ONNX opset, at least 17.
        metadata: ``metadata_props`` to add (see :func:`rnnkit.export.onnx_model.set_metadata`).

    Returns:
        the ``onnx.ModelProto``.
    """
    if not isinstance(layer, RecurrentBase):
        raise InputError(f"layer_to_onnx takes an rnnkit recurrent layer (rnnkit.nn.Recurrent, RNN, LSTM, GRU), "
                         f"got {type(layer).__name__}; export a whole model with rnnkit.export.to_onnx")
    g = GraphBuilder("")
    dtype = ONNX_DTYPES[layer._first_weight().dtype]
    D, P, H = (2 if layer.bidirectional else 1), layer.proj_size or layer.hidden_size, layer.hidden_size
    rows = D * layer.num_layers
    x_dims = ["N", "L", layer.input_size] if layer.batch_first else ["L", "N", layer.input_size]
    inputs = [helper.make_tensor_value_info("x", dtype, x_dims), helper.make_tensor_value_info("h0", dtype, [rows, "N", P])]
    has_c = layer.cell.has_cell_state
    if has_c:
        inputs.append(helper.make_tensor_value_info("c0", dtype, [rows, "N", H]))
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", onnx.TensorProto.INT64, ["N"]))
    x = g.op("Transpose", "x", perm=[1, 0, 2]) if layer.batch_first else "x"
    y, h_n, c_n = add_recurrent(g, layer, Sequence(x, "h0", "c0" if has_c else None, "lengths" if lengths else None),
                                weights="")
    g.node("Transpose", [y], ["y"], perm=[1, 0, 2]) if layer.batch_first else g.node("Identity", [y], ["y"])
    g.node("Identity", [h_n], ["h_n"])
    y_dims = ["N", "L", D * P] if layer.batch_first else ["L", "N", D * P]
    outputs = [helper.make_tensor_value_info("y", dtype, y_dims), helper.make_tensor_value_info("h_n", dtype, [rows, "N", P])]
    if has_c:
        g.node("Identity", [c_n], ["c_n"])
        outputs.append(helper.make_tensor_value_info("c_n", dtype, [rows, "N", H]))
    graph = helper.make_graph(g.nodes, f"rnnkit_{layer.cell.name}", inputs, outputs, list(g.initializers.values()))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(opset, STEP_OPSET))],
                              producer_name="rnnkit")
    return finish_model(model, path, metadata)
