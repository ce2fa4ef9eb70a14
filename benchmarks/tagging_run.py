"""What the two tagging benchmarks (tag_ud_ewt.py, tag_conll2003.py) share: train a tagger on the training
file (or, with --smoke, on a slice), pick the best epoch on dev, score the test file once with that checkpoint;
with --search, first train every configuration of CONFIGS for an equal share of the budget (less each run's start
and the test evaluation, measured as the search goes: bench_common.SearchBudget) and keep the one with
the best dev score; with --recipe NAME (rnnkit's named recipe), train with `rnnkit train tag --recipe NAME` (its own
settings, epochs and budget: no timing run) and, in a full run, write the test score into the recipe. Every run
ends with one JSON line on stdout."""

import argparse
import json
import time
from pathlib import Path

from bench_common import (CONFIGS, SMOKE_CONFIGS, SearchBudget, add_data_argument, add_recipe_argument, cpu_model,
                          dataset_path, record_recipe, recipe_budget, rnnkit)

ROOT = Path(__file__).resolve().parents[1]
# The cosine schedule needs its length in advance. Each run first times CALIBRATION_STEPS steps of its own
# configuration (the engines differ in speed: recurrent dropout and the layer-normalised cell run rnnkit's own
# loop) and anneals over the whole epochs that fit in its budget, at most round one's 24; the time budget
# still stops it if the machine slows down (its JSON record then says "time_budget").
CALIBRATION_STEPS = 30
MAX_EPOCHS = 24


def head_sentences(source: Path, target: Path, sentences: int) -> Path:
    """The first ``sentences`` blank-line-separated sentences of ``source``, written to ``target`` (for --smoke)."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")[:sentences]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return target


def build_parser(description: str, default_out: str, dataset: str, script: str) -> argparse.ArgumentParser:
    """The flags of the tagging benchmark ``script`` (parsing them touches no data: a wrong --recipe is one line)."""
    parser = argparse.ArgumentParser(description=description)
    add_data_argument(parser, dataset)
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget in minutes: the run's (default 41, round one's; with --recipe the "
                             "recipe's own), or the whole search's, its test evaluation included, shared equally by its "
                             "configurations (default 45)")
    parser.add_argument("--search", action="store_true", help="try CONFIGS, choose on dev, score test once")
    parser.add_argument("--configs", default=None, help=f"with --search: a comma-separated subset of {', '.join(CONFIGS)}")
    parser.add_argument("--smoke", action="store_true", help="train one short epoch on a slice and score a slice of it")
    parser.add_argument("--out", default=str(ROOT / "runs" / default_out))
    add_recipe_argument(parser, script)
    return parser


def parse_arguments(description: str, default_out: str, dataset: str, script: str) -> argparse.Namespace:
    """The flags of a tagging benchmark; ``args.data`` becomes the folder of ``dataset``'s files."""
    parser = build_parser(description, default_out, dataset, script)
    args = parser.parse_args()
    args.data = dataset_path(args.data, dataset)
    if args.recipe and args.search:
        parser.error("--recipe runs the recipe's one configuration; drop --search")
    args.minutes_given = args.minutes  # a recipe keeps its own budget unless --minutes was given
    if args.recipe and args.minutes is None:
        args.minutes = _recipe_seconds(args.recipe) / 60
    if args.minutes is None:
        args.minutes = 45.0 if args.search else 41.0
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")
    if args.configs is not None and not args.search:
        parser.error("--configs chooses the configurations of a search; add --search")
    if args.search:
        if args.configs is None:
            args.configs = SMOKE_CONFIGS if args.smoke else list(CONFIGS)
        else:
            args.configs = [name.strip() for name in args.configs.split(",") if name.strip()]
            unknown = [name for name in args.configs if name not in CONFIGS]
            if unknown or not args.configs:
                parser.error(f"unknown configuration(s) {', '.join(unknown) or '(none given)'}; "
                             f"choose from {', '.join(CONFIGS)}")
    return args


