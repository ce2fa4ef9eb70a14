r"""The decoders of an exported file (seq2seq, captioner) behind rnnkit's own greedy and beam search.

:mod:`rnnkit.models.decoding` searches with any model that offers ``start`` (encode the input once: the
decoder's initial state and the memory) and ``step`` (the previous tokens and the state → the next tokens'
logits, the next state, the attention weights). The ``encoder`` graph is ``start`` and the ``decoder_step``
graph is ``step``, so the search (beam bookkeeping, GNMT length penalty, ``<unk>`` alignments, the ends at
``<eos>``) is the very code PyTorch's models run, and a file translates and captions as its run does:

    Seq2SeqGraphs.start(source (N, S), lengths (N,)) -> state, (memory, memory_mask, keys) | ()
    Seq2SeqGraphs.step(tokens (N,), state, memory)   -> logits (N, V), state, attention (N, S) | None
    CaptionerGraphs.start(images (N, H, W))          -> state, (features (N, F),)
    CaptionerGraphs.step(tokens (N,), state, memory) -> logits (N, V), state, None

The state is a tuple of (K, N, H) tensors (h[, c]) whose rows beam search reorders; the memory's rows are
repeated per beam by the search itself. ``generate`` picks the search and its defaults as the models' own
``generate`` does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from rnnkit.models.decoding import Decoded, beam_search, greedy_search

from .onnx_models import GraphModel


def _arrays(tensors) -> list[np.ndarray]:
    return [tensor.numpy() for tensor in tensors]


class DecoderGraphs(GraphModel):
    """An ``encoder`` and a ``decoder_step`` session with the special token ids of the model's config."""

    def __init__(self, encoder, step, config: dict):
        self.encoder, self.step_session = encoder, step
        self.pad_index = int(config.get("pad_index", 0))
        self.bos_index = int(config.get("bos_index", 2))
        self.eos_index = int(config.get("eos_index", 3))
        inputs = [spec.name for spec in step.get_inputs()]
        self.state_names = [name for name in inputs if name in ("h0", "c0")]  # h0[, c0]

    def _search(self, *inputs, beam_size: int, max_length: int, length_penalty: float) -> Decoded:
        if beam_size == 1:
            return greedy_search(self, *inputs, max_length=max_length)
        return beam_search(self, *inputs, beam_size=beam_size, max_length=max_length,
                           length_penalty_alpha=length_penalty)


class Seq2SeqGraphs(DecoderGraphs):
    """A seq2seq file: the ``encoder`` graph (source, source_lengths → h0[, c0][, memory, memory_mask, keys])
    and the ``decoder_step`` graph (tokens, h0[, c0][, memory...] → logits, h_n[, c_n][, attention])."""

    def start(self, source: Tensor, source_lengths: Tensor):
        outputs = self.encoder.run(None, {"source": source.numpy().astype(np.int64),
                                          "source_lengths": source_lengths.numpy().astype(np.int64)})
        count = len(self.state_names)
        state = tuple(torch.from_numpy(array) for array in outputs[:count])  # (K, N, H) each
        return state, tuple(torch.from_numpy(array) for array in outputs[count:])  # () without attention

    def step(self, tokens: Tensor, state: tuple, memory: tuple):
        feed = {"tokens": tokens.numpy().astype(np.int64), **dict(zip(self.state_names, _arrays(state)))}
        feed.update(zip(("memory", "memory_mask", "keys"), _arrays(memory)))
        logits, *rest = self.step_session.run(None, feed)  # (N, V), h_n[, c_n][, attention (N, S)]
        count = len(self.state_names)
        weights = torch.from_numpy(rest[count]) if len(rest) > count else None
        return torch.from_numpy(logits), tuple(torch.from_numpy(array) for array in rest[:count]), weights

    def generate(self, source: Tensor, source_lengths: Tensor, *, beam_size: int = 1, max_length: int | None = None,
                 length_penalty: float = 0.0) -> Decoded:
        """As :meth:`rnnkit.models.Seq2Seq.generate`: up to twice the longest source plus 10 tokens."""
        if max_length is None:
            max_length = 2 * int(source_lengths.max()) + 10
        return self._search(source, source_lengths, beam_size=beam_size, max_length=max_length,
                            length_penalty=length_penalty)


class CaptionerGraphs(DecoderGraphs):
    """A captioner file: the ``encoder`` graph (images → features, h0[, c0]) and the ``decoder_step`` graph
    (tokens, features, h0[, c0] → logits, h_n[, c_n])."""

    def start(self, images: Tensor):
        features, *state = self.encoder.run(None, {"images": images.numpy().astype(np.float32)})
        return tuple(torch.from_numpy(array) for array in state), (torch.from_numpy(features),)

    def step(self, tokens: Tensor, state: tuple, memory: tuple):
        (features,) = memory
        feed = {"tokens": tokens.numpy().astype(np.int64), "features": features.numpy(),
                **dict(zip(self.state_names, _arrays(state)))}
        logits, *state = self.step_session.run(None, feed)  # (N, V), h_n[, c_n]
        return torch.from_numpy(logits), tuple(torch.from_numpy(array) for array in state), None

    def generate(self, images: Tensor, *, beam_size: int = 1, max_length: int = 20,
                 length_penalty: float = 0.0) -> Decoded:
        """As :meth:`rnnkit.models.Captioner.generate`."""
        return self._search(images, beam_size=beam_size, max_length=max_length, length_penalty=length_penalty)
