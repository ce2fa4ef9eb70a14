r"""Asynchronous many-to-many: an encoder reads the whole input sentence, a decoder writes the output sentence.

The encoder is any rnnkit recurrent layer (RNN / LSTM / GRU, stacked, bidirectional), run over the packed
source so that padding is never read. The decoder is a recurrent layer that writes one token at a time,
feeding each output back as its next input. Three ways to connect them (``attention=``):

``"none"``: the seeds' single context vector. The encoder's final state is all the decoder learns of the
source; it becomes the decoder's initial state (Sutskever et al. 2014; Cho et al. 2014)::

    h_j      = Encoder(E_src[x_j], h_{j-1})                         j = 1..S (both ways if bidirectional)
    s_0      = tanh(W_b [h_S^fwd ; h_1^bwd] + b_b)                  the bridge, per layer (s_0 = h_S when the
                                                                     encoder is one-way and as wide as the decoder)
    s_i      = Decoder(E_tgt[y_{i-1}], s_{i-1})
    t_i      = tanh(W_t [s_i ; E_tgt[y_{i-1}]])
    p(y_i | y_<i, x) = softmax(W_o t_i + b_o)

``"additive"`` (Bahdanau et al. 2015): before each step, the previous state attends over all encoder
states, and the context c_i joins the decoder's input::

    e_ij = v^T tanh(W s_{i-1} + U h_j),   alpha_ij = softmax_j(e_ij) over real source tokens,   c_i = sum_j alpha_ij h_j
    s_i  = Decoder([E_tgt[y_{i-1}] ; c_i], s_{i-1})
    t_i  = tanh(W_t [s_i ; c_i ; E_tgt[y_{i-1}]])

``"dot"`` / ``"general"`` (Luong et al. 2015, global attention): the new state attends, the context joins
the output::

    s_i  = Decoder(E_tgt[y_{i-1}], s_{i-1})
    e_ij = s_i^T h_j  (dot)   or   s_i^T W_a h_j  (general);     c_i = sum_j alpha_ij h_j
    t_i  = tanh(W_t [s_i ; c_i ; E_tgt[y_{i-1}]])

The Luong decoder and the context-vector decoder do not read c_i in their recurrence, so under full teacher
forcing their decoder layer runs over the whole target at once (PyTorch's fused kernels) and attention is one
batched matrix product; the additive decoder, and any decoder fed its own predictions, steps one token at a
time. Both paths compute the same numbers.

Teacher forcing (``teacher_forcing`` in :meth:`Seq2Seq.forward`): with ratio 1 the decoder reads the
reference token y_{i-1} at every step; with ratio 0 it reads its own previous prediction argmax p(y_{i-1})
(never <pad> or <bos>, as in greedy search); in between, each token of each row is the reference with
that probability.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import InputError
from .attention import ATTENTIONS, Attention
from .decoding import Decoded, beam_search, best_writable, greedy_search
from .recurrent import has_cell_state, recurrent_layer, recurrent_options
from .recurrent_encoder import RecurrentEncoder, check_dropout, check_lengths, check_whole_number, step_mask

CONNECTIONS = ("none", *ATTENTIONS)


class SourceMemory(NamedTuple):
    """What the decoder reads of the source at every step (batch first; None without attention).

    outputs (N, S, K) the encoder's states h_j; mask (N, S) True on real tokens; keys: the attention's
    precomputed U h_j / W_a h_j.
    """

    outputs: Tensor | None
    mask: Tensor | None
    keys: Tensor | None


class Seq2SeqEncoder(RecurrentEncoder):
    """A :class:`RecurrentEncoder` that also returns the whole final state (LSTM's cell state included),
    which the bridge hands to the decoder.

    Outputs: outputs (N, S, D * H), 0 on padding; state (num_layers * D, N, H) or LSTM's (h_n, c_n).
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None):
        N, S = x.shape[0], x.shape[1]
        check_lengths(lengths, N, S)
        if lengths is None:
            return self.rnn(x)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=S)  # (N, S, D*H)
        return outputs, state


