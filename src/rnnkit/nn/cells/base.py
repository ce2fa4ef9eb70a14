r"""The cell protocol: everything a recurrent layer needs to know about one cell type.

A cell type is one file under ``rnnkit/nn/cells/`` holding a subclass of :class:`Cell` that declares

* its **parameters**: :meth:`Cell.parameter_specs` gives their names, shapes and initialisation for one
  layer in one direction (the layer appends torch.nn's suffixes ``_l{k}`` / ``_l{k}_reverse``);
* its **state**: ``h`` alone, or ``h`` and ``c`` (``has_cell_state``), and their sizes;
* its **gate names**, the keys of ``Trace.gates``;
* its **step equations, written once as plain differentiable torch code**:
  :meth:`Cell.reference_step`. This is the *reference path*: the oracle every fast path is tested
  against, and what a double backward (``create_graph=True``) differentiates;
* for the explicit engine, a **workspace** (:class:`Workspace`): the same equations run in place over
  preallocated buffers, with a hand-written backward step.

The explicit engine (:mod:`rnnkit.nn.engines.explicit`) does the parts every cell shares: the input
projection of all L steps as one matrix multiply, ``gi = x W_in^T (+ bias)``; per step the recurrent
product ``gh_t = h_{t-1} W_hh^T``, added by the engine into the buffer the workspace names; the
regularisers that act between steps (recurrent dropout, zoneout); truncation; packed lengths; and the
weight gradients, each one matrix multiply over all L*N rows at the end. The workspace does the rest.

A *linear* cell (``linear = True``: h_t = a_t ⊙ h_{t-1} + b_t with a_t, b_t from x_t alone, as minGRU, minLSTM,
RG-LRU) declares instead of its own workspace the pieces the scan engine and the step engine
(:mod:`rnnkit.nn.engines.scan`) share: ``input_bias_name`` (the bias in gi = x W_in^T + bias),
``linear_coefficients(gi, p) -> (a, b, saved)`` for all steps at once, the hand-written
``linear_backward(saved, dh, h_prev, p) -> (dL/d(x W_in^T), {parameter: gradient})`` given dh = dL/db_t (so that
dL/da_t = dh_t ⊙ h_{t-1}), and ``linear_gates(saved)`` for ``trace``.

Recurrent dropout multiplies h_{t-1} by a fixed mask *where it enters W_hh* only: a cell's direct
paths (the GRU's ``z * h_{t-1}``) read the unmasked state. That is why :meth:`Cell.reference_step`
gets both the state and ``h_in``, the (possibly masked) h_{t-1} that meets ``W_hh``.

Shape letters: L steps, N rows (sorted by decreasing length when lengths differ, so the rows alive at
step t are ``[:bs]``), In input size, H hidden size, P the size of h (``proj_size`` or H), G the width
of the gate block (``num_gates * H``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of one layer in one direction.

    Attributes:
        name: the base name, e.g. ``"weight_ih"``; the layer registers ``weight_ih_l0``,
            ``weight_ih_l0_reverse``, ... as torch.nn does.
        shape: its shape.
        init: ``"uniform"`` (torch.nn's U(-1/sqrt(H), 1/sqrt(H))), ``"ones"``, ``"zeros"``, or a name the
            cell's :meth:`Cell.init_parameter` handles itself.
        bias: True when the parameter exists only with ``bias=True``.
    """

    name: str
    shape: tuple[int, ...]
    init: str = "uniform"
    bias: bool = False


def layer_norm_specs(prefix: str, size: int) -> list[ParamSpec]:
    """A layer norm's gain (initialised to 1) and bias (to 0), named ``{prefix}_weight`` and ``{prefix}_bias``."""
    return [ParamSpec(f"{prefix}_weight", (size,), "ones"), ParamSpec(f"{prefix}_bias", (size,), "zeros")]


def new_buffer(like: Tensor, zero: bool, *shape) -> Tensor:
    """A buffer of ``like``'s dtype and device; zeroed when rows can be padding (variable lengths),
    so that padded positions hold finite values that a vectorised backward multiplies by 0."""
    return like.new_zeros(*shape) if zero else like.new_empty(*shape)


LN_EPS = 1e-5  # the layer norms' epsilon, as torch.nn.LayerNorm's
# PyTorch's fused layer-norm kernels, for workspaces: (y, mean, rstd) = forward(x, shape, weight, bias, eps) and
# (dx, dweight, dbias) = backward(dy, x, shape, mean, rstd, weight, bias, which gradients)
ln_forward = torch.native_layer_norm
ln_backward = torch.ops.aten.native_layer_norm_backward


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = LN_EPS) -> Tensor:
    """Layer normalisation over the last dimension: ``(x - mean) / sqrt(var + eps) * weight + bias``."""
    return torch.nn.functional.layer_norm(x, x.shape[-1:], weight, bias, eps)


