"""Truncated-BPTT batches: one long token sequence laid out as N parallel streams, read in windows.

The layout of Zaremba et al. (2014) and of nanoGPT's character models, for a recurrent network
that carries its hidden state from one batch to the next::

    ids      t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13          (14 tokens, N=2, L=3)
    inputs   stream 0: t0 t1 t2 | t3 t4 t5          window 0 | window 1
             stream 1: t6 t7 t8 | t9 t10 t11
    targets  stream 0: t1 t2 t3 | t4 t5 t6          (the next token of each input)
             stream 1: t7 t8 t9 | t10 t11 t12       (t13 is trimmed: it fits no whole window)

Window w holds columns [w*L, (w+1)*L) of every stream, so row n of window w+1 continues row n of
window w: the final hidden state of one batch, detached, is the right initial state of the next.
Every stream has the same whole number of windows; tokens that do not fill one are trimmed
from the end of the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ..errors import InputError


def tokens_needed(batch_size: int, seq_len: int) -> int:
    """Tokens a stream of ids needs for one batch: every stream one window, and the target after the last."""
    return batch_size * seq_len + 1


class StreamBatcher:
    """Windows ``(inputs, targets)``, each (N, L), over ``batch_size`` parallel streams of ``ids``.

    ``targets`` is ``inputs`` shifted one token ahead. Iterating gives one epoch, from the
    current position; the position (the index of the next window) is saved by
    :meth:`state_dict` and restored by :meth:`load_state_dict`, so an interrupted epoch resumes
    with exactly the windows it had left.

    Args:
        ids: the token sequence, shape (T,), integer dtype.
        batch_size: N, the number of parallel streams.
        seq_len: L, the window length (the truncated-BPTT horizon).
        source: what the ids were read from, as the error for a text too short for one batch names it.

    Raises:
        InputError: if ``ids`` is shorter than one batch (N*L + 1 tokens).

    Example::

        batcher = StreamBatcher(vocab.encode(text), batch_size=32, seq_len=128)
        state = None
        for inputs, targets in batcher:                 # each (32, 128)
            logits, state = model(inputs, state)
            state = detach_state(state)
    """

    def __init__(self, ids: Tensor, batch_size: int, seq_len: int, source: str = "the corpus"):
        for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        ids = torch.as_tensor(ids)
        if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype.is_complex:
            raise ValueError(f"ids must be a 1-D integer tensor, got {ids.dtype} of shape {tuple(ids.shape)}")
        needed = tokens_needed(batch_size, seq_len)
        if ids.numel() < needed:
            raise InputError(
                f"{source} has {ids.numel():,} tokens but one batch needs --batch-size × --seq-len + 1 = "
                f"{batch_size:,} × {seq_len:,} + 1 = {needed:,}; use a longer text or a smaller --batch-size or --seq-len"
            )
        windows = (ids.numel() - 1) // (batch_size * seq_len)
        S = windows * seq_len  # tokens per stream
        inputs = ids[: batch_size * S].reshape(batch_size, S).long()  # (N, S)
        targets = ids[1 : batch_size * S + 1].reshape(batch_size, S).long()  # (N, S)
        self._setup(inputs, targets, seq_len)

    def _setup(self, inputs: Tensor, targets: Tensor, seq_len: int, position: int = 0) -> None:
        self.inputs = inputs  # (N, S)
        self.targets = targets  # (N, S)
        self.seq_len = seq_len
        self.position = position

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]

    def __len__(self) -> int:
        """Windows per epoch."""
        return self.inputs.shape[1] // self.seq_len

    def window(self, index: int) -> tuple[Tensor, Tensor]:
        """Window ``index``: (inputs, targets), each (N, L)."""
        columns = slice(index * self.seq_len, (index + 1) * self.seq_len)
        return self.inputs[:, columns].contiguous(), self.targets[:, columns].contiguous()  # (N, L), (N, L)

    def iterate(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The windows from ``start`` to the end of the epoch.

        ``position`` advances as each window is handed out (so a checkpoint taken after a
        window's training step resumes after it) and returns to 0 once the epoch is read to
        its end.
        """
        if not 0 <= start <= len(self):
            raise ValueError(f"start={start} is outside 0..{len(self)}")
        for index in range(start, len(self)):
            self.position = index + 1
            yield self.window(index)
        self.position = 0

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.iterate(self.position)

    def state_dict(self) -> dict:
        """The position in the epoch, with the layout it belongs to (JSON-serialisable)."""
        return {"window": self.position, "windows": len(self), "seq_len": self.seq_len}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position; InputError if it was saved for another layout."""
        if not isinstance(state, dict):
            raise InputError("the saved data position is not a mapping; the checkpoint is corrupt")
        saved = (state.get("windows"), state.get("seq_len"))
        if saved != (len(self), self.seq_len):
            raise InputError(
                f"the saved data position is for {saved[0]} windows of length {saved[1]}, "
                f"this data has {len(self)} of length {self.seq_len}; "
                f"resume with the same data, batch size and sequence length"
            )
        window = state.get("window")
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= len(self):
            raise InputError(f"the saved data position {window!r} is not a window index; the checkpoint is corrupt")
        self.position = window

    def shard(self, rank: int, world_size: int) -> StreamBatcher:
        """This rank's contiguous share of the streams, at the same position, for data parallelism.

        Rank r gets streams [r*N/W, (r+1)*N/W), so the ranks' windows, concatenated along the
        batch in rank order, equal this batcher's windows.
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if self.batch_size % world_size:
            raise InputError(
                f"batch_size {self.batch_size} cannot be split evenly over {world_size} processes; "
                f"use a batch size divisible by {world_size}"
            )
        rows = slice(rank * self.batch_size // world_size, (rank + 1) * self.batch_size // world_size)
        shard = object.__new__(StreamBatcher)
        shard._setup(self.inputs[rows], self.targets[rows], self.seq_len, self.position)
        return shard

    def __repr__(self) -> str:
        return f"StreamBatcher(batch_size={self.batch_size}, seq_len={self.seq_len}, windows={len(self)})"


# AWD-LSTM's variable BPTT (Merity et al. 2017, §4.1): the full length with this probability, else half of it ...
FULL_WINDOW_PROBABILITY = 0.95
# ... then a length drawn from N(that, 5²), never below this (a window of a few tokens carries little signal).
WINDOW_LENGTH_STD = 5.0
MIN_VARIABLE_WINDOW = 5


def variable_window_lengths(total: int, bptt: int, count: int, generator: torch.Generator) -> list[int]:
    r"""``count`` window lengths of AWD-LSTM's distribution (Merity et al. 2017, §4.1) that fit in ``total``:

    .. math::

        b = \begin{cases} \mathrm{bptt} & \text{with probability } 0.95 \\ \mathrm{bptt}/2 & \text{else}
            \end{cases}, \qquad \ell = \max(5, \lfloor \mathcal{N}(b, 5^2) \rfloor)

    (never longer than ``total``). A draw whose lengths add up to more than ``total`` is drawn again (the mean,
    about 0.975·bptt, makes that rare); after 100 such draws the windows are all ``bptt`` long. Each step's
    learning rate is scaled by ``ℓ / bptt`` so that a short window does not weigh as much as a long one (the
    language-model task's ``TaskLoss.lr_scale``; the Trainer applies it after clipping, as AWD-LSTM does).
    """
    for _ in range(100):
        full = torch.rand(count, generator=generator) < FULL_WINDOW_PROBABILITY  # (W,)
        base = torch.where(full, float(bptt), bptt / 2)  # (W,)
        drawn = (base + WINDOW_LENGTH_STD * torch.randn(count, generator=generator)).floor()  # (W,)
        lengths = drawn.clamp(min=min(MIN_VARIABLE_WINDOW, total), max=total).long()  # (W,)
        if int(lengths.sum()) <= total:
            return lengths.tolist()
    return [bptt] * count


class VariableStreamBatcher(StreamBatcher):
    """A :class:`StreamBatcher` whose windows have AWD-LSTM's variable lengths (:func:`variable_window_lengths`).

    The lengths of epoch e are drawn from a generator seeded with ``(seed, e)``, so a resumed epoch reads the
    same windows as the interrupted one; ``seq_len`` is the bptt asked for. Every window is (N, ℓ) with its own
    ℓ, read one after another from the streams' start. An epoch has as many windows as fixed ones of ``seq_len``
    would make (the Trainer counts an epoch in steps), so with a mean ℓ of about 0.975·bptt the end of the
    streams, a few percent and a different amount each epoch, goes unread in that epoch.
    """

    def __init__(self, ids: Tensor, batch_size: int, seq_len: int, source: str = "the corpus", seed: int = 0):
        super().__init__(ids, batch_size, seq_len, source)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s window lengths (the same for the same seed and epoch)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.epoch = epoch
        windows = self.inputs.shape[1] // self.seq_len
        self.lengths = variable_window_lengths(self.inputs.shape[1], self.seq_len, windows, generator)
        self.starts = [0]
        for length in self.lengths[:-1]:
            self.starts.append(self.starts[-1] + length)

    def __len__(self) -> int:
        return len(self.lengths)

    def window(self, index: int) -> tuple[Tensor, Tensor]:
        columns = slice(self.starts[index], self.starts[index] + self.lengths[index])
        return self.inputs[:, columns].contiguous(), self.targets[:, columns].contiguous()  # (N, ℓ), (N, ℓ)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(state, dict) and isinstance(state.get("epoch"), int):
            self.set_epoch(state["epoch"])
        super().load_state_dict(state)

    def shard(self, rank: int, world_size: int) -> VariableStreamBatcher:
        """This rank's streams, with the same window lengths as every other rank (ranks stay in step)."""
        plain = super().shard(rank, world_size)
        shard = object.__new__(VariableStreamBatcher)
        shard._setup(plain.inputs, plain.targets, self.seq_len, self.position)
        shard.seed = self.seed
        shard.set_epoch(self.epoch)
        return shard
