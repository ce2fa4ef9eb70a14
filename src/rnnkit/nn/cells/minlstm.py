r"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates read the input only.

    f_t = σ(x_t W_f^T + b_f)            i_t = σ(x_t W_i^T + b_i)          h̃_t = g(x_t W_h^T + b_h)
    f'_t = f_t / (f_t + i_t)            i'_t = i_t / (f_t + i_t)
    h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

with minGRU's g (``v + 0.5`` for v ≥ 0, ``σ(v)`` below). The normalised gates sum to one, so the state is a
running weighted average of the candidates and its scale does not depend on time. The recurrence is linear,
``a_t = f'_t``, ``b_t = i'_t ⊙ h̃_t``, so the scan engine computes a whole sequence at once. The fast paths
compute ``f'_t = σ(log σ(v_f) − log σ(v_i))`` (the same number: f / (f + i) = 1 / (1 + i / f)), which stays
finite where both gates underflow; the reference step states the equation as written above.

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
import torch.nn.functional as F
from torch import Tensor

from .base import Cell, ParamSpec, Workspace, bias_sum
from .mingru import g, g_inplace, g_slope
from .registry import register_cell


@register_cell
class MinLSTM(Cell):
    name = "minlstm"
    gate_names = ("forget", "input", "candidate")
    recurrent_weight = None
    forget_gate = ("bias_ih", 0)
    linear = True
    input_bias_name = "bias_ih"

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

    def workspace(self) -> Workspace:
        from ..engines.scan import LinearWorkspace  # here: the engines import the cells

        return LinearWorkspace(self)

    # --- the linear form, for the scan and step engines ---------------------------------------------------------
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``a = f'``, ``b = (1 − f') ⊙ h̃`` (L, N, H) from ``gi = x W_ih^T + b_ih`` (L, N, 3H), which is
        overwritten with [σ(−v_f); σ(−v_i); h̃] (what the backward pass needs) and kept."""
        H = self.hidden_size
        v_f, v_i, candidate = gi[..., :H], gi[..., H:2 * H], gi[..., 2 * H:]  # views: (L, N, H) each
        a = torch.sigmoid(F.logsigmoid(v_f) - F.logsigmoid(v_i))  # (L, N, H): f' = f / (f + i)
        positive = g_inplace(candidate)
        b = torch.mul(1 - a, candidate)  # (L, N, H): i' h̃
        v_f.neg_().sigmoid_()  # 1 − f = σ(−v_f)
        v_i.neg_().sigmoid_()  # 1 − i
        return a, b, (gi, positive, a)

    def linear_backward(self, saved, da: Tensor, db: Tensor, p: dict[str, Tensor]):
        """dL/d gi (L, N, 3H) and dL/d bias_ih from dL/da, dL/db, with d = log σ(v_f) − log σ(v_i), f' = σ(d):

            df' = da − db ⊙ h̃,    dd = df' ⊙ f' (1 − f'),    dv_f = dd ⊙ (1 − f),    dv_i = −dd ⊙ (1 − i)
            dh̃ = db ⊙ (1 − f'),    dv_h = dh̃ ⊙ g'(v_h)
        """
        gi, positive, forget = saved
        H = self.hidden_size
        not_f, not_i, candidate = gi[..., :H], gi[..., H:2 * H], gi[..., 2 * H:]
        input_ = 1 - forget  # (L, N, H): i'
        d_gi = torch.empty_like(gi)  # (L, N, 3H)
        dv_f, dv_i, dv_h = d_gi[..., :H], d_gi[..., H:2 * H], d_gi[..., 2 * H:]
        dd = torch.mul(db, candidate).neg_().add_(da).mul_(forget).mul_(input_)  # (L, N, H)
        torch.mul(dd, not_f, out=dv_f)
        torch.mul(dd, not_i, out=dv_i).neg_()
        torch.mul(db, input_, out=dv_h).mul_(g_slope(candidate, positive))
        grads = {"bias_ih": bias_sum(d_gi)} if "bias_ih" in p else {}
        return d_gi, grads

    def linear_gates(self, saved) -> dict[str, Tensor]:
        gi, _, forget = saved
        return {"forget": forget, "input": 1 - forget, "candidate": gi[..., 2 * self.hidden_size:]}
