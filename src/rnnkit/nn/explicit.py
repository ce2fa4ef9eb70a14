r"""The explicit engine: an unrolled forward pass and a hand-written backpropagation through time.

One layer in one direction is one :class:`RecurrentLayerFunction`. Its forward pass

1. projects the inputs of all L steps at once, one matrix multiply:
   ``gi = x W_ih^T + b_ih`` (L*N, In) x (In, G*H);
2. runs the recurrence step by step with the same ``W_hh`` at every step (the weights are shared
   across time), using the step equations of :mod:`rnnkit.nn.cells`.

Its backward pass walks back through time (BPTT). At step t the gradient reaching ``h_t`` is the
gradient of the output at t plus the gradient carried back from step t+1:

    dh_t     = dy_t + dh_carry
    d pre_t  = cell-specific chain rule of the step equations           (cells.step_backward)
    dh_carry = d pre_t W_hh (+ a direct path, z * dh_t in a GRU)
    dc_carry = dc_t * f_t                                                (LSTM)

The gradients of the shared weights are the sums over all steps of the per-step gradients, so each
is computed once at the end, one matrix multiply over all L*N rows:

    dW_ih = sum_t d pre_t^T x_t        dW_hh = sum_t d pre_t^T h_{t-1}      db = sum_t d pre_t
    dx    = d pre W_ih

Truncated BPTT (``bptt_window=k``): the carried gradient is cut at every k-th step boundary, so the
gradient of any output reaches at most k steps back; the forward result is unchanged.

Variable lengths: the N rows are sorted by decreasing length (as in a PackedSequence) and step t
updates only the rows still alive, ``[:batch_sizes[t]]``. The other rows keep their state, which is
why a row's final state is its state at its own last step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .cells import cell_math


@dataclass
class LayerWeights:
    """The parameters of one layer in one direction (torch.nn shapes)."""

    w_ih: Tensor  # (G*H, In)
    w_hh: Tensor  # (G*H, P)
    b_ih: Tensor | None  # (G*H,)
    b_hh: Tensor | None  # (G*H,)
    w_hr: Tensor | None  # (P, H), LSTM with proj_size > 0 only


def _input_projection(math, x: Tensor, w: LayerWeights) -> Tensor:
    """``x W_ih^T + b_ih`` (+ b_hh where the cell lets it be folded in) for all steps at once."""
    L, N, In = x.shape
    bias = w.b_ih
    if bias is not None and math.folds_hidden_bias():
        bias = bias + w.b_hh
    x2 = x.reshape(L * N, In)  # (L*N, In)
    gi = torch.mm(x2, w.w_ih.t()) if bias is None else torch.addmm(bias, x2, w.w_ih.t())  # (L*N, G*H)
    return gi.view(L, N, -1)


def forward_sequence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w: LayerWeights,
                     batch_sizes: list[int] | None):
    """Run one layer in one direction over all steps, without autograd.

    Args:
        x: (L, N, In), rows sorted by decreasing length when ``batch_sizes`` is given.
        h0: (N, P). c0: (N, H) for LSTM, else None.
        batch_sizes: rows alive at each step (non-increasing), or None when all rows have L steps.

    Returns:
        ``(math, y, h_n, c_n)``: the cell's workspace (holds every intermediate, read by the
        backward pass and by ``trace``), y (L, N, P) with zeros past each row's length,
        h_n (N, P), c_n (N, H) or None.
    """
    math = cell_math(mode)
    L, N, _ = x.shape
    variable = batch_sizes is not None
    gi = _input_projection(math, x, w)  # (L, N, G*H)
    math.start(gi, h0, c0, w.w_hh, w.b_hh, zero=variable)
    y = None
    if w.w_hr is not None:
        y = x.new_zeros(L, N, w.w_hr.shape[0]) if variable else x.new_empty(L, N, w.w_hr.shape[0])
        w_hr_t = w.w_hr.t()  # (H, P)
    h, c = h0, c0
    for t in range(L):
        bs = batch_sizes[t] if variable else N
        h_t, c = math.step(t, bs, h[:bs], None if c is None else c[:bs])
        if y is not None:
            h_t = torch.mm(h_t, w_hr_t, out=y[t, :bs])
        h = h_t
    if y is None:
        y = math.hidden()
    if variable:
        last = _last_step_index(batch_sizes, N, x.device)  # (N,)
        rows = torch.arange(N, device=x.device)
        h_n = y[last, rows]  # (N, P)
        c_n = None if c0 is None else math.cell()[last, rows]  # (N, H)
    else:
        h_n = y[L - 1]
        c_n = None if c0 is None else math.cell()[L - 1]
    return math, y, h_n, c_n


def _last_step_index(batch_sizes: list[int], N: int, device) -> Tensor:
    """For each row, the index of its last step: ``length - 1``, from the rows alive per step."""
    sizes = torch.tensor(batch_sizes)
    lengths = (sizes.unsqueeze(1) > torch.arange(N).unsqueeze(0)).sum(0)  # (N,)
    return (lengths - 1).to(device)


def backward_sequence(math, x: Tensor, h0: Tensor, c0: Tensor | None, w: LayerWeights, y: Tensor,
                      dy: Tensor, dh_n: Tensor, dc_n: Tensor | None, batch_sizes: list[int] | None,
                      bptt_window: int | None, needs: tuple[bool, ...]):
    """Backpropagation through time for one layer in one direction; see the module docstring.

    ``needs`` tells which of (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) need a gradient.
    Returns their gradients in that order (None where not needed).
    """
    L, N, _ = x.shape
    variable = batch_sizes is not None
    math.prepare_backward(h0, c0)
    math.allocate_gate_grads(zero=variable)
    d_gh = math.grad_hidden_gates()  # (L, N, G*H)
    dh = dh_n.clone()  # (N, P): the gradient carried back to h_{t-1}
    dc = None if c0 is None else dc_n.clone()  # (N, H)
    d_y_total = None
    if w.w_hr is not None:
        # dL/dh_t summed over both of its uses, kept per step for dW_hr = sum_t dh_t^T m_t
        d_y_total = torch.zeros_like(y) if variable else torch.empty_like(y)  # (L, N, P)
    for t in range(L - 1, -1, -1):
        bs = batch_sizes[t] if variable else N
        dh_t = dh[:bs]
        dh_t += dy[t, :bs]
        if d_y_total is None:
            dm = dh_t
        else:
            d_y_total[t, :bs] = dh_t
            dm = torch.mm(dh_t, w.w_hr)  # (bs, H)
        direct, _ = math.step_backward(t, bs, dm, None if dc is None else dc[:bs])
        if direct is None:
            torch.mm(d_gh[t, :bs], w.w_hh, out=dh_t)
        else:
            dh_t.mul_(direct).addmm_(d_gh[t, :bs], w.w_hh)
        if bptt_window and t % bptt_window == 0 and t > 0:
            dh_t.zero_()  # truncation: no gradient crosses this window boundary
            if dc is not None:
                dc[:bs].zero_()

    need_x, need_h0, need_c0, need_w_ih, need_w_hh, need_b_ih, need_b_hh, need_w_hr = needs
    d_gi = math.grad_input_gates()
    G = d_gi.shape[-1]
    d_gi2 = d_gi.reshape(L * N, G)  # (L*N, G*H)
    d_gh2 = d_gh.reshape(L * N, G)
    dx = torch.mm(d_gi2, w.w_ih).view(L, N, -1) if need_x else None  # (L, N, In)
    dw_ih = torch.mm(d_gi2.t(), x.reshape(L * N, -1)) if need_w_ih else None  # (G*H, In)
    dw_hh = None
    if need_w_hh:
        h_prev = torch.cat([h0.unsqueeze(0), y[:-1]])  # (L, N, P)
        dw_hh = torch.mm(d_gh2.t(), h_prev.reshape(L * N, -1))  # (G*H, P)
    db_ih = d_gi2.sum(0) if need_b_ih else None
    db_hh = d_gh2.sum(0) if need_b_hh else None
    dw_hr = None
    if need_w_hr:
        dw_hr = torch.mm(d_y_total.reshape(L * N, -1).t(), math.hidden().reshape(L * N, -1))  # (P, H)
    return dx, dh if need_h0 else None, dc if need_c0 else None, dw_ih, dw_hh, db_ih, db_hh, dw_hr


class RecurrentLayerFunction(torch.autograd.Function):
    """One recurrent layer in one direction, with the hand-written BPTT as its backward.

    ``apply(mode, batch_sizes, bptt_window, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)`` returns
    ``(y, h_n)``, or ``(y, h_n, c_n)`` for LSTM; shapes as in :func:`forward_sequence`.
    """

    @staticmethod
    def forward(ctx, mode, batch_sizes, bptt_window, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        weights = LayerWeights(w_ih, w_hh, b_ih, b_hh, w_hr)
        math, y, h_n, c_n = forward_sequence(mode, x, h0, c0, weights, batch_sizes)
        ctx.math = math
        ctx.batch_sizes = batch_sizes
        ctx.bptt_window = bptt_window
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, y)
        if c0 is None:
            return y, h_n
        return y, h_n, c_n

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, dh_n, dc_n=None):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, y = ctx.saved_tensors
        weights = LayerWeights(w_ih, w_hh, b_ih, b_hh, w_hr)
        grads = backward_sequence(ctx.math, x, h0, c0, weights, y, dy, dh_n, dc_n,
                                  ctx.batch_sizes, ctx.bptt_window, tuple(ctx.needs_input_grad[3:]))
        return (None, None, None) + grads
