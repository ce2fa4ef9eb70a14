"""Where a training run stands, saved in every checkpoint so that a resumed run continues exactly.

    >>> from dataclasses import asdict
    >>> position = Position(step=3, epoch=1)
    >>> Position(**asdict(position)) == position       # what a checkpoint stores reads back the same
    True
"""

from dataclasses import dataclass, field


@dataclass
class Position:
    """The step, the epoch and the batch within it, the running sums of the epoch and of the run, and the
    best validation results so far (``best_epoch``: the epoch that reached ``best_score``, a fraction such as
    3.5 when it was a partial epoch validated at a stop (``best_partial``); None in checkpoints written before it
    was recorded)."""

    # where: optimizer steps so far, the epoch (0-based) and the batch within it
    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    # this epoch so far: the summed training loss, its target tokens, its seconds of training steps
    epoch_loss_sum: float = 0.0
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    # the whole run: target tokens, seconds of training steps, wall-clock seconds (across resumes)
    total_tokens: int = 0
    total_step_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    # the same of the steps after each session's warm-up (budget.WARMUP_STEPS): the speed a calibration reads
    warm_tokens: int = 0
    warm_step_seconds: float = 0.0
    # the best validation so far, for best.json, early stopping and the report
    best_valid_loss: float | None = None
    best_score: float | None = None
    epochs_without_improvement: int = 0
    best_epoch: int | None = None
    # whether the best is a partial epoch's (validated at a stop mid-epoch; best_epoch is then fractional)
    best_partial: bool = False
    # every finished epoch's record (what metrics.jsonl holds)
    history: list[dict] = field(default_factory=list)
