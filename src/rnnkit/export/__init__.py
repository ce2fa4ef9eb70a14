r"""Take a trained model out of Python: ONNX files and torch.export programs, for every registered cell.

* :func:`to_onnx` (``rnnkit.export.onnx_model``): any ``nn.Module`` holding rnnkit recurrent layers to an ONNX
  file; each layer becomes ONNX's RNN/LSTM/GRU operator (torch's four cells) or a ``Scan`` over the cell's own
  reference step (every other cell, a cell you register included), with a dynamic length, and lengths carried
  through ``pack_padded_sequence`` with PackedSequence's meaning.
* :func:`layer_to_onnx` (``rnnkit.export.onnx_recurrent``): one layer stack with the streaming contract
  ``x, h0, [c0], [lengths] -> y, h_n, [c_n]`` (torch.nn's layouts), so a stream can be fed chunk by chunk.
* :func:`to_exported_program` (``rnnkit.export.exported_program``): a ``torch.export`` program with a dynamic
  sequence length, saved by ``torch.export.save``.

The ONNX functions need the ``export`` extra (``pip install 'rnnkit[export]'``: onnx, onnxruntime); without it they
raise :class:`rnnkit.extras.MissingExtra` naming it. They are imported when first used, so ``import rnnkit.export``
works without them. See the guide page "Export: ONNX and torch.export" for the graph contract.
"""

from __future__ import annotations

from .exported_program import load_exported_program, to_exported_program

_ONNX = {"to_onnx": "onnx_model", "set_metadata": "onnx_model", "layer_to_onnx": "onnx_recurrent"}

__all__ = ["to_onnx", "layer_to_onnx", "set_metadata", "to_exported_program", "load_exported_program"]


def __getattr__(name: str):
    """The ONNX functions, imported on first use (they need the ``export`` extra)."""
    if name in _ONNX:
        import importlib

        return getattr(importlib.import_module(f".{_ONNX[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
