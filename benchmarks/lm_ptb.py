"""Penn Treebank, word level: test perplexity, scored as one stream (batch 1) as the literature does.

Two recipes (--recipe):

``zaremba`` (the default; round one's, target <= 114.5, TF tutorial 115.91): Zaremba et al. (2014) "small".
2 x 200 LSTM, 200-dim embedding, 20 steps, batch 20, SGD at lr 1 halved after every epoch past the 4th, gradient
norm clipped at 5, 13 epochs, weights uniform in ±0.1, no dropout. As in the paper's code the loss is summed over
the 20 time steps and averaged over the batch (--loss-over-time sum). --minutes is only a safety net here (the 13
epochs take about 45 minutes on 2 idle cores).

``awd`` (issue 14, target <= 100; Zaremba medium 82.7 after 39 epochs): the AWD-LSTM toolbox (Merity et al. 2017)
scaled to 2 CPU cores and about an hour:

- 2 LSTM layers of 256 units with tied input and output embeddings (embedding = hidden = 256, Press & Wolf 2017):
  tying halves the parameters that the 10,000-word softmax costs and is worth several perplexity points;
- weight drop (DropConnect) 0.3 on every W_hh, one mask per forward pass, so PyTorch's fused kernel still runs;
- locked (variational) dropout 0.3 on the embeddings, between the layers and on the output, one mask per
  sequence; embedding dropout 0.1 (whole words). AWD-LSTM's own rates (0.4-0.5) are for 500 epochs; an hour gives
  10-15 here, so the rates are lower: a model that trains this briefly underfits before it overfits;
- SGD at lr 20 on the loss averaged over tokens with the global gradient norm clipped at 0.25 (AWD-LSTM: lr 30,
  clip 0.25; Zaremba's lr 1 on the loss summed over 20 steps with clip 5 is the same step), 35-step windows,
  batch 40 (larger batches than Zaremba's 20 run more tokens per second on the CPU);
- the schedule (--schedule): ``cosine`` (the default) anneals the rate to 0 over exactly the epochs that fit in
  the budget, so the run ends annealed whatever its length: the script first times 40 training steps of this
  very model (about a minute, on a slice of the validation text; test data is never touched) and sets
  --epochs = floor(0.92 x budget / time per epoch including validation), or takes --epochs N if given.
  ``plateau`` divides the rate by 4 after every epoch whose validation loss is not lower (the PyTorch word-LM
  example's rule): in a run of a dozen epochs it may never fire, leaving the rate high at the end, which is why
  it is not the default. ``--optimizer ntasgd`` keeps the rate constant and switches to averaged SGD by
  AWD-LSTM's non-monotone trigger instead (rnnkit.train.ntasgd).
- training stops at the --minutes budget in any case (default 55, so that the test scoring fits within the
  hour); the checkpoint with the lower validation loss (the best finished epoch or the final, partial one) is
  scored.

The test set is scored with ``rnnkit evaluate --batch-size 1`` (one stream, as the TF tutorial and AWD-LSTM do).
The last line of stdout is one JSON object: the scores, the budget, the commands, the CPU model.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_ptb.py                        # Zaremba small (about 45-65 min)
    PYTHONPATH=src .venv/bin/python benchmarks/lm_ptb.py --recipe awd           # AWD toolbox, 1 + 55 min + test
    PYTHONPATH=src .venv/bin/python benchmarks/lm_ptb.py --recipe awd --smoke   # a few steps: does it start?

``--recipe ptb-word`` (rnnkit's named recipe, ``rnnkit recipes``) trains with ``rnnkit train lm --recipe ptb-word``
on the same files (its settings hold no time budget: --minutes, default the recipe's 60, is the safety net), the
validation loss chooses the checkpoint, the test set is scored once as above, and a full run (not --smoke) writes
the test perplexity into the recipe's [measured] table (rnnkit.tasks.recipe.record_measurement):

    PYTHONPATH=src .venv/bin/python benchmarks/lm_ptb.py --recipe ptb-word
"""

