"""Reading a text file safely: the one reader behind every data format of rnnkit.

Every way a file can be unusable (missing, a directory, unreadable, a damaged ``.gz``, binary, UTF-16, bytes
that the encoding cannot decode, no text at all) becomes one :class:`~rnnkit.errors.InputError` line that
names the file and the fix. A ``.gz`` file is decompressed; a UTF-8 byte-order mark is dropped; line ends
(``\\r\\n``, ``\\r``) become ``\\n``.

:func:`csv_rows` reads the rows of a CSV strictly, naming the line where a quote opens and never closes.

Example::

    text = read_text("input.txt")
    lines = read_lines("train.de.gz")           # one sentence per line, without the line ends
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import zlib
from collections.abc import Iterator

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


def csv_rows(text: str, name: str, delimiter: str = ",", quoting: int = csv.QUOTE_MINIMAL
             ) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, fields)`` of every row of the CSV ``text`` (the file ``name``), blank lines
    included (as empty rows); a row's lines differ only where a quoted field holds a line break.

    Read strictly: a quote that opens a field and is never closed makes the rest of the file one field, and a
    lenient reader (csv's default) yields that silently, so a model would train on the garbage. Here it is
    an InputError naming the line where the quote opened; any other malformed quoting names its line too.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            start = end + 1
            if reader.line_num > start or "end of data" in str(error):
                raise InputError(f"{name}:{start}: a quote opened in this row is never closed properly ({error}), "
                                 "so the lines after it would be read as one field; close the quote, or write a "
                                 'quote inside a field as two ("")') from None
            raise InputError(f"{name}:{reader.line_num}: cannot read the row ({error}); fix its quoting "
                             "(a quote inside a field is written as two: \"\")") from None
        start, end = end + 1, reader.line_num
        yield start, end, row


def unbalanced_quote(name: str, start: int, end: int) -> InputError:
    """The error for a row whose quoted field runs from line ``start`` to line ``end`` and swallows what look
    like rows: a quote that was meant to be closed on its own line."""
    return InputError(f"{name}:{start}: a quoted field runs from line {start} to line {end}, holding what look "
                      "like rows of their own; a quote is probably unbalanced: close it on its line, or write a "
                      'quote inside a field as two ("")')


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
