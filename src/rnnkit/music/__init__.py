"""Music out of rnnkit: piano rolls written as MIDI files (:mod:`.midi_out`) and as audio rendered by rnnkit's
own additive synthesiser (:mod:`.synth`), from the notes that :mod:`.notes` reads off a roll.

Both take a piece as frames (one list of sounding MIDI pitches per time step, as
:meth:`rnnkit.data.music.PitchRange.frames` gives), a step length in quarter notes and a tempo.
"""

from .midi_out import write_midi
from .notes import Note, notes_of
from .synth import check_duration, render, write_wav

__all__ = ["Note", "notes_of", "write_midi", "render", "write_wav", "check_duration"]
