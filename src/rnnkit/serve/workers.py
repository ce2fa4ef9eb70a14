"""Where model calls run: :class:`Workers`, a bounded queue in front of a pool of worker threads.

The event loop only parses, admits and answers; every model call runs in one of ``max_concurrent`` threads
(torch releases the GIL inside its kernels, so the loop stays responsive while they compute). A request is
admitted while fewer than ``max_concurrent + queue`` are running or waiting, else refused at once
(:class:`Busy`: 503 with Retry-After). Admitted requests take a worker in arrival order.

A worker slot is given back when its thread finishes, not when its request gives up: a call that outlives its
request's deadline (:class:`TimedOut`, 504) still occupies its thread, so it still counts against the limit
and the server never runs more calls than it has threads. A call that can stop early (a generation, between
tokens) is told to through its :class:`Cancel`.

All the bookkeeping happens on the event loop's thread, so plain counters need no lock.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import torch

from .limits import Limits


class Busy(Exception):
    """Every worker is busy and the queue is full."""


class TimedOut(Exception):
    """The request's deadline passed before its answer was ready."""


class Cancel:
    """Tells a running call that its request is gone (deadline passed, client disconnected): the call checks
    :meth:`check` between steps, which raises :class:`Cancelled` once :meth:`set` has been called."""

    def __init__(self):
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class Cancelled(Exception):
    """Raised inside a worker by :meth:`Cancel.check` to stop a call whose request is gone."""


class Workers:
    """``max_concurrent`` worker threads behind a queue of ``queue`` places (see the module's docstring).

    Example (inside a coroutine)::

        deadline = workers.deadline()
        result = await workers.run(runtime.predict, texts, {}, deadline=deadline, cancel=Cancel())
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self.running = 0  # slots held: calls in a thread, and slots handed to a waiter that has not started yet
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.pool = ThreadPoolExecutor(limits.max_concurrent, thread_name_prefix="rnnkit-serve")
        self.served = 0
        self.refused = 0

    def deadline(self) -> float:
        """The monotonic time by which a request arriving now must be answered."""
        return time.monotonic() + self.limits.timeout

    async def run(self, function: Callable[..., Any], *args, deadline: float, cancel: Cancel) -> Any:
        """``function(*args)`` in a worker thread under ``torch.inference_mode``, once a worker is free; raises
        :class:`Busy` at once when the queue is full, :class:`TimedOut` when ``deadline`` passes first (and then
        sets ``cancel``)."""
        await self.acquire(deadline)
        return await self.start(function, *args, deadline=deadline, cancel=cancel)

    async def acquire(self, deadline: float) -> None:
        """Take a worker slot, waiting in the queue until ``deadline``; the caller must :meth:`start` a call
        (which gives the slot back when it ends)."""
        if self.running < self.limits.max_concurrent and not self.waiting:
            self.running += 1
            return
        if len(self.waiting) >= self.limits.queue:
            self.refused += 1
            raise Busy()
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await asyncio.wait_for(turn, max(deadline - time.monotonic(), 0))
        except (asyncio.TimeoutError, asyncio.CancelledError) as stop:
            if turn in self.waiting:
                self.waiting.remove(turn)
            elif turn.done() and not turn.cancelled():
                self._release()  # the slot was handed over as the deadline passed: pass it on
            raise TimedOut() if isinstance(stop, asyncio.TimeoutError) else stop

    async def start(self, function: Callable[..., Any], *args, deadline: float, cancel: Cancel) -> Any:
        """Run ``function(*args)`` in the slot :meth:`acquire` took; the slot is released when the thread ends."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self.pool, _inference, function, args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        try:
            result = await asyncio.wait_for(asyncio.shield(future), max(deadline - time.monotonic(), 0))
        except asyncio.TimeoutError:
            cancel.set()
            future.add_done_callback(_retrieve)
            raise TimedOut() from None
        except asyncio.CancelledError:  # the client went away: the call may stop early, its slot frees itself
            cancel.set()
            future.add_done_callback(_retrieve)
            raise
        self.served += 1
        return result

    def _release(self) -> None:
        """A slot is free: hand it to the first request still waiting, else count it free."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.running -= 1

    def state(self) -> dict:
        """What ``/health`` reports: calls running, requests waiting, answered and refused so far."""
        return {"running": self.running, "waiting": len(self.waiting), "served": self.served, "refused": self.refused}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _inference(function: Callable[..., Any], args: tuple) -> Any:
    # inference_mode is per thread: each worker turns it on for its own call.
    with torch.inference_mode():
        return function(*args)


def _retrieve(future: asyncio.Future) -> None:
    """Read the outcome of a call nobody waits for any more, so that asyncio does not log it as never retrieved
    (a cancelled generation ends with Cancelled, which is expected)."""
    if not future.cancelled():
        future.exception()
