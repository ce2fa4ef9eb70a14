r"""``RNN``, ``LSTM`` and ``GRU``: torch.nn's layers, run by rnnkit's engines.

The classes subclass ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, so constructor arguments, defaults,
parameter names (``weight_ih_l0``, ``weight_hh_l1_reverse``, ``weight_hr_l0``, ...), shapes,
initialisation (uniform in ±1/sqrt(hidden_size)), input checks and return values are torch.nn's own,
and ``load_state_dict`` works in both directions. They are specialisations of
:class:`rnnkit.nn.Recurrent` for the cells ``rnn_tanh``/``rnn_relu``, ``lstm`` and ``gru``: the same
engines, options and ``trace`` (see :mod:`rnnkit.nn.layer`), with ``engine="fused"`` as the default
(PyTorch's kernels, as torch.nn) and the keyword arguments rnnkit adds:

* ``engine``: ``"fused"`` (default), ``"explicit"``, ``"reference"`` or ``"auto"``;
* ``init_state`` (``"zeros"``, ``"learned"``, ``"random"``), ``init_state_std=0.01``;
* ``bptt_window=k``: truncated BPTT inside one call (rnnkit's engines);
* ``recurrent_dropout``, ``zoneout``, ``weight_drop``, ``forget_bias`` (LSTM), ``locked_dropout``: the
  regularisers of :mod:`rnnkit.nn.regularisers`; weight drop and locked dropout run on the fused engine too.
"""

from __future__ import annotations

from torch import nn

from .cells import get_cell
from .layer import RecurrentBase


class _TorchLayer(RecurrentBase):
    """A torch.nn recurrent layer whose forward runs through :class:`RecurrentBase`."""

    _torch_forward = None  # the torch.nn class's own forward: the fused engine without weight drop

    def __init__(self, *args, engine: str = "fused", init_state: str = "zeros", init_state_std: float = 0.01,
                 bptt_window: int | None = None, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                 weight_drop: float = 0.0, forget_bias: float | None = None, locked_dropout: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.cell = get_cell(self._cell_name())(self.hidden_size, bias=self.bias, proj_size=self.proj_size)
        self._setup(engine, init_state, init_state_std, bptt_window, recurrent_dropout, zoneout, weight_drop,
                    forget_bias, locked_dropout)

    def _cell_name(self) -> str:
        return self.mode.lower()

    def _fused(self, input, hx):
        if self.training and (self.weight_drop or (self.locked_dropout and self.dropout)):
            return super()._fused(input, hx)
        return type(self)._torch_forward(self, input, hx)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if getattr(self, "forget_bias", None):
            self._add_forget_bias()

    def extra_repr(self) -> str:
        s = super().extra_repr()
        for name, default in (("bptt_window", None), ("recurrent_dropout", 0.0), ("zoneout", 0.0),
                              ("weight_drop", 0.0), ("forget_bias", None), ("locked_dropout", False)):
            value = getattr(self, name, default)
            if value != default:
                s += f", {name}={value}"
        return s + f", engine={self.engine!r}"


class RNN(_TorchLayer, nn.RNN):
    r"""Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    torch.nn.RNN's arguments (input_size, hidden_size, num_layers=1, nonlinearity="tanh",
    bias=True, batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None) plus
    rnnkit's keyword arguments (see :mod:`rnnkit.nn.layers`).

    Example::

        >>> rnn = RNN(10, 20, 2, engine="explicit")
        >>> output, h_n = rnn(torch.randn(5, 3, 10))     # (L=5, N=3, H_in=10)
        >>> output.shape, h_n.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]))
    """

    _torch_forward = nn.RNN.forward

    def _cell_name(self) -> str:
        return "rnn_tanh" if self.nonlinearity == "tanh" else "rnn_relu"


class LSTM(_TorchLayer, nn.LSTM):
    r"""Long short-term memory, torch.nn gate order (input, forget, cell, output):

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)              (h_t = W_hr (o_t * tanh(c_t)) when proj_size > 0)

    torch.nn.LSTM's arguments (input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None) plus rnnkit's keyword
    arguments (see :mod:`rnnkit.nn.layers`), ``forget_bias`` among them.

    Example::

        >>> lstm = LSTM(10, 20, 2, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(3, 5, 10))   # (N=3, L=5, H_in=10)
        >>> output.shape, c_n.shape
        (torch.Size([3, 5, 20]), torch.Size([2, 3, 20]))
    """

    _torch_forward = nn.LSTM.forward


class GRU(_TorchLayer, nn.GRU):
    r"""Gated recurrent unit, torch.nn gate order (reset, update, new):

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    torch.nn.GRU's arguments (input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None) plus rnnkit's keyword arguments (see
    :mod:`rnnkit.nn.layers`).

    Example::

        >>> gru = GRU(10, 20, bidirectional=True, engine="explicit")
        >>> output, h_n = gru(torch.randn(5, 10))              # unbatched (L=5, H_in=10)
        >>> output.shape, h_n.shape
        (torch.Size([5, 40]), torch.Size([2, 20]))
    """

    _torch_forward = nn.GRU.forward
