r"""RNN, LSTM and GRU layers with torch.nn's interface and two engines.

The classes subclass ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, so constructor arguments, defaults,
parameter names (``weight_ih_l0``, ``weight_hh_l1_reverse``, ``weight_hr_l0``, ...), shapes,
initialisation (uniform in ±1/sqrt(hidden_size)), input checks and return values are torch.nn's own,
and ``load_state_dict`` works in both directions. rnnkit adds three keyword arguments:

* ``engine="fused"`` (default) runs PyTorch's fused kernels (oneDNN on CPU, cuDNN on GPU);
  ``engine="explicit"`` runs rnnkit's unrolled loop with the hand-written BPTT of
  :mod:`rnnkit.nn.explicit`. Both give the same results.
* ``init_state``: the initial state used when ``hx`` is not given: ``"zeros"`` (torch.nn's
  default), ``"learned"`` (parameters ``h0`` and, for LSTM, ``c0`` of shape
  (num_layers * D, H_out), learned with the rest of the model, starting at zero) or ``"random"``
  (fresh normal noise of standard deviation ``init_state_std`` at every call: "a zero vector or
  small random values", as the seeds put it).
* ``bptt_window=k`` (explicit engine): truncated BPTT inside one call; the gradient of any
  output reaches at most k steps back; the forward result is unchanged.

Shapes (PyTorch's letters): L sequence length, N batch, H_in input size, H_out = proj_size or
hidden_size, D = 2 if bidirectional else 1.

    input   (L, N, H_in), (N, L, H_in) with batch_first, (L, H_in) unbatched, or a PackedSequence
    hx      (D * num_layers, N, H_out)   [LSTM: (h_0, c_0), c_0 (D * num_layers, N, hidden_size)]
    output  (L, N, D * H_out) (or batch first / unbatched / packed, as the input)
    h_n     (D * num_layers, N, H_out)   [LSTM: (h_n, c_n)]

Streaming (truncated BPTT across calls): feed a long sequence chunk by chunk and carry the final
state into the next call detached, so that gradients stop at the chunk boundary but the state
flows on::

    state = None
    for chunk in chunks:                       # each (L_chunk, N, H_in)
        output, state = lstm(chunk, state)
        loss = criterion(output, target)
        loss.backward()
        state = detach_state(state)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .explicit import LayerWeights, RecurrentLayerFunction, forward_sequence

ENGINES = ("fused", "explicit")
INIT_STATES = ("zeros", "learned", "random")

State = Tensor | tuple[Tensor, Tensor]


def detach_state(state):
    """Detach a hidden state (a tensor, or a tuple such as LSTM's (h, c)) from the autograd graph.

    Carrying ``detach_state(state)`` into the next call keeps the values (the network remembers)
    and drops the graph (backpropagation stops at the call boundary): truncated BPTT over a stream.
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(detach_state(s) for s in state)


@dataclass
class Trace:
    """Everything a recurrent layer computed, step by step, from :meth:`RecurrentLayer.trace`.

    Index 0 of every per-step tensor is ``layer * D + direction`` (as in ``h_n``); the step and
    batch dimensions follow the input's layout: (L, N) by default, (N, L) with ``batch_first``,
    (L,) for unbatched input. Steps past a sequence's length (padding) are 0.

    Attributes:
        output, state: what ``forward`` returns for the same input.
        hidden: h_t at every step, (num_layers * D, L, N, H_out).
        cell: c_t at every step for LSTM, (num_layers * D, L, N, hidden_size); None otherwise.
        gates: gate activations at every step, each (num_layers * D, L, N, hidden_size):
            LSTM ``input``, ``forget``, ``cell``, ``output``; GRU ``reset``, ``update``, ``new``;
            empty for a plain RNN.
        lengths: (N,) sequence lengths; all L unless the input was packed.
    """

    output: Tensor | PackedSequence
    state: State
    hidden: Tensor
    cell: Tensor | None
    gates: dict[str, Tensor] = field(default_factory=dict)
    lengths: Tensor | None = None


class RecurrentLayer:
    """What rnnkit adds to torch.nn's recurrent layers; mixed in before the torch.nn class."""

    def __init__(self, *args, engine: str = "fused", init_state: str = "zeros", init_state_std: float = 0.01,
                 bptt_window: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup(engine, init_state, init_state_std, bptt_window)

    def _setup(self, engine: str, init_state: str, init_state_std: float, bptt_window: int | None) -> None:
        if self.dropout >= 1:
            raise ValueError(
                f"dropout={self.dropout} would zero every activation between layers; use a value in [0, 1)"
            )
        if init_state not in INIT_STATES:
            raise ValueError(f"unknown init_state {init_state!r}; choose one of {', '.join(INIT_STATES)}")
        if not isinstance(init_state_std, numbers.Real) or init_state_std < 0:
            raise ValueError(f"init_state_std must be a non-negative number, got {init_state_std!r}")
        if bptt_window is not None and (isinstance(bptt_window, bool) or not isinstance(bptt_window, int)
                                        or bptt_window < 1):
            raise ValueError(f"bptt_window must be a positive integer or None, got {bptt_window!r}")
        self.bptt_window = bptt_window
        self.engine = engine  # checked after bptt_window: the window needs the explicit engine
        self.init_state = init_state
        self.init_state_std = float(init_state_std)
        if init_state == "learned":
            weight = self.weight_ih_l0
            self.h0 = nn.Parameter(weight.new_zeros(self._num_states(), self._h_out()))
            if self.mode == "LSTM":
                self.c0 = nn.Parameter(weight.new_zeros(self._num_states(), self.hidden_size))

    @property
    def engine(self) -> str:
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; choose 'fused' (PyTorch kernels) or 'explicit' (rnnkit BPTT)")
        if value != "explicit" and getattr(self, "bptt_window", None):
            raise ValueError("bptt_window needs engine='explicit'; the fused kernels cannot truncate inside a call")
        self._engine = value

    def extra_repr(self) -> str:
        s = super().extra_repr()
        s += f", engine={self.engine!r}"
        if self.init_state != "zeros":
            s += f", init_state={self.init_state!r}"
        if self.bptt_window:
            s += f", bptt_window={self.bptt_window}"
        return s

    # --- helpers on shapes -------------------------------------------------------------------
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _num_states(self) -> int:
        return self.num_layers * self._directions()

    def _h_out(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    # --- forward -----------------------------------------------------------------------------
    def forward(self, input, hx=None):
        self._check_mixtures(input, hx)
        if hx is None and self.init_state != "zeros":
            hx = self._initial_state(input)
        if self.engine == "fused":
            return super().forward(input, hx)
        output, state, _ = self._explicit(input, hx, record=None)
        return output, state

    def trace(self, input, hx=None) -> Trace:
        """Run the explicit engine and return every step's hidden state, cell state and gates.

        Runs without building an autograd graph. See :class:`Trace` for the shapes.
        """
        self._check_mixtures(input, hx)
        if hx is None and self.init_state != "zeros":
            hx = self._initial_state(input)
        records: list = []
        with torch.no_grad():
            output, state, layout = self._explicit(input, hx, record=records)
        return self._assemble_trace(output, state, records, layout)

    def _check_mixtures(self, input, hx) -> None:
        """dtype and device agreement of input, hx and weights, each with the fix in the message."""
        data = input.data if isinstance(input, PackedSequence) else input
        weight = self.weight_ih_l0
        if data.device != weight.device:
            raise RuntimeError(
                f"input is on {data.device} but the weights are on {weight.device}; "
                f"move one of them: input.to('{weight.device}') or model.to('{data.device}')"
            )
        states = () if hx is None else ((hx,) if isinstance(hx, Tensor) else tuple(hx))
        for name, s in zip(("hx", "cx"), states):
            if not isinstance(s, Tensor):
                raise TypeError(f"{name} must be a tensor, got {type(s).__name__}")
            if s.device != data.device:
                raise RuntimeError(f"{name} is on {s.device} but input is on {data.device}; use {name}.to('{data.device}')")
            if s.dtype != data.dtype:
                raise ValueError(f"{name} dtype ({s.dtype}) does not match input dtype ({data.dtype}); "
                                 f"convert it: {name}.to({data.dtype})")

    def _initial_state(self, input) -> State:
        """The learned or random initial state, shaped for this input (batched or not)."""
        if isinstance(input, PackedSequence):
            batch, data = int(input.batch_sizes[0]), input.data
        elif input.dim() == 3:
            batch, data = input.size(0 if self.batch_first else 1), input
        else:
            batch, data = None, input  # unbatched, or a wrong rank that the checks will report

        def make(learned: Tensor | None, size: int) -> Tensor:
            shape = (self._num_states(), size) if batch is None else (self._num_states(), batch, size)
            if self.init_state == "learned":
                base = learned.to(data.dtype)
                return base if batch is None else base.unsqueeze(1).expand(shape)
            return torch.randn(shape, dtype=data.dtype, device=data.device) * self.init_state_std

        h = make(getattr(self, "h0", None), self._h_out())
        if self.mode == "LSTM":
            return h, make(getattr(self, "c0", None), self.hidden_size)
        return h

    # --- the explicit engine -----------------------------------------------------------------
    def _explicit(self, input, hx, record):
        """Normalise the input as torch.nn does, run the layers, restore the caller's layout."""
        is_lstm = self.mode == "LSTM"
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            N = int(batch_sizes[0])
            states = self._zero_state(data, N) if hx is None else self._as_tuple(hx)
            states = _permute_rows(states, sorted_indices)
            self.check_forward_args(data, states if is_lstm else states[0], batch_sizes)
            # rows in decreasing-length order, time-major, zeros past each length
            x, lengths = pad_packed_sequence(PackedSequence(data, batch_sizes))  # (L, N, H_in)
            steps = batch_sizes.tolist()
            layout = ("packed", sorted_indices, unsorted_indices, lengths)
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = input.unsqueeze(batch_dim)
            N = input.size(batch_dim)
            if hx is None:
                states = self._zero_state(input, N)
            else:
                states = self._as_tuple(hx)
                want = 3 if is_batched else 2
                if any(s.dim() != want for s in states):
                    dims = ", ".join(f"{s.dim()}-D" for s in states)
                    kind = "batched 3-D" if is_batched else "unbatched 2-D"
                    raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got ({dims}) tensor(s)")
                if not is_batched:
                    states = tuple(s.unsqueeze(1) for s in states)
            self.check_forward_args(input, states if is_lstm else states[0], None)
            x = input.transpose(0, 1) if self.batch_first else input  # (L, N, H_in)
            steps, lengths = None, None
            layout = ("padded", is_batched, batch_dim)

        y, h_n, c_n = self._run_layers(x, states, steps, lengths, record)  # y (L, N, D*H_out)
        state = (h_n, c_n) if is_lstm else h_n
        if layout[0] == "packed":
            _, sorted_indices, unsorted_indices, lengths = layout
            out_data = pack_padded_sequence(y, lengths).data
            output = PackedSequence(out_data, batch_sizes, sorted_indices, unsorted_indices)
            state = _permute_rows(state, unsorted_indices)
            return output, state, layout
        _, is_batched, batch_dim = layout
        output = y.transpose(0, 1) if self.batch_first else y
        if not is_batched:
            output = output.squeeze(batch_dim)
            state = tuple(s.squeeze(1) for s in state) if is_lstm else state.squeeze(1)
        return output, state, layout

    def _as_tuple(self, hx) -> tuple[Tensor, ...]:
        return (hx,) if isinstance(hx, Tensor) else tuple(hx)

    def _zero_state(self, like: Tensor, N: int) -> tuple[Tensor, ...]:
        h = like.new_zeros(self._num_states(), N, self._h_out())
        if self.mode == "LSTM":
            return h, like.new_zeros(self._num_states(), N, self.hidden_size)
        return (h,)

    def _layer_weights(self, layer: int, direction: int) -> LayerWeights:
        sfx = f"l{layer}" + ("_reverse" if direction == 1 else "")
        get = lambda name: getattr(self, f"{name}_{sfx}", None)  # noqa: E731
        return LayerWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"),
                            get("weight_hr") if self.proj_size > 0 else None)

    def _run_layers(self, x: Tensor, states: tuple[Tensor, ...], steps: list[int] | None,
                    lengths: Tensor | None, record: list | None):
        """All layers and directions over time-major x (L, N, H_in); rows sorted if ``steps``."""
        h0 = states[0]  # (num_layers*D, N, H_out)
        c0 = states[1] if len(states) > 1 else None  # (num_layers*D, N, hidden_size)
        reverse = _reverser(x, lengths)
        valid = None
        if record is not None and lengths is not None:
            steps_index = torch.arange(x.shape[0]).unsqueeze(1)  # (L, 1)
            valid = (steps_index < lengths.unsqueeze(0)).unsqueeze(2).to(x.dtype).to(x.device)  # (L, N, 1)
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions()):
                k = layer * self._directions() + direction
                xin = layer_input if direction == 0 else reverse(layer_input)
                w = self._layer_weights(layer, direction)
                c0_k = None if c0 is None else c0[k]
                if record is None:
                    result = RecurrentLayerFunction.apply(
                        self.mode, steps, self.bptt_window, xin, h0[k], c0_k,
                        w.w_ih, w.w_hh, w.b_ih, w.b_hh, w.w_hr)
                    y, h, c = result if len(result) == 3 else (*result, None)
                else:
                    math, y, h, c = forward_sequence(self.mode, xin, h0[k], c0_k, w, steps)
                    record.append(_record(math, y, direction, reverse, valid))
                outputs.append(y if direction == 0 else reverse(y))
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 2)  # (L, N, D*H_out)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(h_n), (torch.stack(c_n) if c0 is not None else None)

    def _assemble_trace(self, output, state, records, layout) -> Trace:
        """Stack per-layer records to (num_layers*D, L, N, ...) and put them in the input's layout."""
        packed = layout[0] == "packed"

        def arrange(t: Tensor) -> Tensor:  # (K, L, N, ...) time-major, rows as computed
            if packed and layout[2] is not None:
                t = t.index_select(2, layout[2])  # unsorted_indices: back to the caller's row order
            if self.batch_first:
                t = t.transpose(1, 2)
            if not packed and not layout[1]:
                t = t.squeeze(1 if self.batch_first else 2)  # unbatched
            return t

        def stack(key: str) -> Tensor:
            return arrange(torch.stack([r[key] for r in records]))

        cell = stack("cell") if records[0]["cell"] is not None else None
        gates = {name: arrange(torch.stack([r["gates"][name] for r in records])) for name in records[0]["gates"]}
        hidden = stack("hidden")
        if packed:
            lengths = layout[3] if layout[2] is None else layout[3].index_select(0, layout[2].cpu())
        else:
            L = records[0]["hidden"].shape[0]
            N = records[0]["hidden"].shape[1]
            lengths = torch.full((N,), L, dtype=torch.long)
        return Trace(output=output, state=state, hidden=hidden, cell=cell, gates=gates, lengths=lengths)


