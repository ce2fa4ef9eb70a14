"""Forward + backward timing for the layer benchmarks: round-robin medians, and the peak memory of one pass.

The machine is shared and noisy, so the variants are measured round-robin (one run of each, in a new random
order every round) and each time is the median over the rounds: every variant sees the same conditions.
"""

import random
import resource
import statistics
import time

import torch


def run_once(model: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor) -> float:
    """Seconds of one forward and one backward pass of ``model(x)`` (loss: the outputs weighted by ``weights``)."""
    start = time.perf_counter()
    out, _ = model(x)
    (out * weights).sum().backward()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def round_robin_medians(models: dict[str, torch.nn.Module], x: torch.Tensor, weights: torch.Tensor,
                        rounds: int) -> dict[str, float]:
    """Median seconds of each model over ``rounds`` rounds, after one warm-up pass each (allocator, oneDNN)."""
    for model in models.values():
        run_once(model, x, weights)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        order = list(models)
        random.shuffle(order)
        for name in order:
            times[name].append(run_once(models[name], x, weights))
    return {name: statistics.median(values) for name, values in times.items()}


def peak_mib(model: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor) -> float:
    """MiB of peak resident memory one forward + backward adds; run it in a fresh process, one model each."""
    with torch.no_grad():
        model(x[:2])  # load kernels and code paths before the baseline is read
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run_once(model, x, weights)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) / 1024
