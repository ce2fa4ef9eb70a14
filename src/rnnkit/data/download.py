"""Downloading a catalog dataset (:mod:`rnnkit.data.catalog`): resumable, verified, from its source or a mirror.

Each file is written to ``FILE.part`` beside where it belongs and becomes ``FILE`` only once its SHA-256 is the
catalog's, so a file under the data home is always a complete, verified copy:

* resume: an interrupted download leaves its ``.part``; the next ``get`` asks the server for the rest only
  (HTTP ``Range: bytes=N-``; a server that answers with the whole file, status 200, is read from the start);
* verify: a digest that is not the catalog's removes the ``.part`` and says so (InputError: a damaged copy, or a
  server that serves another file); a server announcing another size is refused before anything is written, and
  no more bytes than the catalog's size are ever written;
* mirror: ``$RNNKIT_DATA_MIRROR`` replaces every source by ``MIRROR/NAME/FILE``, the layout of the data home,
  so a plain HTTP server on a folder of datasets is a mirror (``python -m http.server`` serves whole files: it
  works but cannot resume);
* a file the user already has is checked, never replaced: one whose digest differs is reported, and stays.

Only urllib is used (no dependency). Progress, when asked for, is a tqdm bar on stderr with the rate and the
time left.

Example::

    from rnnkit.data.catalog import dataset
    from rnnkit.data.download import get
    for result in get(dataset("ptb")):
        print(result["file"], result["status"])       # ptb.train.txt downloaded ...
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from ..errors import InputError
from .catalog import DataFile, Dataset

try:  # a lock per .part file keeps two `rnnkit data get` from writing into it at once (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MIRROR_VARIABLE = "RNNKIT_DATA_MIRROR"
CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 60  # per network operation (connect, each read), not for the whole file
PART_SUFFIX = ".part"


class WrongFile(InputError):
    """What a server sent (or announced) is not the catalog's file: its ``.part`` is removed."""


def mirror() -> str | None:
    """``$RNNKIT_DATA_MIRROR`` without a trailing slash, or None when it is not set."""
    given = os.environ.get(MIRROR_VARIABLE, "").strip()
    return given.rstrip("/") or None


def url_of(found: Dataset, data_file: DataFile) -> str:
    """Where ``data_file`` is downloaded from: ``MIRROR/NAME/FILE`` under a mirror, else its canonical source."""
    base = mirror()
    return f"{base}/{found.name}/{data_file.name}" if base else data_file.url


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def get(found: Dataset, *, progress: bool = False, log: Callable[[str], None] | None = None) -> list[dict]:
    """Download every file of ``found`` that is not yet under the data home, verifying each; check those that are.

    Returns one record per file: ``file``, ``path``, ``status`` (``present``: there and verified; ``downloaded``;
    ``resumed``: completed from a ``.part``), ``bytes`` received and ``seconds`` taken. ``progress``: a bar per
    file on stderr; ``log(line)``: one line per file as it is done.

    Raises InputError (one line; what was downloaded before stays) for a dataset that may not be redistributed
    when no mirror is set and its files are not there, a network or HTTP error, a file of another size or digest,
    or a file there already that is not the catalog's.
    """
    missing = [f for f in found.files if not found.path(f).is_file()]
    if missing and not found.redistributable and mirror() is None:
        raise InputError(found.obtain.format(folder=found.folder))
    results = []
    for data_file in found.files:
        result = _get_file(found, data_file, progress)
        if log is not None:
            log(_describe(result))
        results.append(result)
    return results


def _describe(result: dict) -> str:
    if result["status"] in ("present", "unverified"):
        extra = "" if result["status"] == "present" else " (its SHA-256 is not the catalog's; kept as it is)"
        return f"{result['file']}: present, {result['path']}{extra}"
    rate = result["bytes"] / max(result["seconds"], 1e-6)
    return (f"{result['file']}: {result['status']} {_size(result['bytes'])} in {result['seconds']:.1f}s "
            f"({_size(rate)}/s), SHA-256 verified")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return ""  # unreachable


