"""Selective copying at L = 512, K = 16, vocabulary 16: token accuracy of the six cells side by side; issue 13's
target is >= 95% within 20 minutes for at least one of the new cells (mingru, minlstm, rglru).

Every cell trains a fresh model (rnnkit.diagnose.selective_copy): embedding, two stacked rnnkit.nn.Recurrent
layers, a linear readout of the 16 marker positions; engine "auto" (the scan engine for the linear cells, oneDNN
for the torch cells). Settings and why:

* equal parameter budgets, the LSTM's at H = 128 (268k parameters; tanh RNN and minGRU get H = 255, GRU 148,
  minLSTM and RG-LRU 208), so that a cell wins by its structure, not its size (--hidden sets the budget: the
  widths above cost about 0.4-1.7 s a step on a loaded 2-core machine, so a smaller budget buys more steps);
* two layers: a linear recurrence's gates read only the input, so the first layer can mark what to keep and the
  second can keep it (Feng et al. 2024 use stacked layers for the same task);
* batch 64 of fresh sequences every step, Adam at 3e-3, global gradient-norm clipping at 1;
* the held-out token accuracy on 512 fixed sequences every 100 steps; a cell stops early at 99%, or after
  --minutes of training.

    PYTHONPATH=src .venv/bin/python benchmarks/selective_copy.py                        # 6 cells x 20 min at most
    PYTHONPATH=src .venv/bin/python benchmarks/selective_copy.py --cells mingru,lstm --minutes 10 --hidden 64
    PYTHONPATH=src .venv/bin/python benchmarks/selective_copy.py --smoke               # L = 16, K = 2, a few steps

``--recipe selective-copy`` (rnnkit's named recipe, ``rnnkit recipes``) trains the recipe's one model (its
settings are SelectiveCopyConfig's fields: a residual minGRU stack, 20 minutes). The held-out set that the early
stop at 99% reads is the validation set; the score is the token accuracy of the model as it stopped on a separate
test set of TEST_SIZE fresh sequences from their own seed, and a full run (not --smoke) writes it into the recipe's
[measured] table (--smoke: L = 16, K = 2, a few steps, nothing recorded):

    PYTHONPATH=src .venv/bin/python benchmarks/selective_copy.py --recipe selective-copy
"""

import argparse
import json
import time

import torch

from bench_common import add_recipe_argument, cpu_model, record_recipe
from rnnkit.diagnose.fresh_training import train_on_fresh_batches
from rnnkit.diagnose.selective_copy import (SelectiveCopy, SelectiveCopyConfig, SelectiveCopyModel, flush_denormals,
                                            matched_hidden_sizes, token_accuracy, train_selective_copy)

CELLS = "rnn_tanh,lstm,gru,mingru,minlstm,rglru"
NEW_CELLS = ("mingru", "minlstm", "rglru")
TARGET_ACCURACY, TARGET_MINUTES = 0.95, 20
LENGTH, TOKENS, VOCAB, LAYERS, REFERENCE_HIDDEN = 512, 16, 16, 2, 128
# A recipe's test set: fresh sequences from a seed of their own, neither the training stream's nor the held-out
# (validation) set's that the early stop reads.
TEST_SIZE, TEST_SEED = 2048, 20261207


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (parsing them touches no data: a wrong --recipe is one line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=CELLS, help=f"comma-separated registered cells (default {CELLS})")
    parser.add_argument("--minutes", type=float, default=TARGET_MINUTES, help="training budget per cell")
    parser.add_argument("--hidden", type=int, default=REFERENCE_HIDDEN,
                        help="the LSTM's width, which fixes every cell's parameter budget")
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="L = 16, K = 2, 6 steps per cell: does it start?")
    parser.add_argument("--json", action="store_true", help="print one JSON line with every row at the end")
    add_recipe_argument(parser, "selective_copy.py")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.recipe:
        named_recipe(args)
        return
    cells = [c for c in args.cells.split(",") if c]

    length, tokens, hidden = (16, 2, 8) if args.smoke else (LENGTH, TOKENS, args.hidden)
    sizes = matched_hidden_sizes(hidden, cells, vocab=VOCAB, num_layers=args.layers)
    print(f"selective copying L={length} K={tokens} V={VOCAB}, {args.layers} layers, equal budgets (LSTM H={hidden}): "
          + ", ".join(f"{c} H={h}" for c, h in sizes.items()), f"; {torch.get_num_threads()} threads", flush=True)
    rows = []
    start = time.monotonic()
    for cell in cells:
        config = SelectiveCopyConfig(cell=cell, length=length, tokens=tokens, vocab=VOCAB, hidden_size=sizes[cell],
                                     num_layers=args.layers, batch_size=args.batch_size, lr=args.lr, clip=1.0,
                                     steps=6 if args.smoke else 1_000_000, time_budget=args.minutes * 60,
                                     eval_every=3 if args.smoke else 100, eval_size=32 if args.smoke else 512,
                                     stop_above=0.99, seed=args.seed)
        rows.append(train_selective_copy(config, log=lambda line: print(line, flush=True), log_every_seconds=60))

    print(f"\n{'cell':<9} {'H':>4} {'params':>8} {'accuracy':>9} {'steps':>7} {'minutes':>8}  stopped by")
    for row in rows:
        print(f"{row['cell']:<9} {row['hidden_size']:>4} {row['parameters']:>8,} {row['metric']:>9.4f} "
              f"{row['steps']:>7,} {row['seconds'] / 60:>8.1f}  {row['stop_reason']}")
    reached = [row for row in rows if row["cell"] in NEW_CELLS and row["metric"] >= TARGET_ACCURACY
               and _minutes_to(row, TARGET_ACCURACY) <= TARGET_MINUTES]
    print(f"baseline (chance) {rows[0]['baseline']:.4f}; target >= {TARGET_ACCURACY:.0%} within {TARGET_MINUTES} min "
          f"for a new cell: {'met by ' + ', '.join(r['cell'] for r in reached) if reached else 'NOT met'} "
          f"({(time.monotonic() - start) / 60:.1f} min in all)")
    if args.json:
        print(json.dumps({"benchmark": "selective_copy", "rows": rows}))


