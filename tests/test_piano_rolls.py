"""rnnkit.data.piano_rolls: padded batches and their frame masks, batches by length, transposition inside the roll."""

import numpy as np
import torch

from rnnkit.data.piano_rolls import by_length, frame_mask, padded, shift_limits, transposed


def test_padded_batch_and_its_frame_mask():
    short, long = np.ones((2, 3), dtype=np.uint8), np.ones((4, 3), dtype=np.uint8)
    batch, lengths = padded([short, long])
    assert batch.shape == (2, 4, 3) and lengths.tolist() == [2, 4]
    assert batch[0, 2:].sum() == 0 and batch[1].sum() == 12  # silent frames after the short piece
    assert torch.equal(frame_mask(lengths, 4), torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1]]))


def test_batches_by_length_start_with_the_shortest_pieces():
    rolls = [np.zeros((steps, 2)) for steps in (5, 1, 3, 2)]
    assert by_length(rolls, 3) == [[1, 3, 2], [0]]


def test_transposition_stays_inside_the_roll():
    roll = np.zeros((2, 6), dtype=np.uint8)
    roll[0, 1] = roll[1, 3] = 1
    assert shift_limits(roll, 5) == (-1, 2) and shift_limits(roll, 1) == (-1, 1)
    assert np.flatnonzero(transposed(roll, 2)[1]).tolist() == [5]
    assert np.flatnonzero(transposed(roll, -1)[0]).tolist() == [0]
    assert shift_limits(np.zeros((3, 4), dtype=np.uint8), 3) == (0, 0)
