"""``rnnkit bench memory-tasks``: the adding problem, copy memory and selective copying for any registered cells.

    rnnkit bench memory-tasks [--tasks adding,copy,selective-copy] [--lengths 100,200] [--cells rnn,lstm,gru]
                              [--hidden 128] [--steps N] [--time-budget SECONDS] [--batch-size 32] [--lr 1e-3]
                              [--clip 1] [--forget-bias 1] [--stop-below X] [--stop-above A] [--engine auto]
                              [--out DIR] [--json]

Every (task, T, cell) configuration trains a fresh model (:mod:`rnnkit.diagnose.memory_bench`); the cells get
hidden sizes with equal parameter budgets. Prints a table (task, T, cell, hidden, params, final metric,
baseline, steps, seconds) and writes ``DIR/memory_tasks.png`` (metric against T) and ``DIR/results.json``
(every row with its learning curve). A first Ctrl-C (or SIGTERM) stops the training under way at its next
step; the rows that finished are kept in both files, and the command exits with 130 (143) and one line.
"""

import sys
import time

import click

from rnnkit.cli.interrupts import exit_status, last_signal, message
from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import (
    CommaList,
    FiniteFloat,
    ForgetBias,
    LengthList,
    OutputPath,
    Positive,
    PositiveFloat,
    Seed,
    cell_choices,
    engine_option,
)
from rnnkit.train.outputs import check_output, check_output_directory


@click.group()
def command() -> None:
    """Benchmarks of recurrent cells: the long-term-dependency tasks."""


@command.command("memory-tasks")
@click.option("--tasks", type=CommaList(("adding", "copy", "selective-copy"), "task"), default="adding,copy",
              show_default=True,
              help="adding: the adding problem (Hochreiter & Schmidhuber 1997); copy: copy memory (Arjovsky et al. "
                   "2016); selective-copy: 16 tokens scattered in noise, then recalled in order (Gu & Dao 2023).")
@click.option("--lengths", type=LengthList(), default="100,200", show_default=True,
              help="Sequence lengths T (the adding problem needs T >= 2).")
@click.option("--cells", type=CommaList(cell_choices(), "cell"), default="rnn,lstm,gru", show_default=True,
              help="Registered cells (rnnkit.nn.cell_names()), e.g. rnn,lstm,gru,mingru.")
@click.option("--hidden", type=Positive, default=128, show_default=True,
              help="The LSTM's hidden size; it fixes the parameter budget, the other cells get the size nearest to it.")
@click.option("--steps", type=Positive, default=2000, show_default=True, help="Most optimizer steps per configuration.")
@click.option("--time-budget", type=PositiveFloat, metavar="SECONDS", help="Most seconds of training per configuration.")
@click.option("--batch-size", type=Positive, default=32, show_default=True, help="Sequences per step (fresh every step).")
@click.option("--lr", type=PositiveFloat, default=1e-3, show_default=True, help="Adam's learning rate.")
@click.option("--clip", type=FiniteFloat(min=0), default=1.0, show_default=True,
              help="Clip the gradient's global norm to this (0: no clipping).")
@click.option("--forget-bias", type=ForgetBias, default=1.0, show_default=True,
              help="Added to the LSTM's forget-gate bias after PyTorch's init (Gers et al. 2000); 0: PyTorch's init.")
@click.option("--eval-every", type=Positive, default=100, show_default=True, help="Steps between held-out measurements.")
@click.option("--eval-size", type=Positive, default=1000, show_default=True, help="Held-out sequences per (task, T).")
@click.option("--stop-below", type=PositiveFloat, metavar="X",
              help="Stop an adding or copy configuration once its held-out metric is <= X.")
@click.option("--stop-above", type=FiniteFloat(0, 1), metavar="A",
              help="Stop a selective-copy configuration once its held-out token accuracy is >= A.")
@click.option("--seed", type=Seed, default=0, show_default=True, help="Seed of initialisation and training data.")
@engine_option("Every cell trains on it; one it cannot run is refused before any training.")
@click.option("--out", type=OutputPath("bench-results"), metavar="DIR", help="Where memory_tasks.png and results.json go. Default: runs/memory-tasks-DATE-TIME.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar and no progress lines on stderr.")
def memory_tasks(tasks: list[str], lengths: list[int], cells: list[str], hidden: int, out: str | None,
                 as_json: bool, quiet: bool, **options) -> None:
    """Train the cells (equal parameter budgets) on the adding problem, copy memory and selective copying at each
    length T; print a table of final metric against the no-memory baseline, and plot it against T."""
    from rnnkit.diagnose.memory_bench import (
        check_engine,
        check_fits_in_memory,
        check_lengths,
        check_lengths_fit,
        equal_budget_sizes,
        run_memory_tasks,
    )
    from rnnkit.files import check_distinct_outputs, forget_created_outputs, make_directory, write_output
    from rnnkit.train.progress import log_line, progress_shown

    check_lengths(tasks, lengths)
    out_dir = check_output_directory(out or time.strftime("runs/memory-tasks-%Y%m%d-%H%M%S"), "--out")
    check_fits_in_memory(hidden)
    check_lengths_fit(lengths, hidden, options["batch_size"], options["eval_size"])
    check_engine(cells, options["engine"])
    make_directory(out_dir, "--out")  # now, so that a path the system refuses costs no training
    files = {"memory_tasks.png": out_dir / "memory_tasks.png", "results.json": out_dir / "results.json"}
    for name, path in files.items():  # an --out that exists may hold a folder, a link or a device by those names
        check_output(path, "--out", example=name)
    check_distinct_outputs((f"--out's {name}", path) for name, path in files.items())
    log = None if quiet else log_line  # beside the Trainer's progress bar
    sizes = equal_budget_sizes(tasks, hidden, cells)
    if log:
        for task in tasks:
            shown = ", ".join(f"{cell} H={size}" for cell, size in sizes[task].items())
            log(f"{task}: equal parameter budgets (the LSTM's at H={hidden}): {shown}")
    with progress_shown(not (as_json or quiet)):  # bars (configurations, each training's steps) on a terminal only
        report = run_memory_tasks(tasks, lengths, cells, sizes, out_dir, {**options, "clip": options["clip"] or None},
                                  log=log)
    results_file = out_dir / "results.json"
    report["results_file"] = str(results_file)
    write_output(results_file, (to_json(report, indent=1) + "\n").encode())
    click.echo(to_json(report) if as_json else f"{_table(report['results'])}\nplot: {report['plot']}\n"
                                               f"results: {results_file}")
    if any(row["stop_reason"] == "interrupted" for row in report["results"]):
        # The rows that finished are whole and worth keeping (a benchmark may have run for hours): unlike an
        # interrupted command's other outputs, they stay; the status says that the run did not complete.
        forget_created_outputs()
        number = last_signal()
        click.echo(f"error: {message(number)} after {len(report['results'])} of "
                   f"{len(tasks) * len(lengths) * len(cells)} configurations; the finished ones are in "
                   f"{results_file} and {report['plot']}", err=True)
        sys.exit(exit_status(number))


def _table(rows: list[dict]) -> str:
    header = ("task", "T", "cell", "hidden", "params", "metric", "final", "baseline", "steps", "seconds", "stopped by")
    lines = [[row["task"], str(row["length"]), row["cell"], str(row["hidden_size"]), f"{row['parameters']:,}",
              row["metric_name"], f"{row['metric']:.4g}", f"{row['baseline']:.4g}", f"{row['steps']:,}",
              f"{row['seconds']:.1f}", row["stop_reason"]] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in [list(header), *lines])
