"""Rewrites of a finished ONNX graph that make it faster to run and leave what it computes unchanged.

A cell's step body is traced from its reference equations (:mod:`rnnkit.export.onnx_step`), where ``x_t @ W.T`` is
``MatMul(x_t, Transpose(W))`` with W read from the outer graph: as it stands the body would transpose every weight
at every step (two 1024 x 256 copies per step for a layer-normalised LSTM at H=256), and onnxruntime does not fold a
Transpose of an outer-scope initializer inside a ``Scan``. :func:`pretranspose_subgraph_weights` stores W^T once
instead. The dynamic quantizer (:mod:`rnnkit.export.quantize`) needs the same: a MatMul whose B is a constant.
"""

from __future__ import annotations

import numpy as np

from .onnx_graph import helper, numpy_helper, onnx

FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


def pretranspose_subgraph_weights(model) -> int:
    """In every subgraph (Scan and Loop bodies, at any depth), replace each ``Transpose`` of a 2-D float initializer
    of the main graph (read from the outer scope) by a main-graph initializer holding the transposed matrix, in
    place; returns how many. The MatMuls that read it then have a constant B, which the quantizer quantizes."""
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    made: dict[str, str] = {}  # weight name -> its transposed initializer
    count = 0
    for subgraph in subgraphs(model.graph):
        local = {value.name for value in subgraph.input} | {tensor.name for tensor in subgraph.initializer}
        kept = []
        renamed: dict[str, str] = {}
        for node in subgraph.node:
            source = node.input[0] if node.op_type == "Transpose" else None
            perm = [helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"]
            if (source is None or source in local or source not in initializers
                    or len(initializers[source].dims) != 2 or initializers[source].data_type not in FLOATS
                    or (perm and list(perm[0]) != [1, 0])):
                kept.append(node)
                continue
            if source not in made:
                made[source] = f"{source}_transposed"
                weight = numpy_helper.to_array(initializers[source])
                model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight.T), made[source]))
            renamed[node.output[0]] = made[source]
            count += 1
        for node in kept:
            node.input[:] = [renamed.get(name, name) for name in node.input]
        for value in subgraph.output:
            if value.name in renamed:  # a transposed weight returned as it is: keep a node that names it
                kept.append(helper.make_node("Identity", [renamed[value.name]], [value.name]))
        del subgraph.node[:]
        subgraph.node.extend(kept)
    # the originals no node reads any more (their subgraphs read the transposed copies) are dropped
    used = {name for node in all_nodes(model.graph) for name in node.input} | {o.name for o in model.graph.output}
    kept_initializers = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept_initializers)
    return count


def subgraphs(graph):
    """Every subgraph of ``graph``'s nodes (Scan and Loop bodies), nested ones included."""
    for node in graph.node:
        for attribute in node.attribute:
            nested = ([attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else []) + list(attribute.graphs)
            for sub in nested:
                yield sub
                yield from subgraphs(sub)


def all_nodes(graph):
    """Every node of ``graph`` and of the subgraphs of its nodes (Scan and Loop bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attribute.g)
            for sub in attribute.graphs:
                yield from all_nodes(sub)
