r"""Labelled texts for classification: reading them from CSV/TSV, the tokenizer, the vocabulary, padded batches.

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

Tokenizer (:func:`tokenize`). A regular expression in the spirit of the Penn Treebank's tokenizer:

    n't | 's 're 've 'm 'll 'd      English clitics split off:  don't → do n't,  can't → ca n't,  it's → it 's
    3.14  10,000  12:30  1/2        numbers, with their inner separators
    U.S.  e.g.                      abbreviations of single letters with their dots
    well-made  o'clock  über        words: letters, digits and _ , joined by inner - or '
    ...  --  ,  (  $  "            punctuation: each symbol alone, except runs of dots or hyphens

Curly apostrophes (’) count as straight ones. Text that is already PTB-tokenized (SST-2's "does n't",
"it 's") keeps its tokens. Not done: PTB's ``cannot`` → ``can not``, ``gonna`` → ``gon na``, quote
directions (`` and '').

Vocabulary (:class:`TokenVocab`): ``<pad>`` = 0, ``<unk>`` = 1, then the training tokens by decreasing
frequency (ties alphabetical). Batches (:func:`pad_batch`, :func:`bucketed_batches`): padded (N, L) id
tensors with their lengths; batches are cut from pools of similar lengths so little time goes to padding.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import torch

from ..errors import InputError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
TAB_EXTENSIONS = (".tsv", ".tab")

TOKEN_PATTERN = re.compile(
    r"""
      \w+?(?=n't\b)                  # the word before n't: do|n't, ca|n't, wo|n't
    | n't\b                          # the negation clitic
    | \w+?(?='(?:s|re|ve|m|ll|d)\b)  # the word before a clitic: it|'s, we|'re
    | '(?:s|re|ve|m|ll|d)\b          # the clitics
    | \d+(?:[.,:/]\d+)*              # numbers: 3.14, 10,000, 12:30, 1/2
    | (?:[^\W\d_]\.){2,}              # abbreviations of single letters: U.S., e.g.
    | \w+(?:[-']\w+)*                # words, with inner hyphens and apostrophes: well-made, o'clock
    | \.{2,} | -{2,}                 # an ellipsis, a dash
    | [^\w\s]                        # any other symbol on its own
    """,
    re.VERBOSE | re.IGNORECASE,
)


def tokenize(text: str, lowercase: bool = False) -> list[str]:
    """The tokens of ``text`` (see the module docstring for the rules); lowercased first if ``lowercase``.

    Example::

        >>> tokenize("It's 10,000 times better -- don't you think?")
        ['It', "'s", '10,000', 'times', 'better', '--', 'do', "n't", 'you', 'think', '?']
    """
    text = text.replace("\u2019", "'")
    if lowercase:
        text = text.lower()
    return TOKEN_PATTERN.findall(text)


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


def read_bytes_as_text(path: str | os.PathLike, encoding: str) -> str:
    """The file's text: InputError for a missing file, a directory, empty content or an undecodable byte."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file; check the path")
    if os.path.isdir(name):
        raise InputError(f"{name} is a directory, not a file; give the path of a file inside it")
    try:
        data = Path(name).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {name}: {error.strerror}; check its permissions") from None
    skipped = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) and _is_utf8(encoding) else 0
    try:
        text = data[skipped:].decode(encoding)
    except UnicodeDecodeError as error:
        offset = skipped + error.start
        line = data.count(b"\n", 0, offset) + 1
        other = "utf-8" if not _is_utf8(encoding) else "cp1252"
        raise InputError(
            f"{name}:{line}: byte 0x{data[offset]:02x} at offset {offset} is not valid {encoding}; "
            f"give the file's encoding, e.g. --encoding {other}"
        ) from None
    if not text.strip():
        raise InputError(f"{name} is empty; give a file with labelled texts")
    return text


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def read_labelled(path: str | os.PathLike, table: TableFormat) -> list[Example]:
    """The examples of a CSV/TSV file laid out as ``table`` says (see the module docstring)."""
    name = os.fspath(path)
    text = read_bytes_as_text(name, table.encoding)
    delimiter = delimiter_of(name, table.delimiter)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    rows = _numbered_rows(reader, name)
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
    return examples


def _numbered_rows(reader, name: str) -> Iterable[tuple[int, list[str]]]:
    """(first line of the row, fields) for every non-blank row; csv errors become InputError with the line."""
    previous_end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(
                f"{name}:{reader.line_num}: cannot read the row ({error}); fix its quoting or give --delimiter"
            ) from None
        start, previous_end = previous_end + 1, reader.line_num
        if any(cell.strip() for cell in row):
            yield start, row


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
    """The lines of a text file (one text per line), without their line ends; blank lines kept."""
    text = read_bytes_as_text(path, encoding).replace("\r\n", "\n").replace("\r", "\n")
    # split on line ends only: str.splitlines() would also split at U+0085 and other separators inside a text
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


# ------------------------------------------------------------------------------------------- vocabulary


class TokenVocab:
    """Token ↔ id: ``<pad>`` = 0, ``<unk>`` = 1, then tokens by decreasing frequency (ties alphabetical).

    Args:
        symbols: the tokens, index = id; must start with ``<pad>``, ``<unk>``.

    Example::

        >>> vocab = TokenVocab.build([["a", "b", "a"], ["c"]], min_freq=1)
        >>> vocab.symbols, vocab.encode(["a", "z"])
        (['<pad>', '<unk>', 'a', 'b', 'c'], [2, 1])
    """

    def __init__(self, symbols: list[str]):
        if list(symbols[:2]) != [PAD, UNK] or len(set(symbols)) != len(symbols):
            raise InputError(f"the vocabulary must start with {PAD}, {UNK} and repeat no token; the saved one is corrupt")
        self.symbols = list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None) -> TokenVocab:
        """The vocabulary of ``token_lists``: tokens seen at least ``min_freq`` times, at most ``max_size`` in
        all (``<pad>`` and ``<unk>`` included; the rarest are left out and read as ``<unk>``)."""
        if min_freq < 1:
            raise InputError(f"--min-freq must be at least 1, got {min_freq}")
        if max_size is not None and max_size < 3:
            raise InputError(f"--max-vocab {max_size} leaves no room for a word beside {PAD} and {UNK}; use at least 3")
        counts = Counter(token for tokens in token_lists for token in tokens)
        for special in (PAD, UNK):
            counts.pop(special, None)
        words = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - 2]
        return cls([PAD, UNK, *words])

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, tokens: list[str]) -> list[int]:
        """The ids of ``tokens``; tokens outside the vocabulary give ``<unk>``'s id."""
        ids = self._ids
        return [ids.get(token, UNK_ID) for token in tokens]

    def to_dict(self) -> dict:
        """A JSON-serialisable description; :meth:`from_dict` rebuilds it exactly."""
        return {"symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, d: dict) -> TokenVocab:
        symbols = d.get("symbols") if isinstance(d, dict) else None
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise InputError("the saved vocabulary has no list of tokens; the checkpoint is corrupt")
        return cls(symbols)

    def __eq__(self, other) -> bool:
        return isinstance(other, TokenVocab) and other.symbols == self.symbols

    def __repr__(self) -> str:
        return f"TokenVocab({len(self)} tokens)"


# ------------------------------------------------------------------------------------------- batches


def pad_batch(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Id lists (each at least one id) → tokens (N, L_max) padded with ``<pad>`` = 0, and lengths (N,)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)  # (N,)
    tokens = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)  # (N, L)
    for row, sequence in enumerate(sequences):
        tokens[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return tokens, lengths


def bucketed_batches(lengths: list[int], batch_size: int, seed: int, pool_batches: int = 100,
                     min_rows: int = 1) -> list[list[int]]:
    """Indices of the examples in each batch of one epoch: shuffled, yet each batch of similar lengths.

    The examples are shuffled (seeded by ``seed``), cut into pools of ``pool_batches * batch_size``, each
    pool sorted by length and cut into batches, and the batches shuffled again. The same seed gives the
    same batches, so that an epoch can be resumed at any batch. The epoch has ceil(n / batch_size)
    batches, less any batch shorter than ``min_rows``, which joins its pool's previous batch (so that
    every process of a distributed run gets a row).
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool_size = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start : start + pool_size], key=lambda i: lengths[i])
        cut = [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
        if len(cut) > 1 and len(cut[-1]) < min_rows:
            cut[-2].extend(cut.pop())
        batches.extend(cut)
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def sorted_batches(lengths: list[int], batch_size: int, min_rows: int = 1) -> list[list[int]]:
    """Indices in batches of similar length, in a fixed order (for validation and prediction)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_rows:
        batches[-2].extend(batches.pop())
    return batches