import argparse
import json
import time
from pathlib import Path

from bench_common import add_data_argument, add_recipe_argument, cpu_model, dataset_path, record_recipe, rnnkit, recipe_budget

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"
RECIPES = {
    "zaremba": {
        "target": 114.5,
        "minutes": 75.0,  # a safety net: the 13 epochs end first
        "settings": [
            "--level", "word", "--cell", "lstm", "--layers", "2", "--hidden", "200", "--embedding", "200",
            "--dropout", "0", "--init-range", "0.1", "--seq-len", "20", "--batch-size", "20",
            "--optimizer", "sgd", "--lr", "1", "--schedule", "step", "--lr-decay", "0.5", "--decay-after", "4",
            "--clip", "5", "--loss-over-time", "sum", "--epochs", "13", "--seed", "1",
        ],
    },
    "awd": {
        "target": 100.0,
        "minutes": 55.0,
        "settings": [
            "--level", "word", "--cell", "lstm", "--layers", "2", "--hidden", "256", "--embedding", "256",
            "--tie-weights", "--dropout", "0.3", "--locked-dropout", "--embedding-dropout", "0.1",
            "--weight-drop", "0.3", "--init-range", "0.1", "--seq-len", "35", "--batch-size", "40",
            "--lr", "20", "--clip", "0.25", "--loss-over-time", "mean", "--seed", "1",
        ],
    },
}
# The optimiser part of the awd recipe: SGD with a cosine (--epochs added) or plateau schedule, or NT-ASGD at a
# constant rate.
AWD_SCHEDULES = {
    "cosine": ["--optimizer", "sgd", "--schedule", "cosine"],
    "plateau": ["--optimizer", "sgd", "--schedule", "plateau", "--lr-decay", "0.25", "--plateau-patience", "0"],
}
NTASGD = ["--optimizer", "ntasgd", "--schedule", "constant"]
TRAIN_TOKENS = 929_589  # ptb.train.txt's words and <eos> markers, as `rnnkit train lm` counts them
VALID_TOKENS = 73_760  # ptb.valid.txt's
CALIBRATION_STEPS = 40


