r"""A cell's step as an ONNX graph, from its reference equations: the body of the ``Scan`` that runs any cell.

rnnkit writes no ONNX per cell. :func:`step_body` traces a small module around
:meth:`rnnkit.nn.cells.base.Cell.reference_step` with ``torch.onnx.export(dynamo=False)``, its parameters as graph
inputs, and returns the graph with this contract (N rows of one step; P = h's size, H = c's size):

    inputs   h (N, P), [c (N, H)],  x_t (N, In), [m_t (N, 1) bool],  then the parameters by base name
    outputs  h' (N, P), [c' (N, H)], y_t (N, P)

computed by :func:`rnnkit.export.step.masked_step` (the cell's reference step, zoneout's expectation, the
length mask: a row past its length keeps its state and outputs zeros, PackedSequence's meaning). The caller
(:mod:`rnnkit.export.onnx_recurrent`) removes the parameter inputs and points them at the layer's weights in the
outer graph (ONNX subgraphs read outer-scope values), so that one traced body serves every layer-direction.

The trace is static in its shapes, then the batch dimension is made symbolic; a step whose equations read the batch
size into a shape (a ``view(N, ...)``) would bake it in, so the body is traced at two batch sizes and must come out
the same, else the export is refused with the cell's name.
"""

from __future__ import annotations

import copy
import io
import warnings
from functools import lru_cache

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..nn.cells.base import Cell
from .onnx_graph import ONNX_DTYPES, onnx
from .step import masked_step

STEP_OPSET = 17  # LayerNormalization is an operator from 17 on


class _Step(nn.Module):
    """:func:`rnnkit.export.step.masked_step` with flat tensor arguments, as the exporter traces it."""

    def __init__(self, cell: Cell, names: tuple[str, ...], masked: bool, zoneout: float):
        super().__init__()
        self.cell, self.names, self.masked, self.zoneout = cell, names, masked, zoneout
        self.parts = len(cell.state_sizes())

    def forward(self, *args: Tensor):
        state = args[: self.parts]  # (h,) or (h, c): (N, P), (N, H)
        x_t = args[self.parts]  # (N, In)
        m_t = args[self.parts + 1] if self.masked else None  # (N, 1) bool
        params = dict(zip(self.names, args[self.parts + 1 + self.masked:]))
        new, y_t = masked_step(self.cell, params, state, x_t, m_t, self.zoneout)
        return (*new, y_t)


def _trace(cell: Cell, shapes: dict[str, tuple[int, ...]], input_size: int, masked: bool, zoneout: float,
           dtype: torch.dtype, rows: int):
    names = tuple(shapes)
    state_names = ("h", "c")[: len(cell.state_sizes())]
    example = [torch.zeros(rows, size, dtype=dtype) for size in cell.state_sizes()]
    example.append(torch.zeros(rows, input_size, dtype=dtype))
    if masked:
        example.append(torch.ones(rows, 1, dtype=torch.bool))
    example += [torch.zeros(shape, dtype=dtype) for shape in shapes.values()]
    inputs = [*state_names, "x_t", *(["m_t"] if masked else []), *names]
    outputs = [f"{s}_next" for s in state_names] + ["y_t"]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(_Step(cell, names, masked, zoneout), tuple(example), buffer, dynamo=False,
                          opset_version=STEP_OPSET, input_names=inputs, output_names=outputs,
                          do_constant_folding=False, keep_initializers_as_inputs=False)
    return onnx.load_from_string(buffer.getvalue()).graph, inputs, outputs


def _without_shapes(graph) -> bytes:
    """The graph's computation alone (nodes and constants), for comparing two traces."""
    bare = copy.deepcopy(graph)
    del bare.value_info[:]
    for value in (*bare.input, *bare.output):
        value.type.tensor_type.ClearField("shape")
    for node in bare.node:
        node.name = ""
    return bare.SerializeToString()


@lru_cache(maxsize=256)
def _cached_body(cell_type: type, hidden_size: int, bias: bool, proj_size: int, shapes: tuple, input_size: int,
                 masked: bool, zoneout: float, dtype: torch.dtype):
    cell = cell_type(hidden_size, bias=bias, proj_size=proj_size)
    shapes = dict(shapes)
    graph, inputs, outputs = _trace(cell, shapes, input_size, masked, zoneout, dtype, rows=2)
    other, _, _ = _trace(cell, shapes, input_size, masked, zoneout, dtype, rows=3)
    if _without_shapes(graph) != _without_shapes(other):
        raise InputError(f"cell {cell.name!r}: its reference_step puts the batch size into a shape, so its ONNX step "
                         f"would only take one batch size; write the step with shapes from its inputs "
                         f"(x_t.shape[0]) or with -1 in view/reshape")
    n_params = len(shapes)
    params = list(inputs[len(inputs) - n_params:])
    del graph.value_info[:]  # shapes traced at N = 2: the batch dimension becomes symbolic below
    elem = ONNX_DTYPES[dtype]
    for value in (*graph.input, *graph.output):
        if value.name in params:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "N"
    return graph.SerializeToString(), tuple(inputs[: len(inputs) - n_params]), tuple(params), tuple(outputs), elem


def step_body(cell: Cell, params: dict[str, Tensor], input_size: int, masked: bool, zoneout: float):
    """The step graph of ``cell`` (see the module) for one layer-direction with these parameters (by base name).

    Returns ``(graph, state_and_scan_inputs, parameter_inputs, outputs)``: a fresh GraphProto (the caller may
    rename in it) and the names of its inputs and outputs. Traced once per cell configuration (cached)."""
    shapes = tuple((name, tuple(t.shape)) for name, t in params.items())
    dtype = next(iter(params.values())).dtype
    data, inputs, names, outputs, _ = _cached_body(type(cell), cell.hidden_size, cell.bias, cell.proj_size, shapes,
                                                   input_size, masked, float(zoneout), dtype)
    graph = onnx.GraphProto()
    graph.ParseFromString(data)
    return graph, inputs, names, outputs