def _permute_rows(state, permutation: Tensor | None):
    """Reorder the batch rows (dim 1) of a state or a tuple of states; None keeps the order."""
    if permutation is None:
        return state
    if isinstance(state, Tensor):
        return state.index_select(1, permutation)
    return tuple(s.index_select(1, permutation) for s in state)


def _reverser(x: Tensor, lengths: Tensor | None):
    """A function that reverses each sequence within its own length (padding stays in place).

    For full-length sequences this is a flip of the time axis; with lengths it is a gather with
    index[t, n] = lengths[n] - 1 - t for t < lengths[n], t otherwise. Applying it twice restores.
    """
    if lengths is None:
        return lambda t: t.flip(0)
    L = x.shape[0]
    t = torch.arange(L).unsqueeze(1)  # (L, 1)
    n_len = lengths.unsqueeze(0)  # (1, N)
    index = torch.where(t < n_len, n_len - 1 - t, t).to(x.device)  # (L, N)

    def reverse(seq: Tensor) -> Tensor:  # (L, N, H)
        return seq.gather(0, index.unsqueeze(2).expand_as(seq))

    return reverse


def _record(math, y: Tensor, direction: int, reverse, valid: Tensor | None) -> dict:
    """One layer-direction's per-step values in natural time order, padding zeroed.

    ``valid`` (L, N, 1) is 1 on real steps and 0 on padding (None when there is no padding).
    """
    def fix(t: Tensor) -> Tensor:
        t = t if direction == 0 else reverse(t)
        return t if valid is None else t * valid

    cell = math.cell()
    return {
        "hidden": fix(y),
        "cell": None if cell is None else fix(cell),
        "gates": {name: fix(g) for name, g in math.gates().items()},
    }


