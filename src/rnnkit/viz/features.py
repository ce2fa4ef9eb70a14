r"""Interpretable features of a text, one value per character.

Karpathy, Johnson & Fei-Fei (2015, "Visualizing and understanding recurrent networks") found LSTM
cells that switch on inside quotes, count the position in a line or track the depth of nested code.
:func:`text_features` computes such features for any text; :func:`~rnnkit.viz.units.rank_units`
correlates every unit of every layer with each feature, so the "quote cell" is found without searching
by hand.

Every feature describes the reader's situation *after* reading character i, which is what the
hidden state h_i can know:

==================  =========================================================================
``in_string``       1 inside a string literal: from its opening quote (inclusive) to its closing
                    quote (exclusive: after reading the closing quote the reader is outside).
                    Python's ', ", ''' and \"\"\" with escapes and prefixes (r, b, f, u).
``in_comment``      1 inside a comment: from its ``#`` to the end of its line (the newline excluded).
``in_brackets``     1 while at least one (, [ or { is open (outside strings and comments).
``bracket_depth``   how many (, [ and { are open: "(" itself counts 1, the matching ")" 0.
``indent``          the indentation of the character's line in columns (tabs to multiples of 8,
                    as Python reads them), as far as it is read: within the leading whitespace
                    the width up to and including the character. The newline belongs to the
                    line it ends.
``line_position``   the column of the character in its line (0 for the first; the newline's
                    column is the line's length).
``in_quotes``       1 inside quotes in prose: "...", “...”, '...' and ‘...’, from the opening
                    quote (inclusive) to the closing one (exclusive). A single quote opens only
                    after a space, a line start or an opening bracket, and counts only if it
                    closes on its line (so the apostrophes of don't, 'tis, o'er open nothing); a
                    double quote left open runs to the end of its paragraph (a blank line).
``line_length``     the length of the character's line in characters (its newline not counted).
``word_position``   1, 2, 3, ... through a word (letters, digits, _ and an apostrophe inside a
                    word, as in don't); 0 on spaces and punctuation.
``after_speaker``   1 in a speech: after a line that names a speaker (an all-caps name and a
                    colon alone on the line, as ``ROMEO:`` in a play), from that line's newline
                    to the end of the speech (a blank line or the next speaker's line).
==================  =========================================================================

String literals and comments come from Python's own :mod:`tokenize` when the text is Python it can
read (exact for valid code; a text cut in the middle of a statement or a string is still read up to
the cut). Text it cannot read (prose, code cut inside an indented block) goes through a small scanner
with the same rules, which agrees with :mod:`tokenize` on valid code.

Example::

    >>> features = text_features('x = f("a(b")  # c\n')
    >>> features["in_string"][:12].tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    >>> features["bracket_depth"][:12].tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Mapping, Sequence

import numpy as np

FEATURES = {
    "in_string": "inside a string literal",
    "in_comment": "inside a comment",
    "in_brackets": "inside brackets or parentheses",
    "bracket_depth": "bracket / parenthesis depth",
    "indent": "indentation of the line",
    "line_position": "position in the line",
    "in_quotes": "inside quotes (prose)",
    "line_length": "length of the line",
    "word_position": "position in the word",
    "after_speaker": "after a line naming a speaker (NAME:)",
}
OPENERS, CLOSERS = "([{", ")]}"
STRING_PREFIX = "rRbBfFuU"


def text_features(text: str, at: Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The features of :data:`FEATURES` for ``text``, each a float64 array of shape (len(text),).

    Args:
        at: if given, the offsets at which to read the features: every array then has shape (len(at),).
            For a model's positions, :attr:`Activations.last_read <rnnkit.viz.Activations.last_read>`: the
            state after a word has read up to its last character (``f(x,`` ends inside the bracket).
    """
    strings, comments = literal_masks(text)
    code = ~(strings | comments)  # (T,) brackets count only here
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) if text else np.zeros(0, np.uint32)  # (T,)
    step = np.zeros(len(text), dtype=np.int64)  # (T,) +1 at an opener, -1 at a closer
    for opener in OPENERS:
        step[(chars == ord(opener)) & code] = 1
    for closer in CLOSERS:
        step[(chars == ord(closer)) & code] = -1
    depth = _clamped_cumsum(step)
    indent, column = _line_geometry(text)
    features = {
        "in_string": strings.astype(np.float64),
        "in_comment": comments.astype(np.float64),
        "in_brackets": (depth > 0).astype(np.float64),
        "bracket_depth": depth.astype(np.float64),
        "indent": indent.astype(np.float64),
        "line_position": column.astype(np.float64),
        "in_quotes": prose_quotes(text).astype(np.float64),
        "line_length": _line_lengths(text).astype(np.float64),
        "word_position": _word_positions(text).astype(np.float64),
        "after_speaker": speeches(text).astype(np.float64),
    }
    if at is not None:
        index = np.asarray(at, dtype=np.int64)
        features = {name: values[index] for name, values in features.items()}
    return features


