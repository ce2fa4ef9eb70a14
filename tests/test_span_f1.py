"""Entity spans and span P/R/F1 against seqeval's default (conlleval) mode, on hand-made cases and on many
random tag sequences: IOB1, IOB2 and IOBES, invalid transitions included."""

import random
import warnings

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from rnnkit.errors import InputError
from rnnkit.metrics.spans import entity_spans, is_entity_tagset, span_scores, split_tag

TYPES = ("PER", "LOC", "ORG")


@pytest.mark.parametrize("tags, spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),                # IOB2
    (["I-PER", "I-PER", "O", "I-LOC", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4)]),  # IOB1
    (["O", "I-PER", "I-PER"], [("PER", 1, 2)]),                                       # I after O starts a span
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),                    # I-X after B-Y
    (["B-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 3)]),      # IOBES
    (["B-LOC", "E-LOC", "I-LOC"], [("LOC", 0, 1), ("LOC", 2, 2)]),                    # I after E starts anew
    (["O", "O"], []),
    ([], []),
])
def test_entity_spans(tags, spans):
    assert entity_spans(tags) == spans


def test_span_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    scores = span_scores(gold, predicted)
    assert (scores["correct_spans"], scores["predicted_spans"], scores["gold_spans"]) == (2, 3, 3)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["per_type"]["PER"]["f1"] == 1.0
    assert span_scores([["O"]], [["O"]])["f1"] == 0.0  # no spans anywhere: every ratio is 0, as in seqeval


def test_spans_never_run_across_sentences():
    # One span per sentence, not one span over both: the second sentence's I-PER starts its own span.
    assert span_scores([["I-PER"], ["I-PER"]], [["I-PER"], ["I-PER"]])["gold_spans"] == 2


def random_tags(rng: random.Random, scheme: str, length: int) -> list[str]:
    prefixes = {"iob1": "I" * 3 + "B", "iob2": "BI", "iobes": "BIES"}[scheme]
    return [rng.choice(["O", "O", f"{rng.choice(prefixes)}-{rng.choice(TYPES)}"]) for _ in range(length)]


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "iobes"])
def test_random_sequences_score_as_seqeval(scheme):
    rng = random.Random(scheme)
    for _ in range(150):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 6))]
        gold = [random_tags(rng, scheme, n) for n in lengths]
        # Half the predictions are near misses (a few tags changed), so that many spans match.
        predicted = [[tag if rng.random() < 0.7 else random_tags(rng, scheme, 1)[0] for tag in tags] for tags in gold]
        ours = span_scores(gold, predicted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns on 0/0
            assert ours["f1"] == pytest.approx(f1_score(gold, predicted))
            assert ours["precision"] == pytest.approx(precision_score(gold, predicted))
            assert ours["recall"] == pytest.approx(recall_score(gold, predicted))
            report = classification_report(gold, predicted, output_dict=True)
        types = {name for name in report if name not in ("micro avg", "macro avg", "weighted avg")}
        assert set(ours["per_type"]) == types
        for name in types:
            for key in ("precision", "recall", "f1"):
                assert ours["per_type"][name][key] == pytest.approx(report[name][key if key != "f1" else "f1-score"])
            assert ours["per_type"][name]["support"] == report[name]["support"]


def test_is_entity_tagset():
    assert is_entity_tagset(["O", "B-PER", "I-PER", "E-LOC", "S-ORG"])
    assert not is_entity_tagset(["O"])  # no entity at all
    assert not is_entity_tagset(["NOUN", "VERB", "O"])
    assert not is_entity_tagset(["B-NP", "B"])
    assert split_tag("B-MISC-X") == ("B", "MISC-X")


def test_a_tag_that_is_not_bio_is_an_error():
    with pytest.raises(InputError, match="tag 'NOUN' is neither O nor B-/I-/E-/S-TYPE"):
        entity_spans(["B-PER", "NOUN"])
    with pytest.raises(InputError, match="2 gold sentences but 1 predicted"):
        span_scores([["O"], ["O"]], [["O"]])
