"""Reading a text file safely: the one reader behind every data format of rnnkit.

Every way a file can be unusable (missing, a directory, unreadable, a damaged ``.gz``, binary, UTF-16, bytes
that the encoding cannot decode, no text at all) becomes one :class:`~rnnkit.errors.InputError` line that
names the file and the fix. A ``.gz`` file is decompressed; a UTF-8 byte-order mark is dropped; line ends
(``\\r\\n``, ``\\r``) become ``\\n``.

Example::

    text = read_text("input.txt")
    lines = read_lines("train.de.gz")           # one sentence per line, without the line ends
"""

from __future__ import annotations

import codecs
import gzip
import os
import zlib

from ..errors import InputError
from .catalog import missing_file_hint


def read_text(path: str | os.PathLike, encoding: str = "utf-8", *, what: str = "text to learn from",
              fix: str | None = None) -> str:
    """The text of a file, with newlines normalised to ``\\n`` (as Python's text mode does).

    Args:
        encoding: how its bytes are decoded.
        what: what the file should hold, for the message about an empty file ("a file with ...").
        fix: what to do about an undecodable byte; default: an ``iconv`` command that re-encodes the file.
    """
    name = os.fspath(path)
    text = decode_text(_read_bytes(name), name, encoding, fix=fix)
    if not text.strip():
        raise InputError(f"{name} is {'empty' if not text else 'only whitespace'}; give a file with {what}")
    return text


def decode_text(data: bytes, name: str, encoding: str = "utf-8", *, fix: str | None = None) -> str:
    """``data`` (the bytes of ``name``: a file, or standard input) decoded as :func:`read_text` decodes a
    file, newlines normalised; InputError for UTF-16, binary data or a byte the encoding cannot decode."""
    utf8 = codecs.lookup(encoding).name == "utf-8"
    if utf8 and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{name} is UTF-16 text; re-encode it: iconv -f utf-16 -t utf-8 {name} > {name}.utf8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{name} looks binary (a NUL byte at offset {nul}); give a text file")
    skipped = len(codecs.BOM_UTF8) if utf8 and data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skipped:].decode(encoding)
    except UnicodeDecodeError as error:
        offset = skipped + error.start
        line = data.count(b"\n", 0, offset) + 1
        fix = fix or f"re-encode it, e.g. iconv -f cp1252 -t utf-8 {name} > {name}.utf8"
        shown = "UTF-8" if utf8 else encoding
        raise InputError(f"{name}:{line}: byte 0x{data[offset]:02x} at offset {offset} is not {shown}; {fix}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: str | os.PathLike, encoding: str = "utf-8", *, what: str = "one sentence per line",
               fix: str | None = None) -> list[str]:
    """The lines of a text file without their line ends; blank lines kept, and the newline that ends the
    last line starts no new one. Only line ends split: ``str.splitlines()`` would also split a line at
    U+0085 and other separators inside it."""
    text = read_text(path, encoding, what=what, fix=fix)
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def _read_bytes(name: str) -> bytes:
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file; check the path{missing_file_hint(name)}")
    if os.path.isdir(name):
        raise InputError(f"{name} is a directory, not a text file; give the path of a file inside it")
    try:
        with open(name, "rb") as file:
            data = file.read()
        return gzip.decompress(data) if name.endswith(".gz") else data
    except (OSError, EOFError, zlib.error) as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise InputError(f"cannot read {name}: {detail}; check that it is a complete (gzip) text file") from None
