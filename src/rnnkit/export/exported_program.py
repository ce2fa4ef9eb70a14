r"""Any ``nn.Module`` holding rnnkit recurrent layers as a ``torch.export`` program with a dynamic sequence length:
:func:`to_exported_program`.

The route, for every cell: while ``torch.export.export`` traces the model, each rnnkit layer computes each
layer-direction with torch's ``scan`` higher-order operator (``torch._higher_order_ops.scan``) over the cell's
reference step (:func:`rnnkit.export.step.masked_step`), so that

* the length L stays a symbol of the program (``scan`` is one node over all steps; nothing is unrolled) and the
  program runs any L >= 1 (and any N, where the model keeps N dynamic);
* any registered cell exports, one a user registers included, with no native kernel needed;
* variable lengths keep PackedSequence's meaning (a step mask scanned beside x; the reverse direction scans
  backwards with the same mask), passed through ``pack_padded_sequence`` as for ONNX (:mod:`rnnkit.export.tracing`);
* the saved program holds only torch operators: ``torch.export.load`` reads it without rnnkit installed.

Why not the engines themselves: the fused engine's kernels export but with a static length and no packing
(pytorch #171978); the native engine's ops ``torch.ops.rnnkit.*`` export with a dynamic length (they have Meta
kernels) but a program holding them loads only after ``import rnnkit`` and only where the extension is built, and
cells without a native kernel have no op at all. Limits of the chosen route: ``scan`` is a private torch API in
torch 2.13 (``torch._higher_order_ops``); running the program in eager mode (``program.module()(...)``) steps a
Python loop over the scan body, so it is for deployment through torch's compilers (AOTInductor, ExecuTorch
lowering), not faster eager inference; the result is the reference equations', equal to the engines' up to
float rounding; forward only (evaluation mode).
"""

from __future__ import annotations

import io
import itertools
import json
import types
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..files import write_atomic
from ..nn.layer import RecurrentBase
from .step import masked_step
from .tracing import layer_calls

try:  # torch's scan higher-order operator (torch >= 2.5)
    from torch._higher_order_ops.scan import scan as _scan
except ImportError:  # pragma: no cover - rnnkit pins torch 2.13
    _scan = None


def scan_layer(layer: RecurrentBase, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None):
    """The stack of ``layer`` over time-major x (L, N, In) with torch's scan operator, in evaluation mode.

    Returns y (L, N, D*P) with zeros past each length, h_n (D*layers, N, P), c_n (D*layers, N, H) or None."""
    D = 2 if layer.bidirectional else 1
    mask = None
    if lengths is not None:
        steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (L, 1)
        mask = (steps < lengths.to(x.device).unsqueeze(0)).unsqueeze(2)  # (L, N, 1)
    h_n, c_n, layer_input = [], [], x
    for k in range(layer.num_layers):
        outputs = []
        for direction in range(D):
            row = k * D + direction
            params = layer._layer_params(k, direction)
            init = (h0[row].clone(),) if c0 is None else (h0[row].clone(), c0[row].clone())  # (N, P) [, (N, H)]: not views

            def step(state, xs, params=params):
                x_t, m_t = xs if mask is not None else (xs[0], None)
                new, y_t = masked_step(layer.cell, params, tuple(state), x_t, m_t, layer.zoneout)
                return list(new), y_t.clone()  # scan refuses an output that aliases the state

            scanned = [layer_input] if mask is None else [layer_input, mask]
            final, y = _scan(_own_code(step), list(init), scanned, reverse=bool(direction))  # y (L, N, P)
            outputs.append(y)
            h_n.append(final[0])
            if c0 is not None:
                c_n.append(final[1])
        layer_input = outputs[0] if D == 1 else torch.cat(outputs, 2)  # (L, N, D*P)
    return layer_input, torch.stack(h_n), (torch.stack(c_n) if c0 is not None else None)


_BODIES = itertools.count()


def _own_code(fn):
    """``fn`` with a code object of its own. torch.export traces scan's body with dynamo, which caches by code
    object: the same body function met again with another closure (the next layer, the next export) is a
    recompilation, whose guard check fails in torch 2.13 (IndexError in the aliasing guard). A fresh code object per
    scan is compiled fresh."""
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{next(_BODIES)}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def _scan_call(layer: RecurrentBase, index: int, x, h0, c0, lengths):
    return scan_layer(layer, x, h0, c0, lengths)


def to_exported_program(module: nn.Module, path, example_inputs, *, dynamic_shapes=None,
                        metadata: dict | None = None) -> Path:
    """Export ``module`` with ``torch.export.export`` (its rnnkit layers by torch's scan; see the module) and save
    the program to ``path`` (``torch.export.save``, written atomically; its folder must exist).

    Args:
        module: the model, traced in evaluation mode (its mode is restored afterwards).
        path: the ``.pt2`` file to write.
        example_inputs: a tuple of the forward's positional arguments (a lone tensor: one argument).
        dynamic_shapes: as ``torch.export.export`` takes them; give the sequence axis a ``torch.export.Dim`` (or
            ``Dim.AUTO``) to keep the length dynamic. Default: every dimension of every tensor input ``Dim.AUTO``
            (dynamic where the model allows).
        metadata: key/values saved beside the program in ``extra_files["metadata.json"]`` (JSON).

    Returns:
        the path written. Load it with :func:`load_exported_program` or ``torch.export.load``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist; create it or choose "
                         f"another path")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if dynamic_shapes is None:
        dynamic_shapes = tuple({d: torch.export.Dim.AUTO for d in range(a.dim())} if isinstance(a, Tensor) else None
                               for a in args)
    training = module.training
    module.eval()
    try:
        with layer_calls(module, _scan_call), torch.no_grad():
            program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes)
    finally:
        module.train(training)
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={"metadata.json": json.dumps(metadata or {}, sort_keys=True)})
    write_atomic(path, buffer.getvalue())
    return path


def load_exported_program(path):
    """``(program, metadata)`` from a file of :func:`to_exported_program`; ``program.module()`` runs it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no exported program at {path}; export one with rnnkit.export.to_exported_program")
    extra = {"metadata.json": ""}
    program = torch.export.load(path, extra_files=extra)
    return program, json.loads(extra["metadata.json"] or "{}")
