"""The files of one checkpoint directory: the names rnnkit gives them, how their JSON is verified, and how a
checkpoint is deleted without deleting anything rnnkit did not write.

Names. A checkpoint is ``checkpoints/ckpt-NNNNNN`` (six or more digits), written first as
``checkpoints/.tmp-ckpt-NNNNNN``; it holds exactly :data:`CHECKPOINT_FILES`. Anything else in ``checkpoints/``
(a user's notes, a copy kept by hand, a folder of another name) is not rnnkit's: it is never deleted, and a
checkpoint directory that holds such a file keeps it (only rnnkit's three files go, and the directory only if
that leaves it empty).

Format versions. Format 2 signs ``checkpoint.json`` (its SHA-256 under ``"sha256"``) and marks both tensor
files in their safetensors header (:data:`FORMAT_MARK`). Format 1 (rnnkit 0.1 up to the version that introduced
format 2) wrote neither, so its JSON cannot be verified and is read as written. What stops a format-2
checkpoint from being passed off as format 1 (``"version": 1`` written by hand, to use an edited vocabulary
unverified): a format-1 ``checkpoint.json`` never carries a checksum, a signed pointer never names one (format
1 pointers were unsigned, and every pointer written since names a format-2 checkpoint), and its tensor files,
which the JSON's digests pin, carry no format-2 mark.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct
from pathlib import Path

from rnnkit.errors import InputError
from rnnkit.files import TEMP_PREFIX, refuse_link

from .strict_json import CHECKSUM, decode_floats, edited, file_sha256, read_json, verify_checksum

FORMAT = "rnnkit-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.safetensors"
META_FILE = "checkpoint.json"
CHECKPOINT_FILES = (WEIGHTS_FILE, STATE_FILE, META_FILE)
CHECKPOINT_NAME = re.compile(r"ckpt-([0-9]{6,})")
# Written into the header of both tensor files of a format-2 checkpoint (safetensors' string metadata).
FORMAT_MARK = {"rnnkit-checkpoint-version": str(VERSION)}
_MAX_HEADER = 100 * 2**20  # a safetensors header larger than this is damage, not a header


def is_checkpoint_name(name: str) -> bool:
    """Whether ``name`` is one rnnkit gives a checkpoint directory (``ckpt-000007``)."""
    return CHECKPOINT_NAME.fullmatch(name) is not None


def is_written_name(name: str) -> bool:
    """Whether ``name`` in ``checkpoints/`` is rnnkit's: a checkpoint or the temporary directory of one."""
    return is_checkpoint_name(name.removeprefix(TEMP_PREFIX))


def sequence_number(name: str) -> int | None:
    """The N of ``ckpt-N`` (or of its temporary name), None for a name rnnkit does not give."""
    match = CHECKPOINT_NAME.fullmatch(name.removeprefix(TEMP_PREFIX))
    return int(match.group(1)) if match else None


def written_entries(checkpoints: Path) -> list[Path]:
    """The entries of ``checkpoints/`` that rnnkit wrote (checkpoints and temporary checkpoints), by name."""
    if not checkpoints.is_dir():
        return []
    return sorted(entry for entry in checkpoints.iterdir() if is_written_name(entry.name))


def complete_checkpoints(checkpoints: Path) -> list[Path]:
    """The finished checkpoints in ``checkpoints/``: renamed into place, so holding their checkpoint.json."""
    return [entry for entry in written_entries(checkpoints)
            if is_checkpoint_name(entry.name) and (entry / META_FILE).is_file()]


def remove_checkpoint(directory: Path) -> None:
    """Delete rnnkit's files in the checkpoint directory ``directory``, then the directory if that empties it.

    Never through a link; a file of another name (put there by hand) stays, and so does its directory. What
    the system refuses is left for a later prune (this runs after the run's new state is committed)."""
    refuse_link(directory, "directory")
    if not directory.is_dir():
        return
    for name in CHECKPOINT_FILES:
        path = directory / name
        refuse_link(path, "file")
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        directory.rmdir()
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EBUSY):
            raise


def read_meta(directory: Path) -> dict:
    """The verified ``checkpoint.json`` of ``directory``, its floats decoded (version 2), or as written
    (version 1, once it is shown to be no format-2 file relabelled; see the module docstring)."""
    meta = read_json(directory / META_FILE, what=f"checkpoint {directory}")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{directory} is not an rnnkit checkpoint; give a run directory written by `rnnkit train`")
    version = meta.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise InputError(
            f"checkpoint {directory} has format version {version}, this rnnkit reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; use the rnnkit version that wrote it"
        )
    if version == 1:
        if CHECKSUM in meta:
            raise edited(META_FILE, directory, "it says format 1, which had no checksum")
        for name in (WEIGHTS_FILE, STATE_FILE):
            if header_metadata(directory / name).get("rnnkit-checkpoint-version", "1") != "1":
                raise edited(META_FILE, directory, f"it says format 1, but {name} was written in format 2")
        return meta
    verify_checksum(meta, META_FILE, directory)
    return decode_floats({key: value for key, value in meta.items() if key != CHECKSUM})


def verify_files(directory: Path, meta: dict) -> None:
    """InputError (one line) unless both tensor files of the checkpoint ``directory`` are there, readable, and
    have the digests its verified ``meta`` lists."""
    files = meta.get("files")
    if not isinstance(files, dict):
        raise edited(META_FILE, directory, "it lists no file digests")
    for file_name in (WEIGHTS_FILE, STATE_FILE):
        path = directory / file_name
        if not path.is_file():
            raise InputError(f"checkpoint file {path} is missing; restore the run directory from a copy")
        try:
            digest = file_sha256(path)
        except OSError as error:
            raise InputError(f"cannot read checkpoint file {path} ({(error.strerror or 'unreadable').lower()}); "
                             "restore the run directory from a copy or give another one") from None
        if digest != files.get(file_name):
            raise InputError(f"checkpoint file {path} is corrupt or truncated (checksum mismatch); restore it from a copy")


def header_metadata(path: Path) -> dict:
    """The string metadata in the header of the safetensors file ``path`` ({} when it has none, or when the
    file is missing or damaged: its digest check reports that)."""
    try:
        with open(path, "rb") as file:
            size_bytes = file.read(8)
            if len(size_bytes) < 8:
                return {}
            (size,) = struct.unpack("<Q", size_bytes)
            if size > min(_MAX_HEADER, os.fstat(file.fileno()).st_size):
                return {}
            header = json.loads(file.read(size))
    except (OSError, ValueError):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}
