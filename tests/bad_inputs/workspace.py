"""A fresh folder per case, holding the inputs it names and copies of tiny trained runs.

The runs are trained once per test session (:func:`train_runs`, a few seconds each) and copied into each case's
folder on first use, so a case may damage its copy freely. Names a case can use in its arguments, as
``{name}``:

- runs: ``lm``, ``classify``, ``tag``, ``forecast``, ``translate``, ``caption``, ``music`` (each trained one
  epoch: ``best.json`` and ``latest.json`` name the same checkpoint), and ``lmr``, a language model stopped by
  --max-steps after the first of its two epochs (with a ``gradients.jsonl``), which ``--resume`` continues;
- valid inputs: ``text`` (lm), ``csv`` (classify), ``conllu``, ``conll`` (tag), ``series`` (forecast),
  ``src``/``tgt`` (translate), ``chorales`` (music JSON), ``npz`` (caption data), ``png`` (caption image);
- ``tmp``: the case's folder itself, for paths that must not exist yet.
"""

import contextlib
import io
import shutil
import string
from pathlib import Path

from rnnkit.cli import main

from . import data

# The smallest settings that train each task to a run directory with a best checkpoint in about a second.
_TRAIN = {
    "lm": ["--data", "{text}", "--layers", "1", "--hidden", "8", "--embedding", "8", "--seq-len", "10",
           "--batch-size", "4", "--epochs", "1"],
    "classify": ["--data", "{csv}", "--hidden", "8", "--embedding", "8", "--dropout", "0", "--batch-size", "8",
                 "--epochs", "1"],
    "tag": ["--data", "{conllu}", "--valid", "{conllu}", "--hidden", "8", "--embedding", "8", "--char-embedding", "4",
            "--char-hidden", "4", "--dropout", "0", "--word-dropout", "0", "--batch-size", "4", "--epochs", "1"],
    "forecast": ["--data", "{series}", "--target", "value", "--date-column", "month", "--window", "12", "--horizon", "2",
                 "--hidden", "8", "--batch-size", "16", "--epochs", "1"],
    "translate": ["--source", "{src}", "--target", "{tgt}", "--hidden", "8", "--embedding", "8", "--batch-size", "8",
                  "--min-freq", "1", "--epochs", "1"],
    "caption": ["--train-size", "64", "--valid-size", "16", "--test-size", "16", "--max-digits", "3", "--hidden", "8",
                "--features", "8", "--channels", "4", "--embedding", "8", "--batch-size", "32", "--epochs", "1"],
    "music": ["--data", "{chorales}", "--hidden", "8", "--nade-hidden", "4", "--batch-size", "4", "--epochs", "1"],
}
# name: (task, arguments); an epoch of the tiny text is 45 steps, so lmr stops after its first epoch.
RUNS = {task: (task, argv) for task, argv in _TRAIN.items()}
RUNS["lmr"] = ("lm", [*_TRAIN["lm"], "--epochs", "2", "--max-steps", "45", "--log-gradients", "20"])

_INPUTS = {
    "text": ("tiny.txt", data.lm_text),
    "csv": ("reviews.csv", data.classify_csv),
    "conllu": ("tiny.conllu", data.conllu),
    "conll": ("tiny.conll", data.conll2003),
    "series": ("monthly.csv", data.series_csv),
    "src": ("train.de", lambda path: data.parallel(path, path.with_name("train.en"))[0]),
    "tgt": ("train.en", lambda path: data.parallel(path.with_name("train.de"), path)[1]),
    "chorales": ("chorales.json", data.music_json),
    "npz": ("digits.npz", data.caption_npz),
    "png": ("digits.png", data.caption_png),
}


def run_quietly(argv: list[str]) -> tuple[int, str, str]:
    """``rnnkit ARGV`` in this process; (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def train_runs(root: Path, names=tuple(RUNS)) -> dict[str, Path]:
    """One tiny trained run under ``root`` for each of ``names`` (of :data:`RUNS`; default all of them); their
    training data lies in ``root/data``."""
    inputs = Workspace(root / "data", runs={})
    runs = {}
    for name in names:
        task, arguments = RUNS[name]
        argv = ["train", task, *inputs.format(arguments), "--seed", "0", "--quiet", "--out", str(root / name)]
        code, _, stderr = run_quietly(argv)
        assert code == 0, f"training the tiny {name} run failed: {stderr}"
        runs[name] = root / name
    return runs


class Workspace:
    """One case's folder. ``workspace[name]`` is the path of a run copy or an input, made on first use."""

    def __init__(self, root: Path, runs: dict[str, Path]):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._runs = runs
        self._made: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name == "tmp":
            return self.root
        if name not in self._made:
            if name in self._runs:
                self._made[name] = Path(shutil.copytree(self._runs[name], self.root / name, symlinks=True))
            elif name in _INPUTS:
                file_name, write = _INPUTS[name]
                self._made[name] = write(self.root / file_name)
            else:
                raise KeyError(f"no run or input called {name!r}")
        return self._made[name]

    def path(self, relative: str) -> Path:
        """A path inside the case folder (that may not exist)."""
        return self.root / relative

    def format(self, argv) -> list[str]:
        """The arguments with each ``{name}`` replaced by its path (made now if it is new)."""
        formatter = string.Formatter()
        return [formatter.vformat(arg, (), _Lookup(self)) if "{" in arg else arg for arg in argv]


class _Lookup(dict):
    def __init__(self, workspace: Workspace):
        super().__init__()
        self.workspace = workspace

    def __missing__(self, key: str) -> str:
        return str(self.workspace[key])
