r"""The exported graphs of the models that read a sequence and answer: the language model (a whole sequence and
one step), the classifier, the forecaster and the tagger. The decoders (seq2seq, captioner, music) are in
:mod:`rnnkit.export.graphs_decoders`.

Every graph's ``forward`` is its file's contract (:class:`~rnnkit.export.graph_contract.Graph`); the recurrent
layers inside keep PyTorch's meaning of variable lengths (``pack_padded_sequence``: each row's final state is its
state at its own last step, outputs past a length are 0) and take their state explicitly where streaming needs it:

    language model, sequence:  ids (N, L), lengths (N,), h0 (K, N, H)[, c0]  →  logits (N, L, V), h_n[, c_n]
    language model, step:      ids (N,), h0[, c0]                           →  logits (N, V), h_n[, c_n]
    classifier:                ids (N, L), lengths (N,)                      →  logits (N, C), probabilities (N, C)
    forecaster:                window (N, L, F)                               →  forecast (N, H_f)
    tagger:                    words (N, L), lengths (N,)[, chars (N, L, W)]  →  emissions (N, L, T)
                               [, transitions (T, T), start_transitions (T,), end_transitions (T,) with a CRF]

K = num_layers × directions. A tagger's CRF path is decoded outside the graph by the 20-line numpy function of
:mod:`rnnkit.export.viterbi`, which ``rnnkit export`` writes beside the file.

Example::

    >>> from rnnkit.models import LanguageModel
    >>> graphs = language_model_graphs(LanguageModel(30, hidden_size=8, num_layers=1, embedding_dim=4))
    >>> [graph.role for graph in graphs], graphs[1].input_names
    (['sequence', 'step'], ['ids', 'h0', 'c0'])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..models import LanguageModel, SequenceClassifier, SequenceRegressor, SequenceTagger
from ..nn.layer import RecurrentBase
from .graph_contract import Graph, IOSpec

# Example sizes that trace every graph: distinct from each other and from every fixed size a tiny model has, so
# that the tracer cannot take a dynamic axis for a constant.
EXAMPLE_BATCH, EXAMPLE_STEPS, EXAMPLE_CHARS = 3, 7, 5


def state_specs(layer: RecurrentBase, suffix: str, meaning: str) -> tuple[IOSpec, ...]:
    """The IOSpecs of a layer's state, named ``h{suffix}`` (and ``c{suffix}`` for cells with a cell state):
    torch.nn's layout (num_layers × D, N, H_out)."""
    rows = layer.num_layers * (2 if layer.bidirectional else 1)
    width = layer.proj_size or layer.hidden_size
    specs = [IOSpec(f"h{suffix}", (rows, "N", width), "float32", f"hidden state {meaning}, one row per layer "
                                                                "and direction (torch.nn's layout)")]
    if layer.cell.has_cell_state:
        specs.append(IOSpec(f"c{suffix}", (rows, "N", layer.hidden_size), "float32", f"cell state {meaning}"))
    return tuple(specs)


def zero_state(layer: RecurrentBase, batch: int) -> tuple[Tensor, ...]:
    """Example state tensors for ``batch`` rows (small random values: a zero state would hide a swapped h and c)."""
    generator = torch.Generator().manual_seed(0)
    return tuple(0.1 * torch.randn(spec.shape[0], batch, spec.shape[2], generator=generator)
                 for spec in state_specs(layer, "0", ""))


def as_state(layer: RecurrentBase, tensors: tuple[Tensor, ...]):
    """The state the layer takes: h alone, or the pair (h, c)."""
    return tuple(tensors) if layer.cell.has_cell_state else tensors[0]


def flat_state(state) -> tuple[Tensor, ...]:
    """h_n, or (h_n, c_n), as a flat tuple of graph outputs."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def run_padded(layer: RecurrentBase, x: Tensor, lengths: Tensor, state) -> tuple[Tensor, object]:
    """A batch-first layer over padded steps x (N, L, F) with PackedSequence's meaning of ``lengths``:
    (outputs (N, L, D H), 0 past each length; the final state of each row at its own last step)."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, state = layer(packed, state)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=x.size(1))  # (N, L, D*H)
    return outputs, state


def example_lengths(batch: int = EXAMPLE_BATCH, steps: int = EXAMPLE_STEPS) -> Tensor:
    """(batch,) lengths from ``steps`` down, unsorted, with the longest present (the padded length is real)."""
    return torch.tensor([steps, max(1, steps - 4), max(1, steps - 2)][:batch], dtype=torch.long)


