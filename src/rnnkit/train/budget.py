"""A time budget that holds: the end of a run (its last validation and checkpoint) is paid for out of the budget.

``--time-budget T`` promises that the whole run, training *and* the work after its last step, ends within T
seconds of its start. That work is a validation (the loss and the task's own scores) and a checkpoint; on a
character model of the standard library the validation alone takes longer than a minute on a laptop's CPU,
so stopping at the first step past T overran a 150 s budget by 96 s. So training stops early enough:

    stop after this step  when  elapsed + 2 * step + validation + checkpoint  >=  T

``step`` is the recent duration of one step (a decision is taken in the middle of a step: the rest of that
step and, when the run goes on, one more step both happen before the next decision); ``validation`` and
``checkpoint`` are the durations measured last (each epoch's end measures both), and before the first
measurement an estimate: the validation is timed on its first few batches (:func:`probe_validation`) and
scaled to all of them, the checkpoint from the bytes it writes at a conservative 50 MB/s plus a quarter second.
A machine that gets busier slows the validation as it slows the steps: the validation's estimate follows the
steps' duration (:class:`FinalWork`), and before the run stops on an estimate scaled up that way, the Trainer
times the validation again (a stall slows the steps for a while but may be over). Every estimate is taken with
a 10% margin. A task whose own validation score decodes (BLEU with beam search)
is underestimated until its first epoch ends; a budget shorter than the final work itself stops after the
first step (and the run says so).

Example::

    final = FinalWork()
    final.checkpoint_bytes(4_000_000)
    final.observe_step(0.2); final.observe_validation(30.0)
    final.reserve()     # 2 * 0.2 + 1.1 * (30.0 + 0.33) = 33.8
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

MARGIN = 1.1
_DISK_BYTES_PER_SECOND = 50e6
_CHECKPOINT_FLOOR = 0.25  # seconds: three fsync'ed files and two renames, on a slow disk
_BASE_STEPS = 5  # steps whose mean duration is the base of a probed validation's scaling
WARMUP_STEPS = 3  # a session's first steps allocate, pack weights and warm oneDNN/JIT kernels: a speed
# measured for sizing (the report's warm_tokens_per_second, which benchmarks' calibrations read) leaves them out
RECHECK_SCALE = 1.5  # a validation estimate scaled up more than this is timed again before the run stops for it
PROBE_BATCHES = 5
PROBE_MAX_BATCHES = 50
PROBE_SECONDS = 1.0


class FinalWork:
    """Running estimates of one step and of the work after the last step, in seconds.

    The validation was timed at one moment; the machine may be busier (or idler) when the run ends: on a
    shared machine its speed changed tenfold within a minute. Steps are timed all along, and a validation slows
    down as they do: so the validation's estimate is scaled by how much slower the recent steps (a moving
    average, so that one odd step does not swing it) are than the steps around the moment it was timed; it is
    never taken below half of what was timed (a machine that got idler may get busy again)."""

    def __init__(self):
        self.step: float = 0.0
        self.checkpoint: float = _CHECKPOINT_FLOOR
        self._validation: float = 0.0
        self._base_step: float | None = None  # the step duration when the validation was timed
        self._base_steps = 0  # steps averaged into it (the first few after a probe)
        self._seen = 0
        self._provisional = False
        self._recent: float | None = None  # the recent steps' duration (a moving average), warm-up left out

    def observe_step(self, seconds: float) -> None:
        """One step's duration: a slow step counts at once, a fast one slowly (steps vary; overrunning costs
        the promise, stopping a step early costs a step). The first step of a session counts in ``step`` (the
        budget's promise needs an estimate from the start; a slow warm-up step fades within tens of steps,
        long before a budget of minutes runs out) but in no speed the validation is scaled by."""
        self.step = seconds if seconds > self.step else 0.9 * self.step + 0.1 * seconds
        self._seen += 1
        if self._seen == 1:
            return  # the first step of a session warms up (allocations, kernels): it says nothing of the load
        self._recent = seconds if self._recent is None else 0.8 * self._recent + 0.2 * seconds
        if self._base_steps < _BASE_STEPS:  # the steps right after the validation was timed set its base
            total = (self._base_step or 0.0) * self._base_steps + seconds
            self._base_steps += 1
            self._base_step = total / self._base_steps

    def observe_validation(self, seconds: float, probed: bool = False, provisional: bool = False) -> None:
        """A validation's duration: measured whole, or ``probed`` (estimated from its first batches, see
        :func:`probe_validation`); the steps' duration now becomes the base it is scaled by. ``provisional``:
        probed before any step, on a machine whose speed no step has shown yet (another process may have held
        it for those seconds): it stops no run until its base is known and the Trainer has timed it again
        (:attr:`unconfirmed`)."""
        self._validation = seconds
        self._provisional = provisional
        if probed or self._recent is None:
            self._base_step, self._base_steps = None, 0
        else:
            self._base_step, self._base_steps = self._recent, _BASE_STEPS

    @property
    def unconfirmed(self) -> bool:
        """Whether the validation's estimate is a provisional probe whose base is now known: time it again
        before it stops the run."""
        return self._provisional and self._base_steps >= _BASE_STEPS

    def confirm(self) -> None:
        """Keep the provisional estimate as it stands (it would not stop the run anyway)."""
        self._provisional = False

    def scale(self) -> float:
        """How many times slower the recent steps are than those the validation's estimate was timed beside."""
        if not self._base_step or not self._recent or self._base_steps < _BASE_STEPS:
            return 1.0  # no base yet (a validation just timed): the estimate stands as timed
        return self._recent / self._base_step

    @property
    def validation(self) -> float:
        """The final validation's estimate: the last one timed, scaled by the steps' slowdown since."""
        return self._validation * max(self.scale(), 0.5)

    def observe_checkpoint(self, seconds: float) -> None:
        self.checkpoint = seconds

    def checkpoint_bytes(self, size: int) -> None:
        """The estimate of a checkpoint that writes ``size`` bytes, before one was timed."""
        self.checkpoint = _CHECKPOINT_FLOOR + size / _DISK_BYTES_PER_SECOND

    def reserve(self) -> float:
        """Seconds to keep free of training: two steps and the final validation and checkpoint (a provisional
        validation estimate counts once it is confirmed)."""
        validation = 0.0 if self._provisional else self.validation
        return 2 * self.step + MARGIN * (validation + self.checkpoint)


