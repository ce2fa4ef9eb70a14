"""Ctrl-C (SIGINT) and SIGTERM: every command stops within a second, with one line and status 130 or 143.

While a command runs, :func:`signals_as_exceptions` turns both signals into :class:`Interrupted` (a
BaseException that remembers which signal it was), which :func:`rnnkit.cli.main` prints as one line
before it exits with :func:`exit_status` (128 + the signal's number, the shell's convention). The handlers are
installed even where the parent process ignored SIGINT (a script's ``rnnkit evaluate ... &`` inherits
SIG_IGN): a command that is sent a signal by name should stop, and ``rnnkit train`` already does.

Python runs a signal handler only between two bytecodes, so a command inside a long C++ call (a whole sequence
in the native engine, a large matrix product) would notice the signal only when the call returns. With
``watchdog=True`` (the console script) a thread that the signal itself wakes (``signal.set_wakeup_fd``) waits
:data:`GRACE_SECONDS` for the command to stop on its own; if it has not, it removes the outputs the command
had created (:func:`rnnkit.files.remove_created_outputs`), prints the line and ends the process. It leaves
alone a signal whose handler is not this module's: ``rnnkit train`` (and the benchmarks that train) install
their own, which stop at the next step and write a checkpoint first.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager

from rnnkit.files import remove_created_outputs

SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED_STATUSES = (128 + signal.SIGINT, 128 + signal.SIGTERM)  # 130, 143
# How long the command may take to stop on its own after a signal before the watchdog ends the process:
# the issue asks for an exit within a second of the signal.
GRACE_SECONDS = 0.6


class Interrupted(BaseException):
    """The command was stopped by the signal ``number`` (SIGINT or SIGTERM). A BaseException, as
    KeyboardInterrupt is, so that no ``except Exception`` swallows it; not a KeyboardInterrupt, which click
    would turn into its Abort (printing an empty line first)."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


def exit_now(status: int) -> None:
    """End the process with ``status`` at once, standard output and error flushed: for a command that was
    interrupted and has cleaned up and printed its line (the interpreter's shutdown is skipped)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def exit_status(number: int) -> int:
    """The status of a process ended by signal ``number``, as a shell reports it: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(number)


def message(number: int, removed=()) -> str:
    """The one line (without ``error: ``) for a command stopped by signal ``number`` that removed the outputs
    ``removed`` (those it had created before it was stopped)."""
    line = "interrupted (SIGINT, Ctrl-C)" if number == signal.SIGINT else f"stopped by {signal.Signals(number).name}"
    if removed:
        line += f"; removed the outputs it had written so far: {', '.join(str(path) for path in removed)}"
    return line


def _raise_interrupted(number, frame):
    _received.append(number)
    raise Interrupted(number)


# The SIGINTs and SIGTERMs this process received, as far as it knows: those this module raised, and those
# the watchdog saw while another handler (the Trainer's clean stop) had them.
_received: list[int] = []


def last_signal() -> int:
    """The last SIGINT or SIGTERM received (SIGINT when none is known): what a command that stopped cleanly
    on a signal (a training: checkpoint first) reports with :func:`exit_status`."""
    return _received[-1] if _received else signal.SIGINT


@contextmanager
def signals_as_exceptions(watchdog: bool = False):
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread; with ``watchdog``, a
    command that does not stop within :data:`GRACE_SECONDS` is ended (see the module docstring). The previous
    handlers (and wakeup descriptor) are restored afterwards. Elsewhere than the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _raise_interrupted) for number in SIGNALS}
    guard = _Watchdog() if watchdog else None
    try:
        yield
    finally:
        if guard is not None:
            guard.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Watchdog:
    """A daemon thread woken by every signal that has a Python handler (the byte the C-level handler writes to
    the wakeup descriptor is the signal's number), which ends the process when the command does not stop."""

    def __init__(self):
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._done = threading.Event()
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="rnnkit-signal-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        signal.set_wakeup_fd(self._previous_fd)
        self._writer.close()  # wakes the thread (end of stream), which closes the reader

    def _watch(self) -> None:
        try:
            while not self._done.is_set():
                received = self._reader.recv(64)
                if not received:
                    return
                for number in received:
                    if number in SIGNALS:
                        _received.append(number)
                    if number in SIGNALS and signal.getsignal(number) is _raise_interrupted:
                        self._end_unless_stopped(number)
        except OSError:
            return
        finally:
            self._reader.close()

    def _end_unless_stopped(self, number: int) -> None:
        if self._done.wait(GRACE_SECONDS):
            return  # the command stopped on its own and said so
        removed = remove_created_outputs()
        try:
            os.write(sys.stderr.fileno(), f"error: {message(number, removed)}\n".encode())
        except (OSError, ValueError):
            pass
        os._exit(exit_status(number))  # not exit_now: the main thread may hold the streams' locks
