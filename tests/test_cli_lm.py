"""The `rnnkit` command end to end on a tiny corpus: train / generate / evaluate, the golden run, exact resume
(after a stop and after a hard kill), data-parallel training with torchrun, config files, and every bad input
giving one line on stderr, a non-zero exit and nothing lost.

Regenerate the golden file after an intended change of numerics: RNNKIT_UPDATE_GOLDEN=1 pytest tests/test_cli_lm.py
(the update run still compares with the committed numbers, so it shows what changed; the next run passes)
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnkit.tasks.lm import SPEC, LMDataConfig
from rnnkit.tasks.run import train as train_task
from rnnkit.tasks.spec import RunSettings
from rnnkit.train import TrainConfig
from cli_helpers import assert_one_line_error, latest_weights, run_cli, snapshot

GOLDEN = Path(__file__).parent / "golden" / "lm_tiny.json"
SRC = str(Path(__file__).resolve().parents[1] / "src")
# One thread, as in this process (see the one_thread fixture): the same arithmetic, hence equal weights.
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}

TINY_TEXT = "".join(
    f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(60)
)  # about 1,900 characters of Python-like text
TINY_MODEL = ["--layers", "1", "--hidden", "16", "--seq-len", "10", "--batch-size", "4", "--seed", "0"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT)
    return path


def train(capsys, corpus, out, *extra):
    code, stdout, stderr = run_cli(capsys, "train", "lm", "--data", corpus, *TINY_MODEL, "--out", out, "--quiet", "--json", *extra)
    assert code == 0, stderr
    return json.loads(stdout)


def assert_equal_weights(first: dict, second: dict, **tolerance):
    assert first.keys() == second.keys()
    for name in first:
        if tolerance:
            torch.testing.assert_close(first[name], second[name], **tolerance, msg=name)
        else:
            assert torch.equal(first[name], second[name]), name


# ------------------------------------------------------------------------------------------- happy paths


def test_train_generate_evaluate(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    report = train(capsys, corpus, run, "--epochs", "2")
    assert report["stop_reason"] == "epochs" and report["epoch"] == 2
    assert {"train_loss", "valid_loss", "valid_perplexity", "valid_bits_per_char", "tokens_per_second"} <= report.keys()

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["valid_loss"] == report["valid_loss"]
    assert records[0]["valid_bits_per_char"] == pytest.approx(records[0]["valid_loss"] / 0.6931471805599453)

    code, stdout, stderr = run_cli(capsys, "generate", run, "--length", "50", "--seed", "3", "--prime", "def ")
    assert code == 0, stderr
    assert stdout.startswith("def ") and len(stdout) >= 50
    assert run_cli(capsys, "generate", run, "--length", "50", "--seed", "3", "--prime", "def ")[1] == stdout

    code, stdout, stderr = run_cli(capsys, "evaluate", run, "--data", corpus, "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["perplexity"] == pytest.approx(2 ** metrics["bits_per_char"], rel=1e-6)

    code, stdout, _ = run_cli(capsys, "evaluate", run, "--data", corpus)
    assert code == 0 and "perplexity" in stdout and "bits/char" in stdout


def test_human_output_and_python_dash_m(corpus, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(corpus), *TINY_MODEL, "--max-steps", "3",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "validation: loss" in done.stdout and "rnnkit generate" in done.stdout
    assert "corpus:" in done.stderr and "step 3" in done.stderr  # the corpus line and the epoch line


def test_golden_losses_and_sample(capsys, corpus, tmp_path):
    losses = []
    data = LMDataConfig(data=str(corpus), seq_len=10, batch_size=4)
    model = {"cell": "lstm", "num_layers": 1, "hidden_size": 16, "embedding_dim": 0, "dropout": 0.0,
             "tie_weights": False, "engine": "fused", "init_range": None}
    train_task(SPEC, RunSettings(data, model, TrainConfig(epochs=None, max_steps=5, seed=0)),
               run_dir=None, on_step=lambda step, loss: losses.append(loss))
    train(capsys, corpus, tmp_path / "run", "--max-steps", "20")
    code, sample, stderr = run_cli(capsys, "generate", tmp_path / "run", "--length", "40", "--seed", "7", "--prime", "def")
    assert code == 0, stderr
    observed = {"losses": losses, "sample": sample}
    golden = json.loads(GOLDEN.read_text())  # the committed numbers, read before an update rewrites them
    if os.environ.get("RNNKIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(observed, indent=1) + "\n")
    assert observed["losses"] == pytest.approx(golden["losses"], rel=1e-5)
    assert observed["sample"] == golden["sample"]


def test_config_file_sets_flags_and_the_command_line_wins(capsys, corpus, tmp_path):
    config = tmp_path / "lm.toml"
    config.write_text('hidden = 12\nseq-len = 8\ndropout = 0.25\nlevel = "char"\nplateau-patience = 3\n')
    args = ["train", "lm", "--config", config, "--data", corpus, "--layers", "1", "--batch-size", "4",
            "--hidden", "16", "--max-steps", "2", "--schedule", "plateau", "--out", tmp_path / "run", "--quiet"]
    code, _, stderr = run_cli(capsys, *args)
    assert code == 0, stderr
    checkpoint_dir = tmp_path / "run" / "checkpoints" / json.loads((tmp_path / "run" / "latest.json").read_text())["checkpoint"]
    configs = json.loads((checkpoint_dir / "checkpoint.json").read_text())["configs"]
    assert configs["model"]["hidden_size"] == 16  # the flag beat the file
    assert configs["data"]["seq_len"] == 8 and configs["model"]["dropout"] == 0.25
    assert configs["train"]["schedule"] == "plateau" and configs["train"]["plateau_patience"] == 3


# ------------------------------------------------------------------------------------------- exact resume


def test_resume_after_a_stop_equals_an_uninterrupted_run(capsys, corpus, tmp_path):
    common = ["--epochs", "2", "--dropout", "0.2", "--layers", "2"]
    train(capsys, corpus, tmp_path / "whole", *common)
    stopped = train(capsys, corpus, tmp_path / "parts", *common, "--max-steps", "7")
    assert stopped["stop_reason"] == "max_steps" and stopped["steps"] == 7
    code, stdout, stderr = run_cli(capsys, "train", "lm", "--resume", tmp_path / "parts", "--quiet", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["stop_reason"] == "epochs"
    assert_equal_weights(latest_weights(tmp_path / "whole"), latest_weights(tmp_path / "parts"))
    whole = [json.loads(line)["valid_loss"] for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    parts = [json.loads(line)["valid_loss"] for line in (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()]
    assert whole == parts


def test_resume_after_a_hard_kill_equals_an_uninterrupted_run(capsys, corpus, tmp_path):
    """SIGKILL at an arbitrary moment: the latest checkpoint is whole, and resuming from it ends identically."""
    common = ["--epochs", "6", "--save-every", "1", "--layers", "2", "--hidden", "32"]
    train(capsys, corpus, tmp_path / "whole", *common)
    victim = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(corpus), *TINY_MODEL, *common,
         "--out", str(tmp_path / "killed"), "--quiet"],
        env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "killed" / "latest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    code, stdout, stderr = run_cli(capsys, "train", "lm", "--resume", tmp_path / "killed", "--quiet", "--json")
    assert code == 0, stderr
    assert_equal_weights(latest_weights(tmp_path / "whole"), latest_weights(tmp_path / "killed"))


def test_two_processes_with_torchrun_equal_one_process(capsys, corpus, tmp_path):
    common = ["--max-steps", "3", "--optimizer", "sgd", "--lr", "0.5", "--momentum", "0.9", "--layers", "2"]
    train(capsys, corpus, tmp_path / "single", *common)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "rnnkit",
         "train", "lm", "--data", str(corpus), *TINY_MODEL, *common, "--out", str(tmp_path / "ddp"), "--quiet", "--json"],
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1  # rank 0 alone reports
    assert_equal_weights(latest_weights(tmp_path / "single"), latest_weights(tmp_path / "ddp"), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def trained_run(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    train(capsys, corpus, run, "--max-steps", "3")
    return run


@pytest.mark.parametrize("content, words", [
    (None, ["no such file"]),
    (b"", ["empty"]),
    (b"abc\x00def" * 50, ["binary", "offset 3"]),
    (b"caf\xe9 au lait " * 50, ["not UTF-8", "offset 3"]),
    (b"abc", ["batch"]),
])
def test_unusable_data_files(capsys, tmp_path, content, words):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", path, *TINY_MODEL, "--out", tmp_path / "run")
    assert_one_line_error(code, stderr, *words)


def test_resume_with_another_vocabulary_is_refused(capsys, trained_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("completely different letters: QWERTYZ!\n" * 80)
    before = snapshot(trained_run)
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", trained_run, "--data", other)
    assert_one_line_error(code, stderr, "vocabulary")
    assert snapshot(trained_run) == before


def test_resume_with_another_model_shape_is_refused(capsys, trained_run):
    before = snapshot(trained_run)
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", trained_run, "--hidden", "32")
    assert_one_line_error(code, stderr, "--hidden", "model shape")
    assert snapshot(trained_run) == before


def flip_a_weight_byte(run):
    path = next((run / "checkpoints").glob("*/weights.safetensors"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_weights(run):
    path = next((run / "checkpoints").glob("*/weights.safetensors"))
    path.write_bytes(path.read_bytes()[:100])


def make_foreign(run):
    (run / "latest.json").write_text(json.dumps({"checkpoint": "ckpt-000001"}))
    (run / "checkpoints").mkdir(exist_ok=True)
    (run / "checkpoints" / "ckpt-000001").mkdir(exist_ok=True)
    (run / "checkpoints" / "ckpt-000001" / "checkpoint.json").write_text('{"model": "some other tool"}')


@pytest.mark.parametrize("damage, words", [
    (flip_a_weight_byte, "corrupt"), (truncate_weights, "corrupt"), (make_foreign, "not an rnnkit checkpoint"),
])
@pytest.mark.parametrize("command", ["resume", "generate", "evaluate"])
def test_damaged_checkpoints(capsys, corpus, tmp_path, damage, words, command):
    run = tmp_path / "victim"
    run.mkdir()
    if damage is not make_foreign:
        train(capsys, corpus, run, "--max-steps", "2", "--overwrite")
    damage(run)
    args = {"resume": ["train", "lm", "--resume", run], "generate": ["generate", run],
            "evaluate": ["evaluate", run, "--data", corpus]}[command]
    code, _, stderr = run_cli(capsys, *args)
    assert_one_line_error(code, stderr, words)


def test_a_directory_that_is_no_run(capsys, tmp_path):
    code, _, stderr = run_cli(capsys, "generate", tmp_path)
    assert_one_line_error(code, stderr, "not an rnnkit run directory")


def test_out_holding_another_run_is_refused(capsys, corpus, trained_run):
    before = snapshot(trained_run)
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", corpus, *TINY_MODEL, "--out", trained_run)
    assert_one_line_error(code, stderr, "already holds", "--resume", "--overwrite")
    assert snapshot(trained_run) == before


def test_unknown_flag_and_config_key(capsys, corpus, tmp_path):
    code, _, stderr = run_cli(capsys, "train", "lm", "--hiden", "3")
    assert_one_line_error(code, stderr, "--hiden")
    config = tmp_path / "bad.toml"
    config.write_text("seq_len = 20\n")
    code, _, stderr = run_cli(capsys, "train", "lm", "--config", config, "--data", corpus)
    assert_one_line_error(code, stderr, "unknown key 'seq_len'", "seq-len")
    config.write_text("hidden = -3\n")
    code, _, stderr = run_cli(capsys, "train", "lm", "--config", config, "--data", corpus)
    assert_one_line_error(code, stderr, "--hidden")
    config.write_text("# nothing set\n")
    code, _, stderr = run_cli(capsys, "train", "lm", "--config", config, "--data", corpus)
    assert_one_line_error(code, stderr, "holds no settings", "--config")


@pytest.mark.parametrize("args, words", [
    (["generate", "RUN", "--length", "-5"], ["--length"]),
    (["generate", "RUN", "--temperature", "0"], ["--temperature"]),
    (["generate", "RUN", "--temperature", "-1"], ["--temperature"]),
    (["generate", "RUN", "--top-p", "1.5"], ["--top-p"]),
    (["generate", "RUN", "--top-p", "0"], ["--top-p"]),
    (["generate", "RUN", "--top-k", "0"], ["--top-k"]),
    (["train", "lm", "--hidden", "0"], ["--hidden"]),
    (["train", "lm", "--batch-size", "0"], ["--batch-size"]),
    (["train", "lm", "--seq-len", "-1"], ["--seq-len"]),
    (["train", "lm", "--dropout", "1"], ["--dropout"]),
    (["train", "lm", "--dropout", "-0.1"], ["--dropout"]),
    (["train", "lm", "--lr", "0"], ["--lr"]),
    (["train", "lm", "--epochs", "0"], ["--epochs"]),
])
def test_out_of_range_values(capsys, trained_run, args, words):
    args = [trained_run if arg == "RUN" else arg for arg in args]
    code, _, stderr = run_cli(capsys, *args)
    assert_one_line_error(code, stderr, *words)


def test_evaluate_on_text_with_unseen_characters(capsys, trained_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("ZZZ QQQ\n" * 50)
    code, _, stderr = run_cli(capsys, "evaluate", trained_run, "--data", other)
    assert_one_line_error(code, stderr, "never saw")


def test_resume_with_other_training_settings_is_refused(capsys, trained_run):
    before = snapshot(trained_run)
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", trained_run, "--lr", "0.1")
    assert_one_line_error(code, stderr, "--lr", "training settings")
    assert snapshot(trained_run) == before


def test_diverging_training_stops_with_the_step_and_keeps_the_checkpoint(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", corpus, *TINY_MODEL, "--out", run, "--optimizer", "sgd",
                              "--lr", "1e38", "--clip", "0", "--save-every", "1", "--quiet")
    assert_one_line_error(code, stderr, "step 2", "--lr", "--clip", "intact")
    assert latest_weights(run)  # the checkpoint of step 1 still loads


def test_a_runaway_but_finite_loss_stops_the_run_against_the_uniform_guess(capsys, corpus, tmp_path):
    """``--lr 1e6`` keeps the loss finite but far above ln V (a uniform guess): the run must not end with exit 0."""
    run = tmp_path / "run"
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", corpus, *TINY_MODEL, "--out", run, "--lr", "1e6",
                              "--epochs", "2", "--quiet")
    assert_one_line_error(code, stderr, "uniform guess", "--lr")


def test_a_failed_overwrite_keeps_the_old_run(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    train(capsys, corpus, run, "--max-steps", "2")
    before = (run / "latest.json").read_text(), (run / "metrics.jsonl").read_text()
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", tmp_path / "missing.txt", "--out", run, "--overwrite")
    assert_one_line_error(code, stderr, "missing.txt")
    assert ((run / "latest.json").read_text(), (run / "metrics.jsonl").read_text()) == before
    code, _, _ = run_cli(capsys, "generate", run, "--length", "5")
    assert code == 0


def test_log_gradients_records_the_flow_back_through_time(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    train(capsys, corpus, run, "--max-steps", "4", "--log-gradients", "2")
    records = [json.loads(line) for line in (run / "gradients.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [2, 4]
    for record in records:
        assert len(record["hidden"]) == 10  # --seq-len of TINY_MODEL
        assert all(norm > 0 and math.isfinite(norm) for norm in record["hidden"])
        assert record["parameter_norm"] > 0
