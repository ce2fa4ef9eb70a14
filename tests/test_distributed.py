"""Data-parallel training: 2 CPU processes (gloo) take the same steps as 1 process on the combined batch."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import PaddedToyTask, StreamToyTask, ToyLanguageModel
from safetensors.torch import load_file, save_file

from rnnkit.train import RunDirectory, TrainConfig, Trainer, seed_everything
from rnnkit.train import distributed

TASKS = {"stream": StreamToyTask, "padded": PaddedToyTask}
# SGD, not Adam: Adam divides by the gradient's own magnitude, which turns float rounding on near-zero
# gradients into visible differences, while SGD keeps the two runs within rounding of each other.
CONFIG = dict(epochs=None, max_steps=3, lr=0.5, optimizer="sgd", momentum=0.9, clip=1.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_on_rows(task_name, rows, dist, run_dir=None):
    seed_everything(0)
    model = ToyLanguageModel(num_layers=2)
    trainer = Trainer(model, TASKS[task_name](rows=rows), TrainConfig(**CONFIG), dist=dist, run_dir=run_dir)
    trainer.fit()
    return model


def worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size), RANK=str(rank))
    torch.set_num_threads(1)
    dist = distributed.setup("cpu")
    try:
        rows = slice(rank * 2, rank * 2 + 2)  # this rank's block of the global batch of 4 rows
        for task_name in TASKS:
            path = os.path.join(out_dir, task_name)
            run_dir = RunDirectory.create(path) if rank == 0 else RunDirectory(path)
            model = train_on_rows(task_name, rows, dist, run_dir)
            weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
            save_file(weights, os.path.join(out_dir, f"{task_name}-rank{rank}.safetensors"))
    finally:
        distributed.teardown(dist)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """Both toy tasks trained by 2 processes (one spawn for both, as starting processes is the slow part)."""
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(2, free_port(), str(out_dir)), nprocs=2, join=True)
    return out_dir


@pytest.mark.parametrize("task_name", list(TASKS))
def test_two_processes_equal_one_process_on_the_combined_batch(two_process_runs, task_name):
    single = train_on_rows(task_name, None, distributed.DistContext()).state_dict()
    ranks = [load_file(two_process_runs / f"{task_name}-rank{rank}.safetensors") for rank in range(2)]
    for name, expected in single.items():
        for weights in ranks:
            torch.testing.assert_close(weights[name], expected, rtol=1e-5, atol=1e-6, msg=name)


def test_only_rank_0_writes_and_the_checkpoint_holds_every_rank_state(two_process_runs):
    checkpoint = RunDirectory.open(two_process_runs / "stream").load()
    assert checkpoint.meta["trainer"]["world_size"] == 2
    assert checkpoint.tensors["carry/0"].shape == (2, 4, 8)  # (layers, N of both ranks, H)
    assert len(checkpoint.meta["trainer"]["rng"]["torch"]) == 2
