r"""Writing an output sequence token by token: greedy search and batched beam search.

Both work with any conditional decoder (:class:`~rnnkit.models.Seq2Seq`, :class:`~rnnkit.models.Captioner`)
that offers the small interface of :class:`ConditionalDecoder`: ``start`` encodes the input once, ``step``
turns the previous token and the state into the next token's logits. Every sequence starts from ``<bos>``
and ends at ``<eos>`` or after ``max_length`` tokens.

Greedy search takes y_i = argmax_y p(y | y_<i, x) at every step.

Neither search writes ``<pad>`` or ``<bos>``: no training target holds them, yet a model gives them some
probability, and one written mid-output would be dropped from the text while its attention alignment
was kept, shifting every later ``<unk>`` replacement to the wrong source word.

Beam search keeps, for every input, the ``beam_size`` best partial outputs by their summed log probability
log p(y_1..y_i | x). At each step every kept output is extended by every token, and the best
``beam_size`` of the beam_size × V extensions survive. An output that has written ``<eos>`` is finished:
it stays in the beam with its score frozen (it can only be extended by padding, at no cost), so it competes
with the unfinished ones until the beam holds only finished outputs or ``max_length`` is reached. The answer
is the output with the best length-normalised score (Wu et al. 2016, GNMT)::

    score(Y) = log p(Y | x) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha      (|Y| counts <eos>)

alpha = 0 compares raw log probabilities (which favour short outputs); alpha = 1 is close to the mean log
probability per token. With ``beam_size=1`` beam search is greedy search.

The whole batch is searched at once: the N inputs' beams form N × beam_size rows, the encoder's output is
repeated once per beam (beams of one input share it, so it never needs reordering), and only the decoder
state is reordered by the beams' back-pointers each step.

Example::

    result = beam_search(model, source, lengths, beam_size=5, max_length=50, length_penalty_alpha=0.6)
    result.tokens[0]         # the first sentence's best output: token ids without <bos> and <eos>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from ..errors import InputError


class ConditionalDecoder(Protocol):
    """What greedy and beam search need of a model.

    ``state`` is a recurrent layer's state, batch in dim 1: (layers, N, H), or a tuple of such tensors
    (LSTM's (h, c)). ``memory`` is a tuple (or NamedTuple) of batch-first tensors (or None entries) that
    ``step`` reads but never changes: the encoder's outputs and mask, an image's features.
    """

    bos_index: int
    eos_index: int
    pad_index: int

    def start(self, *inputs) -> tuple[Any, tuple]:
        """Encode the inputs (each with the batch first): the initial decoder state and the memory."""

    def step(self, tokens: Tensor, state, memory: tuple) -> tuple[Tensor, Any, Tensor | None]:
        """tokens (N,) the previous outputs → logits (N, V), the new state, attention weights (N, S) or None."""


@dataclass
class Decoded:
    """The outputs of a search, one per input.

    tokens: the token ids of each output, without ``<bos>`` and ``<eos>``.
    scores: (N,) the log probability of each output (``<eos>`` included), not length-normalised.
    finished: whether each output ended with ``<eos>`` (False: cut at ``max_length``).
    alignments: for attention models, the source position each output token attended to most (one list
        per output, as long as ``tokens``); None for models without attention.
    """

    tokens: list[list[int]]
    scores: Tensor
    finished: list[bool]
    alignments: list[list[int]] | None = None


def select_rows(state, indices: Tensor):
    """The rows ``indices`` of a recurrent state (batch in dim 1), a tensor or a tuple of them."""
    if isinstance(state, Tensor):
        return state.index_select(1, indices)
    return tuple(select_rows(part, indices) for part in state)


def repeat_memory(memory: tuple, times: int) -> tuple:
    """Each row of every batch-first tensor in ``memory`` repeated ``times`` times in place (beams)."""
    repeated = [None if part is None else part.repeat_interleave(times, dim=0) for part in memory]
    return type(memory)(*repeated) if hasattr(memory, "_fields") else tuple(repeated)


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT's lp(Y) = ((5 + |Y|) / 6) ** alpha."""
    return ((5.0 + lengths.to(torch.float32)) / 6.0) ** alpha


def _check(beam_size: int, max_length: int, alpha: float) -> None:
    for name, value in (("beam size", beam_size), ("max length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"the {name} must be a whole number of at least 1, got {value!r}")
    if not isinstance(alpha, (int, float)) or alpha < 0:
        raise InputError(f"the length penalty must be a number >= 0, got {alpha!r}; e.g. 0.6")


@torch.no_grad()
def greedy_search(model: ConditionalDecoder, *inputs, max_length: int) -> Decoded:
    """The most likely token at every step, for a whole batch at once; see the module docstring."""
    _check(1, max_length, 0.0)
    state, memory = model.start(*inputs)
    batch = _batch_size(state)
    device = _device(state)
    tokens = torch.full((batch,), model.bos_index, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    scores = torch.zeros(batch, device=device)
    outputs, attended = [], []
    for _ in range(max_length):
        logits, state, weights = model.step(tokens, state, memory)  # (N, V)
        log_probs = _never_pad_or_bos(torch.log_softmax(logits.float(), dim=-1), model)  # (N, V)
        best = log_probs.argmax(dim=-1)  # (N,)
        # a finished row writes padding and keeps its score
        tokens = torch.where(finished, torch.full_like(best, model.pad_index), best)
        scores += torch.where(finished, 0.0, log_probs.gather(1, best.unsqueeze(1)).squeeze(1))
        outputs.append(tokens)
        attended.append(None if weights is None else weights.argmax(dim=-1))
        finished |= tokens == model.eos_index
        if bool(finished.all()):
            break
    steps = torch.stack(outputs, dim=1)  # (N, T)
    alignment = None if attended[0] is None else torch.stack(attended, dim=1)  # (N, T)
    return _collect(steps, alignment, scores, model.eos_index)


@torch.no_grad()
def beam_search(model: ConditionalDecoder, *inputs, beam_size: int, max_length: int,
                length_penalty_alpha: float = 0.0) -> Decoded:
    """The best of ``beam_size`` hypotheses per input by length-normalised log probability; see the module
    docstring. ``length_penalty_alpha`` is GNMT's alpha (0: no normalisation)."""
    _check(beam_size, max_length, length_penalty_alpha)
    state, memory = model.start(*inputs)
    N, k = _batch_size(state), beam_size
    device = _device(state)
    rows = torch.arange(N, device=device)  # (N,)
    state = select_rows(state, rows.repeat_interleave(k))  # (layers, N * k, H)
    memory = repeat_memory(memory, k)
    tokens = torch.full((N * k,), model.bos_index, dtype=torch.long, device=device)
    # only the first beam is alive at the start: the others would duplicate it
    scores = torch.full((N, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(N, k, dtype=torch.bool, device=device)
    lengths = torch.zeros(N, k, dtype=torch.long, device=device)
    history, pointers, attended = [], [], []
    for _ in range(max_length):
        logits, state, weights = model.step(tokens, state, memory)  # (N * k, V)
        log_probs = _never_pad_or_bos(torch.log_softmax(logits.float(), dim=-1), model).view(N, k, -1)  # (N, k, V)
        V = log_probs.size(2)
        # a finished hypothesis may only be extended by padding, at no cost: its score stays frozen
        frozen = torch.full((V,), float("-inf"), device=device)
        frozen[model.pad_index] = 0.0
        log_probs = torch.where(finished.unsqueeze(2), frozen, log_probs)
        candidates = (scores.unsqueeze(2) + log_probs).view(N, k * V)  # (N, k * V)
        scores, chosen = candidates.topk(k, dim=1)  # (N, k), (N, k)
        origin = torch.div(chosen, V, rounding_mode="floor")  # (N, k) the beam each one extends
        token = chosen % V  # (N, k)
        flat_origin = (rows.unsqueeze(1) * k + origin).view(-1)  # (N * k,)
        state = select_rows(state, flat_origin)
        was_finished = finished.gather(1, origin)  # (N, k)
        lengths = lengths.gather(1, origin) + (~was_finished).long()
        finished = was_finished | (token == model.eos_index)
        history.append(token)
        pointers.append(origin)
        if weights is not None:
            attended.append(weights.argmax(dim=-1).view(N, k).gather(1, origin))  # (N, k)
        tokens = token.view(-1)
        if bool(finished.all()):
            break
    normalised = scores / length_penalty(lengths.clamp(min=1), length_penalty_alpha)  # (N, k)
    best = normalised.argmax(dim=1)  # (N,)
    final_scores = scores.gather(1, best.unsqueeze(1)).squeeze(1)  # (N,)
    steps, alignment = _backtrack(history, pointers, attended, best)
    return _collect(steps, alignment, final_scores, model.eos_index)


def best_writable(logits: Tensor, model: ConditionalDecoder) -> Tensor:
    """(N, V) → (N,): the most likely token other than ``<pad>`` and ``<bos>``, what greedy search writes (and
    what a decoder trained with a teacher forcing ratio below 1 reads back)."""
    return _never_pad_or_bos(logits.detach().float().clone(), model).argmax(dim=-1)


def _never_pad_or_bos(log_probs: Tensor, model: ConditionalDecoder) -> Tensor:
    """``log_probs`` (..., V) with ``<pad>`` and ``<bos>`` at -inf (a finished output's padding is added apart)."""
    log_probs[..., [model.pad_index, model.bos_index]] = float("-inf")
    return log_probs


def _backtrack(history: list[Tensor], pointers: list[Tensor], attended: list[Tensor], best: Tensor):
    """Follow the back-pointers from the chosen beams to the first step: (N, T) tokens (and alignments)."""
    beam = best.unsqueeze(1)  # (N, 1)
    tokens, positions = [], []
    for t in range(len(history) - 1, -1, -1):
        tokens.append(history[t].gather(1, beam))  # (N, 1)
        if attended:
            positions.append(attended[t].gather(1, beam))
        beam = pointers[t].gather(1, beam)
    steps = torch.cat(tokens[::-1], dim=1)  # (N, T)
    alignment = torch.cat(positions[::-1], dim=1) if attended else None  # (N, T)
    return steps, alignment


def _collect(steps: Tensor, alignment: Tensor | None, scores: Tensor, eos: int) -> Decoded:
    """Cut each row of (N, T) step outputs at its first <eos>."""
    tokens, finished, alignments = [], [], []
    for n, row in enumerate(steps.tolist()):
        end = row.index(eos) if eos in row else len(row)
        tokens.append(row[:end])
        finished.append(end < len(row))
        if alignment is not None:
            alignments.append(alignment[n, :end].tolist())
    return Decoded(tokens, scores.cpu(), finished, alignments if alignment is not None else None)


def _batch_size(state) -> int:
    return (state if isinstance(state, Tensor) else state[0]).size(1)


def _device(state) -> torch.device:
    return (state if isinstance(state, Tensor) else state[0]).device
