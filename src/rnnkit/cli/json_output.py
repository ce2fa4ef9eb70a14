"""JSON for ``--json``: every object a command prints goes through :func:`to_json`.

Python's ``json.dumps`` writes ``Infinity`` and ``NaN`` for non-finite floats, which no JSON parser accepts.
Here such a value becomes ``null``, and a dictionary that held it gains ``KEY_reason`` saying what it was, so a
reader learns why the number is missing::

    >>> to_json({"valid_loss": float("inf"), "steps": 3})
    '{"valid_loss": null, "steps": 3, "valid_loss_reason": "not finite: inf"}'
    >>> to_json([1.0, float("nan")])
    '[1.0, null]'
    >>> not_finite({"model": {"mae": float("inf")}, "naive": {"mae": 1.0}})
    ['model.mae = inf']
"""

import json
import math

REASON_SUFFIX = "_reason"


def to_json(value, **options) -> str:
    """``json.dumps(value, **options)`` with non-finite floats as null (see the module's docstring); never
    writes ``Infinity`` or ``NaN``."""
    return json.dumps(finite_only(value), allow_nan=False, **options)


def finite_only(value):
    """``value`` with every non-finite float replaced by None, and ``KEY_reason`` beside each such key of a
    dictionary (unless the dictionary has that key already)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        cleaned = {key: finite_only(item) for key, item in value.items()}
        for key, item in value.items():
            reason = f"{key}{REASON_SUFFIX}"
            if isinstance(item, float) and not math.isfinite(item) and reason not in value:
                cleaned[reason] = f"not finite: {item}"
        return cleaned
    if isinstance(value, (list, tuple)):
        return [finite_only(item) for item in value]
    return value


def not_finite(value, path: str = "") -> list[str]:
    """``["model.mae = inf", ...]``: every non-finite float inside ``value`` (dictionaries and lists), by its
    path, so that a command can refuse to report such a result as a success."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{path or 'value'} = {value}"]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in not_finite(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, (list, tuple)):
        return [found for index, item in enumerate(value) for found in not_finite(item, f"{path}[{index}]")]
    return []
