r"""The registry of engines by name, and the one place where ``engine="auto"`` is decided.

    >>> from rnnkit.nn import engine_names
    >>> engine_names()
    ('fused', 'native', 'explicit', 'scan', 'reference')

``auto`` picks, for each call:

1. ``fused`` (PyTorch's kernels) when the cell has one and no option of this call needs rnnkit's engines
   (``bptt_window`` while gradients are on, recurrent dropout in training, zoneout, resets);
2. else ``native`` (the C++ engine) where it is built, has the cell's kernel and takes the input (float32 or
   float64 on the CPU, outside autocast). For the linear cells (minGRU, minLSTM, RG-LRU) it is measured faster than
   the scan engine, long sequences and short alike (forward + backward, L=4096 N=8 and L=100 N=32 at H=256): one
   C++ pass with the coefficients fused runs each step once, where the scan's blocked algorithm runs each step twice
   as separate ATen operations;
3. else ``scan`` for the linear cells: the whole sequence at once, on any device and dtype;
4. else ``explicit``, which runs every cell.
"""

from __future__ import annotations

from torch import Tensor

from .base import Engine

_REGISTRY: dict[str, Engine] = {}


def register_engine(engine: type[Engine]) -> type[Engine]:
    """Register an engine class under its ``name`` (usable as a class decorator); one instance serves every layer."""
    if engine.name in _REGISTRY and type(_REGISTRY[engine.name]) is not engine:
        raise ValueError(f"an engine named {engine.name!r} is already registered; give yours another name")
    _REGISTRY[engine.name] = engine()
    return engine


def engine_names() -> tuple[str, ...]:
    """The registered engines, in the order ``auto`` prefers them (``"auto"`` itself is not one)."""
    return tuple(_REGISTRY)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``; ValueError naming the choices."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown engine {name!r}; choose one of auto, {', '.join(engine_names())}")
    return _REGISTRY[name]


def needs_rnnkit(layer, resets: Tensor | None, training: bool, grad_enabled: bool) -> str | None:
    """The first option of this call that PyTorch's fused kernels cannot run, or None."""
    if resets is not None:
        return "resets"
    if layer.bptt_window and grad_enabled:
        return "bptt_window"
    if layer.recurrent_dropout and training:
        return "recurrent_dropout"
    if layer.zoneout:
        return "zoneout"
    return None


def choose_engine(layer, x: Tensor, resets: Tensor | None, grad_enabled: bool) -> Engine:
    """The engine that runs this call of ``layer`` (see the module docstring for the rules)."""
    requested = layer.engine
    if requested not in ("auto", "fused"):
        return _REGISTRY[requested]
    cell = layer.cell
    if cell.fused_mode is not None and needs_rnnkit(layer, resets, layer.training, grad_enabled) is None:
        return _REGISTRY["fused"]
    # engine="fused" reaches here only with resets, which PyTorch's kernels cannot run
    native = _REGISTRY.get("native")
    if native is not None and native.refusal(layer) is None and native.accepts(x):
        return native
    return _REGISTRY["scan" if cell.linear else "explicit"]
