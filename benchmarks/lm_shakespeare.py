"""Tiny Shakespeare, character level: validation loss <= 1.47 nats/char within 60 minutes on 2 CPU cores.

The first 90% of ../shared/data/tinyshakespeare/input.txt trains, the last 10% validates (nanoGPT's split;
its character-level transformer reaches 1.4697). The model is a 2-layer LSTM of 512 units with dropout
(about 6,000 tokens/s here: some 20 epochs in the hour), trained by Adam with truncated BPTT over
128-character windows; the learning rate halves whenever an epoch fails to improve the validation loss.
Training stops at a 55-minute time budget; the final validation and a sample follow within the hour. The result and the exact command go to benchmarks/RESULTS.md.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_shakespeare.py            # the full run (60 min)
    PYTHONPATH=src .venv/bin/python benchmarks/lm_shakespeare.py --smoke    # a few steps: does it start?
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
TARGET = 1.47
SETTINGS = [
    "--level", "char", "--cell", "lstm", "--layers", "2", "--hidden", "512", "--embedding", "128",
    "--dropout", "0.25", "--seq-len", "128", "--batch-size", "32", "--optimizer", "adam", "--lr", "0.002",
    "--schedule", "plateau", "--lr-decay", "0.5", "--clip", "5", "--seed", "1",
]


def rnnkit(*args: str, capture: bool = False) -> str:
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)
    return done.stdout if capture else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="train a few steps only")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-shakespeare"))
    args = parser.parse_args()

    text = DATA.read_text(encoding="utf-8")
    split = int(len(text) * 0.9)
    data_dir = Path(args.out + "-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "train.txt").write_text(text[:split], encoding="utf-8")
    (data_dir / "valid.txt").write_text(text[split:], encoding="utf-8")

    length = ["--max-steps", "5"] if args.smoke else ["--time-budget", "3300"]
    command = ["train", "lm", "--data", str(data_dir / "train.txt"), "--valid-data", str(data_dir / "valid.txt"),
               *SETTINGS, *length, "--out", args.out, "--overwrite", "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    report = json.loads(rnnkit(*command, capture=True))
    best = report["best_valid_loss"] if report["best_valid_loss"] is not None else report["valid_loss"]
    verdict = "met" if best <= TARGET else "NOT met"
    print(f"validation loss: final {report['valid_loss']:.4f}, best {best:.4f} nats/char after "
          f"{report['elapsed_seconds'] / 60:.1f} min, {report['steps']:,} steps, "
          f"{report['tokens_per_second']:,.0f} tokens/s (target <= {TARGET}: {verdict})")
    which = "best" if report["best_valid_loss"] is not None else "latest"
    rnnkit("generate", args.out, "--checkpoint", which, "--prime", "ROMEO:", "--length", "300",
           "--temperature", "0.8", "--seed", "0")


if __name__ == "__main__":
    main()
