r"""The Elman RNN cell, the seeds' first cell: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
with act = tanh (``rnn_tanh``) or relu (``rnn_relu``).

Parameters per layer and direction: ``weight_ih`` (H, In), ``weight_hh`` (H, H), ``bias_ih``,
``bias_hh`` (H). The same ``W_hh`` multiplies every h_{t-1}: the weights are shared across time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Cell, ParamSpec, Workspace, bias_sum, new_buffer
from .registry import register_cell


@register_cell(title="tanh RNN")
class RNNTanh(Cell):
    name = "rnn_tanh"
    native_kernel = "rnn_tanh"
    fused_mode = "RNN_TANH"
    nonlinearity = "tanh"

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (H, input_size)), ParamSpec("weight_hh", (H, H)),
                ParamSpec("bias_ih", (H,), bias=True), ParamSpec("bias_hh", (H,), bias=True)]

    def reference_step(self, p, x_t, state, h_in):
        a = x_t @ p["weight_ih"].t() + h_in @ p["weight_hh"].t()  # (N, H)
        if "bias_ih" in p:
            a = a + p["bias_ih"] + p["bias_hh"]
        h = torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)
        return (h,), {}

    def workspace(self) -> Workspace:
        return RNNWorkspace(self.nonlinearity)

    def native_gates(self, ws: Tensor) -> dict[str, Tensor]:
        """A plain RNN has no gates (its native workspace holds h~_t)."""
        return {}


@register_cell(title="ReLU RNN")
class RNNRelu(RNNTanh):
    name = "rnn_relu"
    native_kernel = "rnn_relu"
    fused_mode = "RNN_RELU"
    nonlinearity = "relu"


class RNNWorkspace(Workspace):
    def __init__(self, nonlinearity: str):
        self.nonlinearity = nonlinearity

    def input_bias(self, p):
        return p["bias_ih"] + p["bias_hh"] if "bias_ih" in p else None

    def start(self, gi: Tensor, p, zero: bool) -> None:
        self.pre = gi  # (L, N, H): gi + b, then + h_in W_hh^T in place
        self.h = new_buffer(gi, zero, gi.shape)  # (L, N, H)

    def recurrent_buffer(self, t: int, bs: int) -> Tensor:
        return self.pre[t, :bs]

    def step(self, t, bs, h_prev, c_prev):
        h = self.h[t, :bs]
        if self.nonlinearity == "tanh":
            torch.tanh(self.pre[t, :bs], out=h)
        else:
            torch.clamp(self.pre[t, :bs], min=0, out=h)  # relu
        return h, None

    def hidden(self) -> Tensor:
        return self.h

    def prepare_backward(self, h_prev, c_prev) -> None:
        h = self.h
        # d act / d a, written in terms of the output: tanh' = 1 - h^2, relu' = [h > 0]
        self.dact = 1 - h * h if self.nonlinearity == "tanh" else (h > 0).to(h.dtype)  # (L, N, H)

    def allocate_gate_grads(self, zero: bool) -> None:
        self.d_pre = new_buffer(self.pre, zero, self.pre.shape)  # (L, N, H)

    def step_backward(self, t, bs, dh, dc):
        torch.mul(dh, self.dact[t, :bs], out=self.d_pre[t, :bs])
        return None, None

    def grad_input(self) -> Tensor:
        return self.d_pre

    def grad_recurrent(self) -> Tensor:
        return self.d_pre

    def grad_params(self, needs):
        if needs.get("bias_ih") or needs.get("bias_hh"):
            db = bias_sum(self.d_pre)
            return {"bias_ih": db, "bias_hh": db.clone()}
        return {}
