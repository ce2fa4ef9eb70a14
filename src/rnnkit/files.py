"""Crash-safe file writes, shared by every layer (checkpoints, metrics, plots, pages, forecasts).

A reader of a file written here sees the old content or the new content, never a mix: the data goes to a
temporary file beside the target, is fsync'ed, and replaces the target with one atomic ``os.replace``.

A write that the system refuses (disk full, read-only, no permission, a quota) is one line naming the
path, the reason and, when space ran out, the size that was being written: :func:`write_failure`, which
every writer of rnnkit uses so that the messages read alike. Nothing is written through a symbolic link:
files are opened with ``O_NOFOLLOW`` (see :func:`refuse_link` for why a run directory needs that).

Example::

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> write_atomic(path, b"complete")
    >>> path.read_bytes()
    b'complete'
"""

import errno
import os
import re
import shutil
from pathlib import Path

from rnnkit.errors import InputError

TEMP_PREFIX = ".tmp-"

# Errors of the system rather than of rnnkit, by errno: (reason as the message says it, what to do).
_SPACE = "free some space or write elsewhere"
_WRITE_ERRORS = {
    errno.ENOSPC: ("no space left on the device", _SPACE),
    errno.EDQUOT: ("disk quota exceeded", _SPACE),
    errno.EFBIG: ("file too large for this file system", "write elsewhere"),
    errno.EROFS: ("read-only file system", "write elsewhere"),
    errno.EACCES: ("permission denied", "write elsewhere or change its permissions"),
    errno.EPERM: ("operation not permitted", "write elsewhere or change its permissions"),
}


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers see the old or the new content, never a mix.

    InputError (one line, the temporary file removed, ``path`` unchanged) when ``path`` is a directory or
    the system refuses the write.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a file name, e.g. {path / 'output.txt'}")
    temporary = path.with_name(f"{TEMP_PREFIX}{path.name}")
    try:
        _unlink_if_present(temporary)  # a crash's leftover (if a link, only the link goes)
        write_synced(temporary, data)
        os.replace(temporary, path)
    except OSError as error:
        _unlink_if_present(temporary, quietly=True)
        raise write_failure(path, error, len(data)) from None
    fsync_directory(path.parent)


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and wait until it is on the disk; never through a symbolic link (ELOOP)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with open(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def append_synced(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if missing) and wait until it is on the disk; never through a
    symbolic link. A failed append is cut off again, so that a line is there whole or not at all."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        size_before = os.fstat(descriptor).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)
        except OSError:
            os.ftruncate(descriptor, size_before)
            raise
    finally:
        os.close(descriptor)


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


def make_directory(path: Path, what: str = "--out") -> None:
    """Create the directory ``path`` (and its parents); one line naming ``what`` (the flag) if impossible."""
    path = Path(path)
    check_creatable(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{what} {path} is a file, not a directory; choose another {what}") from None
    except OSError as error:
        raise write_failure(path, error, fix=f"choose another {what}", verb="create") from None


def check_creatable(path: Path, what: str = "--out") -> None:
    """InputError if the directory ``path`` could not be created or written (its nearest existing
    ancestor is a file, or is not writable: a read-only mount, no permission); changes nothing."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
    if existing is None:
        return
    if not existing.is_dir():
        if existing == path:
            raise InputError(f"{what} {path} is a file, not a directory; choose another {what}")
        raise InputError(f"cannot create {what} {path}: {existing} is a file, not a directory; choose another {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(existing) else "permission denied"
        raise InputError(f"cannot write {what} {path}: {existing} is not writable ({reason}); choose another {what}")


def write_failure(path: Path, error: Exception, size: int | None = None, *, fix: str | None = None,
                  verb: str = "write") -> InputError:
    """The one-line InputError for a write the system refused: the path, the reason, and for a full disk
    the size that was being written ("needs about 14.2 MB"). ``fix`` replaces the usual advice."""
    number = os_error_number(error)
    if number == errno.ELOOP:
        return link_refusal(Path(path))
    reason, usual_fix = _WRITE_ERRORS.get(number, (_strerror(number, error), "write elsewhere"))
    if number in (errno.ENOSPC, errno.EDQUOT) and size:
        reason += f" (needs about {human_size(size)})"
        if fix is not None and not fix.startswith("free"):
            fix = f"free some space or {fix}"
    return InputError(f"cannot {verb} {path}: {reason}; {fix or usual_fix}")


def os_error_number(error: Exception) -> int | None:
    """The errno of ``error``: an OSError's, or the "(os error N)" that a Rust library (safetensors) puts
    in its message instead; None when it has none."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    found = re.search(r"os error (\d+)", str(error))
    return int(found.group(1)) if found else None


def human_size(size: int) -> str:
    """14200000 -> "14.2 MB"; 900 -> "0.9 kB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size >= scale / 10:
            return f"{size / scale:.1f} {unit}"
    return f"{max(size, 100) / 1e3:.1f} kB"


def refuse_link(path: Path, kind: str) -> None:
    """InputError if ``path`` is a symbolic link; ``kind`` ("directory", "file") is what should be there.

    Why: rnnkit writes and deletes inside a run directory on its own (checkpoints pruned, pointers
    replaced, records appended); through a link those writes and deletions would land outside the
    directory, on files the user never gave rnnkit. So inside a run directory a link is refused, never
    followed.
    """
    if os.path.islink(path):
        raise link_refusal(Path(path), kind)


def remove_tree(path: Path, quietly: bool = False) -> None:
    """Delete the directory (or file) ``path`` inside a run directory, refusing a link (whose target lies
    outside); ``quietly``: ignore what the system refuses (a leftover is pruned again later)."""
    refuse_link(path, "directory")
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=quietly)
    elif path.exists():
        try:
            path.unlink()
        except OSError:
            if not quietly:
                raise


def link_refusal(path: Path, kind: str = "file") -> InputError:
    return InputError(
        f"{path} is a symbolic link; rnnkit does not write or delete through links inside a run directory; "
        f"replace it by a {kind}"
    )


def _unlink_if_present(path: Path, quietly: bool = False) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        if not quietly:
            raise


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _strerror(number: int | None, error: Exception) -> str:
    if number is None:
        return " ".join(str(error).split())[:200]
    return os.strerror(number).lower()
