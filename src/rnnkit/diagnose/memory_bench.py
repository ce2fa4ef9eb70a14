"""The long-term-dependency benchmark (``rnnkit bench memory-tasks``): every (task, T, cell) trained from scratch
with the cells at equal parameter budgets; the result rows, their plot and their JSON file.

The tasks are the adding problem and copy memory (:mod:`rnnkit.diagnose.memory_tasks`) and selective copying
(:mod:`rnnkit.diagnose.selective_copy`). Every cell gets the hidden size whose parameter count is nearest to
an LSTM's of the given width (:func:`equal_budget_sizes`)::

    sizes = equal_budget_sizes(["adding", "selective-copy"], 128, ["lstm", "mingru"])
    report = run_memory_tasks(["adding"], [100, 200], ["lstm", "mingru"], sizes, Path("runs/bench"),
                              {"steps": 2000, "seed": 0})         # and runs/bench/memory_tasks.png
    report["results"][0]["metric"]          # the last held-out measurement of adding, T=100, LSTM
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rnnkit.checks import check_fits_in_memory as check_memory
from rnnkit.checks import check_training_memory
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.models.recurrent import check_runs_on
from rnnkit.train.progress import tracked

from . import selective_copy
from .memory_tasks import REFERENCE_CELL, TASKS, MemoryTaskConfig, matched_hidden_sizes, memory_model_parameter_count
from .memory_tasks import train_memory_task
from .plots import plot_memory_tasks

# What selective copying takes of the settings of the adding problem and copy memory: all but these.
NOT_FOR_SELECTIVE_COPY = ("forget_bias", "stop_below")
# ... and what the adding problem and copy memory take of selective copying's: all but this.
NOT_FOR_MEMORY_TASKS = ("stop_above",)


def check_lengths(tasks: list[str], lengths: list[int]) -> None:
    """One line for a length too short for a task (selective copying takes any: its config says so)."""
    for task in tasks:
        if task == selective_copy.TASK_NAME:
            continue
        too_short = [t for t in lengths if t < TASKS[task].min_length]
        if too_short:
            raise InputError(f"--lengths {too_short[0]} is too short for the {task} task; "
                             f"use T >= {TASKS[task].min_length}")


def check_fits_in_memory(hidden: int) -> None:
    """One line when training the LSTM of ``hidden`` units, whose budget every cell gets, cannot fit in memory
    (its recurrent weights dominate every cell's count)."""
    check_training_memory(memory_model_parameter_count(REFERENCE_CELL, hidden, 1, 1), 4, "lower --hidden",
                          what="training each cell")


# What one step of one sequence costs, in floats of 4 bytes: its inputs, targets and outputs, and the hidden
# units: H a step for a held-out sequence (its outputs), about 12 H for a training one (gates, states, gradients).
STEP_FLOATS = 16


def check_lengths_fit(lengths: list[int], hidden: int, batch_size: int, eval_size: int) -> None:
    """One line, before any sequence is drawn, when the held-out set and a training batch of the longest T
    cannot fit in this machine's memory (--lengths 1000000000 would ask for tens of GB)."""
    longest = max(lengths)
    needed = 4 * longest * (eval_size * (STEP_FLOATS + hidden) + batch_size * (STEP_FLOATS + 12 * hidden))
    check_memory(needed, f"--lengths {longest:,} (--eval-size {eval_size:,} held-out and --batch-size {batch_size:,} "
                         f"training sequences of --hidden {hidden:,})", "give shorter --lengths or a smaller "
                         "--eval-size")


def check_engine(cells: list[str], engine: str) -> None:
    """One line, before any training (and before the command makes its --out), when ``engine`` cannot run one
    of the cells (the layer's own sentence), or when matplotlib, which draws the benchmark's plot, is missing."""
    require("matplotlib.figure", "viz")
    for cell in cells:
        check_runs_on(cell, engine)


def equal_budget_sizes(tasks: list[str], hidden: int, cells: list[str]) -> dict[str, dict[str, int]]:
    """Task -> cell -> the hidden size that gives the cell the parameter budget of an LSTM of ``hidden``."""
    return {task: selective_copy.matched_hidden_sizes(hidden, cells) if task == selective_copy.TASK_NAME
            else matched_hidden_sizes(task, hidden, cells) for task in tasks}


def run_memory_tasks(tasks: list[str], lengths: list[int], cells: list[str], sizes: dict[str, dict[str, int]],
                     out_dir: Path, settings: dict, log: Callable[[str], None] | None = None) -> dict:
    """Train every (task, T, cell) of ``sizes``; draw ``out_dir/memory_tasks.png``: the final metric against T
    beside each task's no-memory baseline.

    Args:
        settings: the training settings shared by every configuration, by the names of
            :class:`~rnnkit.diagnose.memory_tasks.MemoryTaskConfig` and
            :class:`~rnnkit.diagnose.selective_copy.SelectiveCopyConfig` (each takes the ones it knows).

    Every configuration trains with the Trainer; a first Ctrl-C (SIGINT) or SIGTERM stops the one training now
    (a row stopped by "interrupted") and the benchmark with it: the plot and the rows so far are kept.

    Returns:
        ``{"results": [row per configuration, with its learning curve], "plot": path}``.
    """
    require("matplotlib.figure", "viz")  # the plot comes last: a missing extra is said before any training
    rows = []
    configurations = [(task, length, cell) for task in tasks for length in lengths for cell in cells]
    for task, length, cell in tracked(configurations, "configurations", unit="config"):  # a bar on a terminal
        rows.append(_train(task, length, cell, sizes[task][cell], settings, log))
        if rows[-1]["stop_reason"] == "interrupted":
            break
    baselines = {task: {t: selective_copy.SelectiveCopy().baseline() if task == selective_copy.TASK_NAME
                        else TASKS[task].baseline(t) for t in lengths} for task in tasks}
    return {"results": rows, "plot": str(plot_memory_tasks(rows, baselines, out_dir / "memory_tasks.png"))}


def _train(task: str, length: int, cell: str, hidden: int, settings: dict, log) -> dict:
    if task == selective_copy.TASK_NAME:
        shared = {k: v for k, v in settings.items() if k not in NOT_FOR_SELECTIVE_COPY}
        config = selective_copy.SelectiveCopyConfig(cell=cell, length=length, hidden_size=hidden, **shared)
        return selective_copy.train_selective_copy(config, log=log)
    shared = {k: v for k, v in settings.items() if k not in NOT_FOR_MEMORY_TASKS}
    return train_memory_task(MemoryTaskConfig(task=task, length=length, cell=cell, hidden_size=hidden, **shared),
                             log=log)
