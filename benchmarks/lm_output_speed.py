"""A word-level language model's training step with the full softmax and with an adaptive one, side by side.

At Penn Treebank's sizes (V = 10,000) the output layer is most of a small LSTM's step: H x V products a token
against 8 H^2 per layer. This script times ``--steps`` training steps (forward, backward, clip, SGD) of each
configuration on random token windows, interleaved in rounds so that a change of the machine's load hits all of
them alike, and prints tokens per second and the ratio adaptive / full for each size. No data is read.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_output_speed.py                 # H = 200, 400, 650
    PYTHONPATH=src .venv/bin/python benchmarks/lm_output_speed.py --hidden 200 --steps 5   # a quick look

The last line of stdout is one JSON object.
"""

import argparse
import json
import time

import torch

from bench_common import cpu_model
from rnnkit.models import LanguageModel

VOCAB = 10_000
CUTOFFS = [2000, 6000]  # PTB's 2,000 most frequent words cover about 85% of its tokens


def step_seconds(model: LanguageModel, batch: int, seq_len: int, steps: int) -> float:
    """Mean seconds of one SGD step on random windows (two warm-up steps first, not timed)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tokens = torch.randint(VOCAB, (batch, seq_len + 1))
    elapsed = 0.0
    for index in range(steps + 2):
        started = time.perf_counter()
        loss, _ = model(tokens[:, :-1], targets=tokens[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if index >= 2:
            elapsed += time.perf_counter() - started
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[200, 400, 650])
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--seq-len", type=int, default=35)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each configuration in each round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    models = {(hidden, name): LanguageModel(VOCAB, "lstm", hidden, 2, hidden, dropout=0.5,
                                            adaptive_softmax=CUTOFFS if name == "adaptive" else None)
              for hidden in args.hidden for name in ("full", "adaptive")}
    seconds = {key: [] for key in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            seconds[key].append(step_seconds(model, args.batch_size, args.seq_len, args.steps))
    tokens = args.batch_size * args.seq_len
    rows = []
    for hidden in args.hidden:
        full, adaptive = (min(seconds[(hidden, name)]) for name in ("full", "adaptive"))  # the least disturbed round
        rows.append({"hidden": hidden, "full_tokens_per_second": round(tokens / full),
                     "adaptive_tokens_per_second": round(tokens / adaptive), "speedup": round(full / adaptive, 2)})
        print(f"2x{hidden} LSTM, V={VOCAB:,}: full softmax {tokens / full:8,.0f} tokens/s, adaptive {CUTOFFS} "
              f"{tokens / adaptive:8,.0f} tokens/s: {full / adaptive:.2f}x", flush=True)
    print(json.dumps({"benchmark": "lm-output-speed", "vocab": VOCAB, "cutoffs": CUTOFFS, "batch_size":
                      args.batch_size, "seq_len": args.seq_len, "steps": args.steps, "rounds": args.rounds,
                      "rows": rows, "threads": torch.get_num_threads(), "cpu": cpu_model()}))


if __name__ == "__main__":
    main()
