r"""The exported graphs of the models that write one step at a time: seq2seq, the captioner and the music model.

Each is split where the search loop (greedy, beam, sampling) runs outside the graph: a graph that reads the input
once, and a one-step graph that the caller runs again and again, carrying the state:

    seq2seq, encoder:       source (N, S), source_lengths (N,)  →  h0 (K, N, H)[, c0][, memory (N, S, M),
                                                                    memory_mask (N, S), keys (N, S, A)]
    seq2seq, decoder step:  tokens (N,), h0[, c0][, memory, memory_mask, keys]  →  logits (N, V), h_n[, c_n]
                                                                                    [, attention (N, S)]
    captioner, encoder:     images (N, H_img, W_img)  →  features (N, F), h0[, c0]
    captioner, decoder step: tokens (N,), features (N, F), h0[, c0]  →  logits (N, V), h_n[, c_n]
    music, step (Bernoulli): previous (N, P), start (N, 1), h0[, c0]  →  logits (N, P), probabilities (N, P),
                                                                           h_n[, c_n]
    music, step (NADE):      previous, start, h0[, c0]  →  visible_bias (N, P), hidden_bias (N, G), W (G, P),
                                                            V (P, G), h_n[, c_n]

The memory (the encoder's states, their mask and the attention's precomputed keys) is computed once per source
and passed unchanged to every decoder step. With beam search the caller reorders the rows of the state and
repeats the memory's rows per beam.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models import Captioner, Seq2Seq
from ..models.music import PianoRollModel
from ..models.seq2seq import SourceMemory
from .graph_contract import Graph, IOSpec
from .graphs import EXAMPLE_BATCH, EXAMPLE_STEPS, as_state, example_ids, example_lengths, flat_state, state_specs
from .graphs import zero_state

# ------------------------------------------------------------------------------------------- seq2seq


class Seq2SeqEncoderGraph(nn.Module):
    """source (N, S), source_lengths (N,) → the decoder's initial state and (with attention) the memory."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, source: Tensor, source_lengths: Tensor):
        state, memory = self.model.encode(source, source_lengths)
        if self.model.attention is None:
            return flat_state(state)
        return (*flat_state(state), memory.outputs, memory.mask, memory.keys)


class Seq2SeqStepGraph(nn.Module):
    """tokens (N,), state[, memory, memory_mask, keys] → logits (N, V), the next state[, attention weights]."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model
        self.state_size = 2 if model.decoder.cell.has_cell_state else 1

    def forward(self, tokens: Tensor, *rest: Tensor):
        state = as_state(self.model.decoder, rest[:self.state_size])
        memory = SourceMemory(*rest[self.state_size:]) if self.model.attention is not None else None
        logits, state, weights = self.model.step(tokens, state, memory)  # (N, V)
        return (logits, *flat_state(state)) + ((weights,) if weights is not None else ())


def seq2seq_graphs(model: Seq2Seq) -> list[Graph]:
    """The encoder graph (first) and the one-step decoder graph of a seq2seq model."""
    N, S = EXAMPLE_BATCH, EXAMPLE_STEPS
    decoder = model.decoder
    source, lengths = example_ids(model.options["source_vocab_size"], N, S, low=4), example_lengths()
    with torch.no_grad():
        state, memory = model.encode(source, lengths)
    state_out = state_specs(decoder, "0", "the decoder starts from (the encoder's final state through the bridge)")
    memory_specs = ()
    memory_example = ()
    if model.attention is not None:
        M, A = memory.outputs.size(2), memory.keys.size(2)
        memory_specs = (
            IOSpec("memory", ("N", "S", M), "float32", "the encoder's state at every source token, 0 on padding"),
            IOSpec("memory_mask", ("N", "S"), "bool", "True on the real source tokens"),
            IOSpec("keys", ("N", "S", A), "float32", "the attention's step-independent part of the scores"))
        memory_example = (memory.outputs, memory.mask, memory.keys)
    encoder = Graph(
        "encoder", Seq2SeqEncoderGraph(model), (source, lengths),
        (IOSpec("source", ("N", "S"), "int64", "source token ids, padded after each sentence's length"),
         IOSpec("source_lengths", ("N",), "int64", "the real tokens of each source sentence, in [1, S]")),
        (*state_out, *memory_specs),
        notes="Run once per source batch; feed h0 (c0) and the memory to the decoder step.")
    V = model.target_vocab_size
    step_outputs = [IOSpec("logits", ("N", V), "float32", "scores of the next target token"),
                    *state_specs(decoder, "_n", "after this step: the next step's h0/c0")]
    if model.attention is not None:
        step_outputs.append(IOSpec("attention", ("N", "S"), "float32", "this step's weights over the source"))
    step = Graph(
        "decoder_step", Seq2SeqStepGraph(model),
        (example_ids(V, N, low=4), *flat_state(state), *memory_example),
        (IOSpec("tokens", ("N",), "int64", f"the previous target token (<bos> = {model.bos_index} first)"),
         *state_specs(decoder, "0", "from the encoder, then from the previous step"), *memory_specs),
        tuple(step_outputs),
        notes=f"Greedy search: tokens = <bos>, then argmax(logits) until <eos> = {model.eos_index}; for beam "
              f"search keep the best rows and reorder h/c (and repeat the memory) per beam.")
    return [encoder, step]


# ------------------------------------------------------------------------------------------- captioner

class CaptionerEncoderGraph(nn.Module):
    """images (N, H, W) → features (N, F) and the decoder's initial state."""

    def __init__(self, model: Captioner):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor):
        state, (features,) = self.model.start(images)
        return (features, *flat_state(state))