class Bridge(nn.Module):
    r"""The encoder's final state → the decoder's initial state, layer by layer.

    Each layer's directions are joined, [h^fwd ; h^bwd] (D H), and mapped by s_0 = tanh(W_b [...] + b_b) to the
    decoder's width. A one-way encoder as wide as the decoder needs no weights: s_0 = h_S, the seeds' plain
    hand-over of the context vector. A cell state (LSTM family) gets a bridge of its own (without tanh: a cell
    state is not bounded).
    """

    def __init__(self, directions: int, hidden_size: int, decoder_size: int, cell_state: bool):
        super().__init__()
        self.directions = directions
        self.identity = directions == 1 and hidden_size == decoder_size
        if not self.identity:
            self.hidden = nn.Linear(directions * hidden_size, decoder_size)
            self.cell = nn.Linear(directions * hidden_size, decoder_size) if cell_state else None

    def _join(self, h: Tensor) -> Tensor:
        """(layers * D, N, H) → (layers, N, D * H): each layer's directions side by side."""
        LD, N, H = h.shape
        return h.view(LD // self.directions, self.directions, N, H).permute(0, 2, 1, 3).reshape(
            LD // self.directions, N, self.directions * H)

    def forward(self, state):
        if self.identity:
            return state
        if isinstance(state, tuple):
            h, c = state
            return torch.tanh(self.hidden(self._join(h))), self.cell(self._join(c))
        return torch.tanh(self.hidden(self._join(state)))  # (layers, N, H_dec)


class Seq2Seq(nn.Module):
    r"""Encoder-decoder for sequence-to-sequence tasks (translation, question answering, summaries).

    The equations of every connection are in the module docstring (:mod:`rnnkit.models.seq2seq`); in short,
    with attention:

    .. math::

        e_{ij} = v^\top \tanh(W s_{i-1} + U h_j), \quad
        \alpha_{ij} = \mathrm{softmax}_j(e_{ij}), \quad c_i = \textstyle\sum_j \alpha_{ij} h_j, \quad
        p(y_i \mid y_{<i}, x) = \mathrm{softmax}(W_o \tanh(W_t [s_i; c_i; E y_{i-1}]))

    Args:
        source_vocab_size, target_vocab_size: the number of token ids on each side.
        embedding_dim: E, the width of both embeddings and of the output layer's input t_i. Default 256.
        cell: any registered cell (:func:`rnnkit.nn.cell_names`), for encoder and decoder. Default ``"gru"``.
        hidden_size: H, the encoder's width per direction. Default 256.
        num_layers: stacked layers of the encoder and of the decoder. Default 1.
        bidirectional: a bidirectional encoder (the decoder always runs forward). Default True.
        decoder_hidden_size: the decoder's width. Default: the encoder output's, D × H.
        attention: ``"none"`` (the context vector only), ``"additive"`` (default), ``"dot"`` or ``"general"``.
        attention_size: the additive score's hidden width. Default: the decoder's width.
        dropout: on the embeddings, between stacked layers and on t_i. Default 0.
        tie_embeddings: share the target embedding with the output layer W_o (Press and Wolf 2017).
        engine: ``"auto"`` (default), ``"fused"`` (PyTorch kernels) or ``"explicit"`` (rnnkit's hand-written BPTT).
        recurrent: the regularisers of :data:`rnnkit.models.recurrent.RECURRENT_OPTIONS` (``recurrent_dropout``,
            ``zoneout``, ``weight_drop``, ``forget_bias``) for encoder and decoder.
        pad_index, bos_index, eos_index: the special token ids (the same on both sides). Defaults 0, 2, 3.

    Inputs of ``forward``: source, source_lengths, target_inputs, teacher_forcing
        source: (N, S) source ids, padded with ``pad_index`` after each sentence's end.
        source_lengths: (N,) real lengths in [1, S], or None when no row is padded.
        target_inputs: (N, T) ``<bos> y_1 .. y_{T-1}``: the decoder's inputs under teacher forcing.
        teacher_forcing: the probability of reading the reference token rather than the model's own
            previous prediction. Default 1.

    Output: logits (N, T, target_vocab_size), the scores of y_1 .. y_T. Positions past a row's target length
    do not affect the earlier ones (the decoder only looks back), so their loss can simply be masked.

    Example (reverse sequences of digits; train with cross-entropy on the logits)::

        >>> model = Seq2Seq(13, 13, embedding_dim=16, hidden_size=32, attention="additive")
        >>> source = torch.tensor([[5, 6, 7], [8, 9, 0]])              # 0 pads the second row
        >>> logits = model(source, torch.tensor([3, 2]), torch.tensor([[2, 7, 6, 5], [2, 9, 8, 0]]))
        >>> logits.shape
        torch.Size([2, 4, 13])
        >>> result = model.generate(source, torch.tensor([3, 2]), beam_size=3, max_length=5)
        >>> len(result.tokens), all(len(tokens) <= 5 for tokens in result.tokens)
        (2, True)
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, *, embedding_dim: int = 256,
                 cell: str = "gru", hidden_size: int = 256, num_layers: int = 1, bidirectional: bool = True,
                 decoder_hidden_size: int | None = None, attention: str = "additive",
                 attention_size: int | None = None, dropout: float = 0.0, tie_embeddings: bool = False,
                 engine: str = "auto", pad_index: int = 0, bos_index: int = 2, eos_index: int = 3, **recurrent):
        super().__init__()
        for name, value in (("source_vocab_size", source_vocab_size), ("target_vocab_size", target_vocab_size),
                            ("embedding_dim", embedding_dim), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            check_whole_number(name, value)
        if attention not in CONNECTIONS:
            raise InputError(f"unknown attention {attention!r}; choose one of {', '.join(CONNECTIONS)}")
        check_dropout(dropout)
        for name, index in (("pad_index", pad_index), ("bos_index", bos_index), ("eos_index", eos_index)):
            if not 0 <= index < min(source_vocab_size, target_vocab_size):
                raise InputError(f"{name} {index} is not a token id of both vocabularies")
        directions = 2 if bidirectional else 1
        decoder_hidden_size = decoder_hidden_size or directions * hidden_size
        check_whole_number("decoder_hidden_size", decoder_hidden_size)
        self.options = dict(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                            embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                            bidirectional=bidirectional, decoder_hidden_size=decoder_hidden_size,
                            attention=attention, attention_size=attention_size, dropout=dropout,
                            tie_embeddings=tie_embeddings, engine=engine, pad_index=pad_index,
                            bos_index=bos_index, eos_index=eos_index, **recurrent_options(recurrent))
        self.pad_index, self.bos_index, self.eos_index = pad_index, bos_index, eos_index
        self.attention_kind = attention
        self.target_vocab_size = target_vocab_size

        self.source_embedding = nn.Embedding(source_vocab_size, embedding_dim, padding_idx=pad_index)
        self.target_embedding = nn.Embedding(target_vocab_size, embedding_dim, padding_idx=pad_index)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Seq2SeqEncoder(embedding_dim, hidden_size, cell, num_layers, bidirectional, dropout, engine,
                                      **recurrent)
        memory_size = self.encoder.output_size
        self.bridge = Bridge(directions, hidden_size, decoder_hidden_size, cell_state=has_cell_state(cell))
        self.attention = (Attention(attention, decoder_hidden_size, memory_size, attention_size)
                          if attention != "none" else None)
        decoder_input = embedding_dim + (memory_size if attention == "additive" else 0)
        self.decoder = recurrent_layer(cell, decoder_input, decoder_hidden_size, num_layers, dropout=dropout,
                                       engine=engine, **recurrent)
        readout_input = decoder_hidden_size + embedding_dim + (memory_size if self.attention is not None else 0)
        self.readout = nn.Linear(readout_input, embedding_dim)  # W_t
        self.output = nn.Linear(embedding_dim, target_vocab_size)  # W_o
        if tie_embeddings:
            self.output.weight = self.target_embedding.weight

    @property
    def config(self) -> dict:
        """The constructor's arguments: ``Seq2Seq(**model.config)`` builds the same architecture."""
        return dict(self.options)

    # ------------------------------------------------------------------------------------- encoder

    def encode(self, source: Tensor, source_lengths: Tensor | None = None) -> tuple[object, SourceMemory]:
        """Read the source: (the decoder's initial state, the :class:`SourceMemory`)."""
        if source.dim() != 2 or source.is_floating_point():
            raise InputError(f"source must be an (N, S) tensor of token ids, got {source.dtype} of shape "
                             f"{tuple(source.shape)}")
        x = self.dropout(self.source_embedding(source))  # (N, S, E)
        outputs, final = self.encoder(x, source_lengths)  # (N, S, D*H), (layers*D, N, H)
        state = self.bridge(final)  # (layers, N, H_dec)
        if self.attention is None:
            return state, SourceMemory(None, None, None)
        mask = step_mask(source_lengths, source.size(0), source.size(1), source.device)  # (N, S)
        return state, SourceMemory(outputs, mask, self.attention.keys(outputs))

    # the decoding interface of rnnkit.models.decoding
    def start(self, source: Tensor, source_lengths: Tensor | None = None):
        return self.encode(source, source_lengths)

    # ------------------------------------------------------------------------------------- decoder

    def step(self, tokens: Tensor, state, memory: SourceMemory):
        """One decoder step: tokens (N,) → logits (N, V), the new state, attention weights (N, S) or None."""
        features, state, weights = self._step_features(tokens, state, memory)
        return self._logits(features), state, weights

    def _step_features(self, tokens: Tensor, state, memory: SourceMemory):
        """One step up to the readout's input [s_i ; (c_i ;) E y_{i-1}] (N, ·)."""
        embedded = self.dropout(self.target_embedding(tokens)).unsqueeze(1)  # (N, 1, E)
        weights = None
        if self.attention_kind == "additive":
            context, weights = self._attend(_top_hidden(state), memory)  # (N, K), (N, S)
            output, state = self.decoder(torch.cat([embedded, context.unsqueeze(1)], dim=2), state)  # (N, 1, H_dec)
            features = [output.squeeze(1), context]
        else:
            output, state = self.decoder(embedded, state)  # (N, 1, H_dec)
            features = [output.squeeze(1)]
            if self.attention is not None:
                context, weights = self._attend(output.squeeze(1), memory)  # (N, K), (N, S)
                features.append(context)
        return torch.cat([*features, embedded.squeeze(1)], dim=1), state, weights

    def _attend(self, query: Tensor, memory: SourceMemory) -> tuple[Tensor, Tensor]:
        return self.attention(query, memory.outputs, memory.mask, memory.keys)

    def _logits(self, features: Tensor) -> Tensor:
        """[s_i ; (c_i ;) E y_{i-1}] (..., ·) → logits (..., V)."""
        return self.output(self.dropout(torch.tanh(self.readout(features))))

    def forward(self, source: Tensor, source_lengths: Tensor | None, target_inputs: Tensor,
                teacher_forcing: float = 1.0) -> Tensor:
        if not 0 <= teacher_forcing <= 1:
            raise InputError(f"the teacher forcing ratio must be in [0, 1], got {teacher_forcing}")
        if target_inputs.dim() != 2 or target_inputs.size(0) != source.size(0):
            raise InputError(f"target_inputs must be (N, T) token ids for the {source.size(0)} source rows, "
                             f"got shape {tuple(target_inputs.shape)}")
        state, memory = self.encode(source, source_lengths)
        if teacher_forcing == 1 and self.attention_kind != "additive":
            return self._decode_all(target_inputs, state, memory)
        return self._decode_stepwise(target_inputs, state, memory, teacher_forcing)

    def _decode_all(self, target_inputs: Tensor, state, memory: SourceMemory) -> Tensor:
        """Teacher forcing for the decoders whose recurrence does not read c_i: every step at once."""
        embedded = self.dropout(self.target_embedding(target_inputs))  # (N, T, E)
        outputs, _ = self.decoder(embedded, state)  # (N, T, H_dec)
        features = [outputs]
        if self.attention is not None:
            context, _ = self.attention(outputs, memory.outputs, memory.mask, memory.keys)  # (N, T, K)
            features.append(context)
        return self._logits(torch.cat([*features, embedded], dim=2))  # (N, T, V)

    def _decode_stepwise(self, target_inputs: Tensor, state, memory: SourceMemory, teacher_forcing: float) -> Tensor:
        """One step at a time, reading the reference token with probability ``teacher_forcing``."""
        T = target_inputs.size(1)
        if teacher_forcing == 1:
            # the inputs are known in advance: the output layer, the costliest part, runs once over all steps
            features = []
            for i in range(T):
                step_features, state, _ = self._step_features(target_inputs[:, i], state, memory)  # (N, ·)
                features.append(step_features)
            return self._logits(torch.stack(features, dim=1))  # (N, T, V)
        tokens = target_inputs[:, 0]  # (N,) <bos>
        logits = []
        for i in range(T):
            step_logits, state, _ = self.step(tokens, state, memory)  # (N, V)
            logits.append(step_logits)
            if i + 1 < T:
                reference = target_inputs[:, i + 1]  # (N,)
                predicted = best_writable(step_logits, self)  # (N,)
                use_reference = torch.rand(reference.shape, device=reference.device) < teacher_forcing
                tokens = torch.where(use_reference, reference, predicted)
        return torch.stack(logits, dim=1)  # (N, T, V)

    # ------------------------------------------------------------------------------------- generation

    @torch.no_grad()
    def generate(self, source: Tensor, source_lengths: Tensor | None = None, *, beam_size: int = 1,
                 max_length: int | None = None, length_penalty: float = 0.0) -> Decoded:
        """Translate a batch: greedy search (``beam_size=1``) or beam search; see :mod:`rnnkit.models.decoding`.

        ``max_length`` defaults to twice the longest source plus 10 tokens. The model is put in eval mode.
        """
        self.eval()
        if max_length is None:
            longest = int(source_lengths.max()) if source_lengths is not None else source.size(1)
            max_length = 2 * longest + 10
        if beam_size == 1:
            return greedy_search(self, source, source_lengths, max_length=max_length)
        return beam_search(self, source, source_lengths, beam_size=beam_size, max_length=max_length,
                           length_penalty_alpha=length_penalty)

    def extra_repr(self) -> str:
        return f"attention={self.attention_kind!r}"


def _top_hidden(state) -> Tensor:
    """The top layer's hidden state (N, H) of a recurrent state (layers, N, H) or LSTM's (h, c)."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]
