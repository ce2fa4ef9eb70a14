"""A small builder of ONNX graphs: nodes and initializers under unique names, for the recurrent subgraphs.

The export code writes ONNX by hand only where rnnkit owns the structure (the layers' stacking, directions, state
slicing and masks); a cell's step equations come from its reference step (:mod:`rnnkit.export.onnx_step`).
Every name the builder makes starts with its prefix, so that several recurrent layers (and several calls of one
layer) live side by side in one graph without clashes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..extras import require

onnx = require("onnx", "export")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402  (after the one-line message for a missing onnx)

# torch's floating types as ONNX names them (the recurrent graphs compute in the layer's dtype)
ONNX_DTYPES = {torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE, torch.float16: TensorProto.FLOAT16,
               torch.bfloat16: TensorProto.BFLOAT16}


class GraphBuilder:
    """Nodes and initializers collected in order, each output named ``{prefix}{k}_{op}``.

    Args:
        prefix: the start of every name this builder makes.
        initializers: a dict name -> TensorProto shared with other builders (one copy of each weight even when a
            layer is called several times).
    """

    def __init__(self, prefix: str, initializers: dict | None = None):
        self.prefix = prefix
        self.nodes: list = []
        self.initializers = {} if initializers is None else initializers
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A new unique value name."""
        self._count += 1
        return f"{self.prefix}{self._count}_{hint}"

    def node(self, op: str, inputs: list[str], outputs: int | list[str] = 1, **attributes) -> list[str]:
        """Append one node; ``outputs`` is a count (fresh names) or the names to give. Returns the output names."""
        names = [self.fresh(op.lower()) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(helper.make_node(op, inputs, names, name=self.fresh(f"{op}_node"), **attributes))
        return names

    def op(self, op: str, *inputs: str, **attributes) -> str:
        """Append a node with one output and return its name."""
        return self.node(op, list(inputs), 1, **attributes)[0]

    def initializer(self, name: str, value) -> str:
        """A weight or constant (a tensor or an array) under ``name`` exactly (once, however often asked)."""
        if name not in self.initializers:
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def const(self, hint: str, value) -> str:
        """A small constant (shapes, axes, indices) under a fresh name."""
        return self.initializer(self.fresh(hint), value)

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant, as Slice, Unsqueeze, Reshape take their axes and shapes."""
        return self.const("ints", np.array(values, dtype=np.int64))