class Cell(ABC):
    """One cell type, configured for a hidden size. Subclass it in one file and register it by name.

    Class attributes a cell declares:
        name: the registry name (``"lstm"``). title: how plots and tables name it (``"LSTM"``; set by
            ``@register_cell(title=...)``).
        gate_names: names of the per-step gate activations reported by ``trace``.
        has_cell_state: True when the state is (h, c), as in an LSTM.
        fused_mode: the torch kernel that computes this cell (``"LSTM"``, ``"GRU"``, ``"RNN_TANH"``,
            ``"RNN_RELU"``), or None when only rnnkit's engines can.
        input_weight: the parameter that projects x_t (``"weight_ih"``).
        recurrent_weight: the matrix that multiplies h_{t-1} (``"weight_hh"``), which weight drop masks
            and recurrent dropout feeds; None when the cell has none.
        forget_gate: ``(bias parameter, gate block index)`` that ``forget_bias`` adds to, or None.
        linear: True when h_t = a_t * h_{t-1} + b_t with a_t, b_t depending on x_t only (scan engine).
        native_kernel: the name of the cell's kernel in the native engine's C++ extension
            (``rnnkit/nn/native/``), or None: the cell then runs on the explicit engine, so a cell needs no C++.

    Args:
        hidden_size: H.
        bias: whether the cell has bias parameters.
        proj_size: P < H projects h_t (LSTM family; 0 = no projection).
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    gate_names: ClassVar[tuple[str, ...]] = ()
    has_cell_state: ClassVar[bool] = False
    fused_mode: ClassVar[str | None] = None
    input_weight: ClassVar[str] = "weight_ih"
    recurrent_weight: ClassVar[str | None] = "weight_hh"
    forget_gate: ClassVar[tuple[str, int] | None] = None
    linear: ClassVar[bool] = False
    supports_projection: ClassVar[bool] = False
    native_kernel: ClassVar[str | None] = None

    def __init__(self, hidden_size: int, bias: bool = True, proj_size: int = 0):
        if proj_size and not self.supports_projection:
            raise ValueError(f"proj_size is supported by the LSTM cell only, not by {self.name!r}; use proj_size=0")
        self.hidden_size = hidden_size
        self.bias = bias
        self.proj_size = proj_size

    @property
    def output_size(self) -> int:
        """P, the size of h_t (and of the layer's output per direction)."""
        return self.proj_size or self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        """Sizes of the state's parts: ``(P,)`` or ``(P, H)`` with a cell state."""
        return (self.output_size, self.hidden_size) if self.has_cell_state else (self.output_size,)

    @abstractmethod
    def parameter_specs(self, input_size: int) -> list[ParamSpec]:
        """The parameters of one layer in one direction whose input has ``input_size`` features, in
        registration (``state_dict``) order. Bias parameters are listed whatever ``self.bias`` says."""

    def active_specs(self, input_size: int) -> list[ParamSpec]:
        """:meth:`parameter_specs` without the bias parameters when ``bias=False``."""
        return [s for s in self.parameter_specs(input_size) if self.bias or not s.bias]

    def init_parameter(self, spec: ParamSpec, tensor: Tensor) -> None:
        """Initialise one parameter in place (called under ``torch.no_grad``)."""
        if spec.init == "uniform":
            bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
            tensor.uniform_(-bound, bound)
        elif spec.init == "ones":
            tensor.fill_(1.0)
        elif spec.init == "zeros":
            tensor.zero_()
        else:
            raise ValueError(f"cell {self.name!r} declares an unknown initialisation {spec.init!r}")

    @abstractmethod
    def reference_step(self, p: dict[str, Tensor], x_t: Tensor, state: tuple[Tensor, ...],
                       h_in: Tensor) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """One step as plain differentiable torch code.

        Args:
            p: this layer-direction's parameters by base name (``p["weight_hh"]``); absent biases are
                missing from the dict.
            x_t: (N, In) the input at step t.
            state: ``(h_{t-1},)`` or ``(h_{t-1}, c_{t-1})``, (N, P) and (N, H).
            h_in: (N, P) h_{t-1} as it enters the recurrent weight (after recurrent dropout).

        Returns:
            ``(new_state, gates)``: the state at step t (same structure) and the gate activations by
            name, each (N, H).
        """

    @abstractmethod
    def workspace(self) -> Workspace:
        """A fresh :class:`Workspace` for one sequence on the explicit engine."""


class Workspace(ABC):
    r"""The buffers of one sequence on the explicit engine, and the step equations run over them.

    The engine calls, in order: :meth:`input_bias`, :meth:`start`; per step t (the rows alive
    ``[:bs]``) it adds ``h_in W_hh^T`` into :meth:`recurrent_buffer` and calls :meth:`step`. Backward:
    :meth:`prepare_backward` once, :meth:`allocate_gate_grads`, :meth:`step_backward` from t = L-1 down
    to 0, then :meth:`grad_input`, :meth:`grad_recurrent` and :meth:`grad_params`.
    """

    def input_bias(self, p: dict[str, Tensor]) -> Tensor | None:
        """The bias added in the input projection ``x W_in^T + bias`` for all steps at once (None: none)."""
        return None

    @abstractmethod
    def start(self, gi: Tensor, p: dict[str, Tensor], zero: bool) -> None:
        """Take the input projection gi (L, N, G) and allocate the sequence's buffers."""

    def recurrent_buffer(self, t: int, bs: int) -> Tensor:
        """(bs, G): where the engine adds ``h_in W_hh^T`` for step t before :meth:`step`."""
        raise TypeError(f"{type(self).__name__} has no recurrent weight: the engine never asks it for one")

    @abstractmethod
    def step(self, t: int, bs: int, h_prev: Tensor, c_prev: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The forward equations for rows ``[:bs]`` of step t; returns (h~_t, c~_t) (views of buffers:
        the engine may copy them, never write into them)."""

    @abstractmethod
    def hidden(self) -> Tensor:
        """(L, N, H): every h~_t as computed by :meth:`step` (before projection and zoneout)."""

    def cell(self) -> Tensor | None:
        """(L, N, H): every c~_t, or None."""
        return None

    @abstractmethod
    def prepare_backward(self, h_prev: Tensor, c_prev: Tensor | None) -> None:
        """Precompute what the backward steps need, vectorised over time.

        ``h_prev`` (L, N, P) and ``c_prev`` (L, N, H) are the states each step actually read (after zoneout)."""

    @abstractmethod
    def allocate_gate_grads(self, zero: bool) -> None:
        """Allocate the per-step gradient buffers."""

    @abstractmethod
    def step_backward(self, t: int, bs: int, dh: Tensor, dc: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """Given dL/dh~_t (bs, H) and dL/dc~_t (bs, H, may be updated in place), write step t's gate
        gradients and return ``(direct, dc_prev)``: the factor by which dh~_t reaches h_{t-1} other than
        through W_hh (None when there is no such path) and dL/dc_{t-1} (None without a cell state)."""

    def grad_input(self) -> Tensor:
        """(L, N, G): dL/d(x W_in^T), the gradient of the input projection before its bias. A workspace gives
        it whole here, or by blocks of steps through :meth:`grad_input_chunk` instead."""
        raise TypeError(f"{type(self).__name__} gives dL/d(x W_in^T) by blocks of steps: use grad_input_chunk")

    # A workspace may instead give that gradient a block of steps at a time (so that no (L, N, G) temporary
    # is needed), recomputing what it did not keep from ``project(t0, t1) = x[t0:t1] W_in^T``:
    input_chunk_steps: int | None = None  # steps per block; None: all L at once, from grad_input()
    reuses_buffers = False  # True when the backward writes gradients over the forward's buffers (once only)
    # False: prepare_backward gets the previous states as ``states[t, rows]`` accessors rather than (L, N, ·) copies
    whole_previous_states = True

    def grad_input_chunk(self, t0: int, t1: int, project) -> Tensor:
        """(t1 - t0, N, G): dL/d(x W_in^T) for steps [t0, t1); ``project(t0, t1)`` recomputes x W_in^T there."""
        return self.grad_input()[t0:t1]

    def grad_recurrent(self) -> Tensor:
        """(L, N, G): dL/d(h_in W_hh^T) for every step (as written by :meth:`step_backward`)."""
        raise TypeError(f"{type(self).__name__} has no recurrent weight: the engine never asks it for one")

    def grad_params(self, needs: dict[str, bool]) -> dict[str, Tensor]:
        """Gradients of the cell's other parameters (biases, norms) named in ``needs`` as True."""
        return {}

    def gates(self) -> dict[str, Tensor]:
        """The per-step gate activations by name, each (L, N, H)."""
        return {}


def bias_sum(d: Tensor) -> Tensor:
    """The gradient of a bias broadcast over (L, N): the sum over both."""
    return d.reshape(-1, d.shape[-1]).sum(0)