def calibrated_epochs(command: list[str], seconds: float, train_tokens: int, dev_tokens: int,
                      dev_slice: Path, smoke: bool) -> tuple[int, dict]:
    """How many whole epochs of the training ``command`` fit in ``seconds``, from a short timed run of it.

    The timed run validates on ``dev_slice`` (a few dev sentences) only. An epoch costs train_tokens / rate of
    training plus dev_tokens / (3 rate) to tag dev (a forward pass only); 8% is kept for the start, checkpoints
    and rate changes. Returns (epochs, what was measured).
    """
    steps = 2 if smoke else CALIBRATION_STEPS
    out = command[command.index("--out") + 1] + "-calibration"
    timed = [*command, "--valid", str(dev_slice), "--schedule", "constant", "--max-steps", str(steps), "--out", out,
             "--quiet"]
    report = json.loads(rnnkit(*timed))
    rate = report.get("warm_tokens_per_second", report["tokens_per_second"])  # the warm-up steps left out
    epoch_seconds = (train_tokens + dev_tokens / 3) / max(rate, 1.0)
    epochs = max(1, min(MAX_EPOCHS, int(0.92 * seconds / epoch_seconds)))
    print(f"  calibration: {rate:,.0f} training tokens/s over {steps} steps, about {epoch_seconds / 60:.1f} min per "
          f"epoch: {epochs} epochs in {seconds / 60:.1f} min", flush=True)
    return epochs, {"tokens_per_second": round(rate), "epoch_minutes": round(epoch_seconds / 60, 2), "epochs": epochs}


def selection(report: dict, score: str) -> tuple[float, str]:
    """(dev score, checkpoint) of a run: its best finished epoch ("best"), or the final partial epoch ("latest")
    when a time budget stopped it mid-epoch with a higher score. Chosen on dev only."""
    best = report.get(f"best_valid_{score}")
    last = report.get(f"valid_{score}")
    if best is None or (last is not None and report.get("partial_epoch") and last > best):
        return (last if last is not None else float("nan")), "latest"
    return best, "best"


def train_and_test(files: tuple[Path, Path, Path], settings: list[str], args: argparse.Namespace,
                   smoke_sentences: tuple[int, int], tokens: tuple[int, int], score: str) -> dict:
    """Train on files[0] (dev files[1] picks the epoch, and with --search the configuration) and score files[2] once.

    With ``args.smoke``: the first smoke_sentences[0] training sentences train one epoch, and the next
    smoke_sentences[1] of the training file's head serve as dev and test (a slice of the real dev or test
    file may hold a tag the training slice lacks). ``tokens``: the full training and dev files' sizes in words
    (for the calibration). ``score`` is the dev score that chooses ("accuracy", "f1").
    Returns {"report": the chosen run's training report, "test": its test scores, "checkpoint", "configs" (every
    configuration tried, with --search), "commands", "training_minutes", "minutes"}.
    """
    train_file, dev_file, test_file = files
    train_tokens, dev_tokens = tokens
    out = args.out
    if args.smoke:
        out += "-smoke"  # never replaces a full run's directory
        suffix = train_file.suffix
        dev_file = test_file = head_sentences(train_file, Path(out + "-dev" + suffix), smoke_sentences[1])
        train_file = head_sentences(train_file, Path(out + "-train" + suffix), smoke_sentences[0])
    dev_slice = head_sentences(dev_file, Path(out + "-calibration-dev" + dev_file.suffix), 20)  # for the timing only
    names = args.configs if args.search else [None]
    # The search's configurations and the test evaluation after them share --minutes (bench_common.SearchBudget):
    # the evaluation reads the test file, about test/dev times the data of a run's validation.
    budget = SearchBudget(args.minutes * 60, len(names),
                          evaluated=test_file.stat().st_size / max(dev_file.stat().st_size, 1))
    start = time.monotonic()
    tried, commands = [], []
    for name in names:
        started, share = time.monotonic(), budget.share()
        run = out if name is None else f"{out}-search/{name}"
        flags = [] if name is None else CONFIGS[name]
        if args.recipe:  # the recipe's settings, epochs and schedule as they are: no timing run, no search
            length = recipe_budget(args.recipe, args.minutes_given)  # not `budget`: the search's, observed below
            command = ["train", "tag", "--recipe", args.recipe, "--data", str(train_file), "--valid", str(dev_file),
                       *length, *(["--epochs", "1"] if args.smoke else []), "--out", run, "--overwrite", "--json"]
            calibration = None
        else:
            base = ["train", "tag", "--data", str(train_file), "--valid", str(dev_file), *settings, *flags,
                    "--time-budget", f"{share:g}", "--out", run, "--overwrite", "--json"]
            epochs, calibration = calibrated_epochs(base, share, train_tokens, dev_tokens, dev_slice, args.smoke)
            # the smoke run: one short epoch; the last of a repeated flag counts
            command = base + ["--epochs", "1" if args.smoke else str(epochs)] + (["--quiet"] if args.search else [])
        print("rnnkit " + " ".join(command), flush=True)
        commands.append("rnnkit " + " ".join(command))
        report = json.loads(rnnkit(*command))
        budget.observe(time.monotonic() - started, report)  # the calibration's run and the process start included
        dev, checkpoint = selection(report, score)
        rate = report["tokens_per_second"]
        print(f"{name or 'trained'}: dev {score} {dev:.4f} ({checkpoint} checkpoint), {report['epoch']:.3g} epochs "
              f"({report['stop_reason']}), {rate:,.0f} tokens/s", flush=True)
        tried.append({"name": name or "single", "flags": flags, f"dev_{score}": dev, "checkpoint": checkpoint,
                      "best_epoch": report.get("best_epoch"), "epochs": report["epoch"],
                      "stop_reason": report["stop_reason"], "training_minutes": round(report["elapsed_seconds"] / 60, 2),
                      "calibration": calibration, "share_minutes": round(share / 60, 2), "run": run,
                      "report": report})
    chosen = max(tried, key=lambda record: record[f"dev_{score}"])  # max keeps the first of equal scores
    evaluate = ["evaluate", chosen["run"], "--data", str(test_file), "--checkpoint", chosen["checkpoint"], "--json"]
    print("rnnkit " + " ".join(evaluate) + (f"   (chosen on dev: {chosen['name']})" if args.search else ""), flush=True)
    commands.append("rnnkit " + " ".join(evaluate))
    test = json.loads(rnnkit(*evaluate))
    report = chosen.pop("report")
    for record in tried:
        record.pop("report", None)
    return {"report": report, "test": test, "checkpoint": chosen["checkpoint"], "chosen": chosen["name"],
            "configs": tried if args.search else None, "commands": commands,
            "training_minutes": sum(record["training_minutes"] for record in tried),
            "minutes": (time.monotonic() - start) / 60}


