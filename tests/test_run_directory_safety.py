"""The run directory is safe: one training at a time (a lock), no writing or deleting through links, a full
or read-only disk as one line with nothing lost, checksummed checkpoint JSON, no stuck state after a kill
(at the first checkpoint, during --overwrite), and strict JSON (no Infinity / NaN).

Kills are simulated in-process by raising at the k-th change to the file system (:class:`KillAt`), for every
k the operation has, and for real (``os.fork`` then SIGKILL / a second trainer) where the lock is concerned.
"""

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from cli_helpers import assert_one_line_error, run_cli, snapshot

from rnnkit import files
from rnnkit.cli import main
from rnnkit.errors import InputError
from rnnkit.train import RunDirectory
from rnnkit.train import checkpoint as checkpoint_module
from rnnkit.train.lock import LOCK_FILE, RunLock, holder_of

TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(40))
MODEL = ["--layers", "1", "--hidden", "8", "--seq-len", "10", "--batch-size", "4", "--seed", "0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(TEXT)
    return path


def train_args(corpus: Path, out: Path, *extra) -> list:
    return ["train", "lm", "--data", corpus, *MODEL, "--out", out, "--quiet", *extra]


@pytest.fixture(scope="module")
def template_run(corpus, tmp_path_factory) -> Path:
    """A finished tiny run with two checkpoints, best.json and metrics.jsonl (copied by :func:`a_run`)."""
    run = tmp_path_factory.mktemp("template") / "run"
    main([str(arg) for arg in train_args(corpus, run, "--epochs", "1", "--save-every", "7")] + ["--json"])
    assert (run / "best.json").is_file() and (run / "metrics.jsonl").is_file()
    return run


def a_run(template_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(template_run, run, symlinks=True)
    return run


def pointer_of(run: Path, name: str = "latest.json") -> str:
    return json.loads((run / name).read_text())["checkpoint"]


# ------------------------------------------------------------------------------------------- the lock


def test_a_second_training_into_a_held_directory_is_refused_and_changes_nothing(capsys, corpus, template_run,
                                                                                tmp_path):
    run = a_run(template_run, tmp_path)
    with RunLock.acquire(run):
        before = snapshot(run)
        for extra in (["--overwrite"], []):
            code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--max-steps", "1", *extra))
            assert_one_line_error(code, stderr, f"PID {os.getpid()}", "in use by another training")
        code, _, stderr = run_cli(capsys, "train", "lm", "--resume", run, "--quiet")
        assert_one_line_error(code, stderr, f"PID {os.getpid()}")
        assert snapshot(run) == before
    assert not (run / LOCK_FILE).exists() and holder_of(run) is None
    code, _, stderr = run_cli(capsys, "generate", run, "--length", "5")  # reading needs no lock
    assert code == 0, stderr


def test_a_lock_file_left_by_a_killed_training_blocks_nothing(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("999999\n")  # its process is gone: no one holds the lock
    assert holder_of(run) is None
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--max-steps", "2"))
    assert code == 0, stderr
    assert not (run / LOCK_FILE).exists()


def forked(args: list, log: Path) -> int:
    """Run `rnnkit ARGS` in a child process (a fork of this one: no second start of Python and torch);
    its stdout and stderr go to ``log``. Returns the child's PID."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
            try:
                main([str(arg) for arg in args])
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    return pid


def exit_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("trial", range(3))
def test_two_concurrent_trainings_into_one_directory_exactly_one_runs(corpus, tmp_path, trial):
    run = tmp_path / "run"
    args = train_args(corpus, run, "--max-steps", "30", "--save-every", "5")
    pids = [forked(args, tmp_path / f"log{index}") for index in range(2)]
    codes = [exit_status(pid) for pid in pids]
    logs = [(tmp_path / f"log{index}").read_text() for index in range(2)]
    assert sorted(codes) == [0, 2], logs
    loser = logs[codes.index(2)]
    lines = loser.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), loser
    assert f"PID {pids[codes.index(0)]}" in lines[0] or "already holds a training run" in lines[0], loser
    assert RunDirectory.open(run).load().meta["trainer"]["position"]["step"] == 30
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1, "one training wrote the metrics"


def test_the_lock_of_a_training_killed_with_sigkill_is_released(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    victim = forked(train_args(corpus, run, "--epochs", "1000"), tmp_path / "log")
    deadline = time.monotonic() + 60
    while holder_of(run) != victim and time.monotonic() < deadline:
        time.sleep(0.02)
    assert holder_of(run) == victim
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--max-steps", "1", "--overwrite"))
    assert_one_line_error(code, stderr, f"PID {victim}")
    os.kill(victim, signal.SIGKILL)
    exit_status(victim)
    assert (run / LOCK_FILE).exists() and holder_of(run) is None  # stale file, no lock
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--max-steps", "1", "--overwrite"))
    assert code == 0, stderr


# ------------------------------------------------------------------------------------------- links


@pytest.mark.parametrize("name", ["checkpoints", "latest.json", "best.json", "metrics.jsonl", "gradients.jsonl",
                                  "CKPT", ".lock"])
@pytest.mark.parametrize("how", [["--overwrite"], ["--resume"]])
def test_a_link_inside_the_run_directory_is_refused(capsys, corpus, template_run, tmp_path, name, how):
    """Before: `checkpoints -> ../elsewhere` with --overwrite or --resume deleted files outside, and
    `gradients.jsonl -> ../outside.txt` was appended to."""
    run = a_run(template_run, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("mine")
    if name == "CKPT":
        name = f"checkpoints/{pointer_of(run)}"
    entry = run / name
    if name == "checkpoints":
        shutil.copytree(run / "checkpoints", outside / "checkpoints")
        (outside / "checkpoints" / "ckpt-000099").mkdir()  # what pruning through the link would delete
        shutil.rmtree(entry)
        entry.symlink_to(outside / "checkpoints")
    else:
        target = outside / Path(name).name
        if entry.is_dir():
            shutil.copytree(entry, target)
            shutil.rmtree(entry)
        elif entry.exists():
            shutil.copy(entry, target)
            entry.unlink()
        else:
            target.write_text("")
        entry.symlink_to(target)
    before_outside, before_run = snapshot(outside), snapshot(run)
    args = train_args(corpus, run, "--max-steps", "2", "--log-gradients", "1", *how) if how == ["--overwrite"] \
        else ["train", "lm", "--resume", run, "--quiet"]
    code, _, stderr = run_cli(capsys, *args)
    assert_one_line_error(code, stderr, "is a symbolic link", "replace it by a")
    assert snapshot(outside) == before_outside
    assert snapshot(run) == before_run


def test_appending_a_record_never_goes_through_a_link(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n")
    (run.path / "gradients.jsonl").symlink_to(outside)
    with pytest.raises(InputError, match="gradients.jsonl is a symbolic link"):
        run.append_record("gradients.jsonl", {"step": 1})
    assert outside.read_text() == "mine\n"


def test_pruning_never_deletes_through_a_linked_checkpoint(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("mine")
    (run.path / "checkpoints" / "ckpt-000000").symlink_to(elsewhere)
    with pytest.raises(InputError, match="is a symbolic link"):
        save_one(run, 2.0)
    assert (elsewhere / "precious.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------- full or read-only disk


class TinyModel(torch.nn.Module):
    def __init__(self, value: float = 0.0):
        super().__init__()
        self.linear = torch.nn.Linear(50, 50)
        with torch.no_grad():
            self.linear.weight.fill_(value)


def save_one(run: RunDirectory, value: float, best: bool = False) -> Path:
    return run.save(TinyModel(value), {"extra": torch.full((1000,), value)}, {"value": value}, best=best)


def refuse(number: int, only: str | None = None):
    """A stand-in for a write that the system refuses with errno ``number`` (for the file named ``only``)."""
    real = checkpoint_module._write_synced

    def write(path, data):
        if only is None or Path(path).name == only:
            raise OSError(number, os.strerror(number), str(path))
        real(path, data)

    return write


@pytest.mark.parametrize("number, words", [
    # 14.3 or 14.4 kB: the tensor files' headers (format mark, safetensors' own metadata) vary by a few bytes
    (errno.ENOSPC, ["no space left", "needs about 14.", "kB", "free some space", "previous checkpoint is intact"]),
    (errno.EDQUOT, ["quota", "needs about"]),
    (errno.EROFS, ["read-only file system", "previous checkpoint is intact"]),
    (errno.EACCES, ["permission denied"]),
])
def test_a_refused_checkpoint_write_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, number,
                                                                                   words):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0, best=True)
    before = snapshot(run.path)
    monkeypatch.setattr(checkpoint_module, "_write_synced", refuse(number, only="state.safetensors"))
    with pytest.raises(InputError) as caught:
        save_one(run, 2.0)
    message = str(caught.value)
    assert "\n" not in message and "ckpt-000002" in message
    for word in words:
        assert word in message, message
    assert snapshot(run.path) == before  # no temporary directory left, pointers and checkpoint untouched
    assert RunDirectory.open(run.path).load().meta["value"] == 1.0


def test_a_full_disk_inside_safetensors_is_one_line(tmp_path, monkeypatch):
    run = RunDirectory.create(tmp_path / "run")

    def full(model, filename, **options):
        Path(filename).write_bytes(b"partial")
        raise checkpoint_module.SafetensorError("Error while serializing: I/O error: No space left on device "
                                                "(os error 28)")

    monkeypatch.setattr(checkpoint_module, "save_model", full)
    with pytest.raises(InputError, match=r"no space left on the device \(needs about .*no checkpoint was written"):
        save_one(run, 1.0)
    assert list((run.path / "checkpoints").iterdir()) == []


@pytest.mark.parametrize("where", ["write", "replace"])
def test_write_atomic_refused_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, where):
    path = tmp_path / "predictions.txt"
    path.write_text("old")
    if where == "write":
        real = files.write_synced

        def write_half_then_fail(target, data):
            real(target, data[:3])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files, "write_synced", write_half_then_fail)
    else:
        def refuse_replace(source, target):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(files.os, "replace", refuse_replace)
    with pytest.raises(InputError) as caught:
        files.write_atomic(path, b"x" * 14_200_000)
    assert str(caught.value).startswith(f"cannot write {path}: ")
    assert ("needs about 14.2 MB" in str(caught.value)) == (where == "write")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.txt"]


def test_write_atomic_onto_a_directory_is_one_line_and_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InputError, match="is a directory; give a file name"):
        files.write_atomic(target, b"text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any(target.iterdir())


def test_write_atomic_never_writes_through_a_link_left_as_its_temporary_file(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    (tmp_path / ".tmp-out.txt").symlink_to(outside)
    files.write_atomic(tmp_path / "out.txt", b"new")
    assert outside.read_text() == "mine" and (tmp_path / "out.txt").read_text() == "new"


@pytest.mark.parametrize("out, words", [
    ("FILE/run", ["is a file, not a directory", "choose another --out"]),
    ("FILE", ["is a file, not a directory"]),
    ("/proc/rnnkit-test/run", ["/proc/rnnkit-test/run", "choose another --out"]),
])
def test_an_out_that_cannot_be_a_directory_is_one_line(capsys, corpus, tmp_path, out, words):
    regular = tmp_path / "file.txt"
    regular.write_text("mine")
    out = out.replace("FILE", str(regular))
    code, _, stderr = run_cli(capsys, *train_args(corpus, Path(out), "--max-steps", "1"))
    assert_one_line_error(code, stderr, *words)
    assert regular.read_text() == "mine"


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount(pages, read_only) -> a fresh tmpfs directory of that many 4 kB pages; skips where this process
    may not mount one (not root): the injected errors above test the same code."""
    mounted = []

    def mount(pages: int, read_only: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        options = f"size={pages * 4096}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_a_real_full_disk_during_training_keeps_the_last_checkpoint(capsys, corpus, tmp_path, mount_tmpfs):
    args = ["--hidden", "32", "--save-every", "1"]
    code, _, stderr = run_cli(capsys, *train_args(corpus, tmp_path / "measure", *args, "--max-steps", "1"))
    assert code == 0, stderr
    size = sum(p.stat().st_size for p in (tmp_path / "measure").rglob("*") if p.is_file())
    disk = mount_tmpfs(int(size * 1.5) // 4096 + 1)  # room for one checkpoint, not for two
    run = disk / "run"
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, *args, "--max-steps", "5"))
    assert_one_line_error(code, stderr, "no space left", "needs about", "previous checkpoint is intact")
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    checkpoint = RunDirectory.open(run).load()
    assert checkpoint.meta["trainer"]["position"]["step"] == 1


def test_a_read_only_out_is_one_line(capsys, corpus, mount_tmpfs):
    disk = mount_tmpfs(16, read_only=True)
    code, _, stderr = run_cli(capsys, *train_args(corpus, disk / "run", "--max-steps", "1"))
    assert_one_line_error(code, stderr, "read-only file system", "choose another --out")
    code, _, stderr = run_cli(capsys, *train_args(corpus, disk, "--max-steps", "1"))
    assert_one_line_error(code, stderr, "read-only file system")
    with pytest.raises(InputError, match="cannot write .*predictions.txt: read-only file system; write elsewhere"):
        files.write_atomic(disk / "predictions.txt", b"text")  # what predict --output, translate --output ... use


# ------------------------------------------------------------------------------------------- checksums of the JSON


def edit_meta(change):
    def edit(run: Path):
        path = run / "checkpoints" / pointer_of(run) / "checkpoint.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta, indent=1))
    return edit


def set_best_pointer(value):
    def edit(run: Path):
        (run / "best.json").write_text(json.dumps(value).replace("LATEST", pointer_of(run)))
    return edit


def truncate_meta(run: Path):
    path = run / "checkpoints" / pointer_of(run) / "checkpoint.json"
    path.write_bytes(path.read_bytes()[:200])


EDITS = {
    "configs null": (edit_meta(lambda m: m.update(configs=None)), "checkpoint.json of"),
    "configs.model a string": (edit_meta(lambda m: m["configs"].update(model="big")), "checkpoint.json of"),
    "task changed": (edit_meta(lambda m: m.update(task="classify")), "checkpoint.json of"),
    "seq_len x": (edit_meta(lambda m: m["configs"]["data"].update(seq_len="x")), "checkpoint.json of"),
    "batch_index 1e9": (edit_meta(lambda m: m["trainer"]["position"].update(batch_index=1e9)), "checkpoint.json of"),
    "optimizer a string": (edit_meta(lambda m: m["trainer"].update(optimizer="adam")), "checkpoint.json of"),
    "rng.python [1,2]": (edit_meta(lambda m: m["trainer"]["rng"].update(python=[1, 2])), "checkpoint.json of"),
    "position {}": (edit_meta(lambda m: m["trainer"].update(position={})), "checkpoint.json of"),
    "data /etc/passwd": (edit_meta(lambda m: m["configs"]["data"].update(data="/etc/passwd")), "checkpoint.json of"),
    "checksum removed": (edit_meta(lambda m: m.pop("sha256")), "checkpoint.json of"),
    "best.json {}": (set_best_pointer({}), "best.json"),
    "best.json without its checksum": (set_best_pointer({"checkpoint": "LATEST"}), "best.json"),
    "truncated checkpoint.json": (truncate_meta, "not valid JSON"),
}


@pytest.mark.parametrize("edit", EDITS)
@pytest.mark.parametrize("command", ["resume", "evaluate"])
def test_an_edited_or_damaged_checkpoint_json_is_refused_with_one_line(capsys, corpus, template_run, tmp_path,
                                                                       edit, command):
    run = a_run(template_run, tmp_path)
    damage, words = EDITS[edit]
    damage(run)
    before = snapshot(run)
    args = ["train", "lm", "--resume", run, "--quiet"] if command == "resume" else \
        ["evaluate", run, "--data", corpus, "--checkpoint", "best" if "best" in edit else "latest"]
    code, _, stderr = run_cli(capsys, *args)
    assert_one_line_error(code, stderr, words)
    if words != "not valid JSON":
        assert "edited or damaged" in stderr and "restore it from a copy" in stderr
    assert snapshot(run) == before


def test_checkpoint_json_is_strict_json_and_reads_back_non_finite_floats_exactly(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    meta = {"scheduler": {"best": float("inf"), "worst": float("-inf")}, "losses": [1.5, float("nan")]}
    directory = run.save(TinyModel(), {}, meta, best=True)
    for path in (directory / "checkpoint.json", run.path / "latest.json", run.path / "best.json"):
        json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in {path}"))
    loaded = run.load().meta
    assert loaded["scheduler"] == {"best": float("inf"), "worst": float("-inf")}
    assert loaded["losses"][0] == 1.5 and loaded["losses"][1] != loaded["losses"][1]  # nan


def test_records_write_non_finite_numbers_as_null(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    run.append_metrics({"epoch": 1, "valid_loss": float("inf"), "scores": [float("nan"), 2.0]})
    run.rewrite_metrics([{"epoch": 1, "valid_loss": float("-inf")}])
    run.append_record("gradients.jsonl", {"hidden": [float("inf")]})
    assert run.metrics_path.read_text() == '{"epoch": 1, "valid_loss": null}\n'
    assert (run.path / "gradients.jsonl").read_text() == '{"hidden": [null]}\n'


def test_a_plateau_run_resumes_exactly_through_its_infinite_scheduler_best(capsys, corpus, tmp_path):
    """ReduceLROnPlateau's "best" is inf until its first epoch: saved as {"$float": "inf"}, restored as inf."""
    run = tmp_path / "run"
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--schedule", "plateau", "--max-steps", "2"))
    assert code == 0, stderr
    text = (run / "checkpoints" / pointer_of(run) / "checkpoint.json").read_text()
    assert '"$float": "inf"' in text and "Infinity" not in text
    assert RunDirectory.open(run).load().meta["trainer"]["schedule"]["best"] == float("inf")
    code, _, stderr = run_cli(capsys, "train", "lm", "--resume", run, "--quiet", "--max-steps", "4")
    assert code == 0, stderr


def as_version_1(directory: Path) -> dict:
    """Turn the format-2 checkpoint ``directory`` into what format 1 wrote: tensor files without the format
    mark in their header, their digests in the JSON, no checksum; returns the JSON (not yet written)."""
    meta = json.loads((directory / "checkpoint.json").read_text())
    meta = {key: value for key, value in meta.items() if key != "sha256"}
    for name in ("weights.safetensors", "state.safetensors"):
        tensors = safetensors.torch.load_file(directory / name)
        safetensors.torch.save_file(tensors, directory / name)
        meta["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    return meta


def test_a_version_1_checkpoint_with_infinity_and_unsigned_pointers_still_loads(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    directory = save_one(run, 1.0, best=True)
    meta = as_version_1(directory)
    meta.update(version=1, best=float("inf"))
    (directory / "checkpoint.json").write_text(json.dumps(meta))  # json writes Infinity, as version 1 did
    for name in ("latest.json", "best.json"):
        (run.path / name).write_text(json.dumps({"checkpoint": directory.name}))
    loaded = RunDirectory.open(run.path).load("best").meta
    assert loaded["best"] == float("inf") and loaded["value"] == 1.0


def test_an_unsigned_pointer_to_a_version_2_checkpoint_is_refused(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    directory = save_one(run, 1.0)
    (run.path / "latest.json").write_text(json.dumps({"checkpoint": directory.name}))
    with pytest.raises(InputError, match="latest.json of .* was edited or damaged \\(it has no checksum\\)"):
        run.load()


def test_rewrite_meta_signs_a_deliberate_change(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    directory = save_one(run, 1.0)
    meta = run.load().meta
    checkpoint_module.rewrite_meta(directory, {**meta, "value": 5.0})
    assert run.load().meta["value"] == 5.0


# ------------------------------------------------------------------------------------------- stuck states


def killed_at_first_checkpoint(run: Path, complete: bool) -> None:
    """What a kill during the first checkpoint leaves: its temporary directory (or the renamed directory when
    the kill came just before latest.json), maybe a gradients line (written before any checkpoint), a stale
    lock file. (A metrics line comes only after latest.json: without it, it is a run's remains.)"""
    name = "ckpt-000001" if complete else ".tmp-ckpt-000001"
    (run / "checkpoints" / name).mkdir(parents=True)
    (run / "checkpoints" / name / "weights.safetensors").write_bytes(b"partial")
    (run / "gradients.jsonl").write_text('{"step": 1}\n')
    (run / LOCK_FILE).write_text("999999\n")


@pytest.mark.parametrize("complete", [False, True])
def test_a_run_killed_at_its_first_checkpoint_is_not_stuck(capsys, corpus, tmp_path, complete):
    run = tmp_path / "run"
    killed_at_first_checkpoint(run, complete)
    for args in (["train", "lm", "--resume", run], ["generate", run]):
        code, _, stderr = run_cli(capsys, *args)
        assert_one_line_error(code, stderr, "stopped before its first checkpoint", "without --resume")
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--max-steps", "2"))  # no --overwrite needed
    assert code == 0, stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [pointer_of(run)]
    assert not (run / LOCK_FILE).exists()


def test_a_directory_with_other_files_is_still_refused(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    killed_at_first_checkpoint(run, complete=False)
    (run / "notes.txt").write_text("mine")
    code, _, stderr = run_cli(capsys, *train_args(corpus, run, "--max-steps", "2"))
    assert_one_line_error(code, stderr, "non-empty directory that holds no run")
    assert (run / "notes.txt").read_text() == "mine"


def test_generate_on_a_file_says_it_is_a_file(capsys, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\0")
    code, _, stderr = run_cli(capsys, "generate", path)
    assert_one_line_error(code, stderr, f"{path} is a file, not a run directory", "--out directory")


class Killed(BaseException):
    """A kill -9, simulated: nothing in rnnkit catches it."""


class KillAt:
    """Raise :class:`Killed` at the ``k``-th change to the file system (a write, rename, unlink, mkdir or
    rmdir; counted as 1, 2, ...) made while it is active; ``fired`` says whether it came."""

    def __init__(self, monkeypatch, k: int):
        self.k, self.count, self.fired = k, 0, False
        for module, name in [(os, "replace"), (os, "rename"), (os, "unlink"), (os, "rmdir"), (os, "mkdir"),
                             (checkpoint_module, "_write_synced"), (files, "write_synced"),
                             (checkpoint_module, "save_model"), (files, "append_synced"),
                             (checkpoint_module, "append_synced")]:
            monkeypatch.setattr(module, name, self.counted(getattr(module, name)))

    def counted(self, function):
        def changed(*args, **kwargs):
            self.count += 1
            if self.count == self.k:
                self.fired = True
                raise Killed()
            return function(*args, **kwargs)
        return changed


def run_state(run: Path, old: dict) -> str:
    """"old" (the old run whole), "new" (the new run's pointers only) or "none" (no latest.json); an
    assertion error for any mix."""
    if not (run / "latest.json").exists():
        return "none"
    latest = RunDirectory(run).load("latest").meta["value"]
    best = RunDirectory(run).load("best").meta["value"] if (run / "best.json").exists() else None
    metrics = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else None
    if latest == old["latest"]:
        assert (best, metrics) == (old["best"], old["metrics"]), "the old run is not whole"
        return "old"
    assert latest == 3.0 and best in (None, 3.0), f"the new run's latest beside the old run's best {best}"
    assert metrics in (None, '{"epoch": 1, "new": true}\n'), metrics
    return "new"


@pytest.mark.parametrize("new_run_writes", ["checkpoint first", "metrics first"])
def test_a_kill_at_any_instant_of_an_overwrite_leaves_the_old_run_whole_or_the_new_one_alone(tmp_path, monkeypatch,
                                                                                               new_run_writes):
    template = tmp_path / "template"
    old_run = RunDirectory.create(template)
    save_one(old_run, 1.0, best=True)
    save_one(old_run, 2.0)
    old_run.append_metrics({"epoch": 1, "old": True})
    old = {"latest": 2.0, "best": 1.0, "metrics": (template / "metrics.jsonl").read_text()}
    seen, k = set(), 0
    while True:
        k += 1
        run = tmp_path / f"run{k}"
        shutil.copytree(template, run)
        fresh = RunDirectory.create(run, overwrite=True)
        with monkeypatch.context() as patch:
            kill = KillAt(patch, k)
            try:
                if new_run_writes == "metrics first":
                    fresh.append_metrics({"epoch": 1, "new": True})
                save_one(fresh, 3.0, best=True)
                if new_run_writes == "checkpoint first":
                    fresh.append_metrics({"epoch": 1, "new": True})
            except Killed:
                pass
        seen.add(run_state(run, old))
        if not kill.fired:
            break
        if not (run / "latest.json").exists():  # no run: a new training takes the directory without --overwrite
            RunDirectory.create(run)
            assert not (run / "checkpoints").exists() and not (run / "best.json").exists()
    assert k > 10 and seen == {"old", "none", "new"}, (k, seen)
