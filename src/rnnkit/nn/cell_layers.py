r"""Single-step cells with torch.nn's interface: ``RNNCell``, ``LSTMCell``, ``GRUCell``.

They subclass the torch.nn cells (same arguments, parameter names ``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``, initialisation, input checks and returns) and add
``engine="fused"|"explicit"``. The explicit engine runs the cell's step equations from the registry
(:mod:`rnnkit.nn.cells`) as a sequence of length 1, so a cell's backward pass is the same hand-written
BPTT as the layers'.

Shapes: input (N, H_in) or (H_in,); hx (N, H) or (H,); LSTM returns (h', c').
"""

from __future__ import annotations

from torch import Tensor, nn

from .cells import get_cell
from .engines.explicit import RecurrentSequenceFunction, SequenceRun

CELL_ENGINES = ("fused", "explicit")


class RecurrentCell:
    """What rnnkit adds to torch.nn's cells; mixed in before the torch.nn class."""

    cell_name: str

    def __init__(self, *args, engine: str = "fused", **kwargs):
        super().__init__(*args, **kwargs)
        if engine not in CELL_ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose 'fused' (PyTorch kernels) or 'explicit' (rnnkit BPTT)")
        self.engine = engine
        self.cell = get_cell(self._cell_name())(self.hidden_size, bias=self.bias)

    def _cell_name(self) -> str:
        return self.cell_name

    def extra_repr(self) -> str:
        return super().extra_repr() + f", engine={self.engine!r}"

    def forward(self, input: Tensor, hx=None):
        if self.engine == "fused":
            return super().forward(input, hx)
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.dtype != self.weight_ih.dtype:
            raise ValueError(f"{name} input dtype ({input.dtype}) does not match weight dtype "
                             f"({self.weight_ih.dtype}); convert input: input.to({self.weight_ih.dtype})")
        # torch.nn's words for the same mistakes (its cells check these in C++)
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(-1)} expected {self.input_size}")
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)  # (N, H_in)
        states = self._states(x, hx, is_batched, name)
        p = {name: getattr(self, name) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
             if getattr(self, name) is not None}
        run = SequenceRun(self.cell, tuple(p))
        result = RecurrentSequenceFunction.apply(run, x.unsqueeze(0), states[0],
                                                 states[1] if len(states) > 1 else None, *p.values())
        new = result[1:3] if self.cell.has_cell_state else result[1:2]  # h_n (and c_n): (N, H)
        if not is_batched:
            new = tuple(s.squeeze(0) for s in new)
        return new if self.cell.has_cell_state else new[0]

    def _states(self, x: Tensor, hx, is_batched: bool, name: str) -> tuple[Tensor, ...]:
        N = x.shape[0]
        if hx is None:
            zeros = x.new_zeros(N, self.hidden_size)
            return (zeros, zeros) if self.cell.has_cell_state else (zeros,)
        states = (hx,) if isinstance(hx, Tensor) else tuple(hx)
        want = 2 if is_batched else 1
        for s in states:
            if s.dim() != want:
                raise ValueError(f"{name}: Expected hidden to be {want}D for {want}D input, got {s.dim()}D instead")
            if s.dtype != x.dtype:
                raise ValueError(f"hx dtype ({s.dtype}) does not match input dtype ({x.dtype}); convert it: hx.to({x.dtype})")
        if not is_batched:
            states = tuple(s.unsqueeze(0) for s in states)
        for k, s in enumerate(states):
            if s.shape[0] != N:
                raise RuntimeError(f"Input batch size {N} doesn't match hidden{k} batch size {s.shape[0]}")
            if s.shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{k} has inconsistent hidden_size: got {s.shape[1]}, expected "
                                   f"{self.hidden_size}")
        return states


class RNNCell(RecurrentCell, nn.RNNCell):
    r"""``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu); torch.nn.RNNCell plus ``engine``.

    Example::

        >>> cell = RNNCell(10, 20, engine="explicit")
        >>> h = cell(torch.randn(3, 10))                     # (N=3, H=20)
    """

    def _cell_name(self) -> str:
        return "rnn_tanh" if self.nonlinearity == "tanh" else "rnn_relu"


class LSTMCell(RecurrentCell, nn.LSTMCell):
    r"""One LSTM step (gates i, f, g, o; see :class:`rnnkit.nn.LSTM`); torch.nn.LSTMCell plus ``engine``.

    Example::

        >>> cell = LSTMCell(10, 20, engine="explicit")
        >>> h, c = cell(torch.randn(3, 10))                  # each (N=3, H=20)
    """

    cell_name = "lstm"


class GRUCell(RecurrentCell, nn.GRUCell):
    r"""One GRU step (gates r, z, n; see :class:`rnnkit.nn.GRU`); torch.nn.GRUCell plus ``engine``.

    Example::

        >>> cell = GRUCell(10, 20, engine="explicit")
        >>> h = cell(torch.randn(3, 10))                     # (N=3, H=20)
    """

    cell_name = "gru"
