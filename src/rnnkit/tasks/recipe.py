r"""Named recipes: the settings that reproduce a published result, shipped as TOML files in
``rnnkit/tasks/recipes/NAME.toml`` (``rnnkit recipes`` lists them; ``rnnkit train TASK --recipe NAME`` starts from one).

A recipe file holds::

    task = "lm"                          # the train task whose flags `settings` are; or "memory" (below)
    reproduces = "..."                   # what it reproduces, in words
    dataset = "tinyshakespeare"          # the data catalog's name (`rnnkit data get NAME`)
    budget_minutes = 55                  # the training budget its benchmark gives it
    benchmark = "benchmarks/lm_shakespeare.py --recipe shakespeare-char"   # the script that measures it
    target = "<= 1.40"                   # what rnnkit aims at (issue 27)
    [anchor]                             # the published number it is held against
    score = 1.4697
    metric = "validation loss, nats/char"
    citation = "..."
    [settings]                           # the flags of `rnnkit train TASK`, as --config's keys
    hidden = 512
    [search]                             # optional: variants its benchmark tries beside the settings, each a
    rd04 = { recurrent-dropout = 0.4 }   #   few flags in place of the settings'; validation data chooses one
    [measured]                           # written by the benchmark script (record_measurement), never by hand
    score = ...

Two recipes are no train task: ``selective-copy`` and ``adding`` are the synthetic memory tasks of
:mod:`rnnkit.diagnose` (``task = "memory"``); their ``settings`` are the keyword fields of the library's config
(:class:`~rnnkit.diagnose.selective_copy.SelectiveCopyConfig`, or the flags of ``rnnkit bench memory-tasks``) and
their benchmark script is how they run (``--recipe NAME``).

:func:`record_measurement` rewrites the ``[measured]`` table only, atomically: the rest of the file stays as written.
"""

from __future__ import annotations

import json
import math
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.errors import InputError
from rnnkit.files import write_atomic

RECIPES = Path(__file__).resolve().parent / "recipes"
MEMORY = "memory"  # the task of the recipes that run as a diagnose benchmark, not as `rnnkit train`
REQUIRED = ("task", "reproduces", "dataset", "budget_minutes", "benchmark", "target", "anchor", "settings")
MEASURED_FIELDS = ("score", "split", "command", "cpu", "date")
_MEASURED = re.compile(r"^\[measured\][ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Recipe:
    """One recipe file, read. ``measured`` is the ``[measured]`` table, or None until its benchmark has run;
    ``search``, the variants its benchmark tries beside ``settings`` (name -> the settings each changes), or none.
    """

    name: str
    task: str
    reproduces: str
    dataset: str
    budget_minutes: float
    benchmark: str
    target: str
    anchor: dict
    settings: dict
    path: Path
    measured: dict | None = field(default=None)
    search: dict = field(default_factory=dict)

    def variants(self) -> dict[str, dict]:
        """The configurations its benchmark tries, by name, each as the settings it changes: ``"settings"`` (the
        recipe's own, nothing changed) first, then the variants of ``[search]``."""
        return {"settings": {}, **{name: dict(changes) for name, changes in self.search.items()}}

    @property
    def command(self) -> str:
        """How to run it: ``rnnkit train TASK --recipe NAME`` with the flags of the configuration its measurement
        chose (a variant of its ``[search]``, if one won), or its benchmark script (a memory task)."""
        if self.task == MEMORY:
            return f"python {self.benchmark}"
        chosen = self.search.get(self.chosen, {})
        return " ".join([f"rnnkit train {self.task} --recipe {self.name}", *setting_flags(chosen)])

    @property
    def chosen(self) -> str | None:
        """The variant of ``[search]`` that its measurement chose on validation data, or None (its settings, or
        not measured yet)."""
        chosen = (self.measured or {}).get("configuration")
        return chosen if chosen in self.search else None

    def summary(self) -> dict:
        """What ``rnnkit recipes --json`` prints of it."""
        measured = self.measured or {}
        return {"name": self.name, "task": self.task, "reproduces": self.reproduces, "anchor": self.anchor,
                "target": self.target, "dataset": self.dataset, "budget_minutes": self.budget_minutes,
                "command": self.command, "benchmark": self.benchmark, "settings": self.settings,
                "search": self.search, "chosen": self.chosen, "measured": self.measured, "score": measured.get("score"),
                "cpu": measured.get("cpu"),
                "date": measured.get("date")}


def setting_flags(changes: dict) -> list[str]:
    """Settings as the flags of ``rnnkit train`` that set them: ``{"hidden": 768, "bidirectional": False}`` ->
    ``--hidden 768 --no-bidirectional`` (a flag given after ``--recipe`` overrides the recipe's setting); a list,
    ``{"adaptive-softmax": [2000, 6000]}``, is one comma-separated value: ``--adaptive-softmax 2000,6000``."""
    flags = []
    for key, value in changes.items():
        if isinstance(value, bool):
            flags.append(f"--{key}" if value else f"--no-{key}")
        elif isinstance(value, list):
            flags += [f"--{key}", ",".join(str(item) for item in value)]
        else:
            flags += [f"--{key}", f"{value:g}" if isinstance(value, float) else str(value)]
    return flags


def recipe_names(folder: Path = RECIPES) -> tuple[str, ...]:
    """Every shipped recipe, by name (the file stems), sorted."""
    return tuple(sorted(path.stem for path in folder.glob("*.toml")))


def load_recipe(name: str, folder: Path = RECIPES) -> Recipe:
    """The recipe ``name``; one InputError naming the recipes for another name or a damaged file."""
    path = folder / f"{name}.toml"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise InputError(f"no recipe {name!r}; the recipes are {', '.join(recipe_names(folder))} (`rnnkit recipes` "
                         "lists them)")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"recipe {name!r} ({path}) cannot be read ({error}); reinstall rnnkit") from None
    missing = [key for key in REQUIRED if key not in table]
    if missing:
        raise InputError(f"recipe {name!r} ({path}) lacks {', '.join(missing)}; reinstall rnnkit")
    search = table.get("search", {})
    if not isinstance(search, dict) or not all(isinstance(changes, dict) and changes for changes in search.values()):
        raise InputError(f"recipe {name!r} ({path}): each [search] entry must be a table of settings; reinstall rnnkit")
    return Recipe(name=name, task=table["task"], reproduces=table["reproduces"], dataset=table["dataset"],
                  budget_minutes=table["budget_minutes"], benchmark=table["benchmark"], target=table["target"],
                  anchor=dict(table["anchor"]), settings=dict(table["settings"]), path=path,
                  measured=dict(table["measured"]) if table.get("measured") else None, search=dict(search))


