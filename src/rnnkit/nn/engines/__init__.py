r"""The engines that run a recurrent layer over a sequence, one module each behind one protocol
(:class:`~rnnkit.nn.engines.base.Engine`), registered by name in the order ``auto`` prefers them:

* ``fused``: PyTorch's fused kernels (oneDNN on CPU, cuDNN on GPU) for the cells that have one, the whole stack;
* ``native``: the recurrence loop in C++, forward and backward (:mod:`rnnkit.nn.engines.native`);
* ``explicit``: rnnkit's unrolled loop with a hand-written BPTT in Python, any cell
  (:mod:`rnnkit.nn.engines.explicit`);
* ``scan``: linear recurrences h_t = a_t ⊙ h_{t-1} + b_t, the whole sequence at once (:mod:`rnnkit.nn.engines.scan`);
* ``reference``: the cell's own equations under autograd, the oracle (:mod:`rnnkit.nn.engines.reference`).

``auto`` is decided in :func:`~rnnkit.nn.engines.registry.choose_engine`.
"""

from .base import Engine, SequenceRun
from .explicit import ExplicitEngine
from .fused import FusedEngine
from .native import NativeEngine
from .reference import ReferenceEngine
from .registry import choose_engine, engine_names, get_engine, register_engine
from .scan import ScanEngine

for _engine in (FusedEngine, NativeEngine, ExplicitEngine, ScanEngine, ReferenceEngine):  # in auto's preference
    register_engine(_engine)

__all__ = ["Engine", "SequenceRun", "engine_names", "get_engine", "register_engine", "choose_engine"]
