"""When a training run stops, other than by diverging: its epochs, its step limit, its time budget (counted over
every session of a resumed run, and paying for the final validation and checkpoint: see
:mod:`rnnkit.train.budget`), or a signal (the first SIGINT or SIGTERM: a clean stop with a checkpoint).

Every rank must take the same decision, or the others would wait for it forever: what one rank sees alone (its
clock, a signal sent to it) is summed over the ranks before anyone stops. The Trainer sums :meth:`Stops.wishes`
with each step's totals, and :meth:`Stops.limit_reached` votes on the clock itself.
"""

import signal
import threading
import time
from contextlib import contextmanager

from .budget import FinalWork
from .config import TrainConfig
from .distributed import DistContext
from .position import Position


class Stops:
    """The stop rules of one training: ``config``'s limits, the run's clock and the signals, over ``dist``'s
    ranks. ``elapsed_before_session``: the seconds a resumed run had trained before this session."""

    def __init__(self, config: TrainConfig, dist: DistContext):
        self.config = config
        self.dist = dist
        self.signal_name: str | None = None
        self.elapsed_before_session = 0.0
        self._session_start = time.monotonic()
        self.final_work = FinalWork()  # what the end of the run will take; the Trainer keeps it up to date

    def start_session(self) -> None:
        """Start this session's clock (each call of the Trainer's fit() is one session)."""
        self._session_start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds of training over every session of the run."""
        return self.elapsed_before_session + time.monotonic() - self._session_start

    def wishes(self, next_step: int) -> dict[str, float]:
        """Each reason to stop after step ``next_step`` as this rank sees it: 1.0 (stop) or 0.0, to be summed
        over the ranks."""
        config = self.config
        return {
            "max_steps": float(config.max_steps is not None and next_step >= config.max_steps),
            "time_budget": float(self.out_of_time()),
            "interrupted": float(self.signal_name is not None),
        }

    def limit_reached(self, position: Position) -> str | None:
        """A reason to stop that holds before any further step (the same on every rank)."""
        config = self.config
        if config.epochs is not None and position.epoch >= config.epochs:
            return "epochs"
        if config.max_steps is not None and position.step >= config.max_steps:
            return "max_steps"
        if config.time_budget is not None:
            # Clocks differ between ranks: one rank stopping alone would leave the others waiting forever.
            # A new run trains at least one step, so that it has a checkpoint however short its budget.
            out_of_time = self.out_of_time() if position.step else self.elapsed() >= config.time_budget
            votes = self.dist.sum([float(out_of_time)])[0]
            if votes > 0:
                return "time_budget"
        return None

    def out_of_time(self, ahead: float = 0.0) -> bool:
        """Whether one more step would leave too little of the budget for the end of the run (``ahead``
        seconds from now)."""
        budget = self.config.time_budget
        return budget is not None and self.elapsed() + ahead + self.final_work.reserve() >= budget

    @contextmanager
    def on_signals(self):
        """Turn the first SIGINT / SIGTERM into a clean stop (checkpoint, then return); a second one kills."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(number, frame):
            self.signal_name = signal.Signals(number).name
            signal.signal(number, signal.SIG_DFL if number == signal.SIGTERM else signal.default_int_handler)

        previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
