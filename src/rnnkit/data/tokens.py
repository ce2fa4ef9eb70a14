r"""The tokenizer of rnnkit's text tasks: one function, :func:`tokenize`, in two modes.

Words (``tokenize(text)``, classification and tagging input). A regular expression in the spirit of the Penn Treebank's tokenizer:

    n't | 's 're 've 'm 'll 'd      English clitics split off:  don't → do n't,  can't → ca n't,  it's → it 's
    3.14  10,000  12:30  1/2        numbers, with their inner separators
    U.S.  e.g.                      abbreviations of single letters with their dots
    well-made  o'clock  über        words: letters, digits and _ , joined by inner - or '
    ...  --  ,  (  $  "            punctuation: each symbol alone, except runs of dots or hyphens

Curly apostrophes (’) count as straight ones. Text that is already PTB-tokenized (SST-2's "does n't",
"it 's") keeps its tokens. Not done: PTB's ``cannot`` → ``can not``, ``gonna`` → ``gon na``, quote
directions (`` and '').

Reversible tokens (``tokenize(text, joiners=True)`` and :func:`detokenize`, the sentences of translation
and captioning): a regular expression in the style of OpenNMT's
"aggressive" tokenizer with joiner annotation: a token is a run of word characters (``\w+``, Unicode letters,
digits and ``_``) or one other non-space character; where two tokens touched in the text (no space between
them), the joiner ``￭`` (U+FFED) marks the punctuation side of the contact::

    tokenize("A man's t-shirt.")   →   ['A', 'man', "￭'￭", 's', 't', '￭-￭', 'shirt', '￭.']
    detokenize(...)                →   "A man's t-shirt."

so detokenization is exact: BLEU is computed on the model's detokenized output against the raw references
(sacrebleu's own tokenization then applies to both alike). Text is NFC-normalised first and runs of
whitespace count as one space; a literal ``￭`` in the input is read as a space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

JOINER = "\uffed"

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
_JOINABLE = re.compile(r"(\w+)|[^\w\s]")


def tokenize(text: str, lowercase: bool = False, joiners: bool = False) -> list[str]:
    """The tokens of ``text`` (see the module docstring for the rules); lowercased first if ``lowercase``.
    ``joiners``: the reversible tokens of sequence-to-sequence tasks, which :func:`detokenize` joins back.

    Example::

        >>> tokenize("It's 10,000 times better -- don't you think?")
        ['It', "'s", '10,000', 'times', 'better', '--', 'do', "n't", 'you', 'think', '?']
        >>> detokenize(tokenize("A man's t-shirt.", joiners=True))
        "A man's t-shirt."
    """
    if lowercase:
        text = text.lower()
    if joiners:
        return _joined_tokens(text)
    return TOKEN_PATTERN.findall(text.replace("\u2019", "'"))


def _joined_tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text.replace(JOINER, " "))
    tokens: list[str] = []
    previous_end = -1
    for match in _JOINABLE.finditer(text):
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
