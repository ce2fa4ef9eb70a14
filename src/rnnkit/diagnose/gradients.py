r"""How far a loss's gradient reaches back through time: ‖∂L/∂h_t‖ for every step t of one sequence.

Backpropagation through time carries the gradient from step t+1 to step t through the step Jacobian:

    ∂L/∂h_t = ∂L_t/∂h_t + (∂h_{t+1}/∂h_t)^T ∂L/∂h_{t+1}

For a tanh RNN, ∂h_{t+1}/∂h_t = diag(1 − h_{t+1}²) W_hh: with PyTorch's initialisation (W_hh uniform in
±1/sqrt(H), spectral radius about 1/sqrt(3)) every step back multiplies the norm by less than one, and over
200 steps it vanishes by tens of orders of magnitude; with a large W_hh it explodes instead. An LSTM adds a
path through the cell state, c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t, on which the gradient is multiplied only by the
forget gate f_t: close to 1, the gradient survives; at initialisation (f ≈ sigmoid(0) = 0.5) it still fades,
more slowly. A GRU's update gate z_t plays the same part: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}.

Gradient clipping (``clip_grad_norm_``) rescales the whole parameter gradient by
``min(1, max_norm / ‖∂L/∂θ‖)``. The parameter gradient is linear in the backpropagated signal, so clipping
equals scaling every ∂L/∂h_t by that one factor: the curve moves down on a log scale and keeps its shape.
It bounds an exploding update; it cannot bring back a gradient that has vanished
(:meth:`GradientFlow.clipped`).

:func:`per_step_gradient_norms` runs a recurrent layer one step at a time, keeping each step's hidden
state h_t (and the LSTM's c_t) as a node of the autograd graph, and asks autograd for the gradient of the
loss with respect to every one of them. It uses ``torch.autograd.grad``, so the parameters' ``.grad`` are
left untouched: a training loop can call it between its own steps (for example every few hundred steps)
to record how the gradient reaches back::

    flow = per_step_gradient_norms(
        model.rnn, model.embedding(inputs),                          # inputs (N, L) token ids
        loss_fn=lambda t, h: F.cross_entropy(model.decoder(h), targets[:, t], reduction="sum"),
        loss="sum", parameters=model.parameters())
    record["gradient_norms"] = flow.hidden[-1].tolist()              # ‖∂L/∂h_t‖ of the top layer, t = 1..L

Long sequences need float64: a norm 10⁻⁶⁰ below the last step's underflows to 0 in float32.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import InputError
from rnnkit.models.recurrent import check_engine, registered_cell
from rnnkit.nn import LockedDropout, Recurrent

LOSSES = ("last", "sum")
CLIP_EPSILON = 1e-6  # as torch.nn.utils.clip_grad_norm_: scale = max_norm / (norm + 1e-6)


@dataclass
class GradientFlow:
    """Per-step gradient norms of one sequence, from :func:`per_step_gradient_norms`.

    Attributes:
        hidden: (num_layers, L) float64, ‖∂L/∂h_t‖ for each layer and step t (row -1: the top layer).
            The norm is taken over the batch and the units together (Frobenius).
        cell: (num_layers, L) for an LSTM, ‖∂L/∂c_t‖ of the cell state as it is carried into step t+1: the
            gradient on the cell-state path (with ``loss="last"`` it is 0 at the last step, where c_T reaches
            L only through h_T). None for other cells.
        parameter_norm: the global norm of ∂L/∂θ over the parameters given (what clipping looks at).
    """

    hidden: Tensor
    cell: Tensor | None
    parameter_norm: float

    def ratio(self, layer: int = -1) -> float:
        """‖∂L/∂h_T‖ / ‖∂L/∂h_1‖ of one layer: how much the gradient falls from the last step to the first.

        inf when ∂L/∂h_1 is exactly 0 (underflow, or no path back), nan when both are 0.
        """
        last, first = float(self.hidden[layer, -1]), float(self.hidden[layer, 0])
        if first == 0.0:
            return math.nan if last == 0.0 else math.inf
        return last / first

    def clip_scale(self, max_norm: float | None) -> float:
        """The factor ``clip_grad_norm_(parameters, max_norm)`` would multiply the gradient by (1: no clipping)."""
        if max_norm is None:
            return 1.0
        return min(1.0, max_norm / (self.parameter_norm + CLIP_EPSILON))

    def clipped(self, max_norm: float | None) -> Tensor:
        """(num_layers, L) the per-step norms as clipping leaves them: all scaled by :meth:`clip_scale`."""
        return self.hidden * self.clip_scale(max_norm)


def per_step_gradient_norms(
    layer: nn.Module,
    input: Tensor,
    hx=None,
    *,
    loss_fn: Callable[[int, Tensor], Tensor] | None = None,
    loss: str = "last",
    parameters: Iterable[nn.Parameter] | None = None,
) -> GradientFlow:
    r"""‖∂L/∂h_t‖ for every step t of ``input``, by running ``layer`` one step at a time.

    Args:
        layer: a unidirectional recurrent layer with torch.nn's interface (``rnnkit.nn.Recurrent``, ``RNN`` / ``LSTM`` /
            ``GRU`` or torch.nn's own), any number of layers, either engine; or a residual stack
            (:class:`~rnnkit.models.blocks.ResidualRecurrent`, ``--block residual``): then h_t of layer k is the
            state of block k's recurrent layer, and each step runs the blocks' norms, residual adds and MLPs
            (position-wise, so stepping them is exact) between the layers.
        input: (L, N, H_in), (N, L, H_in) if ``layer.batch_first``, or unbatched (L, H_in).
        hx: the initial state as ``layer`` takes it (batched), or None.
        loss_fn: ``loss_fn(t, y_t) -> scalar``, the loss at step t (0-based) given what the layer outputs at
            step t, (N, H_out): the top layer's hidden state h_t, or a residual stack's output (its final
            LayerNorm of the residual stream, what a model's head reads). Default: the sum of y_t's entries.
        loss: ``"last"``: L = loss_fn at the last step only (what shows vanishing: every earlier h_t
            reaches L only through the recurrence); ``"sum"``: L = the sum of loss_fn over all steps.
        parameters: the parameters whose gradient norm clipping would see (default: the layer's).

    Returns:
        A :class:`GradientFlow`; gradients are computed with ``torch.autograd.grad``, so no ``.grad``
        attribute is changed. The layer's mode (train/eval) is used as it is: call ``eval()`` first to
        leave dropout out.

    Example::

        >>> rnn = Recurrent("rnn_tanh", 8, 16).double()
        >>> flow = per_step_gradient_norms(rnn, torch.randn(50, 1, 8, dtype=torch.float64))
        >>> flow.hidden.shape, flow.ratio() > 1
        (torch.Size([1, 50]), True)
    """
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose 'last' (loss at the last step) or 'sum' (every step)")
    x, hx = _time_major(layer, input, hx)  # (L, N, H_in)
    steps = x.shape[0]
    params = [p for p in (layer.parameters() if parameters is None else parameters) if p.requires_grad]
    residual = hasattr(layer, "blocks")
    singles = [_single_layers(block.rnn)[0] for block in layer.blocks] if residual else _single_layers(layer)
    unrolled = _unrolled_residual if residual else _unrolled
    with torch.enable_grad():
        hiddens, cells, total = unrolled(layer, singles, x, hx, loss_fn or (lambda t, h: h.sum()), loss)
        nodes = [node for per_layer in hiddens + cells for node in per_layer]
        grads = torch.autograd.grad(total, [*nodes, *params], allow_unused=True)

    def norms(node_grads: tuple, layers: int) -> Tensor:  # -> (num_layers, L)
        values = [0.0 if g is None else float(g.detach().double().norm()) for g in node_grads]
        return torch.tensor(values, dtype=torch.float64).view(layers, steps)

    layers = len(singles)
    hidden = norms(grads[: layers * steps], layers)
    cell = norms(grads[layers * steps : len(nodes)], layers) if cells[0] else None
    param_grads = [g for g in grads[len(nodes) :] if g is not None]
    parameter_norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in param_grads))) if param_grads else 0.0
    return GradientFlow(hidden=hidden, cell=cell, parameter_norm=parameter_norm)


def _time_major(layer: nn.Module, input: Tensor, hx) -> tuple[Tensor, object]:
    """``input`` as (L, N, H_in), checked, and the initial state: ``hx``, or the layer's own when it learns or
    draws one (None for zeros)."""
    if getattr(layer, "bidirectional", False):
        raise ValueError("per-step gradients need a unidirectional layer: a backward direction's h_t depends on later inputs")
    if not isinstance(input, Tensor) or input.dim() not in (2, 3):
        raise ValueError(f"input must be an (L, N, H_in), (N, L, H_in) or (L, H_in) tensor, got {type(input).__name__}")
    batch_first = getattr(layer, "batch_first", False)
    if input.dim() == 2:
        input = input.unsqueeze(0 if batch_first else 1)  # unbatched: one sequence
    if hx is None and getattr(layer, "init_state", "zeros") != "zeros":
        hx = layer._initial_state(input)  # rnnkit's learned or random initial state
    x = input.transpose(0, 1) if batch_first else input  # (L, N, H_in)
    if x.shape[0] < 1:
        raise ValueError("input has no steps")
    return x, hx


def _unrolled(layer: nn.Module, singles: list[nn.Module], x: Tensor, hx, loss_fn: Callable[[int, Tensor], Tensor],
              loss: str) -> tuple[list[list[Tensor]], list[list[Tensor]], Tensor]:
    """Run ``singles`` (the layers of ``layer``, one each) step by step over x (L, N, H_in) from ``hx``: (h_t of
    each layer and step, c_t of each for an LSTM, else empty lists, the loss), every h_t and c_t a graph node."""
    states = [None if hx is None else (tuple(s[k : k + 1] for s in hx) if isinstance(hx, tuple) else hx[k : k + 1])
              for k in range(len(singles))]
    dropout = layer.dropout if layer.training else 0.0
    hiddens: list[list[Tensor]] = [[] for _ in singles]  # [k][t] (1, N, H_out): h_t of layer k, a graph node
    cells: list[list[Tensor]] = [[] for _ in singles]  # LSTM: [k][t] (1, N, H)
    total = None
    steps = x.shape[0]
    for t in range(steps):
        below = x[t : t + 1]  # (1, N, H_in): one step
        for k, single in enumerate(singles):
            if k > 0 and dropout > 0:
                below = F.dropout(below, dropout, training=True)  # as the stacked layer does between layers
            _, states[k] = single(below, states[k])  # the state carried with its graph
            h = states[k][0] if isinstance(states[k], tuple) else states[k]  # (1, N, H_out)
            hiddens[k].append(h)
            if isinstance(states[k], tuple):
                cells[k].append(states[k][1])
            below = h  # h_t feeds both the layer above and the next step: its gradient is the total one
        if loss == "sum" or t == steps - 1:
            step_loss = loss_fn(t, below[0])  # top layer (N, H_out)
            total = step_loss if total is None else total + step_loss
    return hiddens, cells, total


def _unrolled_residual(stack: nn.Module, singles: list[nn.Module], x: Tensor, hx,
                       loss_fn: Callable[[int, Tensor], Tensor], loss: str):
    """As :func:`_unrolled`, through a residual stack's blocks (:mod:`rnnkit.models.blocks`): per step t,

        s = x_t P;  for each block k:  h_t^(k) = RNN_k(LN_k(s), h_{t-1}^(k));  u = s + drop(h_t^(k));
        s = u + drop(MLP_k(LN'_k(u)));  y_t = LN_out(s)

    every h_t^(k) (and c_t^(k)) a graph node, the loss read from y_t. In training the branch dropout is applied
    as the block does: a fresh mask per element, or with locked dropout one mask per sequence over all steps."""
    states = [None if hx is None else (tuple(s[k : k + 1] for s in hx) if isinstance(hx, tuple) else hx[k : k + 1])
              for k in range(len(singles))]
    masks: dict[tuple[int, int], Tensor] = {}

    def drop(k: int, branch: int, v: Tensor) -> Tensor:  # v (1, N, W)
        dropout = stack.blocks[k].drop
        if not stack.training or dropout.p == 0:
            return v
        if isinstance(dropout, LockedDropout):  # the same mask at every step of the sequence
            if (k, branch) not in masks:
                masks[(k, branch)] = v.new_empty(v.shape).bernoulli_(1 - dropout.p).div_(1 - dropout.p)
            return v * masks[(k, branch)]
        return dropout(v)

    hiddens: list[list[Tensor]] = [[] for _ in singles]  # [k][t] (1, N, H): h_t of block k's layer
    cells: list[list[Tensor]] = [[] for _ in singles]
    total = None
    steps = x.shape[0]
    for t in range(steps):
        stream = x[t : t + 1]  # (1, N, F)
        if stack.project is not None:
            stream = stack.project(stream)  # (1, N, W)
        for k, (block, single) in enumerate(zip(stack.blocks, singles)):
            _, states[k] = single(block.norm_rnn(stream), states[k])
            h = states[k][0] if isinstance(states[k], tuple) else states[k]  # (1, N, H)
            hiddens[k].append(h)
            if isinstance(states[k], tuple):
                cells[k].append(states[k][1])
            u = stream + drop(k, 0, h)  # (1, N, W)
            stream = u + drop(k, 1, block.mlp(block.norm_mlp(u)))  # (1, N, W)
        if loss == "sum" or t == steps - 1:
            step_loss = loss_fn(t, stack.norm(stream)[0])  # the stack's output (N, W)
            total = step_loss if total is None else total + step_loss
    return hiddens, cells, total


def _single_layers(layer: nn.Module) -> list[nn.Module]:
    """One time-major one-layer module per layer of ``layer``, holding the very same Parameter objects.

    Run in turn, step by step, they expose each layer's h_t as one tensor that both the layer above and the
    next step consume, so autograd's gradient for it is the total derivative ∂L/∂h_t (a stacked layer hands
    its upper layer a different tensor than the state it returns).
    """
    if layer.num_layers == 1 and not layer.batch_first:
        return [layer]
    singles = []
    for k in range(layer.num_layers):
        input_size = layer.input_size if k == 0 else (getattr(layer, "proj_size", 0) or layer.hidden_size)
        single = _one_layer_like(layer, input_size)
        names = getattr(single, "_flat_weights_names", None) or [name for name, _ in single.named_parameters()]
        for name in names:  # weight_ih_l0, ... <- weight_ih_l{k}, ...
            setattr(single, name, getattr(layer, name[:-1] + str(k)))
        singles.append(single.train(layer.training))
    return singles


def _one_layer_like(layer: nn.Module, input_size: int) -> nn.Module:
    """A one-layer, time-major layer of ``layer``'s kind (cell, bias, engine, projection, zoneout): an rnnkit layer
    says its cell, a torch.nn layer is built again from its own class."""
    if hasattr(layer, "cell"):
        return Recurrent(layer.cell.name, input_size, layer.hidden_size, bias=layer.bias, engine=layer.engine,
                         proj_size=layer.proj_size, zoneout=layer.zoneout)
    options = {"bias": layer.bias}
    if hasattr(layer, "nonlinearity"):
        options["nonlinearity"] = layer.nonlinearity
    if getattr(layer, "proj_size", 0):
        options["proj_size"] = layer.proj_size
    return type(layer)(input_size, layer.hidden_size, **options)


def fresh_layer(cell: str, input_size: int, hidden_size: int, *, seed: int, forget_bias: float = 0.0,
                recurrent_scale: float = 1.0, dtype: torch.dtype = torch.float64, engine: str = "auto") -> nn.Module:
    """A new one-layer ``rnnkit.nn.Recurrent`` layer of any registered cell, with the cell's default
    initialisation (PyTorch's for the torch cells), seeded.

    Args:
        cell: a name of :func:`rnnkit.nn.cell_names` (or ``"rnn"``, the tanh RNN).
        forget_bias: added to the forget-gate bias after the initialisation, for a cell that has a forget gate
            (its ``forget_gate``; 0: the default init; 1 is the usual remedy, Gers et al. 2000, Jozefowicz et
            al. 2015). Ignored for other cells.
        recurrent_scale: the recurrent weight W_hh is multiplied by this (1: the default init; larger values
            make the RNN's gradient explode instead of vanish).
        engine: the layer's engine (``"auto"`` or a name of :func:`rnnkit.nn.engine_names`); InputError, the
            layer's one sentence, where it cannot run the cell.
    """
    kind = registered_cell(cell)
    check_engine(engine)
    torch.manual_seed(seed)
    bias = forget_bias if forget_bias and kind.forget_gate is not None else None
    try:
        layer = Recurrent(kind.name, input_size, hidden_size, forget_bias=bias, engine=engine).to(dtype)
    except ValueError as error:  # an engine that cannot run this cell
        raise InputError(str(error)) from None
    if kind.recurrent_weight is not None:
        with torch.no_grad():
            getattr(layer, f"{kind.recurrent_weight}_l0").mul_(recurrent_scale)
    return layer


def embed_tokens(model: nn.Module, ids: Tensor) -> Tensor:
    """A language model's recurrent input for token ids (T,): its embedding, or one-hot vectors; (T, H_in)."""
    if model.embedding is not None:
        return model.embedding(ids)  # (T, E)
    return F.one_hot(ids, model.vocab_size).to(model.input_dtype)  # (T, V)


def language_model_gradient_flow(model: nn.Module, ids: Tensor, loss: str = "last", hx=None) -> GradientFlow:
    r"""‖∂L/∂h_t‖ of a trained language model reading a real text, in float64.

    The model reads ``ids[:-1]`` and predicts ``ids[1:]``; L is the cross-entropy of its prediction of the last
    token (``loss="last"``: how far back the last prediction still reaches) or the sum over every step
    (``"sum"``, as in training). Runs on a float64 copy in eval mode: the model itself is not changed.

    Args:
        model: a :class:`~rnnkit.models.LanguageModel`.
        ids: (T,) token ids, T ≥ 2.
        hx: the state the model starts from, as its layers return it (the state after the text before ``ids``:
            the norms of those steps are then exactly those of the whole text's); None: zeros.

    Returns:
        A :class:`GradientFlow` over the T − 1 steps; ``hidden[k, t]`` belongs to the state after reading ids[t].
    """
    if len(ids) < 2:
        raise InputError("the text needs at least 2 tokens: one to read and one to predict")
    model = copy.deepcopy(model).double().eval()
    inputs, targets = ids[:-1], ids[1:]  # (T-1,) each
    x = embed_tokens(model, inputs).unsqueeze(0)  # (1, T-1, H_in), batch first as the model's layers

    def loss_fn(t: int, h: Tensor) -> Tensor:  # h (1, H): the top layer's state after reading inputs[t]
        return F.cross_entropy(model.decoder(h), targets[t : t + 1], reduction="sum")

    if hx is not None:  # the float64 copy starts from the same state, detached from whatever made it
        hx = tuple(h.detach().double() for h in hx) if isinstance(hx, tuple) else hx.detach().double()
    return per_step_gradient_norms(model.rnn, x, hx, loss_fn=loss_fn, loss=loss, parameters=model.parameters())


def fresh_gradient_flow(cell: str, *, length: int, hidden_size: int, seed: int, loss: str = "last",
                        forget_bias: float = 0.0, recurrent_scale: float = 1.0, classes: int = 10,
                        engine: str = "auto") -> GradientFlow:
    """Gradient flow of a fresh layer on one random sequence, in float64.

    The sequence x_t ~ N(0, 1) has ``hidden_size`` features; the loss is the cross-entropy of a fixed random
    linear readout of h_t (``classes`` outputs, as a language model's softmax layer) against random targets.
    The layer, the readout, the inputs and the targets depend only on ``seed``: every cell type sees the
    same sequence. The layer runs on ``engine``, one step per call (see :func:`per_step_gradient_norms`).
    """
    layer = fresh_layer(cell, hidden_size, hidden_size, seed=seed, forget_bias=forget_bias,
                        recurrent_scale=recurrent_scale, engine=engine)
    generator = torch.Generator().manual_seed(seed + 1)
    readout = nn.Linear(hidden_size, classes).double()
    with torch.no_grad():
        bound = 1 / math.sqrt(hidden_size)  # nn.Linear's default range, drawn from our generator
        readout.weight.uniform_(-bound, bound, generator=generator)
        readout.bias.uniform_(-bound, bound, generator=generator)
    x = torch.randn(length, 1, hidden_size, generator=generator, dtype=torch.float64)  # (L, N=1, H_in)
    targets = torch.randint(0, classes, (length, 1), generator=generator)  # (L, N=1)

    def loss_fn(t: int, h: Tensor) -> Tensor:
        return F.cross_entropy(readout(h), targets[t], reduction="sum")

    return per_step_gradient_norms(layer, x, loss_fn=loss_fn, loss=loss,
                                   parameters=[*layer.parameters(), *readout.parameters()])
