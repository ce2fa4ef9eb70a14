"""The layer-normalised LSTM on rnnkit's explicit engine against the loop a user writes today, and the cost
of each regulariser over the bare cell.

    .venv/bin/python benchmarks/cells.py                          # L=100, N=32, H in 128 256
    .venv/bin/python benchmarks/cells.py --hidden 256 --rounds 15 --json

Speed: forward + backward (loss = a weighted sum of the outputs) on the same input, same weights, for

    explicit     rnnkit.nn.Recurrent("layernorm_lstm", engine="explicit"): hand-written BPTT
    user loop    a per-step Python loop with nn.Linear and nn.LayerNorm, autograd for BPTT (what
                 PyTorch users write, since torch.nn has no layer-normalised LSTM: pytorch#12167)
    oneDNN LSTM  torch.nn.LSTM, no layer norm: the floor
    matmuls      only the matrix multiplies an LN-LSTM must do (the input projection of all steps, one
                 h W_hh^T per step, the backward's three large products and one dh W_hh per step), with
                 torch.mm (MKL) and with oneDNN's inner product (what the explicit engine uses): the floor

and, for the bare LSTM cell, each regulariser's cost: explicit engine bare, + recurrent dropout 0.25,
+ zoneout 0.1, + weight drop 0.5; fused engine bare and + weight drop 0.5.

The machine is shared and noisy, so the variants are measured round-robin (one run of each, in a new random
order every round) and each time is the median over the rounds: ratios are what to read. Each hidden size
runs in a fresh process.

Memory: the peak resident memory added by one forward + backward, each variant in its own fresh process
(``ru_maxrss`` after minus before; large CPU tensors are mapped and unmapped by the allocator, so the peak
follows the live tensors).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch
from torch import nn

import rnnkit.nn as rn
from rnnkit.nn.ops.linear import linear_rows

from bench_common import cpu_model
from timing import peak_mib, round_robin_medians


class UserLayerNormLSTM(nn.Module):
    """The layer-normalised LSTM as a user writes it: nn.Linear and nn.LayerNorm in a loop over time."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        H = hidden_size
        self.hidden_size = H
        self.ih = nn.Linear(input_size, 4 * H, bias=False)
        self.hh = nn.Linear(H, 4 * H, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.ln_ih, self.ln_hh, self.ln_c = nn.LayerNorm(4 * H), nn.LayerNorm(4 * H), nn.LayerNorm(H)

    def forward(self, x):  # x (L, N, In)
        N, H = x.shape[1], self.hidden_size
        h = x.new_zeros(N, H)
        c = x.new_zeros(N, H)
        outputs = []
        for x_t in x:
            a = self.ln_ih(self.ih(x_t)) + self.ln_hh(self.hh(h)) + self.bias  # (N, 4H)
            i, f, g, o = a.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
            outputs.append(h)
        return torch.stack(outputs), (h, c)  # (L, N, H)

    def load_from(self, layer: rn.Recurrent) -> None:
        """Take the weights of a one-layer ``Recurrent("layernorm_lstm")``."""
        with torch.no_grad():
            self.ih.weight.copy_(layer.weight_ih_l0)
            self.hh.weight.copy_(layer.weight_hh_l0)
            self.bias.copy_(layer.bias_l0)
            for ln, name in ((self.ln_ih, "ln_ih"), (self.ln_hh, "ln_hh"), (self.ln_c, "ln_c")):
                ln.weight.copy_(getattr(layer, f"{name}_weight_l0"))
                ln.bias.copy_(getattr(layer, f"{name}_bias_l0"))


class MatmulsOnly(nn.Module):
    """The matrix multiplies of an LN-LSTM's forward and backward with nothing else: the floor of both.

    ``multiply(x2, w)`` is ``x2 w^T``: torch's own ``torch.mm`` (MKL on CPU), or rnnkit's ``linear_rows``
    (oneDNN's inner product, what the explicit engine runs).
    """

    def __init__(self, input_size: int, hidden_size: int, multiply):
        super().__init__()
        self.w_ih = nn.Parameter(torch.randn(4 * hidden_size, input_size) * 0.05)
        self.w_hh = nn.Parameter(torch.randn(4 * hidden_size, hidden_size) * 0.05)
        self.multiply = multiply

    def forward(self, x):  # x (L, N, In)
        L, N, In = x.shape
        H = self.w_hh.shape[1]
        mul = self.multiply
        with torch.no_grad():
            w_ih, w_hh = self.w_ih.detach(), self.w_hh.detach()
            x2 = x.reshape(L * N, In)
            gi = mul(x2, w_ih)  # the input projection of all steps: (L*N, 4H)
            h = x.new_zeros(N, H)
            hs = []
            for _ in range(L):
                h = torch.tanh(mul(h, w_hh)[:, :H])  # one h W_hh^T per step
                hs.append(h)
            d = torch.ones_like(gi)  # the backward: dx, dW_ih, dW_hh, and one dh W_hh per step
            mul(d, w_ih.t().contiguous())
            torch.mm(d.t(), x2)
            torch.mm(d.t(), torch.cat(hs))
            w_hh_t = w_hh.t().contiguous()
            dh = x.new_ones(N, 4 * H)
            for _ in range(L):
                mul(dh, w_hh_t)
        return gi.view(L, N, -1)[..., :H] + 0 * self.w_ih.sum() + 0 * self.w_hh.sum(), None


def variants(H: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    explicit = rn.Recurrent("layernorm_lstm", H, H, engine="explicit")
    user = UserLayerNormLSTM(H, H)
    user.load_from(explicit)

    def lstm(engine, **options):
        torch.manual_seed(0)
        return rn.Recurrent("lstm", H, H, engine=engine, **options)

    return {
        "ln explicit": explicit, "ln user loop": user, "oneDNN LSTM": nn.LSTM(H, H),
        "matmuls torch.mm": MatmulsOnly(H, H, lambda a, w: torch.mm(a, w.t())),
        "matmuls oneDNN": MatmulsOnly(H, H, linear_rows),
        "lstm explicit": lstm("explicit"), "+ recurrent_dropout 0.25": lstm("explicit", recurrent_dropout=0.25),
        "+ zoneout 0.1": lstm("explicit", zoneout=0.1), "+ weight_drop 0.5": lstm("explicit", weight_drop=0.5),
        "lstm fused": lstm("fused"), "fused + weight_drop 0.5": lstm("fused", weight_drop=0.5),
    }


def measure_speed(H: int, L: int, N: int, rounds: int) -> dict[str, float]:
    return round_robin_medians(variants(H), torch.randn(L, N, H), torch.randn(L, N, H), rounds)  # x (L, N, H_in)


def measure_memory(name: str, H: int, L: int, N: int) -> float:
    """MiB of peak resident memory added by one forward + backward of variant ``name`` (this process only)."""
    return peak_mib(variants(H)[name], torch.randn(L, N, H), torch.randn(L, N, H))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: speed of one H, in this process
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: memory of one variant
    args = parser.parse_args()
    if args.memory_of:
        print(json.dumps(measure_memory(args.memory_of, args.one, args.length, args.batch)))
        return
    if args.one:
        print(json.dumps(measure_speed(args.one, args.length, args.batch, args.rounds)))
        return

    def child(*extra) -> object:
        command = [sys.executable, __file__, "--length", str(args.length), "--batch", str(args.batch),
                   "--rounds", str(args.rounds), *extra]
        return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    results = {}
    for H in args.hidden:
        speed = child("--one", str(H))
        memory = {name: child("--one", str(H), "--memory-of", name)
                  for name in ("ln explicit", "ln user loop", "oneDNN LSTM")}
        results[H] = {"seconds": speed, "peak_mib": memory}
    record = {"benchmark": "cells", "L": args.length, "N": args.batch, "rounds": args.rounds,
              "threads": torch.get_num_threads(), "cpu": cpu_model(),
              "results": results}
    if args.json:
        print(json.dumps(record))
        return
    for H, result in results.items():
        s, m = result["seconds"], result["peak_mib"]
        print(f"H={H}  L={args.length} N={args.batch}  forward+backward, median of {args.rounds} rounds")
        print(f"  layernorm_lstm explicit {s['ln explicit'] * 1e3:8.1f} ms   peak +{m['ln explicit']:.0f} MiB")
        print(f"  user loop               {s['ln user loop'] * 1e3:8.1f} ms   peak +{m['ln user loop']:.0f} MiB"
              f"   explicit is {s['ln user loop'] / s['ln explicit']:.2f}x faster, "
              f"{m['ln explicit'] / m['ln user loop']:.2f}x the memory")
        print(f"  oneDNN LSTM (no LN)     {s['oneDNN LSTM'] * 1e3:8.1f} ms   peak +{m['oneDNN LSTM']:.0f} MiB"
              f"   explicit is {s['ln explicit'] / s['oneDNN LSTM']:.2f}x its time")
        for floor in ("matmuls torch.mm", "matmuls oneDNN"):
            print(f"  {floor:<23} {s[floor] * 1e3:8.1f} ms   {s[floor] / s['oneDNN LSTM']:.2f}x oneDNN's LSTM; "
                  f"explicit is {s['ln explicit'] / s[floor]:.2f}x these matmuls")
        bare = s["lstm explicit"]
        for name in ("+ recurrent_dropout 0.25", "+ zoneout 0.1", "+ weight_drop 0.5"):
            print(f"  lstm explicit {name:<26} {s[name] / bare:.2f}x the bare explicit LSTM ({bare * 1e3:.1f} ms)")
        print(f"  lstm fused + weight_drop 0.5           {s['fused + weight_drop 0.5'] / s['lstm fused']:.2f}x "
              f"the bare fused LSTM ({s['lstm fused'] * 1e3:.1f} ms)")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
