r"""The scan engine: one layer of a linear cell (minGRU, minLSTM, RG-LRU) in one direction, all steps at once.

Forward: the input projection (one matrix multiply), the cell's coefficients a_t, b_t for all steps, and one blocked
scan of h_t = a_t ⊙ h_{t-1} + b_t (:mod:`rnnkit.nn.engines.blocked_scan`, where the algorithm and its backward are
explained); zoneout, padding and resets fold into the coefficients. Backward: the reverse scan, then the cell's
hand-written coefficient backward and the input projection's two matrix multiplies.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.linear import autocast_off, linear_rows
from .base import Engine
from .blocked_scan import PreviousStates, _alive, lengths_from_batch_sizes, reverse_carry, scan
from .reference import reference_gradients
from .transforms import vmap_rows, wrapped


def _input_projection(cell, x: Tensor, p: dict[str, Tensor]) -> Tensor:
    """``x W_in^T + bias`` for all steps, one matrix multiply: (L, N, G)."""
    L, N, In = x.shape
    w = p[cell.input_weight]  # (G, In)
    gi = linear_rows(x.reshape(L * N, In), w, p.get(cell.input_bias_name))  # (L*N, G)
    return gi.view(L, N, w.shape[0])


def _windows(L: int, window: int | None) -> list[slice]:
    if not window:
        return [slice(0, L)]
    return [slice(s, min(s + window, L)) for s in range(0, L, window)]


class _Forward:
    """What the scan's forward pass leaves for its backward besides the saved tensors (a non-tensor output of
    :class:`ScanSequenceFunction`, so that it reaches ``setup_context`` under any transform)."""

    __slots__ = ("h", "a", "saved", "through", "lengths", "alive", "a_reset")

    def __init__(self, h, a, saved, through, lengths, alive, a_reset):
        self.h, self.a, self.saved, self.through = h, a, saved, through
        self.lengths, self.alive, self.a_reset = lengths, alive, a_reset


class ScanSequenceFunction(torch.autograd.Function):
    """One layer of a linear cell in one direction on the scan engine.

    ``apply(run, x, h0, *params)`` returns ``(y, h_n, forward)``: y (L, N, H) with zeros past each row's length,
    h_n (N, H), ``forward`` what the backward pass reads (not a tensor: ignore it). Forward: the input projection
    (one matrix multiply), the cell's coefficients, and one :func:`scan`. Zoneout keeps the recurrence linear,
    ``m h_{t-1} + (1 − m)(a h_{t-1} + b) = (m + (1 − m) a) h_{t-1} + (1 − m) b``, and a padded step is ``a = 1, b = 0``; both are folded into the coefficients. Backward: the reverse scan (one
    per truncation window), then the cell's hand-written coefficient backward and the input projection's two
    matrix multiplies. Under ``torch.func``'s transforms (:mod:`.transforms`): a vmap rule that runs vmap's examples
    as more rows, and a backward that differentiates the reference equations when given a transform's tensors.
    """

    @staticmethod
    def forward(run, x: Tensor, h0: Tensor, *params: Tensor):
        with autocast_off(x):  # in the dtype given (the layer casts for autocast)
            return ScanSequenceFunction._forward(run, x, h0, params)

    @staticmethod
    def _forward(run, x: Tensor, h0: Tensor, params):
        cell = run.cell
        p = dict(zip(run.names, params))
        L, N, _ = x.shape
        a, b, saved = cell.linear_coefficients(_input_projection(cell, x, p), p)  # (L, N, H) each
        # through: how much of each step's own update passes, (1 − m) times 1 on real steps, 0 on padding
        through = None
        if run.zoneout_h is not None:
            through = 1 - run.zoneout_h  # (L, N, H) in training, a float in evaluation
        lengths = alive = None
        if run.batch_sizes is not None:
            lengths = lengths_from_batch_sizes(run.batch_sizes, N).to(x.device)  # (N,)
            alive = _alive(lengths, L, N, x.device).unsqueeze(2).to(x.dtype)  # (L, N, 1)
            through = alive if through is None else alive * through
        if through is not None:  # a' = 1 − through (1 − a) = a through + (1 − through), b' = b through
            a = torch.addcmul(1 - through, a, through) if isinstance(through, Tensor) else a * through + 1 - through
            b = b * through
        reset = a_reset = None
        if run.resets is not None:  # a row that resets reads h0: h_t = a_t h0 + b_t, so a_t moves into b_t
            reset = run.resets.unsqueeze(2)  # (L, N, 1)
            a_reset = torch.where(reset, a, 0)  # (L, N, H): the coefficient of h0 at each reset
            b = torch.addcmul(b, a_reset, h0.unsqueeze(0))
            a = torch.where(reset, 0, a)
        h = scan(a, b, h0, out=b)  # (L, N, H), over b (a temporary): h_t replaces b_t once step t has read it
        if lengths is None:
            y, h_n = h, h[L - 1]
        else:
            y = h * alive  # zeros past each length
            h_n = h[lengths - 1, torch.arange(N, device=x.device)]  # (N, H): each row at its own last step
        return y, h_n, _Forward(h, a, saved, through, lengths, alive, a_reset)

    @staticmethod
    def setup_context(ctx, inputs, output):
        run, x, h0, *params = inputs
        ctx.run, ctx.forward = run, output[2]
        ctx.save_for_backward(x, h0, output[0], *params)  # y: so that autograd reports y changed in place

    @staticmethod
    def vmap(info, in_dims, run, x: Tensor, h0: Tensor, *params: Tensor):
        return vmap_rows(ScanSequenceFunction, info, in_dims, run, (x, h0), (1, 0), params, (1, 0, None))

    @staticmethod
    def backward(ctx, dy: Tensor, dh_n: Tensor, _forward):
        run, fw = ctx.run, ctx.forward
        x, h0, _, *params = ctx.saved_tensors
        names = ("x", "h0", *run.names)
        needs = dict(zip(names, ctx.needs_input_grad[1:]))
        with autocast_off(x):
            if torch.is_grad_enabled() or fw is None or wrapped(dy, dh_n, x):
                # a graph of the gradient is wanted (create_graph=True, torch.func.grad), or a transform's wrapped
                # tensors, which the in-place scan cannot take: differentiate the reference equations
                grads = reference_gradients(run, x, h0, None, params, dy, dh_n, None, needs)
                return (None, *(grads.get(k) for k in names))
            return ScanSequenceFunction._backward(run, fw, x, h0, params, dy, dh_n, needs)

    @staticmethod
    def _backward(run, fw: _Forward, x: Tensor, h0: Tensor, params, dy: Tensor, dh_n: Tensor, needs: dict):
        names = ("x", "h0", *run.names)
        h = fw.h
        cell, p, a = run.cell, dict(zip(run.names, params)), fw.a
        L, N, _ = x.shape
        last = None
        if fw.lengths is None:
            g = dy  # (L, N, H): the gradient reaching h_t from outside the recurrence; h_n is h[L-1]
            last = dh_n
        else:  # padded outputs are constant zeros; h_n is each row's state at its own last step
            g = dy * fw.alive
            g.index_put_((fw.lengths - 1, torch.arange(N, device=x.device)), dh_n, accumulate=True)
        # c_t = dL/dh_t in total: the reverse scan, restarted at every truncation window (no gradient crosses
        # the boundary into a window's previous state)
        windows = _windows(L, run.bptt_window)
        if len(windows) == 1:
            c = reverse_carry(a, g, last)
        else:
            c = torch.cat([reverse_carry(a[w], g[w], last if w.stop == L else None) for w in windows])
        dh0 = a[0] * c[0]
        if fw.a_reset is not None:  # and through every reset
            dh0 = dh0 + (fw.a_reset * c).sum(0)
        if fw.through is not None:  # dL/da = c through h_{t-1}, dL/db = c through
            c.mul_(fw.through)
        d_gi, param_grads = cell.linear_backward(fw.saved, c, PreviousStates(h0, h, run.resets), p)  # (L, N, G)
        d_gi2 = d_gi.reshape(L * N, d_gi.shape[2])  # (L*N, G)
        w_in = cell.input_weight
        grads = {"h0": dh0, **param_grads}
        if needs["x"]:
            grads["x"] = linear_rows(d_gi2, p[w_in].t()).view(L, N, x.shape[2])  # (L, N, In)
        if needs.get(w_in):
            grads[w_in] = torch.mm(d_gi2.t(), x.reshape(L * N, x.shape[2]))  # (G, In)
        return (None, *(grads.get(k) if needs[k] else None for k in names))


class ScanEngine(Engine):
    """Linear recurrences h_t = a_t ⊙ h_{t-1} + b_t, the whole sequence at once (a blocked scan)."""

    name = "scan"
    summary = "linear cells (minGRU, minLSTM, RG-LRU): the whole sequence at once, by a blocked scan"

    def refusal(self, layer) -> str | None:
        if not layer.cell.linear:
            return (f"the scan engine runs linear recurrences only (cells with linear=True); {layer.cell.name!r} "
                    f"is not one: use engine='auto' or 'explicit'")
        return None

    def run(self, run, x: Tensor, h0: Tensor, c0: None, p: dict[str, Tensor]):
        y, h_n, _ = ScanSequenceFunction.apply(run, x, h0, *p.values())
        return y, h_n, None
