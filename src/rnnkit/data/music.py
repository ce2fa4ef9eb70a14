r"""Music as piano rolls: pieces of frames, each frame the set of MIDI pitches sounding in one time step.

A piano roll over a :class:`PitchRange` of P pitches is a (T, P) multi-hot matrix:

    roll[t, p] = 1  if MIDI pitch  low + p  sounds during step t,  else 0

Two sources:

* **JSON** (the Boulanger-Lewandowski 2012 chorale files): ``{"train": [...], "valid": [...], "test": [...]}``,
  each split a list of pieces, each piece a list of time steps, each step a list of sounding MIDI pitches
  (0..127; an empty list is a rest).
* **MIDI files** (``.mid`` / ``.midi``), read with ``mido`` and quantised to a step of ``step`` quarter notes
  (1.0: quarter notes, as the chorale files; 0.25: sixteenths). Quantising works in MIDI ticks, so tempo
  changes do not move notes: a note from tick s to tick e (``tpq`` ticks per quarter note) sounds in steps

      round(s / (step · tpq))  ..  max(round(e / (step · tpq)), round(s / (step · tpq)) + 1) - 1

  i.e. every note lasts at least one step. Channel 10 (General MIDI drums) has no pitches and is skipped;
  empty steps before the first note are dropped. A folder holding ``train/``, ``valid/`` and ``test/``
  subfolders gives those splits; any other folder is one ``train`` split of all its MIDI files (recursively).

Limits, checked before anything is allocated (a 40-byte MIDI file can place two notes 2^28 ticks apart, and
``--step 1e-9`` cuts a quarter note into a billion steps):

* ``step`` is a finite number of quarter notes in (0, :data:`MAX_STEP`], and no finer than the file's own
  resolution (one tick: 1 / ticks-per-quarter);
* a file's header must time it in ticks per quarter note (> 0; not 0, and not SMPTE frames);
* one piece spans at most :data:`MAX_PIECE_STEPS` steps, and everything read at most :data:`MAX_TOTAL_STEPS`.

A problem is one line naming the file and what to do; a folder with several unusable files names the first
in full, then how many more and which.

Example::

    splits = read_music("jsb-chorales-quarter.json")          # {"train": [Piece, ...], "valid": ..., "test": ...}
    pitches = PitchRange.covering(splits["train"])             # 43..96 for the chorales
    roll = pitches.roll(splits["test"][0])                     # (T, 54) uint8
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.errors import InputError
from rnnkit.extras import require

from .catalog import missing_file_hint

SPLITS = ("train", "valid", "test")
MIDI_SUFFIXES = (".mid", ".midi")
DRUM_CHANNEL = 9  # channel 10 in General MIDI's 1-based numbering
MAX_STEP = 64.0  # quarter notes per step: 16 bars of 4/4; anything longer folds a whole piece into a few frames
# Steps in one piece: 100,000 sixteenths last about 4 hours at 100 bpm, far beyond any piece of music, yet a
# piece that long is still a few MB of frames. Everything read together: 2,000,000 steps (70 hours of sixteenths
# at 120 bpm; their piano rolls over 88 keys take 176 MB).
MAX_PIECE_STEPS = 100_000
MAX_TOTAL_STEPS = 2_000_000
BAD_FILES_NAMED = 5  # a folder's unusable files named by name after the first (then: "and N more")


@dataclass(frozen=True)
class Piece:
    """One piece: ``name`` (a file, or ``split:index`` for a JSON piece) and its ``frames``, one sorted tuple
    of sounding MIDI pitches per time step; ``file``: the JSON file a ``split:index`` piece comes from."""

    name: str
    frames: tuple[tuple[int, ...], ...]
    file: str | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def where(self) -> str:
        """How a message names the piece: its MIDI file, or ``FILE.json, piece test:3``."""
        return f"{self.file}, piece {self.name}" if self.file else self.name

    def pitches(self) -> set[int]:
        return {pitch for frame in self.frames for pitch in frame}


@dataclass(frozen=True)
class PitchRange:
    """The MIDI pitches ``low..high`` (both included) that the columns of a piano roll stand for."""

    low: int
    high: int

    def __post_init__(self):
        if not (isinstance(self.low, int) and isinstance(self.high, int) and 0 <= self.low <= self.high <= 127):
            raise InputError(f"--pitch-range {self.low}-{self.high} is not LOW-HIGH with 0 <= LOW <= HIGH <= 127; "
                             "e.g. 21-108 for the 88 piano keys")

    @property
    def size(self) -> int:
        """P, the number of pitches (columns of a roll)."""
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    @classmethod
    def parse(cls, text: str) -> PitchRange:
        """``"43-96"`` (or ``"43..96"``) → PitchRange(43, 96)."""
        match = re.fullmatch(r"\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*", text)
        if match is None:
            raise InputError(f"--pitch-range {text!r} is not LOW-HIGH in MIDI numbers; "
                             "e.g. 21-108 for the 88 piano keys")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def covering(cls, pieces: list[Piece]) -> PitchRange:
        """The smallest range holding every pitch of ``pieces``; InputError when they hold no note at all."""
        pitches = set().union(*(piece.pitches() for piece in pieces)) if pieces else set()
        if not pitches:
            raise InputError("the training pieces hold no note at all; give music with notes")
        return cls(min(pitches), max(pitches))

    def contains(self, piece: Piece) -> bool:
        """Whether every pitch of ``piece`` lies in the range."""
        return all(self.low <= pitch <= self.high for pitch in piece.pitches())

    def check(self, pieces: list[Piece], fix: str) -> None:
        """InputError (one line) naming the first piece that holds a pitch outside the range (its file) and those
        pitches, how many more pieces do, the range that would hold them all, then ``fix`` (which may use
        ``{needed}``: that range, e.g. ``"give --pitch-range {needed}"``)."""
        offending = [(piece, sorted(p for p in piece.pitches() if not self.low <= p <= self.high)) for piece in pieces]
        offending = [(piece, outside) for piece, outside in offending if outside]
        if not offending:
            return
        piece, outside = offending[0]
        every = [p for _, pitches in offending for p in pitches]
        needed = PitchRange(min(self.low, *every), max(self.high, *every))
        pitch = "pitches" if len(outside) > 1 else "pitch"
        line = f"{piece.where} holds {pitch} {_listed(outside)}, outside the pitch range {self}"
        if len(offending) > 1:
            line += f" ({len(offending) - 1} more pieces hold pitches outside it too)"
        raise InputError(f"{line}; {fix.format(needed=needed)}")

    def roll(self, piece: Piece) -> np.ndarray:
        """The (T, P) uint8 piano roll of ``piece``; InputError for a pitch outside the range."""
        self.check([piece], "give a piece inside the range, or train a model with --pitch-range {needed}")
        roll = np.zeros((len(piece), self.size), dtype=np.uint8)  # (T, P)
        for t, frame in enumerate(piece.frames):
            roll[t, [pitch - self.low for pitch in frame]] = 1
        return roll

    def frames(self, roll: np.ndarray) -> list[list[int]]:
        """The inverse of :meth:`roll`: the sounding MIDI pitches of each row of a (T, P) roll."""
        return [[self.low + int(p) for p in np.flatnonzero(row)] for row in np.asarray(roll)]


def _listed(pitches: list[int]) -> str:
    shown = ", ".join(map(str, pitches[:5]))
    return shown + (f" and {len(pitches) - 5} more" if len(pitches) > 5 else "")


# ------------------------------------------------------------------------------------------- JSON


def read_json(path: str | Path) -> dict[str, list[Piece]]:
    """The splits of a chorale-style JSON file (see the module docstring); InputError for anything else."""
    path = str(path)
    shape = 'a JSON object {"train": [piece, ...], ...}, each piece a list of steps, each step a list of MIDI pitches'
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path{missing_file_hint(path)}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not JSON ({error}); give {shape}") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path} holds no splits; give {shape}")
    splits = {}
    for split, pieces in data.items():
        if not isinstance(pieces, list):
            raise InputError(f"{path}: split {split!r} is not a list of pieces; give {shape}")
        splits[split] = [_json_piece(piece, f"{split}:{index}", path, shape) for index, piece in enumerate(pieces)]
    return splits


def _json_piece(piece, name: str, path: str, shape: str) -> Piece:
    if not isinstance(piece, list) or not piece:
        raise InputError(f"{path}: piece {name} is not a non-empty list of steps; give {shape}")
    frames = []
    for t, frame in enumerate(piece):
        if not isinstance(frame, list) or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 127
                                                  for p in frame):
            raise InputError(f"{path}: piece {name}, step {t} is {frame!r}, not a list of MIDI pitches 0-127; "
                             f"give {shape}")
        frames.append(tuple(sorted(set(frame))))
    return Piece(name, tuple(frames), file=path)


# ------------------------------------------------------------------------------------------- MIDI


def read_midi(path: str | Path, step: float = 1.0) -> Piece:
    """One MIDI file quantised to steps of ``step`` quarter notes (see the module docstring).

    InputError (one line naming the file) for a file mido cannot read as MIDI, one timed in anything but
    ticks per quarter note, one without notes, a ``step`` finer than the file's tick, and a piece longer than
    :data:`MAX_PIECE_STEPS` steps, each saying what to do.
    """
    mido = require("mido", "music")
    path = str(path)
    check_step(step)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file; check the path{missing_file_hint(path)}")
    try:
        midi = mido.MidiFile(path)
        notes = _notes(midi, mido)
    except MemoryError:
        raise InputError(f"{path}: not a MIDI file rnnkit can read (its chunks claim more data than memory holds); "
                         "re-export it as a standard MIDI file or remove it") from None
    except Exception as error:  # noqa: BLE001 - mido's parser raises many kinds on hostile bytes; all mean "not MIDI"
        raise InputError(f"{path}: not a MIDI file mido can read ({_reason(error)}); re-export it as a standard "
                         "MIDI file or remove it") from None
    ticks_per_quarter = midi.ticks_per_beat
    if not isinstance(ticks_per_quarter, int) or ticks_per_quarter <= 0:
        timing = "SMPTE frames per second" if isinstance(ticks_per_quarter, int) and ticks_per_quarter < 0 else \
            f"{ticks_per_quarter} ticks per quarter note"
        raise InputError(f"{path}: its header times it in {timing}, which rnnkit cannot place on a beat (it reads "
                         "ticks per quarter note > 0); re-export it as a standard MIDI file or remove it")
    if not notes:
        raise InputError(f"{path}: no notes (outside the drum channel); remove it or give a file with notes")
    ticks = step * ticks_per_quarter  # ticks per step
    if ticks < 1:
        raise InputError(f"{path}: --step {step:g} is finer than the file's resolution ({ticks_per_quarter} ticks per "
                         f"quarter note: a tick is 1/{ticks_per_quarter} quarter note); give --step "
                         f"{1 / ticks_per_quarter:.3g} or more, e.g. 0.25 for sixteenths")
    first_tick, last_tick = min(start for _, start, _ in notes), max(end for _, _, end in notes)
    span = (last_tick - first_tick) / ticks + 1  # an upper bound on the steps, computed before rounding anything
    if span > MAX_PIECE_STEPS:
        raise InputError(f"{path}: its notes span {last_tick - first_tick:,} ticks, {span:,.0f} steps at "
                         f"--step {step:g} quarter notes, more than the {MAX_PIECE_STEPS:,} steps a piece may have; give a coarser "
                         "--step, or cut the file")
    spans = []
    for pitch, start, end in notes:
        first = round(start / ticks)
        spans.append((pitch, first, max(round(end / ticks), first + 1)))
    offset = min(first for _, first, _ in spans)
    frames: list[set[int]] = [set() for _ in range(max(end for _, _, end in spans) - offset)]
    for pitch, first, end in spans:
        for t in range(first - offset, end - offset):
            frames[t].add(pitch)
    return Piece(path, tuple(tuple(sorted(frame)) for frame in frames))


def _reason(error: Exception) -> str:
    """What mido said, on one line (its messages may hold newlines or be empty)."""
    text = " ".join(str(error).split())
    return text[:120] or type(error).__name__


def _notes(midi, mido) -> list[tuple[int, int, int]]:
    """(pitch, start tick, end tick) of every note off the drum channel. A note still held at the end of the
    file ends there; a repeated note-on of a held pitch is closed first-in, first-out."""
    held: dict[tuple[int, int], list[int]] = {}
    notes, tick = [], 0
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.type not in ("note_on", "note_off") or message.channel == DRUM_CHANNEL:
            continue
        key = (message.channel, message.note)
        if message.type == "note_on" and message.velocity > 0:
            held.setdefault(key, []).append(tick)
        elif held.get(key):
            notes.append((message.note, held[key].pop(0), tick))
    notes += [(note, start, tick) for (_, note), starts in held.items() for start in starts]
    return notes


def check_step(step: float) -> None:
    """InputError unless ``step`` is a finite number of quarter notes in (0, :data:`MAX_STEP`]."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step) or not step > 0:
        raise InputError(f"--step must be a positive number of quarter notes, got {step!r}; e.g. 1 or 0.25")
    if step > MAX_STEP:
        raise InputError(f"--step {step:g} is more than {MAX_STEP:g} quarter notes a step (a whole piece would fold "
                         "into a few frames); give e.g. 1 for quarter notes or 0.25 for sixteenths")



