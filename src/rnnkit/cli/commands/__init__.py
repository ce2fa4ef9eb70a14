"""The ``rnnkit`` commands, one module each; :mod:`rnnkit.cli` loads a module only when its command runs.

A task is a name with both a task module ``rnnkit.tasks.NAME`` (its :class:`~rnnkit.tasks.spec.TaskSpec`) and
a command module ``rnnkit.cli.commands.NAME`` (its :class:`~rnnkit.cli.task_command.TaskCommand` as ``COMMAND``, and
``train_command``): adding a task is adding those two modules. The other commands are listed in
:data:`TOP_LEVEL_COMMANDS`.
"""

import importlib
import pkgutil

from rnnkit.errors import InputError

# Command name -> (module of rnnkit.cli.commands, attribute): the commands beside `rnnkit train TASK`.
TOP_LEVEL_COMMANDS = {
    "generate": ("generate", "command"),
    "evaluate": ("apply", "evaluate"),
    "predict": ("apply", "predict"),
    "translate": ("translate", "translate_command"),
    "explain": ("explain", "command"),
    "diagnose": ("diagnose", "command"),
    "bench": ("bench", "command"),
    "doctor": ("doctor", "command"),
    "data": ("data", "command"),
    "serve": ("serve", "command"),
    "export": ("export", "command"),
    "recipes": ("recipes", "command"),
}


def task_names() -> tuple[str, ...]:
    """Every task: the names that have a task module and a command module (found without importing them)."""
    import rnnkit.tasks

    def modules(package) -> set[str]:
        return {module.name for module in pkgutil.iter_modules(package.__path__) if not module.name.startswith("_")}

    return tuple(sorted(modules(rnnkit.tasks) & modules(importlib.import_module(__name__))))


def task_command(task: str | None, run_dir: str):
    """The :class:`~rnnkit.cli.task_command.TaskCommand` of the task that wrote a run, or a one-line error for a
    directory of no known task."""
    if task not in task_names():
        raise InputError(f"{run_dir} holds a run of unknown task {task!r}; give the --out directory of `rnnkit train ...`")
    return importlib.import_module(f"{__name__}.{task}").COMMAND
