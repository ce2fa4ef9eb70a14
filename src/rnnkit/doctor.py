"""What ``rnnkit doctor`` reports beside rnnkit's version: torch's and Python's, the CPU, the engines that run here.

    >>> from rnnkit.doctor import environment
    >>> from rnnkit.nn import engine_names
    >>> facts = environment()
    >>> [engine["name"] for engine in facts["engines"]] == list(engine_names())
    True

:func:`environment` gathers the facts as one dictionary of plain values (what ``rnnkit doctor --json`` prints,
with rnnkit's version, which the command adds): torch's and Python's versions, the CPU's model name
(``/proc/cpuinfo``) and ATen's CPU capability (the vector units its kernels use), torch's threads, every
registered engine with its one-line ``summary`` and the cells it runs here, and the native engine as
:func:`rnnkit.nn.native_info` describes it (built for which instruction set, its kernels and library, or why it
is not available, with the fix).
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from rnnkit.nn import Recurrent, cell_names, engine_names, get_engine, native_info

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what the platform module says, else None."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def engine_reports() -> list[dict]:
    """Every registered engine, in the order ``auto`` prefers them: its ``summary``, the registered cells it runs
    here (the engine's own :meth:`~rnnkit.nn.Engine.refusal`, asked of a one-unit layer of each cell with no option
    set, built on the meta device: no memory, no random numbers), ``available`` (it runs at least one), and
    ``reason``: why it runs none, in the engine's words."""
    with torch.device("meta"):
        layers = {cell: Recurrent(cell, 1, 1) for cell in cell_names()}
    reports = []
    for name in engine_names():
        engine = get_engine(name)
        refusals = {cell: engine.refusal(layer) for cell, layer in layers.items()}
        cells = [cell for cell, refusal in refusals.items() if refusal is None]
        reason = None if cells else next(iter(refusals.values()), "no cell is registered")
        reports.append({"name": name, "summary": engine.summary, "available": bool(cells), "cells": cells,
                        "reason": reason})
    return reports


def environment() -> dict:
    """Everything ``rnnkit doctor`` prints but rnnkit's version, as plain values (see the module)."""
    native = native_info()
    return {
        "torch": torch.__version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "engines": engine_reports(),
        "native": {**native, "kernels": list(native["kernels"])},
    }
