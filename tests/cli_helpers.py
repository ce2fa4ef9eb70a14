"""Running the ``rnnkit`` command inside a test, and checking its one-line errors."""

import hashlib
import io
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from rnnkit.cli import main


def run_cli(capsys, *args, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    """Run `rnnkit ARGS` in this process (``stdin`` fed as standard input); returns (exit status, stdout, stderr)."""
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        main([str(arg) for arg in args])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, stderr: str, *words: str) -> None:
    """A user mistake: exit status 2 and exactly one line ``error: ...`` holding each of ``words``, no traceback."""
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its SHA-256: equal snapshots mean nothing was changed."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def latest_weights(run: Path) -> dict[str, torch.Tensor]:
    """The weights of the run's latest checkpoint, by parameter name."""
    name = json.loads((run / "latest.json").read_text())["checkpoint"]
    return load_file(run / "checkpoints" / name / "weights.safetensors")


def assert_resumed_exactly(straight: Path, resumed: Path, epochs: int) -> None:
    """The ``resumed`` run ended with the weights of the ``straight`` one (trained without a stop), and it
    continued rather than retrained from scratch (which gives the same weights): its metrics.jsonl holds
    epochs 1 to ``epochs`` once each."""
    expected, got = latest_weights(straight), latest_weights(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    records = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == list(range(1, epochs + 1))
