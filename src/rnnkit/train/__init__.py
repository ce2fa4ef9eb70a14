"""Training machinery shared by every task: the Trainer, checkpoints, optimizers and schedules, DDP.

    from rnnkit.train import Trainer, TrainConfig, RunDirectory
"""

from .checkpoint import Checkpoint, RunDirectory
from .distributed import DistContext
from .optim import OPTIMIZERS, SCHEDULES
from .trainer import Task, TaskLoss, TrainConfig, Trainer, seed_everything, summed_token_loss

__all__ = [
    "Trainer", "TrainConfig", "Task", "TaskLoss", "seed_everything", "summed_token_loss",
    "RunDirectory", "Checkpoint", "DistContext", "OPTIMIZERS", "SCHEDULES",
]
