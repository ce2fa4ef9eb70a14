"""Data for rnnkit's models: reading text, vocabularies, truncated-BPTT streams, the built-in corpus."""

from .corpus import STDLIB_FILES, default_corpus, split_train_valid
from .streams import StreamBatcher
from .reading import read_text
from .text import CharVocab, WordVocab, vocab_from_dict

__all__ = [
    "read_text", "CharVocab", "WordVocab", "vocab_from_dict", "StreamBatcher",
    "default_corpus", "split_train_valid", "STDLIB_FILES",
]