def all_recipes(folder: Path = RECIPES) -> list[Recipe]:
    """Every shipped recipe, read, by name."""
    return [load_recipe(name, folder) for name in recipe_names(folder)]


def recipe_for_task(name: str, task: str, folder: Path = RECIPES) -> Recipe:
    """The recipe ``name`` where it is one of ``task``'s; else one line saying whose it is and how it runs."""
    recipe = load_recipe(name, folder)
    if recipe.task != task:
        if recipe.task == MEMORY:
            raise InputError(f"recipe {name!r} is a memory task of `rnnkit bench memory-tasks`, not of `rnnkit train "
                             f"{task}`; run it with `{recipe.command}`")
        raise InputError(f"recipe {name!r} is for task {recipe.task!r}, not {task!r}; run `{recipe.command}`, or "
                         f"pick one of {task!r}'s: {', '.join(r.name for r in all_recipes(folder) if r.task == task) or 'none'}")
    return recipe


def record_measurement(recipe: str, score: float, *, split: str, command: str, cpu: str,
                       date: str | None = None, folder: Path = RECIPES, **extra) -> Path:
    """Write the ``[measured]`` table of recipe ``recipe``: the ``score`` its benchmark measured on ``split``
    (``"test"``, ``"dev"``, ``"validation"``, ...), the ``command`` that measured it, the ``cpu`` model and the
    ``date`` (default: today, UTC, ISO), and any ``extra`` numbers or words (the minutes it trained, ...).

    The file is replaced atomically (:func:`rnnkit.files.write_atomic`): everything before ``[measured]`` stays as
    written, and a reader sees the old table or the new one, never half. Returns the file's path."""
    found = load_recipe(recipe, folder)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise InputError(f"a recipe's measured score must be a finite number, got {score!r}")
    values = {"score": score, "split": split, "command": command, "cpu": cpu,
              "date": date or time.strftime("%Y-%m-%d", time.gmtime()), **extra}
    lines = ["[measured]", "# written by the benchmark script (rnnkit.tasks.recipe.record_measurement), never by hand"]
    lines += [f"{key} = {_toml_value(key, value)}" for key, value in values.items()]
    text = found.path.read_text(encoding="utf-8")
    at = _MEASURED.search(text)
    head = (text[:at.start()] if at else text).rstrip("\n")
    write_atomic(found.path, (head + "\n\n" + "\n".join(lines) + "\n").encode("utf-8"))
    return found.path


def _toml_value(key: str, value) -> str:
    """A plain TOML value: a string (JSON's escapes are TOML's), a number or a boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InputError(f"measured {key} must be finite, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise InputError(f"measured {key} must be a number, a string or a boolean, got {type(value).__name__}")
