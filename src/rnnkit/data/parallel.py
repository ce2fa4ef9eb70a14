r"""Parallel text for sequence-to-sequence tasks: reading, a reversible tokenizer, vocabularies, padded batches.

Files: UTF-8 text, one sentence per line, optionally gzip-compressed (``.gz``); line i of the source file
translates line i of the target file. :func:`read_parallel` refuses files of different line counts (naming
both counts) and skips pairs in which either side is empty, counting them.

The tokenizer (:func:`tokenize`, :func:`detokenize`) is a regular expression in the style of OpenNMT's
"aggressive" tokenizer with joiner annotation: a token is a run of word characters (``\w+``, Unicode letters,
digits and ``_``) or one other non-space character; where two tokens touched in the text (no space between
them), the joiner ``￭`` (U+FFED) marks the punctuation side of the contact::

    tokenize("A man's t-shirt.")   →   ['A', 'man', "￭'￭", 's', 't', '￭-￭', 'shirt', '￭.']
    detokenize(...)                →   "A man's t-shirt."

so detokenization is exact: BLEU is computed on the model's detokenized output against the raw references
(sacrebleu's own tokenization then applies to both alike). Text is NFC-normalised first and runs of
whitespace count as one space; a literal ``￭`` in the input is read as a space.

:class:`TokenVocab` holds ``<pad> <unk> <bos> <eos>`` (ids 0-3) and the tokens seen at least ``min_freq``
times, most frequent first; other tokens encode to ``<unk>``.
"""

from __future__ import annotations

import gzip
import os
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
JOINER = "\uffed"

_TOKEN = re.compile(r"(\w+)|[^\w\s]")


