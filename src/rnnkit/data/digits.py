"""The embedded captioning data: handwritten digits side by side, captioned with their English words.

Every installation has scikit-learn's bundled copy of the UCI optical digits (1,797 images of 8×8 pixels,
values 0-16; ``sklearn.datasets.load_digits`` reads them from the package, no download). A composition puts
1 to ``max_digits`` of them side by side, left-aligned, in an image 8 pixels high and 8 × ``max_digits``
wide (blank to the right), scaled to [0, 1]; its caption names the digits in order::

    [3][1][4][ ][ ]   →   "three one four"

The 1,797 source images are first split, once and for all by a fixed seed, into disjoint training /
validation / test sets (70 / 10 / 20 %). Training compositions are drawn from the training images only and
the held-out compositions from the test images only, so a model is tested on handwriting it never saw.

Example::

    splits = digit_splits()
    images, captions = compose(splits["train"], count=1000, seed=0)     # (1000, 8, 40) floats, 1000 strings
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rnnkit.extras import require

DIGIT_SIZE = 8
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.1, "test": 0.2}
SPLIT_SEED = 20_240_501
# Compositions of each split come from their own stream of random numbers, so that changing the size of one
# never changes another.
SPLIT_OFFSETS = {"train": 0, "valid": 1, "test": 2}


@dataclass
class DigitImages:
    """Single digits: images (M, 8, 8) float32 in [0, 1] and labels (M,) in 0..9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=1)
def digit_splits() -> dict[str, DigitImages]:
    """scikit-learn's 1,797 digits split into disjoint ``train`` / ``valid`` / ``test`` sets (70/10/20 %).

    The result is cached: treat its arrays as read-only."""
    digits = require("sklearn.datasets", "caption").load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    labels = digits.target.astype(np.int64)  # (1797,)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_train = round(len(order) * SPLIT_FRACTIONS["train"])
    n_valid = round(len(order) * SPLIT_FRACTIONS["valid"])
    parts = {"train": order[:n_train], "valid": order[n_train : n_train + n_valid], "test": order[n_train + n_valid :]}
    return {name: DigitImages(images[index], labels[index]) for name, index in parts.items()}


def compose(digits: DigitImages, count: int, max_digits: int = 5, seed: int = 0,
            min_digits: int = 1) -> tuple[np.ndarray, list[str]]:
    """``count`` compositions of ``min_digits``..``max_digits`` digits drawn (uniformly, with replacement)
    from ``digits``: images (count, 8, 8 × max_digits) float32 and their captions."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, DIGIT_SIZE, DIGIT_SIZE * max_digits), dtype=np.float32)
    captions = []
    for n in range(count):
        length = int(rng.integers(min_digits, max_digits + 1))
        chosen = rng.integers(0, len(digits), size=length)
        for slot, index in enumerate(chosen):
            images[n, :, slot * DIGIT_SIZE : (slot + 1) * DIGIT_SIZE] = digits.images[index]
        captions.append(" ".join(WORDS[label] for label in digits.labels[chosen]))
    return images, captions


def digit_compositions(split: str, count: int, max_digits: int = 5, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``count`` compositions of the ``split`` digits (``train``, ``valid`` or ``test``); ``seed`` varies them."""
    return compose(digit_splits()[split], count, max_digits, seed=seed * 3 + SPLIT_OFFSETS[split])
