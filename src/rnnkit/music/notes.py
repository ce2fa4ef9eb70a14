"""Notes read off a piano roll: a pitch sounding in consecutive steps is one held note.

A roll does not say whether a pitch in two consecutive steps is held or struck again (the chorale files do
not keep that distinction); holding it is the reading that sounds like the music, not like a drum machine.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence


class Note(NamedTuple):
    """MIDI ``pitch`` sounding from step ``start`` up to (not including) step ``end``."""

    pitch: int
    start: int
    end: int


def notes_of(frames: Sequence[Sequence[int]]) -> list[Note]:
    """The held notes of ``frames`` (one list of sounding MIDI pitches per step), ordered by start, then pitch."""
    notes, started = [], {}
    for t, frame in enumerate([*frames, ()]):  # the empty step at the end closes every note still sounding
        sounding = set(frame)
        for pitch in [p for p in started if p not in sounding]:
            notes.append(Note(pitch, started.pop(pitch), t))
        for pitch in sounding - started.keys():
            started[pitch] = t
    return sorted(notes, key=lambda note: (note.start, note.pitch))
