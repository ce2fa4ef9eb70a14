r"""A cell's step as the explain page runs it: the cell's own equations, traced into a program of ATen operations.

Every cell declares its step once, as plain torch code: ``reference_step`` in ``rnnkit/nn/cells/NAME.py``, the
oracle of every engine. :func:`step_program` runs that step once under torch.fx's ``make_fx`` on one layer's
parameters and records each ATen operation it calls, in order; ``model.js`` computes the same operations in the
browser. So no list of cells is kept for the page: a cell registered tomorrow runs in it when its equations use
operations that ``model.js`` computes (the names of its ``OPS`` table, :func:`browser_ops`), and a cell that uses
another gets the static page, with the operation named (:class:`UnsupportedStep`).

Of the two ways to take the page's cells from the registry, this one generates each cell's browser step from its
declaration; the other, running the model's exported graph (ONNX, an ExportedProgram) in the page, was not
chosen: it needs a graph runtime in the page (onnxruntime-web is megabytes of WebAssembly, and the page is one
file that makes no network request), and an exported model runs whole sequences, where the page steps one token
at a time and keeps every state, for the text it colours as the user types and for the samples it draws. The
step program is a few dozen operations per layer that a page of JavaScript computes, in float64.

The format, one program per layer::

    {"inputs": [name, ...],           the layer's parameters by base name ("weight_ih", ...), then "x", "h" (and
                                       "c" with a cell state): x (1, In), h (1, H), c (1, H)
     "nodes": [[op, [arg, ...]], ...], op an ATen overload ("aten.mm.default") or "getitem", its arguments in
                                       schema order: a number, a boolean, null, a list, or {"ref": i}, the value
                                       of input i or of node i - len(inputs)
     "outputs": [{"ref": i}, ...]}     the new state: h (and c)

    >>> import torch
    >>> from rnnkit.nn import Recurrent
    >>> layer = Recurrent("gru", 3, 4)
    >>> program = step_program(layer.cell, {name[:-3]: p for name, p in layer.named_parameters()}, 3)
    >>> program["inputs"], len(program["outputs"])
    (['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh', 'x', 'h'], 1)
    >>> sorted({op for op, _ in program["nodes"]} - browser_ops())
    []
"""

from __future__ import annotations

import math
import operator
import re
from functools import cache
from importlib import resources

import torch
from torch import Tensor
from torch.fx import Graph, Node
from torch.fx.experimental.proxy_tensor import make_fx

from ..nn import Cell

OPS_ENTRY = re.compile(r'^\s*"([\w.]+)":', re.M)


class UnsupportedStep(ValueError):
    """The page cannot compute a cell's step; the message says why, in a few words."""


@cache
def browser_ops() -> frozenset[str]:
    """The operations ``model.js`` computes: the names of its ``OPS`` table."""
    source = resources.files(__package__).joinpath("model.js").read_text(encoding="utf-8")
    table = source[source.index("const OPS = {"):]
    return frozenset(OPS_ENTRY.findall(table[: table.index("\n  };")]))


def step_program(cell: Cell, parameters: dict[str, Tensor], input_size: int) -> dict:
    """The step of ``cell`` (configured as the layer's) on one layer's ``parameters`` (by base name) as a program
    of ATen operations (format in the module docstring), in evaluation: ``h_in``, the state that meets the
    recurrent weight, is h itself (recurrent dropout is off). UnsupportedStep for an operation ``model.js`` lacks."""
    names = list(parameters)
    sizes = cell.state_sizes()

    def step(*tensors: Tensor) -> tuple[Tensor, ...]:
        x, *state = tensors[len(names):]
        new_state, _ = cell.reference_step(dict(zip(names, tensors)), x, tuple(state), state[0])
        return tuple(new_state)

    values = [parameter.detach() for parameter in parameters.values()]
    dtype = values[0].dtype
    examples = [torch.zeros(1, size, dtype=dtype) for size in (input_size, *sizes)]  # x (1, In), h (1, H), c
    with torch.no_grad():
        graph = make_fx(step)(*values, *examples).graph
    return _program(graph, [*names, "x", *("h", "c")[: len(sizes)]], cell.name)


def _program(graph: Graph, inputs: list[str], cell: str) -> dict:
    """The traced ``graph`` as the page's JSON program; ``inputs`` names its placeholders in order."""
    supported = browser_ops()
    refs: dict[Node, int] = {}
    nodes, outputs = [], []
    for node in graph.nodes:
        if node.op == "placeholder":
            refs[node] = len(refs)
        elif node.op == "call_function":
            op = "getitem" if node.target is operator.getitem else str(node.target)
            if op not in supported:
                raise UnsupportedStep(f"the page has no JavaScript for {op}, which the {cell!r} cell's step uses")
            nodes.append([op, _encode(_positional(node), refs, cell)])
            refs[node] = len(refs)
        elif node.op == "output":
            outputs = _encode(list(node.args[0]), refs, cell)
        else:  # a tensor the step made itself (get_attr): a constant the program has no way to carry
            raise UnsupportedStep(f"the {cell!r} cell's step holds a constant tensor ({node.target}) the page cannot carry")
    return {"inputs": inputs, "nodes": nodes, "outputs": outputs}


def _positional(node: Node) -> list:
    """The node's arguments in its operation's schema order, its keyword arguments placed up to the last given."""
    args = list(node.args)
    if node.kwargs:
        schema = node.target._schema.arguments[len(args):]
        last = max(i for i, argument in enumerate(schema) if argument.name in node.kwargs)
        for argument in schema[: last + 1]:
            args.append(node.kwargs[argument.name] if argument.name in node.kwargs else argument.default_value)
    return args


def _encode(value, refs: dict[Node, int], cell: str):
    """An argument as JSON: a reference to an earlier value, a number, a list, or null."""
    if isinstance(value, Node):
        return {"ref": refs[value]}
    if isinstance(value, (list, tuple)):
        return [_encode(item, refs, cell) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
        return str(value)  # model.js computes in float64 on the CPU whatever they say
    raise UnsupportedStep(f"the {cell!r} cell's step has an argument the page cannot carry: {value!r}")
