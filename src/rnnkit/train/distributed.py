"""Data-parallel training on torch.distributed: the process group, the wrapped model, and the collectives
the Trainer needs.

Launch: ``torchrun --nproc-per-node=N -m rnnkit train lm ...``. torchrun sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`setup` reads them and joins the group (gloo on CPU, nccl on GPU). Every rank trains on
its own rows of the global batch; DistributedDataParallel averages the gradients, so N ranks with N row
blocks take the same steps as one process with the whole batch. Only rank 0 writes checkpoints and logs.
Without torchrun, :func:`setup` returns a single-process context and nothing here communicates.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rnnkit.errors import InputError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the group: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, metrics and progress."""
        return self.rank == 0

    def check_batch_size(self, batch_size: int) -> None:
        """InputError unless a batch of ``batch_size`` rows gives every process at least one row."""
        if batch_size < self.world_size:
            raise InputError(f"--batch-size {batch_size} is smaller than the {self.world_size} processes; "
                             f"use at least {self.world_size}")

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model to train: DDP-wrapped when distributed (it also copies rank 0's weights to all ranks)."""
        if not self.is_distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def sum(self, values: list[float]) -> list[float]:
        """The element-wise sum of ``values`` over all ranks (float64, so token counts stay exact)."""
        if not self.is_distributed:
            return list(values)
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)  # (len(values),)
        dist.all_reduce(totals)
        return totals.tolist()

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's ``tensor`` along dim 1, the batch dim of a hidden state (layers, N, H)."""
        if not self.is_distributed:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=1)  # (layers, N * world_size, H)

    def local_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's block of a full-batch hidden state: the inverse of :meth:`gather_rows`."""
        if not self.is_distributed:
            return tensor
        return tensor.chunk(self.world_size, dim=1)[self.rank]

    def gather_all(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of a same-shaped tensor (e.g. RNG states), in rank order."""
        if not self.is_distributed:
            return [tensor]
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return parts


def setup(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment, or return a single-process context.

    ``device`` is ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    """
    use_cuda = _wants_cuda(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=torch.device("cuda" if use_cuda else "cpu"))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
        return DistContext(rank, world_size, local_rank, torch.device("cuda", local_rank))
    dist.init_process_group("gloo")
    return DistContext(rank, world_size, local_rank, torch.device("cpu"))


def launched_rank() -> int:
    """This process's rank as torchrun's environment gives it before any group is joined (0 without torchrun,
    or with a ``RANK`` that is not a whole number, which :func:`setup` then refuses)."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return 0
    rank = os.environ.get("RANK", "0").strip()
    return int(rank) if rank.isdigit() else 0


def teardown(context: DistContext) -> None:
    """Leave the process group (a no-op for a single process)."""
    if context.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def _wants_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        return True
    if device == "auto":
        return torch.cuda.is_available()
    raise InputError(f"unknown device {device!r}; choose auto, cpu or cuda")
