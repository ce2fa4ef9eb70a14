"""One-to-many from the command line: `rnnkit train caption` / `predict` / `evaluate` end to end on the embedded
digits and on an .npz file, bad images and runs of another task refused, and a word-level language model
writing a sentence from one seed word (`rnnkit generate DIR --prime WORD`)."""

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.cli import main
from rnnkit.data.digits import WORDS, digit_compositions
from rnnkit.errors import InputError
from rnnkit.tasks.caption import from_run as load_trained
from rnnkit.tasks.caption import write_png
from rnnkit.train import RunDirectory
from cli_helpers import run_cli

TINY_MODEL = ["--hidden", "16", "--features", "16", "--channels", "4", "--embedding", "8", "--batch-size", "32",
              "--seed", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A captioner trained for one epoch on 64 digit compositions."""
    run = tmp_path_factory.mktemp("runs") / "digits"
    stdout = io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(io.StringIO()):
        main(["train", "caption", "--train-size", "64", "--valid-size", "16", "--test-size", "24", "--max-digits", "3",
              *TINY_MODEL, "--epochs", "1", "--out", str(run), "--json"])
    return run, json.loads(stdout.getvalue())


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    """A held-out composition as PNG and .npy, and images of the wrong mode and size."""
    composed, _ = digit_compositions("test", 2, max_digits=3, seed=4)  # (2, 8, 24)
    paths = {"png": tmp_path / "digits.png", "npy": tmp_path / "digits.npy", "rgb": tmp_path / "rgb.png",
             "wide": tmp_path / "wide.png"}
    write_png(composed[0], paths["png"])
    np.save(paths["npy"], composed[1])
    Image.new("RGB", (24, 8)).save(paths["rgb"])
    Image.new("L", (40, 8)).save(paths["wide"])
    return paths


def test_training_reports_validation_exact_match(trained):
    run, report = trained
    assert report["stop_reason"] == "epochs" and 0 <= report["valid_exact_match"] <= 1
    assert 0 <= report["valid_token_accuracy"] <= 1
    meta = RunDirectory.open(run).load().meta
    assert meta["task"] == "caption" and meta["image_shape"] == [8, 24]


def test_predict_captions_png_and_npy_images(trained, images, capsys):
    run, _ = trained
    for kind in ("png", "npy"):
        code, out, err = run_cli(capsys, "predict", run, "--input", images[kind])
        assert code == 0, err
        # digit words (an untrained model may still write <unk>, which it never saw as a target)
        assert set(out.split()) <= {*WORDS, "<unk>"}
    code, out, _ = run_cli(capsys, "predict", run, "--input", images["png"], "--json")
    assert code == 0 and json.loads(out)["input"] == str(images["png"])


def test_evaluate_scores_the_held_out_digits_by_default(trained, capsys):
    run, _ = trained
    code, out, err = run_cli(capsys, "evaluate", run, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["images"] == 24 and "test" in metrics["data"]
    assert 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["token_accuracy"] <= 1
    code, out, _ = run_cli(capsys, "evaluate", run)
    assert code == 0 and out.startswith("exact match ") and "token accuracy" in out


def test_training_and_evaluating_on_an_npz_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pictures = (rng.random((40, 6, 10)) * 255).astype(np.uint8)
    captions = np.array(["bright" if p.mean() > 127 else "dark" for p in pictures])
    np.savez(tmp_path / "data.npz", images=pictures, captions=captions)
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "caption", "--data", tmp_path / "data.npz", *TINY_MODEL,
                             "--max-steps", "2", "--out", run, "--quiet")
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", run, "--data", tmp_path / "data.npz", "--json")
    assert code == 0 and json.loads(out)["images"] == 40
    code, _, err = run_cli(capsys, "evaluate", run)
    assert code == 2 and "give held-out images with --data FILE.npz" in err
    np.save(tmp_path / "one.npy", pictures[0])
    code, out, err = run_cli(capsys, "predict", run, "--input", tmp_path / "one.npy")
    assert code == 0 and set(out.split()) <= {"bright", "dark", "<unk>"}


# ------------------------------------------------------------------------------------------- bad input


def test_images_of_another_mode_or_size_are_converted_and_it_says_what_it_did(trained, images, capsys):
    """Issue 26: `caption predict` takes any picture; one warning line says what was done to it."""
    run, _ = trained
    code, out, err = run_cli(capsys, "predict", run, "--input", images["rgb"])
    assert code == 0 and out.strip() and err.count("\n") == 1, err
    assert err.startswith("warning: ") and "converted mode RGB to grayscale" in err and "24×8" in err
    code, out, err = run_cli(capsys, "predict", run, "--input", images["wide"], "--json")
    assert code == 0, err
    adjusted = json.loads(out)["adjusted"]
    assert "scaled it from 40×8 to 24×5 pixels" in adjusted and "padded it to 24×8" in adjusted
    assert err.count("\n") == 1 and "scaled it from 40×8" in err
    code, out, err = run_cli(capsys, "predict", run, "--input", images["png"], "--json")
    assert code == 0 and err == "" and "adjusted" not in json.loads(out)  # the model's own size and mode: as it is
    code, _, err = run_cli(capsys, "predict", run)
    assert code == 2 and "give the image with --input" in err


def test_a_checkpoint_of_another_task_is_refused(trained, tmp_path, capsys):
    run, _ = trained
    code, _, err = run_cli(capsys, "translate", run, "--input", tmp_path / "x")
    assert code == 2 and "holds a 'caption' run, not a 'translate' one" in err
    other = RunDirectory.create(tmp_path / "other")
    other.save(torch.nn.Linear(1, 1), {}, {"task": "translate", "configs": {}})
    with pytest.raises(InputError, match="holds a 'translate' run, not a 'caption' one"):
        load_trained(tmp_path / "other")


def test_bad_settings_are_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "caption", "--bidirectional", "--out", tmp_path / "run")
    assert code == 2 and "--bidirectional does not apply" in err
    code, _, err = run_cli(capsys, "train", "caption", "--channels", "4,x", "--out", tmp_path / "run")
    assert code == 2 and "comma-separated list" in err
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 4, 4)), captions=np.array(["a"]))
    code, _, err = run_cli(capsys, "train", "caption", "--data", tmp_path / "bad.npz", "--out", tmp_path / "run")
    assert code == 2 and "captions must be 2 strings" in err and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------- one word in


def test_a_word_level_language_model_writes_on_from_a_seed_word(tmp_path, capsys):
    """The seeds' "one word in, a sequence out": `rnnkit generate DIR --prime WORD` on a word-level model."""
    text = "the cat sat on the mat\nthe dog sat on the rug\na cat ran to the dog\n" * 20
    (tmp_path / "words.txt").write_text(text)
    run = tmp_path / "lm"
    code, _, err = run_cli(capsys, "train", "lm", "--data", tmp_path / "words.txt", "--level", "word",
                           "--layers", "1", "--hidden", "16", "--seq-len", "6", "--batch-size", "4",
                           "--max-steps", "30", "--lr", "0.01", "--out", run, "--quiet")
    assert code == 0, err
    code, out, err = run_cli(capsys, "generate", run, "--prime", "cat", "--length", "8", "--seed", "0")
    assert code == 0, err
    words = out.split()
    assert words[0] == "cat" and len(words) >= 2  # the seed word, then what the model writes after it
    assert set(words) <= set(text.split())
    code, again, _ = run_cli(capsys, "generate", run, "--prime", "cat", "--length", "8", "--seed", "0")
    assert again == out  # a seed makes the sentence reproducible
    code, greedy, _ = run_cli(capsys, "generate", run, "--prime", "dog", "--length", "4", "--greedy")
    assert code == 0 and greedy.split()[0] == "dog"


def test_a_resumed_run_continues(trained, tmp_path, capsys):
    run, report = trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    code, out, err = run_cli(capsys, "train", "caption", "--resume", copy, "--epochs", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["epoch"] == 2 and json.loads(out)["step"] == 2 * report["step"]
    code, _, err = run_cli(capsys, "train", "caption", "--resume", copy, "--features", "32")
    assert code == 2 and "--features 32 differs from the run's 16" in err
