r"""The base of the linear cells: ``h_t = a_t ⊙ h_{t-1} + b_t`` with a_t, b_t from x_t alone (minGRU, minLSTM,
RG-LRU).

A linear cell derives from :class:`LinearCell` and declares, besides its reference step:

    input_bias_name                          the bias added in the input projection gi = x W_in^T + bias
    linear_coefficients(gi, p)               -> (a, b, saved): a_t, b_t (L, N, H) for all steps; no autograd
    linear_backward(saved, dh, h_prev, p)    -> (dL/d(x W_in^T) (L, N, G), {parameter: gradient}), hand-written,
                                                from dh = dL/d(a_t h_{t-1} + b_t) (L, N, H), i.e. dL/db_t, and
                                                h_prev (sliceable by time: h_prev[s:e]), so that dL/da_t = dh_t h_{t-1}
    linear_gates(saved)                      -> {gate name: (L, N, H)}

The step engine (``engine="explicit"``) runs h_t = a_t h_{t-1} + b_t one step at a time in the
:class:`LinearWorkspace` that the base owns; the scan engine (``engine="scan"``) runs all steps at once. Both share
the cell's coefficients and their hand-written backward; the cell's reference step (autograd) is the oracle of both.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from .base import Cell, Workspace


class LinearCell(Cell):
    """A cell whose recurrence is linear in the state: no recurrent weight, gates from the input only."""

    linear = True
    recurrent_weight = None
    input_bias_name = "bias_ih"

    def workspace(self) -> Workspace:
        return LinearWorkspace(self)

    @abstractmethod
    def linear_coefficients(self, gi: Tensor, p: dict[str, Tensor]):
        """``(a, b, saved)`` for all steps from ``gi = x W_in^T + bias`` (L, N, G); no autograd."""

    @abstractmethod
    def linear_backward(self, saved, dh: Tensor, h_prev, p: dict[str, Tensor]):
        """``(dL/d gi (L, N, G), {parameter: gradient})`` from ``dh = dL/db_t`` and the previous states."""

    @abstractmethod
    def linear_gates(self, saved) -> dict[str, Tensor]:
        """The gates by name, each (L, N, H), from what :meth:`linear_coefficients` saved."""


class LinearWorkspace(Workspace):
    """The explicit (step) engine's workspace for any linear cell: one step at a time, ``h_t = a_t h_{t-1} + b_t``.

    The coefficients depend on the input only, so they are computed for all steps when the sequence starts
    (for generation, one step: O(1) memory per token). Backward: each step stores dL/dh_t and passes
    ``a_t dL/dh_t`` back to h_{t-1} (the ``direct`` path); then the cell's hand-written :meth:`linear_backward`
    takes all steps at once.
    """

    def __init__(self, cell):
        self.cell_type = cell
        self._grads = None

    def input_bias(self, p):
        return p.get(self.cell_type.input_bias_name)

    def start(self, gi: Tensor, p, zero: bool) -> None:
        self.p = p
        self.a, self.b, self.saved = self.cell_type.linear_coefficients(gi, p)  # (L, N, H) each
        # zeroed when rows can be padding, so that padded positions hold finite values for the backward pass
        self.h = self.b.new_zeros(self.b.shape) if zero else self.b.new_empty(self.b.shape)  # (L, N, H)

    def step(self, t, bs, h_prev, c_prev):
        return torch.addcmul(self.b[t, :bs], self.a[t, :bs], h_prev, out=self.h[t, :bs]), None

    def hidden(self) -> Tensor:
        return self.h

    def prepare_backward(self, h_prev: Tensor, c_prev: None) -> None:
        self.h_prev = h_prev  # (L, N, H): the state each step read

    def allocate_gate_grads(self, zero: bool) -> None:
        self.dh = self.h.new_zeros(self.h.shape) if zero else self.h.new_empty(self.h.shape)  # (L, N, H)
        self._grads = None

    def step_backward(self, t, bs, dh, dc):
        self.dh[t, :bs] = dh
        return self.a[t, :bs], None  # h_t = a_t h_{t-1} + b_t: a_t dh_t reaches h_{t-1} directly

    def _backward(self):
        if self._grads is None:
            self._grads = self.cell_type.linear_backward(self.saved, self.dh, self.h_prev, self.p)
        return self._grads

    def grad_input(self) -> Tensor:
        return self._backward()[0]

    def grad_params(self, needs) -> dict[str, Tensor]:
        return {name: g for name, g in self._backward()[1].items() if needs.get(name)}

    def gates(self) -> dict[str, Tensor]:
        return self.cell_type.linear_gates(self.saved)

