r"""Any ``nn.Module`` that holds rnnkit recurrent layers, as an ONNX file: :func:`to_onnx`.

``torch.onnx.export`` cannot export rnnkit's engines (Python loops, custom ops) nor ``pack_padded_sequence``
(pytorch #62240). So during the export each rnnkit layer answers through a placeholder: an autograd Function
that computes the real result (the trace goes on with true values) and whose ``symbolic`` writes one node
``rnnkit::Recurrent`` naming the layer. Afterwards each such node is replaced by the layer's subgraph
(:func:`rnnkit.export.onnx_recurrent.add_recurrent`): ONNX's own RNN/LSTM/GRU or a Scan over the cell's step.

Variable lengths: while exporting, ``pack_padded_sequence`` and ``pad_packed_sequence`` pass the padded batch and
its lengths along (:mod:`rnnkit.export.tracing`); the layer's node takes the lengths as an input, so the graph has
PackedSequence's meaning (rows unsorted, each row's final state at its own last step, zeros past a length) for
any batch. A ``PackedSequence`` built any other way (``pack_sequence``) is refused with a message.

The file: ``metadata_props`` from ``metadata`` (strings; anything else as JSON), checked by
``onnx.checker.check_model``, written to a temporary file beside the target and renamed, so a failure leaves
what was there.
"""

from __future__ import annotations

import io
import warnings

import torch
import torch.nn.utils.rnn as rnn_utils
from torch import Tensor, nn

from ..errors import InputError
from ..nn.layer import RecurrentBase
from .onnx_graph import GraphBuilder, onnx
from .onnx_file import check_target, finish_model, set_metadata  # noqa: F401  (set_metadata: rnnkit.export's API)
from .onnx_recurrent import OPSET, Sequence, add_recurrent
from .tracing import layer_calls, real_packing

DOMAIN = "rnnkit"  # the placeholder nodes' domain, gone from the finished file


class _RecurrentOp(torch.autograd.Function):
    """The placeholder of one layer call: the real result forward, one ``rnnkit::Recurrent`` node when exported."""

    @staticmethod
    def forward(ctx, layer_id: int, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None):
        layer = _LAYERS[layer_id]  # x (L, N, In) time-major, h0 (D*layers, N, P), lengths (N,) or None
        hx = h0 if c0 is None else (h0, c0)
        tracing = torch._C._get_tracing_state()  # the real computation is not part of the trace
        torch._C._set_tracing_state(None)
        try:
            return _RecurrentOp._compute(layer, x, hx, lengths)
        finally:
            torch._C._set_tracing_state(tracing)

    @staticmethod
    def _compute(layer, x, hx, lengths):
        with real_packing():
            if lengths is None:
                y, state = type(layer).forward(layer, x.transpose(0, 1) if layer.batch_first else x, hx)
                y = y.transpose(0, 1) if layer.batch_first else y
            else:
                packed = rnn_utils.pack_padded_sequence(x, lengths, enforce_sorted=False)
                y, state = type(layer).forward(layer, packed, hx)
                y, _ = rnn_utils.pad_packed_sequence(y, total_length=x.shape[0])
        return (y, *(state if isinstance(state, tuple) else (state,)))

    @staticmethod
    def symbolic(g, layer_id, x, h0, c0, lengths):
        inputs = [value for value in (x, h0, c0, lengths) if value is not None]
        has_c = _LAYERS[layer_id].cell.has_cell_state
        outputs = g.op(f"{DOMAIN}::Recurrent", *inputs, layer_i=layer_id, has_c0_i=int(c0 is not None),
                       has_lengths_i=int(lengths is not None), outputs=3 if has_c else 2)
        for value, reference in zip(outputs, (x, h0, c0)):
            value.setType(reference.type().with_sizes([None] * 3))  # rank known, sizes dynamic
        return outputs


_LAYERS: list[RecurrentBase] = []  # the layers of the export under way, by the placeholder's layer id


def _placeholder(layer: RecurrentBase, index: int, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None):
    y, *final = _RecurrentOp.apply(index, x, h0, c0, lengths)
    return y, final[0], (final[1] if len(final) > 1 else None)


def replace_placeholders(model, layers: list[RecurrentBase]) -> None:
    """Replace each ``rnnkit::Recurrent`` node of ``model`` by its layer's subgraph, in place."""
    graph = model.graph
    initializers: dict = {}
    nodes = []
    for call, node in enumerate(graph.node):
        if node.domain != DOMAIN:
            nodes.append(node)
            continue
        attributes = {a.name: a.i for a in node.attribute}
        layer = layers[attributes["layer"]]
        names = list(node.input)
        x, h0 = names[0], names[1]
        c0 = names[2] if attributes["has_c0"] else None
        lengths = names[-1] if attributes["has_lengths"] else None
        g = GraphBuilder(f"rnnkit_call{call}/", initializers)
        if lengths is not None:
            lengths = g.op("Cast", lengths, to=onnx.TensorProto.INT64)
        y, h_n, c_n = add_recurrent(g, layer, Sequence(x, h0, c0, lengths), weights=f"rnnkit_layer{attributes['layer']}.")
        for produced, wanted in zip((y, h_n, c_n), node.output):
            if wanted:
                g.node("Identity", [produced], [wanted])
        nodes.extend(g.nodes)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(initializers.values())
    kept = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def to_onnx(module: nn.Module, path, example_inputs, *, input_names=None, output_names=None, dynamic_axes=None,
            metadata: dict | None = None, opset: int = OPSET):
    """Export ``module`` (any ``nn.Module``; its rnnkit layers as ONNX RNN/LSTM/GRU or Scan) to the ONNX file ``path``.

    Args:
        module: the model, exported in evaluation mode (its mode is restored afterwards).
        path: the file to write (its folder must exist); written atomically.
        example_inputs: a tuple of the forward's positional arguments (a lone tensor is taken as one argument).
        input_names, output_names, dynamic_axes: as ``torch.onnx.export`` takes them; name the sequence axis in
            ``dynamic_axes`` to keep the length dynamic.
        metadata: key/values for ``metadata_props`` (strings; other values written as JSON).
        opset: the ONNX opset, at least 17 (default 17).

    Returns:
        the path written.
    """
    target = check_target(path)
    if opset < OPSET:
        raise InputError(f"opset {opset} is too old for the recurrent graphs (Scan bodies use LayerNormalization); "
                         f"use opset={OPSET} or later")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    training = module.training
    module.eval()
    buffer = io.BytesIO()
    try:
        with layer_calls(module, _placeholder) as layers, warnings.catch_warnings(), torch.no_grad():
            _LAYERS[:] = layers
            warnings.simplefilter("ignore")  # the TorchScript exporter's notices (deprecation, traced sizes)
            torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes, custom_opsets={DOMAIN: 1},
                              do_constant_folding=True)
            model = onnx.load_from_string(buffer.getvalue())
            replace_placeholders(model, layers)
    finally:
        _LAYERS.clear()
        module.train(training)
    finish_model(model, target, metadata)
    return target
