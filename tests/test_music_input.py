"""Music input that asks for unbounded work or times nothing (issue 26): every limit is checked before anything
is allocated and refused in one line naming the file or flag, the limit and the fix; within the limits the
results do not change (scoring long pieces a few at a time gives the same numbers)."""

import io
import tracemalloc

import mido
import numpy as np
import pytest
import torch

import rnnkit.data.music as music_data
from rnnkit.data.music import MAX_PIECE_STEPS, PitchRange, read_midi, read_midi_folder, read_music
from rnnkit.errors import InputError
from rnnkit.models.music import PianoRollModel
from rnnkit.music import check_duration, render
from rnnkit.tasks import music as music_task

BIGGEST_DELTA = 0x0FFFFFFF


def midi(path, ticks_per_beat: int, *notes: tuple[int, int, int]):
    """A type-0 MIDI file of notes (pitch, ticks before it, ticks it lasts), its header's division written by hand
    (mido refuses to write 0 or an SMPTE division)."""
    track = mido.MidiTrack()
    for pitch, gap, length in notes:
        track.append(mido.Message("note_on", note=pitch, velocity=64, time=gap))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=length))
    file = mido.MidiFile(type=0, ticks_per_beat=480)
    file.tracks.append(track)
    buffer = io.BytesIO()
    file.save(file=buffer)
    data = bytearray(buffer.getvalue())
    data[12:14] = (ticks_per_beat & 0xFFFF).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_a_file_timed_in_zero_ticks_or_smpte_frames_is_named(tmp_path):
    with pytest.raises(InputError) as error:
        read_midi(midi(tmp_path / "zero.mid", 0, (60, 0, 480)))
    assert one_line(error).startswith(f"{tmp_path / 'zero.mid'}: its header times it in 0 ticks per quarter note")
    with pytest.raises(InputError) as error:
        read_midi(midi(tmp_path / "smpte.mid", 0xE728, (60, 0, 480)))
    assert "SMPTE frames" in one_line(error) and "re-export" in one_line(error)


