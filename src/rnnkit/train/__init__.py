"""Training machinery shared by every task: the Trainer and what it is built from.

    trainer.py      the loop: one optimizer step in a fixed, numbered order; validation, checkpoints, stops
    task.py         Task: the interface a task gives the Trainer (batches, loss, optional scores)
    losses.py       TaskLoss and the summed token cross-entropy
    config.py       TrainConfig: how to train (saved in every checkpoint)
    position.py     Position: where training stands (saved in every checkpoint)
    rng.py          seeding, and capturing / restoring every random generator for an exact resume
    progress.py     the progress bar and the per-epoch lines
    checkpoint.py   run directories and crash-safe checkpoints
    lock.py         one training at a time per run directory (an advisory lock on RUN/.lock)
    optim.py        optimizers and learning-rate schedules
    distributed.py  torch.distributed: process groups, DDP, gathering

    from rnnkit.train import Trainer, TrainConfig, RunDirectory
"""

from .checkpoint import Checkpoint, RunDirectory
from .config import TrainConfig
from .distributed import DistContext
from .losses import TaskLoss, summed_token_loss
from .optim import OPTIMIZERS, SCHEDULES
from .rng import seed_everything
from .task import Task
from .trainer import Trainer

__all__ = [
    "Trainer", "TrainConfig", "Task", "TaskLoss", "seed_everything", "summed_token_loss",
    "RunDirectory", "Checkpoint", "DistContext", "OPTIMIZERS", "SCHEDULES",
]
