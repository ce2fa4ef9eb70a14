r"""How the models stack their recurrent layers: ``plain`` (the layers on top of each other, as torch.nn.LSTM) or
``residual`` (pre-norm residual blocks, as the minGRU paper and Griffin stack their recurrences).

A residual stack of K blocks over the model width W = D·H (H units per direction, D = 2 if bidirectional):

.. math::

    x^{(0)} = x\,P + p                  \quad (P: F \to W, \text{only where } F \ne W)

    u^{(k)} = x^{(k-1)} + \mathrm{drop}(\mathrm{RNN}_k(\mathrm{LN}_k(x^{(k-1)})))

    x^{(k)} = u^{(k)} + \mathrm{drop}(\mathrm{MLP}_k(\mathrm{LN}'_k(u^{(k)})))

    y = \mathrm{LN}_{out}(x^{(K)})

with the gated MLP (GeGLU, Shazeer 2020; Griffin's MLP block) of expansion e (default 3):

.. math::

    \mathrm{MLP}(v) = \big((v W_1 + b_1) \odot \mathrm{GELU}(v W_2 + b_2)\big) W_3 + b_3,
    \quad W_1, W_2: W \to eW, \; W_3: eW \to W

``RNN_k`` is one layer of any registered cell; a bidirectional layer's two directions are concatenated, which is
already W wide, so the residual add needs no projection. Each block keeps its layer's state in torch.nn's layout,
and the stack's state is the blocks' states stacked: (K·D, N, H), a pair (h, c) for cells with a cell state, the
same shapes as a plain stack's. So generation carries it, streaming feeds it back, and export finds every
recurrent layer (``find_layers``) inside the blocks. The final LayerNorm keeps the residual stream's growing scale
away from the model's head (the pre-norm convention: the stream itself is never normalised).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..nn import LockedDropout, Recurrent

BLOCKS = ("plain", "residual")
MLP_EXPANSION = 3  # Griffin's MLP expansion factor


class GatedMLP(nn.Module):
    r"""``((v W_1 + b_1) ⊙ GELU(v W_2 + b_2)) W_3 + b_3`` over the last dimension (W_1 and W_2 held as one
    Linear ``up`` of 2eW outputs: the first eW are W_1's, the rest W_2's).

    Inputs: v (*, W). Outputs: (*, W).
    """

    def __init__(self, width: int, expansion: int = MLP_EXPANSION):
        super().__init__()
        self.inner = expansion * width
        self.up = nn.Linear(width, 2 * self.inner)
        self.down = nn.Linear(self.inner, width)

    def forward(self, v: Tensor) -> Tensor:
        value, gate = self.up(v).chunk(2, dim=-1)  # (*, eW) each
        return self.down(value * F.gelu(gate))  # (*, W)


class ResidualBlock(nn.Module):
    r"""One pre-norm block: ``u = x + drop(RNN(LN(x)))``, ``x' = u + drop(MLP(LN'(u)))``.

    Args:
        cell: any registered cell. hidden_size: H per direction. bidirectional: D = 2.
        dropout: on each branch before its residual add. locked_dropout: one mask per sequence.
        engine, options: the recurrent layer's engine and regularisers (:data:`~rnnkit.models.recurrent.RECURRENT_OPTIONS`).

    Inputs: x (N, L, W), lengths (N,) or None, hx (D, N, H) (a pair for a cell state) or None.
    Outputs: (N, L, W), the layer's final state.
    """

    def __init__(self, cell: str, hidden_size: int, bidirectional: bool = False, dropout: float = 0.0,
                 locked_dropout: bool = False, engine: str = "auto", mlp_expansion: int = MLP_EXPANSION, **options):
        super().__init__()
        width = (2 if bidirectional else 1) * hidden_size
        self.norm_rnn = nn.LayerNorm(width)
        # One layer: the dropout between layers of a plain stack has no place inside a block (drop is on the branch).
        self.rnn = Recurrent(cell, width, hidden_size, 1, batch_first=True, bidirectional=bidirectional,
                             engine=engine, **options)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = GatedMLP(width, mlp_expansion)
        # on (N, L, W) steps: one mask per sequence (variational) or a fresh one per element
        self.drop = LockedDropout(dropout, batch_first=True) if locked_dropout else nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor | None, hx=None):
        h = self.norm_rnn(x)  # (N, L, W)
        if lengths is None:
            h, state = self.rnn(h, hx)  # (N, L, W)
        else:  # packed, so that each row's recurrence reads its own steps only (both directions)
            packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            packed_h, state = self.rnn(packed, hx)
            h, _ = pad_packed_sequence(packed_h, batch_first=True, total_length=x.size(1))  # (N, L, W)
        u = x + self.drop(h)  # (N, L, W)
        return u + self.drop(self.mlp(self.norm_mlp(u))), state  # (N, L, W)


class ResidualRecurrent(nn.Module):
    r"""A stack of :class:`ResidualBlock` with a plain stack's interface (batch first): ``forward(input, hx)`` ->
    ``(output, state)``, input (N, L, F) or a PackedSequence (of batch-first padding), state in torch.nn's layout.

    Args:
        cell: any registered cell. input_size: F. hidden_size: H per direction. num_layers: K blocks.
        bidirectional: D = 2 (each block's layer reads both ways; W = 2H). dropout: on each branch.
        engine: the engine of every block's layer. mlp_expansion: e of the gated MLP (default 3).
        options: :data:`~rnnkit.models.recurrent.RECURRENT_OPTIONS` (``locked_dropout``: the branch dropout keeps
            one mask per sequence).

    Inputs: input, hx
        input: (N, L, F), or a PackedSequence of such a batch (what ``pack_padded_sequence(..., batch_first=True)``
            makes): each row's recurrence stops at its own length, and the output is 0 past it.
        hx: (K·D, N, H), a pair (h, c) of them for a cell with a cell state, or None for zeros.

    Outputs: output, state: (N, L, W) (packed again where the input was), and the final state as hx.

    Attributes as a plain stack's, for the code that sizes states: ``cell``, ``input_size``, ``hidden_size``,
    ``num_layers`` (K), ``bidirectional``, ``proj_size`` (0), ``batch_first`` (True), ``engine``.
    """

    batch_first = True
    proj_size = 0

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 bidirectional: bool = False, dropout: float = 0.0, engine: str = "auto",
                 mlp_expansion: int = MLP_EXPANSION, **options):
        super().__init__()
        locked = options.pop("locked_dropout", False)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional = bidirectional
        self.directions = 2 if bidirectional else 1
        self.width = self.directions * hidden_size
        # The residual stream is W wide: an input of another width is projected onto it once.
        self.project = nn.Linear(input_size, self.width) if input_size != self.width else None
        self.blocks = nn.ModuleList(
            ResidualBlock(cell, hidden_size, bidirectional, dropout, locked, engine, mlp_expansion, **options)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(self.width)

    @property
    def cell(self):
        return self.blocks[0].rnn.cell

    @property
    def engine(self) -> str:
        return self.blocks[0].rnn.engine

    @engine.setter
    def engine(self, engine: str) -> None:
        for block in self.blocks:
            block.rnn.engine = engine

    def reset_norms(self) -> None:
        """Every LayerNorm back to gain 1, shift 0: after a model draws all its parameters from one range
        (``init_range``), a gain near 0 would silence each branch and the output."""
        for module in self.modules():
            if isinstance(module, nn.LayerNorm):
                module.reset_parameters()

    def _add_forget_bias(self) -> None:
        """The forget-gate bias on every block's layer (after a model re-initialises the parameters)."""
        for block in self.blocks:
            block.rnn._add_forget_bias()

    def forward(self, input, hx=None):
        packed = not isinstance(input, Tensor)
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=True)  # (N, L, F), (N,)
        else:
            x, lengths = input, None
        if x.dim() != 3:
            raise ValueError(f"a residual stack reads batch-first (N, L, F) steps, got shape {tuple(x.shape)}")
        if self.project is not None:
            x = self.project(x)  # (N, L, W)
        states = []
        for k, block in enumerate(self.blocks):
            x, state = block(x, lengths, self._layer_state(hx, k))  # (N, L, W)
            states.append(state)
        y = self.norm(x)  # (N, L, W)
        if lengths is not None:
            real = torch.arange(y.size(1), device=y.device).unsqueeze(0) < lengths.to(y.device).unsqueeze(1)  # (N, L)
            y = y * real.unsqueeze(2).to(y.dtype)  # 0 past each length, as a plain stack's padded output
            y = pack_padded_sequence(y, lengths, batch_first=True, enforce_sorted=False)
        return y, self._stacked(states)

    def _layer_state(self, hx, k: int):
        """Block k's rows of the stack's state: (D, N, H), or the pair."""
        if hx is None:
            return None
        rows = slice(k * self.directions, (k + 1) * self.directions)
        return tuple(part[rows] for part in hx) if isinstance(hx, tuple) else hx[rows]

    @staticmethod
    def _stacked(states: list):
        """The blocks' final states as one: (K·D, N, H), or the pair."""
        if isinstance(states[0], tuple):
            return tuple(torch.cat(parts, dim=0) for parts in zip(*states))
        return torch.cat(states, dim=0)

    def extra_repr(self) -> str:
        return (f"{self.cell.name!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
                + (", bidirectional=True" if self.bidirectional else "") + f", engine={self.engine!r}")
