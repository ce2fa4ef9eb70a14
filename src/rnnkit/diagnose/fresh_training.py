"""The training loop of the synthetic benchmarks (adding, copy memory, selective copying): fresh random batches at
every step (an endless supply, as in the papers), Adam, global gradient-norm clipping, and a held-out metric
measured every ``eval_every`` steps, until a step limit, a time budget, a target metric or divergence."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn


@dataclass
class FreshTraining:
    """What one run did: ``steps`` taken, ``stop_reason`` ("steps", "time_budget", the target's name or
    "diverged"), the last held-out ``metric``, ``seconds`` of training and the ``curve`` [[step, seconds, metric]]."""

    steps: int = 0
    stop_reason: str = "steps"
    metric: float = math.nan
    seconds: float = 0.0
    curve: list[list[float]] = field(default_factory=list)


def train_on_fresh_batches(model: nn.Module, batch_loss: Callable[[], Tensor], measure: Callable[[], float], *,
                           steps: int, lr: float, clip: float | None, time_budget: float | None, eval_every: int,
                           reached: Callable[[float], str | None], name: str, metric_name: str,
                           log: Callable[[str], None] | None = None, log_every_seconds: float = 30.0) -> FreshTraining:
    """Train ``model`` with Adam on ``batch_loss()`` (a fresh batch each call); ``measure()`` gives the held-out
    metric (the model is put in eval mode around it); ``reached(metric)`` names the target when it is met."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    run = FreshTraining()
    start = time.perf_counter()
    last_log = -math.inf

    def record() -> float:
        nonlocal last_log
        model.eval()
        with torch.no_grad():
            value = measure()
        model.train()
        elapsed = time.perf_counter() - start
        run.curve.append([run.steps, round(elapsed, 2), value])
        if log is not None and elapsed - last_log >= log_every_seconds:
            log(f"{name}: step {run.steps:,}, {elapsed:.0f}s, test {metric_name} {value:.4g}")
            last_log = elapsed
        return value

    model.train()
    while run.steps < steps:
        loss = batch_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not torch.isfinite(loss):
            run.stop_reason = "diverged"
            break
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        run.steps += 1
        if time_budget is not None and time.perf_counter() - start >= time_budget:
            run.stop_reason = "time_budget"
            break
        if run.steps % eval_every == 0:
            run.metric = record()
            target = reached(run.metric)
            if target is not None:
                run.stop_reason = target
                break
    if not run.curve or run.curve[-1][0] != run.steps:
        run.metric = record()
    run.seconds = round(time.perf_counter() - start, 2)
    return run
