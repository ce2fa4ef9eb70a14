r"""The graphs of an exported file standing in for the models the task code calls, so that a file on ONNX Runtime
answers through the same rnnkit code (tokenizing, batching, transforms, sampling, answers) as the run on PyTorch.

Each stand-in offers exactly the calls its task's code makes on a model, with torch tensors in and out (the
arrays are converted at the graph's edge); none keeps per-call state, so the server's worker threads share one:

    LanguageModelGraph  model(tokens (N, L), state) -> (logits (N, L, V), state)    rnnkit.generate.sample
    ClassifierGraph     model(ids (N, L), lengths) -> logits (N, C); output_activation   classify.class_probabilities
    TaggerGraph         model(words, lengths, chars) -> emissions (N, L, T); decode    tag.predict_ids
    ForecasterGraph     model(window (N, L, F)) -> forecast (N, H_f)                  forecast_backtest.predict_windows
    MusicGraph          sample(steps, prime, temperature, generator) -> (L0 + steps, P)  music.generate_music

The decoders' stand-ins (seq2seq, captioner: ``start`` / ``step`` for rnnkit's greedy and beam search) are in
:mod:`rnnkit.serve.onnx_decoders`.

A tagger with a CRF decodes with the numpy Viterbi that ``rnnkit export`` writes beside its file
(:func:`rnnkit.export.viterbi.viterbi`), on each sentence's real words; without one, the argmax of each word's
emissions. The music model samples every frame as :meth:`rnnkit.models.music.PianoRollModel.sample` does, with
the same draws from the same generator (Bernoulli: one uniform per pitch at once; NADE: one per pitch from the
lowest, each given those below):

    NADE:  a = b_g;  for p in 0..P-1:  z_p = b_v[p] + Σ_g σ(a_g) V[p, g],  v_p ~ Bernoulli(σ(z_p / T)),
           a += v_p W[:, p]
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import InputError
from rnnkit.export.viterbi import viterbi
from rnnkit.models.music import _bernoulli, _check_temperature, _tempered_sigmoid


class GraphModel:
    """What every stand-in shares: a model in eval mode on the CPU whose parameters say where tensors go."""

    training = False

    def parameters(self) -> Iterator[Tensor]:
        """One empty CPU tensor: the task code asks the first parameter for the model's device."""
        yield torch.empty(0)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


def zero_states(session, batch: int, first: int) -> list[np.ndarray]:
    """Zero initial states for the graph inputs from index ``first`` on, (K, batch, H) each."""
    return [np.zeros((spec.shape[0], batch, spec.shape[2]), dtype=np.float32) for spec in session.get_inputs()[first:]]


class LanguageModelGraph(GraphModel):
    """A language model's ``sequence`` graph behind :func:`rnnkit.generate.sample`: ``model(tokens (N, L),
    state) -> (logits (N, L, V), state)``, the state a list of arrays (h[, c]) carried by the caller."""

    def __init__(self, session, vocab_size: int):
        self.session, self.vocab_size = session, vocab_size

    def __call__(self, tokens: Tensor, state=None):
        N, L = tokens.shape
        state = zero_states(self.session, N, 2) if state is None else state
        feed = {"ids": tokens.numpy().astype(np.int64), "lengths": np.full((N,), L, dtype=np.int64),
                **{spec.name: value for spec, value in zip(self.session.get_inputs()[2:], state)}}
        logits, *final = self.session.run(None, feed)  # (N, L, V), h_n[, c_n]
        return torch.from_numpy(logits), final


class ClassifierGraph(GraphModel):
    """The ``classifier`` graph: ids (N, L), lengths (N,) → logits (N, C)."""

    def __init__(self, session, num_outputs: int):
        self.session, self.num_outputs = session, num_outputs

    def __call__(self, ids: Tensor, lengths: Tensor) -> Tensor:
        logits, _ = self.session.run(None, {"ids": ids.numpy().astype(np.int64),
                                            "lengths": lengths.numpy().astype(np.int64)})
        return torch.from_numpy(logits)  # (N, C)

    def output_activation(self, logits: Tensor) -> Tensor:
        """As the classifier's: sigmoid of one output (p of class 1), softmax over C ≥ 2 classes."""
        return torch.sigmoid(logits) if self.num_outputs == 1 else torch.softmax(logits, dim=-1)


