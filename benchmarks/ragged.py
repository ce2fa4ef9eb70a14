"""A ragged batch: packed sequences against the same batch padded, on the native, fused and explicit engines; and
the cost of resets inside a sequence (issue 23's targets).

    .venv/bin/python benchmarks/ragged.py                      # N=64, lengths uniform in [1, 200], H=256, LSTM
    .venv/bin/python benchmarks/ragged.py --cell gru --threads 1 2 --rounds 15 --json
    .venv/bin/python benchmarks/ragged.py --hidden 16 --rounds 2          # smoke

Forward + backward (loss = a weighted sum of the outputs), one layer, input size = hidden size, float32:

    <engine> packed   a PackedSequence of the N sequences (lengths uniform in [1, L_max], one draw, seed 0): each
                      step runs the rows still alive
    <engine> padded   the same sequences padded to L_max and run as full-length rows (what a user who does not pack
                      gets: every row runs every step)
    native resets     the padded batch on the native engine with resets at 2% of the steps (episode boundaries)

Targets: native packed ≤ 0.7× native padded, and no slower than fused packed; resets ≤ 1.05× the same run without.
The variants are measured round-robin (a new random order every round), each time the median over the rounds;
each thread count runs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit.nn as rn

from bench_common import cpu_model

ENGINES = ("native", "fused", "explicit")


def batch(N: int, L: int, H: int):
    """Padded input (L, N, H), its lengths (N,), loss weights (L, N, H) zero past each length, resets (L, N)."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, L + 1, (N,), generator=generator)
    x = torch.randn(L, N, H, generator=generator)
    alive = (torch.arange(L).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2)  # (L, N, 1)
    x = x * alive
    weights = torch.randn(L, N, H, generator=generator) * alive
    resets = torch.rand(L, N, generator=generator) < 0.02
    return x, lengths, weights, resets


def measure(cell: str, N: int, L: int, H: int, rounds: int) -> dict[str, float]:
    x, lengths, weights, resets = batch(N, L, H)
    layers = {}
    for engine in ENGINES:
        torch.manual_seed(0)
        layers[engine] = rn.Recurrent(cell, H, H, engine=engine)
    packed_weights = pack_padded_sequence(weights, lengths, enforce_sorted=False).data

    def run(name: str) -> float:
        engine, kind = name.split(" ")
        layer = layers[engine]
        start = time.perf_counter()
        if kind == "packed":
            output, _ = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
            (output.data * packed_weights).sum().backward()
        else:
            output, _ = layer(x, resets=resets if kind == "resets" else None)
            (output * weights).sum().backward()
        elapsed = time.perf_counter() - start
        layer.zero_grad(set_to_none=True)
        return elapsed

    names = [f"{engine} {kind}" for engine in ENGINES for kind in ("packed", "padded")] + ["native resets"]
    for name in names:
        run(name)  # warm-up: allocator, oneDNN's primitives
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            times[name].append(run(name))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn_tanh"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="torch threads, each in its own process")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: measure in this process
    args = parser.parse_args()
    if args.one:
        torch.set_num_threads(args.threads[0])
        print(json.dumps(measure(args.cell, args.batch, args.max_length, args.hidden, args.rounds)))
        return
    if not rn.native_available():
        sys.exit(f"error: the native engine is not available: {rn.native_info()['reason']}")
    results = {}
    for threads in args.threads:
        command = [sys.executable, __file__, "--one", "--cell", args.cell, "--batch", str(args.batch),
                   "--max-length", str(args.max_length), "--hidden", str(args.hidden), "--rounds", str(args.rounds),
                   "--threads", str(threads)]
        s = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        results[f"threads={threads}"] = s
        if args.json:
            continue
        print(f"{args.cell} N={args.batch} lengths in [1, {args.max_length}] H={args.hidden}  {threads} thread(s)  "
              f"forward+backward, median of {args.rounds} rounds")
        for name, seconds in s.items():
            print(f"  {name:<16} {seconds * 1e3:8.1f} ms")
        print(f"  native packed / native padded   {s['native packed'] / s['native padded']:.2f}x   (target <= 0.7)")
        print(f"  native packed / fused packed    {s['native packed'] / s['fused packed']:.2f}x   (target <= 1)")
        print(f"  native resets / native padded   {s['native resets'] / s['native padded']:.2f}x   (target <= 1.05)")
    print(json.dumps({"benchmark": "ragged", "cell": args.cell, "N": args.batch, "max_length": args.max_length,
                      "H": args.hidden, "rounds": args.rounds, "cpu": cpu_model(), "native": rn.native_info()["isa"],
                      "results": results}))


if __name__ == "__main__":
    main()
