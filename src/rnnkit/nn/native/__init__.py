r"""The native engine's C++ extension: loading it, and what it says about itself.

The extension (``rnnkit/nn/native/*.cpp``) is compiled by the project's install (``setup.py``, PyTorch's
``torch.utils.cpp_extension``) into ``_C*.so`` beside this file. It registers the ops ``torch.ops.rnnkit.forward``
and ``torch.ops.rnnkit.backward`` (one layer in one direction, any cell with a kernel) with ``TORCH_LIBRARY``, with a
CPU kernel and a Meta (shape-only) kernel each.

Without a C++ compiler the install still succeeds and this module says why the engine is missing;
``engine="auto"`` then runs the explicit engine. ``RNNKIT_NATIVE=0`` in the environment turns the extension off
(the fallback path, on purpose); ``RNNKIT_NATIVE_LIBRARY=/path/to/_C.so`` loads another build of it (a kernel
under development).

    >>> from rnnkit.nn import native_available, native_info
    >>> isinstance(native_available(), bool), sorted(native_info())
    (True, ['available', 'isa', 'kernels', 'library', 'reason', 'threads'])
"""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent
_state: dict = {}


def _library() -> Path | None:
    if os.environ.get("RNNKIT_NATIVE_LIBRARY"):
        return Path(os.environ["RNNKIT_NATIVE_LIBRARY"])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _HERE / f"_C{suffix}"
        if path.exists():
            return path
    return None


def _cpu_runs(isa: str) -> bool:
    """Whether this CPU runs code built for ``isa`` (ATen's own detection of the CPU's vector units)."""
    order = ["DEFAULT", "AVX2", "AVX512"]
    have = torch.backends.cpu.get_cpu_capability()
    if isa not in order or have not in order:
        return isa in ("DEFAULT", have)
    return order.index(have) >= order.index(isa)


def _load() -> dict:
    """Load the extension once; the state says whether it is there, and if not, why."""
    if _state:
        return _state
    state = {"available": False, "reason": None, "isa": None, "kernels": (), "library": None}
    path = _library()
    if os.environ.get("RNNKIT_NATIVE", "1") == "0":
        state["reason"] = "turned off by RNNKIT_NATIVE=0 in the environment"
    elif path is None:
        state["reason"] = ("the C++ extension was not built (no compiler at install time?); install g++ and run "
                           "`make` again (or `pip install --no-build-isolation -e .`)")
    else:
        try:
            torch.ops.load_library(str(path))
            info = dict(part.split("=", 1) for part in torch.ops.rnnkit.build_info().split(";"))
        except (OSError, RuntimeError) as error:
            state["reason"] = f"the C++ extension {path.name} did not load ({error}); rebuild it: `make clean && make`"
        else:
            state["isa"], state["kernels"], state["library"] = info["isa"], tuple(info["kernels"].split(",")), str(path)
            if _cpu_runs(info["isa"]):
                state["available"] = True
            else:
                state["reason"] = (f"the C++ extension was built for {info['isa']}, which this CPU lacks; rebuild it "
                                   f"here: `make clean && make`")
    _state.update(state)
    return _state


def native_available() -> bool:
    """Whether the native engine is built and loads on this machine (:func:`native_info` says why not)."""
    return _load()["available"]


def native_info() -> dict:
    """What the native engine is here: ``available``, ``reason`` (why not, with the fix), ``isa`` (the instruction
    set it was compiled for), ``kernels`` (the cells it has), ``threads`` (ATen's intra-op threads), ``library``."""
    return {**_load(), "threads": torch.get_num_threads()}


def has_kernel(name: str | None) -> bool:
    """Whether the loaded extension has a kernel called ``name``."""
    return name is not None and native_available() and name in _load()["kernels"]