def example_ids(vocab_size: int, *shape: int, low: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(low, vocab_size, shape, generator=generator)


# ------------------------------------------------------------------------------------------- language model

class LanguageModelSequence(nn.Module):
    r"""ids (N, L), lengths (N,), state → logits (N, L, V) (0 past each length), the state after each row's last
    token: ``logits_t = W h_t + b`` with h_t the top layer's state after reading ids[:, :t+1]."""

    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor, lengths: Tensor, *state: Tensor):
        rnn = self.model.rnn
        outputs, final = run_padded(rnn, self.model_inputs(ids), lengths, as_state(rnn, state))  # (N, L, H)
        real = torch.arange(ids.size(1)).unsqueeze(0) < lengths.unsqueeze(1)  # (N, L)
        logits = self.model.decoder(outputs) * real.unsqueeze(2).to(outputs.dtype)  # (N, L, V)
        return (logits, *flat_state(final))

    def model_inputs(self, ids: Tensor) -> Tensor:
        """The recurrent layer's input: the embedding, or one-hot vectors of the vocabulary (N, L, E | V)."""
        if self.model.embedding is not None:
            return self.model.embedding(ids)  # (N, L, E)
        return F.one_hot(ids, self.model.vocab_size).to(self.model.input_dtype)  # (N, L, V)


class LanguageModelStep(LanguageModelSequence):
    """ids (N,), state → logits (N, V), the next state: one token of a stream, the state carried by the caller."""

    def forward(self, ids: Tensor, *state: Tensor):
        rnn = self.model.rnn
        output, final = rnn(self.model_inputs(ids.unsqueeze(1)), as_state(rnn, state))  # (N, 1, H)
        return (self.model.decoder(output.squeeze(1)), *flat_state(final))  # (N, V)


def language_model_graphs(model: LanguageModel) -> list[Graph]:
    """The whole-sequence graph (first: the file asked for) and the one-step graph of a language model."""
    rnn, V = model.rnn, model.vocab_size
    N, L = EXAMPLE_BATCH, EXAMPLE_STEPS
    states_in = state_specs(rnn, "0", "before the first token (zeros to start a text)")
    states_out = state_specs(rnn, "_n", "after each row's last real token: feed it back as h0/c0 to continue")
    sequence = Graph(
        "sequence", LanguageModelSequence(model), (example_ids(V, N, L), example_lengths(), *zero_state(rnn, N)),
        (IOSpec("ids", ("N", "L"), "int64", "token ids of the vocabulary, padded after each row's length"),
         IOSpec("lengths", ("N",), "int64", "the real tokens of each row, in [1, L]"), *states_in),
        (IOSpec("logits", ("N", "L", V), "float32",
                "scores of the token after each position (softmax: its probabilities); 0 past each length"),
         *states_out),
        notes="Perplexity: exp of the mean cross-entropy of logits[:, t] against ids[:, t + 1] over real steps.")
    step = Graph(
        "step", LanguageModelStep(model), (example_ids(V, N), *zero_state(rnn, N)),
        (IOSpec("ids", ("N",), "int64", "the current token of each stream"), *states_in),
        (IOSpec("logits", ("N", V), "float32", "scores of the next token"), *states_out),
        notes="Generation: start from zeros, feed the prime token by token, then sample from softmax(logits / "
              "temperature) and feed the sample back with h_n/c_n as the next h0/c0.")
    return [sequence, step]


# ------------------------------------------------------------------------------------------- many-to-one

class ClassifierGraph(nn.Module):
    """ids (N, L), lengths (N,) → logits (N, C), probabilities (N, C): the classifier's forward and its output
    activation (softmax, or the sigmoid of one output)."""

    def __init__(self, model: SequenceClassifier):
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor, lengths: Tensor):
        logits = self.model(ids, lengths)  # (N, C)
        return logits, self.model.output_activation(logits)


class RegressorGraph(nn.Module):
    """window (N, L, F) → forecast (N, K): every row reads all L steps."""

    def __init__(self, model: SequenceRegressor):
        super().__init__()
        self.model = model

    def forward(self, window: Tensor):
        return self.model(window)  # (N, K)