def probe_validation(batches: Callable[[], Any], run_batch: Callable[[Any], None]) -> float:
    """Seconds a whole validation takes, estimated from its first batches.

    ``batches()`` gives a fresh iterable of the validation batches (None: no validation data, 0 seconds);
    ``run_batch(batch)`` runs one as the validation does. The first batch warms up (allocations, kernels) and
    is timed only when it is the one batch there is; then batches are timed until at least
    :data:`PROBE_BATCHES` of them took :data:`PROBE_SECONDS` (or :data:`PROBE_MAX_BATCHES` ran, or the
    validation ended: then the probe *is* a validation). Their median is scaled to all the batches: a busy
    machine stalls a batch now and then, which a mean would spread over the whole validation."""
    first = batches()
    if first is None:
        return 0.0
    count = len(first) if hasattr(first, "__len__") else sum(1 for _ in batches())
    if count == 0:
        return 0.0
    timings = []
    with torch.no_grad():
        for batch in first:
            start = time.perf_counter()
            run_batch(batch)
            timings.append(time.perf_counter() - start)
            timed = timings[1:]
            if len(timed) >= PROBE_MAX_BATCHES or (len(timed) >= PROBE_BATCHES and sum(timed) >= PROBE_SECONDS):
                break
    if len(timings) == count:
        return sum(timings)
    timed = sorted(timings[1:]) or timings
    return timed[len(timed) // 2] * count
