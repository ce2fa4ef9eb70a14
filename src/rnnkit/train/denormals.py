r"""Subnormal floats flushed to zero while training: :func:`flushed_denormals`.

A float32 below 1.18·10⁻³⁸ in magnitude is *subnormal*; x86 CPUs multiply and add such numbers on a slow
microcode path, tens of times slower than normal ones. Training makes them where a gradient shrinks
geometrically back through time: on selective copying (only the last K of L positions are read out) the
gradient reaching the noise positions decays into the subnormal range, and profiling found the blocks' MLP
backward 20x slower, a step 8x slower (8.6 s against 1.1 s). A value that small moves no weight (Adam divides
by √v + 10⁻⁸; SGD's step is lr times it), so reading it as zero changes nothing that is learnt. The CPU's
flush-to-zero / denormals-are-zero modes (:func:`torch.set_flush_denormal`) do it at no cost.

The mode belongs to the process (the thread, in fact), so it is set for the training only and put back
afterwards, also when the training fails. torch has no getter for it: whether it is on is read from the
arithmetic itself (a subnormal times one reads as zero under the mode). Where the CPU has no such mode
(``set_flush_denormal`` returns False), nothing changes.

    >>> with flushed_denormals():
    ...     tiny = torch.tensor([1e-40]) * 1.0   # a subnormal operand reads as 0 here (on x86)
    >>> flush_denormal_enabled()                  # and the process's mode is what it was before
    False
"""

from contextlib import contextmanager
from typing import Iterator

import torch

_SUBNORMAL = 1e-40  # float32's smallest normal number is 1.18e-38


def flush_denormal_enabled() -> bool:
    """Whether subnormal float32 values read as zero now (the mode :func:`torch.set_flush_denormal` sets)."""
    return (torch.tensor([_SUBNORMAL], dtype=torch.float32) * 1.0).item() == 0.0


@contextmanager
def flushed_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush subnormal floats to zero inside the block (``enabled``; False: a no-op) and restore the mode that
    was on before when it ends, normally or by an exception."""
    if not enabled:
        yield
        return
    before = flush_denormal_enabled()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
