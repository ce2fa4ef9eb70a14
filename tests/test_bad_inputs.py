"""The bad-input corpus of issue 17: every `rnnkit` command given what a careless or hostile user gives it.

The table (tests/bad_inputs/cases.py) covers every command (`train lm|classify|tag|forecast|translate|caption|
music`, `generate`, `evaluate`, `predict`, `translate`, `explain`, `diagnose`, `bench`) and each kind of
mistake the issue lists: flags out of range, of the wrong type or not finite (on the command line and in a
TOML --config); missing, empty, binary and wrongly encoded files; wrong CSV columns, non-numeric or non-finite
series values, broken CoNLL lines, parallel text of unequal length; a run of another task, or flags of another
task; an edited checkpoint.json / best.json / latest.json, and weights replaced by random bytes or cut short;
symbolic links planted inside a run directory; an output equal to an input, inside a run directory, under a
regular file or on /proc; a run left by a kill during its first checkpoint; losses that diverge or run away.

Each case runs `rnnkit` in this process through :func:`rnnkit.cli.main`, as the console script does, in a
fresh folder that is also its working directory, and must:

- exit with a non-zero status (an exception escaping main() is a traceback: the console script would print it);
- print exactly one non-empty line on stderr, starting with ``error: `` (a Python warning counts as a line);
- name the problem or its fix in that line (each of the case's words, ``a|b`` meaning either; none of its
  ``absent`` words);
- leave every file it was given byte-identical, delete none and write none (in its folder, and in the
  session's tiny trained runs it was copied from: nothing outside the folder);
- with --json, print no ``Infinity``/``NaN`` (not JSON) on stdout.

These tests assert the behaviour the issue demands, so the ones that fail show what is left to fix. To print
a table of every case and what went wrong, run with RNNKIT_BAD_INPUTS_SUMMARY=PATH (a file the table is
written to at the end of the module), e.g.
``RNNKIT_BAD_INPUTS_SUMMARY=/tmp/bad.txt pytest tests/test_bad_inputs.py; cat /tmp/bad.txt``.
"""

import hashlib
import io
import os
import re
import resource
import signal
import warnings
from pathlib import Path

import pytest

from bad_inputs.cases import CASES, Case
from bad_inputs.workspace import Workspace, train_runs
from rnnkit.cli import main

# An exception that Python can only report as "Exception ignored in ..." (from a destructor) is a traceback the
# user sees on stderr after the error line: it fails the case like any other.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

# A case may use this much CPU time (far more than any needs: a command that never stops, e.g. --time-budget nan,
# fails instead of hanging), and this much wall time on a machine busy with other work.
CASE_CPU_SECONDS = 15
CASE_WALL_SECONDS = 300
MEMORY_HEADROOM = 6 * 2**30  # bytes a case may add to the address space: a huge --hidden fails instead of swapping

RESULTS: dict[str, tuple[Case, list[str], str]] = {}  # case id: (case, problems, its stderr)


class CaseTimeout(BaseException):
    """Raised in a case that runs too long (a BaseException so that no `except Exception` in rnnkit eats it)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return train_runs(tmp_path_factory.mktemp("tiny-runs"))


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Write the table of outcomes where RNNKIT_BAD_INPUTS_SUMMARY says, once every case has run."""
    yield
    if os.environ.get("RNNKIT_BAD_INPUTS_SUMMARY"):
        Path(os.environ["RNNKIT_BAD_INPUTS_SUMMARY"]).write_text(summary_table(RESULTS))


