"""The linear cells (minGRU, minLSTM, RG-LRU) on the scan engine and on the step engine against torch.nn's LSTM
and GRU (oneDNN): forward + backward time and peak memory over the sequence length, with a log-log plot.

    PYTHONPATH=src .venv/bin/python benchmarks/scan.py                        # L = 128 ... 8192, N=8, H=256
    PYTHONPATH=src .venv/bin/python benchmarks/scan.py --plot runs/plots --json
    PYTHONPATH=src .venv/bin/python benchmarks/scan.py --lengths 64 256 --hidden 16 --rounds 1 --no-memory  # smoke

Every model has input size = hidden size = H, one layer, one direction, float32; the loss is a weighted sum of
the outputs (so that every output has a gradient). Variants:

    LSTM, GRU           torch.nn.LSTM / torch.nn.GRU: PyTorch's fused oneDNN kernels
    <cell> scan         rnnkit.nn.Recurrent(cell, engine="scan"): one input projection, one blocked scan, a reverse
                        scan as backward
    <cell> native       rnnkit.nn.Recurrent(cell, engine="native"): the same in C++, the coefficients fused into one
                        pass (where the native engine is built)
    <cell> step         rnnkit.nn.Recurrent(cell, engine="explicit"): the same cell one step at a time (the path
                        generation takes)

The machine is shared and noisy, so at each length the variants run round-robin (a new random order every round)
and each time is the median over the rounds: read the ratios. Issue 23's targets at L=4096, N=8, H=256, forward
+ backward: minLSTM and RG-LRU at least 2.5 times as fast as torch.nn.LSTM, minGRU at least 5 times (minGRU's
projections cost 12 H^2 flops per token against the LSTM's 48 H^2); the target lines are printed when 4096 is
among the lengths.

Memory: the peak resident memory added by one forward + backward, each variant and length in its own fresh
process (``ru_maxrss`` after minus before; large CPU tensors are mapped and unmapped by the allocator, so the peak
follows the live tensors).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

import rnnkit.nn as rn
from rnnkit.nn.native import has_kernel

from bench_common import cpu_model
from timing import peak_mib, round_robin_medians

CELLS = ("mingru", "minlstm", "rglru")
TARGET_L = 4096
TARGET_RATIO = {"mingru": 5.0, "minlstm": 2.5, "rglru": 2.5}


def variants(H: int) -> dict[str, nn.Module]:
    models: dict[str, nn.Module] = {"LSTM": nn.LSTM(H, H), "GRU": nn.GRU(H, H)}
    for cell in CELLS:
        models[f"{cell} scan"] = rn.Recurrent(cell, H, H, engine="scan")
        if has_kernel(rn.get_cell(cell).native_kernel):
            models[f"{cell} native"] = rn.Recurrent(cell, H, H, engine="native")
        models[f"{cell} step"] = rn.Recurrent(cell, H, H, engine="explicit")
    return models


def measure_speed(H: int, L: int, N: int, rounds: int) -> dict[str, float]:
    return round_robin_medians(variants(H), torch.randn(L, N, H), torch.randn(L, N, H), rounds)  # x (L, N, H_in)


def measure_memory(name: str, H: int, L: int, N: int) -> float:
    """MiB of peak resident memory added by one forward + backward of variant ``name`` (this process only)."""
    return peak_mib(variants(H)[name], torch.randn(L, N, H), torch.randn(L, N, H))


def plot(results: dict, path: Path, N: int, H: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted(results, key=int)
    names = list(results[lengths[0]]["seconds"])
    fig, ax = plt.subplots(figsize=(7, 5))
    for name in names:
        style = "-" if name in ("LSTM", "GRU") else ("--" if name.endswith("scan") else ":")
        ax.plot([int(L) for L in lengths], [results[L]["seconds"][name] * 1e3 for L in lengths], style, marker="o",
                label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("forward + backward (ms)")
    ax.set_title(f"Linear recurrences vs oneDNN LSTM/GRU (N={N}, H={H}, {torch.get_num_threads()} threads)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path.mkdir(parents=True, exist_ok=True)
    out = path / "scan_benchmark.png"
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 4096, 8192])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--plot", type=Path, default=Path("/tmp"), help="folder for scan_benchmark.png")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: speed at one L, in this process
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: memory of one variant at --one
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        print(json.dumps(measure_memory(args.memory_of, args.hidden, args.one, args.batch)))
        return
    if args.one:
        print(json.dumps(measure_speed(args.hidden, args.one, args.batch, args.rounds)))
        return

    def child(*extra) -> object:
        command = [sys.executable, __file__, "--batch", str(args.batch), "--hidden", str(args.hidden),
                   "--rounds", str(args.rounds), *(["--threads", str(args.threads)] if args.threads else []), *extra]
        return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    results = {}
    for L in args.lengths:
        speed = child("--one", str(L))
        memory = {} if args.no_memory else {name: child("--one", str(L), "--memory-of", name) for name in speed}
        results[str(L)] = {"seconds": speed, "peak_mib": memory}
    image = plot(results, args.plot, args.batch, args.hidden)
    record = {"benchmark": "scan", "N": args.batch, "H": args.hidden, "rounds": args.rounds,
              "threads": torch.get_num_threads(), "cpu": cpu_model(),
              "torch": torch.__version__, "plot": str(image), "results": results}
    if args.json:
        print(json.dumps(record))
        return
    names = list(results[str(args.lengths[0])]["seconds"])
    print(f"forward + backward, N={args.batch}, H={args.hidden}, {record['threads']} threads, median of "
          f"{args.rounds} rounds: ms (peak MiB added)")
    print(f"{'L':>6}  " + "  ".join(f"{name:>16}" for name in names))
    for L, result in results.items():
        cells = []
        for name in names:
            mib = result["peak_mib"].get(name)
            cells.append(f"{result['seconds'][name] * 1e3:8.1f}" + (f" ({mib:5.0f})" if mib is not None else " " * 8))
        print(f"{L:>6}  " + "  ".join(f"{c:>16}" for c in cells))
    target = results.get(str(TARGET_L))
    if target is not None:
        lstm = target["seconds"]["LSTM"]
        for engine in ("scan", "native"):
            ratios = ", ".join(f"{cell} {lstm / target['seconds'][f'{cell} {engine}']:.2f}x (target >= "
                               f"{TARGET_RATIO[cell]}x)" for cell in CELLS if f"{cell} {engine}" in target["seconds"])
            if ratios:
                print(f"{engine} engine vs torch.nn.LSTM at L={TARGET_L}: {ratios}")
    print(f"plot: {image}")


if __name__ == "__main__":
    main()
