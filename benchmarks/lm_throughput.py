"""Training throughput of `rnnkit train lm` against a plain hand-written PyTorch nn.LSTM loop.

Both train the same model (embedding -> 2-layer LSTM -> linear) with the same batch, sequence length,
optimizer (Adam) and clipping on the same text, one after the other in alternating rounds inside one
process, so that both see the same machine load. rnnkit's figure is the one `rnnkit train lm --json`
reports (tokens over the time spent in training steps); the plain loop is timed the same way. Target:
ratio >= 0.95 (the toolkit adds no overhead). The ratio is the median over rounds of rnnkit's rate
divided by the plain loop's rate measured next to it (in alternating order), which cancels slow drifts
of the machine's load.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_throughput.py
    PYTHONPATH=src .venv/bin/python benchmarks/lm_throughput.py --hidden 512 --batch-size 64 --steps 40 --rounds 5

On a machine shared with other busy processes, two OpenMP threads per process spin against each other and
the rates swing wildly; measure alone, or with OMP_NUM_THREADS=1 in front of the command. The measurement is
fixed in steps, not minutes; the last line of stdout is one JSON object with the rates, the ratio, the command and
the CPU model.
"""

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnkit.cli import main as rnnkit_main
from rnnkit.data.corpus import default_corpus
from rnnkit.data.text import CharVocab

from bench_common import cpu_model


def rnnkit_tokens_per_second(data: Path, args, out: Path) -> float:
    """Run `rnnkit train lm` in this process and return the tokens/s it reports."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rnnkit_main([
            "train", "lm", "--data", str(data), "--valid-fraction", "0.01", "--layers", str(args.layers),
            "--hidden", str(args.hidden), "--embedding", str(args.hidden), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
            "--max-steps", str(args.steps), "--lr", "0.002", "--clip", "5", "--seed", "0", "--device", "cpu",
            "--out", str(out), "--overwrite", "--quiet", "--json",
        ])
    return json.loads(stdout.getvalue())["tokens_per_second"]


class PlainLanguageModel(nn.Module):
    """What one would write by hand with torch.nn: embedding -> nn.LSTM -> linear."""

    def __init__(self, vocab_size: int, hidden: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab_size)

    def forward(self, tokens, state=None):
        output, state = self.lstm(self.embedding(tokens), state)  # (N, L, H)
        return self.decoder(output), state  # (N, L, V)


def plain_tokens_per_second(ids: torch.Tensor, vocab_size: int, args) -> float:
    """A hand-written truncated-BPTT loop, timed like rnnkit's: tokens over the time spent in steps."""
    torch.manual_seed(0)
    model = PlainLanguageModel(vocab_size, args.hidden, args.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002, fused=True)  # the Trainer's Adam: compare like with like
    n, length = args.batch_size, args.seq_len
    streams = ids[: (len(ids) - 1) // n * n]
    inputs = streams.view(n, -1)  # (N, T / N)
    targets = ids[1 : len(streams) + 1].view(n, -1)  # (N, T / N)
    state, tokens, seconds = None, 0, 0.0
    for step in range(args.steps):
        start = time.perf_counter()
        window = slice(step * length, (step + 1) * length)
        x, y = inputs[:, window], targets[:, window]  # (N, L) each
        logits, state = model(x, state)  # (N, L, V)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        state = tuple(s.detach() for s in state)
        loss.item()
        seconds += time.perf_counter() - start
        tokens += x.numel()
    return tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    parser.add_argument("--rounds", type=int, default=4, help="alternating measurements of each (after a warm-up)")
    args = parser.parse_args()

    text, description = default_corpus()
    vocab = CharVocab.build(text)
    ids = vocab.encode(text)  # (T,)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "corpus.txt"
        data.write_text(text, encoding="utf-8")
        print(f"corpus: {description}; {len(ids):,} characters, vocabulary {len(vocab)}")
        print(f"model: {args.layers}x{args.hidden} LSTM, batch {args.batch_size}, seq-len {args.seq_len}, "
              f"{args.steps} steps per round, {torch.get_num_threads()} threads")
        rnnkit_tokens_per_second(data, args, Path(scratch) / "run")  # warm-up: first-use costs of both paths
        plain_tokens_per_second(ids, len(vocab), args)
        rnnkit_rates, plain_rates = [], []
        for round_number in range(1, args.rounds + 1):
            # Alternate which goes first, so that neither always inherits the other's memory state.
            if round_number % 2:
                rnnkit_rates.append(rnnkit_tokens_per_second(data, args, Path(scratch) / "run"))
                plain_rates.append(plain_tokens_per_second(ids, len(vocab), args))
            else:
                plain_rates.append(plain_tokens_per_second(ids, len(vocab), args))
                rnnkit_rates.append(rnnkit_tokens_per_second(data, args, Path(scratch) / "run"))
            print(f"round {round_number}: rnnkit {rnnkit_rates[-1]:,.0f} tok/s, plain PyTorch {plain_rates[-1]:,.0f} tok/s")
    ratio = statistics.median(mine / theirs for mine, theirs in zip(rnnkit_rates, plain_rates))
    print(f"median: rnnkit {statistics.median(rnnkit_rates):,.0f} tok/s, "
          f"plain PyTorch {statistics.median(plain_rates):,.0f} tok/s, "
          f"ratio {ratio:.3f} (target >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})", flush=True)
    print(json.dumps({
        "benchmark": "lm-throughput", "ratio": ratio, "rnnkit_tokens_per_second": rnnkit_rates,
        "plain_tokens_per_second": plain_rates, "target": 0.95, "met": ratio >= 0.95,
        "threads": torch.get_num_threads(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpu": cpu_model(),
    }))


if __name__ == "__main__":
    main()
