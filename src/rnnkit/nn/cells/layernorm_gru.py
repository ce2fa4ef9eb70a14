r"""The layer-normalised GRU, torch.nn's gate order r, z, n:

    gi_t = LN_ih(x_t W_ih^T) + b_ih          gh_t = LN_hh(h_{t-1} W_hh^T) + b_hh        (3H each)
    r_t = σ(gi_r + gh_r)     z_t = σ(gi_z + gh_z)     n_t = tanh(gi_n + r_t ⊙ gh_n)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

LN is layer normalisation over the last dimension (gain initialised to 1, bias to 0, eps 1e-5).
Parameters per layer and direction: ``weight_ih`` (3H, In), ``weight_hh`` (3H, H), ``bias_ih``,
``bias_hh``, ``ln_ih_weight``, ``ln_ih_bias``, ``ln_hh_weight``, ``ln_hh_bias`` (all 3H).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import (LN_EPS, Cell, ParamSpec, Workspace, bias_sum, layer_norm, layer_norm_specs, ln_backward,
                   ln_forward, new_buffer)
from .gru import GRUWorkspace, gru_equations
from .registry import register_cell

@register_cell(title="LayerNorm GRU")
class LayerNormGRU(Cell):
    native_kernel = "layernorm_gru"
    name = "layernorm_gru"
    gate_names = ("reset", "update", "new")

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (3 * H, input_size)), ParamSpec("weight_hh", (3 * H, H)),
                ParamSpec("bias_ih", (3 * H,), bias=True), ParamSpec("bias_hh", (3 * H,), bias=True),
                *layer_norm_specs("ln_ih", 3 * H), *layer_norm_specs("ln_hh", 3 * H)]

    def reference_step(self, p, x_t, state, h_in):
        gi = layer_norm(x_t @ p["weight_ih"].t(), p["ln_ih_weight"], p["ln_ih_bias"], LN_EPS)  # (N, 3H)
        gh = layer_norm(h_in @ p["weight_hh"].t(), p["ln_hh_weight"], p["ln_hh_bias"], LN_EPS)
        if "bias_ih" in p:
            gi, gh = gi + p["bias_ih"], gh + p["bias_hh"]
        return gru_equations(gi, gh, state[0])

    def workspace(self) -> Workspace:
        return LayerNormGRUWorkspace()


class LayerNormGRUWorkspace(GRUWorkspace):
    """The GRU's buffers with gi and gh read after their layer norms; ``gh_raw`` = h_in W_hh^T."""

    def input_bias(self, p):
        return None  # the bias comes after LN_ih

    def start(self, gi: Tensor, p, zero: bool) -> None:
        L, N, G = gi.shape
        self.p = p
        self.gi_raw = gi  # (L, N, 3H): x W_ih^T, kept for LN_ih's backward
        gi_n, self.mean_ih, self.rstd_ih = ln_forward(gi, (G,), p["ln_ih_weight"], p["ln_ih_bias"], LN_EPS)
        if "bias_ih" in p:
            gi_n += p["bias_ih"]
        super().start(gi_n, {}, zero)  # self.gi = LN_ih(...) + b_ih; self.gh: LN_hh(...) + b_hh per step
        self.gh_raw = gi.new_zeros(L, N, G)
        self.mean_hh = new_buffer(gi, zero, L, N, 1)
        self.rstd_hh = new_buffer(gi, zero, L, N, 1)

    def recurrent_buffer(self, t: int, bs: int) -> Tensor:
        return self.gh_raw[t, :bs]

    def step(self, t, bs, h_prev, c_prev):
        p = self.p
        gh = self.gh[t, :bs]
        ln, mean, rstd = ln_forward(self.gh_raw[t, :bs], (3 * self.H,), p["ln_hh_weight"], p["ln_hh_bias"], LN_EPS)
        self.mean_hh[t, :bs] = mean
        self.rstd_hh[t, :bs] = rstd
        torch.add(ln, p["bias_hh"], out=gh) if "bias_hh" in p else gh.copy_(ln)
        return super().step(t, bs, h_prev, c_prev)

    def allocate_gate_grads(self, zero: bool) -> None:
        super().allocate_gate_grads(zero)
        self.d_gh_raw = new_buffer(self.gi, zero, self.gi.shape)  # (L, N, 3H)

    def step_backward(self, t, bs, dh, dc):
        p = self.p
        direct, _ = super().step_backward(t, bs, dh, dc)
        self.d_gh_raw[t, :bs] = ln_backward(self.d_gh[t, :bs], self.gh_raw[t, :bs], (3 * self.H,),
                                             self.mean_hh[t, :bs], self.rstd_hh[t, :bs], p["ln_hh_weight"],
                                             p["ln_hh_bias"], (True, False, False))[0]
        return direct, None

    def grad_input(self) -> Tensor:
        p = self.p
        d_gi, self.d_ln_ih_weight, self.d_ln_ih_bias = ln_backward(
            self.d_gi, self.gi_raw, (3 * self.H,), self.mean_ih, self.rstd_ih, p["ln_ih_weight"],
            p["ln_ih_bias"], (True, True, True))
        return d_gi

    def grad_recurrent(self) -> Tensor:
        return self.d_gh_raw

    def grad_params(self, needs):
        grads = {"ln_ih_weight": self.d_ln_ih_weight, "ln_ih_bias": self.d_ln_ih_bias}
        if needs.get("bias_ih"):
            grads["bias_ih"] = bias_sum(self.d_gi)
        if needs.get("bias_hh"):
            grads["bias_hh"] = bias_sum(self.d_gh)
        if needs.get("ln_hh_weight") or needs.get("ln_hh_bias"):
            normalised = (self.gh_raw - self.mean_hh) * self.rstd_hh  # (L, N, 3H)
            grads["ln_hh_weight"] = bias_sum(self.d_gh * normalised)
            grads["ln_hh_bias"] = bias_sum(self.d_gh)
        return grads
