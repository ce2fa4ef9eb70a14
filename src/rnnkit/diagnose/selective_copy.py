r"""Selective copying (Gu & Dao 2023, "Mamba"; Feng et al. 2024 train minGRU and minLSTM on it): remember a few
tokens scattered among noise, and say them back in order.

Each sequence has L positions; K of them, at distinct random positions kept in their order, hold data tokens
drawn uniformly; the others hold the noise token. Then come K marker tokens, and at the j-th marker the model
must output the j-th data token. Unlike copy memory (whose data sits at fixed positions, so that a model can
learn *when* to look), the positions change from sequence to sequence: the model has to decide, token by token,
what to keep, which is what an input-dependent gate (or a selective state space) does.

Vocabulary of V ids (V = 16 by default, as in the Mamba paper): 0 the noise token, V − 1 the marker, data tokens
1 .. V − 2. Guessing gives token accuracy 1 / (V − 2), the baseline.

    inputs (N, L + K) ids, targets (N, K) ids; loss: cross-entropy at the K marker positions;
    metric: token accuracy at the K marker positions, on a fixed held-out set

The model (:class:`SelectiveCopyModel`): an embedding of width H, ``rnnkit.nn.Recurrent`` of any registered
cell (``num_layers`` stacked, batch first; engine "auto": torch's fused kernels for RNN / LSTM / GRU, the
native engine for the other cells where it is built, else the scan engine for the linear cells) and a linear readout of the K marker positions. :func:`matched_hidden_sizes` gives
each cell the width whose parameter count is closest to an LSTM's at a reference width.

    >>> from rnnkit.diagnose.selective_copy import SelectiveCopyConfig, train_selective_copy
    >>> row = train_selective_copy(SelectiveCopyConfig(cell="mingru", length=32, tokens=4, hidden_size=16,
    ...                                                steps=3, eval_every=3, eval_size=8))
    >>> row["metric_name"], 0.0 <= row["metric"] <= 1.0
    ('token_accuracy', True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import InputError
from rnnkit.models.recurrent import check_block, recurrent_layer, registered_cell
from rnnkit.models.size import cell_parameter_count, size_for_budget
from rnnkit.train.task import Baseline, uniform_baseline

from .fresh_training import EVAL_CHUNK, FreshSettings, positive_integers, train_on_fresh_batches

TASK_NAME = "selective-copy"
REFERENCE_CELL = "lstm"


@dataclass(frozen=True)
class SelectiveCopy:
    """The data: K data tokens at random positions among L − K noise tokens, then K markers.

    Args:
        tokens: K, the data tokens to copy. vocab: V, all ids (noise 0, data 1 .. V − 2, marker V − 1).
    """

    tokens: int = 16
    vocab: int = 16
    noise: int = 0
    name = TASK_NAME
    metric_name = "token_accuracy"
    selection = ("token_accuracy", "max")
    target_unit = "tok"
    held_out_seed = 20231201  # one fixed held-out set per (L, K, V), whatever the training seed

    @property
    def marker(self) -> int:
        return self.vocab - 1

    @property
    def data_symbols(self) -> int:
        return self.vocab - 2

    def baseline(self, length: int | None = None) -> float:
        """Token accuracy of a uniform guess over the data symbols (at any length)."""
        return 1 / self.data_symbols

    def knows_nothing(self) -> Baseline:
        return uniform_baseline(self.data_symbols, "data symbols")

    def batch(self, n: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(inputs (n, length + K), targets (n, K))``: the scattered tokens, then the markers; the tokens."""
        K = self.tokens
        data = torch.randint(1, self.vocab - 1, (n, K), generator=generator)  # (n, K): ids 1 .. V − 2
        # K distinct positions per row, in increasing order: the first K of a random permutation, sorted
        positions = torch.rand(n, length, generator=generator).argsort(dim=1)[:, :K].sort(dim=1).values  # (n, K)
        inputs = torch.full((n, length + K), self.noise, dtype=torch.long)  # (n, L + K)
        inputs.scatter_(1, positions, data)
        inputs[:, length:] = self.marker
        return inputs, data

    def encode(self, inputs: Tensor) -> Tensor:
        return inputs  # the model embeds the ids

    def loss(self, logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:  # logits (N, K, V), targets (N, K)
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.reshape(-1), reduction=reduction)

    def held_out_scores(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, float]:
        return {"token_accuracy": token_accuracy(model, inputs, targets)}


class SelectiveCopyModel(nn.Module):
    """Embedding (V → H), a stack of ``rnnkit.nn.Recurrent`` layers of any registered cell, a linear readout
    (H → V) at the last K positions.

    Inputs: ids (N, L + K). Output: logits (N, K, V).
    """

    def __init__(self, cell: str, vocab: int, hidden_size: int, num_layers: int, tokens: int,
                 engine: str = "auto", block: str = "plain"):
        super().__init__()
        registered_cell(cell)
        self.tokens = tokens
        self.embedding = nn.Embedding(vocab, hidden_size)
        # block: plain layers, or pre-norm residual blocks (rnnkit.models.blocks), as Feng et al. stack minGRU
        self.rnn = recurrent_layer(cell, hidden_size, hidden_size, num_layers, engine=engine, block=block)
        self.readout = nn.Linear(hidden_size, vocab)

    def forward(self, ids: Tensor) -> Tensor:
        output, _ = self.rnn(self.embedding(ids))  # (N, L + K, H)
        return self.readout(output[:, -self.tokens:])  # (N, K, V)


