"""Training machinery shared by every task: the Trainer and what it is built from.

    trainer.py      the loop: one optimizer step in a fixed, numbered order; validation, checkpoints, stops
    stops.py        when a run stops: epochs, steps, the time budget over all sessions, a signal
    budget.py       a time budget that pays for the final validation and checkpoint
    best_epoch.py   which epoch is best (the task's chosen score, or the validation loss); early stopping
    task.py         Task: the interface a task gives the Trainer (batches, loss, optional scores)
    losses.py       TaskLoss and the summed token cross-entropy
    config.py       TrainConfig: how to train (saved in every checkpoint)
    position.py     Position: where training stands (saved in every checkpoint)
    rng.py          seeding, and capturing / restoring every random generator for an exact resume
    progress.py     the progress bars (training, and tracked() loops of any command) and the per-epoch lines
    checkpoint.py   run directories and crash-safe checkpoints; --overwrite that keeps the old run until it can go
    checkpoint_files.py  one checkpoint's files: names rnnkit gives, format versions, deleting only its own
    run_layout.py   what a run directory holds: a run, the remains of one (no latest.json), or leftovers
    outputs.py      where a file asked for may be written (never over an input or a run's own files)
    strict_json.py  their JSON: no Infinity or NaN, a checksum in every file
    tensor_state.py an optimizer's or RNG's state as JSON and named tensors (never a pickle)
    lock.py         one training at a time per run directory (an advisory lock on RUN/.lock)
    optim.py        optimizers and learning-rate schedules
    distributed.py  torch.distributed: process groups, DDP, gathering

    from rnnkit.train import Trainer, TrainConfig, RunDirectory
"""

from .checkpoint import Checkpoint, RunDirectory
from .config import TrainConfig
from .distributed import DistContext
from .losses import TaskLoss, summed_token_loss
from .optim import OPTIMIZERS, SCHEDULE_CLOCKS, SCHEDULES
from .rng import seed_everything
from .task import Task
from .trainer import Trainer

__all__ = [
    "Trainer", "TrainConfig", "Task", "TaskLoss", "seed_everything", "summed_token_loss",
    "RunDirectory", "Checkpoint", "DistContext", "OPTIMIZERS", "SCHEDULES", "SCHEDULE_CLOCKS",
]
