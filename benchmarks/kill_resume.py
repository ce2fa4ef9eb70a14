"""kill -9 at random instants of `rnnkit train lm`: every run directory left behind loads, continues and ends
with the weights of an uninterrupted run, bit for bit (issue 17, deliverable 8; target: 0 corrupt or stuck
runs, resume exact in all).

Trials (the kind cycles through the list, the instant is random):

    random         `rnnkit train lm --out RUN` killed at a random instant of its training: after its k-th
                   checkpoint (k random, 0 included), a random fraction of the time between two checkpoints later
    early          killed at a random instant after its start (often before it wrote anything)
    first          killed while its first checkpoint is being written (RUN/checkpoints/.tmp-ckpt-000001)
    overwrite      RUN holds an earlier run (another seed); `... --overwrite` killed at a random instant (as random)
    overwrite-ckpt the same, killed while the new run's first checkpoint is being written

The killed process writes slowly (each checkpoint file half, a pause, the rest: ``--slow`` seconds in all
per file) so that the windows inside a checkpoint write are wide enough to be hit; the bytes are the same.

After a kill, what RUN holds decides what a user does next, and each state is checked first:

    the new run (latest.json)    it loads (latest and best), and no pointer names the old run's checkpoints
                                 -> `rnnkit train lm --resume RUN`
    the old run, whole           latest.json, best.json and metrics.jsonl byte-identical to before
                                 -> the same --overwrite command again
    no run (no latest.json)      open says so in one line -> the same command again, without --overwrite
                                 (a directory killed before its first checkpoint must be accepted)

and the finished run must have the uninterrupted run's weights (torch.equal) and metrics.jsonl must hold
epochs 1..E once each. Prints one JSON line with the counts; exit status 1 if any check failed.

    PYTHONPATH=src OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/kill_resume.py      # 24 kills
    ... benchmarks/kill_resume.py --trials 5 --launch fork      # what tests/test_kill_resume.py runs
"""

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(60))  # ~1,900 characters
MODEL = ["--layers", "1", "--hidden", "16", "--seq-len", "10", "--batch-size", "4", "--epochs", "2",
         "--save-every", "10", "--quiet"]  # 2 epochs of 45 steps, 11 checkpoints
KINDS = ["random", "first", "overwrite", "overwrite-ckpt", "random", "early"]
NEW_SEED, OLD_SEED = "0", "1"


def train_args(corpus: Path, out: Path, seed: str, *extra: str) -> list[str]:
    return ["train", "lm", "--data", str(corpus), *MODEL, "--seed", seed, "--out", str(out), *extra]


# ------------------------------------------------------------------------------------------- the victim