def midi_files(folder: str | Path) -> list[Path]:
    """The MIDI files under ``folder`` (recursively), sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def read_midi_folder(folder: str | Path, step: float = 1.0) -> dict[str, list[Piece]]:
    """The splits of a folder of MIDI files: its ``train/``, ``valid/`` and ``test/`` subfolders when it has
    them, else one ``train`` split of every MIDI file under it. InputError, one line, when any file is
    unusable: the first problem in full, then how many more files are and their names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; check the path")
    check_step(step)  # once, before any file: a wrong --step is not every file's problem
    subfolders = [split for split in SPLITS if (folder / split).is_dir()]
    groups = {split: midi_files(folder / split) for split in subfolders} if subfolders else {"train": midi_files(folder)}
    if not any(groups.values()):
        raise InputError(f"{folder} holds no .mid or .midi files; give a folder of MIDI files or a JSON file")
    splits, problems, total = {}, [], 0
    for split, paths in groups.items():
        splits[split] = []
        for path in paths:
            try:
                piece = read_midi(path, step)
            except InputError as error:
                problems.append((path, str(error)))
                continue
            splits[split].append(piece)
            total += len(piece)
            check_total_steps(total, folder)
    if problems:
        raise InputError(_folder_problems(folder, problems, sum(len(paths) for paths in groups.values())))
    return splits


