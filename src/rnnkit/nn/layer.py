r"""``Recurrent(cell, ...)``: one recurrent layer stack for any registered cell, with torch.nn's interface.

    >>> import torch
    >>> from rnnkit.nn import Recurrent
    >>> lstm = Recurrent("layernorm_lstm", 4, 8, num_layers=2, batch_first=True, zoneout=0.1)
    >>> output, (h_n, c_n) = lstm(torch.randn(3, 5, 4))          # (N=3, L=5, H_in=4)
    >>> output.shape, h_n.shape
    (torch.Size([3, 5, 8]), torch.Size([2, 3, 8]))

Shapes (PyTorch's letters): L sequence length, N batch, H_in input size, H_out = proj_size or
hidden_size, D = 2 if bidirectional else 1.

    input   (L, N, H_in), (N, L, H_in) with batch_first, (L, H_in) unbatched, or a PackedSequence
    hx      (D * num_layers, N, H_out)   [cells with a cell state: (h_0, c_0), c_0 (D * num_layers, N, H)]
    output  (L, N, D * H_out) (or batch first / unbatched / packed, as the input)
    h_n     (D * num_layers, N, H_out)   [(h_n, c_n)]

Engines (:func:`rnnkit.nn.engine_names`): ``"fused"`` (PyTorch's kernels; the torch cells only), ``"native"``
(the recurrence loop in C++, where built), ``"explicit"`` (rnnkit's unrolled loop with a hand-written BPTT, any
cell), ``"scan"`` (linear cells, the whole sequence at once), ``"reference"`` (the cell's equations under
autograd: the oracle) and ``"auto"`` (default): fused when the cell has a kernel and no option needs rnnkit's
engines, else native where it is built and has the cell's kernel, else scan for the linear cells, else explicit,
as Keras' ``use_cudnn="auto"`` (:mod:`rnnkit.nn.engines.registry`).

Resets (``forward(input, hx, resets=...)``): a bool tensor (L, N) ((N, L) with ``batch_first``, (L,) unbatched;
(L, N) in the caller's row order for a PackedSequence) marking the steps before which the state returns to the
initial state: episode boundaries, concatenated documents. The result equals running the segments separately; a
reset before step 0 changes nothing. In both directions: the reverse direction restarts at each segment's end.

Options beyond torch.nn's (all cells):

* ``init_state``: the state used when ``hx`` is not given: ``"zeros"`` (torch.nn's default),
  ``"learned"`` (parameters ``h0`` and, with a cell state, ``c0`` of shape (num_layers * D, H_out),
  learned with the rest of the model, starting at zero) or ``"random"`` (fresh normal noise of
  standard deviation ``init_state_std`` at every call: "a zero vector or small random values", as the
  seeds put it).
* ``bptt_window=k``: truncated BPTT inside one call; the gradient of any output reaches at most k
  steps back; the forward result is unchanged.
* ``recurrent_dropout``, ``zoneout``, ``weight_drop``: the regularisers of
  :mod:`rnnkit.nn.regularisers`; ``forget_bias=b`` adds b to the forget gate's bias at initialisation
  (cells with a forget gate; Jozefowicz et al. 2015).

Streaming (truncated BPTT across calls): feed a long sequence chunk by chunk and carry the final
state into the next call detached, so that gradients stop at the chunk boundary but the state
flows on::

    state = None
    for chunk in chunks:                       # each (L_chunk, N, H_in)
        output, state = layer(chunk, state)
        loss = criterion(output, target)
        loss.backward()
        state = detach_state(state)
"""

from __future__ import annotations

import numbers
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.checks import FORGET_BIAS_LIMIT

from .batch import LayerInput, reversed_resets, reverser
from .cells import Cell, get_cell
from .engines import Engine, SequenceRun, choose_engine, engine_names, get_engine
from .ops.linear import autocast_dtype
from .regularisers import check_probability, drop_weight, recurrent_dropout_mask, zoneout_masks
from .trace import Trace, assemble_trace, record_direction

ENGINES = ("auto", *engine_names())
INIT_STATES = ("zeros", "learned", "random")


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


