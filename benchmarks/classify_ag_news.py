"""AG News document classification, a demo on a SPLIT OF THE AG NEWS TEST FILE: NOT the standard AG News benchmark.

!!! Only ../shared/data/ag_news/test.csv (7,600 articles, 1,900 per class) is available here; the official
!!! 120,000-article training file is not. This script splits that test file into its own training part (80%,
!!! stratified, fixed seed) and held-out part (20%), trains on 6,080 articles instead of 120,000, and reports the
!!! held-out accuracy. The number is NOT comparable to any published AG News result, and none is given here.

What it shows: the seeds' document classification (a news article → World, Sports, Business, Sci/Tech) with the
file read exactly as AG News ships it: no header, class index 1-4 in column 1, title and description in columns
2 and 3, joined into one text (``--no-header --text-column 2,3 --label-column 1``). The split files under
runs/bench-ag-news/ keep that layout. Model: a 1-layer BiLSTM of 128 units per direction over 128-dim embeddings
learned from scratch, max-pooled, dropout 0.5, Adam at 1e-3; 10% of the training part picks the best epoch. An
article is about 45 tokens, so an epoch takes well under a minute on 2 cores; at most 8 epochs, stopped by a
10-minute budget or 2 epochs without a better held-out accuracy. Last, `rnnkit predict` labels the headline of
one held-out article of each class, as the seeds' example does.

    PYTHONPATH=src .venv/bin/python benchmarks/classify_ag_news.py            # the demo (about 5 min on 2 cores)
    PYTHONPATH=src .venv/bin/python benchmarks/classify_ag_news.py --smoke    # 200 articles, one short epoch

--minutes (default 10) is the training budget (--time-budget); the last line of stdout is one JSON object with the
held-out scores, the budget, the commands and the CPU model.
"""

import argparse
import csv
import json
import random
import time
from pathlib import Path

from bench_common import add_data_argument, cpu_model, dataset_path, rnnkit

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news"
SEED = 1
HELD_OUT = 0.2
NOT_STANDARD = ("NOT the standard AG News benchmark: trained and scored on a split of the AG News TEST file only "
                "(no official training data); not comparable to published AG News numbers")
SETTINGS = [
    "--no-header", "--text-column", "2,3", "--label-column", "1", "--valid-fraction", "0.1",
    "--cell", "lstm", "--layers", "1", "--hidden", "128", "--bidirectional", "--embedding", "128",
    "--pooling", "max", "--dropout", "0.5", "--batch-size", "32", "--optimizer", "adam", "--lr", "0.001",
    "--clip", "5", "--epochs", "8", "--patience", "2", "--seed", str(SEED),
]


def split(rows: list[list[str]], out: Path) -> tuple[Path, Path]:
    """train.csv and held-out.csv: HELD_OUT of each class drawn with SEED, rows written in AG News's own layout."""
    generator = random.Random(SEED)
    held_out = set()
    for label in sorted({row[0] for row in rows}):
        indices = [i for i, row in enumerate(rows) if row[0] == label]
        held_out.update(generator.sample(indices, round(HELD_OUT * len(indices))))
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.csv", out / "held-out.csv"
    for path, keep in zip(paths, (lambda i: i not in held_out, lambda i: i in held_out)):
        with open(path, "w", encoding="utf-8", newline="") as file:
            csv.writer(file, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(r for i, r in enumerate(rows) if keep(i))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="200 articles and one short epoch")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget in minutes (default 10)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-ag-news"))
    add_data_argument(parser, "ag_news")
    args = parser.parse_args()
    global AG_NEWS
    AG_NEWS = dataset_path(args.data, "ag_news")
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")

    print(f"*** {NOT_STANDARD} ***", flush=True)
    with open(AG_NEWS / "test.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    names = dict(enumerate((AG_NEWS / "classes.txt").read_text(encoding="utf-8").split(), start=1))
    settings = list(SETTINGS)
    if args.smoke:
        args.out += "-smoke"  # never replaces a full run's files
        rows = [row for label in "1234" for row in rows if row[0] == label][::38]  # 50 of each class
        settings += ["--epochs", "1"]
    out = Path(args.out)
    train_file, held_out_file = split(rows, out)
    run = out / "run"
    command = ["train", "classify", "--data", str(train_file), *settings, "--time-budget", f"{args.minutes * 60:g}",
               "--out", str(run), "--overwrite", "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    start = time.monotonic()
    report = json.loads(rnnkit(*command))
    evaluate = ["evaluate", str(run), "--data", str(held_out_file), "--checkpoint", "best", "--json"]
    scores = json.loads(rnnkit(*evaluate))
    minutes = (time.monotonic() - start) / 60

    print(f"trained {report['epoch']:.3g} epochs ({report['stop_reason']}, best epoch {report.get('best_epoch')}), "
          f"{report['elapsed_seconds'] / 60:.1f} min of training")
    for label, per_class in scores["per_class"].items():
        print(f"  {label} {names.get(int(label), '?'):<9} precision {per_class['precision']:.3f}  "
              f"recall {per_class['recall']:.3f}  F1 {per_class['f1']:.3f}  ({per_class['support']} articles)")
    print(f"held-out accuracy {scores['accuracy']:.2%}, macro F1 {scores['macro_f1']:.4f} on {scores['examples']:,} "
          f"articles; {minutes:.1f} min in all" + ("  [SMOKE: not a result]" if args.smoke else ""))

    with open(held_out_file, encoding="utf-8", newline="") as file:
        first_of_class = {row[0]: row for row in reversed(list(csv.reader(file)))}
    headlines = out / "headlines.txt"
    headlines.write_text("".join(first_of_class[label][1] + "\n" for label in sorted(first_of_class)), encoding="utf-8")
    for label, line in zip(sorted(first_of_class), rnnkit("predict", str(run), "--input", str(headlines)).splitlines()):
        predicted, probability, headline = line.split("\t", 2)
        print(f"  {names[int(predicted)]:<9} (p {float(probability):.2f}; true {names[int(label)]:<9}) {headline}")
    print(f"*** {NOT_STANDARD} ***", flush=True)
    print(json.dumps({
        "benchmark": "ag-news-demo", "note": NOT_STANDARD, "held_out_accuracy": scores["accuracy"],
        "held_out_macro_f1": scores["macro_f1"], "held_out_examples": scores["examples"],
        "best_epoch": report.get("best_epoch"), "epochs": report["epoch"], "stop_reason": report["stop_reason"],
        "budget_minutes": args.minutes, "training_minutes": round(report["elapsed_seconds"] / 60, 2),
        "minutes": round(minutes, 2), "commands": ["rnnkit " + " ".join(command), "rnnkit " + " ".join(evaluate)],
        "cpu": cpu_model(), "smoke": args.smoke,
    }))


if __name__ == "__main__":
    main()
