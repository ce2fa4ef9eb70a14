"""Crash-safe file writes, shared by every layer (checkpoints, metrics, plots, pages, forecasts).

A reader of a file written here sees the old content or the new content, never a mix: the data goes to a
temporary file beside the target, is fsync'ed, and replaces the target with one atomic ``os.replace``.

Example::

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> write_atomic(path, b"complete")
    >>> path.read_bytes()
    b'complete'
"""

import os
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers see the old or the new content, never a mix."""
    path = Path(path)
    temporary = path.with_name(f"{TEMP_PREFIX}{path.name}")
    write_synced(temporary, data)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and wait until it is on the disk."""
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
