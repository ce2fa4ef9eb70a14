r"""The long-term-dependency benchmarks: the adding problem and the copy-memory task.

**Adding problem** (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015 and Arjovsky et al. 2016).
Each input step is a pair (value, marker): values uniform in [0, 1); markers 0 except at exactly two steps,
one drawn uniformly from the first half [0, T//2) and one from the second half [T//2, T). The target, read
after the last step, is the sum of the two marked values. Predicting the mean 1 whatever the input gives
MSE = Var(U_1 + U_2) = 2/12 ≈ 0.167: the baseline of a model that remembers nothing.

    inputs (N, T, 2) float, targets (N,) float; metric: mean squared error

**Copy memory** (Arjovsky et al. 2016). Alphabet 0..9: 0 blank, 1..8 data symbols, 9 the delimiter. The input
is 10 data symbols drawn uniformly, T − 1 blanks, the delimiter, then 10 blanks (T + 20 steps); the target
is T + 10 blanks followed by the 10 data symbols: after T steps of waiting, repeat what you saw. Outputting
blanks and then a uniform guess over the 8 symbols costs 10·log(8) / (T + 20) nats per step: the baseline.

    inputs (N, T + 20) ids (fed one-hot), targets (N, T + 20) ids; metric: cross-entropy per step (nats)

**Models with equal parameter budgets.** Each registered cell (:func:`rnnkit.nn.cell_names`) gets one
``rnnkit.nn.Recurrent`` layer and a linear readout (of the last step for adding, of every step for copy). The
layer's parameter count is read from the cell's own parameter list (for the torch cells with G gate blocks,
tanh RNN 1, GRU 3, LSTM 4, and hidden size H it is ``G (H·I + H·H + 2H)``), plus ``H·O + O`` for the
readout; :func:`matched_hidden_sizes` picks for each cell the H whose count is closest to the LSTM's at the
reference size (hidden 128 for the LSTM gives 258 for the tanh RNN and 148 for the GRU on the adding problem).

**Training** (:func:`train_memory_task`): fresh random batches at every step (an endless supply, as in the
papers), Adam, global gradient-norm clipping, and the metric measured on a fixed held-out set every
``eval_every`` steps, until a step limit, a time budget or a target metric is reached; the Trainer runs it
(:mod:`rnnkit.diagnose.fresh_training`).
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import InputError
from rnnkit.models.recurrent import recurrent_layer, registered_cell
from rnnkit.models.size import cell_parameter_count, size_for_budget
from rnnkit.train.task import Baseline, uniform_baseline

from .fresh_training import FreshSettings, positive_integers, train_on_fresh_batches

REFERENCE_CELL = "lstm"


class AddingProblem:
    """Inputs (N, T, 2): (value, marker); target (N,): the sum of the two marked values."""

    name = "adding"
    input_size = 2
    output_size = 1
    per_step = False
    metric_name = "mse"
    selection = None  # the metric is the validation loss
    target_unit = "seq"
    held_out_seed = 20160101
    min_length = 2  # one marker in each half

    def batch(self, n: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        values = torch.rand(n, length, generator=generator)  # (N, T)
        first = torch.randint(0, length // 2, (n,), generator=generator)  # (N,) in the first half
        second = torch.randint(length // 2, length, (n,), generator=generator)  # (N,) in the second half
        rows = torch.arange(n)
        markers = torch.zeros(n, length)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        inputs = torch.stack([values, markers], dim=2)  # (N, T, 2)
        targets = values[rows, first] + values[rows, second]  # (N,)
        return inputs, targets

    def encode(self, inputs: Tensor) -> Tensor:
        return inputs

    def baseline(self, length: int) -> float:
        return 1 / 6

    def knows_nothing(self) -> Baseline:
        return Baseline(1 / 6, "predicting the mean sum, 1")

    def loss(self, output: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:  # output (N, 1)
        return F.mse_loss(output.squeeze(1), targets, reduction=reduction)

    def held_out_scores(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, float]:
        return {}


class CopyMemory:
    """Inputs (N, T + 20) symbol ids; targets (N, T + 20): blanks, then the first 10 inputs again."""

    name = "copy"
    symbols = 10
    input_size = symbols  # one-hot
    output_size = symbols
    per_step = True
    metric_name = "cross_entropy"
    selection = None  # the metric is the validation loss
    target_unit = "steps"
    held_out_seed = 20160101
    min_length = 1
    copy_length = 10
    data_symbols = 8  # ids 1..8
    blank = 0
    delimiter = 9

    def batch(self, n: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        k = self.copy_length
        data = torch.randint(1, self.data_symbols + 1, (n, k), generator=generator)  # (N, 10)
        inputs = torch.full((n, length + 2 * k), self.blank, dtype=torch.long)  # (N, T + 20)
        inputs[:, :k] = data
        inputs[:, length + k - 1] = self.delimiter  # after T - 1 blanks
        targets = torch.full_like(inputs, self.blank)  # (N, T + 20)
        targets[:, length + k :] = data
        return inputs, targets

    def encode(self, inputs: Tensor) -> Tensor:
        return F.one_hot(inputs, self.symbols).float()  # (N, T + 20, 10)

    def baseline(self, length: int) -> float:
        return self.copy_length * math.log(self.data_symbols) / (length + 2 * self.copy_length)

    def knows_nothing(self) -> Baseline:
        return uniform_baseline(self.symbols, "symbols")

    def loss(self, output: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:  # output (N, T + 20, 10)
        return F.cross_entropy(output.reshape(-1, self.symbols), targets.reshape(-1), reduction=reduction)

    def held_out_scores(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, float]:
        return {}


TASKS = {"adding": AddingProblem(), "copy": CopyMemory()}


def get_task(name: str):
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


class MemoryTaskModel(nn.Module):
    """One ``rnnkit.nn.Recurrent`` layer of any registered cell (batch first) and a linear readout of the last
    step or of every step.

    Inputs: x (N, L, I). Outputs: (N, O) when ``per_step`` is False, else (N, L, O).
    ``forget_bias`` is added to the forget-gate bias after the cell's initialisation, for cells that have a
    forget gate (the LSTM family); others ignore it. The layer runs on ``engine`` (InputError where it cannot).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, per_step: bool,
                 forget_bias: float = 0.0, engine: str = "auto"):
        super().__init__()
        cell_type = registered_cell(cell)
        self.per_step = per_step
        bias = forget_bias if forget_bias and cell_type.forget_gate is not None else None
        self.rnn = recurrent_layer(cell, input_size, hidden_size, engine=engine, forget_bias=bias)
        self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.rnn(x)  # (N, L, H)
        return self.readout(output if self.per_step else output[:, -1])  # (N, L, O) or (N, O)


