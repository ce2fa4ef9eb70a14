"""Deployment costs (issue 25): one step of a stream per cell, and the server under load.

    .venv/bin/python benchmarks/deploy.py                          # every cell, H=256, batch 1, one thread
    .venv/bin/python benchmarks/deploy.py --cells lstm gru layernorm_lstm --rounds 9 --json
    .venv/bin/python benchmarks/deploy.py --hidden 16 --rounds 2 --steps 50   # smoke
    .venv/bin/python benchmarks/deploy.py --cells lstm --serve runs/sst2 --clients 1 8 32 --requests 400

Part 1, the streaming step. For each registered cell, one layer with input size = hidden size = H, batch 1, float32,
one thread (torch and onnxruntime both told so). One step of a stream is a call on one time step that takes the
state the last call returned (x (1, 1, H), h0 [, c0] -> y, h_n [, c_n]), measured as µs per call:

    torch eager     the rnnkit layer in eval mode under torch.inference_mode, on the engine ``auto`` chooses
    ort float32     the layer exported by ``rnnkit.export.layer_to_onnx``, run by onnxruntime
    ort int8        the same file with dynamic int8 weights (``rnnkit.export.quantize.quantize_int8``)

with the file sizes of the float32 and int8 files. The three run round-robin (a new random order every round), each
round ``--steps`` calls, and the median over the rounds is reported.

Part 2, the server (with ``--serve RUN``, a trained classifier run): ``rnnkit serve RUN`` in its own process,
``/classify`` requests from 1, 8 and 32 concurrent clients over real HTTP (benchmarks/serve_load.py): throughput,
p50 and p99 latency, requests refused and lost.

Targets (issue 25): ort float32 step ≤ 50 µs for lstm/gru, ≤ 100 µs for layernorm_lstm, and ≥ 2× faster than torch
eager; int8 file ≤ 0.3× the float32 file; /classify p99 ≤ 50 ms at 8 clients; 0 lost at 32.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import rnnkit.nn as rn
from rnnkit.export import layer_to_onnx
from rnnkit.nn.engines.registry import choose_engine
from rnnkit.export.quantize import quantize_int8

from bench_common import cpu_model


def session(path: Path) -> ort.InferenceSession:
    """An onnxruntime session on one thread, all graph optimisations on."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_stepper(layer, H: int):
    """A function making one streaming step on the layer, state carried from call to call."""
    x = torch.randn(1, 1, H)  # (L=1, N=1, In)
    state = [None]

    def step():
        with torch.inference_mode():
            _, state[0] = layer(x, state[0])
    return step


def ort_stepper(sess: ort.InferenceSession, H: int, has_cell_state: bool):
    """The same streaming step through an exported file: h_n (and c_n) fed back as h0 (and c0)."""
    feed = {"x": np.random.randn(1, 1, H).astype(np.float32), "h0": np.zeros((1, 1, H), np.float32)}
    if has_cell_state:
        feed["c0"] = np.zeros((1, 1, H), np.float32)
    outputs = ["h_n", "c_n"] if has_cell_state else ["h_n"]

    def step():
        state = sess.run(outputs, feed)
        feed["h0"] = state[0]
        if has_cell_state:
            feed["c0"] = state[1]
    return step


def median_us(steppers: dict, rounds: int, steps: int) -> dict[str, float]:
    """µs per call of each stepper: the median over rounds, the steppers in a new random order each round."""
    for step in steppers.values():  # warm-up: first calls allocate and plan
        for _ in range(20):
            step()
    times = {name: [] for name in steppers}
    for _ in range(rounds):
        names = list(steppers)
        random.shuffle(names)
        for name in names:
            step = steppers[name]
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_cell(cell: str, H: int, rounds: int, steps: int, folder: Path) -> dict:
    torch.manual_seed(0)
    layer = rn.Recurrent(cell, H, H).eval()
    fp32, int8 = folder / f"{cell}.onnx", folder / f"{cell}.int8.onnx"
    layer_to_onnx(layer, fp32)
    quantize_int8(fp32, int8)
    has_c = layer.cell.has_cell_state
    us = median_us({"torch eager": torch_stepper(layer, H),
                    "ort float32": ort_stepper(session(fp32), H, has_c),
                    "ort int8": ort_stepper(session(int8), H, has_c)}, rounds, steps)
    engine = choose_engine(layer, torch.zeros(1, 1, H), None, grad_enabled=False).name
    return {"cell": cell, "engine": engine,
            "us": us, "speedup_ort_vs_torch": us["torch eager"] / us["ort float32"],
            "bytes_float32": fp32.stat().st_size, "bytes_int8": int8.stat().st_size,
            "size_ratio": int8.stat().st_size / fp32.stat().st_size}


def print_table(rows: list[dict]) -> None:
    print(f"{'cell':16} {'engine':9} {'torch eager':>12} {'ort fp32':>10} {'ort int8':>10} {'ort/torch':>10} "
          f"{'fp32 KB':>9} {'int8 KB':>9} {'int8/fp32':>9}")
    for r in rows:
        us = r["us"]
        print(f"{r['cell']:16} {r['engine']:9} {us['torch eager']:10.1f}µs {us['ort float32']:8.1f}µs {us['ort int8']:8.1f}µs "
              f"{r['speedup_ort_vs_torch']:9.2f}× {r['bytes_float32'] / 1024:9.0f} {r['bytes_int8'] / 1024:9.0f} "
              f"{r['size_ratio']:9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=None, help="cells to measure (default: every registered cell)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=500, help="calls per round")
    parser.add_argument("--serve", metavar="RUN", default=None,
                        help="a trained classifier run: also measure `rnnkit serve RUN` under load")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients (--serve)")
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch", help="the server's runtime (--serve)")
    parser.add_argument("--requests", type=int, default=400, help="requests per client count in the server part")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cells = args.cells or list(rn.cell_names())
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure_cell(cell, args.hidden, args.rounds, args.steps, Path(folder)) for cell in cells]
    result = {"cpu": cpu_model(), "torch": torch.__version__, "onnxruntime": ort.__version__,
              "hidden": args.hidden, "rounds": args.rounds, "steps": args.steps, "cells": rows}
    if args.serve:
        from serve_load import measure  # the server in its own process, clients as threads here, real HTTP

        result["serve"] = measure(args.serve, clients=args.clients, requests=args.requests, runtime=args.runtime)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['cpu']}; torch {result['torch']}, onnxruntime {result['onnxruntime']}; H={args.hidden}, batch 1, "
          f"one thread; median of {args.rounds} rounds of {args.steps} steps")
    print_table(rows)
    if "serve" in result:
        print(json.dumps(result["serve"], indent=1))


if __name__ == "__main__":
    main()
