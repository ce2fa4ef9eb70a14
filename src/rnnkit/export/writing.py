r"""Writing a model's graphs to files: the first graph to the path asked for, every other one beside it with its
role as a suffix, each with rnnkit's metadata, all or nothing.

    write_graphs(graphs, "lm.onnx", ...)   →   lm.onnx (the sequence graph), lm.step.onnx (the step graph)

Every file is first written into a temporary folder beside the target and moved into place only once all of them
were written (and, for ONNX, checked): a failure leaves what the user had untouched.

The metadata of an ONNX file (``metadata_props``, strings; structured values as JSON), read by
``onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map``:

=========================  =====================================================================================
``rnnkit.version``          the rnnkit that wrote the file
``rnnkit.task``             the run's task (``lm``, ``classify``, ...)
``rnnkit.graph``            this file's role (``sequence``, ``step``, ``classifier``, ``encoder``, ...)
``rnnkit.files``            JSON: every file of the export, role -> file name (siblings in the same folder)
``rnnkit.cell``             the recurrent cell (``lstm``, ``layernorm_gru``, ...)
``rnnkit.contract``         JSON: this graph's inputs and outputs (name, shape, dtype, meaning) and usage notes
``rnnkit.model``            JSON: the model's configuration
``rnnkit.vocabulary``       JSON: the vocabularies (tokens, labels, tags) when small; else
``rnnkit.vocabulary_file``  the name of the JSON file beside this one that holds them
``rnnkit.<key>``            task settings a deployer needs (JSON): ``labels``, ``transform``, ``pitch_range``,
                           ``decode`` (a translator's beam size and length penalty), ...
``rnnkit.quantized``        ``int8`` for a file of int8 weights (absent for float32)
=========================  =====================================================================================
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError
from ..extras import require
from ..files import TEMP_PREFIX, fsync_directory, write_atomic, write_failure
from .exported_program import to_exported_program
from .graph_contract import Graph
from .onnx_model import to_onnx

onnx = require("onnx", "export")
from onnx import helper  # noqa: E402  (after the one-line message for a missing onnx)

FORMATS = {"onnx": ".onnx", "exported-program": ".pt2"}
# vocabularies above this size (as JSON) are written beside the file rather than inline in its metadata
INLINE_VOCABULARY_BYTES = 64 * 1024
JSON_STYLE = {"ensure_ascii": False, "separators": (",", ":")}


def graph_path(out: Path, graphs: list[Graph], graph: Graph) -> Path:
    """Where ``graph`` goes: ``out`` for the first graph, ``out``'s stem + ``.{role}`` + its suffix otherwise."""
    if graph is graphs[0]:
        return out
    return out.with_name(f"{out.stem}.{graph.role}{out.suffix}")


def planned_paths(out: Path, graphs: list[Graph], vocabulary: dict | None, extra_files: dict[str, bytes]) -> list[Path]:
    """Every path an export of ``graphs`` to ``out`` writes, in order."""
    paths = [graph_path(out, graphs, graph) for graph in graphs]
    if vocabulary is not None and len(_json(vocabulary).encode()) > INLINE_VOCABULARY_BYTES:
        paths.append(out.with_name(f"{out.stem}.vocab.json"))
    return paths + [out.with_name(name) for name in extra_files]


def graph_metadata(graph: Graph, graphs: list[Graph], out: Path, common: dict[str, object],
                   vocabulary: dict | None) -> dict[str, str]:
    """The metadata of one file (see the module docstring): ``common`` (version, task, cell, model, task
    settings) as ``rnnkit.<key>``, this graph's role and contract, the sibling files, the vocabulary."""
    metadata = {f"rnnkit.{key}": value if isinstance(value, str) else _json(value) for key, value in common.items()}
    metadata["rnnkit.graph"] = graph.role
    metadata["rnnkit.files"] = _json({g.role: graph_path(out, graphs, g).name for g in graphs})
    metadata["rnnkit.contract"] = _json(graph.contract())
    if vocabulary is not None:
        text = _json(vocabulary)
        if len(text.encode()) > INLINE_VOCABULARY_BYTES:
            metadata["rnnkit.vocabulary_file"] = f"{out.stem}.vocab.json"
        else:
            metadata["rnnkit.vocabulary"] = text
    return metadata


