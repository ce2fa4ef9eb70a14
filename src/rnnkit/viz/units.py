r"""The units that follow a feature, and the units that a selection of the text switches on.

Karpathy, Johnson & Fei-Fei (2015) found LSTM cells that switch on inside quotes or count the position in
a line; :func:`rank_units` finds such units for every feature of :func:`~rnnkit.viz.features.text_features`
by correlating every unit of every layer with it, so the "quote cell" is found without searching by hand.
:func:`units_by_example` ranks the units by a selection of positions instead (LSTMVis's select step): what
the explain page shows when a span of its text is selected.

    >>> import numpy as np
    >>> states = {(0, "hidden"): np.array([[0.9, 0.2], [0.1, 0.6], [0.9, 0.4]])}      # (P, H): 3 positions, 2 units
    >>> [(m.unit, round(m.correlation, 2)) for m in rank_units(states, {"f": np.array([1.0, 0.0, 1.0])})["f"]]
    [(0, 1.0), (1, -0.87)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Unit:
    """One unit of the network.

    Attributes:
        layer: 0 for the first recurrent layer. state: ``"hidden"`` (h_t), ``"cell"`` (c_t, LSTM) or
            ``"tanh_cell"`` (tanh(c_t): bounded, what the output gate reads, what Karpathy et al. colour).
        unit: index within the layer, 0 to H - 1.
    """

    layer: int
    state: str
    unit: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class UnitMatch(Unit):
    """One unit and its Pearson correlation with a feature: ``correlation``, Pearson r over the characters, in
    [-1, 1]."""

    correlation: float


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    r"""Pearson correlation of every column of ``values`` (P, H) with ``feature`` (P,): shape (H,).

    .. math:: r_j = \frac{\sum_p (a_{pj} - \bar a_j)(f_p - \bar f)}
                         {\sqrt{\sum_p (a_{pj} - \bar a_j)^2 \sum_p (f_p - \bar f)^2}}

    A constant column, or a constant feature, has no correlation: NaN.
    """
    a = values - values.mean(axis=0)  # (P, H)
    f = feature - feature.mean()  # (P,)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * f[:, None]).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (f * f).sum())  # (H,)
    # Tested on the raw values: a constant column minus its rounded mean is tiny but not 0, and its r would be noise.
    r[np.ptp(values, axis=0) == 0] = np.nan
    if np.ptp(feature) == 0:
        r[:] = np.nan
    return r


def rank_units(states: Mapping[tuple[int, str], np.ndarray], features: Mapping[str, np.ndarray],
               top: int = 5, mask: np.ndarray | None = None) -> dict[str, list[UnitMatch]]:
    """The ``top`` units most correlated (by |r|) with each feature, best first.

    Args:
        states: (layer, state) → activations (P, H), one row per position of the text (as
            :attr:`rnnkit.viz.Activations.states`); rows that hold NaN are left out.
        features: name → values (P,) at the same positions (as :func:`text_features` gives).
        top: how many units to keep per feature.
        mask: (P,) booleans: only these positions count (default: every row without NaN).

    Returns:
        feature name → list of :class:`UnitMatch`, sorted by decreasing |correlation|; empty for a
        feature that is constant over the text (no brackets at all, say), since nothing correlates
        with a constant.
    """
    ranking: dict[str, list[UnitMatch]] = {}
    for name, feature in features.items():
        feature = np.asarray(feature, dtype=np.float64)
        matches = []
        for (layer, state), values in states.items():
            values = np.asarray(values, dtype=np.float64)  # (P, H)
            keep = ~np.isnan(values).any(axis=1) if mask is None else np.asarray(mask, dtype=bool)  # (P,)
            if keep.sum() < 2:
                continue
            r = correlations(values[keep], feature[keep])  # (H,)
            for unit in np.flatnonzero(~np.isnan(r)):
                matches.append(UnitMatch(int(layer), state, int(unit), float(r[unit])))
        matches.sort(key=lambda m: (-abs(m.correlation), m.layer, m.state, m.unit))
        ranking[name] = matches[:top]
    return ranking


class RunningCorrelation:
    r""":func:`rank_units` over a text read chunk by chunk: Pearson r of every unit with every feature from
    running moments, so that no state of a long text has to be kept.

    Each chunk's centred moments are merged into the running ones (Chan, Golub & LeVeque 1979), which keeps
    the precision of the two-pass formula: with n = n_a + n_b, δ = (mean_b − mean_a),

    .. math:: M2 = M2_a + M2_b + δ^2 n_a n_b / n, \quad C = C_a + C_b + δ_f δ_a^T n_a n_b / n,
              \quad r = C / \sqrt{M2_f M2_a^T}

    for the units a (H) and the features f (F) of each (layer, state); a unit that takes one value over the
    text (min = max) has no correlation (NaN), as in :func:`correlations`.

        >>> import numpy as np
        >>> running = RunningCorrelation(["f"])
        >>> states = np.array([[0.9, 0.2], [0.1, 0.6], [0.9, 0.4]])
        >>> for rows in (slice(0, 1), slice(1, 3)):
        ...     running.update((0, "hidden"), states[rows], np.array([[1.0], [0.0], [1.0]])[rows])
        >>> [(m.unit, round(m.correlation, 2)) for m in running.ranking()["f"]]
        [(0, 1.0), (1, -0.87)]
    """

    def __init__(self, features: list[str]):
        self.features = list(features)
        self._moments: dict[tuple[int, str], list] = {}  # key: [n, mean_a, mean_f, M2_a, M2_f, C, low, high]

    def update(self, key: tuple[int, str], values: np.ndarray, features: np.ndarray) -> None:
        """Add rows of one (layer, state): ``values`` (L, H) and the features at the same positions (L, F)."""
        a = np.asarray(values, dtype=np.float64)  # (L, H)
        f = np.asarray(features, dtype=np.float64).reshape(len(a), len(self.features))  # (L, F)
        n_b = len(a)
        if n_b == 0:
            return
        mean_a, mean_f = a.mean(axis=0), f.mean(axis=0)  # (H,), (F,)
        da, df = a - mean_a, f - mean_f  # (L, H), (L, F)
        chunk = [n_b, mean_a, mean_f, (da * da).sum(axis=0), (df * df).sum(axis=0), df.T @ da,  # C: (F, H)
                 a.min(axis=0), a.max(axis=0)]
        if key not in self._moments:
            self._moments[key] = chunk
            return
        n_a, mean_a0, mean_f0, m2a, m2f, c, low, high = self._moments[key]
        n = n_a + n_b
        delta_a, delta_f = mean_a - mean_a0, mean_f - mean_f0  # (H,), (F,)
        weight = n_a * n_b / n
        self._moments[key] = [n, mean_a0 + delta_a * n_b / n, mean_f0 + delta_f * n_b / n,
                              m2a + chunk[3] + delta_a**2 * weight, m2f + chunk[4] + delta_f**2 * weight,
                              c + chunk[5] + np.outer(delta_f, delta_a) * weight,
                              np.minimum(low, chunk[6]), np.maximum(high, chunk[7])]

    def correlations(self, key: tuple[int, str]) -> np.ndarray:
        """(F, H): Pearson r of every feature with every unit of ``key`` over the rows added; NaN for a unit or a
        feature that is constant over them (and everywhere when fewer than 2 rows were added)."""
        n, _, _, m2a, m2f, c, low, high = self._moments[key]
        if n < 2:
            return np.full_like(c, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = c / np.sqrt(np.outer(m2f, m2a))  # (F, H)
        r[:, low == high] = np.nan
        r[m2f == 0, :] = np.nan
        return r

    def ranking(self, top: int = 5) -> dict[str, list[UnitMatch]]:
        """What :func:`rank_units` returns for all the rows added: the ``top`` units by |r| per feature."""
        ranking: dict[str, list[UnitMatch]] = {}
        by_key = {key: self.correlations(key) for key in self._moments}
        for i, name in enumerate(self.features):
            matches = [UnitMatch(int(layer), state, int(unit), float(r[i, unit]))
                       for (layer, state), r in by_key.items() for unit in np.flatnonzero(~np.isnan(r[i]))]
            matches.sort(key=lambda m: (-abs(m.correlation), m.layer, m.state, m.unit))
            ranking[name] = matches[:top]
        return ranking


@dataclass(frozen=True)
class ExampleMatch(Unit):
    """A unit found by example: how much more it is on inside a selection than outside it. ``score``: mean of v
    inside − mean of v outside, v the unit's value on the page's colour scale (h as is, c divided by max |c| over
    the text); positive: on inside, negative: the unit is on (negative) inside, in [-2, 2]."""

    score: float


def units_by_example(states: Mapping[tuple[int, str], np.ndarray], inside: np.ndarray, top: int = 10,
                     mask: np.ndarray | None = None) -> list[ExampleMatch]:
    r"""The ``top`` units most on inside a selection of positions and off outside it (LSTMVis's select step),
    best first by |score|: the ranking the explain page shows when a span of its text is selected.

    .. math:: v_{pu} = a_{pu} / s_u, \quad \mathrm{score}_u = \overline{v_{\cdot u}}^{\,p \in S} - \overline{v_{\cdot u}}^{\,p \notin S}

    with s_u = max(1, max_p |a_pu|) for h and tanh(c) and max_p |a_pu| for a cell state c (the page's colour
    scale), S the selected positions, both means over the positions in ``mask`` (default: rows without NaN).

    Args:
        states: (layer, state) → (P, H) activations, as :attr:`rnnkit.viz.Activations.states`.
        inside: (P,) bool, the selected positions.
    """
    inside = np.asarray(inside, dtype=bool)
    matches = []
    for (layer, state), values in states.items():
        values = np.asarray(values, dtype=np.float64)  # (P, H)
        keep = ~np.isnan(values).any(axis=1) if mask is None else np.asarray(mask, dtype=bool)  # (P,)
        selected, rest = keep & inside, keep & ~inside
        if not selected.any() or not rest.any():
            continue
        largest = np.abs(values[keep]).max(axis=0)  # (H,)
        # a bounded state (h, tanh(c)) keeps its own scale; an unbounded c is scaled to its largest value
        bounded = state in ("hidden", "tanh_cell")
        scale = np.maximum(largest, 1.0) if bounded else np.where(largest > 0, largest, 1.0)  # (H,)
        v = values / scale  # (P, H)
        score = v[selected].mean(axis=0) - v[rest].mean(axis=0)  # (H,)
        matches += [ExampleMatch(int(layer), state, int(u), float(score[u])) for u in range(len(score))]
    matches.sort(key=lambda m: (-abs(m.score), m.layer, m.state, m.unit))
    return matches[:top]
