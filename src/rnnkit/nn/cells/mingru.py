r"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates read the input only.

    z_t = σ(x_t W_z^T + b_z)
    h̃_t = g(x_t W_h^T + b_h),        g(v) = v + 0.5 for v ≥ 0, σ(v) for v < 0
    h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

Nothing inside the step reads h_{t-1} except the final blend, so the recurrence is linear,
``h_t = a_t ⊙ h_{t-1} + b_t`` with ``a_t = 1 − z_t`` and ``b_t = z_t ⊙ h̃_t``, and the scan engine computes a
whole sequence at once. g keeps h̃ positive (so that the paper's log-space scan could take its logarithm) and
grows linearly, not saturating, for v ≥ 0.

Parameters per layer and direction: ``weight_ih`` (2H, In) and ``bias_ih`` (2H), rows ordered [z; h̃].
Gates in a trace: ``update`` (z_t) and ``candidate`` (h̃_t).

    >>> import torch, rnnkit.nn as rn
    >>> layer = rn.Recurrent("mingru", 4, 8, engine="scan")
    >>> output, h_n = layer(torch.randn(30, 2, 4))          # all 30 steps at once
    >>> output.shape, h_n.shape
    (torch.Size([30, 2, 8]), torch.Size([1, 2, 8]))
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Cell, ParamSpec, Workspace, bias_sum
from .registry import register_cell


def g(v: Tensor) -> Tensor:
    """minGRU's candidate activation: ``v + 0.5`` for v ≥ 0, ``σ(v)`` below (continuous at 0, always > 0)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def g_inplace(v: Tensor) -> Tensor:
    """``v ← g(v)`` in place; returns the mask ``v ≥ 0`` (where g' = 1), which the backward pass needs."""
    positive = v >= 0
    torch.where(positive, v + 0.5, torch.sigmoid(v), out=v)
    return positive


def g_slope(value: Tensor, positive: Tensor) -> Tensor:
    """g'(v) from g(v) and the mask v ≥ 0: 1 on the linear part, σ'(v) = g (1 − g) on the sigmoid part."""
    return torch.where(positive, 1.0, value * (1 - value))


@register_cell
class MinGRU(Cell):
    name = "mingru"
    gate_names = ("update", "candidate")
    recurrent_weight = None
    linear = True
    input_bias_name = "bias_ih"

    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        H = self.hidden_size
        return [ParamSpec("weight_ih", (2 * H, input_size)), ParamSpec("bias_ih", (2 * H,), bias=True)]

    def reference_step(self, p, x_t, state, h_in):
        (h_prev,) = state
        v = x_t @ p["weight_ih"].t()  # (N, 2H)
        if "bias_ih" in p:
            v = v + p["bias_ih"]
        v_z, v_h = v.chunk(2, 1)
        z = torch.sigmoid(v_z)  # (N, H)
        candidate = g(v_h)
        h = (1 - z) * h_prev + z * candidate
        return (h,), {"update": z, "candidate": candidate}

    def workspace(self) -> Workspace:
        from ..engines.scan import LinearWorkspace  # here: the engines import the cells

        return LinearWorkspace(self)

    # --- the linear form, for the scan and step engines ---------------------------------------------------------
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``a = 1 − z``, ``b = z ⊙ h̃`` (L, N, H) from ``gi = x W_ih^T + b_ih`` (L, N, 2H), which is overwritten
        with [a; h̃] and kept for the backward pass."""
        H = self.hidden_size
        a, candidate = gi[..., :H], gi[..., H:]  # views: (L, N, H) each
        positive = g_inplace(candidate)
        a.sigmoid_()  # z
        b = a * candidate  # (L, N, H): z h̃
        a.neg_().add_(1)  # 1 − z
        return a, b, (gi, positive)

    def linear_backward(self, saved, da: Tensor, db: Tensor, p: dict[str, Tensor]):
        """dL/d gi (L, N, 2H) and dL/d bias_ih from dL/da, dL/db:

            dz = db ⊙ h̃ − da,   dv_z = dz ⊙ z (1 − z)
            dh̃ = db ⊙ z,        dv_h = dh̃ ⊙ g'(v_h)
        """
        gi, positive = saved
        H = self.hidden_size
        a, candidate = gi[..., :H], gi[..., H:]
        z = 1 - a  # (L, N, H)
        d_gi = torch.empty_like(gi)  # (L, N, 2H)
        dv_z, dv_h = d_gi[..., :H], d_gi[..., H:]
        torch.mul(db, candidate, out=dv_z).sub_(da).mul_(z).mul_(a)
        torch.mul(db, z, out=dv_h).mul_(g_slope(candidate, positive))
        grads = {"bias_ih": bias_sum(d_gi)} if "bias_ih" in p else {}
        return d_gi, grads

    def linear_gates(self, saved) -> dict[str, Tensor]:
        gi, _ = saved
        H = self.hidden_size
        return {"update": 1 - gi[..., :H], "candidate": gi[..., H:]}
