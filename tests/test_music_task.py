"""The music task end to end on tiny piano rolls: train, resume, evaluate, generate (MIDI, WAV, PNG), and the
mistakes a user can make. The JSB chorales are needed only by the last test, which skips without them."""

import json
import wave
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, assert_resumed_exactly, run_cli

import rnnkit
from rnnkit.data.music import PitchRange
from rnnkit.errors import InputError
from rnnkit.tasks.music import MusicDataConfig, score_rolls
from rnnkit.tasks.music_pieces import load_data

JSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsb_chorales" / "jsb-chorales-quarter.json"


def tiny_pieces(count: int, seed: int) -> list:
    """Pieces of rising triads over pitches 60..72: something to learn in a few steps."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(count):
        roots = rng.integers(60, 66, size=rng.integers(4, 9))
        pieces.append([[int(r), int(r) + 4, int(r) + 7] if r % 2 else [int(r)] for r in roots])
    return pieces


@pytest.fixture
def data_file(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"train": tiny_pieces(12, 0), "valid": tiny_pieces(4, 1), "test": tiny_pieces(5, 2)}))
    return path


SMALL = ["--hidden", "16", "--nade-hidden", "8", "--batch-size", "4"]


def train(capsys, *args) -> dict:
    """Run ``rnnkit train music ARGS --json --quiet``; its report."""
    code, out, err = run_cli(capsys, "train", "music", *args, "--json", "--quiet")
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def run(capsys, tmp_path, data_file, output="nade", name="run", extra=()) -> Path:
    out = tmp_path / name
    train(capsys, "--data", data_file, "--out", out, "--output", output, *SMALL, "--epochs", "2", *extra)
    return out


@pytest.mark.parametrize("output", ["bernoulli", "nade"])
def test_validation_loss_is_the_nll_per_step_that_evaluate_reports(tmp_path, data_file, output, capsys):
    out = run(capsys, tmp_path, data_file, output)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    scores = rnnkit.load(out, "latest").evaluate(split="valid")
    assert scores["nll_per_step"] == pytest.approx(records[-1]["valid_loss"], rel=1e-5)
    assert scores["frame_accuracy"] == pytest.approx(records[-1]["valid_frame_accuracy"], rel=1e-5)
    assert scores["steps"] == sum(len(p) for p in tiny_pieces(4, 1)) and scores["split"] == "valid"
    code, stdout, err = run_cli(capsys, "evaluate", out, "--data", data_file, "--json")
    assert code == 0, err
    test = json.loads(stdout)
    assert test["split"] == "test" and test["steps"] == sum(len(p) for p in tiny_pieces(5, 2))
    assert {"nll_per_step", "frame_accuracy", "steps"} <= test.keys()
    code, stdout, _ = run_cli(capsys, "evaluate", out)
    assert code == 0 and "nats per step" in stdout and "test split of" in stdout


def test_resume_continues_where_the_run_stopped(tmp_path, data_file, capsys):
    out = run(capsys, tmp_path, data_file, extra=["--transpose", "2", "--dropout", "0.2"])
    report = train(capsys, "--resume", out, "--epochs", "3")
    assert report["epoch"] == 3 and report["steps"] == 3 * 3  # 12 pieces in batches of 4
    train(capsys, "--data", data_file, "--out", tmp_path / "straight", *SMALL, "--epochs", "3", "--transpose", "2",
          "--dropout", "0.2")
    assert_resumed_exactly(tmp_path / "straight", out, 3)
    code, _, err = run_cli(capsys, "train", "music", "--resume", out, "--hidden", "32")
    assert_one_line_error(code, err, "--hidden 32 differs from the run's 16")


def test_generate_writes_midi_wav_and_png_reproducibly(tmp_path, data_file, capsys):
    out = run(capsys, tmp_path, data_file)
    files = {kind: tmp_path / f"g.{ext}" for kind, ext in (("midi", "mid"), ("wav", "wav"), ("plot", "png"))}
    args = [str(out), "--steps", "12", "--seed", "0", "--prime-piece", "test:1", "--prime-steps", "3",
            "--midi", str(files["midi"]), "--wav", str(files["wav"]), "--plot", str(files["plot"]), "--json"]
    code, stdout, stderr = run_cli(capsys, "generate", *args)
    assert code == 0, stderr
    first = json.loads(stdout)
    assert first["steps"] == 15 and first["prime_steps"] == 3
    assert first["frames"][:3] == tiny_pieces(5, 2)[1][:3]
    assert mido.MidiFile(str(files["midi"])).length > 0
    with wave.open(str(files["wav"])) as audio:
        assert audio.getnchannels() == 1 and audio.getnframes() > 0
    assert files["plot"].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(run_cli(capsys, "generate", *args)[1])["frames"] == first["frames"]
    code, stdout, stderr = run_cli(capsys, "generate", out, "--steps", "4", "--seed", "1")
    lines = stdout.splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].startswith("   0 "), stderr


def test_a_midi_prime(tmp_path, data_file, capsys):
    from rnnkit.music import write_midi

    out = run(capsys, tmp_path, data_file)
    write_midi([[60, 64, 67], [62]], tmp_path / "p.mid")
    trained = rnnkit.load(out)
    assert trained.generate(steps=2, seed=0, prime_midi=tmp_path / "p.mid")["frames"][:2] == [[60, 64, 67], [62]]
    write_midi([[30]], tmp_path / "low.mid")
    with pytest.raises(InputError, match="low.mid holds pitch 30, outside the pitch range 60-72"):
        trained.generate(prime_midi=tmp_path / "low.mid")


def test_user_mistakes_fail_with_one_line(tmp_path, data_file, capsys):
    out = run(capsys, tmp_path, data_file)
    trained = rnnkit.load(out)
    cases = [
        (lambda: trained.evaluate(split="dev"), "split must be one of train, valid, test, got 'dev'"),
        (lambda: trained.generate(prime_piece="test:99"), "has 5 pieces (0..4)"),
        (lambda: trained.generate(prime_piece="test"), "is not SPLIT:INDEX"),
        (lambda: trained.generate(prime_steps=4), "--prime-steps needs a prime"),
        (lambda: trained.generate(temperature=0.0), "temperature must be a finite number > 0"),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as error:
            call()
        assert message in str(error.value) and "\n" not in str(error.value)
    for args, words in [
        (["--data", data_file, "--bidirectional"], ["--bidirectional does not apply"]),
        (["--out", tmp_path / "x"], ["give the music with --data FILE.json or --data FOLDER_OF_MIDI"]),
        (["--data", tmp_path / "nothing.json"], ["nothing.json: no such file or folder"]),
        (["--data", data_file, "--pitch-range", "60"], ["--pitch-range '60' is not LOW-HIGH"]),
        (["--data", data_file, "--cell", "lstm", "--engine", "explicit", "--seq-len", "0"], ["--seq-len"]),
    ]:
        code, _, err = run_cli(capsys, "train", "music", *args)
        assert_one_line_error(code, err, *words)
    code, _, err = run_cli(capsys, "predict", out)
    assert_one_line_error(code, err, "holds a music model", "rnnkit generate")
    # pitches outside a given range: one line naming the first piece (and its file), the flag and the range needed
    code, _, err = run_cli(capsys, "train", "music", "--data", data_file, "--pitch-range", "64-70", "--out", tmp_path / "y")
    assert_one_line_error(code, err, f"{data_file}, piece train:0 holds", "outside the pitch range 64-70",
                          "more pieces hold pitches outside it too", "give --pitch-range")
    assert not (tmp_path / "y").exists()  # a mistake is caught before the run directory is made
    (tmp_path / "empty.json").write_text(json.dumps({"test": tiny_pieces(2, 0)}))
    with pytest.raises(InputError, match="has no training pieces"):
        load_data(MusicDataConfig(data=str(tmp_path / "empty.json")))


def test_a_midi_folder_without_splits_holds_out_validation_pieces(tmp_path):
    from rnnkit.music import write_midi

    for n, piece in enumerate(tiny_pieces(10, 3)):
        write_midi(piece, tmp_path / f"{n:02d}.mid")
    config = MusicDataConfig(data=str(tmp_path), valid_fraction=0.2)
    data = load_data(config)
    assert len(data.train) == 8 and [Path(p.name).name for p in data.valid] == ["08.mid", "09.mid"]
    assert data.pitches == PitchRange.covering(data.train + data.valid)
    # a folder without split subfolders is scored whole
    from rnnkit.models.music import PianoRollModel
    from rnnkit.tasks import music

    trained = music.TrainedMusicModel(PianoRollModel(data.pitches.size, hidden_size=4).eval(), data.pitches, config)
    scores = music.evaluate(trained, str(tmp_path))
    assert scores["split"] == "all" and scores["pieces"] == 10
    with pytest.raises(InputError, match="has no 'test' split"):
        music.evaluate(trained)


@pytest.mark.skipif(not JSB.exists(), reason=f"the JSB chorales are not at {JSB} (shared/data/jsb_chorales)")
def test_an_untrained_model_on_the_chorales_scores_about_p_log_2():
    trained_size = PitchRange(43, 96).size
    from rnnkit.data.music import read_music
    from rnnkit.models.music import PianoRollModel

    test = read_music(JSB)["test"]
    model = PianoRollModel(trained_size, "bernoulli", hidden_size=8)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    scores = score_rolls(model, [PitchRange(43, 96).roll(piece) for piece in test])
    assert scores["steps"] == 4725 and scores["nll_per_step"] == pytest.approx(trained_size * np.log(2), rel=1e-6)


def test_each_epoch_batches_every_piece_once_in_batches_of_similar_length(data_file):
    from rnnkit.tasks.music import MusicTask

    config = MusicDataConfig(data=str(data_file), batch_size=5)
    task = MusicTask(load_data(config), config, seed=3)
    epochs = [list(task.train_batches(epoch, 0)) for epoch in range(2)]
    for batches in epochs:
        assert len(batches) == task.num_train_batches() == 3  # 12 pieces: 5 + 5 + 2
        assert sorted(int(length) for _, lengths in batches for length in lengths) == \
            sorted(len(piece) for piece in tiny_pieces(12, 0))
    # the same lengths (one pool sorted by length), but other pieces meet in a batch
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(*epochs))
    resumed = list(task.train_batches(1, 1))  # a run resumed mid-epoch gets the rest of the same epoch
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, epochs[1][1:])) and len(resumed) == 2


def test_the_real_piece_beside_a_generated_one(tmp_path, data_file, capsys):
    from rnnkit.tasks.music import from_run, generate_music, real_piece

    trained = from_run(run(capsys, tmp_path, data_file))
    primed = generate_music(trained, 1, seed=0, prime_piece="test:1", prime_steps=2)
    roll, name = real_piece(trained, primed)
    assert name == "test:1" and np.array_equal(roll, trained.pitches.roll(primed.source)[:3])
    long = generate_music(trained, 30, seed=0)
    roll, name = real_piece(trained, long)  # no piece has 30 steps: the longest, test first
    longest = max(len(piece) for piece in tiny_pieces(5, 2) + tiny_pieces(4, 1) + tiny_pieces(12, 0))
    assert len(roll) == longest and name.split(":")[0] in ("test", "valid", "train")
    assert real_piece(trained, long, data=str(tmp_path / "gone.json")) == (None, None)


def test_evaluate_split_and_generate_flags_through_the_cli(tmp_path, data_file, capsys):
    out = run(capsys, tmp_path, data_file)
    code, stdout, stderr = run_cli(capsys, "evaluate", out, "--split", "valid", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["split"] == "valid"
    code, _, err = run_cli(capsys, "generate", out, "--top-k", "3")
    assert_one_line_error(code, err, "--top-k is not an option of task 'music'; the tasks that take it: lm")
