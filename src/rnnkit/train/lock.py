"""One training at a time per run directory: an advisory lock on ``RUN/.lock``.

Two trainings writing into one directory would interleave their metrics and prune each other's
checkpoints. So a training holds an exclusive ``flock`` on ``RUN/.lock`` from before it changes anything
in the directory until it ends. Why ``flock``: the kernel drops the lock when the process ends, however it
ends (kill -9 included), so a lock file left behind never blocks anyone: only a lock held by a live process
does. The file holds the holder's PID as text so that a second training can say who is in its way; the
holder removes it when it ends normally.

Example::

    with RunLock.acquire(Path("runs/x")):        # InputError naming the holder's PID if held
        ...                                     # train into runs/x
    holder_of(Path("runs/x"))                   # None: free again (a probe; changes nothing)
"""

import errno
import fcntl
import os
import time
from pathlib import Path

from rnnkit.errors import InputError
from rnnkit.files import link_refusal, write_failure

LOCK_FILE = ".lock"
# A probe (holder_of) holds the lock for microseconds; an acquirer that meets one tries again this long
# before it gives up, so that only a real holder (a whole training) turns it away.
_ATTEMPTS, _PAUSE_SECONDS = 10, 0.05


class RunLock:
    """The held lock of one run directory; :meth:`release` (or leaving the ``with`` block) gives it back."""

    def __init__(self, path: Path, descriptor: int):
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def acquire(cls, directory: Path) -> "RunLock":
        """Lock the existing directory ``directory``; InputError naming the holder's PID if another
        process holds it (or if ``RUN/.lock`` is a symbolic link, or cannot be written)."""
        path = Path(directory) / LOCK_FILE
        for attempt in range(_ATTEMPTS):
            descriptor = _open(path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(descriptor)
                os.close(descriptor)
                if attempt + 1 == _ATTEMPTS:
                    raise busy(Path(directory), pid) from None
                time.sleep(_PAUSE_SECONDS)
                continue
            # The holder before us may have removed the file between our open and our lock: then this lock
            # is on a file nobody else will open; lock the one now at the path instead.
            if not _is_file_at(descriptor, path):
                os.close(descriptor)
                continue
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            except OSError as error:
                os.close(descriptor)
                raise write_failure(path, error, fix="choose another --out") from None
            return cls(path, descriptor)
        raise busy(Path(directory), None)

    def release(self) -> None:
        """Remove the lock file (while still holding the lock, so that no one is misled) and unlock."""
        if self._descriptor is None:
            return
        try:
            if _is_file_at(self._descriptor, self.path):
                os.unlink(self.path)
        except OSError:
            pass  # a lock file left behind blocks no one
        os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def holder_of(directory: Path) -> int | None:
    """The PID holding ``directory``'s lock (0 when it cannot be read), or None when no one holds it.
    Changes nothing on disk."""
    path = Path(directory) / LOCK_FILE
    try:
        descriptor = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        for _ in range(_ATTEMPTS):  # a holder writes its PID just after it takes the lock
            pid = _read_pid(descriptor)
            if pid:
                return pid
            time.sleep(_PAUSE_SECONDS / 5)
        return 0
    finally:
        os.close(descriptor)  # also drops a shared lock taken above
    return None


def refuse_if_held(directory: Path) -> None:
    """InputError naming the holder when a training holds ``directory``; changes nothing."""
    pid = holder_of(directory)
    if pid is not None:
        raise busy(Path(directory), pid)


def busy(directory: Path, pid: int | None) -> InputError:
    holder = f"PID {pid}" if pid else "a process whose PID could not be read"
    return InputError(
        f"{directory} is in use by another training ({holder}); wait for it to end or stop it, "
        "or choose another --out"
    )


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if isinstance(error, FileNotFoundError) and not flags & os.O_CREAT:
            raise  # nothing to probe
        if error.errno == errno.ELOOP:
            raise link_refusal(path) from None
        raise write_failure(path, error, fix="choose another --out") from None


def _read_pid(descriptor: int) -> int | None:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_file_at(descriptor: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
