r"""Readers for the two column formats of sequence tagging: CoNLL-U and CoNLL-2003.

Both give a list of :class:`Sentence`: the tokens, the tags of one chosen column, and the line of the
file each token came from (for error messages that point at ``file:line``).

CoNLL-U (Universal Dependencies): one word per line, ten tab-separated fields

    ID  FORM  LEMMA  UPOS  XPOS  FEATS  HEAD  DEPREL  DEPS  MISC          columns: upos (4th), xpos (5th)

``#`` comment lines, a blank line after each sentence. A multiword token's line (ID ``1-2``, the surface
form "don't" above its words "do" "n't") and an empty node (ID ``1.1``, enhanced dependencies only) are
skipped, so that a sentence is its syntactic words, the units that carry a UPOS.

CoNLL-2003: one token per line, whitespace-separated columns

    TOKEN  POS  CHUNK  NER                                                  columns: pos, chunk, ner

a blank line between sentences and ``-DOCSTART-`` lines between documents (dropped). Chunk and NER tags
may be IOB1 or IOB2; :mod:`rnnkit.metrics.spans` scores either.

Example::

    sentences = read_conll("en_ewt-ud-train.conllu")                    # format sniffed, column upos
    sentences[0].tokens[:3], sentences[0].tags[:3]    # (['Al', '-', 'Zaman'], ['PROPN', 'PUNCT', 'PROPN'])
    read_conll("train.txt", "conll", "ner")
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import InputError
from .reading import read_text

FORMATS = ("conllu", "conll")
FORMAT_NAMES = {"conllu": "CoNLL-U", "conll": "CoNLL-2003"}
# Column name -> 0-based field index.
COLUMNS = {"conllu": {"upos": 3, "xpos": 4}, "conll": {"pos": 1, "chunk": 2, "ner": 3}}
ALL_COLUMNS = tuple(name for columns in COLUMNS.values() for name in columns)
DEFAULT_COLUMN = {"conllu": "upos", "conll": "ner"}
CONLLU_FIELDS = 10
CONLLU_LAYOUT = "ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC"
CONLL_LAYOUT = "TOKEN POS CHUNK NER"
DOCSTART = "-DOCSTART-"

_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
_EMPTY_NODE_ID = re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*")


@dataclass
class Sentence:
    """One sentence: ``tokens`` and their ``tags`` (same length, at least 1), and the 1-based ``lines``
    of ``source`` they were read from (empty for sentences that come from no file)."""

    tokens: list[str]
    tags: list[str]
    lines: list[int]
    source: str = ""

    def where(self, index: int = 0) -> str:
        """``file:line`` of token ``index``, for error messages."""
        return f"{self.source}:{self.lines[index]}" if self.lines else self.source


def sniff_format(lines: list[str]) -> tuple[str, int] | None:
    """The format the first token line suggests and that line's number, or None for a file of comments.

    A CoNLL-U token line has ten tab-separated fields starting with a word ID (``1``, ``1-2`` or ``1.1``);
    any other first token line is taken for CoNLL-2003. Ten tab-separated fields are CoNLL-U even when the
    first is no ID (CoNLL-2003 has four columns), so that the reader names the broken ID instead of reading
    the file as CoNLL-2003 and learning from the wrong columns.
    """
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        if len(line.split("\t")) == CONLLU_FIELDS:
            return "conllu", number
        return "conll", number
    return None


def resolve_format(path: str | os.PathLike, format: str | None = None, fix: str | None = None) -> str:
    """``format``, checked against the content of ``path``; the sniffed format when ``format`` is None.

    ``fix`` is the advice a mismatch error ends with (default: the ``--format`` flag to give).
    """
    name = os.fspath(path)
    return _checked_format(name, read_text(name).split("\n"), format, fix)


def read_conll(path: str | os.PathLike, format: str | None = None, column: str | None = None,
               *, fix: str | None = None) -> list[Sentence]:
    """The sentences of a CoNLL-U (``format="conllu"``) or CoNLL-2003 (``"conll"``) file, tagged by ``column``.

    Args:
        path: the file (UTF-8).
        format: ``"conllu"``, ``"conll"``, or None to recognise it from the first token line.
        column: which tags to read: ``upos``/``xpos`` (CoNLL-U), ``pos``/``chunk``/``ner`` (CoNLL-2003);
            None takes the format's default (``upos``, ``ner``).
        fix: the advice ending a format-mismatch error (default: give the matching ``--format``).

    Raises :class:`InputError` naming ``file:line`` for a malformed line (too few fields, a CoNLL-U ID
    that is not a word number), for a file whose lines lack ``column``, a file in the other format, and
    a missing, empty or sentence-less file.
    """
    name = os.fspath(path)
    lines = read_text(name).split("\n")
    format = _checked_format(name, lines, format, fix)
    column = column or DEFAULT_COLUMN[format]
    if column not in COLUMNS[format]:
        other = next(f for f in FORMATS if f != format)
        where = f" (a {FORMAT_NAMES[other]} column)" if column in COLUMNS[other] else ""
        raise InputError(f"--column {column}{where} is not a column of {FORMAT_NAMES[format]} file {name}; "
                         f"choose one of {', '.join(COLUMNS[format])}")
    reader = _read_conllu if format == "conllu" else _read_conll2003
    sentences = reader(name, lines, column)
    if not sentences:
        raise InputError(f"{name} holds no sentences; give a {FORMAT_NAMES[format]} file with tokens")
    return sentences


class _Sentences:
    """Sentences as a reader finds them: tokens with their tags and line numbers, until a sentence ends."""

    def __init__(self, name: str):
        self.name = name
        self.sentences: list[Sentence] = []
        self.tokens, self.tags, self.numbers = [], [], []

    def add(self, token: str, tag: str, number: int) -> None:
        self.tokens.append(token)
        self.tags.append(tag)
        self.numbers.append(number)

    def end(self) -> list[Sentence]:
        """Close the sentence being read (if any); returns every sentence so far."""
        if self.tokens:
            self.sentences.append(Sentence(self.tokens, self.tags, self.numbers, self.name))
            self.tokens, self.tags, self.numbers = [], [], []
        return self.sentences


def _read_conllu(name: str, lines: list[str], column: str) -> list[Sentence]:
    index = COLUMNS["conllu"][column]
    found = _Sentences(name)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            found.end()
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != CONLLU_FIELDS:
            raise InputError(f"{name}:{number}: {len(fields)} tab-separated fields, CoNLL-U has {CONLLU_FIELDS} "
                             f"({CONLLU_LAYOUT}); fix the line")
        word_id = fields[0]
        if _RANGE_ID.fullmatch(word_id) or _EMPTY_NODE_ID.fullmatch(word_id):
            continue  # multiword token or empty node: not one of the sentence's syntactic words
        if not _WORD_ID.fullmatch(word_id):
            raise InputError(f"{name}:{number}: ID {word_id!r} is not a word number (1, 2, ...), a range (1-2) "
                             "or an empty node (1.1); fix the line")
        found.add(fields[1], fields[index], number)
    return found.end()


def _read_conll2003(name: str, lines: list[str], column: str) -> list[Sentence]:
    index = COLUMNS["conll"][column]
    found = _Sentences(name)
    width = None  # the number of columns, fixed by the first token line
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            found.end()
            continue
        if width is None:
            width = len(fields)
            if width <= index:
                raise InputError(
                    f"{name}:{number}: the file has {width} column{'s' if width > 1 else ''} per line, but "
                    f"--column {column} is column {index + 1} of {CONLL_LAYOUT}; choose a column the file has "
                    f"({', '.join(c for c, i in COLUMNS['conll'].items() if i < width) or 'none'})"
                )
        if len(fields) != width:
            raise InputError(f"{name}:{number}: {len(fields)} columns where the file's lines have {width} "
                             f"({CONLL_LAYOUT}); fix the line (a token with a space in it?)")
        found.add(fields[0], fields[index], number)
    return found.end()


def _checked_format(name: str, lines: list[str], format: str | None, fix: str | None) -> str:
    found = sniff_format(lines)
    if found is None:
        raise InputError(f"{name} holds no sentences (only comments); give a CoNLL-U or CoNLL-2003 file")
    sniffed, line = found
    if format is None:
        return sniffed
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose conllu or conll")
    if sniffed != format:
        _format_mismatch(name, line, format, sniffed, fix)
    return format


def _format_mismatch(name: str, line: int, format: str, sniffed: str, fix: str | None) -> None:
    if sniffed == "conllu":
        seen = f"line {line} has {CONLLU_FIELDS} tab-separated fields starting with a word ID"
    else:
        seen = f"line {line} is not {CONLLU_FIELDS} tab-separated fields starting with a word ID"
    raise InputError(f"{name} is not {FORMAT_NAMES[format]} but looks like {FORMAT_NAMES[sniffed]} ({seen}); "
                     f"{fix or f'give --format {sniffed}'}")
