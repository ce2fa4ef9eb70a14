"""Which pieces a music run reads: its training and validation pieces and their pitch range, one split of other
data, and a piece named by ``SPLIT:INDEX``.

The data is a chorale-style JSON file (splits ``train``, ``valid``, ``test``), a folder of MIDI files (with or
without ``train/ valid/ test/`` subfolders) or one MIDI file (:func:`rnnkit.data.music.read_music`). Without a
``valid`` split, the last ``valid_fraction`` of the training pieces is held out for validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rnnkit.data.music import MIDI_SUFFIXES, SPLITS, Piece, PitchRange, read_music
from rnnkit.errors import InputError

if TYPE_CHECKING:
    from .music import MusicDataConfig


@dataclass
class MusicData:
    """The training and validation pieces, the pitch range, and a description of where they come from."""

    train: list[Piece]
    valid: list[Piece]
    pitches: PitchRange
    description: str


def load_data(config: MusicDataConfig, pitches: PitchRange | None = None) -> MusicData:
    """The pieces ``config`` names, split into training and validation, and their pitch range: ``pitches``
    (a resumed run's), else ``config.pitch_range``, else the range covering the training and validation pieces."""
    splits = read_music(config.data, config.step)
    if not splits.get("train"):
        raise InputError(f"{config.data} has no training pieces (splits: {', '.join(splits) or 'none'}); "
                         "give a 'train' split")
    train, valid = splits["train"], splits.get("valid", [])
    if "valid" not in splits and config.valid_fraction > 0:
        held = max(1, round(len(train) * config.valid_fraction))
        if held >= len(train):
            raise InputError(f"{config.data} has only {len(train)} piece(s), too few to hold some out for validation; "
                             "give more, or --valid-fraction 0")
        train, valid = train[:-held], train[-held:]
    if pitches is not None:
        pitches.check(train + valid, "a resumed run keeps its own pitch range; train a new run (with --pitch-range "
                                     "{needed}) for this music")
    elif config.pitch_range:
        pitches = PitchRange.parse(config.pitch_range)
        pitches.check(train + valid, "give --pitch-range {needed}, or leave --pitch-range out to take the pieces' "
                                     "own range")
    else:
        pitches = PitchRange.covering(train + valid)
    return MusicData(train, valid, pitches, str(config.data))


def split_pieces(config: MusicDataConfig, split: str, data: str | None = None) -> tuple[list[Piece], str]:
    """The pieces of one split of ``data`` (default: the run's own data), read as the run reads its data, and
    the split's name: ``"all"`` for given ``data`` that has no splits (a folder of MIDI files without
    train/ valid/ test/ subfolders, or one MIDI file), which is scored whole."""
    path = Path(data or config.data)
    splits = read_music(path, config.step)
    unsplit = path.suffix.lower() in MIDI_SUFFIXES or (path.is_dir() and not any((path / s).is_dir() for s in SPLITS))
    if data is not None and unsplit:
        split, pieces = "all", splits["train"]
    elif split in splits:
        pieces = splits[split]
    else:
        raise InputError(f"{path} has no {split!r} split (it has {', '.join(splits)}); give --split with one of them")
    if not pieces:
        raise InputError(f"the {split!r} split of {path} holds no pieces; give another --split")
    return pieces, split


def piece_ref(text: str) -> tuple[str, int]:
    """``"test:0"`` → ("test", 0): a piece of a split by its 0-based index."""
    split, _, index = text.partition(":")
    if not split or not index.isdigit():
        raise InputError(f"--prime-piece {text!r} is not SPLIT:INDEX; e.g. test:0 for the first test piece")
    return split, int(index)