def _get_file(found: Dataset, data_file: DataFile, progress: bool) -> dict:
    path = found.path(data_file)
    again = f"`rnnkit data get {found.name}`"
    record = {"file": data_file.name, "path": str(path), "bytes": 0, "seconds": 0.0}
    if path.is_file():
        if sha256_of(path) == data_file.sha256:
            return {**record, "status": "present"}
        if not found.redistributable:  # the user's own conversion of a corpus the catalog cannot hold
            return {**record, "status": "unverified"}
        raise InputError(f"{path} is there but is not the catalog's {data_file.name} (its SHA-256 differs); move "
                         f"it away and run {again} again")
    part = Path(f"{path}{PART_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "ab") as handle:
            _lock(handle, part)
            start = time.monotonic()
            resumed_from, received = _download(url_of(found, data_file), handle, data_file, progress, again)
            seconds = time.monotonic() - start
            if handle.tell() < data_file.size:
                raise InputError(f"{url_of(found, data_file)}: the connection ended after {handle.tell():,} of "
                                 f"{data_file.size:,} bytes; run {again} again to resume")
    except WrongFile:
        part.unlink(missing_ok=True)
        raise
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}; set RNNKIT_DATA to a folder you can "
                         "write") from None
    digest = sha256_of(part)
    if digest != data_file.sha256:
        part.unlink()
        raise WrongFile(f"{data_file.name} from {url_of(found, data_file)} has SHA-256 {digest[:16]}..., not the "
                         f"catalog's {data_file.sha256[:16]}...; the download was removed (a damaged copy, or a "
                         f"server with another file: check RNNKIT_DATA_MIRROR)")
    os.replace(part, path)
    return {**record, "status": "resumed" if resumed_from else "downloaded", "bytes": received, "seconds": seconds}


def _lock(handle, part: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise InputError(f"another download is writing {part}; wait for it to end") from None


def _download(url: str, handle, data_file: DataFile, progress: bool, again: str) -> tuple[int, int]:
    """Fill the ``.part`` file open in ``handle`` (append mode) up to the file's size from ``url``; returns (the
    offset it resumed from, bytes received). Leaves it short when the connection ends early."""
    offset = handle.seek(0, os.SEEK_END)
    if offset > data_file.size:  # longer than the file can be: not a prefix of it
        handle.truncate(0)
        offset = 0
    if offset == data_file.size:
        return offset, 0
    response = _open(url, offset, again)
    with response:
        status = getattr(response, "status", None) or 200
        if offset and status != 206:  # the server sent the whole file, not the rest
            handle.truncate(0)
            handle.seek(0)
            offset = 0
        elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            raise WrongFile(f"{url} answered a resumed download with another range "
                            f"({response.headers.get('Content-Range')!r}); the part was removed: run {again} again")
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and offset + int(announced) != data_file.size:
            raise WrongFile(f"{url} is {offset + int(announced):,} bytes, not the catalog's {data_file.size:,}: not the "
                            f"catalog's {data_file.name}, nothing of it was kept (check RNNKIT_DATA_MIRROR)")
        return offset, _copy(response, handle, data_file, offset, progress)


def _open(url: str, offset: int, again: str):
    headers = {"User-Agent": "rnnkit-data"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the server's file ends before the part does: another file
            raise WrongFile(f"{url} is shorter than the {offset:,} bytes already downloaded: not the catalog's "
                            f"file, the part was removed (check RNNKIT_DATA_MIRROR)") from None
        where = f" on the mirror {mirror()}" if mirror() else ""
        raise InputError(f"{url}: HTTP {error.code} {error.reason}{where}; check the address (RNNKIT_DATA_MIRROR "
                         f"holds NAME/FILE as `rnnkit data list` names them), then run {again} again") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise InputError(f"cannot download {url}: {reason}; check the network, or set RNNKIT_DATA_MIRROR to a "
                         f"mirror, then run {again} again") from None


def _copy(response, handle, data_file: DataFile, offset: int, progress: bool) -> int:
    """Append the response's bytes to ``handle``, never beyond the file's size; returns the bytes received."""
    received = 0
    with tqdm(total=data_file.size, initial=offset, desc=data_file.name, unit="B", unit_scale=True,
              unit_divisor=1000, disable=not progress, leave=False, dynamic_ncols=True, file=sys.stderr) as bar:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (TimeoutError, OSError):
                break  # a stalled or broken connection: the .part keeps what came, for the next get to resume
            if not chunk:
                break
            room = data_file.size - offset - received
            if len(chunk) > room:
                raise WrongFile(f"{response.url} sends more than the catalog's {data_file.size:,} bytes of "
                                f"{data_file.name}: not the catalog's file, the download was removed (check "
                                "RNNKIT_DATA_MIRROR)")
            handle.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    handle.flush()
    return received