def classifier_graphs(model: SequenceClassifier) -> list[Graph]:
    """The classifier of token ids as one graph."""
    if model.vocab_size is None:
        raise ValueError("classifier_graphs exports a classifier of token ids; this one reads float features")
    C = model.num_outputs
    activation = "sigmoid of the one logit: p(class 1)" if C == 1 else "softmax over the classes"
    return [Graph(
        "classifier", ClassifierGraph(model), (example_ids(model.vocab_size, EXAMPLE_BATCH, EXAMPLE_STEPS, low=1),
                                               example_lengths()),
        (IOSpec("ids", ("N", "L"), "int64", "token ids, padded after each row's length (padding never read)"),
         IOSpec("lengths", ("N",), "int64", "the real tokens of each row, in [1, L]")),
        (IOSpec("logits", ("N", C), "float32", "the class scores"),
         IOSpec("probabilities", ("N", C), "float32", f"the class probabilities: {activation}")),
        notes="The predicted class is argmax(probabilities) (with one output: probabilities > 0.5).")]


def forecaster_graphs(model: SequenceRegressor, window: int, transform: str = "") -> list[Graph]:
    """The forecaster: a window of ``window`` steps of F features in, all K future values out at once.
    ``transform`` says in which units both are (the series' saved transform)."""
    F_in, K = model.input_size, model.num_outputs
    generator = torch.Generator().manual_seed(2)
    return [Graph(
        "forecaster", RegressorGraph(model), (torch.randn(EXAMPLE_BATCH, window, F_in, generator=generator),),
        (IOSpec("window", ("N", "L", F_in), "float32",
                f"the last L steps (the model was trained on L = {window}) of the F features, target first, "
                f"transformed as the run's transform says{': ' + transform if transform else ''}"),),
        (IOSpec("forecast", ("N", K), "float32", "the next K values of the target, in transformed units"),),
        notes="Undo the transform on forecast (the inverse of the steps in the metadata's transform, with the "
              "window's last target value for a differenced series) to get the target's own units.")]


# ------------------------------------------------------------------------------------------- tagger

class TaggerGraph(nn.Module):
    """words (N, L), lengths (N,)[, chars (N, L, W)] → emissions (N, L, T) (0 past each length), and with a CRF its
    transition scores, so that one file holds everything Viterbi needs."""

    def __init__(self, model: SequenceTagger):
        super().__init__()
        self.model = model

    def forward(self, words: Tensor, lengths: Tensor, *chars: Tensor):
        emissions = self.model(words, lengths, *chars)  # (N, L, T)
        real = torch.arange(words.size(1)).unsqueeze(0) < lengths.unsqueeze(1)  # (N, L)
        emissions = emissions * real.unsqueeze(2).to(emissions.dtype)
        crf = self.model.crf
        if crf is None:
            return emissions
        # returned through an identity so that each is a graph output of its own name, not the bare initializer
        return emissions, crf.transitions * 1.0, crf.start_transitions * 1.0, crf.end_transitions * 1.0


def tagger_graphs(model: SequenceTagger) -> list[Graph]:
    """The tagger's emissions graph (with the CRF's transitions as outputs when it has a CRF)."""
    T, V = model.num_tags, model.config["vocab_size"]
    N, L = EXAMPLE_BATCH, EXAMPLE_STEPS
    inputs = [IOSpec("words", ("N", "L"), "int64", "word ids, padded after each sentence's length"),
              IOSpec("lengths", ("N",), "int64", "the real words of each sentence, in [1, L]")]
    example = [example_ids(V, N, L, low=1), example_lengths()]
    if model.characters is not None:
        inputs.append(IOSpec("chars", ("N", "L", "W"), "int64",
                             "character ids of each word, padded with 0 after the word's last character"))
        example.append(example_ids(model.config["char_vocab_size"], N, L, EXAMPLE_CHARS, low=1))
    outputs = [IOSpec("emissions", ("N", "L", T), "float32", "the score of each tag at each word; 0 past lengths")]
    if model.crf is not None:
        outputs += [IOSpec("transitions", (T, T), "float32", "transitions[i, j]: the score of tag j right after i"),
                    IOSpec("start_transitions", (T,), "float32", "the score of each tag as the first"),
                    IOSpec("end_transitions", (T,), "float32", "the score of each tag as the last")]
        notes = ("Tags: viterbi(emissions[n, :lengths[n]], transitions, start_transitions, end_transitions) of "
                 "viterbi.py, written beside this file (the linear-chain CRF's best path).")
    else:
        notes = "Tags: argmax of emissions over the last axis, on each sentence's real words."
    return [Graph("tagger", TaggerGraph(model), tuple(example), tuple(inputs), tuple(outputs), notes=notes)]
