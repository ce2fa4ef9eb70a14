r"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates read the input only.

    f_t = σ(x_t W_f^T + b_f)            i_t = σ(x_t W_i^T + b_i)          h̃_t = g(x_t W_h^T + b_h)
    f'_t = f_t / (f_t + i_t)            i'_t = i_t / (f_t + i_t)
    h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

with minGRU's g (``v + 0.5`` for v ≥ 0, ``σ(v)`` below). The normalised gates sum to one, so the state is a
running weighted average of the candidates and its scale does not depend on time. The recurrence is linear,
``a_t = f'_t``, ``b_t = i'_t ⊙ h̃_t``, so the scan engine computes a whole sequence at once. The fast paths
keep the ratio finite where both gates underflow (see :meth:`MinLSTM.linear_coefficients`); the reference step
states the equations as written above.

Parameters per layer and direction: ``weight_ih`` (3H, In) and ``bias_ih`` (3H), rows ordered [f; i; h̃].
Gates in a trace: ``forget`` (f'_t), ``input`` (i'_t), the normalised gates that weigh the state, and
``candidate`` (h̃_t). ``forget_bias`` adds to b_f.

    >>> import torch, rnnkit.nn as rn
    >>> layer = rn.Recurrent("minlstm", 4, 8, num_layers=2, engine="scan")
    >>> output, h_n = layer(torch.randn(30, 2, 4))
    >>> output.shape, h_n.shape
    (torch.Size([30, 2, 8]), torch.Size([2, 2, 8]))
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.chunks import time_chunks
from .base import ParamSpec, bias_sum
from .linear import LinearCell
from .mingru import g, g_and_slope
from .registry import register_cell


@register_cell(title="minLSTM")
class MinLSTM(LinearCell):
    name = "minlstm"
    native_kernel = "minlstm"
    gate_names = ("forget", "input", "candidate")
    forget_gate = ("bias_ih", 0)

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (3 * H, input_size)), ParamSpec("bias_ih", (3 * H,), bias=True)]

    def reference_step(self, p, x_t, state, h_in):
        (h_prev,) = state
        v = x_t @ p["weight_ih"].t()  # (N, 3H)
        if "bias_ih" in p:
            v = v + p["bias_ih"]
        v_f, v_i, v_h = v.chunk(3, 1)
        f, i = torch.sigmoid(v_f), torch.sigmoid(v_i)  # (N, H)
        forget, input_ = f / (f + i), i / (f + i)
        candidate = g(v_h)
        h = forget * h_prev + input_ * candidate
        return (h,), {"forget": forget, "input": input_, "candidate": candidate}

    # --- the linear form, for the scan and step engines ---------------------------------------------------------
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``a = f'``, ``b = (1 − f') ⊙ h̃`` (L, N, H) from ``gi = x W_ih^T + b_ih`` (L, N, 3H). gi is kept for the
        backward pass with its f and i rows overwritten by 1 − f and 1 − i. ``f' = (f + ε) / (f + i + 2ε)`` with
        ε the smallest normal float: the same number wherever f or i is a normal float, and 1/2 rather than 0/0
        where both underflow (pre-activations below about −87 in float32)."""
        L, N, _ = gi.shape
        H = self.hidden_size
        a, b = gi.new_empty(L, N, H), gi.new_empty(L, N, H)
        tiny = torch.finfo(gi.dtype).tiny
        for w in time_chunks(L, N * H, gi.device):
            v = gi[w]  # (T, N, 3H): [v_f; v_i; v_h]
            act = v.clone()
            act[..., 2 * H:].clamp_max_(0)
            act.sigmoid_()  # [f; i; σ(min(v_h, 0))]: one vectorised pass over contiguous memory
            f, i = act[..., :H], act[..., H:2 * H]
            forget = torch.div(f + tiny, (f + i).add_(2 * tiny), out=a[w])  # f' = f / (f + i)
            candidate = torch.clamp_min(v[..., 2 * H:], 0).add_(act[..., 2 * H:])  # h̃ = g(v_h)
            torch.mul(1 - forget, candidate, out=b[w])  # i' h̃
            torch.sub(1, act[..., :2 * H], out=v[..., :2 * H])  # 1 − f, 1 − i, kept in gi
        return a, b, (gi, a)

    def linear_backward(self, saved, dh: Tensor, h_prev, p: dict[str, Tensor]):
        """dL/d gi (L, N, 3H) and dL/d bias_ih from dh = dL/db (dL/da = dh h_{t-1}), with f' = f / (f + i), so
        df'/dv_f = f' i' (1 − f) and df'/dv_i = −f' i' (1 − i):

            df' = dh ⊙ (h_{t-1} − h̃),  dd = df' ⊙ f' i',  dv_f = dd ⊙ (1 − f),  dv_i = −dd ⊙ (1 − i)
            dh̃ = dh ⊙ (1 − f'),         dv_h = dh̃ ⊙ g'(v_h)
        """
        gi, a = saved
        L, N, _ = gi.shape
        H = self.hidden_size
        d_gi = torch.empty_like(gi)  # (L, N, 3H)
        for w in time_chunks(L, N * H, gi.device):
            forget = a[w]  # (T, N, H)
            input_ = 1 - forget
            candidate, slope = g_and_slope(gi[w, :, 2 * H:])
            dd = torch.sub(h_prev[w], candidate).mul_(dh[w]).mul_(forget).mul_(input_)
            torch.mul(dd, gi[w, :, :H], out=d_gi[w, :, :H])
            torch.mul(dd, gi[w, :, H:2 * H], out=d_gi[w, :, H:2 * H]).neg_()
            torch.mul(dh[w], input_, out=d_gi[w, :, 2 * H:]).mul_(slope)
        grads = {"bias_ih": bias_sum(d_gi)} if "bias_ih" in p else {}
        return d_gi, grads

    def linear_gates(self, saved) -> dict[str, Tensor]:
        gi, a = saved
        return {"forget": a, "input": 1 - a, "candidate": g(gi[..., 2 * self.hidden_size:])}
