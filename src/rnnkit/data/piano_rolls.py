r"""Piano rolls (:mod:`rnnkit.data.music`) as training data: padded batches and the mask of their real frames,
batches of pieces of similar length, and transposition that keeps every pitch inside the roll.

A roll is a (T, P) multi-hot array over a pitch range of P pitches; a batch of N rolls is padded with silent
frames to the longest::

    batch, lengths = padded([roll_a, roll_b])            # (2, L, P) float, (2,)
    mask = frame_mask(lengths, batch.size(1))             # (2, L): 1 on real frames, 0 on the padding
    low, high = shift_limits(roll_a, most=3)              # the shifts within ±3 semitones that keep it inside
    up_two = transposed(roll_a, 2)                        # (T, P)
"""

from __future__ import annotations

import numpy as np
import torch


def padded(rolls: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rolls (T_n, P) → a zero-padded float batch (N, L, P) and their lengths (N,)."""
    lengths = torch.tensor([len(roll) for roll in rolls])
    batch = torch.zeros(len(rolls), int(lengths.max()), rolls[0].shape[1])  # (N, L, P)
    for n, roll in enumerate(rolls):
        batch[n, : len(roll)] = torch.from_numpy(roll)
    return batch, lengths


def frame_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, L) float: 1 on the real frames t < lengths[n], 0 on the padding."""
    return (torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)).float()


def transposed(roll: np.ndarray, shift: int) -> np.ndarray:
    """``roll`` (T, P) moved ``shift`` semitones up (down when negative); every pitch must stay in the roll."""
    if shift == 0:
        return roll
    out = np.zeros_like(roll)  # (T, P)
    if shift > 0:
        out[:, shift:] = roll[:, :-shift]
    else:
        out[:, :shift] = roll[:, -shift:]
    return out


def shift_limits(roll: np.ndarray, most: int) -> tuple[int, int]:
    """The shifts (down, up) within ±most semitones that keep every pitch of ``roll`` inside it."""
    used = np.flatnonzero(roll.any(axis=0))
    if len(used) == 0:
        return 0, 0
    return -min(most, int(used[0])), min(most, roll.shape[1] - 1 - int(used[-1]))


def by_length(rolls: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Indices of ``rolls`` in batches of ``batch_size``, shortest pieces first (the least padding)."""
    order = sorted(range(len(rolls)), key=lambda i: len(rolls[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
