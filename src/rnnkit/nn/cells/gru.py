r"""The GRU cell, torch.nn's gate order (reset, update, new):

    r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
    z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
    n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Parameters per layer and direction: ``weight_ih`` (3H, In), ``weight_hh`` (3H, H), ``bias_ih``,
``bias_hh`` (3H). ``b_hn`` sits inside ``r ⊙ (...)``, so ``b_hh`` cannot be folded into the input
projection: it is written into the recurrent buffer for all steps at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Cell, ParamSpec, Workspace, bias_sum, new_buffer
from .registry import register_cell


@register_cell(title="GRU")
class GRU(Cell):
    name = "gru"
    native_kernel = "gru"
    gate_names = ("reset", "update", "new")
    fused_mode = "GRU"

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (3 * H, input_size)), ParamSpec("weight_hh", (3 * H, H)),
                ParamSpec("bias_ih", (3 * H,), bias=True), ParamSpec("bias_hh", (3 * H,), bias=True)]

    def reference_step(self, p, x_t, state, h_in):
        (h_prev,) = state
        gi = x_t @ p["weight_ih"].t()  # (N, 3H)
        gh = h_in @ p["weight_hh"].t()
        if "bias_ih" in p:
            gi, gh = gi + p["bias_ih"], gh + p["bias_hh"]
        return gru_equations(gi, gh, h_prev)

    def workspace(self) -> Workspace:
        return GRUWorkspace()

    def native_gates(self, ws: Tensor) -> dict[str, Tensor]:
        """The gates in the native kernel's saved workspace ws (L, N, W): r, z, n in its first 3H columns."""
        return dict(zip(self.gate_names, ws[..., : 3 * self.hidden_size].chunk(3, 2)))


def gru_equations(gi: Tensor, gh: Tensor, h_prev: Tensor) -> tuple[tuple[Tensor], dict[str, Tensor]]:
    """The GRU's step given ``gi = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` (each (N, 3H))."""
    gi_r, gi_z, gi_n = gi.chunk(3, 1)
    gh_r, gh_z, gh_n = gh.chunk(3, 1)
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    h = (1 - z) * n + z * h_prev  # (N, H)
    return (h,), {"reset": r, "update": z, "new": n}


class GRUWorkspace(Workspace):
    """Buffers: gi (L, N, 3H) with b_ih; gh (L, N, 3H) = b_hh + h_in W_hh^T; r, z; n; h~."""

    def input_bias(self, p):
        return p.get("bias_ih")

    def start(self, gi: Tensor, p, zero: bool) -> None:
        L, N, G = gi.shape
        H = self.H = G // 3
        self.gi = gi  # (L, N, 3H)
        b_hh = p.get("bias_hh")
        # h_{t-1} W_hh^T + b_hh: b_hh written for all steps at once, the product added per step
        self.gh = gi.new_zeros(L, N, G) if b_hh is None else b_hh.expand(L, N, G).clone()
        self.rz = new_buffer(gi, zero, L, N, 2 * H)  # r, z
        self.n = new_buffer(gi, zero, L, N, H)
        self.h = new_buffer(gi, zero, L, N, H)

    def recurrent_buffer(self, t: int, bs: int) -> Tensor:
        return self.gh[t, :bs]

    def step(self, t, bs, h_prev, c_prev):
        H = self.H
        gh = self.gh[t, :bs]  # (bs, 3H)
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
        return self.h

    def prepare_backward(self, h_prev: Tensor, c_prev: None) -> None:
        r, z = self.rz.chunk(2, 2)  # each (L, N, H)
        n = self.n
        to_n = (1 - z) * (1 - n * n)  # dn_pre = dh * (1 - z) * tanh'
        to_z = (h_prev - n) * z * (1 - z)  # dz_pre = dh * (h_prev - n) * sigmoid'
        to_r = to_n * self.gh[..., 2 * self.H :] * r * (1 - r)  # dr_pre = dn_pre * gh_n * sigmoid'
        # every pre-activation gradient of step t is dh_t times one of these factors, so each step
        # needs one multiply for the input-side gates and one for the hidden-side gates
        self.dh_to_gi = torch.stack([to_r, to_z, to_n], dim=2)  # (L, N, 3, H)
        self.dh_to_gh = torch.stack([to_r, to_z, to_n * r], dim=2)  # n's hidden part sits inside r * (...)
        self.update = z

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_gi = new_buffer(self.gi, zero, self.gi.shape)  # (L, N, 3H): dL/d(x W_ih^T + b_ih)
        self.d_gh = new_buffer(self.gi, zero, self.gi.shape)  # (L, N, 3H): dL/d(h W_hh^T + b_hh)

    def step_backward(self, t, bs, dh, dc):
        dh3 = dh.unsqueeze(1)  # (bs, 1, H)
        torch.mul(dh3, self.dh_to_gi[t, :bs], out=self.d_gi[t, :bs].view(bs, 3, self.H))
        torch.mul(dh3, self.dh_to_gh[t, :bs], out=self.d_gh[t, :bs].view(bs, 3, self.H))
        return self.update[t, :bs], None  # h_t = ... + z * h_{t-1}: z * dh_t reaches h_{t-1} directly

    def grad_input(self) -> Tensor:
        return self.d_gi

    def grad_recurrent(self) -> Tensor:
        return self.d_gh

    def grad_params(self, needs):
        grads = {}
        if needs.get("bias_ih"):
            grads["bias_ih"] = bias_sum(self.d_gi)
        if needs.get("bias_hh"):
            grads["bias_hh"] = bias_sum(self.d_gh)
        return grads

    def gates(self) -> dict[str, Tensor]:
        r, z = self.rz.chunk(2, 2)
        return {"reset": r, "update": z, "new": self.n}
