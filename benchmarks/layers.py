"""Forward + backward time of rnnkit's engines against torch.nn and a Python loop over a torch.nn cell.

    .venv/bin/python benchmarks/layers.py                 # L=100, N=32, H in 128 256 512
    .venv/bin/python benchmarks/layers.py --hidden 256 --repeats 15 --json

For each cell type and hidden size, four implementations of the same layer (same weights) run one
forward and one backward pass (loss = sum of the outputs) on the same input:

    explicit   rnnkit, engine="explicit" (unrolled loop + hand-written BPTT)
    fused      rnnkit, engine="fused" (PyTorch's fused kernels behind rnnkit's interface)
    torch.nn   torch.nn.LSTM / GRU / RNN
    cell loop  a Python loop over torch.nn.LSTMCell / GRUCell / RNNCell with autograd

The machine is shared and noisy, so the four are measured round-robin (one run of each, again and
again, in a random order) and each time is the median over the rounds: all four see the same
conditions, and the ratios are what to read. Each (cell, H) runs in a fresh process: in one long-lived process the later
configurations slowed down many-fold (the allocator's memory grew past 2 GB), which would have made
the table depend on its own order.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

import rnnkit.nn as rn

CELLS = {"LSTM": (rn.LSTM, nn.LSTM, nn.LSTMCell), "GRU": (rn.GRU, nn.GRU, nn.GRUCell),
         "RNN": (rn.RNN, nn.RNN, nn.RNNCell)}


class CellLoop(nn.Module):
    """What a user writes for a custom cell: a Python loop over a torch.nn cell, autograd for BPTT."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x):  # x (L, N, H_in)
        state = None
        outputs = []
        for x_t in x:
            state = self.cell(x_t, state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs), state  # (L, N, H)


def build(kind: str, H: int):
    ours, ref_cls, cell_cls = CELLS[kind]
    explicit = ours(H, H, engine="explicit")
    fused = ours(H, H)
    reference = ref_cls(H, H)
    loop = CellLoop(cell_cls(H, H))
    for m in (fused, reference):
        m.load_state_dict(explicit.state_dict())
    loop.cell.load_state_dict({k.removesuffix("_l0"): v for k, v in explicit.state_dict().items()})
    return {"explicit": explicit, "fused": fused, "torch.nn": reference, "cell loop": loop}


def step_time(model, x) -> float:
    start = time.perf_counter()
    output, _ = model(x)
    output.sum().backward()
    return time.perf_counter() - start


def measure(kind: str, L: int, N: int, H: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    models = build(kind, H)
    x = torch.randn(L, N, H, requires_grad=True)
    for model in models.values():  # warm-up: allocator, oneDNN primitive caches
        step_time(model, x)
        step_time(model, x)
    times = {name: [] for name in models}
    order = random.Random(0)
    for _ in range(repeats):
        # a fresh random order each round: whoever runs right after the memory-hungry explicit
        # engine pays for fresh pages, and no implementation should always be the one that pays
        names = list(models)
        order.shuffle(names)
        for name in names:
            models[name].zero_grad(set_to_none=True)
            times[name].append(step_time(models[name], x))
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def row(kind: str, H: int, t: dict[str, float]) -> dict:
    return {"cell": kind, "H": H, **{k: round(v, 2) for k, v in t.items()},
            "fused/torch": round(t["fused"] / t["torch.nn"], 3),
            "loop/explicit": round(t["cell loop"] / t["explicit"], 3),
            "explicit/fused": round(t["explicit"] / t["fused"], 3)}


def measure_in_fresh_process(kind: str, H: int, args) -> dict[str, float]:
    command = [sys.executable, __file__, "--one", kind, str(H), "--seq-len", str(args.seq_len),
               "--batch", str(args.batch), "--repeats", str(args.repeats)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--one", nargs=2, metavar=("CELL", "H"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child process: measure one configuration, print its times as JSON
        print(json.dumps(measure(args.one[0], args.seq_len, args.batch, int(args.one[1]), args.repeats)))
        return

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"L={args.seq_len} N={args.batch}, forward+backward, median of {args.repeats} round-robin runs (ms)")
    print(f"{'cell':5} {'H':>4} {'explicit':>9} {'fused':>8} {'torch.nn':>9} {'cell loop':>10} "
          f"{'fused/torch':>12} {'loop/explicit':>14} {'explicit/fused':>15}")
    rows = []
    for kind in args.cells:
        for H in args.hidden:
            t = measure_in_fresh_process(kind, H, args)
            r = row(kind, H, t)
            rows.append(r)
            print(f"{kind:5} {H:4d} {t['explicit']:9.1f} {t['fused']:8.1f} {t['torch.nn']:9.1f} {t['cell loop']:10.1f} "
                  f"{r['fused/torch']:12.3f} {r['loop/explicit']:14.2f} {r['explicit/fused']:15.2f}", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