class RNN(RecurrentLayer, nn.RNN):
    r"""Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    torch.nn.RNN's arguments (input_size, hidden_size, num_layers=1, nonlinearity="tanh",
    bias=True, batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None) plus
    ``engine="fused"|"explicit"``, ``init_state="zeros"|"learned"|"random"``,
    ``init_state_std=0.01`` and ``bptt_window=None``. Shapes: see :mod:`rnnkit.nn.layers`.

    Example::

        >>> rnn = RNN(10, 20, 2, engine="explicit")
        >>> output, h_n = rnn(torch.randn(5, 3, 10))     # (L=5, N=3, H_in=10)
        >>> output.shape, h_n.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]))
    """


class LSTM(RecurrentLayer, nn.LSTM):
    r"""Long short-term memory, torch.nn gate order (input, forget, cell, output):

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)              (h_t = W_hr (o_t * tanh(c_t)) when proj_size > 0)

    torch.nn.LSTM's arguments (input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None) plus ``engine``,
    ``init_state``, ``init_state_std`` and ``bptt_window`` (see :mod:`rnnkit.nn.layers`).

    Example::

        >>> lstm = LSTM(10, 20, 2, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(3, 5, 10))   # (N=3, L=5, H_in=10)
        >>> output.shape, c_n.shape
        (torch.Size([3, 5, 20]), torch.Size([2, 3, 20]))
    """


class GRU(RecurrentLayer, nn.GRU):
    r"""Gated recurrent unit, torch.nn gate order (reset, update, new):

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    torch.nn.GRU's arguments (input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None) plus ``engine``, ``init_state``,
    ``init_state_std`` and ``bptt_window`` (see :mod:`rnnkit.nn.layers`).

    Example::

        >>> gru = GRU(10, 20, bidirectional=True, engine="explicit")
        >>> output, h_n = gru(torch.randn(5, 10))              # unbatched (L=5, H_in=10)
        >>> output.shape, h_n.shape
        (torch.Size([5, 40]), torch.Size([2, 20]))
    """