class RecurrentBase(LayerInput):
    """What every rnnkit recurrent layer does, whichever class holds its parameters.

    A subclass provides ``cell`` (a :class:`rnnkit.nn.cells.base.Cell`), torch.nn's attributes
    (``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``, ``dropout``,
    ``bidirectional``, ``proj_size``) and parameters named ``{name}_l{k}`` / ``{name}_l{k}_reverse``
    after the cell's :meth:`~rnnkit.nn.cells.base.Cell.parameter_specs`.
    """

    cell: Cell

    def _setup(self, engine: str, init_state: str, init_state_std: float, bptt_window: int | None,
               recurrent_dropout: float = 0.0, zoneout: float = 0.0, weight_drop: float = 0.0,
               forget_bias: float | None = None, locked_dropout: bool = False) -> None:
        if init_state not in INIT_STATES:
            raise ValueError(f"unknown init_state {init_state!r}; choose one of {', '.join(INIT_STATES)}")
        if isinstance(init_state_std, bool) or not isinstance(init_state_std, numbers.Real) or init_state_std < 0:
            raise ValueError(f"init_state_std must be a non-negative number, got {init_state_std!r}")
        if bptt_window is not None and (isinstance(bptt_window, bool) or not isinstance(bptt_window, int)
                                        or bptt_window < 1):
            raise ValueError(f"bptt_window must be a positive integer or None, got {bptt_window!r}")
        self.recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
        self.zoneout = check_probability("zoneout", zoneout)
        self.weight_drop = check_probability("weight_drop", weight_drop)
        if (self.recurrent_dropout or self.weight_drop) and self.cell.recurrent_weight is None:
            raise ValueError(f"cell {self.cell.name!r} has no recurrent weight matrix, so recurrent_dropout and "
                             f"weight_drop do not apply to it; use zoneout or dropout instead")
        if not isinstance(locked_dropout, bool):
            raise ValueError(f"locked_dropout must be True or False, got {locked_dropout!r}")
        self.locked_dropout = locked_dropout
        self.bptt_window = bptt_window
        self.engine = engine  # checked after the options: some need rnnkit's engines
        self.init_state = init_state
        self.init_state_std = float(init_state_std)
        self.forget_bias = self._check_forget_bias(forget_bias)
        if self.forget_bias:
            self._add_forget_bias()
        if init_state == "learned":
            weight = self._first_weight()
            self.h0 = nn.Parameter(weight.new_zeros(self._num_states(), self._h_out()))
            if self.cell.has_cell_state:
                self.c0 = nn.Parameter(weight.new_zeros(self._num_states(), self.hidden_size))

    # --- configuration ---------------------------------------------------------------------------
    @property
    def engine(self) -> str:
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}; choose one of {', '.join(ENGINES)}")
        if value != "auto":
            refusal = get_engine(value).refusal(self)
            if refusal:
                raise ValueError(refusal)
        self._engine = value

    def _engine_now(self, resets: Tensor | None = None) -> str:
        """The engine this call runs on (``auto`` resolved for the current mode and options)."""
        return choose_engine(self, self._first_weight(), resets, torch.is_grad_enabled()).name

    def _check_forget_bias(self, forget_bias) -> float | None:
        if forget_bias is None:
            return None
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real):
            raise ValueError(f"forget_bias must be a number or None, got {forget_bias!r}")
        if not -FORGET_BIAS_LIMIT <= forget_bias <= FORGET_BIAS_LIMIT:  # nan fails both comparisons
            raise ValueError(f"forget_bias must be a finite number from {-FORGET_BIAS_LIMIT:g} to "
                             f"{FORGET_BIAS_LIMIT:g} (the gate σ(b) saturates long before), got {forget_bias!r}")
        if self.cell.forget_gate is None:
            raise ValueError(f"cell {self.cell.name!r} has no forget gate; forget_bias applies to the LSTM family")
        if not self.bias:
            raise ValueError("forget_bias needs bias parameters; use bias=True")
        return float(forget_bias)

    def _add_forget_bias(self) -> None:
        """Add ``forget_bias`` to the forget gate's block of its bias, in every layer and direction."""
        name, block = self.cell.forget_gate
        H = self.hidden_size
        with torch.no_grad():
            for layer in range(self.num_layers):
                for direction in range(self._directions()):
                    getattr(self, self._param_name(name, layer, direction))[block * H:(block + 1) * H] += self.forget_bias

    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _num_states(self) -> int:
        return self.num_layers * self._directions()

    def _h_out(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @staticmethod
    def _param_name(name: str, layer: int, direction: int) -> str:
        return f"{name}_l{layer}" + ("_reverse" if direction == 1 else "")

    def _first_weight(self) -> Tensor:
        return getattr(self, self._param_name(self.cell.input_weight, 0, 0))

    def _layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self._h_out() * self._directions()

    def _layer_params(self, layer: int, direction: int) -> dict[str, Tensor]:
        """This layer-direction's parameters by base name, W_hh weight-dropped in training."""
        specs = self.cell.active_specs(self._layer_input_size(layer))
        p = {s.name: getattr(self, self._param_name(s.name, layer, direction)) for s in specs}
        if self.weight_drop:
            name = self.cell.recurrent_weight
            p[name] = drop_weight(p[name], self.weight_drop, self.training)
        return p

    # --- forward -----------------------------------------------------------------------------
    def forward(self, input, hx=None, *, resets: Tensor | None = None):
        self._check_mixtures(input, hx)
        if hx is None and self.init_state != "zeros":
            hx = self._initial_state(input)
        engine = get_engine(self._engine_now(resets))
        if engine.whole_stack:
            return self._fused(input, hx)
        output, state, _ = self._rnnkit(input, hx, engine, record=None, resets=resets)
        return output, state

    def trace(self, input, hx=None, *, resets: Tensor | None = None) -> Trace:
        """Run the layer and return every step's hidden state, cell state and gates.

        Recorded by the engine this call would run on where it keeps the gates, else by the explicit engine
        (``Trace.engine`` names which). Runs without building an autograd graph. See :class:`Trace` for the shapes.
        """
        self._check_mixtures(input, hx)
        if hx is None and self.init_state != "zeros":
            hx = self._initial_state(input)
        with torch.no_grad():
            engine = get_engine(self._engine_now(resets))
            if not engine.can_record(self.cell):
                engine = get_engine("explicit")
            records: list = []
            output, state, layout = self._rnnkit(input, hx, engine, record=records, resets=resets)
        return assemble_trace(output, state, records, layout, engine.name, self.batch_first)

    def flatten_parameters(self) -> None:
        """Nothing to do: kept so that code written for torch.nn runs unchanged."""

    def _fused(self, input, hx):
        """PyTorch's fused kernel over this layer's weights (weight-dropped in training)."""
        return get_engine("fused").run_stack(self, input, hx, None)

    def _drop_between_layers(self, layer_output):
        """Dropout on a layer's output (L, N, F), or on the packed data of one: a fresh mask per element, or
        with ``locked_dropout`` one mask per sequence kept over every step."""
        if not self.locked_dropout:
            return F.dropout(layer_output, self.dropout, training=True)
        if isinstance(layer_output, PackedSequence):
            x, lengths = pad_packed_sequence(layer_output)
            return pack_padded_sequence(self._drop_between_layers(x), lengths)
        N, width = layer_output.shape[1], layer_output.shape[2]
        mask = layer_output.new_empty(1, N, width).bernoulli_(1 - self.dropout).div_(1 - self.dropout)  # (1, N, F)
        return layer_output * mask

    def _rnnkit(self, input, hx, engine: Engine, record: list | None, resets: Tensor | None = None):
        """Normalise the input, run the layers on one of rnnkit's engines, restore the caller's layout."""
        batch = self._normalise(input, hx)
        steps = None
        if batch.packed is not None:
            # rows in decreasing-length order, time-major, zeros past each length
            batch.x, batch.lengths = pad_packed_sequence(batch.packed)  # (L, N, H_in)
            steps = batch.packed.batch_sizes.tolist()
        resets = self._normalise_resets(resets, batch)
        y, states = self._run_layers(batch.x, batch.states, steps, batch.lengths, engine, record, resets)
        if batch.packed is not None:
            y = pack_padded_sequence(y, batch.lengths).data
        output, state = self._finish(batch, y, states)
        return output, state, batch

    def _run_layers(self, x: Tensor, states: tuple[Tensor, ...], steps: list[int] | None,
                    lengths: Tensor | None, engine: Engine, record: list | None, resets: Tensor | None):
        """All layers and directions over time-major x (L, N, H_in); rows sorted if ``steps``.

        Under ``torch.autocast`` the layer computes in autocast's dtype, as torch.nn's LSTM does: input, states and
        parameters are cast here, once (the parameters' gradients flow back in their own dtype), and the engines
        compute in the dtype they are given (:mod:`rnnkit.nn.ops.linear`)."""
        cast = autocast_dtype(x)
        if cast is not None:
            x, states = x.to(cast), tuple(s.to(cast) for s in states)
        h0 = states[0]  # (num_layers*D, N, H_out)
        c0 = states[1] if len(states) > 1 else None  # (num_layers*D, N, hidden_size)
        L, N = x.shape[0], x.shape[1]
        reverse = reverser(x, lengths)
        valid = None
        if record is not None and lengths is not None:
            steps_index = torch.arange(L).unsqueeze(1)  # (L, 1)
            valid = (steps_index < lengths.unsqueeze(0)).unsqueeze(2).to(x.dtype).to(x.device)  # (L, N, 1)
        direction_resets = (resets, None if resets is None or not self.bidirectional else reversed_resets(resets, reverse))
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions()):
                k = layer * self._directions() + direction
                xin = layer_input if direction == 0 else reverse(layer_input)
                p = self._layer_params(layer, direction)
                if cast is not None:
                    p = {name: t.to(cast) for name, t in p.items()}
                run = self._sequence_run(p, L, N, steps, x, direction_resets[direction])
                c0_k = None if c0 is None else c0[k]
                if record is None:
                    y, h, c = engine.run(run, xin, h0[k], c0_k, p)
                else:
                    y, h, c, cs, gates = engine.record(run, xin, h0[k], c0_k, p)
                    record.append(record_direction(gates, y, cs, direction, reverse, valid))
                outputs.append(y if direction == 0 else reverse(y))
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 2)  # (L, N, D*H_out)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = self._drop_between_layers(layer_input)
        states = (torch.stack(h_n),) + ((torch.stack(c_n),) if c0 is not None else ())
        return layer_input, states

    def _sequence_run(self, p: dict[str, Tensor], L: int, N: int, steps, like: Tensor,
                      resets: Tensor | None) -> SequenceRun:
        """The per-sequence settings of one layer-direction, with fresh regulariser masks."""
        rd = recurrent_dropout_mask(self.recurrent_dropout, N, self._h_out(), like, self.training)
        zh, zc = zoneout_masks(self.zoneout, L, N, self.cell.state_sizes(), like, self.training)
        return SequenceRun(self.cell, tuple(p), steps, self.bptt_window, rd, zh, zc, resets)