def write_graphs(graphs: list[Graph], out: str | Path, *, format: str, common: dict[str, object],
                 vocabulary: dict | None = None, extra_files: dict[str, bytes] | None = None,
                 transform=None) -> list[Path]:
    """Write every graph (and ``extra_files``, name -> bytes, beside them) all or nothing; returns the paths.

    ``transform(path, graph)`` is applied to each written ONNX file inside the temporary folder (int8
    quantization) before anything is moved into place.
    """
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    extra_files = extra_files or {}
    targets = planned_paths(out, graphs, vocabulary, extra_files)
    try:
        staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=out.parent))
    except OSError as error:
        raise write_failure(out, error) from None
    try:
        written = []
        for graph in graphs:
            path = staging / graph_path(out, graphs, graph).name
            metadata = graph_metadata(graph, graphs, out, common, vocabulary)
            graph.module.eval()
            if format == "onnx":
                to_onnx(graph.module, path, graph.example_inputs, input_names=graph.input_names,
                        output_names=graph.output_names, dynamic_axes=graph.dynamic_axes, metadata=metadata)
                name_outputs(path, graph.output_names)
                if transform is not None:
                    transform(path, graph)
            else:
                try:
                    to_exported_program(graph.module, path, graph.example_inputs,
                                        dynamic_shapes=exported_program_shapes(graph), metadata=metadata)
                except InputError:
                    raise
                except Exception as error:  # torch.export's refusal of this model's code (data-dependent checks)
                    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    raise InputError(f"torch.export cannot export the {graph.role} graph of this model ({reason}); "
                                     f"use --format onnx") from None
            written.append(path)
        if vocabulary is not None and len(_json(vocabulary).encode()) > INLINE_VOCABULARY_BYTES:
            write_atomic(staging / f"{out.stem}.vocab.json", _json(vocabulary).encode())
            written.append(staging / f"{out.stem}.vocab.json")
        for name, data in extra_files.items():
            write_atomic(staging / name, data)
            written.append(staging / name)
        for source, target in zip(written, targets):
            try:
                os.replace(source, target)
            except OSError as error:
                raise write_failure(target, error) from None
        fsync_directory(out.parent)
        return targets
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def name_outputs(path: Path, names: list[str]) -> None:
    """Give every graph output of the ONNX file its contract name: the exporter keeps a generated name for an
    output that is a weight returned as it is (a CRF's transitions, the NADE's W), so an Identity renames it."""
    model = onnx.load(str(path))
    changed = False
    for output, name in zip(model.graph.output, names):
        if output.name != name:
            model.graph.node.append(helper.make_node("Identity", [output.name], [name], name=f"output_{name}"))
            output.name = name
            changed = True
    if changed:
        onnx.checker.check_model(model)
        write_atomic(path, model.SerializeToString())


def exported_program_shapes(graph: Graph) -> tuple:
    """torch.export's ``dynamic_shapes`` of the graph's positional inputs (each dynamic axis may vary), shaped as
    ``forward``'s signature: the inputs a ``*state`` parameter takes grouped in one tuple."""
    from torch.export import Dim

    shapes = [{axis: Dim.DYNAMIC for axis in spec.dynamic_axes} or None for spec in graph.inputs]
    parameters = list(inspect.signature(graph.module.forward).parameters.values())
    for index, parameter in enumerate(parameters):
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return (*shapes[:index], tuple(shapes[index:]))
    return tuple(shapes)


def _json(value) -> str:
    return json.dumps(value, **JSON_STYLE)
