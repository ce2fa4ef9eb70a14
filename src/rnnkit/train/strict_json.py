"""Strict JSON with checksums: how a run directory's JSON files are written, and verified when read.

A non-finite float (a plateau scheduler's ``best`` before its first epoch, a diverged loss) is written in a
checkpoint's JSON as ``{"$float": "inf"}`` (or ``"-inf"``, ``"nan"``) and read back as that float, so a resumed
run continues exactly; in a record file (``metrics.jsonl``, ``gradients.jsonl``) it is ``null`` ("not a finite
number"). No file holds ``Infinity`` or ``NaN``, which are not JSON.

A signed file carries the SHA-256 of its own content under ``"sha256"``: the digest of the canonical JSON
(sorted keys, no spaces), so that it does not depend on the layout, and a hand edit or bit rot is caught::

    >>> text = signed_json({"checkpoint": "ckpt-000007", "best": float("inf")})
    >>> value = json.loads(text)
    >>> verify_checksum(value, "latest.json", Path("runs/x"))          # passes
    >>> decode_floats(value)["best"]
    inf
"""

import hashlib
import json
import math
from pathlib import Path

from rnnkit.errors import InputError

CHECKSUM = "sha256"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_json(value) -> str:
    return json.dumps(value, indent=1, allow_nan=False)


def signed_json(value: dict) -> bytes:
    """``value`` as strict JSON with the checksum of its content under "sha256" (see :func:`_digest`): what
    every JSON file of a checkpoint is written as."""
    plain = json.loads(_to_json(_encode_floats(value)))  # exactly what a reader will parse back
    return (_to_json({**plain, CHECKSUM: _digest(plain)}) + "\n").encode()


def _digest(value) -> str:
    """The SHA-256 of ``value``'s canonical JSON (sorted keys, no spaces): independent of the layout."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_checksum(value: dict, file_name: str, directory: Path) -> None:
    """InputError (see :func:`edited`) unless ``value``, as read back, carries the checksum of its content."""
    if value.get(CHECKSUM) != _digest({key: inner for key, inner in value.items() if key != CHECKSUM}):
        raise edited(file_name, directory, "checksum mismatch")


def edited(file_name: str, directory: Path, why: str) -> InputError:
    """The one line that refuses a JSON file of a run directory that does not read back as it was written."""
    return InputError(f"{file_name} of {directory} was edited or damaged ({why}); restore it from a copy")


def _encode_floats(value):
    """``value`` with each non-finite float as ``{"$float": "inf"}`` (strict JSON, read back exactly)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, dict):
        return {key: _encode_floats(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_floats(inner) for inner in value]
    return value


def decode_floats(value):
    """The inverse of :func:`_encode_floats`: each ``{"$float": "inf"}`` back to its float."""
    if isinstance(value, dict):
        if set(value) == {"$float"} and value["$float"] in ("inf", "-inf", "nan"):
            return float(value["$float"])
        return {key: decode_floats(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [decode_floats(inner) for inner in value]
    return value


def _finite_or_null(value):
    """``value`` with each non-finite float as None: a record line of strict JSON (null: not a finite number)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(inner) for inner in value]
    return value


def json_line(record: dict) -> str:
    """One line of a JSON-lines record file (``metrics.jsonl``): strict JSON, a non-finite number as null."""
    return json.dumps(_finite_or_null(record), allow_nan=False) + "\n"


def read_json(path: Path, what: str):
    """The JSON value in ``path``; one line naming ``what`` when the file is missing, unreadable (a directory
    in its place, no permission), not JSON, or holds a NUL character (no file rnnkit writes does: a name or a
    path holding one would fail deep inside the system calls that use it)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} is missing {path.name}; give a run directory written by `rnnkit train`") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise InputError(f"{what} is corrupt ({path.name} is not valid JSON); restore it from a copy") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(f"{what}: cannot read {path} ({reason.lower()}); restore the run directory from a copy "
                         "or give another one") from None
    if _holds_nul(value):
        raise InputError(f"{what} is corrupt ({path.name} holds a NUL character); restore it from a copy")
    return value


def _holds_nul(value) -> bool:
    """Whether any string in ``value`` (a key or a value, at any depth) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(inner) for key, inner in value.items())
    if isinstance(value, list):
        return any(_holds_nul(inner) for inner in value)
    return False
