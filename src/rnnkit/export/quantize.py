r"""Dynamic int8 weights for an exported ONNX file (``rnnkit export RUN --quantize int8``).

onnxruntime's dynamic quantizer (``onnxruntime.quantization.quantize_dynamic``) stores each weight matrix as int8
with one scale (and zero point) per tensor, and quantizes the activations on the fly at run time:

    W_int8 = round(W / s) + z,   s = (max W - min W) / 255      y = (x_q W_int8) dequantized

It rewrites ``MatMul`` (→ ``MatMulInteger``), ``LSTM`` (→ ``DynamicQuantizeLSTM``), ``Gather`` of an embedding, and
the ``MatMul`` nodes inside ``Scan`` bodies (``EnableSubgraph``) whose B is a constant. It does not rewrite ``Gemm``
(what a linear layer on (N, F) becomes) nor ONNX's ``GRU`` and ``RNN`` operators, nor a ``MatMul`` whose B is
computed, which is what a Scan body's ``x W^T`` is (``MatMul(x, Transpose(W))``, W read from the outer graph). So
before quantizing every ``Gemm`` with a constant weight is rewritten as the equal ``MatMul`` + ``Add``
(:func:`gemm_to_matmul`), every such ``Transpose(W)`` in a subgraph becomes an outer initializer holding W^T
(:func:`pretranspose_subgraph_weights`, so that the cells of the Scan route compute in int8 too), and afterwards
every weight still
in float32 (a GRU's W and R, say) is stored as int8 and dequantized when the session loads it
(:func:`store_int8`: ``W = s · W_int8``, symmetric, one scale per tensor), which shrinks the file as much but
leaves that operator computing in float32.

Example::

    quantize_int8("model.onnx", "model.int8.onnx")
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..extras import require
from ..files import write_atomic
from .graph_contract import Graph
from .onnx_optimize import all_nodes as _all_nodes, pretranspose_subgraph_weights

onnx = require("onnx", "export")
from onnx import helper, numpy_helper  # noqa: E402  (after the one-line message for a missing onnx)


def gemm_to_matmul(model) -> int:
    """Rewrite each ``Gemm(A, B, C)`` of the main graph whose B is an initializer as ``MatMul(A, B') + C``
    (B' = alpha · B, transposed when ``transB``; C scaled by beta), in place; returns how many were rewritten.
    A Gemm with ``transA`` or a computed B is left as it is."""
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes, rewritten = [], 0
    for node in model.graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        beta = attributes.get("beta", 1.0)
        if (node.op_type != "Gemm" or node.input[1] not in initializers or attributes.get("transA", 0)
                or (bias is not None and beta != 1.0 and bias not in initializers)):
            nodes.append(node)  # not a linear layer with constant weights: left as it is
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        weight = (weight.T if attributes.get("transB", 0) else weight) * attributes.get("alpha", 1.0)  # (F_in, F_out)
        weight_name = f"{node.input[1]}_matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight, dtype=np.float32),
                                                               weight_name))
        product = node.output[0] if bias is None else f"{node.output[0]}_product"
        nodes.append(helper.make_node("MatMul", [node.input[0], weight_name], [product], name=f"{node.name}_matmul"))
        if bias is not None:
            if beta != 1.0:
                scaled = numpy_helper.to_array(initializers[bias]) * beta
                bias = f"{bias}_scaled"
                model.graph.initializer.append(numpy_helper.from_array(scaled.astype(np.float32), bias))
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=f"{node.name}_add"))
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    # the transposed copies replace the originals: drop the initializers no node reads any more
    used = {name for node in _all_nodes(model.graph) for name in node.input} | {o.name for o in model.graph.output}
    kept = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return rewritten


def quantize_int8(source: str | Path, target: str | Path) -> None:
    """Write ``target``: the ONNX file ``source`` with dynamic int8 weights, its metadata kept and
    ``rnnkit.quantized = int8`` added."""
    quantization = require("onnxruntime.quantization", "export")
    model = onnx.load(str(source))
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    gemm_to_matmul(model)
    pretranspose_subgraph_weights(model)
    with tempfile.TemporaryDirectory() as folder:
        prepared, quantized = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, str(prepared))
        try:
            with _without_preprocessing_advice():
                quantization.quantize_dynamic(str(prepared), str(quantized),
                                              weight_type=quantization.QuantType.QInt8,
                                              extra_options={"EnableSubgraph": True})
        except Exception as error:  # the quantizer's own failure on a graph it cannot read: one line
            raise InputError(f"onnxruntime could not quantize {Path(source).name}: {error}; export without "
                             f"--quantize") from None
        result = onnx.load(str(quantized))
    store_int8(result)
    del result.metadata_props[:]
    for key, value in {**metadata, "rnnkit.quantized": "int8"}.items():
        result.metadata_props.add(key=key, value=value)
    write_atomic(Path(target), result.SerializeToString())


class _PreprocessingAdvice(logging.Filter):
    """Drops the quantizer's advice to run its shape pre-processing (rnnkit's graphs carry their shapes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocessing_advice():
    """While quantizing: the advice that onnxruntime's quantizer logs on the root logger at every call
    ("Please consider to run pre-processing before quantization") is dropped, and nothing else. The quantizer
    calls ``logging.warning``, which configures a root handler for good when the root has none; a NullHandler
    stands in meanwhile so that it does not. The root logger's filters, handlers and level are as before after."""
    root = logging.getLogger()
    advice = _PreprocessingAdvice()
    placeholder = logging.NullHandler() if not root.handlers else None
    root.addFilter(advice)
    if placeholder is not None:
        root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeFilter(advice)
        if placeholder is not None:
            root.removeHandler(placeholder)


def store_int8(model, minimum: int = 1024) -> int:
    """Store every float32 initializer of at least ``minimum`` elements as int8 with one scale, dequantized by a
    ``DequantizeLinear`` node that gives the same name (so subgraphs that read it from the outer scope still
    find it); returns how many. Symmetric: W_int8 = round(W / s), s = max|W| / 127."""
    kept, stored = [], 0
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or np.prod(tensor.dims) < minimum:
            kept.append(tensor)
            continue
        weight = numpy_helper.to_array(tensor)
        scale = np.float32(max(float(np.abs(weight).max()), 1e-12) / 127)
        integers = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
        kept += [numpy_helper.from_array(integers, f"{tensor.name}_int8"),
                 numpy_helper.from_array(np.array(scale, dtype=np.float32), f"{tensor.name}_int8_scale")]
        model.graph.node.insert(0, helper.make_node("DequantizeLinear", [f"{tensor.name}_int8",
                                                                         f"{tensor.name}_int8_scale"],
                                                    [tensor.name], name=f"{tensor.name}_dequantize"))
        stored += 1
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return stored


class QuantizedExport:
    """The ``transform`` of :func:`rnnkit.export.writing.write_graphs` for ``--quantize int8``: each float32 file
    is kept aside (for the accuracy comparison) and replaced by its int8 version.

    Attributes:
        float_files: role -> the float32 file kept aside.
    Use it as a context manager: the float32 copies are removed at the end.
    """

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="rnnkit-float32-"))
        self.float_files: dict[str, Path] = {}

    def __call__(self, path: Path, graph: Graph) -> None:
        kept = self.folder / path.name
        shutil.copyfile(path, kept)
        self.float_files[graph.role] = kept
        quantize_int8(kept, path)

    def __enter__(self) -> "QuantizedExport":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