def copy_model_parameter_count(cell: str, hidden_size: int, vocab: int, num_layers: int) -> int:
    """The parameters :class:`SelectiveCopyModel` will have, from the cell's own parameter list: embedding V·H,
    the layers (every layer's input is H wide), readout H·V + V."""
    per_layer = cell_parameter_count(cell, hidden_size, hidden_size)
    return vocab * hidden_size + num_layers * per_layer + hidden_size * vocab + vocab


def matched_hidden_sizes(reference_hidden: int, cells: list[str], vocab: int = 16,
                         num_layers: int = 2) -> dict[str, int]:
    """For each cell, the width whose parameter count is closest to an LSTM's at ``reference_hidden``."""
    budget = copy_model_parameter_count(REFERENCE_CELL, reference_hidden, vocab, num_layers)
    return {cell: size_for_budget(lambda h: copy_model_parameter_count(cell, h, vocab, num_layers), budget)
            for cell in cells}


@dataclass(kw_only=True)
class SelectiveCopyConfig(FreshSettings):
    """One training run of one cell on selective copying, all by keyword; with the training settings of
    :class:`~rnnkit.diagnose.fresh_training.FreshSettings`, whose defaults are its own here: batch 64, lr 3e-3,
    10,000 steps, 512 held-out sequences.

    Args:
        cell: any registered cell. length: L, the scattered part (the sequence has L + K steps).
        tokens: K. vocab: V (noise, marker and V − 2 data symbols).
        hidden_size, num_layers: the model's width and depth.
        block: ``"plain"`` (stacked layers) or ``"residual"`` (pre-norm residual blocks, rnnkit.models.blocks).
        stop_above: stop once the held-out token accuracy is at or above this (None: never early).
    """

    cell: str
    length: int = 512
    tokens: int = 16
    vocab: int = 16
    hidden_size: int = 128
    num_layers: int = 2
    block: str = "plain"
    batch_size: int = 64
    lr: float = 3e-3
    steps: int = 10_000
    eval_size: int = 512
    stop_above: float | None = None

    def __post_init__(self):
        registered_cell(self.cell)
        check_block(self.block)
        positive_integers(self, ("length", "tokens", "hidden_size", "num_layers"))
        super().__post_init__()
        if self.tokens > self.length:
            raise InputError(f"selective copying needs at least as many positions as tokens: length {self.length} < "
                             f"tokens {self.tokens}; raise the length or lower the tokens")
        if isinstance(self.vocab, bool) or not isinstance(self.vocab, int) or self.vocab < 3:
            raise InputError(f"vocab must be an integer of at least 3 (noise, marker, one data symbol), "
                             f"got {self.vocab!r}")


def token_accuracy(model: SelectiveCopyModel, inputs: Tensor, targets: Tensor) -> float:
    """The fraction of the K output tokens predicted right (argmax), over a held-out set."""
    right = 0
    for start in range(0, len(inputs), EVAL_CHUNK):
        logits = model(inputs[start:start + EVAL_CHUNK])  # (n, K, V)
        right += (logits.argmax(-1) == targets[start:start + EVAL_CHUNK]).sum().item()
    return right / targets.numel()


@contextmanager
def flush_denormals() -> Iterator[None]:
    r"""Subnormal floats (|x| < 1.2·10⁻³⁸ in float32) read as 0 inside the block (the CPU's flush-to-zero and
    denormals-are-zero modes, :func:`torch.set_flush_denormal`); PyTorch's default, off, afterwards.

    Why: only the last K positions are read out, so the gradient reaching the L noise positions comes back
    through the recurrence alone and shrinks geometrically into the subnormal range, where each CPU
    multiplication takes a slow microcode path. Profiled on the recipe's model (residual minGRU, H = 128, 3
    blocks, batch 64, L = 512, K = 16, 2 threads): 20x slower matrix products in the blocks' MLP backward,
    8.6 s a step, against 1.1 s with them flushed. A value that small moves no weight (Adam's ε is 10⁻⁸), so
    flushing it changes nothing the model learns. A no-op where the CPU has no such mode.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def train_selective_copy(config: SelectiveCopyConfig, log: Callable[[str], None] | None = None,
                         log_every_seconds: float = 30.0) -> dict:
    """Train one model on selective copying with the Trainer; returns its result row, the row of
    :func:`~rnnkit.diagnose.fresh_training.train_on_fresh_batches` as the adding problem and copy memory give it,
    so that the memory-task tables and plots take it: ``"metric_name": "token_accuracy"``, and ``"stop_above"``
    when the held-out token accuracy reached ``config.stop_above``."""
    task = SelectiveCopy(tokens=config.tokens, vocab=config.vocab)
    torch.manual_seed(config.seed)
    model = SelectiveCopyModel(config.cell, config.vocab, config.hidden_size, config.num_layers, config.tokens,
                               engine=config.engine, block=config.block)
    name = (f"selective copy L={config.length} K={config.tokens} {config.cell} "
            f"(H={config.hidden_size}, {config.num_layers} layers)")
    with flush_denormals():  # the gradient on the noise positions is subnormal: 8x faster steps (flush_denormals)
        return train_on_fresh_batches(model, task, config, target=config.stop_above, name=name, log=log,
                                      log_every_seconds=log_every_seconds)