def calibrated_epochs(settings: list[str], seconds: float, out: str, smoke: bool) -> tuple[int, dict]:
    """The whole epochs of ``settings`` that fit in ``seconds``, from the training rate of a short timed run.

    An epoch costs TRAIN_TOKENS / rate of training plus VALID_TOKENS / (3 rate) of validation (a forward pass
    only); 8% is kept for the start, the checkpoints and rate changes. The timed run validates on the first
    200 lines of the validation text only. Returns (epochs, what was measured).
    """
    valid_slice = Path(out + "-calibration-valid.txt")
    valid_slice.parent.mkdir(parents=True, exist_ok=True)
    valid_slice.write_text("".join((PTB / "ptb.valid.txt").read_text().splitlines(keepends=True)[:200]))
    steps = 3 if smoke else CALIBRATION_STEPS
    command = ["train", "lm", "--data", str(PTB / "ptb.train.txt"), "--valid-data", str(valid_slice), *settings,
               "--schedule", "constant", "--max-steps", str(steps), "--out", out + "-calibration", "--overwrite",
               "--json", "--quiet"]
    report = json.loads(rnnkit(*command))
    rate = report.get("warm_tokens_per_second", report["tokens_per_second"])  # the warm-up steps left out
    epoch_seconds = (TRAIN_TOKENS + VALID_TOKENS / 3) / max(rate, 1.0)
    epochs = max(1, int(0.92 * seconds / epoch_seconds))
    print(f"calibration: {rate:,.0f} training tokens/s over {steps} steps, about {epoch_seconds / 60:.1f} min per "
          f"epoch: {epochs} epochs in {seconds / 60:g} min", flush=True)
    return epochs, {"tokens_per_second": round(rate), "steps": steps, "epoch_minutes": round(epoch_seconds / 60, 2),
                    "command": "rnnkit " + " ".join(command)}


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (parsing them touches no data: a wrong --recipe is one line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_recipe_argument(parser, "lm_ptb.py", own=tuple(sorted(RECIPES)), default="zaremba")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget in minutes (--time-budget). Default: 75 for zaremba (a safety net "
                             "above its 13 epochs), 55 for awd")
    parser.add_argument("--optimizer", choices=("sgd", "ntasgd"), default="sgd",
                        help="awd only: sgd (default; see --schedule), or ntasgd at a constant rate")
    parser.add_argument("--schedule", choices=sorted(AWD_SCHEDULES), default=None,
                        help="awd with sgd: cosine over the epochs that fit in --minutes (default), or plateau")
    parser.add_argument("--epochs", type=int, default=None,
                        help="awd with the cosine schedule: anneal over this many epochs instead of timing a short "
                             "run to find how many fit in --minutes")
    parser.add_argument("--smoke", action="store_true", help="train a few steps and score a slice of the test set")
    parser.add_argument("--out", default=None, help="run directory. Default: runs/bench-ptb (zaremba), "
                                                     "runs/bench-ptb-awd (awd)")
    add_data_argument(parser, "ptb")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    global PTB
    PTB = dataset_path(args.data, "ptb")
    named = args.recipe not in RECIPES  # a named recipe of rnnkit (ptb-word)
    if named:
        from rnnkit.tasks.recipe import load_recipe

        found = load_recipe(args.recipe)
        recipe = {"target": float(found.target.split()[1]), "minutes": found.budget_minutes,
                  "settings": ["--recipe", args.recipe]}
        if args.optimizer != "sgd" or args.epochs is not None or args.schedule is not None:
            parser.error(f"--optimizer, --schedule and --epochs apply to --recipe awd only; {args.recipe} is "
                         "fixed by its recipe file")
    else:
        recipe = RECIPES[args.recipe]
    minutes = recipe["minutes"] if args.minutes is None else args.minutes
    if minutes <= 0:
        parser.error(f"--minutes must be positive, got {minutes:g}")
    out = args.out or str(ROOT / "runs" / {"zaremba": "bench-ptb", "awd": "bench-ptb-awd"}.get(
        args.recipe, f"bench-{args.recipe}"))
    settings = list(recipe["settings"])
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.recipe == "zaremba" and (args.optimizer != "sgd" or args.epochs is not None or args.schedule is not None):
        parser.error("--optimizer, --schedule and --epochs apply to --recipe awd only; zaremba is fixed by the paper")
    if args.optimizer == "ntasgd" and (args.epochs is not None or args.schedule is not None):
        parser.error("--optimizer ntasgd runs at a constant rate until --minutes; drop --schedule and --epochs")
    if args.schedule == "plateau" and args.epochs is not None:
        parser.error("--epochs sets the length of the cosine schedule; the plateau schedule runs until --minutes")

    test_file = PTB / "ptb.test.txt"
    if args.smoke:
        out += "-smoke"  # never replaces a full run's directory
        test_file = Path(out + "-test-slice.txt")
        test_file.parent.mkdir(parents=True, exist_ok=True)
        test_file.write_text("".join((PTB / "ptb.test.txt").read_text().splitlines(keepends=True)[:200]))
    calibration, schedule, optimizer = None, "step", args.optimizer  # zaremba: the paper's step schedule
    if named:  # the JSON reports the recipe's own optimiser and schedule
        schedule, optimizer = found.settings.get("schedule"), found.settings.get("optimizer")
    if args.recipe == "awd":
        if args.optimizer == "ntasgd":
            settings += NTASGD
            schedule = "constant"
        else:
            schedule = args.schedule or "cosine"
            settings += AWD_SCHEDULES[schedule]
            if schedule == "cosine":
                epochs = args.epochs
                if epochs is None:
                    epochs, calibration = calibrated_epochs(settings, minutes * 60, out, args.smoke)
                settings += ["--epochs", str(epochs)]
    length = ["--max-steps", "5"] if args.smoke else []
    budget = recipe_budget(args.recipe, minutes) if named else ["--time-budget", f"{minutes * 60:g}"]
    # a named recipe's settings come first: the flags after it are the data paths, the budget and the run's place
    train = ["train", "lm", *(settings if named else []), "--data", str(PTB / "ptb.train.txt"), "--valid-data",
             str(PTB / "ptb.valid.txt"), *([] if named else settings), *budget, *length, "--out", out, "--overwrite",
             "--json"]
    print("rnnkit " + " ".join(train), flush=True)
    start = time.monotonic()
    report = json.loads(rnnkit(*train))
    print(f"validation perplexity {report['valid_perplexity']:.2f} after {report['epoch']:.3g} epochs "
          f"({report['stop_reason']}), {report['tokens_per_second']:,.0f} tokens/s", flush=True)

    # Score the checkpoint with the lower validation loss: the best finished epoch's, or the final (possibly
    # partial) epoch's, which "best" never includes. Chosen on validation only, so the test is scored once.
    best_loss = report.get("best_valid_loss")
    checkpoint = "best" if best_loss is not None and best_loss <= report["valid_loss"] else "latest"
    evaluate = ["evaluate", out, "--data", str(test_file), "--batch-size", "1", "--checkpoint", checkpoint, "--json"]
    print("rnnkit " + " ".join(evaluate), flush=True)
    test = json.loads(rnnkit(*evaluate))
    total_minutes = (time.monotonic() - start) / 60
    met = test["perplexity"] <= recipe["target"]
    print(f"test perplexity {test['perplexity']:.2f} ({test['tokens']:,} tokens, {checkpoint} checkpoint), "
          f"{total_minutes:.1f} min in all (target <= {recipe['target']}: {'met' if met else 'NOT met'})"
          + ("  [SMOKE: not a result]" if args.smoke else ""), flush=True)
    valid_loss = min(report["valid_loss"], best_loss if best_loss is not None else float("inf"))
    print(json.dumps({
        "benchmark": "ptb-word", "recipe": args.recipe, "optimizer": optimizer, "schedule": schedule,
        **({"settings": found.settings} if named else {}),
        "calibration": calibration,
        "test_perplexity": round(test["perplexity"], 3), "test_tokens": test["tokens"],
        "valid_perplexity": round(2.718281828459045 ** valid_loss, 3), "checkpoint": checkpoint,
        "epochs": report["epoch"], "stop_reason": report["stop_reason"],
        "tokens_per_second": round(report["tokens_per_second"]), "target": recipe["target"], "met": met,
        "budget_minutes": minutes, "training_minutes": round(report["elapsed_seconds"] / 60, 2),
        "minutes": round(total_minutes, 2), "commands": ["rnnkit " + " ".join(train), "rnnkit " + " ".join(evaluate)],
        "chosen_on": "valid (ptb.valid.txt: the checkpoint)", "scored_on": "test (ptb.test.txt, one stream)"
        + (" [smoke: a 200-line slice]" if args.smoke else ""), "cpu": cpu_model(), "smoke": args.smoke,
    }))
    if named:
        record_recipe(args.recipe, round(test["perplexity"], 2), split="test (ptb.test.txt, one stream, batch 1)",
                      chosen_on="valid (ptb.valid.txt chose the checkpoint)",
                      runs="rnnkit " + " ".join(train) + " && rnnkit " + " ".join(evaluate), smoke=args.smoke,
                      training_minutes=round(report["elapsed_seconds"] / 60, 2), epochs=report["epoch"])


if __name__ == "__main__":
    main()
