"""Reading a text file safely, and the character and word vocabularies of a language model.

:func:`read_text` turns every way a file can be unusable (missing, a directory, empty, binary,
not UTF-8) into one :class:`~rnnkit.errors.InputError` line with the fix.

A vocabulary maps symbols to ids and back:

* :class:`CharVocab`: one symbol per character, the corpus's distinct characters in code-point
  order. It has no unknown symbol (``unk_id`` is None): a character outside the vocabulary is an
  error at encode time (naming the character and its position), or is dropped with
  ``unknown="skip"``.
* :class:`WordVocab`: whitespace-separated words; every newline becomes the token ``<eos>``
  (end of sentence, as in the Penn Treebank setups of Mikolov and Zaremba et al.); words outside
  the vocabulary, or cut by ``max_size``/``min_freq``, become ``<unk>``. A corpus that already
  contains the literal ``<unk>`` (PTB does) maps it to the same id.

Both round-trip through :meth:`to_dict`/:func:`vocab_from_dict` as plain JSON, so a checkpoint
stores its vocabulary as text.

Example::

    >>> vocab = CharVocab.build("hello\\n")
    >>> vocab.encode("hole")
    tensor([2, 4, 3, 1])
    >>> vocab.decode([2, 4, 3, 1])
    'hole'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch

from ..errors import InputError
from .reading import read_text  # noqa: F401  (where the explain and diagnose commands import it from)
from .vocab import Vocabulary, by_frequency

UNK = "<unk>"
EOS = "<eos>"
UNKNOWN_POLICIES = ("error", "skip")


def _ids_of(ids: torch.Tensor | Iterable[int]) -> list[int]:
    return ids.tolist() if isinstance(ids, torch.Tensor) else [int(i) for i in ids]


def _check_symbols(d: dict, level: str) -> list[str]:
    """The symbol list of a serialised vocabulary, or InputError if it is malformed."""
    if not isinstance(d, dict) or d.get("level") != level:
        raise InputError(f"not a {level}-level vocabulary; use the vocabulary saved with the model")
    symbols = d.get("symbols")
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise InputError(f"{level}-level vocabulary has no list of symbols; the saved vocabulary is corrupt")
    if len(set(symbols)) != len(symbols):
        raise InputError(f"{level}-level vocabulary repeats a symbol; the saved vocabulary is corrupt")
    return symbols


class _LevelVocab(Vocabulary):
    """What the character and word vocabularies share: their JSON form names their ``level``."""

    level = ""

    def to_dict(self) -> dict:
        """A JSON-serialisable description; :func:`vocab_from_dict` rebuilds it exactly."""
        return {"level": self.level, "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(_check_symbols(d, cls.level))


class CharVocab(_LevelVocab):
    """Character-level vocabulary: one id per distinct character of the corpus.

    Ids follow code-point order, so the same text always gives the same vocabulary. There is no
    unknown symbol (``unk_id`` is None): :meth:`encode` raises :class:`InputError` naming the
    first character outside the vocabulary and its position, or drops such characters with
    ``unknown="skip"``.

    Args:
        symbols: the characters, index = id; each a single character, no repeats.

    Example::

        >>> vocab = CharVocab.build("abcab")
        >>> len(vocab), vocab.encode("cab").tolist()
        (3, [2, 0, 1])
    """

    level = "char"
    unit = "characters"
    unk_id = None

    def __init__(self, symbols: list[str]):
        if any(len(s) != 1 for s in symbols):
            raise InputError("character-level vocabulary holds a symbol that is not one character; "
                             "the saved vocabulary is corrupt")
        super().__init__(symbols)

    @classmethod
    def build(cls, text: str) -> CharVocab:
        """The vocabulary of the distinct characters in ``text``."""
        if not text:
            raise InputError("cannot build a vocabulary from empty text; give a text to learn from")
        return cls(sorted(set(text)))

    def unknown_symbols(self, text: str) -> list[str]:
        """The distinct characters of ``text`` outside the vocabulary, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._ids))

    def encode(self, text: str, unknown: str = "error") -> torch.Tensor:
        """Ids of the characters of ``text``, shape (len(text),) (fewer if characters are skipped).

        Args:
            unknown: ``"error"`` raises InputError at the first character outside the vocabulary;
                ``"skip"`` drops such characters.
        """
        if unknown not in UNKNOWN_POLICIES:
            raise InputError(f"unknown={unknown!r} is not a policy; use 'error' or 'skip'")
        ids = self._ids
        if unknown == "skip":
            return torch.tensor([ids[c] for c in text if c in ids], dtype=torch.long)
        try:
            return torch.tensor([ids[c] for c in text], dtype=torch.long)
        except KeyError as missing:
            char = missing.args[0]
            raise InputError(
                f"character {char!r} at position {text.index(char)} is not in the vocabulary; "
                f"remove it, or encode with unknown='skip'"
            ) from None

    def piece(self, token_id: int, previous_id: int | None = None) -> str:
        """The text of one token; ``previous_id`` is accepted for the same interface as WordVocab."""
        return self.symbols[token_id]

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        """The text of a sequence of ids."""
        return "".join(self.symbols[i] for i in _ids_of(ids))




