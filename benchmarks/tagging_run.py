"""What the two tagging benchmarks (tag_ud_ewt.py, tag_conll2003.py) share: train a tagger on the training
file (or, with --smoke, on a slice), pick the best epoch on dev, score the test file once with that checkpoint."""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rnnkit(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], check=True, text=True, stdout=subprocess.PIPE)
    return done.stdout


def head_sentences(source: Path, target: Path, sentences: int) -> Path:
    """The first ``sentences`` blank-line-separated sentences of ``source``, written to ``target`` (for --smoke)."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")[:sentences]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return target


def parse_arguments(description: str, default_out: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="train one short epoch on a slice and score a slice of it")
    parser.add_argument("--out", default=str(ROOT / "runs" / default_out))
    return parser.parse_args()


def train_and_test(files: tuple[Path, Path, Path], settings: list[str], args: argparse.Namespace,
                   smoke_sentences: tuple[int, int], train_tokens: int) -> tuple[dict, dict, float, float]:
    """Train on files[0] (dev files[1] picks the best epoch) and score files[2]; print the training rate.

    With ``args.smoke``: the first smoke_sentences[0] training sentences train one epoch, and the next
    smoke_sentences[1] of the training file's head serve as dev and test (a slice of the real dev or test
    file may hold a tag the training slice lacks). Returns (training report, test scores, training minutes,
    minutes in all).
    """
    train_file, dev_file, test_file = files
    settings = list(settings)
    out = args.out
    if args.smoke:
        out += "-smoke"  # never replaces a full run's directory
        suffix = train_file.suffix
        dev_file = test_file = head_sentences(train_file, Path(out + "-dev" + suffix), smoke_sentences[1])
        train_file = head_sentences(train_file, Path(out + "-train" + suffix), smoke_sentences[0])
        settings += ["--epochs", "1"]  # one short epoch, so that a best checkpoint exists
    command = ["train", "tag", "--data", str(train_file), "--valid", str(dev_file), *settings,
               "--out", out, "--overwrite", "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    start = time.monotonic()
    report = json.loads(rnnkit(*command))
    test = json.loads(rnnkit("evaluate", out, "--data", str(test_file), "--checkpoint", "best", "--json"))
    rate = report["tokens_per_second"]
    print(f"trained {report['epoch']:.3g} epochs ({report['stop_reason']}), {rate:,.0f} tokens/s "
          f"(an epoch of the full training file: about {train_tokens / max(rate, 1):.0f} s of training)")
    return report, test, report["elapsed_seconds"] / 60, (time.monotonic() - start) / 60


def verdict_line(target: str, met: bool, training_minutes: float, limit_minutes: float, minutes: float,
                 smoke: bool) -> str:
    time_verdict = "met" if training_minutes <= limit_minutes else "NOT met"
    return (f"target {target}: {'met' if met else 'NOT met'}; training {training_minutes:.1f} min "
            f"(target <= {limit_minutes}: {time_verdict}); {minutes:.1f} min in all"
            + ("  [SMOKE: not a result]" if smoke else ""))
