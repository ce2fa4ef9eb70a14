"""Adding problem at T = 100 and 200: LSTM and GRU reach test MSE < 0.01 while the tanh RNN stays near the
baseline 0.167 (target: its MSE >= 0.1), each configuration within 10 minutes on this 2-core CPU.

Runs `rnnkit bench memory-tasks --tasks adding` for tanh RNN, LSTM and GRU with equal parameter budgets (LSTM
hidden 128, about 67.7k parameters; the RNN gets 258 units and the GRU 148). Settings and why:

* hidden 128 for the LSTM, as in Arjovsky et al. (2016, the uRNN paper's LSTM baseline on this task), whose
  LSTM solved the adding problem at T = 100, 200, 400 and 750 while the tanh RNN stayed at the baseline.
* batch 32, fresh sequences every step. Arjovsky et al. used batch 20 (RMSProp, lr 1e-3); on this CPU a step
  costs time in proportion to the batch (the per-step matrix products are too small to saturate it), so a
  small batch buys the most updates per second, and 32 keeps Adam's moment estimates steady.
* Adam, lr 1e-3 (Kingma & Ba's default; the rate Arjovsky et al. and most later replications use for the LSTM).
* global gradient-norm clipping at 1 (Pascanu et al. 2013): the tanh RNN's gradient can explode on long
  sequences; clipping keeps every cell's updates bounded without changing their direction.
* LSTM forget-gate bias +1 (Gers et al. 2000; Jozefowicz et al. 2015 found it closes most of the LSTM's gap to
  the GRU): at PyTorch's initialisation the forget gate sits near 0.5, which halves the cell-state gradient at
  every step (see benchmarks/gradient_flow.py: 10^44 over 200 steps, against 10^18 with +1), so the LSTM
  would need far longer to find the two markers.
* a time budget of 570 s per configuration (10 minutes less a margin for evaluation and start-up), at most
  100,000 steps, held-out MSE on 1,000 fixed sequences every 200 steps, stopping early at MSE <= 0.001.

At about 60-90 ms a step for T = 200 (LSTM, 2 threads) the budget allows 6,000-9,000 steps; the LSTM in
Arjovsky et al.'s figure left the baseline after a few thousand steps of batch 20 at T = 200.

    PYTHONPATH=src .venv/bin/python benchmarks/memory_tasks.py            # the full run (35-60 minutes on 2 cores)
    PYTHONPATH=src .venv/bin/python benchmarks/memory_tasks.py --smoke    # T = 10, 20 and 5 steps: does it start?

``--recipe adding`` (rnnkit's named recipe, ``rnnkit recipes``) runs ``rnnkit bench memory-tasks`` with the recipe's
settings as its flags (the LSTM at T = 200, 570 s), and a full run (not --smoke) writes the LSTM's test MSE at the
recipe's length into the recipe's [measured] table. The held-out set that ``memory-tasks`` measures (1,000 fixed
sequences of their own seed) is validation: the early stop at MSE 0.001 reads it. The score is the model as it
stopped on 1,000 test sequences of another seed (``TEST_SEED``), which nothing read before.

    PYTHONPATH=src .venv/bin/python benchmarks/memory_tasks.py --recipe adding
    PYTHONPATH=src .venv/bin/python benchmarks/memory_tasks.py --recipe adding --smoke   # T = 10, 5 steps
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_common import add_recipe_argument, cpu_model, record_recipe
from rnnkit.diagnose.fresh_training import TEST_SEED
from rnnkit.tasks.recipe import setting_flags

ROOT = Path(__file__).resolve().parents[1]
SOLVED = 0.01  # LSTM and GRU must reach this test MSE
NEAR_BASELINE = 0.1  # the tanh RNN must stay at or above this (the baseline is 1/6)
TIME_LIMIT = 600  # seconds per configuration
SETTINGS = [
    "--tasks", "adding", "--cells", "rnn,lstm,gru", "--hidden", "128", "--batch-size", "32", "--lr", "1e-3",
    "--clip", "1", "--forget-bias", "1", "--eval-every", "200", "--eval-size", "1000", "--stop-below", "0.001",
    "--seed", "0",
]


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (parsing them touches no data: a wrong --recipe is one line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="T = 10, 20, five steps per configuration")
    parser.add_argument("--out", default=None, help="results folder. Default: runs/bench-memory-tasks[-RECIPE]")
    add_recipe_argument(parser, "memory_tasks.py")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.out is None:
        args.out = str(ROOT / "runs" / ("bench-memory-tasks" + (f"-{args.recipe}" if args.recipe else "")))
    if args.recipe:
        named_recipe(args)
        return

    length = (["--lengths", "10,20", "--steps", "5", "--time-budget", "60", "--eval-every", "5", "--eval-size", "64"]
              if args.smoke else ["--lengths", "100,200", "--steps", "100000", "--time-budget", "570"])
    command = ["bench", "memory-tasks", *SETTINGS, *length, "--out", args.out, "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    start = time.monotonic()
    # progress lines go to stderr (inherited), the JSON report to stdout
    done = subprocess.run([sys.executable, "-m", "rnnkit", *command], check=True, text=True, stdout=subprocess.PIPE)
    report = json.loads(done.stdout)
    minutes = (time.monotonic() - start) / 60

    verdicts = []
    for row in report["results"]:
        in_time = row["seconds"] <= TIME_LIMIT
        good = row["metric"] < SOLVED if row["cell"] in ("lstm", "gru") else row["metric"] >= NEAR_BASELINE
        wanted = "< 0.01" if row["cell"] in ("lstm", "gru") else ">= 0.1 (near the baseline)"
        verdicts.append(good and in_time)
        print(f"adding T={row['length']:<4} {row['cell']:<4} H={row['hidden_size']:<4} {row['parameters']:,} params: "
              f"test MSE {row['metric']:.4g} (wanted {wanted}; baseline {row['baseline']:.3f}) after "
              f"{row['steps']:,} steps, {row['seconds']:.0f}s ({row['stop_reason']}): "
              f"{'met' if good and in_time else 'NOT met'}", flush=True)
    print(f"plot: {report['plot']}; results: {report['results_file']}")
    print(f"adding problem target: {'met' if all(verdicts) else 'NOT met'} ({minutes:.1f} min in all)")


def named_recipe(args) -> None:
    """The recipe's run of `rnnkit bench memory-tasks`; its cell's test MSE at the recipe's length recorded."""
    from rnnkit.tasks.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    smoke = ["--lengths", "10", "--steps", "5", "--time-budget", "60", "--eval-every", "5", "--eval-size", "64"] \
        if args.smoke else []  # the last of a repeated flag counts
    out = args.out + ("-smoke" if args.smoke else "")
    command = ["bench", "memory-tasks", *setting_flags(recipe.settings), *smoke, "--out", out, "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    done = subprocess.run([sys.executable, "-m", "rnnkit", *command], text=True, stdout=subprocess.PIPE)
    if done.returncode:  # rnnkit has printed its one-line error on stderr
        sys.exit(f"error: `rnnkit bench memory-tasks` exited with status {done.returncode}")
    rows = json.loads(done.stdout)["results"]
    length = 10 if args.smoke else int(str(recipe.settings["lengths"]).split(",")[-1])
    cell = str(recipe.settings["cells"]).split(",")[0]
    row = next(row for row in rows if row["cell"] == cell and row["length"] == length)
    target = SOLVED
    score = row["test_metric"]
    met = score < target and row["seconds"] <= TIME_LIMIT
    print(f"recipe {args.recipe}: {cell} T={length} test MSE {score:.4g} on {row['test_size']:,} fresh test sequences "
          f"(held-out {row['metric']:.4g}; baseline {row['baseline']:.3f}) after {row['steps']:,} steps, "
          f"{row['seconds']:.0f}s ({row['stop_reason']}); target < {target}: {'met' if met else 'NOT met'}"
          + ("  [SMOKE: not a result]" if args.smoke else ""), flush=True)
    test = f"test ({row['test_size']} fresh sequences of their own seed {TEST_SEED}), MSE at T = {length}"
    chosen_on = (f"valid (the stop rule reads memory-tasks' {row['config']['eval_size']} held-out sequences; the model "
                 "as it stopped is scored)")
    runs = "rnnkit " + " ".join(command)
    print(json.dumps({
        "benchmark": "adding", "mode": "recipe", "recipe": args.recipe, "settings": recipe.settings, "cell": cell,
        "length": length, "test_mse": score, "valid_mse": row["metric"], "baseline": row["baseline"],
        "steps": row["steps"], "seconds": row["seconds"], "stop_reason": row["stop_reason"], "target": target,
        "met": met, "chosen_on": chosen_on, "scored_on": test, "command": f"python {recipe.benchmark}", "runs": runs,
        "cpu": cpu_model(), "smoke": args.smoke,
    }), flush=True)
    record_recipe(args.recipe, score, split=test, chosen_on=chosen_on, smoke=args.smoke, runs=runs, steps=row["steps"],
                  training_seconds=row["seconds"])

if __name__ == "__main__":
    main()
