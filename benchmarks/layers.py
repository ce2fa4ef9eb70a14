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
again, in a rotating order) and each time is the median over the rounds: all four see the same
conditions, and the ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
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
    names = list(models)
    for round_ in range(repeats):
        # rotate the order each round: whoever runs right after the memory-hungry explicit engine
        # pays for fresh pages, and no implementation should always be the one that pays
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            models[name].zero_grad(set_to_none=True)
            times[name].append(step_time(models[name], x))
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"L={args.seq_len} N={args.batch}, forward+backward, median of {args.repeats} round-robin runs (ms)")
    header = (f"{'cell':5} {'H':>4} {'explicit':>9} {'fused':>8} {'torch.nn':>9} {'cell loop':>10} "
              f"{'fused/torch':>12} {'loop/explicit':>14} {'explicit/fused':>15}")
    print(header)
    rows = []
    for kind in args.cells:
        for H in args.hidden:
            t = measure(kind, args.seq_len, args.batch, H, args.repeats)
            row = {"cell": kind, "H": H, **{k: round(v, 2) for k, v in t.items()},
                   "fused/torch": round(t["fused"] / t["torch.nn"], 3),
                   "loop/explicit": round(t["cell loop"] / t["explicit"], 3),
                   "explicit/fused": round(t["explicit"] / t["fused"], 3)}
            rows.append(row)
            print(f"{kind:5} {H:4d} {t['explicit']:9.1f} {t['fused']:8.1f} {t['torch.nn']:9.1f} {t['cell loop']:10.1f} "
                  f"{row['fused/torch']:12.3f} {row['loop/explicit']:14.2f} {row['explicit/fused']:15.2f}", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
