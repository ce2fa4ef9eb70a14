r"""Labelled texts for classification: reading them from CSV/TSV.

Reading (:func:`read_labelled`). A table of one example per row, read with Python's :mod:`csv`:

* the delimiter comes from the extension (``.tsv``/``.tab``: tab, anything else: comma) unless given;
* a comma (or any other) delimiter follows RFC 4180 quoting (``"a, b"``, doubled ``""`` inside quotes);
  a tab delimiter reads every character literally (``csv.QUOTE_NONE``, as GLUE's TSV files need, whose
  texts hold unbalanced ``"``): a tab can then not occur inside a field;
* with a header, columns are named by the header (a 1-based number also works where no header cell
  says that number); without one, by 1-based number;
* several text columns are joined with a space, in the order given (AG News: title, then description);
* blank rows are skipped; every other row must have the header's number of fields (without a header:
  at least the highest column used), a label and some text. Each mistake names ``file:line``.

The bytes are decoded with the given encoding (a UTF-8 byte-order mark is dropped); an undecodable byte
is reported with its line and byte offset.

The tokens (:func:`~rnnkit.data.tokens.tokenize`), the vocabulary (:class:`~rnnkit.data.vocab.TokenVocab`) and
the padded batches of similar lengths (:mod:`rnnkit.data.batching`) are those of every text task.
"""

from __future__ import annotations

import codecs
import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from ..errors import InputError
from .reading import csv_rows, read_text, unbalanced_quote
from .reading import read_lines as lines_of

TAB_EXTENSIONS = (".tsv", ".tab")

# ------------------------------------------------------------------------------------------- reading


class Example(NamedTuple):
    """One labelled text and the line of its file where its row starts (1-based)."""

    text: str
    label: str
    line: int


