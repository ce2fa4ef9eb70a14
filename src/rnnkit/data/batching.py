"""Padded batches of id sequences, and batches of similar lengths: the one batching module of every
padded task (classify, tag, translate, caption).

    >>> ids, lengths = pad_sequences([[5, 6, 7], [8]], prefix=2)
    >>> ids.tolist(), lengths.tolist()
    ([[2, 5, 6, 7], [2, 8, 0, 0]], [4, 2])
    >>> sorted_batches([3, 1, 2], batch_size=2)
    [[1, 2], [0]]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from .vocab import PAD_ID


class Sequences(ABC):
    """Encoded examples, one id sequence each (``sequences()``, defined by the subclass): ``len()`` counts
    them and ``lengths`` gives each one's length, what the batchers sort by."""

    @abstractmethod
    def sequences(self) -> Sequence[Sequence]:
        """The encoded examples, one id sequence each."""

    def __len__(self) -> int:
        return len(self.sequences())

    @property
    def lengths(self) -> list[int]:
        return [len(sequence) for sequence in self.sequences()]


def pad_sequences(rows: Sequence[Sequence[int]], prefix: int | None = None,
                  suffix: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids (each at least one id, counting ``prefix`` / ``suffix``, optional ids put before / after
    each), padded with ``<pad>`` = 0; returns (ids (N, L_max), lengths (N,))."""
    rows = [([prefix] if prefix is not None else []) + list(row) + ([suffix] if suffix is not None else [])
            for row in rows]
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)  # (N,)
    padded = torch.full((len(rows), int(lengths.max())), PAD_ID, dtype=torch.long)  # (N, L_max)
    for n, row in enumerate(rows):
        padded[n, : len(row)] = torch.tensor(row, dtype=torch.long)
    return padded, lengths


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int | torch.Generator, pool_batches: int = 100,
                     min_rows: int = 1) -> list[list[int]]:
    """Indices of the examples in each batch of one epoch: shuffled, yet each batch of similar lengths.

    The examples are shuffled (by ``seed``: a number, or a generator to draw from), cut into pools of
    ``pool_batches * batch_size``, each pool sorted by length and cut into batches, and the batches shuffled
    again. The same seed gives the same batches, so that an epoch can be resumed at any batch. The epoch has
    ceil(n / batch_size) batches, less any batch shorter than ``min_rows``, which joins its pool's previous
    batch (so that every process of a distributed run gets a row).
    """
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool_size = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool_size):
        batches.extend(_cut(sorted(order[start : start + pool_size], key=lambda i: lengths[i]), batch_size, min_rows))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def sorted_batches(lengths: Sequence[int], batch_size: int, min_rows: int = 1) -> list[list[int]]:
    """Indices in batches of similar length, in a fixed order (for validation and prediction)."""
    return _cut(sorted(range(len(lengths)), key=lambda i: lengths[i]), batch_size, min_rows)


def _cut(order: list[int], batch_size: int, min_rows: int) -> list[list[int]]:
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_rows:
        batches[-2].extend(batches.pop())
    return batches
