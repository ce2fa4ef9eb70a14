"""Where a training run stands, saved in every checkpoint so that a resumed run continues exactly.

    >>> position = Position(step=3, epoch=1)
    >>> Position(**asdict(position)) == position       # what a checkpoint stores reads back the same
    True
"""

from dataclasses import asdict, dataclass, field  # noqa: F401  (asdict: the docstring's example)


@dataclass
class Position:
    """The step, the epoch and the batch within it, the running sums of the epoch and of the run, and the
    best validation results so far (``best_epoch``: the finished epoch that reached ``best_score``; None in
    checkpoints written before it was recorded)."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    epoch_loss_sum: float = 0.0
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    total_tokens: int = 0
    total_step_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    best_valid_loss: float | None = None
    best_score: float | None = None
    epochs_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