class TaggerGraph(GraphModel):
    """The ``tagger`` graph: words (N, L), lengths (N,)[, chars (N, L, W)] → emissions (N, L, T); ``decode``
    by the CRF's Viterbi (its transitions read from the graph once) or by argmax."""

    def __init__(self, session):
        self.session = session
        names = [spec.name for spec in session.get_inputs()]
        self.reads_chars = "chars" in names
        self.crf = None
        if len(session.get_outputs()) == 4:  # emissions, transitions, start_transitions, end_transitions
            feed = {"words": np.ones((1, 1), dtype=np.int64), "lengths": np.ones((1,), dtype=np.int64)}
            if self.reads_chars:
                feed["chars"] = np.ones((1, 1, 1), dtype=np.int64)
            self.crf = tuple(self.session.run(None, feed)[1:])  # (T, T), (T,), (T,): the same for every input

    def __call__(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        feed = {"words": words.numpy().astype(np.int64), "lengths": lengths.numpy().astype(np.int64)}
        if self.reads_chars:
            feed["chars"] = chars.numpy().astype(np.int64)
        return torch.from_numpy(self.session.run(None, feed)[0])  # (N, L, T)

    def decode(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """The tag ids, (N, L) long, -1 past each length."""
        scores = emissions.numpy()  # (N, L, T)
        tags = np.full(scores.shape[:2], -1, dtype=np.int64)  # (N, L)
        for row, length in enumerate(lengths.tolist()):
            if self.crf is not None:
                tags[row, :length] = viterbi(scores[row, :length], *self.crf)
            else:
                tags[row, :length] = scores[row, :length].argmax(axis=1)
        return torch.from_numpy(tags)


class ForecasterGraph(GraphModel):
    """The ``forecaster`` graph: window (N, L, F) → forecast (N, H_f), in the run's transformed units."""

    def __init__(self, session):
        self.session = session

    def __call__(self, window: Tensor) -> Tensor:
        (forecast,) = self.session.run(None, {"window": window.numpy().astype(np.float32)})
        return torch.from_numpy(forecast)  # (N, H_f)


class MusicGraph(GraphModel):
    """A music model's ``step`` graph: previous (N, P), start (N, 1), state → the next frame's output layer
    (Bernoulli logits, or the NADE's biases and weights), the next state; ``sample`` as the model's."""

    def __init__(self, session, num_pitches: int, output: str):
        self.session, self.num_pitches, self.output = session, num_pitches, output

    @torch.no_grad()
    def sample(self, steps: int, prime: Tensor | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """A piece: the ``prime`` frames (L0, P), then ``steps`` frames each drawn given all before it;
        (L0 + steps, P). The same seed draws the same piece as the model on PyTorch."""
        _check_temperature(temperature)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise InputError(f"steps must be a whole number >= 0, got {steps!r}")
        P = self.num_pitches
        prime = torch.zeros(0, P) if prime is None else prime.float()
        if prime.dim() != 2 or prime.size(1) != P:
            raise InputError(f"the prime must be (L, {P}) frames, got shape {tuple(prime.shape)}")
        state = zero_states(self.session, 1, 2)
        previous, start = np.zeros((1, P), dtype=np.float32), np.ones((1, 1), dtype=np.float32)
        names = [spec.name for spec in self.session.get_inputs()[2:]]
        frames = []
        for t in range(len(prime) + steps):
            outputs = self.session.run(None, {"previous": previous, "start": start, **dict(zip(names, state))})
            head, state = outputs[:-len(names)], outputs[-len(names):]
            frame = prime[t].view(1, P) if t < len(prime) else self._draw(head, temperature, generator)  # (1, P)
            frames.append(frame.view(-1))
            previous, start = frame.numpy().astype(np.float32), np.zeros((1, 1), dtype=np.float32)
        return torch.stack(frames) if frames else prime  # (L0 + steps, P)

    def _draw(self, head: list[np.ndarray], temperature: float, generator) -> Tensor:
        """One frame (1, P) from the step's output layer, drawn as the model's frame draws it."""
        if self.output == "bernoulli":
            logits = torch.from_numpy(head[0]).unsqueeze(1)  # (1, 1, P): the shape the model draws in
            return _bernoulli(_tempered_sigmoid(logits, temperature), generator).view(1, -1)
        b_v, a, W, V = (torch.from_numpy(array) for array in head)  # (1, P), (1, G), (G, P), (P, G)
        b_v, a = b_v.unsqueeze(0), a.unsqueeze(0)  # (1, 1, ·): the shapes the model draws in
        frame = torch.zeros_like(b_v)  # (1, 1, P)
        for p in range(self.num_pitches):
            z = b_v[..., p] + (torch.sigmoid(a) * V[p]).sum(-1)  # (1, 1)
            v_p = _bernoulli(_tempered_sigmoid(z, temperature), generator)  # (1, 1)
            frame[..., p] = v_p
            a = a + v_p.unsqueeze(-1) * W[:, p]  # (1, 1, G)
        return frame.view(1, -1)