class Recurrent(RecurrentBase, nn.Module):
    r"""A stack of recurrent layers of any registered cell (:func:`rnnkit.nn.cell_names`).

    Args:
        cell: the cell's registry name (``"lstm"``, ``"gru"``, ``"layernorm_lstm"``, ...).
        input_size: H_in. hidden_size: H. num_layers: stacked layers. Default 1.
        bias: whether the cells have bias parameters. Default True.
        batch_first: input and output (N, L, ...) instead of (L, N, ...). Default False.
        dropout: dropout on each layer's output except the last, as torch.nn. Default 0.
        bidirectional: read each sequence in both directions (D = 2). Default False.
        engine: ``"auto"`` (default), ``"fused"``, ``"explicit"`` or ``"reference"``; see the module.
        init_state: ``"zeros"`` (default), ``"learned"`` or ``"random"``. init_state_std: 0.01.
        bptt_window: truncate BPTT every k steps inside a call. Default None (full BPTT).
        recurrent_dropout: Gal & Ghahramani's dropout on h_{t-1} where it enters W_hh. Default 0.
        zoneout: Krueger et al.'s probability of keeping each unit's previous value. Default 0.
        weight_drop: DropConnect on W_hh, one mask per forward call. Default 0.
        forget_bias: added to the forget gate's bias at initialisation (LSTM family). Default None.
        proj_size: LSTM only, as torch.nn.LSTM. Default 0.
        locked_dropout: the dropout between layers keeps one mask per sequence over every step
            (variational, as AWD-LSTM) instead of a fresh one per element. Default False.
        device, dtype: where and in which type the parameters are created.

    Parameters are named as torch.nn names them: ``{name}_l{k}`` and ``{name}_l{k}_reverse`` for each
    of the cell's parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``, ``ln_ih_weight``, ...),
    so a ``Recurrent("lstm", ...)`` and a ``torch.nn.LSTM`` exchange ``state_dict``s both ways.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 engine: str = "auto", init_state: str = "zeros", bptt_window: int | None = None,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, weight_drop: float = 0.0,
                 forget_bias: float | None = None, proj_size: int = 0, init_state_std: float = 0.01,
                 locked_dropout: bool = False, device=None, dtype=None):
        super().__init__()
        for name, value, minimum in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                                     ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} should be an integer of at least {minimum}, got {value!r}")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.dropout = check_probability("dropout", dropout, inclusive=True)
        self.cell = get_cell(cell)(hidden_size, bias=bias, proj_size=proj_size)
        self.mode = self.cell.name
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.proj_size = proj_size
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            for direction in range(self._directions()):
                for spec in self.cell.active_specs(self._layer_input_size(layer)):
                    param = nn.Parameter(torch.empty(spec.shape, **factory))
                    self.register_parameter(self._param_name(spec.name, layer, direction), param)
        self.reset_parameters()
        self._setup(engine, init_state, init_state_std, bptt_window, recurrent_dropout, zoneout, weight_drop,
                    forget_bias, locked_dropout)

    def reset_parameters(self) -> None:
        """The cell's initialisation for every parameter (torch.nn's U(±1/sqrt(H)) for the weights)."""
        with torch.no_grad():
            for layer in range(self.num_layers):
                for direction in range(self._directions()):
                    for spec in self.cell.active_specs(self._layer_input_size(layer)):
                        self.cell.init_parameter(spec, getattr(self, self._param_name(spec.name, layer, direction)))
        if getattr(self, "forget_bias", None):
            self._add_forget_bias()

    def extra_repr(self) -> str:
        s = f"{self.cell.name!r}, {self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("bptt_window", None), ("recurrent_dropout", 0.0),
                              ("zoneout", 0.0), ("weight_drop", 0.0), ("forget_bias", None),
                              ("locked_dropout", False)):
            value = getattr(self, name)
            if value != default:
                s += f", {name}={value}"
        return s + f", engine={self.engine!r}"


