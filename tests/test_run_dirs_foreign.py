"""Run directories that rnnkit did not write all of (issue 26): it deletes only what it wrote and can name, an
old run survives an --overwrite until the new run has a checkpoint worth more, and a run it cannot write is
refused before any work.

The bad inputs among these (one line, nothing changed) are in tests/bad_inputs/cases_rundirs.py; here are the
runs that must succeed around foreign files, and the states that need more than one command to reach.
"""

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli, snapshot

from rnnkit.cli import main
from rnnkit.train import RunDirectory

TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(40))
MODEL = ["--layers", "1", "--hidden", "8", "--seq-len", "10", "--batch-size", "4", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(TEXT)
    return path


def train(capsys, corpus: Path, out: Path, *extra) -> tuple[int, str, str]:
    return run_cli(capsys, "train", "lm", "--data", corpus, *MODEL, "--out", out, *extra)


def a_run(corpus: Path, tmp_path: Path, capsys) -> Path:
    run = tmp_path / "run"
    code, _, stderr = train(capsys, corpus, run, "--epochs", "2", "--max-steps", "20", "--save-every", "7")
    assert code == 0, stderr
    return run


def plant_foreign_files(run: Path) -> dict[Path, str]:
    """Files of the user's where rnnkit writes: beside the checkpoints, in a folder of their own there, and
    inside one of rnnkit's checkpoint directories (which a prune would otherwise delete)."""
    latest = json.loads((run / "latest.json").read_text())["checkpoint"]
    planted = {
        run / "checkpoints" / "notes.txt": "my notes",
        run / "checkpoints" / "kept-by-hand" / "weights.safetensors": "a copy I made",
        run / "checkpoints" / "ckpt-old" / "README": "not rnnkit's naming",
        run / "checkpoints" / latest / "README.md": "what this checkpoint was",
        run / "notes.md": "beside the run",
    }
    for path, text in planted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return planted


def test_a_resumed_training_deletes_none_of_the_users_files(capsys, corpus, tmp_path):
    run = a_run(corpus, tmp_path, capsys)
    first_latest = json.loads((run / "latest.json").read_text())["checkpoint"]
    planted = plant_foreign_files(run)
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", run, "--max-steps", "60", "--quiet")
    assert code == 0, stderr
    assert {path: path.read_text() for path in planted} == planted
    # rnnkit's own files of the pruned checkpoint went; the directory stays for the user's README only
    assert sorted(p.name for p in (run / "checkpoints" / first_latest).iterdir()) == ["README.md"]
    assert json.loads((run / "latest.json").read_text())["checkpoint"] != first_latest


def test_an_overwrite_deletes_none_of_the_users_files(capsys, corpus, tmp_path):
    run = a_run(corpus, tmp_path, capsys)
    planted = plant_foreign_files(run)
    code, _, stderr = train(capsys, corpus, run, "--max-steps", "3", "--overwrite")
    assert code == 0, stderr
    assert {path: path.read_text() for path in planted} == planted
    assert RunDirectory.open(run).load().meta["trainer"]["position"]["step"] == 3


def test_a_run_without_latest_json_is_kept_until_overwrite_replaces_it(capsys, corpus, tmp_path):
    run = a_run(corpus, tmp_path, capsys)
    (run / "latest.json").unlink()
    before = snapshot(run)
    code, _, stderr = train(capsys, corpus, run, "--max-steps", "3")
    assert_one_line_error(code, stderr, "no latest.json", "--overwrite", "restore latest.json")
    assert snapshot(run) == before
    code, _, stderr = train(capsys, corpus, run, "--max-steps", "3", "--overwrite")
    assert code == 0, stderr
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == [json.loads((run / "latest.json").read_text())["checkpoint"]]


def test_an_overwrite_that_diverges_early_keeps_the_old_run_and_its_checkpoints(capsys, corpus, tmp_path):
    run = a_run(corpus, tmp_path, capsys)
    before = snapshot(run)
    code, _, stderr = train(capsys, corpus, run, "--overwrite", "--lr", "1e6", "--save-every", "1", "--epochs", "1",
                            "--log-gradients", "1")
    assert_one_line_error(code, stderr, "training diverged", "--lr", f"the old run in {run} is intact")
    assert snapshot(run) == before
    code, out, stderr = run_cli(capsys, "evaluate", run, "--data", corpus, "--json")
    assert code == 0 and json.loads(out)["tokens"] > 0, stderr


def test_a_kill_before_the_switch_leaves_the_old_run_usable_and_resumable(capsys, corpus, tmp_path):
    """A kill -9 while an --overwrite has only unvalidated checkpoints: the old run loads and resumes, and the
    new run's leftovers (a checkpoint, staged records) are pruned by the next training."""
    run = a_run(corpus, tmp_path, capsys)
    old_latest = RunDirectory.open(run).load().path.name
    fresh = RunDirectory.create(run, overwrite=True)
    model_dir = fresh.save(torch.nn.Linear(2, 2), {}, {"value": 1}, validated=False)
    fresh.append_metrics({"epoch": 1, "new": True})
    del fresh  # killed: nothing more happens
    assert RunDirectory.open(run).load().path.name == old_latest and model_dir.is_dir()
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", run, "--max-steps", "30", "--quiet")
    assert code == 0, stderr
    assert not model_dir.exists() and not (run / ".new-metrics.jsonl").exists()
    assert all('"new"' not in line for line in (run / "metrics.jsonl").read_text().splitlines())


def test_a_kill_in_the_middle_of_the_switch_is_recognised_as_rnnkits_own(capsys, corpus, tmp_path):
    run = a_run(corpus, tmp_path, capsys)
    latest = json.loads((run / "latest.json").read_text())["checkpoint"]
    os.replace(run / "latest.json", run / ".new-latest.json")  # the staged pointer, the old ones gone
    (run / "best.json").unlink(missing_ok=True)
    code, _, stderr = run_cli(capsys, "generate", run, "--length", "5")
    assert_one_line_error(code, stderr, "stopped in the middle of its switch", "again")
    code, _, stderr = train(capsys, corpus, run, "--max-steps", "2")  # no --overwrite needed: no run is there
    assert code == 0, stderr
    assert not (run / ".new-latest.json").exists() and not (run / "checkpoints" / latest).exists()


def test_resuming_a_run_this_user_cannot_write_is_one_line_before_any_work(capsys, corpus, tmp_path, monkeypatch):
    run = a_run(corpus, tmp_path, capsys)
    before = snapshot(run)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == run else real_access(path, mode, **kw))
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", run, "--quiet")
    assert_one_line_error(code, stderr, f"cannot resume {run}", "not writable", "cp -r")
    assert snapshot(run) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to an unprivileged user, which needs root")
def test_resuming_a_run_owned_by_another_user_is_one_line(corpus, tmp_path, capsys):
    """For real: a child process that is not root (nobody) resumes a run it may read but not write."""
    shared = Path(shutil.copytree(a_run(corpus, tmp_path, capsys), Path("/tmp") / f"rnnkit-h6-{os.getpid()}"))
    try:
        os.chmod(shared, 0o755)
        pid = os.fork()
        if pid == 0:  # the child: nobody, stderr to a file nobody may write
            code = 99
            try:
                os.setgid(65534)
                os.setuid(65534)
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        main(["train", "lm", "--resume", str(shared), "--quiet"])
                        code = 0
                    except SystemExit as exit:
                        code = exit.code if isinstance(exit.code, int) else 1
                text = err.getvalue()
                code = 10 + code if len(text.strip().splitlines()) == 1 and "cp -r" in text else 50 + code
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) in (11, 12), os.waitstatus_to_exitcode(status)
    finally:
        shutil.rmtree(shared)
