"""Music out: notes read off a roll, MIDI files parsed back with mido, WAV files parsed back with wave (and
heard at the right pitch), the piano-roll PNG."""

import wave

import matplotlib.image
import mido
import numpy as np
import pytest

from rnnkit.music import Note, notes_of, render, write_midi, write_wav
from rnnkit.viz.piano_roll import note_name, piano_roll_png


def test_a_pitch_in_consecutive_steps_is_one_held_note():
    assert notes_of([[60, 64], [60], [], [60]]) == [Note(60, 0, 2), Note(64, 0, 1), Note(60, 3, 4)]
    assert notes_of([]) == []


def test_the_midi_file_parses_back_with_its_notes_tempo_and_length(tmp_path):
    path = write_midi([[60, 64], [60], [], [67]], tmp_path / "a.mid", step=0.5, bpm=120, program=19)
    midi = mido.MidiFile(str(path))
    assert midi.type == 0 and midi.ticks_per_beat == 480
    messages = list(midi.tracks[0])
    assert [m.tempo for m in messages if m.type == "set_tempo"] == [mido.bpm2tempo(120)]
    assert [m.program for m in messages if m.type == "program_change"] == [19]
    tick, spans, started = 0, [], {}
    for message in messages:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            started[message.note] = tick
        elif message.type in ("note_on", "note_off"):
            spans.append((message.note, started.pop(message.note), tick))
    assert sorted(spans) == [(60, 0, 480), (64, 0, 240), (67, 720, 960)]
    assert midi.length == pytest.approx(4 * 0.5 * 60 / 120)  # 4 steps of an eighth note at 120 bpm: 1 s


def test_the_wav_file_parses_back_and_sounds_at_the_note_frequency(tmp_path):
    rate = 16_000
    path = write_wav([[69], [69], []], tmp_path / "a.wav", step=1.0, bpm=60, rate=rate)  # A4 for 2 s, 1 s rest
    with wave.open(str(path)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, rate)
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2").astype(float)
    assert len(samples) == 3 * rate + int(0.06 * rate)
    assert np.abs(samples).max() == pytest.approx(0.8 * 32767, abs=1)
    assert np.abs(samples[int(2.2 * rate):]).max() == 0  # the rest is silent after the release
    spectrum = np.abs(np.fft.rfft(samples[: 2 * rate]))
    assert np.fft.rfftfreq(2 * rate, 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=1)


def test_silence_renders_as_zeros():
    assert not render([[], []]).any()


def test_note_names():
    assert [note_name(p) for p in (60, 69, 21, 108, 61)] == ["C4", "A4", "A0", "C8", "C#4"]


def test_the_piano_roll_png_shows_generated_and_real(tmp_path):
    roll = np.zeros((12, 10), dtype=np.uint8)
    roll[np.arange(12), np.arange(12) % 10] = 1
    path = piano_roll_png(tmp_path / "r.png", roll, 55, prime_steps=4, reference=roll[::-1], reference_name="test:0")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] == 450 and image.shape[1] == 1300  # two panels side by side
    single = matplotlib.image.imread(piano_roll_png(tmp_path / "s.png", roll, 55))
    assert single.shape[1] == 650
