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

from .base import (LN_EPS, Cell, ParamSpec, Workspace, bias_sum, layer_norm, layer_norm_specs, ln_backward,
                   ln_forward, new_buffer)
from .lstm import LSTMWorkspace, lstm_memory, lstm_memory_, lstm_output_
from .registry import register_cell

@register_cell(title="LayerNorm LSTM")
class LayerNormLSTM(Cell):
    native_kernel = "layernorm_lstm"
    name = "layernorm_lstm"
    gate_names = ("input", "forget", "cell", "output")
    has_cell_state = True
    forget_gate = ("bias", 1)

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (4 * H, input_size)), ParamSpec("weight_hh", (4 * H, H)),
                ParamSpec("bias", (4 * H,), init="zeros", bias=True),
                *layer_norm_specs("ln_ih", 4 * H), *layer_norm_specs("ln_hh", 4 * H), *layer_norm_specs("ln_c", H)]

    def reference_step(self, p, x_t, state, h_in):
        h_prev, c_prev = state
        a = (layer_norm(x_t @ p["weight_ih"].t(), p["ln_ih_weight"], p["ln_ih_bias"], LN_EPS)
             + layer_norm(h_in @ p["weight_hh"].t(), p["ln_hh_weight"], p["ln_hh_bias"], LN_EPS))  # (N, 4H)
        if "bias" in p:
            a = a + p["bias"]
        i, f, g, o, c = lstm_memory(a, c_prev)
        h = o * torch.tanh(layer_norm(c, p["ln_c_weight"], p["ln_c_bias"], LN_EPS))
        return (h, c), {"input": i, "forget": f, "cell": g, "output": o}

    def workspace(self) -> Workspace:
        return LayerNormLSTMWorkspace()


class LayerNormLSTMWorkspace(LSTMWorkspace):
    """The LN-LSTM's buffers, kept lean: the gates, ``h_in W_hh^T``, c, tanh(LN_c(c)) and the norms' statistics.

    Memory: the input projection x W_ih^T is dropped once normalised and recomputed a block of steps at a
    time in the backward pass (one matrix multiply), and the backward writes each step's gradients over that
    step's gate and recurrent buffers, which nothing needs any more: one backward per forward (a second one
    through the same graph is computed from the reference equations).
    """

    input_chunk_steps = 16
    reuses_buffers = True
    whole_previous_states = False  # c_{t-1} is read step by step

    def start(self, gi: Tensor, p, zero: bool) -> None:
        L, N, G = gi.shape
        H = self.H = G // 4
        self.p = p
        act, self.mean_ih, self.rstd_ih = ln_forward(gi, (G,), p["ln_ih_weight"], p["ln_ih_bias"], LN_EPS)  # (L, N, 4H)
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
        ln_hh, mean, rstd = ln_forward(self.gh[t, :bs], (4 * H,), p["ln_hh_weight"], p["ln_hh_bias"], LN_EPS)  # (bs, 4H)
        self.mean_hh[t, :bs] = mean
        self.rstd_hh[t, :bs] = rstd
        a = self.act[t, :bs]
        a += ln_hh
        i, f, g, o, c = lstm_memory_(a, c_prev, out=self.c[t, :bs])
        cn, mean_c, rstd_c = ln_forward(c, (H,), p["ln_c_weight"], p["ln_c_bias"], LN_EPS)
        self.mean_c[t, :bs] = mean_c
        self.rstd_c[t, :bs] = rstd_c
        return lstm_output_(o, cn, self.tanh_cn[t, :bs], self.m[t, :bs]), c

    def prepare_backward(self, h_prev: Tensor, c_prev: Tensor) -> None:
        self.c_prev = c_prev  # c_{t-1} by [t, rows]

    def allocate_gate_grads(self, zero: bool) -> None:
        H, like = self.H, self.act
        # the norms' gains and biases: summed step by step, as each step's gradient is found
        self.d_ln = {name: like.new_zeros(size) for name, size in (
            ("ln_hh_weight", 4 * H), ("ln_hh_bias", 4 * H), ("ln_c_weight", H), ("ln_c_bias", H),
            ("ln_ih_weight", 4 * H), ("ln_ih_bias", 4 * H))}

    def step_backward(self, t, bs, dm, dc):
        H, p, d_ln = self.H, self.p, self.d_ln
        a = self.act[t, :bs]  # (bs, 4H): i, f, g, o, overwritten below by dL/da
        i, f, g, o = a.chunk(4, 1)
        tanh_cn = self.tanh_cn[t, :bs]
        d_cn = dm * o * (1 - tanh_cn * tanh_cn)  # dL/d LN_c(c_t)
        dc_ln, d_gain, d_bias = ln_backward(d_cn, self.c[t, :bs], (H,), self.mean_c[t, :bs], self.rstd_c[t, :bs],
                                             p["ln_c_weight"], p["ln_c_bias"], (True, True, True))
        d_ln["ln_c_weight"] += d_gain
        d_ln["ln_c_bias"] += d_bias
        dc += dc_ln
        d_a = torch.empty_like(a)  # (bs, 4H)
        d_i, d_f, d_g, d_o = d_a.chunk(4, 1)
        torch.mul(dc, g * i * (1 - i), out=d_i)
        torch.mul(dc, self.c_prev[t, :bs] * f * (1 - f), out=d_f)
        torch.mul(dc, i * (1 - g * g), out=d_g)
        torch.mul(dm, tanh_cn * o * (1 - o), out=d_o)
        dc.mul_(f)  # dc_{t-1} = dc_t f_t, read before f's buffer is overwritten
        a.copy_(d_a)
        gh = self.gh[t, :bs]
        d_gh, d_gain, d_bias = ln_backward(d_a, gh, (4 * H,), self.mean_hh[t, :bs], self.rstd_hh[t, :bs],
                                            p["ln_hh_weight"], p["ln_hh_bias"], (True, True, True))
        d_ln["ln_hh_weight"] += d_gain
        d_ln["ln_hh_bias"] += d_bias
        gh.copy_(d_gh)  # dL/d(h_in W_hh^T) over h_in W_hh^T, which no later step reads
        return None, dc

    def grad_input_chunk(self, t0: int, t1: int, project) -> Tensor:
        p = self.p
        d_gi, d_gain, d_bias = ln_backward(self.act[t0:t1], project(t0, t1), (4 * self.H,), self.mean_ih[t0:t1],
                                            self.rstd_ih[t0:t1], p["ln_ih_weight"], p["ln_ih_bias"],
                                            (True, True, True))
        self.d_ln["ln_ih_weight"] += d_gain
        self.d_ln["ln_ih_bias"] += d_bias
        return d_gi  # (t1 - t0, N, 4H)

    def grad_recurrent(self) -> Tensor:
        return self.gh  # dL/d(h_in W_hh^T), written over the forward's buffer

    def grad_params(self, needs):
        grads = dict(self.d_ln)
        if needs.get("bias"):
            grads["bias"] = bias_sum(self.act)  # dL/da, written over the gates
        return grads
