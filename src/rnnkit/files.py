"""Crash-safe file writes, shared by every layer (checkpoints, metrics, plots, pages, forecasts).

A reader of a file written here sees the old content or the new content, never a mix: the data goes to a
temporary file beside the target, is fsync'ed, and replaces the target with one atomic ``os.replace``.

A write that the system refuses (disk full, read-only, no permission, a quota) is one line naming the
path, the reason and, when space ran out, the size that was being written: :func:`write_failure`, which
every writer of rnnkit uses so that the messages read alike. Nothing is written through a symbolic link:
files are opened with ``O_NOFOLLOW`` (see :func:`refuse_link` for why a run directory needs that).

What a user asked for (``--out``, ``--output``, ``--midi``, ``--wav``, ``--plot``) is written by
:func:`write_output`, which treats a path the way ``cp`` does instead of replacing what is there:

    a new or regular file        written atomically, as above
    a symbolic link              written through: the file it points to is replaced atomically, the link stays
    a character device, a pipe   written in place (``/dev/null``, ``/dev/stdout``, a FIFO a program reads)
    a block device, a socket     refused: rnnkit writes files

:func:`check_output_path` refuses, before any work, what :func:`write_output` could not write (an empty
path, a NUL character, a loop of links, a block device); :func:`check_distinct_outputs` refuses two outputs
of one command that are the same file, however spelt. An interrupted command removes the outputs it had
created so far (:func:`remove_created_outputs`), so that it leaves no partial set of them behind.

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
import stat
import time
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
    # os.replace would put a regular file in the place of a link or a device (as root, of /dev/null itself):
    # write_output writes through those; here, where rnnkit names the file, they are refused.
    if os.path.islink(path):
        raise InputError(f"{path} is a symbolic link (to {os.readlink(path)}), which this write would replace; "
                         "write to the file it points to, or remove the link")
    if _kind(path) not in (None, "file"):
        raise InputError(f"{path} is a {_kind(path)}, not a file; rnnkit replaces only regular files here: "
                         "move it away or write elsewhere")
    temporary = path.with_name(f"{TEMP_PREFIX}{path.name}")
    _WRITING.add(temporary)
    try:
        _unlink_if_present(temporary)  # a crash's leftover (if a link, only the link goes)
        write_synced(temporary, data)
        os.replace(temporary, path)
    except OSError as error:
        _unlink_if_present(temporary, quietly=True)
        raise write_failure(path, error, len(data)) from None
    except BaseException:  # an interruption (Ctrl-C, SIGTERM): no temporary file is left behind
        _unlink_if_present(temporary, quietly=True)
        raise
    finally:
        _WRITING.discard(temporary)
    fsync_directory(path.parent)


# --------------------------------------------------------------------------- outputs the user asked for

# Links followed before a chain counts as a loop (Linux's own limit, SYMLOOP_MAX, is 40).
MAX_LINKS = 40
# Seconds an output that is a pipe may wait for its reader to open it before it is refused.
PIPE_READER_WAIT = 1.0
# Outputs that write_output created (they did not exist before), with their (device, inode): what an
# interrupted command removes again (remove_created_outputs). Replaced files are complete: they stay.
_CREATED: list[tuple[Path, tuple[int, int]]] = []
# The temporary files write_atomic is writing now: what a process ended mid-write removes first.
_WRITING: set[Path] = set()


def output_destination(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where writing ``path`` lands, and whether it is written in place.

    Links are followed as ``open`` follows them (each link relative to its own directory); a path that
    reaches a process's descriptor (``/dev/stdout``, ``/proc/self/fd/1``, ``/dev/fd/3``) is written in
    place, as is a character device or a pipe. Anything else (a regular file, a name that is free) is
    written atomically beside the destination. InputError for a loop of links.
    """
    current = Path(os.path.abspath(path))
    for _ in range(MAX_LINKS):
        directory = Path(os.path.realpath(current.parent))
        current = directory / current.name
        if directory.parts[1:2] == ("proc",) and directory.name == "fd":
            return current, True  # an open descriptor: replacing its name would not reach what it writes to
        if not os.path.islink(current):
            return current, _kind(current) in ("character device", "pipe")
        current = directory / os.readlink(current)  # an absolute target replaces `directory`
    raise InputError(f"{path} is a loop of symbolic links (more than {MAX_LINKS}); point it at a file")


