"""Two `rnnkit train lm` started at the same instant into one --out: exactly one trains, the other exits
non-zero with one line naming the first one's PID (issue 17, deliverable 3; target: 10 of 10 trials).

Each trial starts two new Pythons at once (as two users would), the same command and --out, and waits for
both. A trial passes when one exits 0 and the other exits 2 with exactly one line on stderr, ``error: ...``
naming the winner's PID (or, had the winner already finished, saying --out already holds a run), and the
directory holds one run: it loads, and metrics.jsonl holds each epoch once (nothing interleaved).
Prints one JSON line with the counts (and how many refusals named the PID); exit status 1 if any trial
failed. tests/test_run_directory_safety.py runs three such trials with forked processes.

    PYTHONPATH=src OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/concurrent_training.py
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kill_resume import NEW_SEED, TEXT, epochs_in_metrics, train_args


def trial(work: Path, corpus: Path, number: int) -> str | None:
    """One trial; None when it passed, "pid" when it passed and the line named the winner's PID, else what
    went wrong."""
    run = work / f"trial{number:02d}"
    command = [sys.executable, "-m", "rnnkit", *train_args(corpus, run, NEW_SEED)]
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outcomes = [(process.pid, process.wait(), process.stderr.read()) for process in processes]
    codes = sorted(code for _, code, _ in outcomes)
    if codes != [0, 2]:
        return f"exit statuses {codes}: {[err.strip()[-300:] for _, _, err in outcomes]}"
    winner = next(pid for pid, code, _ in outcomes if code == 0)
    lines = next(err for _, code, err in outcomes if code == 2).strip().splitlines()
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"the second training printed {lines}"
    if f"PID {winner}" not in lines[0] and "already holds a training run" not in lines[0]:
        return f"the line names no holder: {lines[0]}"
    from rnnkit.train import RunDirectory
    RunDirectory.open(run).load()
    if epochs_in_metrics(run) != [1, 2]:
        return f"metrics.jsonl holds epochs {epochs_in_metrics(run)}"
    return "pid" if f"PID {winner}" in lines[0] else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rnnkit-concurrent-"))
    corpus = work / "tiny.txt"
    corpus.write_text(TEXT)
    started = time.monotonic()
    problems = {number: trial(work, corpus, number) for number in range(options.trials)}  # None, "pid" or what failed
    failed = {number: problem for number, problem in problems.items() if problem not in (None, "pid")}
    print(json.dumps({"trials": options.trials, "exactly_one_ran": options.trials - len(failed),
                      "refused_naming_the_pid": sum(problem == "pid" for problem in problems.values()),
                      "problems": failed, "seconds": round(time.monotonic() - started, 1)}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