class CaptionerStepGraph(nn.Module):
    """tokens (N,), features (N, F), state → logits (N, V), the next state."""

    def __init__(self, model: Captioner):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, features: Tensor, *state: Tensor):
        logits, state, _ = self.model.step(tokens, as_state(self.model.decoder, state), (features,))
        return (logits, *flat_state(state))


def captioner_graphs(model: Captioner) -> list[Graph]:
    """The image encoder graph (first) and the decoder step graph of a captioner."""
    N = EXAMPLE_BATCH
    H, W = model.image_size
    images = torch.rand(N, H, W, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        state, (features,) = model.start(images)
    F_size, V = features.size(1), model.output.out_features
    feature_spec = IOSpec("features", ("N", F_size), "float32", "the image's feature vector")
    encoder = Graph(
        "encoder", CaptionerEncoderGraph(model), (images,),
        (IOSpec("images", ("N", H, W), "float32", f"grayscale images of {H}×{W} pixels in [0, 1]"),),
        (feature_spec, *state_specs(model.decoder, "0", "the decoder starts from")),
        notes="Run once per image batch; feed features and h0 (c0) to the decoder step.")
    step = Graph(
        "decoder_step", CaptionerStepGraph(model), (example_ids(V, N, low=4), features, *flat_state(state)),
        (IOSpec("tokens", ("N",), "int64", f"the previous caption token (<bos> = {model.bos_index} first)"),
         feature_spec, *state_specs(model.decoder, "0", "from the encoder, then from the previous step")),
        (IOSpec("logits", ("N", V), "float32", "scores of the next caption token"),
         *state_specs(model.decoder, "_n", "after this step: the next step's h0/c0")),
        notes=f"Greedy search: tokens = <bos>, then argmax(logits) until <eos> = {model.eos_index}.")
    return [encoder, step]


# ------------------------------------------------------------------------------------------- music

class MusicStepGraph(nn.Module):
    """previous (N, P), start (N, 1), state → the output layer's inputs for the next frame, the next state."""

    def __init__(self, model: PianoRollModel):
        super().__init__()
        self.model = model

    def forward(self, previous: Tensor, start: Tensor, *state: Tensor):
        x = torch.cat([previous, start], dim=1).unsqueeze(1)  # (N, 1, P + 1): [v_{t-1} ; 1{t = 1}]
        h, final = self.model.hidden(x, as_state(self.model.rnn, state))  # (N, 1, H)
        h = h.squeeze(1)  # (N, H)
        frame = self.model.frame
        if self.model.config.output == "bernoulli":
            logits = frame.linear(h)  # (N, P)
            return (logits, torch.sigmoid(logits), *flat_state(final))
        return (frame.visible_bias(h), frame.hidden_bias(h), frame.W * 1.0, frame.V * 1.0, *flat_state(final))


def music_graphs(model: PianoRollModel) -> list[Graph]:
    """The one-frame step graph of a music model, Bernoulli or NADE output."""
    P, N = model.num_pitches, EXAMPLE_BATCH
    generator = torch.Generator().manual_seed(4)
    previous = (torch.rand(N, P, generator=generator) < 0.2).float()
    start = torch.tensor([[1.0], [0.0], [0.0]])
    inputs = (IOSpec("previous", ("N", P), "float32", "the previous frame (1 = the pitch sounds); zeros first"),
              IOSpec("start", ("N", 1), "float32", "1 at a piece's first step, else 0"),
              *state_specs(model.rnn, "0", "before this frame (zeros at the start of a piece)"))
    states_out = state_specs(model.rnn, "_n", "after this frame: the next step's h0/c0")
    if model.config.output == "bernoulli":
        outputs = (IOSpec("logits", ("N", P), "float32", "logit of each pitch sounding in the next frame"),
                   IOSpec("probabilities", ("N", P), "float32", "sigmoid(logits): pitches independent"),
                   *states_out)
        notes = "Sample each pitch from its probability; feed the frame back as previous (start 0)."
    else:
        G = model.config.nade_hidden
        outputs = (IOSpec("visible_bias", ("N", P), "float32", "b_v = U_v h_t + c_v"),
                   IOSpec("hidden_bias", ("N", G), "float32", "b_g = U_g h_t + c_g"),
                   IOSpec("W", (G, P), "float32", "the NADE's input weights"),
                   IOSpec("V", (P, G), "float32", "the NADE's output weights"),
                   *states_out)
        notes = ("NADE, pitches from the lowest: a = hidden_bias; for p in range(P): "
                 "z = visible_bias[:, p] + (sigmoid(a) * V[p]).sum(-1); v_p = (z > 0) or a draw of sigmoid(z); "
                 "a += v_p[:, None] * W[:, p]. P(frame) is the product of sigmoid(±z).")
    return [Graph("step", MusicStepGraph(model), (previous, start, *zero_state(model.rnn, N)), inputs, outputs,
                  notes=notes)]