def slow_down_writes(seconds: float) -> None:
    """Make every checkpoint and pointer write of this process take ``seconds`` longer (half the file, a
    pause, the rest), so that a kill can land inside one; the bytes written are unchanged."""
    from rnnkit import files
    from rnnkit.train import checkpoint

    def write_slowly(path, data):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        try:
            os.write(descriptor, data[: len(data) // 2])
            time.sleep(seconds)
            view = memoryview(data)[len(data) // 2:]
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    real_save_model = checkpoint.save_model

    def save_model_slowly(*args, **kwargs):
        time.sleep(seconds)
        real_save_model(*args, **kwargs)

    files.write_synced = checkpoint._write_synced = write_slowly
    checkpoint.save_model = save_model_slowly


def run_rnnkit(args: list[str], quiet: bool = False) -> int:
    """`rnnkit ARGS` in this process; its exit status. ``quiet``: what it prints is dropped, but for the
    last line on stderr of a failure (kept in ``run_rnnkit.last_error``)."""
    from rnnkit.cli import main
    out, err = (io.StringIO(), io.StringIO()) if quiet else (sys.stdout, sys.stderr)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    run_rnnkit.last_error = (err.getvalue().strip().splitlines() or [""])[-1] if quiet else ""
    return code


class Victim:
    """`rnnkit ARGS` in another process with slowed writes: a new Python (``subprocess``, as a user runs it)
    or a fork of this one (``fork``: no second start of Python and torch, for the test)."""

    def __init__(self, args: list[str], slow: float, launch: str):
        if launch == "subprocess":
            self._process = subprocess.Popen([sys.executable, __file__, "--as-rnnkit", str(slow), *args],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.pid = self._process.pid
            return
        self._process, self._exited = None, False
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                slow_down_writes(slow)
                code = run_rnnkit(args)
            finally:
                os._exit(code)

    def alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        self._exited = self._exited or os.waitpid(self.pid, os.WNOHANG) != (0, 0)
        return not self._exited

    def kill(self) -> bool:
        """SIGKILL it; whether it was still running."""
        running = self.alive()
        if running:
            os.kill(self.pid, signal.SIGKILL)
        if self._process is not None:
            self._process.wait()
        elif running:
            os.waitpid(self.pid, 0)
        return running


def wait_for(condition, victim: Victim, timeout: float = 120.0) -> bool:
    """Poll ``condition`` every 2 ms while the victim runs; whether it came true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not victim.alive():
            return condition()
        time.sleep(0.002)
    return False


def checkpoints_written(run: Path) -> int:
    """The number in the name of the checkpoint latest.json names (0 without one)."""
    try:
        return int(json.loads((run / "latest.json").read_text())["checkpoint"].rsplit("-", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def writing_a_checkpoint(run: Path) -> bool:
    checkpoints = run / "checkpoints"
    return checkpoints.is_dir() and any(p.name.startswith(".tmp-ckpt-") for p in checkpoints.iterdir())


# ------------------------------------------------------------------------------------------- the checks


def latest_weights(run: Path) -> dict:
    from safetensors.torch import load_file
    name = json.loads((run / "latest.json").read_text())["checkpoint"]
    return load_file(run / "checkpoints" / name / "weights.safetensors")


def equal_weights(first: dict, second: dict) -> bool:
    import torch
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def epochs_in_metrics(run: Path) -> list:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def state_after_kill(run: Path, old: dict | None) -> str:
    """"new run", "old run whole" or "no run"; raises AssertionError for a corrupt or mixed directory."""
    from rnnkit.errors import InputError
    from rnnkit.train import RunDirectory

    if not (run / "latest.json").exists():
        if run.is_dir():
            try:
                RunDirectory.open(run)
                raise AssertionError("a directory without latest.json opened as a run")
            except InputError as error:
                assert "\n" not in str(error), str(error)
        return "no run"
    directory = RunDirectory.open(run)
    latest = directory.load("latest")  # InputError: corrupt
    best = directory.load("best") if (run / "best.json").exists() else None
    seed = str(latest.meta["configs"]["train"]["seed"])
    if seed == NEW_SEED:
        assert best is None or str(best.meta["configs"]["train"]["seed"]) == NEW_SEED, \
            "the new run's latest beside the old run's best"
        return "new run"
    assert old is not None, "a run of the old seed where there was none"
    for name in ("latest.json", "best.json", "metrics.jsonl"):
        assert (run / name).read_bytes() == old[name], f"the old run is not whole: {name} changed"
    return "old run whole"


def trial(kind: str, number: int, rng: random.Random, work: Path, corpus: Path, reference: dict, old_run: Path,
          window: float, checkpoints: int, slow: float, launch: str) -> dict:
    """One kill, the checks of the directory left behind, its recovery and the final weights."""
    run = work / f"trial{number:02d}"
    overwrite = kind.startswith("overwrite")
    old = None
    if overwrite:
        shutil.copytree(old_run, run)
        old = {name: (run / name).read_bytes() for name in ("latest.json", "best.json", "metrics.jsonl")}
    command = train_args(corpus, run, NEW_SEED, *(["--overwrite"] if overwrite else []))
    before = checkpoints_written(run)  # the old run's latest (0 for a new directory)
    victim = Victim(command, slow, launch)
    if kind == "early":
        time.sleep(rng.uniform(0, 2 * window))
    elif kind in ("first", "overwrite-ckpt"):
        wait_for(lambda: writing_a_checkpoint(run), victim)
        time.sleep(rng.uniform(0, slow))
    else:
        k = rng.randrange(checkpoints - 1)
        wait_for(lambda: (run / ".lock").exists() and checkpoints_written(run) - before >= k, victim)
        time.sleep(rng.uniform(0, window / checkpoints))
    killed = victim.kill()

    result = {"kind": kind, "killed": killed, "state": None, "problem": None}
    try:
        result["state"] = state = state_after_kill(run, old)
        if state == "new run":
            recovery = ["train", "lm", "--resume", str(run), "--quiet"]
        elif state == "old run whole":
            recovery = command
        else:
            recovery = train_args(corpus, run, NEW_SEED)  # without --overwrite
        code = run_rnnkit(recovery, quiet=True)
        if code != 0:
            result["problem"] = f"stuck: `rnnkit {' '.join(recovery[:3])} ...` exited {code}: {run_rnnkit.last_error}"
        elif not equal_weights(latest_weights(run), reference):
            result["problem"] = "the final weights differ from the uninterrupted run's"
        elif epochs_in_metrics(run) != [1, 2]:
            result["problem"] = f"metrics.jsonl holds epochs {epochs_in_metrics(run)}"
    except Exception as error:  # a corrupt or mixed directory, or a traceback where a line was due
        result["problem"] = f"corrupt: {type(error).__name__}: {error}"
    return result


def run_trials(trials: int, seed: int = 0, slow: float = 0.05, launch: str = "subprocess",
               work: Path | None = None) -> dict:
    """Kill ``trials`` trainings as the module docstring says; returns the counts (and the problems)."""
    import torch
    torch.set_num_threads(1)
    rng = random.Random(seed)
    work = Path(work or tempfile.mkdtemp(prefix="rnnkit-kill-"))
    corpus = work / "tiny.txt"
    corpus.write_text(TEXT)
    started = time.monotonic()
    assert run_rnnkit(train_args(corpus, work / "reference", NEW_SEED), quiet=True) == 0, run_rnnkit.last_error
    reference = latest_weights(work / "reference")
    checkpoints = checkpoints_written(work / "reference")
    old_started = time.monotonic()  # timed on the second run: the first one also paid for rnnkit's imports
    assert run_rnnkit(train_args(corpus, work / "old", OLD_SEED), quiet=True) == 0, run_rnnkit.last_error
    window = time.monotonic() - old_started  # an uninterrupted run's time (the victims, slowed, take longer)
    results = [trial(KINDS[i % len(KINDS)], i, rng, work, corpus, reference, work / "old", window, checkpoints,
                     slow, launch)
               for i in range(trials)]
    states = {}
    for result in results:
        states[result["state"]] = states.get(result["state"], 0) + 1
    problems = [f"trial {i} ({r['kind']}): {r['problem']}" for i, r in enumerate(results) if r["problem"]]
    return {
        "trials": trials,
        "killed": sum(r["killed"] for r in results),
        "killed_in_first_checkpoint": sum(r["killed"] for r in results if r["kind"] == "first"),
        "killed_in_overwrite": sum(r["killed"] for r in results if r["kind"].startswith("overwrite")),
        "states_after_kill": states,
        "corrupt": sum(bool(r["problem"]) and r["problem"].startswith("corrupt") for r in results),
        "stuck": sum(bool(r["problem"]) and r["problem"].startswith("stuck") for r in results),
        "resumed_exact": sum(not r["problem"] for r in results),
        "problems": problems,
        "launch": launch,
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--as-rnnkit":  # the victim of a subprocess trial
        slow_down_writes(float(sys.argv[2]))
        sys.exit(run_rnnkit(sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow", type=float, default=0.05, help="seconds added to each checkpoint file write")
    parser.add_argument("--launch", choices=["subprocess", "fork"], default="subprocess")
    options = parser.parse_args()
    report = run_trials(options.trials, options.seed, options.slow, options.launch)
    print(json.dumps(report))
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
