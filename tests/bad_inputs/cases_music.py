"""Bad music input (issue 26): MIDI files that time nothing, span millions of steps in a few bytes, or hold
pitches outside the range; folders of several bad files; a --step, --steps or --bpm that asks for unbounded
work. Every file is made here with mido, byte by byte where mido would refuse to write it."""

import io

import mido

from . import damage as d
from .cases import case, train

TWO_TO_THE_28 = 0x0FFFFFFF  # the largest delta time a MIDI event can carry (four 7-bit bytes)


def midi_bytes(ticks_per_beat: int, *notes: tuple[int, int, int]) -> bytes:
    """A type-0 MIDI file: each note (pitch, delta ticks before it starts, ticks it lasts), one after another."""
    track = mido.MidiTrack()
    for pitch, gap, length in notes:
        track.append(mido.Message("note_on", note=pitch, velocity=64, time=gap))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=length))
    midi = mido.MidiFile(type=0, ticks_per_beat=480)  # the real division is written below
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    data = bytearray(buffer.getvalue())
    data[12:14] = (ticks_per_beat & 0xFFFF).to_bytes(2, "big")  # the header's division, written by hand
    return bytes(data)


GOOD = midi_bytes(480, (60, 0, 480), (64, 0, 480), (67, 0, 480))
ZERO_RESOLUTION = midi_bytes(0, (60, 0, 480), (64, 0, 480))
SMPTE = midi_bytes(0xE728, (60, 0, 480), (64, 0, 480))  # -25 frames per second, 40 ticks a frame
NOTES_2_28_APART = midi_bytes(1, (60, 0, 1), (62, TWO_TO_THE_28, 1))  # 40-odd bytes, 2^28 quarter notes
ONE_NOTE_2_28_LONG = midi_bytes(1, (60, 0, TWO_TO_THE_28))  # a 30-odd byte file whose one note never ends
LOW_PITCH = midi_bytes(480, (10, 0, 480), (64, 0, 480))


def folder(name: str, **files: bytes):
    """A folder ``name`` holding ``files`` (name: bytes)."""
    return [d.write(f"{name}/{file}", content) for file, content in files.items()]


MIDI = "--valid-fraction 0"

# MIDI files that time nothing, or span what no memory holds
case("train-music-midi-ticks-per-beat-0", train("music", MIDI, data="--data {tmp}/zero.mid"), "zero.mid", "0 ticks",
     setup=d.write("zero.mid", ZERO_RESOLUTION))
case("train-music-midi-smpte-division", train("music", MIDI, data="--data {tmp}/smpte.mid"), "smpte.mid", "SMPTE",
     setup=d.write("smpte.mid", SMPTE))
case("train-music-midi-two-notes-2^28-ticks-apart", train("music", MIDI, data="--data {tmp}/apart.mid"), "apart.mid",
     "100,000 steps", "--step", setup=d.write("apart.mid", NOTES_2_28_APART))
case("train-music-midi-one-note-2^28-ticks-long", train("music", MIDI, data="--data {tmp}/long.mid"), "long.mid",
     "100,000 steps", setup=d.write("long.mid", ONE_NOTE_2_28_LONG))
case("train-music-midi-truncated-header", train("music", MIDI, data="--data {tmp}/cut.mid"), "cut.mid",
     "not a MIDI file", setup=d.write("cut.mid", GOOD[:20]))

# --step: absurdly fine (a billion steps a quarter note), absurdly coarse, or not a number
case("train-music--step=1e-9", train("music", f"{MIDI} --step 1e-9", data="--data {tmp}/good.mid"), "--step",
     "good.mid", setup=d.write("good.mid", GOOD))
case("train-music--step=1e-320-subnormal", train("music", f"{MIDI} --step 1e-320", data="--data {tmp}/good.mid"),
     "--step", setup=d.write("good.mid", GOOD))
case("train-music--step=1e300", train("music", f"{MIDI} --step 1e300", data="--data {tmp}/good.mid"), "--step",
     "64", setup=d.write("good.mid", GOOD))
case("train-music--step=1e-9-on-a-folder", train("music", f"{MIDI} --step 1e-9", data="--data {tmp}/songs"), "--step",
     setup=folder("songs", **{"a.mid": GOOD, "b.mid": GOOD}))

# folders: every bad file counted, the first in full, the others named; one line
case("train-music-folder-with-two-bad-files", train("music", MIDI, data="--data {tmp}/songs"), "2 of the 3",
     "bad1.mid", "bad2.mid", setup=folder("songs", **{"bad1.mid": ZERO_RESOLUTION, "bad2.mid": d.GARBAGE,
                                                      "good.mid": GOOD}))
