"""Penn Treebank, word level, Zaremba et al. (2014) "small": test perplexity <= 114.5 (TF tutorial 115.91).

2 x 200 LSTM, 200-dim embedding, 20 steps, batch 20, SGD at lr 1 halved after every epoch past the 4th,
gradient norm clipped at 5, 13 epochs, weights uniform in ±0.1, no dropout. As in the paper's code the loss
is summed over the 20 time steps and averaged over the batch (--loss-over-time sum). The test set is then
scored with one stream (batch 1), as the TF tutorial does. Records the minutes taken.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_ptb.py            # the full run (about an hour on 2 cores)
    PYTHONPATH=src .venv/bin/python benchmarks/lm_ptb.py --smoke    # a few steps and a short test: does it start?
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"
TARGET = 114.5
SETTINGS = [
    "--level", "word", "--cell", "lstm", "--layers", "2", "--hidden", "200", "--embedding", "200",
    "--dropout", "0", "--init-range", "0.1", "--seq-len", "20", "--batch-size", "20",
    "--optimizer", "sgd", "--lr", "1", "--schedule", "step", "--lr-decay", "0.5", "--decay-after", "4",
    "--clip", "5", "--loss-over-time", "sum", "--epochs", "13", "--seed", "1",
]


def rnnkit(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], check=True, text=True, stdout=subprocess.PIPE)
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="train a few steps and score a slice of the test set")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-ptb"))
    args = parser.parse_args()

    test_file = PTB / "ptb.test.txt"
    if args.smoke:
        test_file = Path(args.out + "-test-slice.txt")
        test_file.parent.mkdir(parents=True, exist_ok=True)
        test_file.write_text("".join((PTB / "ptb.test.txt").read_text().splitlines(keepends=True)[:200]))
    length = ["--max-steps", "5"] if args.smoke else []
    command = ["train", "lm", "--data", str(PTB / "ptb.train.txt"), "--valid-data", str(PTB / "ptb.valid.txt"),
               *SETTINGS, *length, "--out", args.out, "--overwrite", "--json"]
    print("rnnkit " + " ".join(command), flush=True)
    start = time.monotonic()
    report = json.loads(rnnkit(*command))
    print(f"validation perplexity {report['valid_perplexity']:.2f} after {report['epoch']:.3g} epochs, "
          f"{report['tokens_per_second']:,.0f} tokens/s", flush=True)
    test = json.loads(rnnkit("evaluate", args.out, "--data", str(test_file), "--batch-size", "1", "--json"))
    minutes = (time.monotonic() - start) / 60
    verdict = "met" if test["perplexity"] <= TARGET else "NOT met"
    print(f"test perplexity {test['perplexity']:.2f} ({test['tokens']:,} tokens), {minutes:.1f} min in all "
          f"(target <= {TARGET}: {verdict})")


if __name__ == "__main__":
    main()
