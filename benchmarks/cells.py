"""The layer-normalised LSTM and the regularised LSTM and GRU on rnnkit's engines against what a user has today:
their own per-step loop (eager and torch.compile'd) and oneDNN's plain kernels (issue 23's targets).

    .venv/bin/python benchmarks/cells.py                                  # L=100, N=32, H 128 256, 2 threads
    .venv/bin/python benchmarks/cells.py --hidden 256 --threads 1 2 --rounds 15 --json
    .venv/bin/python benchmarks/cells.py --hidden 32 --rounds 2 --no-compile --no-memory   # smoke

Speed: forward + backward (loss = a weighted sum of the outputs) on the same input, same weights, for

    ln native        rnnkit.nn.Recurrent("layernorm_lstm", engine="native"): the recurrence loop in C++
    ln explicit      the same on rnnkit's Python loop with hand-written BPTT
    ln user loop     a per-step Python loop with nn.Linear and nn.LayerNorm, autograd for BPTT (what PyTorch users
                     write, since torch.nn has no layer-normalised LSTM: pytorch#12167)
    ln user compiled that loop under torch.compile (inductor); its compile time is reported apart
    oneDNN LSTM/GRU  torch.nn.LSTM / torch.nn.GRU, no layer norm, no regulariser: the floor
    matmuls          only the matrix multiplies an LN-LSTM must do (torch.mm and oneDNN's inner product)

and, for the bare LSTM and GRU cells on the native and the explicit engine, each regulariser's cost: bare,
+ recurrent dropout 0.25, + zoneout 0.1, + both, + weight drop 0.5; the fused engine bare and + weight drop 0.5.

The machine is shared and noisy, so the variants are measured round-robin (one run of each, in a new random
order every round) and each time is the median over the rounds: ratios are what to read. Each hidden size and
thread count runs in a fresh process.

Memory: the peak resident memory added by one forward + backward, each variant in its own fresh process
(``ru_maxrss`` after minus before; large CPU tensors are mapped and unmapped by the allocator, so the peak
follows the live tensors).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from torch import nn

import rnnkit.nn as rn
from rnnkit.nn.ops.linear import linear_rows

from bench_common import cpu_model
from timing import peak_mib, round_robin_medians, run_once


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


REGULARISED = {"bare": {}, "+ recurrent_dropout 0.25": {"recurrent_dropout": 0.25}, "+ zoneout 0.1": {"zoneout": 0.1},
               "+ both": {"recurrent_dropout": 0.25, "zoneout": 0.1}, "+ weight_drop 0.5": {"weight_drop": 0.5}}
MEMORY = ("ln native", "ln explicit", "ln user loop", "oneDNN LSTM")


def variants(H: int, compiled: bool = False) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    native = rn.Recurrent("layernorm_lstm", H, H, engine="native")
    explicit = rn.Recurrent("layernorm_lstm", H, H, engine="explicit")
    explicit.load_state_dict(native.state_dict())
    user = UserLayerNormLSTM(H, H)
    user.load_from(native)
    models = {"ln native": native, "ln explicit": explicit, "ln user loop": user,
              "oneDNN LSTM": nn.LSTM(H, H), "oneDNN GRU": nn.GRU(H, H),
              "matmuls torch.mm": MatmulsOnly(H, H, lambda a, w: torch.mm(a, w.t())),
              "matmuls oneDNN": MatmulsOnly(H, H, linear_rows)}
    if compiled:
        twin = UserLayerNormLSTM(H, H)
        twin.load_from(native)
        models["ln user compiled"] = torch.compile(twin)
    for cell in ("lstm", "gru"):
        for engine in ("native", "explicit"):
            for name, options in REGULARISED.items():
                torch.manual_seed(0)
                models[f"{cell} {engine} {name}"] = rn.Recurrent(cell, H, H, engine=engine, **options)
        for name in ("bare", "+ weight_drop 0.5"):
            torch.manual_seed(0)
            models[f"{cell} fused {name}"] = rn.Recurrent(cell, H, H, engine="fused", **REGULARISED[name])
    return models


def measure_speed(H: int, L: int, N: int, rounds: int, compiled: bool) -> dict[str, float]:
    models = variants(H, compiled)
    x, weights = torch.randn(L, N, H), torch.randn(L, N, H)  # x (L, N, H_in)
    compile_seconds = None
    if compiled:  # the first call compiles (forward and backward): timed apart, then excluded
        start = time.perf_counter()
        run_once(models["ln user compiled"], x, weights)
        compile_seconds = time.perf_counter() - start
    result = round_robin_medians(models, x, weights, rounds)
    result["compile seconds"] = compile_seconds
    return result


def measure_memory(name: str, H: int, L: int, N: int) -> float:
    """MiB of peak resident memory added by one forward + backward of variant ``name`` (this process only)."""
    return peak_mib(variants(H)[name], torch.randn(L, N, H), torch.randn(L, N, H))


def report(H: int, threads: int, L: int, N: int, rounds: int, s: dict, m: dict) -> None:
    """The table of one hidden size and thread count, each ratio beside its target."""
    print(f"H={H}  L={L} N={N}  {threads} thread(s)  forward+backward, median of {rounds} rounds")
    for name in ("ln native", "ln explicit", "ln user loop", "ln user compiled", "oneDNN LSTM", "oneDNN GRU",
                 "matmuls torch.mm", "matmuls oneDNN"):
        if name in s:
            memory = f"   peak +{m[name]:.0f} MiB" if name in m else ""
            print(f"  {name:<18} {s[name] * 1e3:8.1f} ms{memory}")
    native, lstm = s["ln native"], s["oneDNN LSTM"]
    limit = 1.3 if H >= 256 else 1.6
    print(f"  ln native / oneDNN LSTM        {native / lstm:.2f}x   (target <= {limit})")
    print(f"  user loop / ln native          {s['ln user loop'] / native:.2f}x faster   (target >= 2)")
    if "ln user compiled" in s:
        print(f"  compiled loop / ln native      {s['ln user compiled'] / native:.2f}x faster   (target >= 1.5; "
              f"compile took {s['compile seconds']:.0f} s, excluded)")
    if m:
        print(f"  ln native memory / user loop   {m['ln native'] / m['ln user loop']:.2f}x   (target <= 0.7)")
    for cell, floor in (("lstm", "oneDNN LSTM"), ("gru", "oneDNN GRU")):
        bare = s[f"{cell} native bare"]
        print(f"  {cell} native + both / {floor:<11} {s[f'{cell} native + both'] / s[floor]:.2f}x   (target <= 1.15)")
        for name in ("+ recurrent_dropout 0.25", "+ zoneout 0.1", "+ weight_drop 0.5"):
            print(f"    {cell} native {name:<26} {s[f'{cell} native {name}'] / bare:.2f}x the bare native cell "
                  f"({bare * 1e3:.1f} ms; target <= 1.05); explicit {s[f'{cell} explicit {name}'] * 1e3:.1f} ms")
        print(f"    {cell} fused + weight_drop 0.5          {s[f'{cell} fused + weight_drop 0.5'] / s[f'{cell} fused bare']:.2f}x "
              f"the bare fused cell")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="torch threads, each in its own process")
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile'd user loop")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: speed of one H, in this process
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: memory of one variant
    args = parser.parse_args()
    if args.one:
        torch.set_num_threads(args.threads[0])
        if args.memory_of:
            print(json.dumps(measure_memory(args.memory_of, args.one, args.length, args.batch)))
        else:
            print(json.dumps(measure_speed(args.one, args.length, args.batch, args.rounds, not args.no_compile)))
        return
    if not rn.native_available():
        sys.exit(f"error: the native engine is not available: {rn.native_info()['reason']}")

    def child(threads: int, *extra) -> object:
        command = [sys.executable, __file__, "--length", str(args.length), "--batch", str(args.batch),
                   "--rounds", str(args.rounds), "--threads", str(threads), *extra]
        if args.no_compile:
            command.append("--no-compile")
        return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    results = {}
    for threads in args.threads:
        for H in args.hidden:
            speed = child(threads, "--one", str(H))
            memory = {} if args.no_memory else {name: child(threads, "--one", str(H), "--memory-of", name)
                                                 for name in MEMORY}
            results[f"H={H} threads={threads}"] = {"seconds": speed, "peak_mib": memory}
            if not args.json:
                report(H, threads, args.length, args.batch, args.rounds, speed, memory)
    record = {"benchmark": "cells", "L": args.length, "N": args.batch, "rounds": args.rounds,
              "cpu": cpu_model(), "native": rn.native_info()["isa"], "results": results}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
