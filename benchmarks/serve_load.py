"""Throughput and latency of `rnnkit serve`'s /classify under 1, 8 and 32 concurrent clients, over real HTTP.

    python benchmarks/serve_load.py --run runs/sentiment [--clients 1,8,32] [--requests 200] [--runtime torch|onnx]
                                    [--max-concurrent 2] [--queue 64] [--text "a review ..."] [--json]

The server is `rnnkit serve` in a process of its own (uvicorn on a free port of 127.0.0.1), as it runs in use; the
clients are threads of this process, each with its own keep-alive connection, sending its requests one after
another. For each number of clients: requests per second (answered ones over the wall time), p50 and p99 latency
of the answered requests (ms, from send to the whole answer), and how many were refused (503) or lost (no answer
or another status: always 0 unless something is wrong). :func:`measure` is what a benchmark calls.

On the 2-core machine both the server and the clients share the cores: the latencies include that contention.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REVIEW = "the acting was superb and the story quite lovely , though the plot was a little boring at times"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run: str | Path, runtime: str, max_concurrent: int, queue: int) -> tuple[subprocess.Popen, str]:
    """`rnnkit serve RUN` in its own process; (the process, its base URL) once /health answers."""
    port = free_port()
    command = [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port), "--runtime", runtime,
               "--max-concurrent", str(max_concurrent), "--queue", str(queue), "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(url + "/health").status_code == 200:
                return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError(f"rnnkit serve exited: {process.communicate()[1].strip()}")
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("rnnkit serve did not answer /health within 60 s")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def load(url: str, clients: int, requests: int, text: str) -> dict:
    """``requests`` POSTs to /classify spread over ``clients`` concurrent clients; the measurements."""
    per_client = [requests // clients + (1 if index < requests % clients else 0) for index in range(clients)]

    def client(count: int) -> list[tuple[int, float]]:
        results = []
        with httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(count):
                start = time.perf_counter()
                try:
                    status = http.post("/classify", json={"text": text}).status_code
                except httpx.TransportError:
                    status = 0
                results.append((status, time.perf_counter() - start))
        return results

    with httpx.Client(base_url=url) as http:  # warm-up: the first call loads lazily initialised kernels
        for _ in range(5):
            http.post("/classify", json={"text": text})
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [item for batch in pool.map(client, per_client) for item in batch]
    wall = time.perf_counter() - started
    answered = [seconds * 1000 for status, seconds in results if status == 200]
    refused = sum(1 for status, _ in results if status == 503)
    return {"clients": clients, "requests": len(results), "answered": len(answered), "refused": refused,
            "lost": len(results) - len(answered) - refused, "requests_per_s": len(answered) / wall,
            "p50_ms": percentile(answered, 50) if answered else None,
            "p99_ms": percentile(answered, 99) if answered else None,
            "mean_ms": statistics.fmean(answered) if answered else None}


def measure(run: str | Path, clients=(1, 8, 32), requests: int = 200, runtime: str = "torch",
            max_concurrent: int = 2, queue: int = 64, text: str = REVIEW) -> list[dict]:
    """One row per number of clients (see :func:`load`), against a fresh `rnnkit serve RUN` (a classifier run
    directory, or its exported ONNX file with ``runtime="onnx"``)."""
    process, url = start_server(run, runtime, max_concurrent, queue)
    try:
        return [load(url, count, max(requests, count), text) for count in clients]
    finally:
        process.terminate()
        process.communicate(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="A classifier run directory (or ONNX file with --runtime onnx).")
    parser.add_argument("--clients", default="1,8,32", help="Comma-separated numbers of concurrent clients.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per number of clients.")
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch")
    parser.add_argument("--max-concurrent", type=int, default=2, help="The server's worker threads.")
    parser.add_argument("--queue", type=int, default=64, help="The server's queue (beyond it: 503).")
    parser.add_argument("--text", default=REVIEW, help="The text every request classifies.")
    parser.add_argument("--json", action="store_true", help="Print the rows as JSON.")
    args = parser.parse_args()
    rows = measure(args.run, [int(count) for count in args.clients.split(",")], args.requests, args.runtime,
                   args.max_concurrent, args.queue, args.text)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"/classify of {args.run} ({args.runtime}), {args.max_concurrent} workers, queue {args.queue}")
    print(f"{'clients':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'answered':>10}{'refused':>9}{'lost':>6}")
    for row in rows:
        print(f"{row['clients']:>8}{row['requests_per_s']:>10.1f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
              f"{row['answered']:>10}{row['refused']:>9}{row['lost']:>6}")


if __name__ == "__main__":
    main()
