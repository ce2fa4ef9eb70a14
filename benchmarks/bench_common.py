"""What the benchmark scripts share: running the ``rnnkit`` command, naming the CPU they ran on, and the
configurations the sentiment and tagging searches try."""

import platform
import subprocess
import sys
import time
from pathlib import Path

# The search (--search): round one's model, then the open core's regularisers and the layer-normalised cell.
# Flags given here follow the benchmark's settings on the command line; the CLI takes a repeated flag's last value.
CONFIGS = {
    "lstm": [],
    "lstm-ed0.1-wd0.3": ["--embedding-dropout", "0.1", "--weight-drop", "0.3"],
    "lstm-ed0.1-rd0.25": ["--embedding-dropout", "0.1", "--recurrent-dropout", "0.25"],
    "lstm-ed0.1-rd0.5": ["--embedding-dropout", "0.1", "--recurrent-dropout", "0.5"],
    "layernorm_lstm-ed0.1-rd0.25": ["--cell", "layernorm_lstm", "--embedding-dropout", "0.1",
                                    "--recurrent-dropout", "0.25"],
}
SMOKE_CONFIGS = ["lstm", "lstm-ed0.1-rd0.25"]


def rnnkit(*args: str) -> str:
    """Run ``python -m rnnkit ARGS`` and return its stdout; on failure end the script with one line (rnnkit has
    printed its own one-line error on stderr above it)."""
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], text=True, stdout=subprocess.PIPE)
    if done.returncode:
        sys.exit(f"error: `rnnkit {args[0]} {args[1] if len(args) > 1 else ''}` exited with status {done.returncode}")
    return done.stdout


