"""Classification scores against counts worked out by hand, including a class the data never shows."""

import pytest

from rnnkit.metrics.classification import accuracy, classification_scores, macro_f1


def test_scores_match_hand_counts():
    gold = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 2, 2]
    scores = classification_scores(gold, predicted, ["a", "b", "c"])
    # a: TP 2, FP 0, FN 1 -> P 1, R 2/3; b: TP 1, FP 1, FN 1 -> 1/2, 1/2; c: TP 1, FP 1, FN 0 -> 1/2, 1
    f1 = {"a": 0.8, "b": 0.5, "c": 2 / 3}
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert scores["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert scores["per_class"]["c"]["f1"] == pytest.approx(f1["c"])
    assert scores["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert scores["examples"] == 6 and scores["labels"] == ["a", "b", "c"]
    assert accuracy(gold, predicted) == scores["accuracy"]
    assert macro_f1(gold, predicted, 3) == pytest.approx(scores["macro_f1"])


def test_a_class_absent_from_the_data_counts_zero_in_the_macro_average():
    scores = classification_scores([0, 0, 1], [0, 0, 1], ["a", "b", "never"])
    assert scores["accuracy"] == 1.0
    assert scores["per_class"]["never"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert scores["confusion"][2] == [0, 0, 0]


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError):
        classification_scores([], [], ["a"])
