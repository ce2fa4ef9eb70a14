"""Piano rolls as standard MIDI files (written with ``mido``), which any player or notation program opens.

One track on channel 1: a tempo, an instrument (General MIDI program, 0-based: 0 acoustic grand piano,
19 church organ) and the notes of :func:`~rnnkit.music.notes.notes_of`, each step ``step`` quarter notes long.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from rnnkit.extras import require
from rnnkit.files import write_output

from .notes import notes_of

TICKS_PER_QUARTER = 480  # divisible by 2, 3, 4, 5, 8 and 16: every usual step is a whole number of ticks


def write_midi(frames: Sequence[Sequence[int]], path: str | Path, step: float = 1.0, bpm: float = 90.0,
               program: int = 0, velocity: int = 80) -> Path:
    """Write ``frames`` (one list of MIDI pitches per step) as a type-0 MIDI file at ``path``; returns the path.

    ``step``: quarter notes per step; ``bpm``: quarter notes per minute.
    """
    mido = require("mido", "music")
    if not step > 0 or not bpm > 0:
        raise ValueError(f"step and bpm must be positive, got step={step}, bpm={bpm}")
    ticks_per_step = step * TICKS_PER_QUARTER
    events = []  # (tick, order, message): at one tick every note ends before the next begins
    for note in notes_of(frames):
        events.append((round(note.start * ticks_per_step), 1, mido.Message("note_on", note=note.pitch, velocity=velocity)))
        events.append((round(note.end * ticks_per_step), 0, mido.Message("note_off", note=note.pitch, velocity=0)))
    events.sort(key=lambda event: (event[0], event[1], event[2].note))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
                            mido.Message("program_change", program=program, time=0)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    end = round(len(frames) * ticks_per_step)  # trailing rests keep their length
    track.append(mido.MetaMessage("end_of_track", time=max(end - now, 0)))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(track)
    path = Path(path)
    buffer = io.BytesIO()  # written whole in one atomic step: a refused path never leaves half a file
    midi.save(file=buffer)
    write_output(path, buffer.getvalue())
    return path
