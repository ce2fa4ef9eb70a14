r"""The engine protocol: what every engine that runs a recurrent layer answers, and the per-sequence settings.

An engine is one module under ``rnnkit/nn/engines/`` holding a subclass of :class:`Engine`, registered by name
(:func:`rnnkit.nn.engine_names`). It answers three questions:

* :meth:`Engine.refusal`: can it run this layer's cell with these options, and if not, why (one sentence naming the
  fix)? Asked when a layer is given the engine by name.
* :meth:`Engine.run`: run one layer in one direction over a time-major sequence (the layer does the stacking, the
  directions, packing and the caller's layout). An engine that runs a whole stack at once (PyTorch's fused kernels)
  sets ``whole_stack`` and implements :meth:`Engine.run_stack` instead.
* :meth:`Engine.record`: the same run, returning every step's gates too, for ``trace`` (engines that keep them).

``engine="auto"`` is decided in one place, :func:`rnnkit.nn.engines.registry.choose_engine`.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from ..cells.base import Cell


@dataclass
class SequenceRun:
    """How one layer in one direction runs, besides its tensors.

    Attributes:
        cell: the cell type.
        names: the base names of the parameters passed to the engine, in order.
        batch_sizes: rows alive at each step (non-increasing), or None when all rows have L steps.
        bptt_window: truncate BPTT every this many steps, or None.
        recurrent_mask: (N, P) recurrent-dropout mask, already scaled by 1/(1−p), or None.
        zoneout_h, zoneout_c: zoneout's keep masks, (L, N, P) and (L, N, H) in training, or the keep
            probability p (a float) in evaluation, or None without zoneout.
        resets: (L, N) bool, True where the state returns to the initial state before step t (in this direction's
            time order, rows as the engine sees them), or None.
    """

    cell: Cell
    names: tuple[str, ...]
    batch_sizes: list[int] | None = None
    bptt_window: int | None = None
    recurrent_mask: Tensor | None = None
    zoneout_h: Tensor | float | None = None
    zoneout_c: Tensor | float | None = None
    resets: Tensor | None = None


class Engine(ABC):
    """One way of running a recurrent layer. Subclass it in one module and register it with ``@register_engine``.

    Class attributes:
        name: the registry name (``engine="native"``).
        summary: one line for ``--help`` and ``rnnkit doctor``.
        whole_stack: True when the engine runs every layer and direction at once (:meth:`run_stack`).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    whole_stack: ClassVar[bool] = False

    def refusal(self, layer) -> str | None:
        """Why this engine cannot run ``layer`` (its cell and options), as one sentence naming the fix; None if it can."""
        return None

    def accepts(self, x: Tensor) -> bool:
        """Whether it runs input of this dtype and device (``auto`` passes over an engine that does not)."""
        return True

    def run(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        """One layer in one direction: x (L, N, In), h0 (N, P), c0 (N, H) or None, the parameters by base name.
        Returns ``(y (L, N, P) with zeros past each row's length, h_n (N, P), c_n (N, H) or None)``."""
        raise TypeError(f"the {self.name} engine runs whole stacks only (run_stack)")

    def run_stack(self, layer, input, hx, resets):
        """Every layer and direction at once, in the caller's layout: ``(output, state)``."""
        raise TypeError(f"the {self.name} engine runs one layer and direction at a time (run)")

    def can_record(self, cell) -> bool:
        """Whether :meth:`record` keeps this cell's gates (``trace`` runs on the explicit engine where not)."""
        return type(self).record is not Engine.record

    def record(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        """As :meth:`run`, without autograd, plus every step's values: ``(y, h_n, c_n, cs, gates)`` with cs (L, N, H)
        every c_t or None and gates {name: (L, N, H)}. None when the engine does not keep them."""
        return None