def named_recipe(args) -> None:
    """The recipe's model: trained on fresh batches until its stop rule (the held-out set: validation), then the
    weights of its best held-out measurement scored once on TEST_SIZE test sequences; the score recorded in the
    recipe (not in a smoke run)."""
    from rnnkit.tasks.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    settings = dict(recipe.settings)
    if args.smoke:  # does it start? the recipe's model at toy size
        settings.update(length=16, tokens=2, hidden_size=8, steps=6, eval_every=3, eval_size=32)
    config = SelectiveCopyConfig(**settings)
    task = SelectiveCopy(tokens=config.tokens, vocab=config.vocab)
    torch.manual_seed(config.seed)  # as train_selective_copy does, so that the model is the library's run
    model = SelectiveCopyModel(config.cell, config.vocab, config.hidden_size, config.num_layers, config.tokens,
                               engine=config.engine, block=config.block)
    name = f"selective copy L={config.length} K={config.tokens} {config.cell} ({config.block}, recipe {args.recipe})"
    print(f"{name}: {torch.get_num_threads()} threads", flush=True)
    with flush_denormals():  # subnormal gradients on the noise positions: 8x slower steps without it
        row = train_on_fresh_batches(model, task, config, target=config.stop_above, name=name,
                                     log=lambda line: print(line, flush=True), log_every_seconds=60, keep_best=True)
    test_size = 64 if args.smoke else TEST_SIZE
    inputs, targets = task.batch(test_size, config.length, torch.Generator().manual_seed(TEST_SEED))
    model.eval()
    with torch.no_grad():
        test = token_accuracy(model, inputs, targets)
    target = float(recipe.target.split()[1].rstrip("%")) / 100
    met = test >= target
    command = f"python benchmarks/selective_copy.py --recipe {args.recipe}"
    print(f"recipe {args.recipe}: test token accuracy {test:.2%} on {test_size} sequences of the best held-out "
          f"checkpoint ({row['best_metric']:.2%} at step {row['best_step']:,}; {row['metric']:.2%} at the stop: "
          f"{row['stop_reason']}, {row['steps']:,} steps, {row['seconds'] / 60:.1f} min); target >= "
          f"{target:.0%}: {'met' if met else 'NOT met'}" + ("  [SMOKE: not a result]" if args.smoke else ""), flush=True)
    print(json.dumps({
        "benchmark": "selective_copy", "mode": "recipe", "recipe": args.recipe, "settings": settings,
        "test_token_accuracy": test, "test_sequences": test_size, "valid_token_accuracy": row["best_metric"],
        "best_step": row["best_step"], "last_valid_token_accuracy": row["metric"],
        "steps": row["steps"], "training_minutes": round(row["seconds"] / 60, 2), "stop_reason": row["stop_reason"],
        "parameters": row["parameters"], "target": target, "met": met,
        "chosen_on": f"valid (the held-out {config.eval_size} sequences: the best measurement's weights, and the stop "
                     f"at {config.stop_above})",
        "scored_on": f"test ({test_size} fresh sequences, seed {TEST_SEED}; the best held-out checkpoint)",
        "command": command, "cpu": cpu_model(), "threads": torch.get_num_threads(), "smoke": args.smoke,
    }), flush=True)
    record_recipe(args.recipe, round(100 * test, 2), split=f"test ({test_size} fresh sequences of their own seed "
                  f"{TEST_SEED}, token accuracy %)", chosen_on=f"valid (the held-out {config.eval_size} sequences: "
                  f"the best measurement's weights, and the early stop at {config.stop_above})", smoke=args.smoke,
                  training_minutes=round(row["seconds"] / 60, 2), steps=row["steps"])


def _minutes_to(row: dict, accuracy: float) -> float:
    """Minutes until the held-out accuracy first reached ``accuracy`` (inf if never)."""
    return next((seconds / 60 for _, seconds, value in row["curve"] if value >= accuracy), float("inf"))


if __name__ == "__main__":
    main()