def test_a_40_byte_file_spanning_2_28_ticks_is_refused_before_its_frames_exist(tmp_path):
    path = midi(tmp_path / "apart.mid", 1, (60, 0, 1), (62, BIGGEST_DELTA, 1))  # notes at ticks 0 and 2^28
    assert path.stat().st_size < 50
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as error:
            read_midi(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = one_line(error)
    assert f"its notes span {2**28 + 1:,} ticks" in message and f"{MAX_PIECE_STEPS:,} steps" in message
    assert "give a coarser --step" in message
    assert peak < 10 * 2**20  # a frame per step would have been gigabytes


def test_step_limits(tmp_path):
    path = midi(tmp_path / "ok.mid", 96, (60, 0, 96), (64, 0, 96))
    for step in (1e-9, 1e-320):  # finer than a tick (1/96 quarter note); a subnormal would overflow round()
        with pytest.raises(InputError) as error:
            read_midi(path, step)
        message = one_line(error)
        assert "finer than the file's resolution (96 ticks" in message and "--step 0.0104 or more" in message
    for step in (1e300, float("inf"), float("nan"), 0.0, -1.0, True):
        with pytest.raises(InputError, match="--step"):
            read_midi(path, step)
    assert read_midi(path, 1 / 96).frames[:2] == ((60,), (60,))  # one tick a step is allowed
    assert read_midi(path, 64).frames == ((60, 64),)  # 64 quarter notes a step too


def test_the_piece_limit_counts_steps_not_ticks(tmp_path):
    just = midi(tmp_path / "just.mid", 4, (60, 0, 4 * (MAX_PIECE_STEPS - 1)))
    assert len(read_midi(just)) == MAX_PIECE_STEPS - 1
    with pytest.raises(InputError, match="give a coarser --step"):
        read_midi(just, 0.25)  # the same file in sixteenths is four times as long


def test_everything_read_together_is_bounded(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        midi(tmp_path / f"{name}.mid", 480, (60, 0, 480 * 40))
    monkeypatch.setattr(music_data, "MAX_TOTAL_STEPS", 100)
    with pytest.raises(InputError) as error:
        read_music(tmp_path)
    assert one_line(error).startswith(f"{tmp_path} holds more than 100 steps of music in all")


def test_a_folder_of_bad_files_names_the_first_in_full_and_counts_the_rest(tmp_path):
    midi(tmp_path / "good.mid", 480, (60, 0, 480))
    for i in range(8):
        (tmp_path / f"bad{i}.mid").write_bytes(b"MThd" + bytes(i))
    with pytest.raises(InputError) as error:
        read_midi_folder(tmp_path)
    message = one_line(error)
    assert message.startswith(f"8 of the 9 MIDI files in {tmp_path} cannot be used (fix or remove them): "
                              f"{tmp_path / 'bad0.mid'}: not a MIDI file")
    assert message.endswith("also unusable: bad1.mid, bad2.mid, bad3.mid, bad4.mid, bad5.mid and 2 more")


def test_a_pitch_outside_the_range_names_the_file_piece_and_the_range_that_holds_it(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"train": [[[60], [64]], [[30, 90]]]}')
    pieces = read_music(path)["train"]
    with pytest.raises(InputError) as error:
        PitchRange(50, 80).check(pieces, "give --pitch-range {needed}")
    assert one_line(error) == (f"{path}, piece train:1 holds pitches 30, 90, outside the pitch range 50-80; "
                              "give --pitch-range 30-90")


def test_audio_longer_than_the_limit_is_refused_before_its_samples_exist():
    check_duration(1000, 1.0, 90.0)
    for steps, step, bpm in ((64, 1.0, 1e-6), (MAX_PIECE_STEPS, 64.0, 90.0), (64, 1.0, 1e-300)):
        with pytest.raises(InputError) as error:
            render([[60]] * steps, step, bpm)
        assert "--bpm" in one_line(error) and "hours" in one_line(error)


def test_long_pieces_are_scored_a_few_at_a_time_with_the_same_numbers(monkeypatch):
    torch.manual_seed(0)
    model = PianoRollModel(6, output="bernoulli", hidden_size=4).eval()
    rng = np.random.default_rng(0)
    rolls = [(rng.random((n, 6)) < 0.3).astype(np.uint8) for n in (3, 40, 7, 90, 12)]
    whole = music_task.score_rolls(model, rolls)
    batches = []
    monkeypatch.setattr(music_task, "EVAL_BATCH_FRAMES", 100)
    original = music_task.padded
    monkeypatch.setattr(music_task, "padded", lambda parts: batches.append(parts) or original(parts))
    cut = music_task.score_rolls(model, rolls)
    assert len(batches) > 1 and all(len(b) == 1 or len(b) * max(map(len, b)) <= 100 for b in batches)
    assert cut["steps"] == whole["steps"] == 152
    assert cut["nll_per_step"] == pytest.approx(whole["nll_per_step"], rel=1e-6)
    assert cut["frame_accuracy"] == pytest.approx(whole["frame_accuracy"], rel=1e-6)


def test_a_batch_of_long_pieces_that_cannot_be_trained_is_refused_naming_seq_len(monkeypatch):
    model = PianoRollModel(88, hidden_size=256, nade_hidden=128)
    config = music_task.MusicDataConfig(data="x.json", batch_size=16)
    monkeypatch.setattr("rnnkit.checks.machine_memory", lambda: 16 * 10**9)
    music_task.check_training_batch_memory(config, model, [range(200)] * 20)  # chorale-sized: fine
    with pytest.raises(InputError) as error:
        music_task.check_training_batch_memory(config, model, [range(200)] * 19 + [range(MAX_PIECE_STEPS)])
    message = one_line(error)
    assert "batches of 16 pieces of up to 100,000 steps" in message and "--seq-len" in message
