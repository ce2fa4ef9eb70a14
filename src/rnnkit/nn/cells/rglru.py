r"""RG-LRU, the Real-Gated Linear Recurrent Unit of Griffin and Hawk (De et al. 2024), with an input projection so
that the input size may differ from H:

    u_t = x_t W_in^T + b_in
    r_t = σ(u_t W_a^T + b_a)                      recurrence gate
    i_t = σ(u_t W_x^T + b_x)                      input gate
    log a_t = −c · r_t ⊙ softplus(−Λ),  c = 8     so a_t = σ(Λ)^(c r_t), in (0, 1)
    h_t = a_t ⊙ h_{t-1} + sqrt(1 − a_t²) ⊙ (i_t ⊙ u_t)

The gates read the input only, so the recurrence is linear (``b_t = sqrt(1 − a_t²) ⊙ i_t ⊙ u_t``, signed) and
the scan engine computes a whole sequence at once. ``sqrt(1 − a²)`` keeps the state's scale near the input's
whatever the decay. Λ is initialised so that ``a^c = σ(Λ)^c`` is uniform in [0.9, 0.999], Griffin's choice: slow
decays, a long memory from the start. The fast paths compute ``1 − a² = −expm1(2 log a)``, exact where a is
close to 1.

Parameters per layer and direction: ``weight_in`` (H, In), ``bias_in`` (H), ``weight_a`` (H, H), ``bias_a`` (H),
``weight_x`` (H, H), ``bias_x`` (H), ``lambda`` (H; present with ``bias=False`` too). Gates in a trace:
``recurrence`` (r_t), ``input`` (i_t) and ``decay`` (a_t).

    >>> import torch, rnnkit.nn as rn
    >>> layer = rn.Recurrent("rglru", 4, 8, engine="scan")
    >>> output, h_n = layer(torch.randn(30, 2, 4))
    >>> output.shape, h_n.shape
    (torch.Size([30, 2, 8]), torch.Size([1, 2, 8]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.chunks import time_chunks
from ..ops.linear import linear_rows
from .base import ParamSpec, bias_sum
from .linear import LinearCell
from .registry import register_cell

C = 8.0  # Griffin's constant c: a_t = σ(Λ)^(c r_t)
DECAY_RANGE = (0.9, 0.999)  # a^c = σ(Λ)^c uniform in this range at initialisation


@register_cell(title="RG-LRU")
class RGLRU(LinearCell):
    name = "rglru"
    native_kernel = "rglru"
    gate_names = ("recurrence", "input", "decay")
    input_weight = "weight_in"
    input_bias_name = "bias_in"

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_in", (H, input_size)), ParamSpec("bias_in", (H,), bias=True),
                ParamSpec("weight_a", (H, H)), ParamSpec("bias_a", (H,), bias=True),
                ParamSpec("weight_x", (H, H)), ParamSpec("bias_x", (H,), bias=True),
                ParamSpec("lambda", (H,), init="rglru_lambda")]

    def init_parameter(self, spec: ParamSpec, tensor: Tensor) -> None:
        if spec.init != "rglru_lambda":
            return super().init_parameter(spec, tensor)
        # σ(Λ)^c = u, u ~ U(0.9, 0.999)  =>  Λ = logit(u^(1/c))
        tensor.uniform_(*DECAY_RANGE).pow_(1 / C).logit_()

    def reference_step(self, p, x_t, state, h_in):
        (h_prev,) = state
        u = x_t @ p["weight_in"].t()  # (N, H)
        if "bias_in" in p:
            u = u + p["bias_in"]
        v_a, v_x = u @ p["weight_a"].t(), u @ p["weight_x"].t()
        if "bias_a" in p:
            v_a, v_x = v_a + p["bias_a"], v_x + p["bias_x"]
        r, i = torch.sigmoid(v_a), torch.sigmoid(v_x)
        log_a = -C * r * F.softplus(-p["lambda"])
        a = torch.exp(log_a)
        h = a * h_prev + torch.sqrt(1 - a * a) * (i * u)
        return (h,), {"recurrence": r, "input": i, "decay": a}

    # --- the linear form, for the scan and step engines ---------------------------------------------------------
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``a``, ``b = sqrt(1 − a²) ⊙ i ⊙ u`` (L, N, H) from ``u = gi = x W_in^T + b_in`` (L, N, H); both gates
        come from one matrix multiply of u with [W_a; W_x]. Kept for the backward pass: u, [r; i] and a."""
        L, N, H = gi.shape
        u = gi
        w = torch.cat([p["weight_a"], p["weight_x"]])  # (2H, H)
        bias = torch.cat([p["bias_a"], p["bias_x"]]) if "bias_a" in p else None
        gates = linear_rows(u.reshape(L * N, H), w, bias).view(L, N, 2 * H)  # [u W_a^T + b_a; u W_x^T + b_x]
        rate = -C * F.softplus(-p["lambda"])  # (H,): log a = rate r
        a, b = u.new_empty(L, N, H), u.new_empty(L, N, H)
        for s in time_chunks(L, N * H, u.device):
            act = gates[s].sigmoid_()  # (T, N, 2H): [r; i], one vectorised pass over contiguous memory
            log_a = torch.mul(act[..., :H], rate, out=a[s])
            scale = torch.expm1(log_a * 2).neg_().sqrt_()  # sqrt(1 − a²)
            log_a.exp_()  # a
            torch.mul(act[..., H:], u[s], out=b[s]).mul_(scale)
        return a, b, (u, gates, a)

    def linear_backward(self, saved, dh: Tensor, h_prev, p: dict[str, Tensor]):
        """dL/du (L, N, H), through both gates, and the other parameters' gradients from dh = dL/db
        (dL/da = dh h_{t-1}), with s = sqrt(1 − a²) and ds/d log a = −a² / s:

            d(i u) = dh ⊙ s,   d log a = dh ⊙ a ⊙ (h_{t-1} − i u a / s)   (a / s taken as 0 where s = 0, a = 1)
            dv_a = d log a ⊙ (−c softplus(−Λ)) ⊙ r (1 − r),      dv_i = d(i u) ⊙ u ⊙ i (1 − i)
            du = d(i u) ⊙ i + [dv_a, dv_i] [W_a; W_x],           dΛ = c σ(−Λ) Σ_{t,n} d log a ⊙ r

        a / s is computed as a s / (s² + tiny): the same number wherever s² is a normal float, 0 at s = 0.
        """
        u, gates, a = saved
        L, N, H = u.shape
        rate = -C * F.softplus(-p["lambda"])  # (H,)
        tiny = torch.finfo(u.dtype).tiny
        d_gates = torch.empty_like(gates)  # (L, N, 2H): dL/d [u W_a^T + b_a; u W_x^T + b_x]
        du = torch.empty_like(u)  # (L, N, H)
        d_rate = u.new_zeros(H)  # Σ_{t,n} d log a ⊙ r
        for s in time_chunks(L, N * H, u.device):
            r, i, a_s, u_s, dh_s = gates[s, :, :H], gates[s, :, H:], a[s], u[s], dh[s]  # (T, N, H)
            scale = torch.expm1(r * (2 * rate)).neg_().sqrt_()  # sqrt(1 − a²), recomputed exactly from r
            ratio = torch.mul(a_s, scale).div_(scale * scale + tiny)  # a / s
            iu = i * u_s
            d_log_a = iu.mul_(ratio).neg_().add_(h_prev[s]).mul_(dh_s).mul_(a_s)
            d_rate += (d_log_a * r).sum((0, 1))
            torch.mul(d_log_a, rate, out=d_gates[s, :, :H]).mul_(r).mul_(1 - r)
            d_iu = dh_s * scale
            torch.mul(d_iu, u_s, out=d_gates[s, :, H:]).mul_(i).mul_(1 - i)
            torch.mul(d_iu, i, out=du[s])
        w = torch.cat([p["weight_a"], p["weight_x"]])  # (2H, H)
        dg2 = d_gates.view(L * N, 2 * H)
        du.view(L * N, H).add_(linear_rows(dg2, w.t()))  # the gates' path back to u
        dw = torch.mm(dg2.t(), u.reshape(L * N, H))  # (2H, H)
        # log a = −c r softplus(−Λ): d log a / dΛ = c r σ(−Λ)
        grads = {"weight_a": dw[:H], "weight_x": dw[H:], "lambda": torch.sigmoid(-p["lambda"]) * C * d_rate}
        if "bias_in" in p:
            db_gates = bias_sum(d_gates)  # (2H,)
            grads.update(bias_in=bias_sum(du), bias_a=db_gates[:H], bias_x=db_gates[H:])
        return du, grads

    def linear_gates(self, saved) -> dict[str, Tensor]:
        u, gates, a = saved
        H = u.shape[2]
        return {"recurrence": gates[..., :H], "input": gates[..., H:], "decay": a}
