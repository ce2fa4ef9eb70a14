r"""The LSTM cell, torch.nn's gate order (input, forget, cell, output):

    i_t = σ(x_t W_ii^T + b_ii + h_{t-1} W_hi^T + b_hi)
    f_t = σ(x_t W_if^T + b_if + h_{t-1} W_hf^T + b_hf)
    g_t = tanh(x_t W_ig^T + b_ig + h_{t-1} W_hg^T + b_hg)
    o_t = σ(x_t W_io^T + b_io + h_{t-1} W_ho^T + b_ho)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)                (h_t = (o_t ⊙ tanh(c_t)) W_hr^T when proj_size > 0)

Parameters per layer and direction: ``weight_ih`` (4H, In), ``weight_hh`` (4H, P), ``bias_ih``,
``bias_hh`` (4H), ``weight_hr`` (P, H) with a projection. The biases are summed once into the input
projection, so a step costs one matrix multiply and the activations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Cell, ParamSpec, Workspace, bias_sum, new_buffer
from .registry import register_cell


def lstm_memory(a: Tensor, c_prev: Tensor) -> tuple[Tensor, ...]:
    """The LSTM family's gates and memory from the pre-activations a (N, 4H): i, f, o = σ, g = tanh,
    ``c_t = f ⊙ c_{t-1} + i ⊙ g``. Returns (i, f, g, o, c)."""
    i, f, g, o = a.chunk(4, 1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    return i, f, g, o, f * c_prev + i * g


def lstm_memory_(a: Tensor, c_prev: Tensor, out: Tensor) -> tuple[Tensor, ...]:
    """:func:`lstm_memory` in place: the gates over their pre-activations in ``a`` (bs, 4H), c_t into ``out``."""
    H = a.shape[1] // 4
    a[:, : 2 * H].sigmoid_()  # i, f
    a[:, 2 * H : 3 * H].tanh_()  # g
    a[:, 3 * H :].sigmoid_()  # o
    i, f, g, o = a.chunk(4, 1)
    torch.mul(f, c_prev, out=out)
    out.addcmul_(i, g)
    return i, f, g, o, out


def lstm_output_(o: Tensor, c: Tensor, tanh_out: Tensor, out: Tensor) -> Tensor:
    """``o ⊙ tanh(c)`` into ``out``, keeping ``tanh(c)`` in ``tanh_out`` for the backward pass."""
    torch.tanh(c, out=tanh_out)
    return torch.mul(o, tanh_out, out=out)


@register_cell(title="LSTM")
class LSTM(Cell):
    name = "lstm"
    native_kernel = "lstm"
    gate_names = ("input", "forget", "cell", "output")
    has_cell_state = True
    fused_mode = "LSTM"
    forget_gate = ("bias_ih", 1)
    supports_projection = True

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H, P = self.hidden_size, self.output_size
        specs = [ParamSpec("weight_ih", (4 * H, input_size)), ParamSpec("weight_hh", (4 * H, P)),
                 ParamSpec("bias_ih", (4 * H,), bias=True), ParamSpec("bias_hh", (4 * H,), bias=True)]
        if self.proj_size:
            specs.append(ParamSpec("weight_hr", (P, H)))
        return specs

    def reference_step(self, p, x_t, state, h_in):
        h_prev, c_prev = state
        a = x_t @ p["weight_ih"].t() + h_in @ p["weight_hh"].t()  # (N, 4H)
        if "bias_ih" in p:
            a = a + p["bias_ih"] + p["bias_hh"]
        i, f, g, o, c = lstm_memory(a, c_prev)
        h = o * torch.tanh(c)
        if "weight_hr" in p:
            h = h @ p["weight_hr"].t()  # (N, P)
        return (h, c), {"input": i, "forget": f, "cell": g, "output": o}

    def workspace(self) -> Workspace:
        return LSTMWorkspace()

    def native_gates(self, ws: Tensor) -> dict[str, Tensor]:
        """The gates in the native kernel's saved workspace ws (L, N, W): i, f, g, o in its first 4H columns."""
        return dict(zip(self.gate_names, ws[..., : 4 * self.hidden_size].chunk(4, 2)))


class LSTMWorkspace(Workspace):
    def input_bias(self, p):
        return p["bias_ih"] + p["bias_hh"] if "bias_ih" in p else None

    def start(self, gi: Tensor, p, zero: bool) -> None:
        L, N, G = gi.shape
        H = self.H = G // 4
        self.act = gi  # (L, N, 4H): pre-activations, then i, f, g, o in place
        self.c = new_buffer(gi, zero, L, N, H)  # c~_t
        self.tanh_c = new_buffer(gi, zero, L, N, H)  # tanh(c_t), kept for h_t and the backward pass
        self.m = new_buffer(gi, zero, L, N, H)  # o * tanh(c_t): h_t before the projection

    def recurrent_buffer(self, t: int, bs: int) -> Tensor:
        return self.act[t, :bs]

    def step(self, t, bs, h_prev, c_prev):
        i, f, g, o, c = lstm_memory_(self.act[t, :bs], c_prev, out=self.c[t, :bs])  # h_in W_hh^T already added
        return lstm_output_(o, c, self.tanh_c[t, :bs], self.m[t, :bs]), c

    def hidden(self) -> Tensor:
        return self.m

    def cell(self) -> Tensor:
        return self.c

    def prepare_backward(self, h_prev: Tensor, c_prev: Tensor) -> None:
        i, f, g, o = self.act.chunk(4, 2)  # each (L, N, H)
        # dL/dc_t = dc_carry + dm * o * (1 - tanh(c)^2)
        self.dc_from_m = o * (1 - self.tanh_c * self.tanh_c)  # (L, N, H)
        # pre-activation gradients of i, f, g given dc_t, each times its activation's derivative
        self.dc_to_ifg = torch.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], dim=2)  # (L, N, 3, H)
        self.dm_to_o = self.tanh_c * o * (1 - o)  # (L, N, H): pre-activation gradient of o given dm_t
        self.forget = f  # dc_{t-1} = dc_t * f_t

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_act = new_buffer(self.act, zero, self.act.shape)  # (L, N, 4H)

    def step_backward(self, t, bs, dm, dc):
        dc.addcmul_(dm, self.dc_from_m[t, :bs])
        d4 = self.d_act[t, :bs].view(bs, 4, self.H)  # (bs, 4, H)
        torch.mul(dc.unsqueeze(1), self.dc_to_ifg[t, :bs], out=d4[:, :3])
        torch.mul(dm, self.dm_to_o[t, :bs], out=d4[:, 3])
        dc.mul_(self.forget[t, :bs])
        return None, dc

    def grad_input(self) -> Tensor:
        return self.d_act

    def grad_recurrent(self) -> Tensor:
        return self.d_act

    def grad_params(self, needs):
        grads = {}
        if needs.get("bias_ih") or needs.get("bias_hh"):
            db = bias_sum(self.d_act)
            grads = {"bias_ih": db, "bias_hh": db.clone()}
        return grads

    def gates(self) -> dict[str, Tensor]:
        return dict(zip(LSTM.gate_names, self.act.chunk(4, 2)))
