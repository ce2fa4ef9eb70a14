r"""The layer-normalised LSTM (Ba et al. 2016, in haste's form), torch.nn's gate order i, f, g, o:

    a_t = LN_ih(x_t W_ih^T) + LN_hh(h_{t-1} W_hh^T) + b            (4H)
    i_t, f_t, o_t = σ(a_i), σ(a_f), σ(a_o);    g_t = tanh(a_g)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(LN_c(c_t))

LN is layer normalisation over the last dimension, ``LN(v) = (v − mean v) / sqrt(var v + 1e-5) ⊙ γ + β``,
with the gain γ initialised to 1 and β to 0. Normalising the input and recurrent contributions
separately keeps the gates' scale steady over time, which lets deep or long recurrences train faster.

Parameters per layer and direction: ``weight_ih`` (4H, In), ``weight_hh`` (4H, H), ``bias`` (4H),
``ln_ih_weight``, ``ln_ih_bias`` (4H), ``ln_hh_weight``, ``ln_hh_bias`` (4H), ``ln_c_weight``,
``ln_c_bias`` (H).

On the explicit engine, LN_ih is applied to all steps at once (one fused kernel forward, one backward);
LN_hh and LN_c run per step with PyTorch's fused layer-norm kernels, forward and backward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Cell, ParamSpec, Workspace, bias_sum, layer_norm, new_buffer
from .registry import register_cell

EPS = 1e-5
_ln = torch.native_layer_norm
_ln_backward = torch.ops.aten.native_layer_norm_backward


@register_cell
class LayerNormLSTM(Cell):
    name = "layernorm_lstm"
    gate_names = ("input", "forget", "cell", "output")
    has_cell_state = True
    forget_gate = ("bias", 1)

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (4 * H, input_size)), ParamSpec("weight_hh", (4 * H, H)),
                ParamSpec("bias", (4 * H,), init="zeros", bias=True),
                ParamSpec("ln_ih_weight", (4 * H,), "ones"), ParamSpec("ln_ih_bias", (4 * H,), "zeros"),
                ParamSpec("ln_hh_weight", (4 * H,), "ones"), ParamSpec("ln_hh_bias", (4 * H,), "zeros"),
                ParamSpec("ln_c_weight", (H,), "ones"), ParamSpec("ln_c_bias", (H,), "zeros")]

    def reference_step(self, p, x_t, state, h_in):
        h_prev, c_prev = state
        a = (layer_norm(x_t @ p["weight_ih"].t(), p["ln_ih_weight"], p["ln_ih_bias"], EPS)
             + layer_norm(h_in @ p["weight_hh"].t(), p["ln_hh_weight"], p["ln_hh_bias"], EPS))  # (N, 4H)
        if "bias" in p:
            a = a + p["bias"]
        i, f, g, o = a.chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c_prev + i * g  # (N, H)
        h = o * torch.tanh(layer_norm(c, p["ln_c_weight"], p["ln_c_bias"], EPS))
        return (h, c), {"input": i, "forget": f, "cell": g, "output": o}

    def workspace(self) -> Workspace:
        return LayerNormLSTMWorkspace()


class LayerNormLSTMWorkspace(Workspace):
    def start(self, gi: Tensor, p, zero: bool) -> None:
        L, N, G = gi.shape
        H = self.H = G // 4
        self.p = p
        self.gi = gi  # (L, N, 4H): x W_ih^T, kept for LN_ih's backward
        act, self.mean_ih, self.rstd_ih = _ln(gi, (G,), p["ln_ih_weight"], p["ln_ih_bias"], EPS)  # (L, N, 4H)
        if "bias" in p:
            act += p["bias"]
        self.act = act  # pre-activations, + LN_hh per step, then i, f, g, o in place
        self.gh = gi.new_zeros(L, N, G)  # h_in W_hh^T, added by the engine
        self.mean_hh = new_buffer(gi, zero, L, N, 1)
        self.rstd_hh = new_buffer(gi, zero, L, N, 1)
        self.c = new_buffer(gi, zero, L, N, H)
        self.mean_c = new_buffer(gi, zero, L, N, 1)
        self.rstd_c = new_buffer(gi, zero, L, N, 1)
        self.tanh_cn = new_buffer(gi, zero, L, N, H)  # tanh(LN_c(c_t))
        self.m = new_buffer(gi, zero, L, N, H)

    def recurrent_buffer(self, t: int, bs: int) -> Tensor:
        return self.gh[t, :bs]

    def step(self, t, bs, h_prev, c_prev):
        H, p = self.H, self.p
        ln_hh, mean, rstd = _ln(self.gh[t, :bs], (4 * H,), p["ln_hh_weight"], p["ln_hh_bias"], EPS)  # (bs, 4H)
        self.mean_hh[t, :bs] = mean
        self.rstd_hh[t, :bs] = rstd
        a = self.act[t, :bs]
        a += ln_hh
        a[:, : 2 * H].sigmoid_()  # i, f
        a[:, 2 * H : 3 * H].tanh_()  # g
        a[:, 3 * H :].sigmoid_()  # o
        i, f, g, o = a.chunk(4, 1)
        c = self.c[t, :bs]  # (bs, H)
        torch.mul(f, c_prev, out=c)
        c.addcmul_(i, g)
        cn, mean_c, rstd_c = _ln(c, (H,), p["ln_c_weight"], p["ln_c_bias"], EPS)
        self.mean_c[t, :bs] = mean_c
        self.rstd_c[t, :bs] = rstd_c
        tanh_cn = self.tanh_cn[t, :bs]
        torch.tanh(cn, out=tanh_cn)
        m = self.m[t, :bs]
        torch.mul(o, tanh_cn, out=m)
        return m, c

    def hidden(self) -> Tensor:
        return self.m

    def cell(self) -> Tensor:
        return self.c

    def prepare_backward(self, h_prev: Tensor, c_prev: Tensor) -> None:
        i, f, g, o = self.act.chunk(4, 2)  # each (L, N, H)
        self.dcn_from_m = o * (1 - self.tanh_cn * self.tanh_cn)  # dL/d LN_c(c) = dm * this
        self.dc_to_ifg = torch.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], dim=2)  # (L, N, 3, H)
        self.dm_to_o = self.tanh_cn * o * (1 - o)  # (L, N, H)
        self.forget = f

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_act = new_buffer(self.act, zero, self.act.shape)  # (L, N, 4H): dL/da
        self.d_gh = new_buffer(self.act, zero, self.act.shape)  # (L, N, 4H): dL/d(h_in W_hh^T)
        self.d_cn = new_buffer(self.act, zero, self.c.shape)  # (L, N, H): dL/d LN_c(c), for LN_c's gain

    def step_backward(self, t, bs, dm, dc):
        H, p = self.H, self.p
        d_cn = self.d_cn[t, :bs]
        torch.mul(dm, self.dcn_from_m[t, :bs], out=d_cn)
        dc += _ln_backward(d_cn, self.c[t, :bs], (H,), self.mean_c[t, :bs], self.rstd_c[t, :bs],
                           p["ln_c_weight"], p["ln_c_bias"], (True, False, False))[0]
        d_act = self.d_act[t, :bs]
        d4 = d_act.view(bs, 4, H)  # (bs, 4, H)
        torch.mul(dc.unsqueeze(1), self.dc_to_ifg[t, :bs], out=d4[:, :3])
        torch.mul(dm, self.dm_to_o[t, :bs], out=d4[:, 3])
        self.d_gh[t, :bs] = _ln_backward(d_act, self.gh[t, :bs], (4 * H,), self.mean_hh[t, :bs],
                                         self.rstd_hh[t, :bs], p["ln_hh_weight"], p["ln_hh_bias"],
                                         (True, False, False))[0]
        dc.mul_(self.forget[t, :bs])
        return None, dc

    def grad_input(self) -> Tensor:
        p = self.p
        d_gi, self.d_ln_ih_weight, self.d_ln_ih_bias = _ln_backward(
            self.d_act, self.gi, (4 * self.H,), self.mean_ih, self.rstd_ih, p["ln_ih_weight"], p["ln_ih_bias"],
            (True, True, True))
        return d_gi

    def grad_recurrent(self) -> Tensor:
        return self.d_gh

    def grad_params(self, needs):
        grads = {"ln_ih_weight": self.d_ln_ih_weight, "ln_ih_bias": self.d_ln_ih_bias}
        if needs.get("bias"):
            grads["bias"] = bias_sum(self.d_act)
        if needs.get("ln_hh_weight") or needs.get("ln_hh_bias"):
            normalised = (self.gh - self.mean_hh) * self.rstd_hh  # (L, N, 4H): LN_hh before its gain
            grads["ln_hh_weight"] = bias_sum(self.d_act * normalised)
            grads["ln_hh_bias"] = bias_sum(self.d_act)
        if needs.get("ln_c_weight") or needs.get("ln_c_bias"):
            normalised = (self.c - self.mean_c) * self.rstd_c  # (L, N, H)
            grads["ln_c_weight"] = bias_sum(self.d_cn * normalised)
            grads["ln_c_bias"] = bias_sum(self.d_cn)
        return grads

    def gates(self) -> dict[str, Tensor]:
        return dict(zip(LayerNormLSTM.gate_names, self.act.chunk(4, 2)))
