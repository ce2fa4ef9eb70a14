"""Reading music into piano rolls: the chorale JSON format, MIDI files (written with mido, read back), pitch
ranges, and one line per unusable file or piece."""

import json
from pathlib import Path

import mido
import numpy as np
import pytest

from rnnkit.data.music import Piece, PitchRange, read_json, read_midi, read_midi_folder, read_music
from rnnkit.errors import InputError
from rnnkit.music import write_midi

JSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsb_chorales" / "jsb-chorales-quarter.json"


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def midi_file(path, messages, ticks_per_beat=480):
    """A type-0 MIDI file of ``messages``: (delta ticks, type, note, velocity, channel)."""
    track = mido.MidiTrack()
    for delta, kind, note, velocity, channel in messages:
        track.append(mido.Message(kind, note=note, velocity=velocity, channel=channel, time=delta))
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def test_json_pieces_keep_their_steps_sorted_and_named(tmp_path):
    path = write_json(tmp_path / "m.json", {"train": [[[64, 60], [], [60, 60, 67]]], "test": [[[72]]]})
    splits = read_json(path)
    assert splits["train"] == [Piece("train:0", ((60, 64), (), (60, 67)))]
    assert splits["test"][0].name == "test:0" and len(splits["test"][0]) == 1


@pytest.mark.parametrize("content, problem", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "holds no splits"),
    ('{"train": 3}', "split 'train' is not a list of pieces"),
    ('{"train": [[]]}', "piece train:0 is not a non-empty list of steps"),
    ('{"train": [[[60], [128]]]}', "piece train:0, step 1 is [128]"),
    ('{"train": [[[60], ["C4"]]]}', "piece train:0, step 1"),
])
def test_bad_json_fails_with_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        read_json(path)
    assert problem in str(error.value) and "\n" not in str(error.value)
    assert str(path) in str(error.value)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_music(tmp_path / "nothing.json")


def test_pitch_range_rolls_and_back():
    pitches = PitchRange.parse("58-64")
    piece = Piece("p", ((60, 64), (), (58,)))
    roll = pitches.roll(piece)
    assert pitches.size == 7 and roll.shape == (3, 7) and roll.dtype == np.uint8
    assert roll[0].tolist() == [0, 0, 1, 0, 0, 0, 1] and roll[1].sum() == 0 and roll[2, 0] == 1
    assert pitches.frames(roll) == [[60, 64], [], [58]]
    assert PitchRange.covering([piece, Piece("q", ((70,),))]) == PitchRange(58, 70)


@pytest.mark.parametrize("text", ["60", "60-", "a-b", "70-60", "0-128"])
def test_bad_pitch_ranges_fail_with_an_example(text):
    with pytest.raises(InputError, match="21-108"):
        PitchRange.parse(text)


def test_pitches_outside_the_range_get_one_line_naming_the_first_piece_and_counting_the_rest():
    pitches = PitchRange(60, 72)
    pieces = [Piece("a.mid", ((59, 60),)), Piece("b.mid", ((64,),)), Piece("c.mid", ((80, 81),))]
    with pytest.raises(InputError) as error:
        pitches.check(pieces, "give --pitch-range {needed}")
    assert str(error.value) == ("a.mid holds pitch 59, outside the pitch range 60-72 (1 more pieces hold pitches "
                                "outside it too); give --pitch-range 59-81")
    with pytest.raises(InputError, match="a.mid holds pitch 59"):
        pitches.roll(pieces[0])


def test_a_written_midi_file_reads_back_as_the_same_frames(tmp_path):
    frames = [[60, 64, 67], [60, 64, 67], [62], [], [65, 69, 72]]
    path = write_midi(frames, tmp_path / "x.mid", step=1.0)
    assert read_midi(path, step=1.0).frames == tuple(tuple(f) for f in frames)
    # half the step: every frame twice
    assert read_midi(path, step=0.5).frames == tuple(tuple(f) for f in frames for _ in range(2))


def test_midi_quantisation_note_offs_drums_and_leading_silence(tmp_path):
    tpb = 480
    path = midi_file(tmp_path / "q.mid", [
        (2 * tpb, "note_on", 60, 90, 0),         # starts after two beats of silence (dropped)
        (0, "note_on", 36, 90, 9),               # drums: no pitch
        (tpb, "note_on", 60, 0, 0),              # velocity 0 ends the note: one beat long
        (0, "note_on", 36, 0, 9),
        (0, "note_on", 67, 90, 0),
        (100, "note_off", 67, 0, 0),             # shorter than a step, still one step
        (tpb - 100, "note_on", 72, 90, 1),       # still held at the end of the file
        (2 * tpb, "note_on", 48, 90, 1),
        (0, "note_off", 48, 0, 1),
    ], tpb)
    assert read_midi(path, step=1.0).frames == ((60,), (67,), (72,), (72,), (48,))


def test_bad_midi_files_fail_with_one_line_naming_the_first_and_the_others(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "text.mid").write_text("this is not MIDI")
    midi_file(folder / "empty.mid", [(0, "note_on", 36, 90, 9), (480, "note_off", 36, 0, 9)])
    write_midi([[60], [62]], folder / "good.mid")
    with pytest.raises(InputError) as error:
        read_midi_folder(folder)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"2 of the 3 MIDI files in {folder} cannot be used")
    first, also = message.split("; also unusable: ")
    assert str(folder / "empty.mid") in first and "no notes" in first and "remove it" in first
    assert also == "text.mid"
    (folder / "empty.mid").unlink()
    with pytest.raises(InputError) as error:
        read_midi_folder(folder)
    message = str(error.value)  # one bad file: its own line, nothing about a folder
    assert message.startswith(str(folder / "text.mid")) and "not a MIDI file" in message and "re-export" in message


def test_a_midi_folder_gives_its_split_subfolders_or_one_train_split(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        write_midi([[60], [64]], tmp_path / split / "a.mid")
    write_midi([[67]], tmp_path / "train" / "b.MIDI")
    splits = read_music(tmp_path)
    assert sorted(splits) == ["test", "train"] and len(splits["train"]) == 2
    assert read_music(tmp_path / "train")["train"][1].frames == ((67,),)
    with pytest.raises(InputError, match="no such folder"):
        read_midi_folder(tmp_path / "missing")


def test_an_empty_folder_says_what_to_give(tmp_path):
    with pytest.raises(InputError, match="holds no .mid or .midi files"):
        read_midi_folder(tmp_path)


@pytest.mark.skipif(not JSB.exists(), reason=f"the JSB chorales are not at {JSB} (shared/data/jsb_chorales)")
def test_the_jsb_chorales_read_as_their_source_describes():
    splits = read_music(JSB)
    assert {split: len(pieces) for split, pieces in splits.items()} == {"train": 229, "valid": 76, "test": 77}
    assert sum(len(piece) for piece in splits["test"]) == 4725
    assert PitchRange.covering(splits["train"]) == PitchRange(43, 96)
