"""The kill -9 guarantee as a test: five trials of benchmarks/kill_resume.py (see its docstring), the killed
trainings forked from this process (no second start of Python and torch): one killed at a random instant of
a new run, one inside its first checkpoint write, two during --overwrite of an earlier run (one inside the new
run's first checkpoint), one more at random. Every run directory left behind must load (or say in one line
that it holds no run yet), continue, and end with the weights of an uninterrupted run, bit for bit.
The full script (24 kills, a new Python each) is run by hand; its result is in the report of issue 17.
"""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py"


def load_script():
    spec = importlib.util.spec_from_file_location("kill_resume", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_five_kills_leave_runs_that_load_resume_and_end_exactly(tmp_path):
    report = load_script().run_trials(5, seed=0, launch="fork", work=tmp_path)
    assert report["problems"] == [], report
    assert report["killed"] == 5, report
    assert report["killed_in_first_checkpoint"] == 1 and report["killed_in_overwrite"] == 2, report
    assert report["resumed_exact"] == 5 and report["corrupt"] == report["stuck"] == 0, report
