r"""What one exported graph is: a wrapper module whose ``forward`` *is* the file's contract, its example inputs,
and every input and output named, shaped, typed and explained.

A task's model becomes one or more graphs (:mod:`rnnkit.export.graphs` builds them): a language model's
whole-sequence graph and its one-step graph, a translator's encoder and its one-step decoder. Each
:class:`Graph` knows what the exporter needs (input and output names, the dynamic axes, the example inputs
that trace it) and what a deployer needs (:meth:`Graph.contract`, written into the file's metadata).

Shapes use PyTorch's letters as strings for the axes that vary from call to call (``"N"`` batch, ``"L"``
steps, ``"S"`` source tokens, ``"W"`` characters per word) and integers for the fixed ones (the vocabulary
size, the hidden width).

    >>> spec = IOSpec("ids", ("N", "L"), "int64", "token ids")
    >>> spec.dynamic_axes
    {0: 'N', 1: 'L'}
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

# ONNX names of the element types the graphs use (what onnxruntime's InferenceSession reports, without "tensor()")
DTYPES = ("float32", "int64", "bool")


@dataclass(frozen=True)
class IOSpec:
    """One input or output of a graph: its ``name``, ``shape`` (strings: axes that vary per call), ``dtype``
    (one of :data:`DTYPES`) and ``meaning`` (one sentence for the deployer)."""

    name: str
    shape: tuple[str | int, ...]
    dtype: str
    meaning: str

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {DTYPES}")

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """The axes whose size varies per call: position -> name."""
        return {axis: size for axis, size in enumerate(self.shape) if isinstance(size, str)}

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "meaning": self.meaning}


@dataclass
class Graph:
    """One exported graph.

    Attributes:
        role: what the graph is for, and the suffix of its file beside the first one: ``"sequence"``,
            ``"step"``, ``"classifier"``, ``"encoder"``, ``"decoder_step"``, ...
        module: the wrapper whose ``forward(*inputs)`` returns the outputs in the order of ``outputs``.
        example_inputs: real tensors to trace it with (their sizes differ on every dynamic axis, so that no
            size is mistaken for a constant).
        inputs, outputs: the :class:`IOSpec` of each, in order.
        notes: how to use the outputs (a decoding loop, a numpy function shipped beside the file).
    """

    role: str
    module: nn.Module
    example_inputs: tuple[Tensor, ...]
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    notes: str = ""

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export's ``dynamic_axes``: every input and output with an axis that varies per call."""
        return {spec.name: spec.dynamic_axes for spec in (*self.inputs, *self.outputs) if spec.dynamic_axes}

    def contract(self) -> dict:
        """The exact input/output contract, as JSON-ready data: names, shapes, dtypes, meanings and notes."""
        return {"role": self.role, "inputs": [spec.to_dict() for spec in self.inputs],
                "outputs": [spec.to_dict() for spec in self.outputs], "notes": self.notes}
