r"""The explicit engine: an unrolled forward pass and a hand-written backpropagation through time, for
any cell of the registry (:mod:`rnnkit.nn.cells`).

One layer in one direction is one :class:`RecurrentSequenceFunction`. Its forward pass

1. projects the inputs of all L steps at once, one matrix multiply: ``gi = x W_in^T (+ bias)``,
   (L*N, In) x (In, G);
2. runs the recurrence step by step with the same ``W_hh`` at every step (the weights are shared
   across time): ``gh_t = h_in W_hh^T`` is added into the cell's buffer, then the cell's step
   equations run in place (:meth:`rnnkit.nn.cells.base.Workspace.step`).

Between steps it applies the regularisers that live inside the recurrence (masks from
:mod:`rnnkit.nn.regularisers`):

    h_in = h_{t-1} ⊙ r                                   recurrent dropout: r fixed for the sequence
    h_t  = m_t ⊙ h_{t-1} + (1 − m_t) ⊙ h~_t              zoneout (and the same for c_t)

Its backward pass walks back through time (BPTT). At step t the gradient reaching h_t is the gradient
of the output at t plus the gradient carried back from step t+1:

    dh_t      = dy_t + dh_carry
    dh~_t     = (1 − m_t) ⊙ dh_t                         (zoneout; dh~_t = dh_t without it)
    d gates_t = the cell's chain rule of its step equations          (Workspace.step_backward)
    dh_carry  = m_t ⊙ dh_t + direct_t ⊙ dh~_t + (d gh_t W_hh) ⊙ r
    dc_carry  = m^c_t ⊙ dc_t + f_t ⊙ dc~_t                            (cells with a cell state)

The gradients of the shared weights are sums over all steps, so each is one matrix multiply over all
L*N rows at the end:

    dW_in = Σ_t d gi_t^T x_t       dW_hh = Σ_t d gh_t^T h_in,t       dx = d gi W_in

Truncated BPTT (``bptt_window=k``): the carried gradient is cut at every k-th step boundary, so the
gradient of any output reaches at most k steps back; the forward result is unchanged.

Variable lengths: the N rows are sorted by decreasing length (as in a PackedSequence) and step t
updates only the rows still alive, ``[:batch_sizes[t]]``. The other rows keep their state, which is
why a row's final state is its state at its own last step.

Double backward: when the gradient itself must be differentiable (``create_graph=True``), the backward
pass recomputes the sequence with the cell's reference equations under autograd and differentiates
that, so second derivatives are exact rather than silently zero. The same recomputation serves a second
backward through the same graph (``retain_graph=True``) when the workspace wrote its gradients over its
forward buffers to save memory, and a backward under PyTorch's transforms (``torch.func.grad``, a vmapped
backward), whose wrapped tensors the in-place buffers cannot take (:mod:`rnnkit.nn.engines.transforms`; the
Function's vmap rule runs vmap's examples as more rows).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.linear import autocast_off, linear_rows
from .base import Engine, SequenceRun
from .reference import reference_gradients
from .transforms import vmap_rows, wrapped


def _at(mask: Tensor | float, t: int, bs: int) -> Tensor | float:
    return mask if isinstance(mask, float) else mask[t, :bs]


def _input_projection(ws, x: Tensor, w_in: Tensor, p: dict[str, Tensor]) -> Tensor:
    """``x W_in^T + bias`` for all steps at once: (L, N, G)."""
    L, N, In = x.shape
    gi = linear_rows(x.reshape(L * N, In), w_in, ws.input_bias(p))  # (L*N, G)
    return gi.view(L, N, w_in.shape[0])


def forward_sequence(run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
    """Run one layer in one direction over all steps, without autograd.

    Args:
        x: (L, N, In), rows sorted by decreasing length when ``run.batch_sizes`` is given.
        h0: (N, P). c0: (N, H) for cells with a cell state, else None.
        p: the parameters by base name.

    Returns:
        ``(ws, y, h_n, c_n, cs)``: the cell's workspace (every intermediate, read by the backward
        pass and by ``trace``), y (L, N, P) every h_t (zeros past each row's length), h_n (N, P),
        c_n (N, H) or None, cs (L, N, H) every c_t or None.
    """
    cell = run.cell
    L, N, _ = x.shape
    variable = run.batch_sizes is not None
    ws = cell.workspace()
    ws.start(_input_projection(ws, x, p[cell.input_weight], p), p, zero=variable)
    w_hh = p[cell.recurrent_weight].contiguous() if cell.recurrent_weight else None  # (G, P)
    w_hr = p.get("weight_hr")
    w_hr_t = None if w_hr is None else w_hr.t()  # (H, P)
    rd = run.recurrent_mask
    zoneout = run.zoneout_h is not None
    y = None
    if w_hr is not None or zoneout:  # h_t differs from the workspace's h~_t: keep it apart
        y = x.new_zeros(L, N, cell.output_size) if variable else x.new_empty(L, N, cell.output_size)
    cs = None
    if zoneout and c0 is not None:
        cs = x.new_zeros(L, N, cell.hidden_size) if variable else x.new_empty(L, N, cell.hidden_size)
    h, c = h0, c0
    for t in range(L):
        bs = run.batch_sizes[t] if variable else N
        h_prev, c_prev = h[:bs], None if c is None else c[:bs]
        if run.resets is not None and t > 0:  # rows that reset read the initial state
            reset = run.resets[t, :bs].unsqueeze(1)  # (bs, 1)
            h_prev = torch.where(reset, h0[:bs], h_prev)
            c_prev = None if c_prev is None else torch.where(reset, c0[:bs], c_prev)
        if w_hh is not None:
            h_in = h_prev if rd is None else h_prev * rd[:bs]  # (bs, P)
            ws.recurrent_buffer(t, bs).add_(linear_rows(h_in, w_hh))  # + h_in W_hh^T
        h_new, c_new = ws.step(t, bs, h_prev, c_prev)
        if w_hr_t is not None:
            h_new = torch.mm(h_new, w_hr_t, out=None if zoneout else y[t, :bs])  # (bs, P)
        if zoneout:
            m = _at(run.zoneout_h, t, bs)
            h = torch.lerp(h_new, h_prev, m, out=y[t, :bs]) if not isinstance(m, float) else \
                torch.add(h_new * (1 - m), h_prev, alpha=m, out=y[t, :bs])
            if cs is not None:
                mc = _at(run.zoneout_c, t, bs)
                c = torch.lerp(c_new, c_prev, mc, out=cs[t, :bs]) if not isinstance(mc, float) else \
                    torch.add(c_new * (1 - mc), c_prev, alpha=mc, out=cs[t, :bs])
        else:
            h, c = h_new, c_new
    if y is None:
        y = ws.hidden()
    if cs is None and c0 is not None:
        cs = ws.cell()
    if variable:
        last = _last_step_index(run.batch_sizes, N, x.device)  # (N,)
        rows = torch.arange(N, device=x.device)
        h_n = y[last, rows]  # (N, P)
        c_n = None if c0 is None else cs[last, rows]  # (N, H)
    else:
        h_n = y[L - 1]
        c_n = None if c0 is None else cs[L - 1]
    return ws, y, h_n, c_n, cs


def _shifted(first: Tensor, seq: Tensor, resets: Tensor | None = None) -> Tensor:
    """(L, N, S): ``first`` at step 0, then ``seq[t-1]`` (``first`` where a row resets): the state each step read."""
    prev = torch.cat([first.unsqueeze(0), seq[:-1]])
    return prev if resets is None else torch.where(resets.unsqueeze(2), first.unsqueeze(0), prev)


class PreviousStates:
    """The state each step read, ``[t, rows]`` → ``first[rows]`` at t = 0 (or where the row resets) else
    ``seq[t-1, rows]``, without the copy that :func:`_shifted` makes."""

    def __init__(self, first: Tensor, seq: Tensor, resets: Tensor | None = None):
        self.first, self.seq, self.resets = first, seq, resets

    def __getitem__(self, index):
        t, rows = index
        if t == 0:
            return self.first[rows]
        if self.resets is None:
            return self.seq[t - 1, rows]
        return torch.where(self.resets[t, rows].unsqueeze(-1), self.first[rows], self.seq[t - 1, rows])


def _last_step_index(batch_sizes: list[int], N: int, device) -> Tensor:
    """For each row, the index of its last step: ``length - 1``, from the rows alive per step."""
    sizes = torch.tensor(batch_sizes)
    lengths = (sizes.unsqueeze(1) > torch.arange(N).unsqueeze(0)).sum(0)  # (N,)
    return (lengths - 1).to(device)


def backward_sequence(run: SequenceRun, ws, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor],
                      y: Tensor, cs: Tensor | None, dy: Tensor, dh_n: Tensor, dc_n: Tensor | None,
                      needs: dict[str, bool]) -> dict[str, Tensor | None]:
    """Backpropagation through time for one layer in one direction; see the module docstring.

    ``needs`` maps "x", "h0", "c0" and each parameter name to whether it needs a gradient; returns
    the gradients by the same names (None where not needed).
    """
    cell = run.cell
    L, N, _ = x.shape
    variable = run.batch_sizes is not None
    # the states each step read, h_{t-1} (L, N, P) and c_{t-1} (L, N, H): as whole tensors for a workspace that
    # vectorises over time, else step by step without the copies (a workspace built lean for memory)
    resets = run.resets
    if ws.whole_previous_states:
        ws.prepare_backward(_shifted(h0, y, resets), None if c0 is None else _shifted(c0, cs, resets))
    else:
        ws.prepare_backward(PreviousStates(h0, y, resets), None if c0 is None else PreviousStates(c0, cs, resets))
    ws.allocate_gate_grads(zero=variable)
    w_hh = p[cell.recurrent_weight] if cell.recurrent_weight else None  # (G, P)
    w_hh_t = None if w_hh is None else w_hh.t().contiguous()  # (P, G): d gh_t W_hh = linear_rows(d gh_t, W_hh^T)
    d_rec = ws.grad_recurrent() if w_hh is not None else None  # (L, N, G)
    w_hr = p.get("weight_hr")
    rd = run.recurrent_mask
    zoneout = run.zoneout_h is not None
    dh = dh_n.clone()  # (N, P): the gradient carried back to h_{t-1}
    dc = None if c0 is None else dc_n.clone()  # (N, H)
    # what reaches the initial state through the rows that reset to it
    dh0_reset = None if resets is None else torch.zeros_like(h0)
    dc0_reset = None if resets is None or c0 is None else torch.zeros_like(c0)
    d_y_total = None
    if w_hr is not None:
        # dL/dh~_t, kept per step for dW_hr = Σ_t dh~_t^T m_t
        d_y_total = torch.zeros_like(y) if variable else torch.empty_like(y)  # (L, N, P)
    for t in range(L - 1, -1, -1):
        bs = run.batch_sizes[t] if variable else N
        dh_t = dh[:bs]
        dh_t += dy[t, :bs]
        dc_t = None if dc is None else dc[:bs]
        dh_tilde, keep_h, dc_tilde, keep_c = _zoneout_split(run, t, bs, dh_t, dc_t)
        if d_y_total is not None:
            d_y_total[t, :bs] = dh_tilde
            dm = torch.mm(dh_tilde, w_hr)  # (bs, H)
        else:
            dm = dh_tilde
        direct, dc_prev = ws.step_backward(t, bs, dm, dc_tilde)
        # dh_{t-1} = [m ⊙ dh_t] + [direct ⊙ dh~_t] + [(d gh_t W_hh) ⊙ r], written over dh_t (already consumed)
        if zoneout:
            total = keep_h if direct is None else keep_h + direct * dm
            if w_hh is not None:
                through_w = linear_rows(d_rec[t, :bs], w_hh_t)  # (bs, P)
                total = total + (through_w if rd is None else through_w.mul_(rd[:bs]))
            dh_t.copy_(total)
            if dc_t is not None:
                torch.add(keep_c, dc_prev, out=dc_t)
        else:
            if w_hh is None:
                dh_t.mul_(direct)  # a cell without W_hh reaches h_{t-1} through its direct path only
            else:
                through_w = linear_rows(d_rec[t, :bs], w_hh_t)  # (bs, P)
                if rd is not None:
                    through_w.mul_(rd[:bs])
                if direct is None:
                    dh_t.copy_(through_w)
                else:
                    dh_t.mul_(direct).add_(through_w)
            if dc_t is not None and dc_prev is not dc_t:
                dc_t.copy_(dc_prev)
        _cut(run, t, bs, dh_t, dc_t, dh0_reset, dc0_reset)

    grads = _weight_gradients(run, ws, x, h0, y, p, d_rec, d_y_total, needs)
    grads.update(ws.grad_params({k: v for k, v in needs.items() if k not in ("x", "h0", "c0")}))
    if needs["h0"]:
        grads["h0"] = dh if dh0_reset is None else dh + dh0_reset
    if needs["c0"]:
        grads["c0"] = dc if dc0_reset is None else dc + dc0_reset
    return grads


class _Forward:
    """What the forward pass leaves for the hand-written backward besides the saved tensors: the workspace and every
    c_t (a non-tensor output of the Function, so that it reaches ``setup_context`` under any transform)."""

    __slots__ = ("ws", "cs")

    def __init__(self, ws, cs: Tensor | None):
        self.ws, self.cs = ws, cs


def _zoneout_split(run: SequenceRun, t: int, bs: int, dh_t: Tensor, dc_t: Tensor | None):
    """dL/dh_t (and dL/dc_t) split by zoneout's keep masks: ``(dh~, m ⊙ dh, dc~, m_c ⊙ dc)``, the part that reaches
    the step's fresh value and the part that reaches the previous state directly (all of it fresh without zoneout)."""
    if run.zoneout_h is None:
        return dh_t, None, dc_t, None
    m = _at(run.zoneout_h, t, bs)
    if dc_t is None:
        return dh_t * (1 - m), dh_t * m, None, None
    mc = _at(run.zoneout_c, t, bs)
    return dh_t * (1 - m), dh_t * m, dc_t * (1 - mc), dc_t * mc


def _cut(run: SequenceRun, t: int, bs: int, dh_t: Tensor, dc_t: Tensor | None, dh0_reset: Tensor | None,
         dc0_reset: Tensor | None) -> None:
    """Where the gradient carried back to step t-1 stops: at a reset (it goes to h_0 instead) and at a truncation
    window's boundary (it goes nowhere)."""
    if run.resets is not None and t > 0:  # a row that reset read h_0, not h_{t-1}: its gradient goes to h_0
        reset = run.resets[t, :bs].unsqueeze(1)  # (bs, 1)
        dh0_reset[:bs] += torch.where(reset, dh_t, 0)
        dh_t.masked_fill_(reset, 0)
        if dc_t is not None:
            dc0_reset[:bs] += torch.where(reset, dc_t, 0)
            dc_t.masked_fill_(reset, 0)
    if run.bptt_window and t % run.bptt_window == 0 and t > 0:
        dh_t.zero_()  # truncation: no gradient crosses this window boundary
        if dc_t is not None:
            dc_t.zero_()


def _weight_gradients(run: SequenceRun, ws, x: Tensor, h0: Tensor, y: Tensor, p: dict[str, Tensor],
                      d_rec: Tensor | None, d_y_total: Tensor | None, needs: dict[str, bool]) -> dict:
    """The gradients of x and of the shared weights, sums over every step: one matrix multiply each over all L*N
    rows (or over blocks of steps, for a workspace that recomputes x W_in^T), from the gate gradients the backward
    steps wrote."""
    cell = run.cell
    L, N, _ = x.shape
    resets, rd = run.resets, run.recurrent_mask
    w_hh = p[cell.recurrent_weight] if cell.recurrent_weight else None  # (G, P)
    grads: dict[str, Tensor | None] = dict.fromkeys(needs)
    w_in_name = cell.input_weight
    w_in = p[w_in_name]  # (G, In)
    In = x.shape[2]
    chunk = ws.input_chunk_steps or L
    if needs["x"]:
        grads["x"] = x.new_empty(L, N, In)
    if needs.get(w_in_name):
        grads[w_in_name] = torch.zeros_like(w_in)

    w_in_t = w_in.t().contiguous() if needs["x"] else None  # (In, G): dx = d gi W_in = linear_rows(d gi, W_in^T)

    def project(t0: int, t1: int) -> Tensor:  # x W_in^T over steps [t0, t1), for workspaces that did not keep it
        return linear_rows(x[t0:t1].reshape((t1 - t0) * N, In), w_in).view(t1 - t0, N, w_in.shape[0])

    for t0 in range(0, L, chunk):  # one block of all L steps unless the workspace asks for smaller ones
        t1 = min(L, t0 + chunk)
        d_gi = ws.grad_input_chunk(t0, t1, project).reshape((t1 - t0) * N, w_in.shape[0])  # (T*N, G)
        if needs["x"]:
            grads["x"][t0:t1] = linear_rows(d_gi, w_in_t).view(t1 - t0, N, In)
        if needs.get(w_in_name):
            grads[w_in_name].addmm_(d_gi.t(), x[t0:t1].reshape((t1 - t0) * N, In))  # (G, In)
    if w_hh is not None and needs.get(cell.recurrent_weight):
        G, P = d_rec.shape[2], y.shape[2]
        if rd is None and resets is None:  # Σ_t d gh_t^T h_{t-1}: step 0 reads h0, step t > 0 reads y[t-1] (no copy)
            d_w = torch.mm(d_rec[0].t(), h0)  # (G, P)
            if L > 1:
                d_w.addmm_(d_rec[1:].reshape((L - 1) * N, G).t(), y[:-1].reshape((L - 1) * N, P))
        else:
            h_in_seq = _shifted(h0, y, resets)  # (L, N, P)
            if rd is not None:
                h_in_seq = h_in_seq * rd
            d_w = torch.mm(d_rec.reshape(L * N, G).t(), h_in_seq.reshape(L * N, P))
        grads[cell.recurrent_weight] = d_w
    if needs.get("weight_hr"):
        m = ws.hidden()
        grads["weight_hr"] = torch.mm(d_y_total.reshape(L * N, y.shape[2]).t(), m.reshape(L * N, m.shape[2]))  # (P, H)
    return grads


class RecurrentSequenceFunction(torch.autograd.Function):
    """One recurrent layer in one direction, with the hand-written BPTT as its backward.

    ``apply(run, x, h0, c0, *params)`` returns ``(y, h_n, c_n, forward)``: c_n None for cells without a cell state,
    ``forward`` what the backward pass reads (not a tensor: ignore it); ``params`` in the order of ``run.names``;
    shapes as in :func:`forward_sequence`. It works under ``torch.func``'s transforms (:mod:`.transforms`): a vmap
    rule that runs vmap's examples as more rows, and a backward that differentiates the reference equations when
    it is given a transform's wrapped tensors.
    """

    @staticmethod
    def forward(run: SequenceRun, x, h0, c0, *params):
        with autocast_off(x):  # the engine computes in the dtype it is given (the layer casts for autocast)
            ws, y, h_n, c_n, cs = forward_sequence(run, x, h0, c0, dict(zip(run.names, params)))
        return y, h_n, c_n, _Forward(ws, cs)

    @staticmethod
    def setup_context(ctx, inputs, output):
        run, x, h0, c0, *params = inputs
        y, _, _, forward = output
        ctx.run = run
        ctx.ws, ctx.cs = (forward.ws, forward.cs) if forward is not None else (None, None)
        ctx.save_for_backward(x, h0, c0, y, *params)

    @staticmethod
    def vmap(info, in_dims, run, x, h0, c0, *params):
        return vmap_rows(RecurrentSequenceFunction, info, in_dims, run, (x, h0, c0), (1, 0, 0), params,
                         (1, 0, 0, None))

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n, _forward):
        run = ctx.run
        x, h0, c0, y, *params = ctx.saved_tensors
        keys = ("x", "h0", "c0", *run.names)
        needs = dict(zip(keys, ctx.needs_input_grad[1:]))
        with autocast_off(x):
            if torch.is_grad_enabled() or ctx.ws is None or wrapped(dy, dh_n, dc_n, x, y):
                # a graph of the gradient is wanted (create_graph=True, torch.func.grad); or a second backward
                # (retain_graph=True) after a workspace that wrote its gradients over its forward buffers; or a
                # transform's wrapped tensors, which the buffers cannot take: differentiate the reference equations
                grads = reference_gradients(run, x, h0, c0, params, dy, dh_n, dc_n, needs)
            else:
                p = dict(zip(run.names, params))
                grads = backward_sequence(run, ctx.ws, x, h0, c0, p, y, ctx.cs, dy, dh_n, dc_n, needs)
                if ctx.ws.reuses_buffers:
                    ctx.ws = None
        return (None, *(grads.get(k) for k in keys))


class ExplicitEngine(Engine):
    """rnnkit's unrolled loop with a hand-written BPTT, in Python: every cell, every option."""

    name = "explicit"
    summary = "rnnkit's unrolled loop with a hand-written BPTT, in Python: any cell, any option"

    def run(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        y, h_n, c_n, _ = RecurrentSequenceFunction.apply(run, x, h0, c0, *p.values())
        return y, h_n, c_n

    def record(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        with autocast_off(x):
            ws, y, h_n, c_n, cs = forward_sequence(run, x, h0, c0, p)
        return y, h_n, c_n, cs, ws.gates()