# ------------------------------------------------------------------------------------------- tokenizer


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` with joiners where tokens touched; see the module docstring."""
    text = unicodedata.normalize("NFC", text.replace(JOINER, " "))
    tokens: list[str] = []
    previous_end = -1
    for match in _TOKEN.finditer(text):
        token, is_word = match.group(0), match.group(1) is not None
        if match.start() == previous_end:
            # two word runs never touch (they would be one run), so one side of a contact is punctuation
            if is_word:
                tokens[-1] += JOINER
            else:
                token = JOINER + token
        tokens.append(token)
        previous_end = match.end()
    return tokens


def detokenize(tokens: Sequence[str]) -> str:
    """The text of ``tokens``: spaces between tokens except where a joiner marks a contact."""
    pieces: list[str] = []
    for index, token in enumerate(tokens):
        if index and not (token.startswith(JOINER) or tokens[index - 1].endswith(JOINER)):
            pieces.append(" ")
        pieces.append(token.replace(JOINER, ""))
    return "".join(pieces)


# ------------------------------------------------------------------------------------------- reading


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file (``.gz``: gzip-compressed), without line endings.

    InputError for a missing file, a directory, a damaged gzip file, bytes that are not UTF-8 (with the line)
    and a file without any text.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file; check the path")
    if os.path.isdir(name):
        raise InputError(f"{name} is a directory, not a text file; give the path of a file inside it")
    try:
        with open(name, "rb") as f:
            data = f.read()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise InputError(f"cannot read {name}: {detail}; check that it is a complete (gzip) text file") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{name}:{line}: not UTF-8 (byte 0x{data[error.start]:02x}); re-encode the file, "
                         f"e.g. iconv -f cp1252 -t utf-8") from None
    if not text.strip():
        raise InputError(f"{name} is empty; give a file with one sentence per line")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no new one
    return lines


@dataclass
class ParallelText:
    """Sentence pairs read from two files.

    sources, targets: the raw sentences (stripped); line_numbers: each pair's 1-based line in the files;
    empty_lines: the line numbers skipped because one side (or both) was empty.
    """

    sources: list[str]
    targets: list[str]
    line_numbers: list[int]
    empty_lines: list[int]
    description: str

    def __len__(self) -> int:
        return len(self.sources)

    def empty_warning(self) -> str | None:
        """One line about the skipped pairs, or None when there were none."""
        if not self.empty_lines:
            return None
        shown = ", ".join(str(n) for n in self.empty_lines[:5]) + (", ..." if len(self.empty_lines) > 5 else "")
        return (f"{self.description}: skipped {len(self.empty_lines):,} pairs with an empty side "
                f"(lines {shown})")

    def split(self, fraction: float) -> tuple[ParallelText, ParallelText]:
        """The first 1 - fraction of the pairs and the last ``fraction`` (at least one pair each)."""
        held = max(1, round(len(self) * fraction))
        if held >= len(self):
            raise InputError(f"{self.description} has only {len(self)} pairs, too few to hold some out for "
                             "validation; give --valid-source and --valid-target")
        cut = len(self) - held

        def part(rows: slice, what: str) -> ParallelText:
            return ParallelText(self.sources[rows], self.targets[rows], self.line_numbers[rows], [],
                                f"{self.description} ({what})")

        return part(slice(0, cut), "training part"), part(slice(cut, None), "held-out part")


def read_parallel(source_path: str | os.PathLike, target_path: str | os.PathLike) -> ParallelText:
    """Read two parallel files; InputError when their line counts differ. Pairs with an empty side are
    skipped and listed in ``empty_lines`` (see :meth:`ParallelText.empty_warning`)."""
    sources, targets = read_lines(source_path), read_lines(target_path)
    source_name, target_name = os.fspath(source_path), os.fspath(target_path)
    if len(sources) != len(targets):
        raise InputError(
            f"{source_name} has {len(sources):,} lines but {target_name} has {len(targets):,}; "
            "line i of the source file must be translated by line i of the target file"
        )
    kept_sources, kept_targets, numbers, empty = [], [], [], []
    for number, (source, target) in enumerate(zip(sources, targets), start=1):
        source, target = source.strip(), target.strip()
        # the tokenizer reads a joiner as a space: a line of joiners alone has no token
        if not source.replace(JOINER, " ").strip() or not target.replace(JOINER, " ").strip():
            empty.append(number)
            continue
        kept_sources.append(source)
        kept_targets.append(target)
        numbers.append(number)
    if not kept_sources:
        raise InputError(f"{source_name} and {target_name} hold no pair with text on both sides")
    return ParallelText(kept_sources, kept_targets, numbers, empty, f"{source_name} / {target_name}")


# ------------------------------------------------------------------------------------------- vocabulary


class TokenVocab:
    """Tokens ↔ ids, with ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3, then tokens by falling frequency
    (ties alphabetical), so the same sentences and limits always give the same vocabulary.

    Example::

        >>> vocab = TokenVocab.build([["a", "cat"], ["a", "dog"]], min_freq=1)
        >>> vocab.encode(["a", "bird"])                                   # bird is unknown
        [4, 1]
        >>> vocab.decode([2, 4, 5, 3, 0])                                  # stops at <eos>
        ['a', 'cat']
    """

    def __init__(self, symbols: list[str]):
        if tuple(symbols[:4]) != SPECIALS or len(set(symbols)) != len(symbols):
            raise InputError("the saved vocabulary is corrupt (specials or repeated tokens); use the run's own files")
        self.symbols = list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> TokenVocab:
        """The vocabulary of tokenized ``sentences``: tokens seen at least ``min_freq`` times, at most
        ``max_size`` ids in all (specials included)."""
        if min_freq < 1:
            raise InputError(f"--min-freq must be at least 1, got {min_freq}")
        if max_size is not None and max_size <= len(SPECIALS):
            raise InputError(f"--max-vocab {max_size} leaves no room beside the 4 special tokens; use more")
        counts = Counter(token for sentence in sentences for token in sentence)
        for special in SPECIALS:
            counts.pop(special, None)
        tokens = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            tokens = tokens[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *tokens])

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """The ids of ``tokens``; tokens outside the vocabulary give ``<unk>``."""
        ids = self._ids
        return [ids.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` up to the first ``<eos>``, without ``<pad>`` and ``<bos>``."""
        tokens = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                tokens.append(self.symbols[i])
        return tokens

    def to_dict(self) -> dict:
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


# ------------------------------------------------------------------------------------------- encoding


@dataclass
class EncodedSide:
    """One side of a corpus as ids, with what happened on the way: ids (one list per sentence, at most
    ``max_length`` each), the number of sentences cut to ``max_length``, and the unknown tokens among all."""

    ids: list[list[int]]
    truncated: int
    unknown: int
    tokens: int

    def warnings(self, what: str, max_length: int, unknown: bool = True) -> list[str]:
        """Lines about truncation and (if ``unknown``) unknown tokens; empty when nothing happened."""
        lines = []
        if self.truncated:
            lines.append(f"{what}: {self.truncated:,} sentences longer than {max_length} tokens were truncated "
                         "(raise --max-length to keep them whole)")
        if unknown and self.unknown:
            lines.append(f"{what}: {self.unknown:,} of {self.tokens:,} tokens ({self.unknown / self.tokens:.1%}) "
                         "are not in the vocabulary and read as <unk>")
        return lines


def encode_sentences(sentences: Iterable[Sequence[str]], vocab: TokenVocab, max_length: int) -> EncodedSide:
    """Tokenized sentences → ids, each cut to ``max_length`` tokens; counts truncations and unknown tokens."""
    ids, truncated, unknown, total = [], 0, 0, 0
    for tokens in sentences:
        if len(tokens) > max_length:
            truncated += 1
            tokens = tokens[:max_length]
        encoded = vocab.encode(tokens)
        unknown += encoded.count(UNK_ID)
        total += len(encoded)
        ids.append(encoded)
    return EncodedSide(ids, truncated, unknown, total)


def pad_sequences(rows: Sequence[Sequence[int]], prefix: int | None = None, suffix: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids, each with an optional ``prefix`` / ``suffix`` id, padded with ``<pad>`` into (N, L_max);
    returns (ids (N, L_max), lengths (N,))."""
    rows = [([prefix] if prefix is not None else []) + list(row) + ([suffix] if suffix is not None else [])
            for row in rows]
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)  # (N,)
    padded = torch.full((len(rows), int(lengths.max())), PAD_ID, dtype=torch.long)  # (N, L_max)
    for n, row in enumerate(rows):
        padded[n, : len(row)] = torch.tensor(row, dtype=torch.long)
    return padded, lengths


def target_pair(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's inputs ``<bos> y_1 .. y_T`` and outputs ``y_1 .. y_T <eos>``, each (N, T + 1), padded."""
    inputs, _ = pad_sequences(rows, prefix=BOS_ID)
    outputs, _ = pad_sequences(rows, suffix=EOS_ID)
    return inputs, outputs


def length_buckets(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                   pool_batches: int = 50) -> list[list[int]]:
    """Batches of indices with similar lengths, in random order: little padding, yet a different mix each epoch.

    The indices are shuffled, cut into pools of ``pool_batches`` batches, each pool sorted by length and cut
    into batches; the batches are then shuffled. The same generator state gives the same batches.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    pool = batch_size * pool_batches
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]