def check_output_path(path: str | os.PathLike, flag: str, example: str = "out.txt") -> tuple[Path, bool]:
    """:func:`output_destination` of ``path`` (the output of ``flag``), or InputError (one line) if no file can
    be written there: an empty path, a NUL character, a loop of links, a block device, a socket."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise InputError(f"{flag} is an empty path; give the name of a file to write, e.g. {flag} {example}")
    if "\0" in text:
        raise InputError(f"{flag} {text!r} holds a NUL character, which no file name can; give a plain file name")
    try:
        destination, in_place = output_destination(text)
    except InputError as error:
        raise InputError(f"{flag} {error}") from None
    kind = _kind(destination)
    if kind in ("block device", "socket"):
        shown = text if str(destination) == os.path.abspath(text) else f"{text} (a link to {destination})"
        raise InputError(f"{flag} {shown} is a {kind}; rnnkit writes a file (or through a character device such "
                         f"as /dev/null, or a pipe): give a file name, e.g. {example}")
    return destination, in_place


def check_distinct_outputs(outputs) -> None:
    """InputError if two of ``outputs`` ((flag, path) pairs; None paths skipped) would write the same file:
    the same name, another spelling of it, or a link to it. A character device may take several (writing
    /dev/null twice replaces nothing)."""
    seen: dict[object, tuple[str, str]] = {}
    for flag, path in outputs:
        if path is None:
            continue
        destination, _ = output_destination(path)
        if _kind(destination) == "character device":
            continue
        try:
            status = os.stat(destination)
            key: object = (status.st_dev, status.st_ino)
        except OSError:
            key = str(destination)
        if key in seen:
            other_flag, other = seen[key]
            same = "the same path" if other == os.fspath(path) else "the same file"
            raise InputError(f"{other_flag} {other} and {flag} {os.fspath(path)} are {same}; one would replace the "
                             "other: give each output a file of its own")
        seen[key] = (flag, os.fspath(path))


def write_output(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` where the user asked, as ``cp`` would (see the module docstring): atomically to a regular
    file or a free name, through a link to its destination, in place to a character device or a pipe; never
    replacing the link or the device. Returns ``path``. InputError (one line) when the system refuses."""
    destination, in_place = output_destination(path)
    if in_place:
        _write_in_place(destination, Path(path), data)
        return Path(path)
    existed = os.path.lexists(destination)
    write_atomic(destination, data)
    if not existed:
        status = os.stat(destination)
        _CREATED.append((destination, (status.st_dev, status.st_ino)))
    return Path(path)


def forget_created_outputs() -> None:
    """Start a new command: the outputs created so far are its predecessor's, not to be removed."""
    _CREATED.clear()


def remove_created_outputs() -> list[Path]:
    """Remove the outputs that :func:`write_output` created since :func:`forget_created_outputs` (those still
    the files it wrote: same device and inode); the paths removed. For an interrupted command, which may be
    ended in the middle of a write: the temporary file of that write goes too."""
    for temporary in list(_WRITING):
        _unlink_if_present(temporary, quietly=True)
    removed = []
    while _CREATED:
        path, identity = _CREATED.pop()
        try:
            status = os.lstat(path)
            if (status.st_dev, status.st_ino) == identity:
                os.unlink(path)
                removed.append(path)
        except OSError:
            pass
    return removed


def _write_in_place(destination: Path, given: Path, data: bytes) -> None:
    """Write ``data`` into ``destination`` itself (a device, a pipe, a descriptor's file), as ``cp`` does."""
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_TRUNC
    pipe = _kind(destination) == "pipe"
    deadline = time.monotonic() + PIPE_READER_WAIT
    while True:
        try:
            # A pipe nobody reads would block the open forever: O_NONBLOCK makes that ENXIO instead.
            descriptor = os.open(destination, flags | (os.O_NONBLOCK if pipe else 0))
            break
        except OSError as error:
            if error.errno == errno.ENXIO and time.monotonic() < deadline:
                time.sleep(0.02)  # a reader started beside rnnkit may not have opened its end yet
                continue
            if error.errno == errno.ENXIO:
                raise InputError(f"cannot write {given}: no program reads that pipe; start its reader first, or "
                                 "write to a file") from None
            raise write_failure(given, error, len(data)) from None
    try:
        if pipe:
            os.set_blocking(descriptor, True)
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
    except OSError as error:
        raise write_failure(given, error, len(data)) from None
    finally:
        os.close(descriptor)


def _kind(path: Path) -> str | None:
    """What ``path`` is, links followed: None (nothing there), "file", "directory", "character device",
    "block device", "pipe", "socket"."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "pipe"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


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
