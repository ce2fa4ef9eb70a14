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
    kernels = _kernels() if native_available() else ()
    return {**_load(), "kernels": kernels, "threads": torch.get_num_threads()}


def _kernels() -> tuple[str, ...]:
    """The kernels registered now: the extension's own and those of libraries built with :func:`build_kernel`."""
    info = torch.ops.rnnkit.build_info()
    return tuple(dict(part.split("=", 1) for part in info.split(";"))["kernels"].split(","))


def has_kernel(name: str | None) -> bool:
    """Whether the native engine has a kernel called ``name`` (its own, or one added by :func:`build_kernel`)."""
    return name is not None and native_available() and name in _kernels()


def build_kernel(*sources: str | Path, name: str = "rnnkit_user_kernels", verbose: bool = False) -> str:
    """Compile C++ kernel files (each ending in ``RNNKIT_REGISTER_KERNEL(name, ...)``, see ``recurrence.h``) against
    the installed native engine and load them, so that a cell whose ``native_kernel`` names one runs natively.
    Returns the library's path. Built once per change of the sources (PyTorch's extension cache)."""
    from torch.utils.cpp_extension import load

    if not native_available():
        raise RuntimeError(f"the native engine is not available: {_load()['reason']}")
    library = Path(_load()["library"])
    flags = ["-O3", "-fopenmp"]
    if _load()["isa"] == "AVX2":
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"]
    return load(name=name, sources=[str(source) for source in sources], extra_include_paths=[str(_HERE)],
                extra_cflags=flags, extra_ldflags=[str(library), f"-Wl,-rpath,{library.parent}", "-fopenmp"],
                is_python_module=False, verbose=verbose)