@dataclass(frozen=True)
class TableFormat:
    """How a labelled table is laid out.

    Args:
        text_columns: the text's column(s): names or 1-based numbers, comma-separated (``"title,description"``,
            ``"2,3"``); several are joined with a space.
        label_column: the label's column, a name or a 1-based number.
        header: the first row names the columns.
        delimiter: one character, or None to choose by extension (``.tsv``/``.tab``: tab, else comma).
        encoding: the file's text encoding (a Python codec name: ``utf-8``, ``cp1252``, ...).
    """

    text_columns: str = "text"
    label_column: str = "label"
    header: bool = True
    delimiter: str | None = None
    encoding: str = "utf-8"

    def __post_init__(self):
        if not [c for c in self.text_columns.split(",") if c.strip()] or not self.label_column.strip():
            raise InputError("--text-column and --label-column must name a column; e.g. --text-column text")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise InputError(f"--delimiter must be one character (or 'tab'), got {self.delimiter!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise InputError(f"unknown --encoding {self.encoding!r}; e.g. utf-8, cp1252, latin-1") from None


def parse_delimiter(value: str | None) -> str | None:
    r"""A --delimiter value as one character: ``tab`` and ``\t`` mean a tab; None stays None (by extension)."""
    if value is None:
        return None
    return "\t" if value.lower() in ("tab", "\\t") else value


def delimiter_of(path: str | os.PathLike, delimiter: str | None) -> str:
    """The delimiter to read ``path`` with: the given one, else a tab for .tsv/.tab files and a comma otherwise."""
    if delimiter is not None:
        return delimiter
    return "\t" if Path(path).suffix.lower() in TAB_EXTENSIONS else ","


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def read_labelled(path: str | os.PathLike, table: TableFormat) -> list[Example]:
    """The examples of a CSV/TSV file laid out as ``table`` says (see the module docstring)."""
    name = os.fspath(path)
    text = read_text(name, table.encoding, what="labelled texts", fix=_encoding_fix(table.encoding))
    delimiter = delimiter_of(name, table.delimiter)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    spanning: list[tuple[int, int, list[str]]] = []  # rows whose quoted fields hold line breaks
    rows = _numbered_rows(csv_rows(text, name, delimiter, quoting), spanning)
    header = None
    if table.header:
        line, header = next(rows, (0, None))
        if header is None:
            raise InputError(f"{name} is empty; give a file with labelled texts")
        header = [cell.strip() for cell in header]
    text_indices = [_column_index(spec, header, name) for spec in table.text_columns.split(",") if spec.strip()]
    label_index = _column_index(table.label_column, header, name)
    needed = max(text_indices + [label_index]) + 1
    examples = []
    for line, row in rows:
        if header is not None and len(row) != len(header):
            few = "few" if len(row) < len(header) else "many"
            raise InputError(
                f"{name}:{line}: {len(row)} fields where the header has {len(header)} (too {few}); "
                f"check the delimiter {delimiter!r} (--delimiter) and the quoting of that row"
            )
        if len(row) < needed:
            raise InputError(
                f"{name}:{line}: {len(row)} fields, too few for column {needed}; "
                f"check the delimiter {delimiter!r} (--delimiter) and the --text-column/--label-column numbers"
            )
        label = row[label_index].strip()
        if not label:
            raise InputError(f"{name}:{line}: empty label; give every row a label or remove the row")
        joined = " ".join(row[i].strip() for i in text_indices).strip()
        if not joined:
            raise InputError(f"{name}:{line}: empty text; give every row a text or remove the row")
        examples.append(Example(joined, label, line))
    if not examples:
        raise InputError(f"{name} has a header but no rows; give a file with labelled texts")
    _check_swallowed_rows(spanning, {example.label for example in examples}, label_index, needed, delimiter,
                          quoting, name)
    return examples


def _numbered_rows(rows: Iterable[tuple[int, int, list[str]]], spanning: list
                   ) -> Iterable[tuple[int, list[str]]]:
    """(first line of the row, fields) for every non-blank row of :func:`~rnnkit.data.reading.csv_rows`;
    those that run over several lines are also put in ``spanning``."""
    for start, end, row in rows:
        if any(cell.strip() for cell in row):
            if end > start:
                spanning.append((start, end, row))
            yield start, row


def _check_swallowed_rows(spanning: list[tuple[int, int, list[str]]], labels: set[str], label_index: int,
                          needed: int, delimiter: str, quoting: int, name: str) -> None:
    """InputError for a row whose quoted field swallowed whole rows: a line inside the field that reads as a
    row of its own, with a label the file uses. A text may hold line breaks (RFC 4180), but one that holds
    labelled rows is a quote left open: read as one example, it would train on garbage without a word."""
    for start, end, row in spanning:
        for field in row:
            for line in field.split("\n")[1:]:
                inner = next(csv.reader([line], delimiter=delimiter, quoting=quoting), [])
                if len(inner) >= needed and inner[label_index].strip() in labels:
                    raise unbalanced_quote(name, start, end)


def _column_index(spec: str, header: list[str] | None, name: str) -> int:
    """The 0-based index of a column given by header name or 1-based number."""
    spec = spec.strip()
    if header is not None and spec in header:
        return header.index(spec)
    if spec.isdigit() and int(spec) >= 1:
        if header is not None and int(spec) > len(header):
            raise InputError(f"{name} has {len(header)} columns, no column {spec}; columns: {', '.join(header)}")
        return int(spec) - 1
    if header is None:
        raise InputError(
            f"column {spec!r} needs a header, and {name} is read without one (--no-header); "
            "give columns by 1-based number, e.g. --text-column 2"
        )
    raise InputError(f"{name} has no column {spec!r}; its columns are: {', '.join(repr(c) for c in header)}")


def read_lines(path: str | os.PathLike, encoding: str) -> list[str]:
    """The lines of a file of texts (one per line) in ``encoding``, without their line ends; blank lines kept."""
    return lines_of(path, encoding, what="texts, one per line", fix=_encoding_fix(encoding))


def _encoding_fix(encoding: str) -> str:
    return f"give the file's encoding, e.g. --encoding {'utf-8' if not _is_utf8(encoding) else 'cp1252'}"
