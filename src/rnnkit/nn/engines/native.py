r"""The native engine: the recurrence loop in C++ (``rnnkit/nn/native/``), forward and backward.

Per layer and direction one op, ``torch.ops.rnnkit.forward``: the input projection of all L steps in one matrix
multiply, the time loop in C++, one matrix multiply per step, and the cell's pointwise equations fused into one
vectorised pass over the rows (ATen's ``at::vec``, parallel over ATen's threads); the regularisers (recurrent
dropout, zoneout), variable lengths and resets run inside the loop. Its gradient is the op
``torch.ops.rnnkit.backward`` (BPTT in C++, with the truncation window), registered with
``torch.library.register_autograd``; both ops have a Meta kernel, so ``torch.compile`` and ``torch.export`` see one
op each rather than a loop.

A cell runs here when it names a kernel (``Cell.native_kernel``) that the built extension has; any other cell runs
on the explicit engine. A double backward (``create_graph=True``) differentiates the cell's reference equations, as
the explicit engine's does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import cell_names, get_cell
from ..native import has_kernel, native_available, native_info
from .base import Engine, SequenceRun
from .reference import reference_sequence

DTYPES = (torch.float32, torch.float64)


def _mask_args(run: SequenceRun):
    """The regularisers as the op takes them: (recurrent mask, zoneout masks h and c, zoneout probability)."""
    zh, zc, zp = run.zoneout_h, run.zoneout_c, 0.0
    if isinstance(zh, float):
        zh, zc, zp = None, None, zh
    return run.recurrent_mask, zh, zc, zp


def _sizes(batch_sizes: list[int] | None) -> Tensor | None:
    """The rows alive per step as the op takes them (a CPU int64 tensor, as PackedSequence keeps them)."""
    return None if batch_sizes is None else torch.tensor(batch_sizes, dtype=torch.int64)


def native_sequence(run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
    """One layer in one direction on the C++ kernel: ``(y (L, N, P), h_n (N, P), c_n (N, H) or None)``."""
    mask, zh, zc, zp = _mask_args(run)
    y, h_n, c_n, _, _ = torch.ops.rnnkit.forward(
        run.cell.native_kernel, x, h0, c0, list(p.values()), run.cell.bias, mask, zh, zc, zp,
        _sizes(run.batch_sizes), run.resets, run.bptt_window or 0)
    return y, h_n, (c_n if c0 is not None else None)


def _setup_context(ctx, inputs, output):
    kernel, x, h0, c0, params, bias, mask, zh, zc, zp, batch_sizes, resets, window = inputs
    y, _, _, cs, ws = output
    ctx.mark_non_differentiable(cs, ws)
    ctx.settings = (kernel, bias, zp, batch_sizes, window, len(params))
    ctx.save_for_backward(x, h0, c0, mask, zh, zc, resets, y, cs, ws, *params)


def _backward(ctx, dy, dh_n, dc_n, _dcs, _dws):
    kernel, bias, zp, batch_sizes, window, _ = ctx.settings
    x, h0, c0, mask, zh, zc, resets, y, cs, ws, *params = ctx.saved_tensors
    if torch.is_grad_enabled():  # a graph of the gradient is wanted: differentiate the reference equations
        dx, dh0, dc0, dparams = _differentiable_backward(ctx, dy, dh_n, dc_n)
    else:
        dx, dh0, dc0, dparams = torch.ops.rnnkit.backward(
            kernel, x, h0, c0, params, bias, mask, zh, zc, zp, batch_sizes, resets, window, y, cs, ws, dy, dh_n,
            dc_n if c0 is not None else None)
    return (None, dx, dh0, (dc0 if c0 is not None else None), list(dparams), None, None, None, None, None, None,
            None, None)


def _differentiable_backward(ctx, dy, dh_n, dc_n):
    """The gradient as a differentiable function: the sequence recomputed with the cell's reference equations
    under autograd, and differentiated (``create_graph=True``)."""
    kernel, bias, zp, batch_sizes, window, _ = ctx.settings
    x, h0, c0, mask, zh, zc, resets, _, _, _, *params = ctx.saved_tensors
    run = _run_of(kernel, x, h0, c0, bias, mask, zh, zc, zp, batch_sizes, resets, window)
    names = [s.name for s in run.cell.active_specs(x.shape[2])]
    inputs = [x, h0] + ([c0] if c0 is not None else []) + list(params)
    outputs = reference_sequence(run, x, h0, c0, dict(zip(names, params)))
    wanted = [(o, g) for o, g in zip(outputs, (dy, dh_n, dc_n)) if o is not None]
    live = [t for t in inputs if t.requires_grad]
    found = iter(torch.autograd.grad([o for o, _ in wanted], live, [g for _, g in wanted], create_graph=True,
                                     allow_unused=True))
    grads = [next(found) if t.requires_grad else None for t in inputs]
    grads = [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]
    dx, dh0 = grads[0], grads[1]
    dc0 = grads[2] if c0 is not None else None
    return dx, dh0, dc0, grads[3 if c0 is not None else 2:]


def _run_of(kernel, x, h0, c0, bias, mask, zh, zc, zp, batch_sizes, resets, window) -> SequenceRun:
    """The :class:`SequenceRun` that the op's arguments describe (the cell rebuilt from its kernel's name)."""
    P = h0.shape[1]
    H = c0.shape[1] if c0 is not None else P
    cell_type = next(get_cell(name) for name in cell_names() if get_cell(name).native_kernel == kernel)
    cell = cell_type(H, bias=bias, proj_size=P if P != H else 0)
    names = tuple(s.name for s in cell.active_specs(x.shape[2]))
    zoneout_h, zoneout_c = (zh, zc) if zh is not None else ((zp, zp) if zp else (None, None))
    sizes = None if batch_sizes is None else batch_sizes.tolist()
    return SequenceRun(cell, names, sizes, window or None, mask, zoneout_h, zoneout_c, resets)


if native_available():
    torch.library.register_autograd("rnnkit::forward", _backward, setup_context=_setup_context)


class NativeEngine(Engine):
    """The recurrence in C++: per step one matrix multiply and one fused, vectorised pointwise pass."""

    name = "native"
    summary = "the recurrence loop in C++, forward and backward, for the cells with a native kernel"

    def refusal(self, layer) -> str | None:
        if not native_available():
            return f"the native engine is not available: {native_info()['reason']}"
        kernel = layer.cell.native_kernel
        if not has_kernel(kernel):
            return (f"cell {layer.cell.name!r} has no native kernel; use engine='explicit' (or 'auto', which picks "
                    f"the fastest engine that runs it)")
        return None

    def accepts(self, x: Tensor) -> bool:
        return x.device.type == "cpu" and x.dtype in DTYPES

    def run(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        if not self.accepts(x):
            raise ValueError(f"the native engine runs float32 and float64 on the CPU, not {x.dtype} on {x.device}; "
                             f"use engine='auto' or 'explicit'")
        return native_sequence(run, x, h0, c0, p)
