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

from ..ops.chunks import time_chunks
from .base import ParamSpec, bias_sum
from .linear import LinearCell
from .registry import register_cell


def g(v: Tensor) -> Tensor:
    """minGRU's candidate activation as defined: ``v + 0.5`` for v ≥ 0, ``σ(v)`` below (continuous, always > 0)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def g_and_slope(v: Tensor) -> tuple[Tensor, Tensor]:
    """``(g(v), g'(v))`` by arithmetic alone, as contiguous tensors (``torch.where`` on a mask, and transcendental
    functions on strided views, run several times slower than this on CPU):

        s = σ(min(v, 0))                     σ(v) below 0, exactly 0.5 from 0 up
        g(v) = max(v, 0) + s
        g'(v) = max(s (1 − s), step)         step = clamp(floor(v) + 1, 0, 1): exactly 1 for v ≥ 0, 0 below
    """
    s = torch.clamp_max(v, 0).sigmoid_()
    value = torch.clamp_min(v, 0).add_(s)
    step = torch.floor(v).add_(1).clamp_(0, 1)
    return value, torch.maximum(s.mul_(1 - s), step)


@register_cell(title="minGRU")
class MinGRU(LinearCell):
    name = "mingru"
    native_kernel = "mingru"
    gate_names = ("update", "candidate")

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

    # --- the linear form, for the scan and step engines ---------------------------------------------------------
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``a = 1 − z``, ``b = z ⊙ h̃`` (L, N, H) from ``gi = x W_ih^T + b_ih`` (L, N, 2H). gi is kept for the
        backward pass, its z rows overwritten with a (a view of gi is returned as a)."""
        L, N, _ = gi.shape
        H = self.hidden_size
        b = gi.new_empty(L, N, H)
        for w in time_chunks(L, N * H, gi.device):
            v = gi[w]  # (T, N, 2H): [v_z; v_h]
            act = v.clone()
            act[..., H:].clamp_max_(0)
            act.sigmoid_()  # [z; σ(min(v_h, 0))]: one vectorised pass over contiguous memory
            z = act[..., :H]
            candidate = torch.clamp_min(v[..., H:], 0).add_(act[..., H:])  # h̃ = g(v_h)
            torch.mul(z, candidate, out=b[w])
            torch.sub(1, z, out=v[..., :H])  # a = 1 − z, kept in gi
        return gi[..., :H], b, gi

    def linear_backward(self, saved, dh: Tensor, h_prev, p: dict[str, Tensor]):
        """dL/d gi (L, N, 2H) and dL/d bias_ih from dh = dL/db (and dL/da = dh h_{t-1}):

            dz = dh ⊙ (h̃ − h_{t-1}),   dv_z = dz ⊙ z (1 − z)
            dh̃ = dh ⊙ z,               dv_h = dh̃ ⊙ g'(v_h)
        """
        gi = saved
        L, N, _ = gi.shape
        H = self.hidden_size
        d_gi = torch.empty_like(gi)  # (L, N, 2H)
        for w in time_chunks(L, N * H, gi.device):
            a = gi[w, :, :H]  # (T, N, H): 1 − z
            candidate, slope = g_and_slope(gi[w, :, H:])
            z = 1 - a
            torch.sub(candidate, h_prev[w], out=d_gi[w, :, :H]).mul_(dh[w]).mul_(z).mul_(a)
            torch.mul(dh[w], z, out=d_gi[w, :, H:]).mul_(slope)
        grads = {"bias_ih": bias_sum(d_gi)} if "bias_ih" in p else {}
        return d_gi, grads

    def linear_gates(self, saved) -> dict[str, Tensor]:
        H = self.hidden_size
        return {"update": 1 - saved[..., :H], "candidate": g(saved[..., H:])}
