"""An ONNX model made into a file: its metadata, the check, the rewrites that speed it up, the atomic write.

Every ONNX file rnnkit writes (a layer's, :mod:`rnnkit.export.onnx_recurrent`; a model's,
:mod:`rnnkit.export.onnx_model`) ends here, so that each gets the same metadata rules, ``onnx.checker`` and the
same stored W^T of its step bodies (:mod:`rnnkit.export.onnx_optimize`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..files import write_atomic
from .onnx_graph import onnx
from .onnx_optimize import pretranspose_subgraph_weights


def set_metadata(model, metadata: dict | None) -> None:
    """Add ``metadata`` to the model's ``metadata_props``: strings as they are, other values as JSON."""
    for key, value in (metadata or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), text


def check_target(path) -> Path:
    """``path`` as a Path; InputError when its folder does not exist."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist; create it or choose "
                         f"another path")
    return path


def finish_model(model, path=None, metadata: dict | None = None):
    """Add the metadata, check the model with ``onnx.checker``, and write it atomically to ``path`` if given."""
    target = None if path is None else check_target(path)
    pretranspose_subgraph_weights(model)  # the step bodies' x W^T with W^T stored once, not transposed every step
    set_metadata(model, metadata)
    onnx.checker.check_model(model)
    if target is not None:
        write_atomic(target, model.SerializeToString())
    return model