def summary_table(results: dict[str, tuple[Case, list[str], str]]) -> str:
    """One line per case: PASS/FAIL, the area (A run directory, B flags/inputs/outputs, C trainer), the command,
    the case, and what went wrong (or, for a pass, the line it printed); then the counts."""
    lines = []
    for case_id, (case, problems, stderr) in results.items():
        verdict = "FAIL" if problems else "PASS"
        detail = "; ".join(problems) if problems else " ".join(stderr.split())[:150]
        lines.append(f"{verdict}  {case.area}  {case.command:<18} {case_id:<58} {detail}")
    failed = sum(1 for _, problems, _ in results.values() if problems)
    lines.append(f"{len(results)} cases, {len(results) - failed} pass, {failed} fail")
    return "\n".join(lines) + "\n"


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its SHA-256, and every symbolic link with its target (never followed)."""
    found = {}
    for folder, subfolders, files in os.walk(directory):
        for name in files + [name for name in subfolders if os.path.islink(os.path.join(folder, name))]:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, directory)
            if os.path.islink(path):
                found[relative] = "link -> " + os.readlink(path)
            else:
                with open(path, "rb") as file:
                    found[relative] = hashlib.sha256(file.read()).hexdigest()
    return found


def changes(before: dict[str, str], after: dict[str, str], may_create: str | None = None) -> list[str]:
    """What differs: files changed, deleted, or new (except under ``may_create``)."""
    problems = []
    changed = sorted(path for path in before if path in after and before[path] != after[path])
    deleted = sorted(path for path in before if path not in after)
    created = sorted(path for path in after if path not in before
                     and not (may_create and Path(path).is_relative_to(may_create)))
    for what, paths in (("changed", changed), ("deleted", deleted), ("created", created)):
        if paths:
            problems.append(f"{what} {', '.join(paths[:4])}{' ...' if len(paths) > 4 else ''}")
    return problems


def run_in_process(argv: list[str], stdin: bytes, capsys, monkeypatch) -> tuple[int | str, str, str, list[str]]:
    """``rnnkit ARGV`` as the console script runs it; (exit status or 'traceback: ...', stdout, stderr, warnings)."""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    previous_handlers = {number: signal.signal(number, _time_out) for number in (signal.SIGPROF, signal.SIGALRM)}
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + MEMORY_HEADROOM, hard))
    signal.setitimer(signal.ITIMER_PROF, CASE_CPU_SECONDS)  # CPU time: fair however busy the machine is
    signal.alarm(CASE_WALL_SECONDS)
    with warnings.catch_warnings(record=True) as caught:
        _default_warning_filters()
        try:
            main(argv)
            code: int | str = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except CaseTimeout:
            code = f"still running after {CASE_CPU_SECONDS} s of CPU time"
        except BaseException as error:  # what would reach the user as a traceback
            code = f"traceback: {type(error).__name__}: {' '.join(str(error).split())[:160]}"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.alarm(0)
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
            for number, handler in previous_handlers.items():
                signal.signal(number, handler)
    captured = capsys.readouterr()
    shown = [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught]
    return code, captured.out, captured.err, shown


def _time_out(signum, frame):
    raise CaseTimeout()


def _address_space() -> int:
    """This process's virtual memory size in bytes (VmSize)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _default_warning_filters() -> None:
    """Python's filters for a script (``python -W`` not given): what a user of the console script would see."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)


def judge(case: Case, code, stdout: str, stderr: str, shown_warnings: list[str]) -> list[str]:
    """Every way the outcome falls short of the issue's demand, as short phrases (empty: the case passes)."""
    problems = []
    if isinstance(code, str):
        problems.append(code)
    elif code == 0:
        problems.append("exit status 0")
    lines = [line for line in stderr.splitlines() if line.strip()] + shown_warnings
    if "Traceback" in stderr:
        problems.append("traceback on stderr")
    if not lines:
        problems.append("nothing on stderr")
    else:
        errors = [line for line in lines if line.startswith("error: ")]
        if len(lines) > 1:
            problems.append(f"{len(lines)} lines on stderr: {' | '.join(line[:90] for line in lines[:3])}")
        if not errors:
            problems.append(f"no 'error: ' line: {lines[0][:160]}")
        message = (errors or lines)[0].lower()
        missing = [word for word in case.words if not any(part.lower() in message for part in word.split("|"))]
        if missing and errors:
            problems.append(f"the line lacks {missing}: {errors[0][:200]}")
        blamed = [word for word in case.absent if word.lower() in message]
        if blamed:
            problems.append(f"the line wrongly says {blamed}: {message[:200]}")
    if "--json" in case.argv and re.search(r"\b(-?Infinity|NaN)\b", stdout):
        problems.append("--json printed Infinity or NaN")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, runs, tmp_path, capsys, monkeypatch):
    workspace = Workspace(tmp_path / "case", runs)
    for setup in case.setup:
        setup(workspace)
    argv = workspace.format(case.argv)
    monkeypatch.chdir(workspace.root)
    given, tiny_runs = snapshot(workspace.root), {name: snapshot(path) for name, path in runs.items()}

    code, stdout, stderr, shown_warnings = run_in_process(argv, case.stdin, capsys, monkeypatch)

    problems = judge(case, code, stdout, stderr, shown_warnings)
    problems += changes(given, snapshot(workspace.root), case.may_create)
    for name, path in runs.items():
        problems += [f"outside the case folder: {problem} in the tiny {name} run"
                     for problem in changes(tiny_runs[name], snapshot(path))]
    RESULTS[case.id] = (case, problems, stderr)
    assert not problems, f"rnnkit {' '.join(argv)}\n" + "\n".join(problems) + f"\nstderr: {stderr[-2000:]}"


def test_the_corpus_is_large_and_covers_every_command():
    """Issue 17 asks for at least 150 cases across every command."""
    assert len(CASES) >= 150
    commands = {case.command for case in CASES}
    expected = {"train lm", "train classify", "train tag", "train forecast", "train translate", "train caption",
                "train music", "generate", "evaluate", "predict", "translate", "explain", "diagnose gradients",
                "diagnose memory", "bench memory-tasks"}
    assert expected <= commands, expected - commands


def test_a_traceback_a_changed_file_and_a_vague_line_are_each_caught():
    """The judge itself: a passing outcome passes, and each way of failing is reported."""
    case = Case("x", ("train", "lm", "--lr", "nan"), ("--lr",), "B")
    assert judge(case, 2, "", "error: --lr nan is not a number; give a positive learning rate\n", []) == []
    assert judge(case, "traceback: ValueError: nan", "", "", []) != []
    assert judge(case, 0, "", "", []) != []
    assert judge(case, 2, "", "error: something went wrong\n", []) != []
    assert judge(case, 2, "", "error: --lr nan\nmore\n", []) != []
    assert judge(case, 2, "", "error: --lr nan\n", ["x.py:1: UserWarning: careful"]) != []
    assert changes({"a": "1"}, {"a": "2"}) and changes({"a": "1"}, {}) and changes({}, {"b": "1"})
    assert changes({}, {"out/ckpt": "1"}, may_create="out") == []
