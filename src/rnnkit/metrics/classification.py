r"""Scores of a classifier: accuracy, macro F1, per-class precision / recall / F1, confusion counts.

With gold classes y_i and predictions ŷ_i over n examples and C classes:

    accuracy      = (1/n) Σ_i [ŷ_i = y_i]
    precision_c   = TP_c / (TP_c + FP_c)        (0 when the class is never predicted)
    recall_c      = TP_c / (TP_c + FN_c)        (0 when the class never occurs)
    F1_c          = 2 P_c R_c / (P_c + R_c)     (0 when P_c + R_c = 0)
    macro F1      = (1/C) Σ_c F1_c              over every class the model knows, seen in the data or not
    confusion[g][p] = #{i : y_i = g, ŷ_i = p}   rows: true class, columns: predicted class

The counting is scikit-learn's (``precision_recall_fscore_support`` with ``zero_division=0``,
``confusion_matrix``), over the fixed class list ``range(C)``, so a class absent from a small
evaluation set still has its row and counts in the macro average.

Example::

    >>> scores = classification_scores([0, 0, 1, 1], [0, 1, 1, 1], ["neg", "pos"])
    >>> scores["accuracy"], round(scores["macro_f1"], 4), scores["confusion"]
    (0.75, 0.7333, [[1, 1], [0, 2]])
"""

from __future__ import annotations

from typing import Sequence

from rnnkit.extras import require


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """The share of examples whose predicted class is the gold one."""
    _check(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold)


def macro_f1(gold: Sequence[int], predicted: Sequence[int], num_classes: int) -> float:
    """The unweighted mean of the per-class F1 scores over classes 0 .. num_classes - 1."""
    _check(gold, predicted)
    f1_score = require("sklearn.metrics", "classify").f1_score
    return float(f1_score(gold, predicted, labels=list(range(num_classes)), average="macro", zero_division=0))


def classification_scores(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict:
    """Every score of the module docstring, as plain JSON.

    Args:
        gold, predicted: class indices into ``labels``, one per example.
        labels: the class names, index = class.

    Returns:
        ``{"accuracy", "macro_f1", "examples", "per_class": {label: {"precision", "recall", "f1",
        "support"}}, "labels": [...], "confusion": [[count, ...], ...]}`` (rows true, columns predicted).
    """
    sklearn_metrics = require("sklearn.metrics", "classify")
    _check(gold, predicted)
    classes = list(range(len(labels)))
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        gold, predicted, labels=classes, average=None, zero_division=0
    )
    return {
        "accuracy": accuracy(gold, predicted),
        "macro_f1": float(f1.mean()),
        "examples": len(gold),
        "per_class": {
            label: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                    "support": int(support[c])}
            for c, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": sklearn_metrics.confusion_matrix(gold, predicted, labels=classes).tolist(),
    }


def _check(gold: Sequence[int], predicted: Sequence[int]) -> None:
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"need as many predictions as gold labels (at least one), got {len(predicted)} and {len(gold)}")
