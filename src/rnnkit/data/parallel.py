r"""Parallel text for sequence-to-sequence tasks: reading, encoding, the decoder's input and output pairs.

Files: UTF-8 text, one sentence per line, optionally gzip-compressed (``.gz``); line i of the source file
translates line i of the target file. :func:`read_parallel` refuses files of different line counts (naming
both counts) and skips pairs in which either side is empty, counting them.

Sentences are tokenized reversibly (:func:`~rnnkit.data.tokens.tokenize` with ``joiners=True``, and
:func:`~rnnkit.data.tokens.detokenize`), so BLEU is computed on the model's detokenized output against the raw
references. The vocabulary is :class:`~rnnkit.data.vocab.TokenVocab` with ``<pad> <unk> <bos> <eos>`` (ids
0-3, :data:`~rnnkit.data.vocab.SEQUENCE_SPECIALS`); batches are those of :mod:`rnnkit.data.batching`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError
from .batching import pad_sequences
from .reading import read_lines
from .tokens import JOINER  # noqa: F401  (the mark of the tokens of parallel text, named here for its readers)
from .vocab import BOS_ID, EOS_ID, UNK_ID, TokenVocab


# ------------------------------------------------------------------------------------------- reading


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


def target_pair(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's inputs ``<bos> y_1 .. y_T`` and outputs ``y_1 .. y_T <eos>``, each (N, T + 1), padded."""
    inputs, _ = pad_sequences(rows, prefix=BOS_ID)
    outputs, _ = pad_sequences(rows, suffix=EOS_ID)
    return inputs, outputs
