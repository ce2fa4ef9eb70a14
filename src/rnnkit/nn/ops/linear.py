r"""The matrix multiplies of rnnkit's engines: ``x w^T + bias`` on oneDNN's inner product where it is faster.

On CPU in float32 PyTorch's ``torch.mm`` calls MKL's sgemm, which leaves AVX-512 unused on AMD CPUs; oneDNN's
inner product (what torch.nn.LSTM's fused kernel runs on) does not. Measured on this project's AMD EPYC host:
117-151 GFLOP/s against 70-96 for a (32768 x 256) by (256 x 512) product, and 12 ms against 27 ms for the input
projection of an LSTM layer at L=100, N=32, H=256 (one thread). Other devices and dtypes use ``torch.addmm``, and
so does a trace (``torch.compiler.is_compiling()``): ``mkldnn._linear_pointwise`` is a private op whose Inductor
lowering serves the calls Inductor's own passes create and failed on rnnkit's (``torch.compile`` of the explicit and
scan engines stopped there); ``torch.addmm`` is the product every backend knows.

Precision under ``torch.autocast``: the engines compute in the dtype they are given. A layer under autocast casts its
input, states and parameters once, at its entry, to the dtype autocast would run their matrix multiplies in
(:func:`autocast_dtype`), and the engines then run with autocast off (:func:`autocast_off`), so that no operation
inside a recurrence mixes dtypes (CPU autocast runs ``prod`` in float32, for one) in the forward or the backward pass.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor


def autocast_dtype(x: Tensor) -> torch.dtype | None:
    """The dtype ``torch.autocast`` runs a matrix multiply of ``x`` in, or None where autocast leaves ``x`` alone.

    As autocast decides: on ``x``'s device type when autocast is on there, for floating tensors other than float64
    (a float64 model stays float64). Tensors that autocast takes are brought to one dtype, whatever theirs.
    """
    device = x.device.type
    if not torch.is_autocast_enabled(device) or not x.is_floating_point() or x.dtype == torch.float64:
        return None
    return torch.get_autocast_dtype(device)


def autocast_off(x: Tensor):
    """A context with autocast off on ``x``'s device type where it is on (a null context elsewhere): what runs in it
    computes in the dtypes it is given."""
    device = x.device.type
    return torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else contextlib.nullcontext()


def _onednn_linear():
    """oneDNN's inner product on dense tensors, where this PyTorch build has it (x86 builds with MKLDNN)."""
    try:
        return torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):
        return None


_ONEDNN_LINEAR = _onednn_linear()


def linear_rows(x2: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x2 w^T + bias`` for rows x2 (M, In) and w (Out, In): (M, Out), without autograd.

    Give ``w`` contiguous where it is reused (a per-step weight): a transposed view is reordered at every call.
    """
    if (_ONEDNN_LINEAR is not None and x2.device.type == "cpu" and x2.dtype == torch.float32 and x2.shape[0] > 0
            and not torch.compiler.is_compiling()):
        return _ONEDNN_LINEAR(x2, w, bias, "none", [], "")
    return torch.mm(x2, w.t()) if bias is None else torch.addmm(bias, x2, w.t())
