r"""Tagged sentences as the tagger reads them: the vocabularies of a run, the sentences as id tensors, and their
padded batches.

The words, characters and tags come from the training file only (:func:`build_vocabularies`); a word is looked
up by ``TagDataConfig.word_key`` (lower-cased with ``lowercase_words``). :func:`make_batch` pads a batch of
sentences and, for training, replaces each word seen once in the training file (a singleton) by ``<unk>`` with
probability ``word_dropout``, so that ``<unk>`` learns something.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.batching import Sequences, pad_sequences
from rnnkit.data.conll import Sentence
from rnnkit.data.vocab import PAD_ID, UNK_ID, TokenVocab
from rnnkit.errors import InputError
from rnnkit.metrics.spans import is_entity_tagset

if TYPE_CHECKING:
    from .tag import TagDataConfig


@dataclass
class Vocabularies:
    """Words and characters (``<pad>`` = 0, ``<unk>`` = 1; characters None without character features) and
    the tag names (index = tag id, sorted)."""

    words: TokenVocab
    chars: TokenVocab | None
    tags: list[str]

    @property
    def entity_tags(self) -> bool:
        """True for BIO-style tags, scored by spans as well as by accuracy."""
        return is_entity_tagset(self.tags)

    def to_dict(self) -> dict:
        return {"words": self.words.to_dict(), "chars": None if self.chars is None else self.chars.to_dict(),
                "tags": list(self.tags)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabularies:
        tags = d.get("tags") if isinstance(d, dict) else None
        if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) for tag in tags):
            raise InputError("the saved tag list is missing or malformed; the checkpoint is corrupt")
        chars = None if d.get("chars") is None else TokenVocab.from_dict(d["chars"])
        return cls(TokenVocab.from_dict(d.get("words")), chars, tags)


@dataclass
class EncodedSentences(Sequences):
    """Sentences as id tensors: words (T,), characters (T, W) padded with 0 (None without character
    features), tags (T,), and a (T,) mask of the words that word dropout may replace (training singletons)."""

    words: list[torch.Tensor]
    chars: list[torch.Tensor] | None
    tags: list[torch.Tensor]
    droppable: list[torch.Tensor]

    def sequences(self) -> list[torch.Tensor]:
        return self.words


def build_vocabularies(sentences: list[Sentence], config: TagDataConfig) -> Vocabularies:
    """Words (by ``config.word_key``, at least ``min_freq`` times), characters (all of the training file's)
    and the sorted tags of the training sentences."""
    words = TokenVocab.build(([config.word_key(token) for token in sentence.tokens] for sentence in sentences),
                             config.min_freq)
    chars = None
    if config.char_features:
        chars = TokenVocab.build(list(token) for sentence in sentences for token in sentence.tokens)
    tags = sorted({tag for sentence in sentences for tag in sentence.tags})
    return Vocabularies(words, chars, tags)


def encode_tokens(tokens: list[str], vocabs: Vocabularies, config: TagDataConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Word ids (T,) and character ids (T, W_max) padded with 0 (None without character features)."""
    words = torch.tensor(vocabs.words.encode([config.word_key(token) for token in tokens]), dtype=torch.long)  # (T,)
    if vocabs.chars is None:
        return words, None
    char_ids, _ = pad_sequences([vocabs.chars.encode(list(token)) or [UNK_ID] for token in tokens])  # (T, W_max)
    return words, char_ids


def encode_sentences(sentences: list[Sentence], vocabs: Vocabularies, config: TagDataConfig,
                     singletons: set[str] = frozenset()) -> EncodedSentences:
    """The id tensors of ``sentences``; tags outside ``vocabs.tags`` encode as -1 (they are never predicted)."""
    return encode_token_lists([s.tokens for s in sentences], [s.tags for s in sentences], vocabs, config, singletons)


def encode_token_lists(token_lists: list[list[str]], tag_lists: list[list[str]] | None, vocabs: Vocabularies,
                       config: TagDataConfig, singletons: set[str] = frozenset()) -> EncodedSentences:
    """The id tensors of tokenized sentences (each at least one token) and their tags (None: all tag 0)."""
    tag_ids = {tag: index for index, tag in enumerate(vocabs.tags)}
    encoded = EncodedSentences([], [] if vocabs.chars is not None else None, [], [])
    for number, tokens in enumerate(token_lists):
        words, chars = encode_tokens(tokens, vocabs, config)
        encoded.words.append(words)
        if chars is not None:
            encoded.chars.append(chars)
        tags = [tag_ids.get(tag, -1) for tag in tag_lists[number]] if tag_lists is not None else [0] * len(tokens)
        encoded.tags.append(torch.tensor(tags, dtype=torch.long))
        encoded.droppable.append(torch.tensor([config.word_key(token) in singletons for token in tokens]))
    return encoded


def make_batch(data: EncodedSentences, indices: list[int], word_dropout: float = 0.0,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A padded batch of the sentences ``indices``: words (N, L), lengths (N,), tags (N, L) and chars
    (N, L, W) (without character features: no chars), padded with 0; with ``word_dropout`` each
    droppable word becomes ``<unk>`` with that probability (drawn from ``generator``)."""
    lengths = torch.tensor([len(data.words[i]) for i in indices], dtype=torch.long)  # (N,)
    words = pad_sequence([data.words[i] for i in indices], batch_first=True, padding_value=PAD_ID)  # (N, L)
    if word_dropout > 0:
        droppable = pad_sequence([data.droppable[i] for i in indices], batch_first=True)  # (N, L), False on padding
        draw = torch.rand(words.shape, generator=generator)  # (N, L)
        words = words.masked_fill(droppable & (draw < word_dropout), UNK_ID)
    tags = pad_sequence([data.tags[i] for i in indices], batch_first=True)  # (N, L)
    batch = {"words": words, "lengths": lengths, "tags": tags}
    if data.chars is not None:
        width = max(data.chars[i].size(1) for i in indices)
        chars = torch.full((len(indices), words.size(1), width), PAD_ID, dtype=torch.long)  # (N, L, W)
        for row, i in enumerate(indices):
            T, W = data.chars[i].shape
            chars[row, :T, :W] = data.chars[i]
        batch["chars"] = chars
    return batch