def _recipe_seconds(name: str) -> float:
    """The time budget recipe ``name`` trains for: its settings' --time-budget, else its budget_minutes."""
    from rnnkit.tasks.recipe import load_recipe

    recipe = load_recipe(name)
    return recipe.settings.get("time-budget", recipe.budget_minutes * 60)


def record_test_score(args: argparse.Namespace, run: dict, score: float, split: str) -> None:
    """A named recipe's full run: write its test ``score`` (in the recipe's unit) into the recipe."""
    if args.recipe:
        record_recipe(args.recipe, score, split=split, chosen_on="valid (the dev file chose the checkpoint)",
                      runs=" && ".join(run["commands"]), smoke=args.smoke,
                      training_minutes=round(run["training_minutes"], 2), epochs=run["report"]["epoch"])


def verdict_line(target: str, met: bool, training_minutes: float, limit_minutes: float, minutes: float,
                 smoke: bool) -> str:
    time_verdict = "met" if training_minutes <= limit_minutes else "NOT met"
    return (f"target {target}: {'met' if met else 'NOT met'}; training {training_minutes:.1f} min "
            f"(target <= {limit_minutes}: {time_verdict}); {minutes:.1f} min in all"
            + ("  [SMOKE: not a result]" if smoke else ""))


def json_line(benchmark: str, scores: dict, run: dict, args: argparse.Namespace, target: float, met: bool) -> str:
    """The one JSON line a tagging benchmark ends with."""
    report = run["report"]
    return json.dumps({
        "benchmark": benchmark, "mode": "recipe" if args.recipe else "search" if args.search else "single",
        "recipe": args.recipe, **scores, "chosen_on": "valid (dev: the epoch" + (", the configuration)" if args.search
                                                                               else ")"),
        "scored_on": "test" + (" [smoke: a slice of the training file]" if args.smoke else ""),
        "configs": run["configs"], "chosen": run["chosen"], "checkpoint": run["checkpoint"],
        "best_epoch": report.get("best_epoch"), "epochs": report["epoch"], "stop_reason": report["stop_reason"],
        "target": target, "met": met, "budget_minutes": args.minutes,
        "training_minutes": round(run["training_minutes"], 2), "minutes": round(run["minutes"], 2),
        "commands": run["commands"], "cpu": cpu_model(), "smoke": args.smoke,
    })
