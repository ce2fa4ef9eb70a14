r"""Entity spans of BIO-style tags and their precision, recall and F1, as conlleval and seqeval count them.

A tag is ``O`` (outside) or ``P-TYPE`` with a prefix P of B (begin), I (inside), E (end) or S (single):
IOB1, IOB2 (BIO) and IOBES all fit. Spans are read the lenient conlleval way (seqeval's default mode), so
that every scheme, and invalid transitions, still give spans:

    a span ends   before O, B, S; after E or S; and where the type changes
    a span starts at B or S; at I or E after O, E or S; and where the type changes

So IOB1's ``I-PER I-PER`` is one PER span, IOB2's ``B-PER I-PER`` too; an ``I-LOC`` after ``O`` or after
``B-PER`` starts a new LOC span (it is not dropped). A sentence's spans never run into the next sentence.

With G the set of gold spans and P the predicted spans, each span (type, start, end) of one sentence:

    precision = |G ∩ P| / |P|      recall = |G ∩ P| / |G|      F1 = 2 precision recall / (precision + recall)

micro-averaged over all types (each ratio is 0 where its denominator is 0), and per type with the same
formulas restricted to the type; ``support`` is |G| of the type.

Example::

    >>> entity_spans(["B-PER", "I-PER", "O", "I-LOC"])
    [('PER', 0, 1), ('LOC', 3, 3)]
    >>> span_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])["f1"]
    0.0
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from ..errors import InputError

OUTSIDE = "O"
PREFIXES = ("B", "I", "E", "S")

Span = tuple[str, int, int]  # (type, first token, last token), both inclusive


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a tag: ``"B-PER"`` → ``("B", "PER")``, ``"O"`` → ``("O", "")``."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    if prefix not in PREFIXES or not dash or not kind:
        raise InputError(f"tag {tag!r} is neither O nor B-/I-/E-/S-TYPE; span scores need BIO-style tags")
    return prefix, kind


def is_entity_tagset(tags: Iterable[str]) -> bool:
    """True when every tag is ``O`` or ``B-/I-/E-/S-TYPE`` and at least one is not ``O``: tags with spans."""
    seen_entity = False
    for tag in tags:
        if tag == OUTSIDE:
            continue
        prefix, dash, kind = tag.partition("-")
        if prefix not in PREFIXES or not dash or not kind:
            return False
        seen_entity = True
    return seen_entity


def entity_spans(tags: Sequence[str]) -> list[Span]:
    """The spans of one sentence's tags, in order: [(type, start, end)] with ``end`` inclusive."""
    spans: list[Span] = []
    previous, previous_type, start = OUTSIDE, "", 0
    for index, tag in enumerate([*tags, OUTSIDE]):  # the final O closes a span open at the end
        prefix, kind = split_tag(tag)
        if previous != OUTSIDE and _ends(previous, prefix, previous_type, kind):
            spans.append((previous_type, start, index - 1))
        if prefix != OUTSIDE and _starts(previous, prefix, previous_type, kind):
            start = index
        previous, previous_type = prefix, kind
    return spans


def _ends(previous: str, prefix: str, previous_type: str, kind: str) -> bool:
    """Does the span that the previous tag belongs to end before this tag?"""
    return previous in ("E", "S") or prefix in (OUTSIDE, "B", "S") or previous_type != kind


def _starts(previous: str, prefix: str, previous_type: str, kind: str) -> bool:
    """Does this (non-O) tag start a new span?"""
    return prefix in ("B", "S") or previous in (OUTSIDE, "E", "S") or previous_type != kind


def span_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro and per-type span precision, recall and F1 of ``predicted`` tags against ``gold``, sentence by sentence.

    Returns ``{"precision", "recall", "f1", "gold_spans", "predicted_spans", "correct_spans",
    "per_type": {TYPE: {"precision", "recall", "f1", "support"}}}`` (types sorted by name).
    """
    if len(gold) != len(predicted):
        raise InputError(f"{len(gold)} gold sentences but {len(predicted)} predicted; give one prediction per sentence")
    gold_counts, predicted_counts, correct_counts = Counter(), Counter(), Counter()
    for number, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise InputError(f"sentence {number}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted")
        gold_spans, predicted_spans = set(entity_spans(gold_tags)), set(entity_spans(predicted_tags))
        gold_counts.update(kind for kind, _, _ in gold_spans)
        predicted_counts.update(kind for kind, _, _ in predicted_spans)
        correct_counts.update(kind for kind, _, _ in gold_spans & predicted_spans)
    scores = _prf(sum(correct_counts.values()), sum(predicted_counts.values()), sum(gold_counts.values()))
    per_type = {}
    for kind in sorted(gold_counts.keys() | predicted_counts.keys()):
        per_type[kind] = {**_prf(correct_counts[kind], predicted_counts[kind], gold_counts[kind]),
                          "support": gold_counts[kind]}
    return {**scores, "gold_spans": sum(gold_counts.values()), "predicted_spans": sum(predicted_counts.values()),
            "correct_spans": sum(correct_counts.values()), "per_type": per_type}


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
