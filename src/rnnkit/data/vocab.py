"""Vocabularies: symbols ↔ ids. :class:`Vocabulary` is what every vocabulary shares (the character and word
vocabularies of a language model in :mod:`rnnkit.data.text` build on it); :class:`TokenVocab` is the one
vocabulary of token lists, with the special tokens a task asks for first:

    TokenVocab.build(texts)                                 <pad> <unk>              (classify, tag)
    TokenVocab.build(sentences, specials=SEQUENCE_SPECIALS)  <pad> <unk> <bos> <eos>  (translate, caption)

then the tokens by decreasing frequency (ties alphabetical), so the same data and limits always give the same
vocabulary. Tokens outside it encode to ``<unk>``.

    >>> vocab = TokenVocab.build([["a", "cat"], ["a", "dog"]], specials=SEQUENCE_SPECIALS)
    >>> vocab.encode(["a", "bird"]), vocab.decode([2, 4, 5, 3, 0])      # bird is unknown; decode stops at <eos>
    ([4, 1], ['a', 'cat'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from ..errors import InputError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
SPECIALS = (PAD, UNK)
SEQUENCE_SPECIALS = (PAD, UNK, BOS, EOS)


class Vocabulary:
    """Symbols ↔ ids, index = id; equal when of the same kind with the same symbols. ``unit`` names what a
    symbol is, for ``repr``."""

    unit = "tokens"

    def __init__(self, symbols: Sequence[str]):
        self.symbols = list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.symbols == self.symbols

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} {self.unit})"


def by_frequency(counts: Counter, specials: Sequence[str], min_freq: int, max_size: int | None) -> list[str]:
    """``specials``, then the counted symbols seen at least ``min_freq`` times by decreasing count (ties
    alphabetical), at most ``max_size`` in all: the rarest are left out."""
    for special in specials:
        counts.pop(special, None)
    symbols = sorted((s for s, n in counts.items() if n >= min_freq), key=lambda s: (-counts[s], s))
    if max_size is not None:
        symbols = symbols[: max_size - len(specials)]
    return [*specials, *symbols]


class TokenVocab(Vocabulary):
    """Token ↔ id for lists of tokens: the ``specials`` (ids 0, 1, ...), then the tokens.

    Args:
        symbols: the tokens, index = id; must start with ``specials`` and repeat no token.
        specials: :data:`SPECIALS` (``<pad> <unk>``) or :data:`SEQUENCE_SPECIALS` (and ``<bos> <eos>``).

    Example::

        >>> vocab = TokenVocab.build([["a", "b", "a"], ["c"]], min_freq=1)
        >>> vocab.symbols, vocab.encode(["a", "z"])
        (['<pad>', '<unk>', 'a', 'b', 'c'], [2, 1])
    """

    def __init__(self, symbols: Sequence[str], specials: Sequence[str] = SPECIALS):
        if tuple(symbols[: len(specials)]) != tuple(specials) or len(set(symbols)) != len(symbols):
            raise InputError(f"the saved vocabulary is corrupt (it must start with {' '.join(specials)} and repeat "
                             "no token); use the run's own files")
        super().__init__(symbols)
        self.specials = tuple(specials)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = SPECIALS) -> TokenVocab:
        """The vocabulary of ``token_lists``: tokens seen at least ``min_freq`` times, at most ``max_size`` in
        all (specials included; the rarest are left out and read as ``<unk>``)."""
        if min_freq < 1:
            raise InputError(f"--min-freq must be at least 1, got {min_freq}")
        if max_size is not None and max_size <= len(specials):
            raise InputError(f"--max-vocab {max_size} leaves no room for a token beside {', '.join(specials)}; "
                             f"use at least {len(specials) + 1}")
        counts = Counter(token for tokens in token_lists for token in tokens)
        return cls(by_frequency(counts, specials, min_freq, max_size), specials)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """The ids of ``tokens``; tokens outside the vocabulary give ``<unk>``'s id."""
        ids = self._ids
        return [ids.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` up to the first ``<eos>``, without ``<pad>`` and ``<bos>``."""
        end = EOS_ID if EOS in self.specials else None
        skipped = {PAD_ID, BOS_ID} if BOS in self.specials else {PAD_ID}
        tokens = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == end:
                break
            if i not in skipped:
                tokens.append(self.symbols[i])
        return tokens

    def to_dict(self) -> dict:
        """A JSON-serialisable description; :meth:`from_dict` rebuilds it exactly."""
        return {"symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, d: dict, specials: Sequence[str] = SPECIALS) -> TokenVocab:
        symbols = d.get("symbols") if isinstance(d, dict) else None
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise InputError("the saved vocabulary has no list of tokens; the checkpoint is corrupt")
        return cls(symbols, specials)
