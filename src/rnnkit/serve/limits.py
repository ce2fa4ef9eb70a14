"""What one server allows: :class:`Limits`, the flags of ``rnnkit serve`` and the ``limits`` of ``create_app``.

Each limit turns a request that would tie the server up into a quick, clear refusal:

    max_input       413 when a request's input is longer: the characters of its text (all its texts together, a
                    prime included), or the steps of a series
    max_tokens      400 when /generate asks for more tokens (/music for more steps)
    timeout         504 when the answer is not ready that many seconds after the request arrived (its wait in the
                    queue included); a generation stops at its next token, other model calls finish in their
                    worker and are dropped
    max_concurrent  model calls running at once, one worker thread each
    queue           requests that may wait for a worker; one more is refused at once with 503 and Retry-After
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

from rnnkit.errors import InputError


@dataclass(frozen=True)
class Limits:
    """The limits of one server (see the module's docstring).

    Args:
        max_input: the most characters of text (or steps of a series) in one request.
        max_tokens: the most tokens one /generate may ask for (steps, for /music).
        timeout: seconds from a request's arrival to its answer, the queue included.
        max_concurrent: model calls at once (worker threads).
        queue: requests that may wait for a worker beyond those running.
        threads: torch's intra-op threads while serving; None: the CPU cores shared among the workers
            (``cores // max_concurrent``, at least 1), so that concurrent calls do not fight over the cores.
        retry_after: the seconds a 503 asks the client to wait (its Retry-After header).
    """

    max_input: int = 10_000
    max_tokens: int = 1_000
    timeout: float = 30.0
    max_concurrent: int = 4
    queue: int = 16
    threads: int | None = None
    retry_after: int = 1

    def __post_init__(self):
        for name in ("max_input", "max_tokens", "max_concurrent", "retry_after"):
            _whole(name, getattr(self, name), 1)
        _whole("queue", self.queue, 0)
        if self.threads is not None:
            _whole("threads", self.threads, 1)
        timeout = self.timeout
        number = not isinstance(timeout, bool) and isinstance(timeout, (int, float)) and math.isfinite(timeout)
        if not number or timeout <= 0:
            raise InputError(f"timeout must be a number of seconds > 0, got {timeout!r}")

    @property
    def torch_threads(self) -> int:
        """The intra-op threads torch runs with while serving."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.max_concurrent)

    def to_dict(self) -> dict:
        """What ``/models`` reports, ``threads`` resolved."""
        return {**asdict(self), "threads": self.torch_threads}


def _whole(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name} must be a whole number ≥ {low}, got {value!r}")