def _folder_problems(folder: Path, problems: list[tuple[Path, str]], files: int) -> str:
    """One line for a folder's unusable files: the first problem in full, then how many more and which."""
    line = problems[0][1]
    if len(problems) == 1:
        return line
    others = [str(path.relative_to(folder)) for path, _ in problems[1:]]
    named = ", ".join(others[:BAD_FILES_NAMED]) + (f" and {len(others) - BAD_FILES_NAMED} more"
                                                    if len(others) > BAD_FILES_NAMED else "")
    return (f"{len(problems)} of the {files} MIDI files in {folder} cannot be used (fix or remove them): {line}; "
            f"also unusable: {named}")


def check_total_steps(total: int, source: str | Path) -> None:
    """InputError once the pieces read from ``source`` hold more than :data:`MAX_TOTAL_STEPS` steps in all."""
    if total > MAX_TOTAL_STEPS:
        raise InputError(f"{source} holds more than {MAX_TOTAL_STEPS:,} steps of music in all, more than rnnkit "
                         "reads at once; give fewer files, or a coarser --step")


def read_music(path: str | Path, step: float = 1.0) -> dict[str, list[Piece]]:
    """The splits of ``path``: a JSON file, a folder of MIDI files, or one MIDI file (a ``train`` split of one
    piece). ``step`` (quarter notes) applies to MIDI only: the JSON files come quantised."""
    path = Path(path)
    if path.is_dir():
        return read_midi_folder(path, step)
    if path.suffix.lower() in MIDI_SUFFIXES:
        return {"train": [read_midi(path, step)]}
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path{missing_file_hint(path)}")
    splits = read_json(path)
    check_total_steps(sum(len(piece) for pieces in splits.values() for piece in pieces), path)
    return splits