case("train-music-folder-with-eight-bad-files", train("music", MIDI, data="--data {tmp}/songs"), "8 of the 9",
     "and 2 more", setup=folder("songs", **{"good.mid": GOOD},
                                **{f"bad{i}.mid": d.GARBAGE[: 10 * i] for i in range(8)}))
case("train-music-split-folders-with-bad-files", train("music", "", data="--data {tmp}/songs"), "2 of the 4",
     "valid", setup=folder("songs", **{"train/a.mid": GOOD, "train/b.mid": GOOD, "valid/c.mid": SMPTE,
                                       "test/d.mid": NOTES_2_28_APART}))

# pitches outside the range: the file, the pitch, the flag and the range that holds them
case("train-music-midi-pitch-below--pitch-range", train("music", f"{MIDI} --pitch-range 21-108",
                                                        data="--data {tmp}/low.mid"),
     "low.mid", "pitch 10", "--pitch-range 10-108", setup=d.write("low.mid", LOW_PITCH))
case("train-music-json-pitch-outside--pitch-range", train("music", "--pitch-range 70-72"), "chorales.json", "piece",
     "--pitch-range")

# generate: a prime that times nothing; more steps or a slower tempo than anything can hold
case("generate-music--prime-midi-ticks-per-beat-0", "generate {music} --prime-midi {tmp}/zero.mid --midi {tmp}/x.mid",
     "zero.mid", "0 ticks", setup=d.write("zero.mid", ZERO_RESOLUTION))
case("generate-music--prime-midi-2^28-ticks-apart", "generate {music} --prime-midi {tmp}/apart.mid --midi {tmp}/x.mid",
     "apart.mid", "100,000 steps", setup=d.write("apart.mid", NOTES_2_28_APART))
case("generate-music--prime-midi-pitch-outside-the-model", "generate {music} --prime-midi {tmp}/low.mid "
     "--midi {tmp}/x.mid", "low.mid", "pitch 10", "prime", setup=d.write("low.mid", LOW_PITCH))
case("generate-music--steps=10^12", "generate {music} --steps 1000000000000 --midi {tmp}/x.mid", "--steps", "100000")
case("generate-music-wav-of-weeks", "generate {music} --steps 100000 --bpm 4 --midi {tmp}/x.mid --wav {tmp}/x.wav",
     "--bpm", "--steps", "hours")

# evaluate: other music with bad files or pitches the model does not know
case("evaluate-music-data-folder-with-two-bad-files", "evaluate {music} --data {tmp}/songs", "2 of the 3", "bad1.mid",
     setup=folder("songs", **{"bad1.mid": ZERO_RESOLUTION, "bad2.mid": SMPTE, "good.mid": GOOD}))
case("evaluate-music-data-pitch-outside-the-model", "evaluate {music} --data {tmp}/low.mid", "low.mid", "pitch 10",
     "--pitch-range", setup=d.write("low.mid", LOW_PITCH))

# sizes that other inputs inflate: generated lengths, beams, the explain page (evaluate's --batch-size and
# --seq-len beyond the text are cut to it: not mistakes)
case("generate-lm--length=10^12", "generate {lm} --length 1000000000000", "--length")
case("translate--beam=10^9", "translate {translate} --input {src} --beam 1000000000", "--beam")
case("explain--page-chars=10^9", "explain {lm} --text {text} --page-chars 1000000000 --out {tmp}/p.html",
     "--page-chars", "100,000")
case("diagnose-gradients--length=10^9", "diagnose gradients --length 1000000000 --hidden 4 --cells rnn --out {tmp}/g.png",
     "--length")
case("diagnose-memory--length=10^9", "diagnose memory --length 1000000000 --hidden 4 --cells rnn --out {tmp}/m.png",
     "--length")
case("diagnose-memory-run--length=10^9", "diagnose memory {lm} --length 1000000000 --out {tmp}/m.png", "--length")
case("bench--lengths=10^9", "bench memory-tasks --tasks adding --lengths 1000000000 --cells rnn --hidden 4 --steps 2 "
     "--eval-size 8 --quiet --out {tmp}/b", "--lengths")
case("train-caption--train-size=10^12", train("caption", "--train-size 1000000000000"), "--train-size")
case("train-caption--max-digits=10^9", train("caption", "--max-digits 1000000000"), "--max-digits")
case("train-forecast--window=10^9", train("forecast", "--window 1000000000"), "--window")
case("train-lm--seq-len=10^12", train("lm", "--seq-len 1000000000000"), "--seq-len")
case("train-lm--batch-size=10^12", train("lm", "--batch-size 1000000000000"), "--batch-size")
# (translate's --max-length and classify's --max-vocab beyond the data are upper bounds that bind nothing: fine)
