r"""``rnnkit explain`` over a long text in bounded memory: rank the units over the whole text, keep the states of
the page's window only.

:func:`collect_activations` keeps every state of every position: K layers × S states × H units × 4 bytes a
position, 4 kB for a 2 × 256 LSTM, so 4 GB for a million characters (and the page could not run or show them
anyway). :func:`stream_text` reads the text the same way, ``CHUNK`` tokens at a time with the state carried
across, but keeps of each chunk only

* its contribution to the running moments of every unit against every feature
  (:class:`~rnnkit.viz.units.RunningCorrelation`): the ranking is that of :func:`rank_units` over all the text;
* the states and top predictions of the positions inside the **window**, the first ``window_chars`` characters
  of the text: what the page shows and colours.

What stays in memory for a text of P positions is O(P) numbers (its tokens, their spans and its features,
about 100 bytes a position: :data:`BYTES_PER_CHAR` bounds it) plus the window's states and one chunk's working
copies, whatever the model: :func:`memory_bound`.

    explained = stream_text(model, vocab, text, window_chars=5000, progress=bar.update)
    explained.ranking["in_quotes"][0]      # UnitMatch(layer=1, state='cell', unit=17, correlation=0.83): all text
    explained.window.states[(1, "cell")]   # (P_w, H): the first 5,000 characters' positions only
    explained.window.states[(1, "tanh_cell")]  # (P_w, H): tanh of those, ranked beside them
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.text import CharVocab, WordVocab
from ..models import LanguageModel
from .activations import CHUNK, STATES, Activations, tokenize_positions, traced_chunks
from .features import text_features, varying
from .units import RunningCorrelation, UnitMatch

# What reading one character costs at most, in bytes, before any state: the text itself (up to 4 bytes a
# character), spans (16), ids (8), the masks (2), the last offsets read (8), the features (10 × 4, float32) and
# the temporaries text_features makes (about 100: int64 line geometry, bracket depth, quote masks).
BYTES_PER_CHAR = 200
CHUNK_COPIES = 8  # float64 (L, H) arrays alive at once while a chunk's moments are merged (values, centred, squares)


def memory_bound(characters: int, window_chars: int, num_layers: int, hidden_size: int) -> int:
    """Bytes :func:`stream_text` holds at most (beside the model and PyTorch's own buffers): the text's arrays,
    the window's float32 states (h and, at most, c and tanh(c) of every layer) and one chunk's float64 working
    copies."""
    window = min(window_chars, characters) * num_layers * len(STATES) * hidden_size * 4
    return BYTES_PER_CHAR * characters + window + CHUNK_COPIES * CHUNK * hidden_size * 8


@dataclass
class Explained:
    """What :func:`stream_text` found.

    Attributes:
        window: the :class:`Activations` of the window: the text cut to ``window_chars`` characters and the
            positions inside it (their tokens end inside it), with their states and top predictions.
        ranking: feature name → the best units by |r| over **every** fed position of the text.
        constant: the features that take one value over the fed positions (not ranked).
        positions: P, the positions of the whole text; ``fed``: how many of them the model read.
        unknown: (P,) bool over the whole text (as :attr:`Activations.unknown`); ``spans``: (P, 2) their offsets.
    """

    window: Activations
    ranking: dict[str, list[UnitMatch]]
    constant: list[str]
    positions: int
    fed: int
    unknown: np.ndarray
    spans: np.ndarray


@torch.no_grad()
def stream_text(model: LanguageModel, vocab: CharVocab | WordVocab, text: str, *, window_chars: int, top: int = 5,
                ranked: int = 5, progress: Callable[[int], Callable[[int], None]] | None = None) -> Explained:
    """Run ``model`` over ``text`` from a zero state, ``CHUNK`` tokens at a time, ranking every unit against the
    features of :func:`~rnnkit.viz.text_features` that vary over the text (the ``ranked`` best per feature) and
    keeping the states and top-``top`` predictions of the positions of the first ``window_chars`` characters.

    ``progress(T)``, given the number of tokens to read, returns the function called after each chunk with the
    number of tokens it read (a progress bar's update). The model runs in eval mode
    (no dropout) through its layers' ``trace``, as :func:`~rnnkit.viz.collect_activations`; its mode is restored.
    """
    spans, ids, unknown = tokenize_positions(vocab, text)  # (P, 2), (P,), (P,)
    fed = ids >= 0  # (P,)
    features, constant = varying(text_features(text, spans[:, 1] - 1), fed)
    names = list(features)
    table = np.zeros((len(ids), len(names)), dtype=np.float32)  # (P, F): small whole numbers, exact in float32
    for i, name in enumerate(names):
        table[:, i] = features[name]
    del features
    shown = int(np.searchsorted(spans[:, 1], window_chars, side="right"))  # P_w: positions inside the window

    P, H, K = len(ids), model.rnn.hidden_size, model.rnn.num_layers
    k = min(top, model.vocab_size)
    top_ids = np.full((shown, k), -1, dtype=np.int64)  # (P_w, k)
    top_probs = np.zeros((shown, k), dtype=np.float32)  # (P_w, k)
    window_states: dict[tuple[int, str], np.ndarray] = {}
    running = RunningCorrelation(names)

    advance = progress(int(fed.sum())) if progress is not None else None  # T tokens to read
    with contextlib.closing(traced_chunks(model, ids, fed)) as chunks:
        for where, trace, states_of in chunks:  # states_of: each (K, 1, L, H) or None: h, c, tanh(c)
            if not window_states:
                window_states = {(layer, name): np.full((shown, H), np.nan, dtype=np.float32)
                                 for layer in range(K) for name in STATES if states_of[name] is not None}
            inside = int(np.searchsorted(where, shown))  # the chunk's first `inside` positions are in the window
            rows = table[where]  # (L, F)
            for (layer, name) in window_states:
                values = states_of[name][layer, 0, : len(where)].numpy()  # (L, H)
                running.update((layer, name), values, rows)
                window_states[(layer, name)][where[:inside]] = values[:inside]
            if inside:
                probs = F.softmax(model.decoder(trace.output[:, :inside]), dim=-1)[0]  # (inside, V)
                best = probs.topk(k, dim=-1)  # (inside, k) each
                top_ids[where[:inside]] = best.indices.numpy()
                top_probs[where[:inside]] = best.values.numpy()
            if advance is not None:
                advance(len(where))
    window = Activations(text=text[:window_chars], level=vocab.level, cell=model.config.cell, spans=spans[:shown],
                         fed=fed[:shown], unknown=unknown[:shown], states=window_states, top_ids=top_ids,
                         top_probs=top_probs, symbols=list(vocab.symbols), ids=ids[:shown])
    return Explained(window, running.ranking(ranked), constant, P, int(fed.sum()), unknown, spans)
