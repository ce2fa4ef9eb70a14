"""Every random generator a training step may draw from: seeded at the start, captured in each checkpoint,
restored on resume, so that a resumed run draws exactly the dropout masks and data order it would have.

    >>> seed_everything(0); first = torch.rand(1)
    >>> seed_everything(0); bool(torch.rand(1) == first)
    True
"""

import random

import numpy as np
import torch

from .distributed import DistContext


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators: same seed, same initialisation and dropout."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def capture_rng(dist: DistContext) -> dict:
    """Every generator a training step may draw from; torch's from every rank (each has its own dropout)."""
    numpy_state = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": [state.cpu() for state in dist.gather_all(torch.get_rng_state().to(dist.device))],
    }
    if dist.device.type == "cuda":
        rng["cuda"] = [state.cpu() for state in dist.gather_all(torch.cuda.get_rng_state().to(dist.device))]
    return rng


def restore_rng(rng: dict, dist: DistContext) -> None:
    """Put back what :func:`capture_rng` captured (JSON turned its tuples into lists)."""
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    # A run resumed on a different number of ranks keeps the fresh seeds of the ranks it has no state for.
    if dist.rank < len(rng["torch"]):
        torch.set_rng_state(rng["torch"][dist.rank].to(torch.uint8))
    if "cuda" in rng and dist.device.type == "cuda" and dist.rank < len(rng["cuda"]):
        torch.cuda.set_rng_state(rng["cuda"][dist.rank].to(torch.uint8))
