r"""A small additive synthesiser: piano rolls heard without installing one.

Each note of :func:`~rnnkit.music.notes.notes_of` is a sum of harmonics of its fundamental
f = 440 · 2^((pitch − 69) / 12) Hz, shaped by an envelope:

    x(s) = env(s) · Σ_{k=1..K} k^(−1.5) · sin(2π k f s / rate)        (harmonics at or above rate/2 left out)
    env  = linear attack over 10 ms, then exp(−s / (0.8 s)) decay, then a 60 ms linear release after the note

The notes are summed, scaled so that the loudest sample is at 0.8 of full scale, and written as 16-bit mono
PCM with the standard library's ``wave``.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnkit.errors import InputError
from rnnkit.files import write_output

from .notes import notes_of

HARMONICS = 6
ATTACK_SECONDS = 0.01
DECAY_SECONDS = 0.8
RELEASE_SECONDS = 0.06
PEAK = 0.8
MAX_SECONDS = 4 * 3600  # the longest audio rendered: 4 hours at 22,050 Hz is 318 M samples (2.5 GB as float64)


def frequency(pitch: int) -> float:
    """The equal-tempered frequency of a MIDI pitch in Hz (A4 = pitch 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def check_duration(steps: int, step: float, bpm: float) -> None:
    """InputError when ``steps`` steps of ``step`` quarter notes at ``bpm`` last longer than :data:`MAX_SECONDS`."""
    seconds = steps * step * 60.0 / bpm
    if not seconds <= MAX_SECONDS:  # also catches inf and nan
        raise InputError(f"the piece would last {seconds:,.3g} seconds ({steps:,} steps of {step:g} quarter notes "
                         f"at --bpm {bpm:g}), longer than the {MAX_SECONDS // 3600} hours rnnkit renders as audio; "
                         "give a higher --bpm or fewer --steps")


def render(frames: Sequence[Sequence[int]], step: float = 1.0, bpm: float = 90.0, rate: int = 22_050) -> np.ndarray:
    """The audio of ``frames`` (one list of MIDI pitches per step, ``step`` quarter notes each, ``bpm``
    quarter notes per minute) as float32 samples in [-PEAK, PEAK] at ``rate`` Hz, (S,) with
    S = the piece's length plus the release."""
    if not step > 0 or not bpm > 0 or rate < 1:
        raise ValueError(f"step, bpm and rate must be positive, got step={step}, bpm={bpm}, rate={rate}")
    seconds_per_step = step * 60.0 / bpm
    release = int(RELEASE_SECONDS * rate)
    check_duration(len(frames), step, bpm)  # before the samples are allocated
    audio = np.zeros(int(round(len(frames) * seconds_per_step * rate)) + release, dtype=np.float64)  # (S,)
    for note in notes_of(frames):
        start = int(round(note.start * seconds_per_step * rate))
        held = int(round(note.end * seconds_per_step * rate)) - start
        s = np.arange(held + release)  # (S_note,) samples from the note's start
        envelope = np.minimum(s / (ATTACK_SECONDS * rate), 1.0) * np.exp(-s / (DECAY_SECONDS * rate))
        envelope[held:] *= np.linspace(1.0, 0.0, release)  # the release fades from where the note was
        f = frequency(note.pitch)
        harmonics = [k for k in range(1, HARMONICS + 1) if k * f < rate / 2]  # above Nyquist would alias
        tone = sum(k ** -1.5 * np.sin(2 * np.pi * k * f * s / rate) for k in harmonics)
        audio[start : start + len(s)] += envelope * tone
    peak = np.abs(audio).max(initial=0.0)
    if peak > 0:
        audio *= PEAK / peak
    return audio.astype(np.float32)


def write_wav(frames: Sequence[Sequence[int]], path: str | Path, step: float = 1.0, bpm: float = 90.0,
              rate: int = 22_050) -> Path:
    """Render ``frames`` (see :func:`render`) into a 16-bit mono WAV file at ``path``; returns the path."""
    samples = np.round(render(frames, step, bpm, rate) * 32767).astype("<i2")  # (S,) little-endian int16
    path = Path(path)
    # Built in memory, then written in one atomic step: a path the system refuses gives write_output's one
    # line, and a half-written WAV never replaces a good one (wave.open on a path would leave both to chance).
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    write_output(path, buffer.getvalue())
    return path
