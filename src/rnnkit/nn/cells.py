r"""The step equations of the recurrent cells, written once per cell type, in torch.nn's gate order.

Every cell reads the same two things at step t: the input projection ``gi_t = x_t W_ih^T + b_ih``
(computed for all steps at once by the engine, one matrix multiply) and the previous hidden state
``h_{t-1}``. The weights are shared across time: the same ``W_hh`` multiplies every ``h_{t-1}``.

    RNN   h_t = act(gi_t + h_{t-1} W_hh^T + b_hh)                     act = tanh or relu
    LSTM  i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (gi_t + h_{t-1} W_hh^T + b_hh)
          c_t = f * c_{t-1} + i * g
          h_t = o * tanh(c_t)                       (then h_t W_hr^T when proj_size > 0)
    GRU   gh_t = h_{t-1} W_hh^T + b_hh
          r, z = sigmoid(gi_t[r, z] + gh_t[r, z])
          n    = tanh(gi_t[n] + r * gh_t[n])
          h_t  = (1 - z) * n + z * h_{t-1}

Each class holds the buffers of one sequence (the *workspace*) and provides

* ``step(t, bs, h_prev, c_prev)``: the forward equations for rows ``[:bs]`` of step t;
* ``prepare_backward()``: the derivatives of the activations for all steps at once (vectorised
  over time, so the backward loop does as little per step as possible);
* ``step_backward(t, bs, dh, dc)``: given dL/dh_t (and dL/dc_t), writes dL/d(pre-activations)
  of step t and returns the factor by which dh_t reaches ``h_{t-1}`` directly, not through
  ``W_hh`` (None where there is no such path), and dL/dc_{t-1};
* ``gates()``: the per-step gate activations, by name, for :meth:`rnnkit.nn.RNN.trace`.

Shapes: L steps, N batch rows (sorted by decreasing length when lengths differ, so the rows
alive at step t are ``[:bs]``), H hidden size, P the size of h (``proj_size`` or H), G the
number of gates.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _new(like: Tensor, zero: bool, *shape) -> Tensor:
    """A buffer of ``like``'s dtype and device; zeroed when rows can be padding (variable lengths),
    so that padded positions hold finite values that the vectorised backward multiplies by 0."""
    return like.new_zeros(*shape) if zero else like.new_empty(*shape)


class RNNCellMath:
    """``h_t = act(gi_t + h_{t-1} W_hh^T + b_hh)`` with act = tanh or relu."""

    num_gates = 1
    has_cell_state = False
    gate_names: tuple[str, ...] = ()

    def __init__(self, nonlinearity: str = "tanh"):
        self.nonlinearity = nonlinearity

    def folds_hidden_bias(self) -> bool:
        """True: b_hh can be added to the input projection once instead of at every step."""
        return True

    def start(self, gi: Tensor, h0: Tensor, c0: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
              zero: bool) -> None:
        self.pre = gi  # (L, N, H): gi + b_hh, then + h_{t-1} W_hh^T in place
        self.w_hh_t = w_hh.t()  # (H, H)
        self.h = _new(gi, zero, gi.shape)  # (L, N, H)

    def step(self, t: int, bs: int, h_prev: Tensor, c_prev: Tensor | None) -> tuple[Tensor, None]:
        a = self.pre[t, :bs]  # (bs, H)
        a.addmm_(h_prev, self.w_hh_t)
        h = self.h[t, :bs]
        if self.nonlinearity == "tanh":
            torch.tanh(a, out=h)
        else:
            torch.clamp(a, min=0, out=h)  # relu
        return h, None

    def hidden(self) -> Tensor:
        return self.h  # (L, N, H): h_t for every step

    def cell(self) -> None:
        return None

    def prepare_backward(self, h0: Tensor, c0: Tensor | None) -> None:
        h = self.h
        # d act / d a, written in terms of the output: tanh' = 1 - h^2, relu' = [h > 0]
        self.dact = 1 - h * h if self.nonlinearity == "tanh" else (h > 0).to(h.dtype)  # (L, N, H)

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_pre = _new(self.pre, zero, self.pre.shape)  # (L, N, H)

    def step_backward(self, t: int, bs: int, dh: Tensor, dc: Tensor | None) -> tuple[None, None]:
        torch.mul(dh, self.dact[t, :bs], out=self.d_pre[t, :bs])
        return None, None

    def grad_input_gates(self) -> Tensor:
        return self.d_pre

    def grad_hidden_gates(self) -> Tensor:
        return self.d_pre

    def gates(self) -> dict[str, Tensor]:
        return {}


class LSTMCellMath:
    """LSTM with gates i, f, g, o (torch.nn order) and an optional output projection W_hr."""

    num_gates = 4
    has_cell_state = True
    gate_names = ("input", "forget", "cell", "output")

    def folds_hidden_bias(self) -> bool:
        return True

    def start(self, gi: Tensor, h0: Tensor, c0: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
              zero: bool) -> None:
        L, N, G = gi.shape
        H = G // 4
        self.H = H
        self.act = gi  # (L, N, 4H): pre-activations, replaced in place by i, f, g, o
        self.w_hh_t = w_hh.t()  # (P, 4H)
        self.c = _new(gi, zero, L, N, H)  # c_t
        self.tanh_c = _new(gi, zero, L, N, H)  # tanh(c_t), kept for h_t and for the backward pass
        self.m = _new(gi, zero, L, N, H)  # o * tanh(c_t): h_t before the projection

    def step(self, t: int, bs: int, h_prev: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
        H = self.H
        a = self.act[t, :bs]  # (bs, 4H)
        a.addmm_(h_prev, self.w_hh_t)
        a[:, : 2 * H].sigmoid_()  # i, f
        a[:, 2 * H : 3 * H].tanh_()  # g
        a[:, 3 * H :].sigmoid_()  # o
        i, f, g, o = a.chunk(4, 1)
        c = self.c[t, :bs]  # (bs, H)
        torch.mul(f, c_prev, out=c)
        c.addcmul_(i, g)
        tanh_c = self.tanh_c[t, :bs]
        torch.tanh(c, out=tanh_c)
        m = self.m[t, :bs]
        torch.mul(o, tanh_c, out=m)
        return m, c

    def hidden(self) -> Tensor:
        return self.m  # (L, N, H): before the projection

    def cell(self) -> Tensor:
        return self.c  # (L, N, H)

    def prepare_backward(self, h0: Tensor, c0: Tensor) -> None:
        i, f, g, o = self.act.chunk(4, 2)  # each (L, N, H)
        c_prev = torch.cat([c0.unsqueeze(0), self.c[:-1]])  # (L, N, H)
        # dL/dc_t = dc_carry + dm * o * (1 - tanh(c)^2)
        self.dc_from_m = o * (1 - self.tanh_c * self.tanh_c)  # (L, N, H)
        # pre-activation gradients of i, f, g given dc_t, each times its activation's derivative
        self.dc_to_ifg = torch.stack(
            [g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], dim=2
        )  # (L, N, 3, H)
        # pre-activation gradient of o given dm_t
        self.dm_to_o = self.tanh_c * o * (1 - o)  # (L, N, H)
        self.forget = f  # dc_{t-1} = dc_t * f_t

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_act = _new(self.act, zero, self.act.shape)  # (L, N, 4H)

    def step_backward(self, t: int, bs: int, dm: Tensor, dc: Tensor) -> tuple[None, Tensor]:
        """``dm`` is dL/d(o * tanh c_t); ``dc`` (updated in place) arrives as the carry from t+1."""
        dc.addcmul_(dm, self.dc_from_m[t, :bs])
        d4 = self.d_act[t, :bs].view(bs, 4, self.H)  # (bs, 4, H)
        torch.mul(dc.unsqueeze(1), self.dc_to_ifg[t, :bs], out=d4[:, :3])
        torch.mul(dm, self.dm_to_o[t, :bs], out=d4[:, 3])
        dc.mul_(self.forget[t, :bs])
        return None, dc

    def grad_input_gates(self) -> Tensor:
        return self.d_act

    def grad_hidden_gates(self) -> Tensor:
        return self.d_act

    def gates(self) -> dict[str, Tensor]:
        return dict(zip(self.gate_names, self.act.chunk(4, 2)))


class GRUCellMath:
    """GRU with gates r, z, n (torch.nn order); b_hn sits inside r * (...), so b_hh is not folded."""

    num_gates = 3
    has_cell_state = False
    gate_names = ("reset", "update", "new")

    def folds_hidden_bias(self) -> bool:
        return False

    def start(self, gi: Tensor, h0: Tensor, c0: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
              zero: bool) -> None:
        L, N, G = gi.shape
        H = G // 3
        self.H = H
        self.gi = gi  # (L, N, 3H)
        self.w_hh_t = w_hh.t()  # (H, 3H)
        # h_{t-1} W_hh^T + b_hh: b_hh is written for all steps at once, the product added per step
        self.gh = _new(gi, True, L, N, 3 * H) if b_hh is None else b_hh.expand(L, N, 3 * H).clone()
        self.rz = _new(gi, zero, L, N, 2 * H)  # r, z
        self.n = _new(gi, zero, L, N, H)
        self.h = _new(gi, zero, L, N, H)

    def step(self, t: int, bs: int, h_prev: Tensor, c_prev: None) -> tuple[Tensor, None]:
        H = self.H
        gh = self.gh[t, :bs]  # (bs, 3H)
        gh.addmm_(h_prev, self.w_hh_t)
        gi = self.gi[t, :bs]
        rz = self.rz[t, :bs]  # (bs, 2H)
        torch.add(gi[:, : 2 * H], gh[:, : 2 * H], out=rz)
        rz.sigmoid_()
        r, z = rz.chunk(2, 1)
        n = self.n[t, :bs]
        torch.addcmul(gi[:, 2 * H :], r, gh[:, 2 * H :], out=n)
        n.tanh_()
        h = self.h[t, :bs]
        torch.sub(h_prev, n, out=h)  # h = n + z * (h_prev - n)
        h.mul_(z).add_(n)
        return h, None

    def hidden(self) -> Tensor:
        return self.h  # (L, N, H)

    def cell(self) -> None:
        return None

    def prepare_backward(self, h0: Tensor, c0: None) -> None:
        r, z = self.rz.chunk(2, 2)  # each (L, N, H)
        n = self.n
        h_prev = torch.cat([h0.unsqueeze(0), self.h[:-1]])  # (L, N, H)
        to_n = (1 - z) * (1 - n * n)  # dn_pre = dh * (1 - z) * tanh'
        to_z = (h_prev - n) * z * (1 - z)  # dz_pre = dh * (h_prev - n) * sigmoid'
        to_r = to_n * self.gh[..., 2 * self.H :] * r * (1 - r)  # dr_pre = dn_pre * gh_n * sigmoid'
        # every pre-activation gradient of step t is dh_t times one of these factors, so each
        # step needs one multiply for the input-side gates and one for the hidden-side gates
        self.dh_to_gi = torch.stack([to_r, to_z, to_n], dim=2)  # (L, N, 3, H)
        self.dh_to_gh = torch.stack([to_r, to_z, to_n * r], dim=2)  # n's hidden part sits inside r * (...)
        self.update = z

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_gi = _new(self.gi, zero, self.gi.shape)  # (L, N, 3H): dL/d(x W_ih^T + b_ih)
        self.d_gh = _new(self.gi, zero, self.gi.shape)  # (L, N, 3H): dL/d(h W_hh^T + b_hh)

    def step_backward(self, t: int, bs: int, dh: Tensor, dc: None) -> tuple[Tensor, None]:
        dh3 = dh.unsqueeze(1)  # (bs, 1, H)
        torch.mul(dh3, self.dh_to_gi[t, :bs], out=self.d_gi[t, :bs].view(bs, 3, self.H))
        torch.mul(dh3, self.dh_to_gh[t, :bs], out=self.d_gh[t, :bs].view(bs, 3, self.H))
        return self.update[t, :bs], None  # h_t = ... + z * h_{t-1}: z * dh_t reaches h_{t-1} directly

    def grad_input_gates(self) -> Tensor:
        return self.d_gi

    def grad_hidden_gates(self) -> Tensor:
        return self.d_gh

    def gates(self) -> dict[str, Tensor]:
        r, z = self.rz.chunk(2, 2)
        return {"reset": r, "update": z, "new": self.n}


def cell_math(mode: str):
    """The equations for a torch.nn mode string: ``RNN_TANH``, ``RNN_RELU``, ``LSTM`` or ``GRU``."""
    if mode == "RNN_TANH":
        return RNNCellMath("tanh")
    if mode == "RNN_RELU":
        return RNNCellMath("relu")
    if mode == "LSTM":
        return LSTMCellMath()
    if mode == "GRU":
        return GRUCellMath()
    raise ValueError(f"unknown recurrent mode {mode!r}; expected RNN_TANH, RNN_RELU, LSTM or GRU")
