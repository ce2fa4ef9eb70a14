"""The ``rnnkit`` command's tasks other than the language model, one module each.

A task module ``rnnkit.commands.NAME`` provides:

    train_command                              the click command ``rnnkit train NAME``
    evaluate(run_dir, checkpoint, options)     ``rnnkit evaluate DIR [--data FILE | --source F --target F] [--json]``
    predict(run_dir, checkpoint, options)      ``rnnkit predict DIR [--input FILE] [--data FILE] [--output PATH] [--json]``

``checkpoint`` is the run's loaded :class:`~rnnkit.train.Checkpoint` (its ``meta["task"]`` is NAME) and
``options`` the parsed flags of ``evaluate`` / ``predict`` by name (``data``, ``source``, ``target``, ``input``,
``output``, ``as_json``). Each task checks that the flags it needs were given.
"""

import importlib
from types import ModuleType

from rnnkit.errors import InputError

TASK_COMMANDS = ("classify", "tag", "forecast", "translate", "caption")

# Other top-level commands; each module's ``command`` is a click command or group: ``rnnkit translate DIR``
# (module ``translate_text``), and those that look inside models: ``rnnkit explain``,
# ``rnnkit diagnose gradients|memory``, ``rnnkit bench memory-tasks``.
TOP_LEVEL_COMMANDS = {"translate": "translate_text", "explain": "explain", "diagnose": "diagnose", "bench": "bench"}


def task_module(task: str | None, run_dir: str) -> ModuleType:
    """The module of the task that wrote a run, or a one-line error for a directory of no known task."""
    if task not in TASK_COMMANDS:
        raise InputError(f"{run_dir} holds a run of unknown task {task!r}; give the --out directory of `rnnkit train ...`")
    return importlib.import_module(f"rnnkit.commands.{task}")
