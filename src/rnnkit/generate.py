"""Text from a trained language model: greedy, temperature, top-k and top-p (nucleus) sampling.

At every step the model gives logits z over the vocabulary for the next token; sampling draws
the token from ``softmax(z / temperature)`` restricted to the ``top_k`` most likely tokens and/or
to the smallest set whose probability reaches ``top_p``; greedy decoding takes ``argmax z``. The
drawn token is fed back as the next input, with the recurrent state carried along.

Example (print a sample as it is produced)::

    for piece in sample(model, vocab, prime="def ", length=500, temperature=0.8, seed=0):
        print(piece, end="", flush=True)
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .data.text import CharVocab, WordVocab
from .errors import InputError


def _check_filters(top_k: int | None, top_p: float | None) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InputError(f"top_k must be a whole number of at least 1, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise InputError(
            f"top_p must be in (0, 1], got {top_p!r}; e.g. 0.9 keeps the tokens holding 90% of the probability"
        )


def tempered(scores: Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``softmax((z - max z) / temperature)`` over the tokens :func:`filter_logits` keeps: the sampling
    distribution, finite for every temperature > 0.

    Subtracting the maximum first (which softmax ignores) makes the largest logit exactly 0 at every
    temperature, and the division runs in float64, where a temperature such as 1e-300 is not 0 (in float32 it
    is, and ``z / T`` is inf - inf = nan): as T -> 0 the others go to -inf and the distribution becomes greedy
    decoding's argmax; a huge T makes it uniform.
    """
    scores = scores.double()  # (..., V)
    shifted = scores - scores.max(dim=-1, keepdim=True).values  # (..., V) ≤ 0, the largest exactly 0
    return filter_logits(shifted / temperature, top_k, top_p).softmax(dim=-1).float()  # (..., V)


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set to -inf every logit outside the top-k and/or the top-p (nucleus) set; a new tensor.

    top-k keeps exactly the ``top_k`` largest logits of each row (ties broken by index; all of
    them if ``top_k`` ≥ V). top-p then keeps the smallest set of the most likely remaining tokens
    whose probability (softmax of the remaining logits) sums to at least ``top_p``; the most
    likely token is always kept.

    Args:
        logits: (..., V) scores.
        top_k: keep this many tokens, or None for no limit.
        top_p: keep tokens up to this cumulative probability, in (0, 1], or None (same as 1).

    Returns:
        (..., V) logits with the dropped entries at -inf.

    Example::

        >>> filter_logits(torch.tensor([1.0, 3.0, 2.0]), top_k=2)
        tensor([-inf, 3., 2.])
    """
    _check_filters(top_k, top_p)
    logits = logits.clone()  # (..., V)
    if top_k is not None and top_k < logits.shape[-1]:
        kept = logits.topk(top_k, dim=-1).indices  # (..., k)
        dropped = torch.ones_like(logits, dtype=torch.bool).scatter_(-1, kept, False)  # (..., V)
        logits.masked_fill_(dropped, -math.inf)
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (..., V), (..., V)
        probs = sorted_logits.softmax(dim=-1)  # (..., V)
        mass_before = probs.cumsum(dim=-1) - probs  # (..., V) probability of the more likely tokens
        # a token is needed while the more likely ones hold less than top_p; the first always is
        dropped_sorted = mass_before >= top_p  # (..., V)
        dropped_sorted[..., 0] = False
        dropped = torch.zeros_like(dropped_sorted).scatter_(-1, order, dropped_sorted)  # (..., V)
        logits.masked_fill_(dropped, -math.inf)
    return logits


def sample(model: nn.Module, vocab: CharVocab | WordVocab, prime: str = "", length: int = 200,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           greedy: bool = False, seed: int | None = None, device: str | torch.device = "cpu") -> Iterator[str]:
    """Generate ``length`` tokens after ``prime``, yielding each one's text as soon as it is drawn.

    The prime is fed through the model first and is not yielded (print it yourself if wanted).
    An empty prime starts after a line break: the context is ``"\\n"`` at character level and
    ``<eos>`` at word level (the start of a line or sentence). Joined, the yielded pieces are
    ``vocab.decode`` of the generated ids: characters, or words with a leading space unless they
    start a line, and ``"\\n"`` for ``<eos>``.

    Arguments are checked when ``sample`` is called, before the first piece is asked for.

    Args:
        model: a language model, ``model(tokens (N, L), state) -> (logits (N, L, V), state)``,
            already on ``device``; V must equal ``len(vocab)``. It is put in eval mode while
            sampling and returned to its previous mode when the iterator ends or is closed.
        vocab: the model's vocabulary.
        prime: text to condition on. Character level: every character must be in the vocabulary
            (InputError names those that are not). Word level: whitespace-separated words;
            unknown words are fed as ``<unk>``, which a PTB-style model has learnt as an ordinary
            token (``vocab.unknown_symbols(prime)`` lists them).
        length: tokens to generate, ≥ 0.
        temperature: > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k, top_p: restrict sampling as in :func:`filter_logits`.
        greedy: take the most likely token every step (temperature, top_k and top_p are ignored).
        seed: makes the output reproducible; sampling uses a private ``torch.Generator``, so the
            global random state is neither used nor changed.
        device: where the token tensors and the generator live.

    Yields:
        The text of each generated token, one at a time.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise InputError(f"length must be a whole number ≥ 0, got {length!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise InputError(
            f"temperature must be a positive number, got {temperature!r}; use e.g. 0.8 (or greedy decoding)"
        )
    _check_filters(top_k, top_p)
    vocab_size = getattr(model, "vocab_size", len(vocab))
    if vocab_size != len(vocab):
        raise InputError(f"the vocabulary has {len(vocab)} tokens but the model predicts {vocab_size}; "
                         f"use the vocabulary saved with the model")
    context = _prime_ids(vocab, prime)
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return _generate(model, vocab, context, length, temperature, top_k, top_p, greedy, generator, device)


def _prime_ids(vocab: CharVocab | WordVocab, prime: str) -> list[int]:
    """The ids the model reads before generating; InputError for characters it cannot read."""
    if vocab.level == "char":
        unknown = vocab.unknown_symbols(prime or "\n")
        if unknown and not prime:
            raise InputError("the vocabulary has no newline to start from; give a prime text")
        if unknown:
            shown = ", ".join(repr(c) for c in unknown)
            raise InputError(f"the prime has characters not in the vocabulary: {shown}; remove or replace them")
        return vocab.encode(prime or "\n").tolist()
    ids = vocab.encode(prime).tolist()
    return ids or [vocab.eos_id]


def _generate(model: nn.Module, vocab: CharVocab | WordVocab, context: list[int], length: int, temperature: float,
              top_k: int | None, top_p: float | None, greedy: bool, generator: torch.Generator,
              device: str | torch.device) -> Iterator[str]:
    was_training = model.training
    model.eval()
    try:
        # no_grad around each model call only: a grad mode held across a yield would leak into the caller
        with torch.no_grad():
            logits, state = model(torch.tensor([context], device=device))  # (1, P, V)
        previous = context[-1]
        for step in range(length):
            scores = logits[0, -1].float()  # (V,)
            if greedy:
                token = int(scores.argmax())
            else:
                probs = tempered(scores, temperature, top_k, top_p)  # (V,)
                token = int(torch.multinomial(probs, 1, generator=generator))
            yield vocab.piece(token, previous)
            previous = token
            if step + 1 < length:
                with torch.no_grad():
                    logits, state = model(torch.tensor([[token]], device=device), state)  # (1, 1, V)
    finally:
        model.train(was_training)
