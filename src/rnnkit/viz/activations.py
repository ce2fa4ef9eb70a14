r"""Run a language model over a text and keep what every recurrent unit did at every position.

:func:`collect_activations` feeds the text to a :class:`~rnnkit.models.LanguageModel` from a zero
state and records, after each token, the hidden state h_t (and, for a cell that has one, as the LSTM, the cell state c_t
and tanh(c_t) beside it) of every layer, through the layers' :meth:`~rnnkit.nn.layer.RecurrentBase.trace`, together with the
model's top-k predictions of the next token, softmax(logits_t).

Positions: a character model has one position per character of the text; a word model one per word
and one per newline (its ``<eos>`` token), each with its (start, end) offsets in the text so that a
page can colour the words in place. A character outside a character model's vocabulary cannot be fed
(it has no id): it stays a position, marked not ``fed``, with NaN activations and no predictions, and
the model reads on as if it were not there. A word outside a word model's vocabulary is fed as
``<unk>`` (that is what the model was trained on) and marked ``unknown``.

Example::

    model, vocab, _ = from_run("runs/main")
    activations = collect_activations(model, vocab, "def f(x):\n    return 'x'\n")
    activations.states[(1, "cell")].shape        # (25, 256): position, unit
    activations.predictions(4)                   # [('x', 0.41), ('s', 0.12), ...] after "def f"
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..data.text import CharVocab, WordVocab
from ..models import LanguageModel

# tanh(c_t) beside c_t: c_t is unbounded (a counting cell grows without limit) while tanh(c_t), what the LSTM's
# output gate reads, lies in (-1, 1) and saturates; Karpathy, Johnson & Fei-Fei (2015) colour tanh(c). Recorded for
# that reason, decided before looking at any of their figures, not to match one.
STATES = ("hidden", "cell", "tanh_cell")
STATE_LABELS = {"hidden": "h", "cell": "c", "tanh_cell": "tanh(c)"}
CHUNK = 1000  # positions per trace call: bounds the memory of the recorded gates on long texts


@dataclass
class Activations:
    """What a language model computed over a text, position by position.

    Attributes:
        text: the text read.
        level: ``"char"`` or ``"word"``: what a position is.
        cell: the model's cell, as its configuration names it (``"lstm"``, ``"gru"``, ``"rnn"``, ...).
        spans: (P, 2) int64: the [start, end) offsets of each position's token in ``text``.
        fed: (P,) bool: the position's token went into the model (False: a character outside the vocabulary).
        unknown: (P,) bool: the token is outside the vocabulary (a character not fed, or a word fed as ``<unk>``).
        states: (layer, ``"hidden"`` | ``"cell"`` | ``"tanh_cell"``) → (P, H) float32: the state after reading
            each position, NaN where not fed. Layers count from 0; ``"cell"`` (c_t) and ``"tanh_cell"``
            (tanh(c_t), computed from the recorded c_t) only for a cell with a cell state (LSTM).
        top_ids: (P, k) int64: the k most likely next tokens after each position, best first; -1 where not fed.
        top_probs: (P, k) float32: their probabilities; 0 where not fed.
        symbols: the vocabulary's symbols (index = token id).
        ids: (P,) int64: the token id read at each position; -1 where not fed.
    """

    text: str
    level: str
    cell: str
    spans: np.ndarray
    fed: np.ndarray
    unknown: np.ndarray
    states: dict[tuple[int, str], np.ndarray]
    top_ids: np.ndarray
    top_probs: np.ndarray
    symbols: list[str]
    ids: np.ndarray

    @property
    def num_layers(self) -> int:
        return 1 + max(layer for layer, _ in self.states)

    @property
    def state_names(self) -> list[str]:
        """The recorded states, in the order of :data:`STATES`."""
        return [name for name in STATES if (0, name) in self.states]

    @property
    def hidden_size(self) -> int:
        return self.states[(0, "hidden")].shape[1]

    @property
    def last_read(self) -> np.ndarray:
        """(P,) int64: the offset of the last character each position has read (a word's last character):
        where :func:`~rnnkit.viz.text_features` describes what the state after the position can know."""
        return self.spans[:, 1] - 1

    def predictions(self, position: int) -> list[tuple[str, float]]:
        """The (symbol, probability) pairs predicted after ``position``, best first; [] where not fed."""
        return [(self.symbols[i], float(p)) for i, p in zip(self.top_ids[position], self.top_probs[position]) if i >= 0]


def tokenize_positions(vocab: CharVocab | WordVocab, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spans (P, 2), ids (P,) with -1 for a character outside the vocabulary, unknown (P,)) of ``text``.

    Word positions follow :meth:`WordVocab.tokenize`: each run of non-whitespace is a word and each
    newline an ``<eos>``, so the ids are exactly ``vocab.encode(text)``.
    """
    if vocab.level == "char":
        spans = np.stack([np.arange(len(text)), np.arange(1, len(text) + 1)], axis=1)  # (P, 2)
        lookup = {symbol: i for i, symbol in enumerate(vocab.symbols)}
        ids = np.array([lookup.get(char, -1) for char in text], dtype=np.int64)  # (P,)
        return spans, ids, ids < 0
    matches = list(re.finditer(r"\S+|\n", text))
    spans = np.array([(m.start(), m.end()) for m in matches], dtype=np.int64).reshape(-1, 2)  # (P, 2)
    ids = vocab.encode(text).numpy().astype(np.int64)  # (P,)
    words = [m.group() for m in matches]
    unknown = np.array([i == vocab.unk_id and w != vocab.symbols[vocab.unk_id] for i, w in zip(ids, words)], dtype=bool)
    return spans, ids, unknown


@torch.no_grad()
def collect_activations(model: LanguageModel, vocab: CharVocab | WordVocab, text: str, top: int = 5) -> Activations:
    """Run ``model`` over ``text`` from a zero state and record every layer's states and the top-``top``
    next-token predictions at every position (see :class:`Activations` for the formats).

    The model runs in eval mode (no dropout), through the recurrent layers' ``trace`` (rnnkit's
    explicit engine, which gives the same numbers as the fused one), ``CHUNK`` positions at a time with
    the state carried across, so a long text needs little memory. The model's own mode is restored.
    """
    spans, ids, unknown = tokenize_positions(vocab, text)
    fed = ids >= 0  # (P,)
    P, H, K = len(ids), model.rnn.hidden_size, model.rnn.num_layers
    states: dict[tuple[int, str], np.ndarray] = {}
    k = min(top, model.vocab_size)
    top_ids = np.full((P, k), -1, dtype=np.int64)
    top_probs = np.zeros((P, k), dtype=np.float32)

    with contextlib.closing(traced_chunks(model, ids, fed)) as chunks:
        for where, trace, states_of in chunks:
            if not states:
                states = {(layer, name): np.full((P, H), np.nan, dtype=np.float32)
                          for layer in range(K) for name in STATES if states_of[name] is not None}
            for (layer, name), values in states.items():
                values[where] = states_of[name][layer, 0, : len(where)].numpy()
            probs = F.softmax(model.decoder(trace.output), dim=-1)[0, : len(where)]  # (L, V)
            best = probs.topk(k, dim=-1)  # (L, k) each
            top_ids[where] = best.indices.numpy()
            top_probs[where] = best.values.numpy()
    return Activations(text=text, level=vocab.level, cell=model.config.cell, spans=spans, fed=fed, unknown=unknown,
                       states=states, top_ids=top_ids, top_probs=top_probs, symbols=list(vocab.symbols), ids=ids)


@torch.no_grad()
def traced_chunks(model: LanguageModel, ids: np.ndarray, fed: np.ndarray
                  ) -> Iterator[tuple[np.ndarray, StackTrace, dict[str, torch.Tensor | None]]]:
    """Trace ``model`` over the fed tokens of ``ids`` (P,) (``fed`` (P,) says which) from a zero state, ``CHUNK``
    tokens at a time with the state carried across, in eval mode (the model's own mode is restored when the
    iteration ends or is closed: iterate inside ``contextlib.closing``).

    Yields, per chunk, ``where`` (L,) the positions of its tokens, its :class:`StackTrace` and
    :func:`traced_states` of it. A text with no fed token still yields one chunk (of one zero token, with
    ``where`` empty), so that the layer says which states it has (``trace.cell``), not the cell's name.
    """
    positions = np.flatnonzero(fed)  # (T,) where each fed token sits
    tokens = torch.from_numpy(ids[positions])  # (T,)
    was_training = model.training
    model.eval()
    try:
        state = None
        for start in range(0, max(len(tokens), 1), CHUNK):
            chunk = tokens[start : start + CHUNK].unsqueeze(0)  # (1, L)
            where = positions[start : start + CHUNK]  # (L,)
            if chunk.shape[1] == 0:  # nothing to read: still ask the layer which states it has
                chunk, where = torch.zeros(1, 1, dtype=torch.long), where[:0]
            trace = trace_stack(model.rnn, _inputs(model, chunk), state)
            state = trace.state
            yield where, trace, traced_states(trace)  # states each (K, 1, L, H) or None, batch first
    finally:
        model.train(was_training)


@torch.no_grad()
def recorded_states(model: LanguageModel) -> list[str]:
    """The states :func:`collect_activations` records for ``model``, in the order of :data:`STATES`: ``"hidden"``,
    and ``"cell"`` when the model's layers carry a cell state. The layer is asked (one step of its trace), not
    the cell's name."""
    trace = trace_stack(model.rnn, _inputs(model, torch.zeros(1, 1, dtype=torch.long)))
    return list(STATES) if trace.cell is not None else ["hidden"]


@dataclass
class StackTrace:
    """What :func:`trace_stack` records: ``output`` (N, L, W) what the model's head reads, ``state`` the final
    state (as the stack returns it), ``hidden`` (K, N, L, H) h_t of each recurrent layer, ``cell`` c_t likewise
    or None."""

    output: torch.Tensor
    state: object
    hidden: torch.Tensor
    cell: torch.Tensor | None


@torch.no_grad()
def trace_stack(rnn: torch.nn.Module, x: torch.Tensor, state=None):
    r"""Every step's states of a model's recurrent layers over x (N, L, F), batch first, in eval mode.

    A plain stack is its layers' own ``trace``. A residual stack (``--block residual``,
    :mod:`rnnkit.models.blocks`) is traced block by block: each block's recurrent layer is traced on its
    LayerNorm of the residual stream s, then s ← u + MLP(LN'(u)) with u = s + h (no dropout: eval), so that
    ``hidden[k]`` is block k's recurrent state h_t^(k) and ``output`` = LN_out(s) is what the model's head reads.
    """
    if not hasattr(rnn, "blocks"):
        return rnn.trace(x, state)
    stream = rnn.project(x) if rnn.project is not None else x  # (N, L, W)
    traces = []
    for k, block in enumerate(rnn.blocks):
        trace = block.rnn.trace(block.norm_rnn(stream), rnn._layer_state(state, k))
        u = stream + trace.output  # (N, L, W)
        stream = u + block.mlp(block.norm_mlp(u))  # (N, L, W)
        traces.append(trace)
    cell = None if traces[0].cell is None else torch.cat([t.cell for t in traces])  # (K, N, L, H)
    return StackTrace(rnn.norm(stream), rnn._stacked([t.state for t in traces]),
                      torch.cat([t.hidden for t in traces]), cell)  # hidden (K, N, L, H)


def traced_states(trace) -> dict[str, torch.Tensor | None]:
    """The states of :data:`STATES` in a layer's trace, each (K, N, L, H) or None: h_t, c_t and tanh(c_t)."""
    cell = trace.cell
    return {"hidden": trace.hidden, "cell": cell, "tanh_cell": None if cell is None else torch.tanh(cell)}


def _inputs(model: LanguageModel, tokens: torch.Tensor) -> torch.Tensor:
    """The recurrent layers' input for ``tokens`` (1, L), as LanguageModel.forward builds it in eval mode."""
    if model.embedding is not None:
        return model.embedding(tokens)  # (1, L, E)
    return F.one_hot(tokens, model.vocab_size).to(model.input_dtype)  # (1, L, V)