def cpu_model() -> str:
    """The "model name" line of /proc/cpuinfo (the hosts change between sessions), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # the canonical copies, where a checkout has them


def add_data_argument(parser, name: str) -> None:
    """``--data NAME|PATH``: where the benchmark reads dataset ``name`` from (see :func:`dataset_path`)."""
    parser.add_argument("--data", metavar="NAME|PATH", default=None,
                        help=f"the {name} data: the name {name} (the copy `rnnkit data get {name}` downloaded) or a "
                             f"folder holding its files. Default: ../shared/data/{name} when it exists, else the "
                             "downloaded copy")


def dataset_path(given: str | None, name: str, file: str | None = None) -> Path:
    """The folder of dataset ``name`` (or its ``file``): ``--data`` as given (an existing folder or file, or the
    dataset's name: its copy under RNNKIT_DATA), else ../shared/data/NAME when it exists, else the downloaded
    copy. A name of another dataset, or a copy not downloaded, ends the script with one line."""
    from rnnkit.data.catalog import dataset

    if given is not None and Path(given).exists():
        folder = Path(given)
        return folder / file if file and folder.is_dir() else folder
    if given is None and (SHARED_DATA / name).is_dir():
        folder = SHARED_DATA / name
    else:
        if given not in (None, name):
            sys.exit(f"error: --data {given}: no such path, and this benchmark reads dataset {name}; give --data "
                     f"{name} or a folder holding its files")
        found = dataset(name)
        if found.state() != "present":
            sys.exit(f"error: dataset {name} is not downloaded ({found.folder}); run `rnnkit data get {name}`")
        folder = found.folder
    return folder / file if file else folder


# ------------------------------------------------------------------------------------------------ named recipes
# A benchmark script measures the named recipes of rnnkit (`rnnkit recipes`) that name it as their benchmark: with
# --recipe NAME it trains with `rnnkit train TASK --recipe NAME` (adding only the data paths, --out and, where the
# recipe's settings hold no --time-budget, the recipe's budget), chooses every epoch and checkpoint on validation
# data, scores the split the recipe is measured on, and (not in smoke mode) writes the score into the recipe.


def recipes_of(script: str) -> list[str]:
    """The recipes whose benchmark is ``script`` (a file name such as "lm_ptb.py"), sorted."""
    from rnnkit.tasks.recipe import all_recipes

    return [recipe.name for recipe in all_recipes() if recipe.benchmark.split()[0] == f"benchmarks/{script}"]


def add_recipe_argument(parser, script: str, own: tuple[str, ...] = (), default: str | None = None) -> None:
    """``--recipe NAME``: one of the named recipes that ``script`` measures, or one of the script's ``own`` older
    recipes. Any other name ends the parse with one line (exit status 1) saying whose recipe it is and which
    script measures it, so a recipe of another task never starts a run here."""
    import argparse

    named = recipes_of(script)

    class Recipe(argparse.Action):
        def __call__(self, parser, namespace, value, option_string=None):
            if value not in named and value not in own:
                sys.exit(f"error: --recipe {value}: {_whose(value)}; {script} measures "
                         f"{', '.join(named + list(own))}")
            setattr(namespace, self.dest, value)

    listed = ", ".join(named) + (f"; or this script's own {', '.join(own)}" if own else "")
    parser.add_argument("--recipe", metavar="NAME", action=Recipe, default=default,
                        help=f"a named recipe (`rnnkit recipes`): {listed}"
                             + (f" (default {default})" if default else "")
                             + ". A named recipe's full run (not --smoke) records its score in the recipe")


def _whose(name: str) -> str:
    """Where recipe ``name`` belongs, in words: another script's recipe, or no recipe at all."""
    from rnnkit.errors import InputError
    from rnnkit.tasks.recipe import load_recipe, recipe_names

    try:
        recipe = load_recipe(name)
    except InputError:
        return f"no such recipe (the recipes are {', '.join(recipe_names())})"
    return f"a recipe of task {recipe.task}, measured by `python {recipe.benchmark}`"


def recipe_budget(name: str, minutes: float | None = None, share: int = 1) -> list[str]:
    """The --time-budget flag a recipe run is given: none when the recipe's settings hold their own and --minutes
    was not given, else ``minutes`` (default: the recipe's budget_minutes) over ``share`` runs (the folds of a
    cross-validation share the budget)."""
    from rnnkit.tasks.recipe import load_recipe

    recipe = load_recipe(name)
    if minutes is None and "time-budget" in recipe.settings:
        return []
    total = recipe.budget_minutes if minutes is None else minutes
    return ["--time-budget", f"{total * 60 / share:g}"]


def record_recipe(name: str, score: float, *, split: str, chosen_on: str, smoke: bool, runs: str | None = None,
                  **extra) -> str | None:
    """Write ``score`` (measured on ``split``, every choice made on ``chosen_on``) into recipe ``name``'s
    [measured] table with this CPU; a smoke run records nothing. Returns the file written.

    The table's ``command`` is how to measure it again, the recipe's own benchmark script (``python
    benchmarks/SCRIPT.py --recipe NAME``); ``runs``, the ``rnnkit`` commands that script ran, is kept beside it
    with this checkout's and the shared data's paths written relative (``.``, ``../shared``), so that a recipe
    shipped in the package names no one machine's folders."""
    if smoke:
        print(f"smoke run: nothing recorded in recipe {name}", flush=True)
        return None
    from rnnkit.tasks.recipe import load_recipe, record_measurement

    if runs is not None:
        extra["runs"] = relative_paths(runs)
    path = record_measurement(name, score, split=split, command=f"python {load_recipe(name).benchmark}",
                              cpu=cpu_model(), chosen_on=chosen_on, **extra)
    print(f"recorded in {path}", flush=True)
    return str(path)


def relative_paths(command: str) -> str:
    """``command`` with the paths of this checkout and of the shared data beside it written relative to the
    checkout: ``/work/main/runs/x`` -> ``runs/x``, ``/work/shared/data/ptb`` -> ``../shared/data/ptb``."""
    root = Path(__file__).resolve().parents[1]
    return command.replace(f"{root}/", "").replace(f"{root.parent}/shared/", "../shared/")


# ------------------------------------------------------------------------------------------------ a search's budget

class SearchBudget:
    """Shares of one wall-clock budget for a search's configurations, so that they *and* what follows them (the
    chosen run's final evaluation) end inside it.

    Each run's --time-budget covers its training and final validation only; the process around it (start,
    imports, loading the data: its ``overhead``) and the evaluation after the search are not in it. So the share
    of the next configuration is what is left, less the final evaluation's estimate and one overhead per
    configuration still to run, over those configurations:

        share = (deadline - now - final - left * overhead) / left

    ``overhead`` is measured on each finished run (its wall time less its report's ``elapsed_seconds``: the
    largest so far), and ``final`` is ``evaluations`` processes of that overhead plus the runs' own measured
    validation (``validation_seconds``) scaled by ``evaluated`` (how many validation sets' worth of data the
    final evaluation reads). Before the first run is measured both are 0: the first configuration gets
    seconds / count, and the later ones pay for what it showed. A share never falls below ``floor`` seconds
    (then the search overruns, and :attr:`overrun` says so). Example::

        budget = SearchBudget(45 * 60, count=5, evaluations=2, evaluated=3.0)
        for name in names:
            started = time.monotonic(); report = train(name, budget.share())
            budget.observe(time.monotonic() - started, report)
    """

    def __init__(self, seconds: float, count: int, evaluations: int = 1, evaluated: float = 1.0,
                 floor: float = 10.0, clock=None):
        self.clock = clock or time.monotonic
        self.deadline = self.clock() + seconds
        self.left = count
        self.evaluations, self.evaluated, self.floor = evaluations, evaluated, floor
        self.overhead = 0.0
        self.validation = 0.0
        self.overrun = False

    @property
    def final(self) -> float:
        """Seconds the final evaluation is expected to take (the measured share kept back for it)."""
        return self.evaluations * self.overhead + self.evaluated * self.validation

    def share(self) -> float:
        """The --time-budget of the next configuration, in seconds."""
        free = self.deadline - self.clock() - self.final - self.left * self.overhead
        share = free / max(self.left, 1)
        if share < self.floor:
            self.overrun = True
        return max(share, self.floor)

    def observe(self, wall_seconds: float, report: dict) -> None:
        """A configuration ran for ``wall_seconds`` (its whole process) and reported ``report``."""
        self.left -= 1
        self.overhead = max(self.overhead, wall_seconds - report.get("elapsed_seconds", wall_seconds))
        self.validation = max(self.validation, report.get("validation_seconds", 0.0))
