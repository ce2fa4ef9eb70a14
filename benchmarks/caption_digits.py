"""Digit-string captioning (one-to-many): exact-match caption accuracy >= 95% on held-out compositions of 1-5
digits, with the minutes taken.

Data: the embedded compositions of rnnkit.data.digits. scikit-learn's 1,797 bundled 8×8 digits are split once
into disjoint training / validation / test images (70 / 10 / 20 %); training draws 20,000 compositions of 1-5
digits (8 × 40 pixels, "three one four") from the training digits only, validation 1,000 from the validation
digits, and the score is measured on 2,000 compositions of the 359 test digits, handwriting the model never saw.

Why these settings: the exact match of a caption of k digits is about p^k for a per-digit accuracy p; with
k = 3 on average, 95% needs p of about 98.5%. A small CNN (conv 32 → pool → conv 64 → pool, flattened so that
the features keep which slot they came from) reaches 98.5-99% on single held-out digits of this set, so the
captioner's CNN is that network; its 256-wide feature vector both initialises a GRU of 256 and is fed to it at
every step (Show and Tell feeds it once; feeding it every step lets the decoder look back at the slot it is
reading). Dropout 0.2 against the small number of distinct training digits (1,258), Adam at 2e-3 (halved when
the validation loss stalls), the checkpoint with the best validation exact match, at most 30 epochs, early
stopping after 8 without improvement.

    PYTHONPATH=src .venv/bin/python benchmarks/caption_digits.py            # the full run (about 10 minutes)
    PYTHONPATH=src .venv/bin/python benchmarks/caption_digits.py --smoke    # a few steps: does it start?

--minutes (default 20, a safety net: the 30 epochs or early stopping end first) is the training budget
(--time-budget); the last line of stdout is one JSON object with the scores, the budget, the commands and the CPU.
"""

import argparse
import json
import time
from pathlib import Path

from bench_common import cpu_model, rnnkit

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.95
SETTINGS = [
    "--max-digits", "5", "--cell", "gru", "--hidden", "256", "--layers", "1", "--features", "256",
    "--embedding", "64", "--channels", "32,64", "--condition", "both", "--dropout", "0.2", "--batch-size", "64",
    "--optimizer", "adam", "--lr", "2e-3", "--schedule", "plateau", "--lr-decay", "0.5", "--epochs", "30",
    "--patience", "8", "--seed", "1",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="train a few steps on a few compositions")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget in minutes (default 20)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-caption-digits"))
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")

    sizes = ["--train-size", "20000", "--valid-size", "1000", "--test-size", "2000"]
    if args.smoke:
        sizes = ["--train-size", "192", "--valid-size", "32", "--test-size", "64", "--max-steps", "3"]  # one epoch
    command = ["train", "caption", *SETTINGS, *sizes, "--time-budget", f"{args.minutes * 60:g}", "--out", args.out,
               "--overwrite", "--quiet", "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    start = time.monotonic()
    report = json.loads(rnnkit(*command))
    train_minutes = (time.monotonic() - start) / 60
    print(f"validation exact match {report['valid_exact_match']:.2%} after {report['epoch']:.3g} epochs "
          f"({train_minutes:.1f} min)", flush=True)
    evaluate = ["evaluate", args.out, "--checkpoint", "best", "--json"]
    print("rnnkit " + " ".join(evaluate), flush=True)
    test = json.loads(rnnkit(*evaluate))
    minutes = (time.monotonic() - start) / 60
    verdict = "met" if test["exact_match"] >= TARGET else "NOT met"
    print(f"test exact match {test['exact_match']:.2%}, token accuracy {test['token_accuracy']:.2%} on "
          f"{test['images']:,} held-out compositions; {train_minutes:.1f} min of training, {minutes:.1f} min in all "
          f"(target exact match >= {TARGET:.0%}: {verdict})", flush=True)
    print(json.dumps({
        "benchmark": "caption-digits", "test_exact_match": test["exact_match"],
        "test_token_accuracy": test["token_accuracy"], "test_images": test["images"], "target": TARGET,
        "met": test["exact_match"] >= TARGET, "best_epoch": report.get("best_epoch"), "epochs": report["epoch"],
        "stop_reason": report["stop_reason"], "budget_minutes": args.minutes,
        "training_minutes": round(train_minutes, 2), "minutes": round(minutes, 2),
        "commands": ["rnnkit " + " ".join(command), "rnnkit " + " ".join(evaluate)], "cpu": cpu_model(),
        "smoke": args.smoke,
    }))


if __name__ == "__main__":
    main()