def memory_model_parameter_count(cell: str, hidden_size: int, input_size: int, output_size: int) -> int:
    """The parameters :class:`MemoryTaskModel` will have: the cell's own parameter list at this size, plus
    ``H·O + O`` for the readout."""
    return cell_parameter_count(cell, hidden_size, input_size) + hidden_size * output_size + output_size


def matched_hidden_sizes(task_name: str, reference_hidden: int, cells: list[str]) -> dict[str, int]:
    """For each cell, the hidden size whose parameter count is closest to an LSTM's of ``reference_hidden``."""
    task = get_task(task_name)
    budget = memory_model_parameter_count(REFERENCE_CELL, reference_hidden, task.input_size, task.output_size)
    return {cell: size_for_budget(lambda h: memory_model_parameter_count(cell, h, task.input_size, task.output_size),
                                  budget) for cell in cells}


@dataclass
class MemoryTaskConfig(FreshSettings):
    """One training run of one cell on one task at one length; by keyword, the training settings of
    :class:`~rnnkit.diagnose.fresh_training.FreshSettings`.

    Args:
        task: ``"adding"`` or ``"copy"``. length: T. cell: any registered cell (``"rnn"``, ``"lstm"``, ...).
        hidden_size: the layer's width (see :func:`matched_hidden_sizes`).
        stop_below: stop once the held-out metric is at or below this (None: never early).
        forget_bias: added to the forget-gate bias of cells that have one (Gers et al. 2000; 0 keeps the init).
    """

    task: str
    length: int
    cell: str
    hidden_size: int
    _: KW_ONLY
    stop_below: float | None = None
    forget_bias: float = 1.0

    def __post_init__(self):
        task = get_task(self.task)
        registered_cell(self.cell)
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < task.min_length:
            raise InputError(f"the {self.task} task needs a length T of at least {task.min_length}, got {self.length!r}")
        positive_integers(self, ("hidden_size",))
        super().__post_init__()


def train_memory_task(config: MemoryTaskConfig, log: Callable[[str], None] | None = None,
                      log_every_seconds: float = 30.0) -> dict:
    """Train one model on one task with the Trainer; returns the result row of
    :func:`~rnnkit.diagnose.fresh_training.train_on_fresh_batches` ("stop_below" when the held-out metric
    reached ``config.stop_below``), with ``"test_metric"``: the model as it stopped, on ``config.eval_size`` fresh
    test sequences that the stop rule never read."""
    task = get_task(config.task)
    torch.manual_seed(config.seed)
    model = MemoryTaskModel(config.cell, task.input_size, config.hidden_size, task.output_size, task.per_step,
                            forget_bias=config.forget_bias, engine=config.engine)
    name = f"{config.task} T={config.length} {config.cell} (H={config.hidden_size})"
    return train_on_fresh_batches(model, task, config, target=config.stop_below, name=name, log=log,
                                  log_every_seconds=log_every_seconds, test_size=config.eval_size)
