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

from .base import Cell, ParamSpec, Workspace, bias_sum
from .registry import register_cell

C = 8.0  # Griffin's constant c: a_t = σ(Λ)^(c r_t)
DECAY_RANGE = (0.9, 0.999)  # a^c = σ(Λ)^c uniform in this range at initialisation


@register_cell
class RGLRU(Cell):
    name = "rglru"
    gate_names = ("recurrence", "input", "decay")
    recurrent_weight = None
    input_weight = "weight_in"
    linear = True
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

    def workspace(self) -> Workspace:
        from ..engines.scan import LinearWorkspace  # here: the engines import the cells

        return LinearWorkspace(self)

    # --- the linear form, for the scan and step engines ---------------------------------------------------------
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``a``, ``b = sqrt(1 − a²) ⊙ i ⊙ u`` (L, N, H) from ``u = gi = x W_in^T + b_in`` (L, N, H); both gates
        come from one matrix multiply of u with [W_a; W_x]."""
        L, N, H = gi.shape
        u = gi
        w = torch.cat([p["weight_a"], p["weight_x"]])  # (2H, H)
        u2 = u.reshape(L * N, H)
        if "bias_a" in p:
            gates = torch.addmm(torch.cat([p["bias_a"], p["bias_x"]]), u2, w.t())  # (L*N, 2H)
        else:
            gates = torch.mm(u2, w.t())
        gates = gates.view(L, N, 2 * H).sigmoid_()  # [r; i]
        r, i = gates[..., :H], gates[..., H:]
        log_a = r * (-C * F.softplus(-p["lambda"]))  # (L, N, H)
        a = torch.exp(log_a)
        scale = torch.expm1(log_a.mul_(2)).neg_().sqrt_()  # sqrt(1 − a²), in place of log a
        b = (i * u).mul_(scale)  # (L, N, H)
        return a, b, (u, gates, a, scale)

    def linear_backward(self, saved, da: Tensor, db: Tensor, p: dict[str, Tensor]):
        """dL/du (L, N, H), through both gates, and the other parameters' gradients from dL/da, dL/db:

            d(i u) = db ⊙ s,   ds = db ⊙ i u,   s = sqrt(1 − a²),  ds/d log a = −a² / s
            d log a = a ⊙ (da − ds ⊙ a / s)         (0 where s = 0, a = 1: r or softplus(−Λ) underflowed)
            dv_a = d log a ⊙ (−c softplus(−Λ)) ⊙ r (1 − r),      dv_i = d(i u) ⊙ u ⊙ i (1 − i)
            du = d(i u) ⊙ i + [dv_a, dv_i] [W_a; W_x],           dΛ = c σ(−Λ) Σ_{t,n} d log a ⊙ r
        """
        u, gates, a, scale = saved
        L, N, H = u.shape
        r, i = gates[..., :H], gates[..., H:]
        d_iu = db * scale  # (L, N, H)
        ratio = torch.where(scale > 0, a / scale, 0.0)
        d_log_a = torch.mul(db, i).mul_(u).mul_(ratio).neg_().add_(da).mul_(a)  # (L, N, H)
        d_gates = torch.empty_like(gates)  # (L, N, 2H): dL/d [u W_a^T + b_a; u W_x^T + b_x]
        torch.mul(d_log_a, -C * F.softplus(-p["lambda"]), out=d_gates[..., :H]).mul_(r).mul_(1 - r)
        torch.mul(d_iu, u, out=d_gates[..., H:]).mul_(i).mul_(1 - i)
        w = torch.cat([p["weight_a"], p["weight_x"]])  # (2H, H)
        dg2 = d_gates.view(L * N, 2 * H)
        du = torch.addmm((d_iu * i).view(L * N, H), dg2, w).view(L, N, H)  # (L, N, H)
        dw = torch.mm(dg2.t(), u.reshape(L * N, H))  # (2H, H)
        grads = {"weight_a": dw[:H], "weight_x": dw[H:],
                 "lambda": torch.sigmoid(-p["lambda"]) * C * (d_log_a * r).reshape(L * N, H).sum(0)}
        if "bias_in" in p:
            db_gates = bias_sum(d_gates)  # (2H,)
            grads.update(bias_in=bias_sum(du), bias_a=db_gates[:H], bias_x=db_gates[H:])
        return du, grads

    def linear_gates(self, saved) -> dict[str, Tensor]:
        u, gates, a, _ = saved
        H = u.shape[2]
        return {"recurrence": gates[..., :H], "input": gates[..., H:], "decay": a}
