"""A trained run as a Python object: :class:`TrainedRun`, what :func:`rnnkit.load` gives.

Its ``evaluate``, ``predict`` and ``generate`` are the operations its task declares
(:mod:`rnnkit.tasks.operations`), called with the options as keywords named as the command's flags (``--top-k`` is
``top_k=``); each returns what ``rnnkit evaluate / predict / generate RUN --json`` prints (predict: one item per
input line, as ``--json`` prints one object per line). The command line calls the same methods
(:meth:`TrainedRun.apply`) and only parses and prints.

Example::

    run = rnnkit.load("runs/code")          # the best checkpoint, else the latest (checkpoint="latest" | "best")
    run.task                                # 'lm'
    run.evaluate("valid.txt")               # {"loss": ..., "perplexity": ..., "bits_per_char": ..., "tokens": ...}
    run.generate(prime="def ", length=200, temperature=0.8, seed=0)["text"]
    run.export(format="onnx", out="code.onnx")   # {"files": ["code.onnx", "code.step.onnx"], ...}
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from rnnkit.errors import InputError
from rnnkit.train import Checkpoint, RunDirectory

from .operations import KEYWORDS, Operation, Spelling
from .spec import TaskSpec, is_task, spec, task_names, tasks_with


class TrainedRun:
    """The trained model of a run directory, with what its task does with it.

    Attributes:
        path: the run directory.
        task: the task's name (``"lm"``, ``"classify"``, ...); ``spec`` its :class:`~rnnkit.tasks.spec.TaskSpec`.
        checkpoint: the loaded :class:`~rnnkit.train.Checkpoint`.
        trained: what the task's ``from_checkpoint`` made of it (the model with its vocabularies and settings).
        model: the trained ``torch.nn.Module``, in eval mode on the CPU.
    """

    def __init__(self, path: str | Path, checkpoint: Checkpoint):
        self.path = Path(path)
        self.checkpoint = checkpoint
        task = checkpoint.meta.get("task")
        if not is_task(task):
            raise InputError(f"{path} holds a run of unknown task {task!r}; give the directory of a run of one of the "
                             f"tasks {', '.join(task_names())}")
        self.spec: TaskSpec = spec(task)
        self.trained = self.spec.from_run(path, checkpoint=checkpoint)

    @classmethod
    def open(cls, path: str | Path, checkpoint: str = "auto") -> "TrainedRun":
        """The run in directory ``path``, from its ``checkpoint``: ``"auto"`` (the best when it has one, else the
        latest), ``"best"`` or ``"latest"``."""
        if checkpoint not in ("auto", "best", "latest"):
            raise InputError(f"checkpoint must be one of auto, best, latest, got {checkpoint!r}")
        return cls(path, RunDirectory.open(path).load(checkpoint))

    @property
    def task(self) -> str:
        return self.spec.name

    @property
    def model(self) -> torch.nn.Module:
        return self.trained if isinstance(self.trained, torch.nn.Module) else self.trained.model

    @property
    def operations(self) -> tuple[str, ...]:
        """What this run does: of ``evaluate``, ``predict`` and ``generate``, those its task has."""
        return self.spec.operations

    def __repr__(self) -> str:
        return f"TrainedRun({str(self.path)!r}, task={self.task!r}, checkpoint={self.checkpoint.path.name!r})"

    def evaluate(self, *args, **options) -> dict:
        """The task's scores on held-out data: ``run.evaluate("valid.txt")``, ``run.evaluate(data=..., ...)``;
        the options are those of ``rnnkit evaluate RUN --help`` (flags as keywords, ``-`` as ``_``)."""
        return self._call("evaluate", args, options)

    def predict(self, *args, **options) -> Any:
        """The model applied to inputs (a file of them, or the items themselves: a list of texts, an image
        array): one result per input line, as ``rnnkit predict RUN --json`` prints them (a forecast and a
        caption are one each). The options are those of ``rnnkit predict RUN --help``."""
        return self._call("predict", args, options)

    def generate(self, *args, **options) -> dict:
        """What the model writes: ``run.generate(prime="def ", length=200, temperature=0.8)`` for a language
        model. The options are those of ``rnnkit generate RUN --help``."""
        return self._call("generate", args, options)

    def export(self, format: str = "onnx", out: str | Path | None = None, quantize: str | None = None,
               data: str | Path | None = None) -> dict:
        """The model out of Python (:mod:`rnnkit.tasks.exporting`): ``format`` ``"onnx"`` or
        ``"exported-program"`` written to ``out`` (a task with several graphs writes siblings: ``lm.step.onnx``);
        ``quantize="int8"`` stores int8 weights and measures the change on the validation data (``data``: a file
        of it, where the run cannot find its own). Returns what ``rnnkit export RUN --json`` prints."""
        from .exporting import export_run

        return export_run(self, format=format, out=out, quantize=quantize, data=data)

    def _call(self, name: str, args: tuple, options: dict) -> Any:
        """Bind Python's arguments to the operation's options (positional ones in their declared order), refusing
        any it does not take in one line, and apply it; warnings become Python warnings."""
        operation = self._operation(name)
        if len(args) > len(operation.options):
            raise InputError(f"{name}() of task {self.task!r} takes at most {len(operation.options)} positional "
                             f"argument(s) ({', '.join(o.name for o in operation.options)}), got {len(args)}")
        for option, value in zip(operation.options, args):
            if option.name in options:
                raise InputError(f"{name}() got {option.name} twice: positionally and as a keyword; give it once")
            options[option.name] = value
        for key in options:
            if operation.option(key) is None:
                takers = tasks_with(name, key)
                elsewhere = f" (the tasks that take it: {', '.join(takers)})" if takers else ""
                raise InputError(f"{key} is not an option of {name}() for task {self.task!r}; its options: "
                                 f"{', '.join(o.name for o in operation.options) or 'none'}{elsewhere}")
        return self.apply(name, options, KEYWORDS, {"warn": _python_warning})

    def apply(self, name: str, given: dict[str, Any], spelling: Spelling, hooks: dict[str, Callable | None]) -> Any:
        """The operation ``name`` with the options ``given`` by name (None: not given), checked and named in
        messages as ``spelling`` says (the command line's flags, or Python's keywords); ``hooks``: what to do
        with warnings and streamed text (:data:`~rnnkit.tasks.operations.HOOKS`)."""
        operation = self._operation(name)
        values = operation.values(given, spelling, f"{self.path} holds a {self.spec.noun}")
        return operation.call(self.trained, values, hooks)

    def _operation(self, name: str) -> Operation:
        operation = self.spec.operation(name)
        if operation is None:
            has = ", ".join(f"{other}()" for other in self.operations) or "nothing"
            raise InputError(f"{self.path} holds a {self.spec.noun}, which has no {name}() (it has {has}); the tasks "
                             f"with {name}(): {', '.join(tasks_with(name))}")
        return operation


# What --checkpoint best picks in each task's runs: its Task.selection (score name, "max" | "min"); the tasks not
# listed select by the validation loss. tests/test_progress.py checks it against the tasks' own declarations.
SELECTION = {"classify": ("accuracy", "max"), "tag": ("f1", "max"), "forecast": ("mae", "min"),
             "translate": ("bleu", "max"), "caption": ("exact_match", "max")}
_SCORE_NAMES = {"accuracy": "accuracy", "f1": "F1", "mae": "MAE", "bleu": "BLEU", "exact_match": "exact match",
                "macro_f1": "macro F1", "loss": "loss"}


def best_by(task: str) -> str:
    """What the best checkpoint of a run of ``task`` is best by: "the highest validation accuracy"."""
    if task == "tag":  # its selection depends on the tags: spans when they are entity tags (BIO), else tokens
        return "the highest validation F1 of entity spans (token accuracy for tags that are not entity tags)"
    return _best_by(SELECTION.get(task))


def best_by_every_task() -> str:
    """What the best checkpoint is best by, for every task at once (for help that knows no task yet)."""
    by_score: dict[str, list[str]] = {}
    for task in task_names():
        name = SELECTION.get(task, ("loss",))[0]
        score = "F1 or accuracy" if task == "tag" else _SCORE_NAMES.get(name, name)
        by_score.setdefault(score, []).append(task)
    shown = ", ".join(f"{score} ({', '.join(tasks)})" for score, tasks in by_score.items())
    return f"the best validation score of its task: {shown}"


def _best_by(selection) -> str:
    if not selection:
        return "the lowest validation loss"
    name, direction = selection
    return f"the {'highest' if direction == 'max' else 'lowest'} validation {_SCORE_NAMES.get(name, name)}"


def checkpoint_choice(checkpoint: Checkpoint, run_dir: str | Path, which: str, task: str) -> str:
    """One line: which checkpoint of the run is applied (``which`` as asked: auto, best, latest) and why, e.g.
    "scoring checkpoint ckpt-000003 (epoch 2, step 90): the best, by the highest validation accuracy (0.9125);
    --checkpoint latest scores the last one". The score is the one in the checkpoint's own epoch record (a best
    checkpoint is written at the end of the epoch that was best)."""
    state = checkpoint.meta.get("trainer", {})
    position = state.get("position", {}) if isinstance(state, dict) else {}
    history = [record for record in position.get("history", []) if isinstance(record, dict)]
    step = position.get("step")
    own = next((record for record in history if record.get("step") == step), {})
    epoch = own.get("epoch")
    where = f"epoch {epoch}, step {step}" if epoch is not None else f"step {step}"
    head = f"scoring checkpoint {checkpoint.path.name} ({where})"
    is_best = which == "best" or (which == "auto" and (Path(run_dir) / "best.json").is_file())
    if is_best:
        selection = state.get("selection") if "selection" in state else SELECTION.get(task)
        if task == "tag" and "selection" not in state:  # a run saved before the selection was recorded
            selection = ("f1", "max") if any("valid_f1" in record for record in history) else ("accuracy", "max")
        key = f"valid_{selection[0]}" if selection else "valid_loss"
        value = f" ({own[key]:.4g})" if isinstance(own.get(key), (int, float)) else ""
        asked = "as --checkpoint best asks" if which == "best" else "--checkpoint latest scores the last one"
        return f"{head}: the best, by {_best_by(selection)}{value}; {asked}"
    if which == "latest":
        return f"{head}: the latest, as --checkpoint latest asks"
    why = ("it was trained without validation data" if history and all("valid_loss" not in r for r in history)
           else "no epoch with a validation score has finished")
    return f"{head}: the latest, because the run has no best checkpoint ({why})"


def _python_warning(line: str) -> None:
    warnings.warn(line, UserWarning, stacklevel=4)
