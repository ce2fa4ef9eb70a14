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

Under ``torch.func``'s transforms the op runs inside a Python ``autograd.Function`` (:class:`_NativeSequence`), as
PyTorch's transforms take no ``register_autograd`` formula of a C++ op; both ops also have a vmap rule of their own
(a loop over vmap's dimension: a backward vmapped over one forward, ``torch.func.vjp`` / ``jacrev``). Under
``torch.autocast`` (which would compute the layer in bfloat16) ``auto`` passes over this engine, whose kernels run
float32 and float64 only; named, it refuses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import cell_names, get_cell
from ..native import has_kernel, native_available, native_info
from ..ops.linear import autocast_dtype
from .base import Engine, SequenceRun
from .reference import reference_gradients, reference_sequence
from .transforms import legacy_batched, vmap_rows

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
    if torch.is_grad_enabled() or legacy_batched(dy, dh_n, dc_n):
        # a graph of the gradient is wanted, or the older vmap of gradcheck's batched check (no op's vmap rule applies
        # there): differentiate the reference equations
        dx, dh0, dc0, dparams = _differentiable_backward(ctx, dy, dh_n, dc_n)
    else:
        dx, dh0, dc0, dparams = torch.ops.rnnkit.backward(
            kernel, x, h0, c0, params, bias, mask, zh, zc, zp, batch_sizes, resets, window, y, cs, ws, dy, dh_n,
            dc_n if c0 is not None else None, ctx.needs_input_grad[1])
        dx = dx if ctx.needs_input_grad[1] else None  # not computed: the input needs no gradient
    return (None, dx, dh0, (dc0 if c0 is not None else None), list(dparams), None, None, None, None, None, None,
            None, None)


def _differentiable_backward(ctx, dy, dh_n, dc_n):
    """The gradient as a differentiable function: the sequence recomputed with the cell's reference equations
    under autograd, and differentiated (``create_graph=True``; or a plain gradient under gradcheck's batched check)."""
    kernel, bias, zp, batch_sizes, window, _ = ctx.settings
    x, h0, c0, mask, zh, zc, resets, _, _, _, *params = ctx.saved_tensors
    run = _run_of(kernel, x, h0, c0, bias, mask, zh, zc, zp, batch_sizes, resets, window)
    names = [s.name for s in run.cell.active_specs(x.shape[2])]
    inputs = [x, h0] + ([c0] if c0 is not None else []) + list(params)
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        outputs = reference_sequence(run, x, h0, c0, dict(zip(names, params)))
        wanted = [(o, g) for o, g in zip(outputs, (dy, dh_n, dc_n)) if o is not None]
        live = [t for t in inputs if t.requires_grad]
        found = iter(torch.autograd.grad([o for o, _ in wanted], live, [g for _, g in wanted],
                                         create_graph=create_graph, allow_unused=True))
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


def _vmap_loop(op):
    """A vmap rule for ``op`` that runs it once per example of vmap's dimension and stacks the results at dim 0
    (rows could be folded as the Python engines do; a loop is what the op's every argument, lists included, allows
    without knowing its layouts). The backward op only reads the forward's saved tensors, so a gradient batched over
    the same forward (``gradcheck``'s batched check) runs it B times on them."""

    def pick(arg, dim, b):
        if isinstance(arg, (list, tuple)):
            return [pick(a, d, b) for a, d in zip(arg, dim)] if dim is not None else arg
        return arg if dim is None else arg.select(dim, b)

    def stack(parts):
        if isinstance(parts[0], (list, tuple)):
            return [stack(p) for p in zip(*parts)]
        return torch.stack(parts)

    def rule(info, in_dims, *args):
        per_example = [op(*(pick(a, d, b) for a, d in zip(args, in_dims))) for b in range(info.batch_size)]
        return tuple(stack(parts) for parts in zip(*per_example)), 0

    return rule


if native_available():
    torch.library.register_autograd("rnnkit::forward", _backward, setup_context=_setup_context)
    torch.library.register_vmap("rnnkit::forward", _vmap_loop(torch.ops.rnnkit.forward))
    torch.library.register_vmap("rnnkit::backward", _vmap_loop(torch.ops.rnnkit.backward))


class _NativeSequence(torch.autograd.Function):
    """The op behind a Python Function, for ``torch.func``'s transforms: PyTorch runs the ``register_autograd``
    formula of an op defined in C++ outside them only (under ``torch.func.grad`` it fails: "it must override the
    setup_context staticmethod"). Forward: the op; vmap: vmap's examples as more rows; backward (under a transform a
    graph of the gradient, or wrapped tensors): the reference equations differentiated."""

    @staticmethod
    def forward(run: SequenceRun, x, h0, c0, *params):
        return native_sequence(run, x, h0, c0, dict(zip(run.names, params)))

    @staticmethod
    def setup_context(ctx, inputs, output):
        run, x, h0, c0, *params = inputs
        ctx.run = run
        ctx.save_for_backward(x, h0, c0, *params)

    @staticmethod
    def vmap(info, in_dims, run, x, h0, c0, *params):
        return vmap_rows(_NativeSequence, info, in_dims, run, (x, h0, c0), (1, 0, 0), params, (1, 0, 0))

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n):
        x, h0, c0, *params = ctx.saved_tensors
        keys = ("x", "h0", "c0", *ctx.run.names)
        grads = reference_gradients(ctx.run, x, h0, c0, params, dy, dh_n, dc_n,
                                    dict(zip(keys, ctx.needs_input_grad[1:])))
        return (None, *(grads.get(k) for k in keys))


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
        # not under a torch.autocast that lowers x's matrix multiplies: the kernels would compute in float32 what
        # torch.nn's LSTM computes in bfloat16 there, so auto passes over this engine to one that computes in it
        return x.device.type == "cpu" and x.dtype in DTYPES and autocast_dtype(x) is None

    def run(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        if x.device.type != "cpu" or x.dtype not in DTYPES:
            why = " (torch.autocast's dtype)" if torch.is_autocast_enabled(x.device.type) else ""
            raise ValueError(f"the native engine runs float32 and float64 on the CPU, not {x.dtype}{why} on "
                             f"{x.device}; use engine='auto' or 'explicit'")
        if torch._C._are_functorch_transforms_active():
            return _NativeSequence.apply(run, x, h0, c0, *p.values())
        return native_sequence(run, x, h0, c0, p)

    def can_record(self, cell) -> bool:
        return hasattr(cell, "native_gates")

    def record(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        mask, zh, zc, zp = _mask_args(run)
        y, h_n, c_n, cs, ws = torch.ops.rnnkit.forward(
            run.cell.native_kernel, x, h0, c0, list(p.values()), run.cell.bias, mask, zh, zc, zp,
            _sizes(run.batch_sizes), run.resets, run.bptt_window or 0)
        if c0 is None:
            return y, h_n, None, None, run.cell.native_gates(ws)
        return y, h_n, c_n, cs, run.cell.native_gates(ws)
