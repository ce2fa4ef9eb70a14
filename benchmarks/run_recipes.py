"""Measure named recipes one after the other, each alone on the machine: the queue for an idle machine.

Each recipe's benchmark script (``python benchmarks/SCRIPT.py --recipe NAME``) trains for the recipe's budget with
two threads and writes its score into the recipe; two at once on two cores would ruin both, so this runs them in
sequence, and before each one waits until the machine is idle (the 1-minute load average below ``--max-load``)
rather than measure beside someone else's job. What each run printed goes to ``--log DIR/NAME.out`` and ``.err``,
and one line per recipe (start, end, exit status, the load when it started) to ``DIR/queue.log``.

    PYTHONPATH=src .venv/bin/python benchmarks/run_recipes.py --unmeasured --dry-run   # the plan and its hours
    PYTHONPATH=src .venv/bin/python benchmarks/run_recipes.py --unmeasured             # measure what is missing
    PYTHONPATH=src .venv/bin/python benchmarks/run_recipes.py jsb-nade adding           # these, in this order
    PYTHONPATH=src .venv/bin/python benchmarks/run_recipes.py --smoke    # every script's --recipe path, a few steps

Shortest first by default (``--order budget``), so that an interrupted queue has measured the most recipes; a
recipe whose script fails is reported and the queue goes on. Ctrl-C stops the running script (it keeps nothing
half-written: a recipe's [measured] table is only written at the end of its run) and the queue.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IDLE_LOAD = 0.5  # the 1-minute load average under which the machine counts as idle
WAIT_LIMIT = 1800  # seconds to wait for an idle machine before measuring anyway, saying so


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="recipes to measure, in this order (default: all)")
    parser.add_argument("--unmeasured", action="store_true", help="only the recipes with no [measured] table yet")
    parser.add_argument("--order", choices=("budget", "name", "given"), default=None,
                        help="budget: shortest first (the default without names); name; given: as listed (the "
                             "default with names)")
    parser.add_argument("--max-load", type=float, default=IDLE_LOAD,
                        help=f"wait before each run until the 1-minute load average is below this (default {IDLE_LOAD})")
    parser.add_argument("--wait-limit", type=float, default=WAIT_LIMIT,
                        help=f"seconds to wait for that before measuring anyway (default {WAIT_LIMIT}; the log says so)")
    parser.add_argument("--log", default=str(ROOT / "runs" / "recipe-queue"), help="folder of the runs' output")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (commands, minutes) and run nothing")
    parser.add_argument("--smoke", action="store_true",
                        help="each script's --smoke: a few steps through the whole --recipe path, nothing recorded, "
                             "no waiting for an idle machine")
    return parser


def plan(names: list[str], unmeasured: bool, order: str | None) -> list:
    """The recipes to measure, in order: one line naming the unknown names and the known ones, if any."""
    from rnnkit.errors import InputError
    from rnnkit.tasks.recipe import all_recipes, load_recipe

    try:
        recipes = [load_recipe(name) for name in names] if names else all_recipes()
    except InputError as error:
        sys.exit(f"error: {error}")
    if unmeasured:
        recipes = [recipe for recipe in recipes if recipe.measured is None]
    order = order or ("given" if names else "budget")
    if order == "budget":
        recipes.sort(key=lambda recipe: (recipe.budget_minutes, recipe.name))
    elif order == "name":
        recipes.sort(key=lambda recipe: recipe.name)
    return recipes


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_idle(max_load: float, limit: float, log) -> float:
    """Wait (up to ``limit`` seconds) until the 1-minute load average is below ``max_load``; the load then."""
    deadline = time.monotonic() + limit
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        time.sleep(15)
        load = load_average()
    if load >= max_load:
        log(f"note: the load stayed at {load:.2f} (>= {max_load}) for {limit:.0f}s; measuring anyway")
    return load


def main() -> None:
    args = build_parser().parse_args()
    recipes = plan(args.names, args.unmeasured, args.order)
    total = sum(recipe.budget_minutes for recipe in recipes)
    for recipe in recipes:
        print(f"{recipe.budget_minutes:>5g} min  {recipe.name:20} python {recipe.benchmark}")
    print(f"{len(recipes)} recipes, {total:g} minutes of training ({total / 60:.1f} h) plus their evaluations")
    if args.dry_run or not recipes:
        return
    log_dir = Path(args.log)
    log_dir.mkdir(parents=True, exist_ok=True)
    queue_log = log_dir / "queue.log"

    def log(line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC  {line}"
        print(stamped, flush=True)
        with queue_log.open("a", encoding="utf-8") as file:
            file.write(stamped + "\n")

    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    failed = []
    for recipe in recipes:
        load = load_average() if args.smoke else wait_for_idle(args.max_load, args.wait_limit, log)
        script, *flags = recipe.benchmark.split()
        flags += ["--smoke"] if args.smoke else []
        log(f"start {recipe.name} (load {load:.2f}): python {' '.join([script, *flags])}")
        start = time.monotonic()
        with (log_dir / f"{recipe.name}.out").open("w") as out, (log_dir / f"{recipe.name}.err").open("w") as err:
            try:
                code = subprocess.run([sys.executable, str(ROOT / script), *flags], cwd=ROOT, env=environment,
                                      stdout=out, stderr=err).returncode
            except KeyboardInterrupt:
                log(f"interrupted during {recipe.name}; the queue stops")
                sys.exit(130)
        log(f"end {recipe.name}: exit {code} after {(time.monotonic() - start) / 60:.1f} min")
        if code:
            failed.append(recipe.name)
    if failed:
        sys.exit(f"error: {len(failed)} of {len(recipes)} recipe runs failed ({', '.join(failed)}); see {log_dir}")


if __name__ == "__main__":
    main()