class WordVocab(_LevelVocab):
    """Word-level vocabulary: whitespace-separated words, ``<eos>`` for newlines, ``<unk>`` for the rest.

    Id 0 is ``<unk>`` and id 1 is ``<eos>``; the words follow in order of decreasing frequency
    (ties in alphabetical order), so the same text and limits give the same vocabulary.

    Args:
        symbols: the tokens, index = id; must start with ``<unk>``, ``<eos>``.

    Example::

        >>> vocab = WordVocab.build("the cat sat\\nthe end\\n")
        >>> vocab.encode("the dog\\n").tolist()          # dog is unknown
        [2, 0, 1]
        >>> vocab.decode([2, 3, 1, 2])
        'the cat\\nthe'
    """

    level = "word"
    unk_id = 0
    eos_id = 1

    def __init__(self, symbols: list[str]):
        if symbols[:2] != [UNK, EOS]:
            raise InputError(f"word-level vocabulary must start with {UNK}, {EOS}; the saved vocabulary is corrupt")
        if any(not s or s != s.strip() or len(s.split()) != 1 for s in symbols):
            raise InputError("word-level vocabulary holds a token with whitespace; the saved vocabulary is corrupt")
        super().__init__(symbols)

    @staticmethod
    def tokenize(text: str) -> list[str]:
        """Whitespace-separated words, with an ``<eos>`` token wherever ``text`` has a newline."""
        return text.replace("\n", f" {EOS} ").split()

    @classmethod
    def build(cls, text: str, max_size: int | None = None, min_freq: int = 1) -> WordVocab:
        """The vocabulary of the words in ``text``.

        Args:
            max_size: at most this many tokens in all, ``<unk>`` and ``<eos>`` included; the
                rarest words are left out (they become ``<unk>``). None: no limit.
            min_freq: words seen fewer times than this become ``<unk>``.
        """
        if max_size is not None and max_size < 2:
            raise InputError(f"max_size={max_size} leaves no room for {UNK} and {EOS}; use at least 2")
        if min_freq < 1:
            raise InputError(f"min_freq={min_freq} must be at least 1")
        counts = Counter(cls.tokenize(text))
        if not counts:
            raise InputError("cannot build a vocabulary from text without words; give a text to learn from")
        return cls(by_frequency(counts, (UNK, EOS), min_freq, max_size))

    def unknown_symbols(self, text: str) -> list[str]:
        """The distinct words of ``text`` outside the vocabulary (they encode to ``<unk>``)."""
        return list(dict.fromkeys(w for w in self.tokenize(text) if w not in self._ids))

    def encode(self, text: str) -> torch.Tensor:
        """Ids of the tokens of ``text``, shape (number of tokens,); unknown words give ``unk_id``."""
        ids, unk = self._ids, self.unk_id
        return torch.tensor([ids.get(w, unk) for w in self.tokenize(text)], dtype=torch.long)

    def piece(self, token_id: int, previous_id: int | None = None) -> str:
        """The text of one token after ``previous_id``: a word gets a leading space unless it
        starts a line (``previous_id`` None or ``<eos>``); ``<eos>`` is a newline.

        Joining the pieces of a sequence gives :meth:`decode` of it, which lets a caller print
        generated text piece by piece.
        """
        if token_id == self.eos_id:
            return "\n"
        word = self.symbols[token_id]
        return word if previous_id is None or previous_id == self.eos_id else " " + word

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        """The text of a sequence of ids: words joined by spaces, ``<eos>`` as a newline."""
        pieces, previous = [], None
        for i in _ids_of(ids):
            pieces.append(self.piece(i, previous))
            previous = i
        return "".join(pieces)




Vocab = CharVocab | WordVocab
VOCABS = {"char": CharVocab, "word": WordVocab}


def vocab_from_dict(d: dict) -> Vocab:
    """Rebuild a vocabulary from :meth:`to_dict`'s output, choosing the class by its ``level``."""
    level = d.get("level") if isinstance(d, dict) else None
    if level not in VOCABS:
        raise InputError(f"vocabulary level {level!r} is not 'char' or 'word'; use the vocabulary saved with the model")
    return VOCABS[level].from_dict(d)