def _clamped_cumsum(step: np.ndarray) -> np.ndarray:
    """Running sum of ``step`` that never goes below 0: a text that starts inside brackets closes some
    it never opened, and those closers must not push later depths negative."""
    depth = np.zeros(len(step), dtype=np.int64)
    level = 0
    for i, change in enumerate(step.tolist()):
        level = max(0, level + change)
        depth[i] = level
    return depth


def _line_geometry(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(indentation of each character's line in columns, column of each character), each (T,)."""
    indent = np.zeros(len(text), dtype=np.int64)
    column = np.zeros(len(text), dtype=np.int64)
    start = 0
    for line in _lines(text):
        body = line.rstrip("\n")
        lead = len(body) - len(body.lstrip(" \t"))
        indent[start : start + len(line)] = len(body[:lead].expandtabs(8))
        # Within the leading whitespace only the part read so far is known.
        indent[start : start + lead] = [len(body[: j + 1].expandtabs(8)) for j in range(lead)]
        column[start : start + len(line)] = np.arange(len(line))
        start += len(line)
    return indent, column


def _lines(text: str) -> list[str]:
    """The lines of ``text``, each with its ``"\\n"``. Only ``"\\n"`` ends a line, as for Python's tokenizer:
    str.splitlines would also break at a form feed or ``"\\r"``, which source files hold inside lines."""
    return io.StringIO(text, newline="\n").readlines()


# ------------------------------------------------------------------------------------------- prose

DOUBLE_OPEN, DOUBLE_CLOSE = "\u201c", "\u201d"
SINGLE_OPEN, SINGLE_CLOSE = "\u2018", "\u2019"
OPENS_A_QUOTE = "([{\u2014-\"\u201c"  # a single quote after these (or a space, or a line start) is an opening quote
WORD = re.compile(r"\w+(?:['\u2019]\w+)*")


def prose_quotes(text: str) -> np.ndarray:
    """(T,) bool: inside quotes in prose (the ``in_quotes`` feature; rules in the module docstring)."""
    inside = np.zeros(len(text), dtype=bool)
    start = 0
    for paragraph in re.split(r"(?<=\n)(?=\n)", text):  # a blank line ends a paragraph; each keeps its newlines
        _mark_quotes(paragraph, inside[start : start + len(paragraph)])
        start += len(paragraph)
    return inside


def _mark_quotes(paragraph: str, inside: np.ndarray) -> None:
    """Mark the quoted spans of one paragraph in ``inside`` (a view of the text's mask)."""
    double = None  # offset of the open double quote
    single = None  # offset of the open single quote (it must close on its line)
    for i, char in enumerate(paragraph):
        before = paragraph[i - 1] if i else "\n"
        after = paragraph[i + 1] if i + 1 < len(paragraph) else "\n"
        if char == "\n":
            single = None  # never closed on its line: an apostrophe, not a quote
        elif char == '"' or char in (DOUBLE_OPEN, DOUBLE_CLOSE):
            if double is None and char != DOUBLE_CLOSE:
                double = i
            elif double is not None and char != DOUBLE_OPEN:
                inside[double:i] = True
                double = None
        elif char in ("'", SINGLE_OPEN, SINGLE_CLOSE):
            opens = (before.isspace() or before in OPENS_A_QUOTE) and not after.isspace() and char != SINGLE_CLOSE
            closes = single is not None and not before.isspace() and not (after.isalnum() or after == "_")
            if closes:
                inside[single:i] = True
                single = None
            elif opens:
                single = i
    if double is not None:
        inside[double:] = True  # a quote still open at the paragraph's end runs to it


def _line_lengths(text: str) -> np.ndarray:
    """(T,) the length of each character's line, its newline not counted."""
    lengths = np.zeros(len(text), dtype=np.int64)
    start = 0
    for line in _lines(text):
        lengths[start : start + len(line)] = len(line.rstrip("\n"))
        start += len(line)
    return lengths


def _word_positions(text: str) -> np.ndarray:
    """(T,) 1, 2, 3, ... through each word, 0 elsewhere."""
    positions = np.zeros(len(text), dtype=np.int64)
    for match in WORD.finditer(text):
        positions[match.start() : match.end()] = np.arange(1, match.end() - match.start() + 1)
    return positions


def is_speaker_line(line: str) -> bool:
    """``ROMEO:``, ``KING HENRY VI:``, ``LADY CAPULET:``: an all-caps name (two characters or more) and a colon
    alone on the line."""
    stripped = line.strip()
    name = stripped[:-1].strip()
    return (stripped.endswith(":") and len(name) >= 2 and name.isupper()
            and all(c.isalpha() or c in " '.-" for c in name))


def speeches(text: str) -> np.ndarray:
    """(T,) bool: in a speech after a speaker's line (the ``after_speaker`` feature)."""
    inside = np.zeros(len(text), dtype=bool)
    speaking = False
    start = 0
    for line in _lines(text):
        body = line.rstrip("\n")
        if is_speaker_line(body):
            speaking = True
            inside[start + len(body) : start + len(line)] = True  # its newline: the speech starts after it
        elif not body.strip():
            speaking = False
        elif speaking:
            inside[start : start + len(line)] = True
        start += len(line)
    return inside


# ------------------------------------------------------------------------------------------- strings


def literal_masks(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(inside a string literal, inside a comment), boolean arrays of shape (len(text),).

    A string is marked from its opening quote to just before its last closing quote character; a
    comment from its ``#`` to the end of its line (the newline excluded). Uses :mod:`tokenize`, and
    :func:`scan_literals` where the text is not Python that tokenize can read.
    """
    try:
        return tokenize_literals(text)
    except (tokenize.TokenError, SyntaxError, _UnterminatedQuote):
        return scan_literals(text)


class _UnterminatedQuote(Exception):
    """A ' or " string that its line does not close (tokenize gives an error token, or raises on 3.12+)."""


def tokenize_literals(text: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`literal_masks` from Python's tokenizer; raises ``tokenize.TokenError`` or ``SyntaxError``
    (e.g. an unmatched dedent) where it cannot read the text.

    A text that ends inside an open bracket, or inside a triple-quoted string, is still read: every token
    before the end is complete, and the unterminated string runs to the end of the text. A ' or " string
    left open raises ``_UnterminatedQuote``: :func:`scan_literals` closes it at its line's end, as Python does.
    """
    strings = np.zeros(len(text), dtype=bool)
    comments = np.zeros(len(text), dtype=bool)
    line_starts = np.cumsum([0] + [len(line) for line in _lines(text)])
    offset = lambda row_col: int(line_starts[row_col[0] - 1]) + row_col[1]  # noqa: E731  (1-based row, col)
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings into parts
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    open_fstrings: list[int] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING:
                _mark_string(strings, text, offset(token.start), offset(token.end))
            elif token.type == tokenize.COMMENT:
                comments[offset(token.start) : offset(token.end)] = True
            elif fstring_start is not None and token.type == fstring_start:
                open_fstrings.append(offset(token.start))
            elif fstring_end is not None and token.type == fstring_end and open_fstrings:
                _mark_string(strings, text, open_fstrings.pop(), offset(token.end))
            elif token.type == tokenize.ERRORTOKEN and token.string.lstrip()[:1] in ("'", '"'):
                raise _UnterminatedQuote  # Python 3.11 reads on after an unclosed quote, as if it were code
    except tokenize.TokenError as error:
        message, position = error.args
        if "multi-line string" in message or "triple-quoted" in message:  # 3.11, 3.12+
            _mark_string(strings, text, offset(position), len(text) + 1)  # unterminated: to the end
        elif "string" in message:
            raise _UnterminatedQuote from None
        elif "statement" not in message:
            raise
    if open_fstrings:
        _mark_string(strings, text, open_fstrings[0], len(text) + 1)
    return strings, comments


def _mark_string(strings: np.ndarray, text: str, start: int, end: int) -> None:
    """Mark the string token text[start:end] from its first quote to before its last character."""
    while start < end and text[start] in STRING_PREFIX:
        start += 1
    strings[start : end - 1] = True


def scan_literals(text: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`literal_masks` by a direct scan, for any text (the fallback when tokenize cannot read it).

    Outside a string, ``#`` starts a comment and ' or " (tripled or not) starts a string; inside, a
    backslash escapes the next character (raw strings too: ``r"\\""`` is one string, as in Python)
    and only the same quote (same count) closes it. A single-quoted string left open at the end of a
    line closes there, as Python's tokenizer gives up on it at the line end.
    """
    strings = np.zeros(len(text), dtype=bool)
    comments = np.zeros(len(text), dtype=bool)
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            comments[i:end] = True
            i = end
        elif char in "'\"":
            quote = char * 3 if text.startswith(char * 3, i) else char
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "\n" and len(quote) == 1:
                    break
                j += 1
            closed = j < n and text.startswith(quote, j)
            end = j + len(quote) if closed else min(j, n) + 1
            strings[i : end - 1] = True
            i = end if closed else min(j, n)
        elif char == "\\":
            i += 2  # a backslash outside a string (line continuation) cannot open one
        else:
            i += 1
    return strings, comments


def varying(features: Mapping[str, np.ndarray], mask: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """(the features that take more than one value over the positions in ``mask``, the names of the others):
    a feature constant over a text (no brackets in prose, no speaker in code) has nothing to rank."""
    kept, constant = {}, []
    for name, values in features.items():
        values = np.asarray(values)
        seen = values if mask is None else values[np.asarray(mask, dtype=bool)]
        if len(seen) and np.ptp(seen) > 0:
            kept[name] = values
        else:
            constant.append(name)
    return kept, constant
