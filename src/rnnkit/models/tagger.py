r"""Synchronous many-to-many: one label per input step (part-of-speech tags, named-entity BIO tags).

    x_t = [E_word[w_t] ; charfeat(w_t)]          word embedding, plus optional character-level features
    h_t = recurrent layers over x_1 .. x_T       (bidirectional by default: h_t sees the whole sentence)
    e_t = W dropout(h_t) + b                     emissions: one score per tag at every step
    y_t = argmax_c e_t[c]                        per-step softmax, the tags independent given h
        or Viterbi over e_1..e_T                 linear-chain CRF: the tags scored together as a path

The seeds' picture: reading "I love you", the model says "pronoun" at "I" and "verb" at "love"; an
output never feeds the next step, so the structure is non-autoregressive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..nn import embedding_dropout
from .crf import LinearChainCRF
from .recurrent import engine_or_auto, recurrent_options, sequence_dropout
from .recurrent_encoder import RecurrentEncoder, check_dropout, check_lengths, check_whole_number, step_mask

CHAR_ENCODERS = ("lstm", "cnn")


class CharacterWordEncoder(nn.Module):
    r"""A vector per word from its characters, so that unseen and rare words still get features
    (suffixes, capitals, digits).

    .. math::

        c_j = E_{char}[\mathrm{char}_j], \quad
        v = [\overrightarrow{h}_W ; \overleftarrow{h}_1] \text{ of a BiLSTM over } c_1..c_W
        \quad \text{(lstm, Lample et al. 2016; size } 2 \cdot \text{hidden\_size)}

        v_k = \max_{j \le W} \, (\mathrm{conv1d}(c))_{j,k}
        \quad \text{(cnn, Ma and Hovy 2016; size hidden\_size filters)}

    Args:
        char_vocab_size: the number of character ids; id ``padding_idx`` pads words to the longest.
        char_embedding_dim: the width of a character's embedding. Default 25.
        hidden_size: the BiLSTM's width per direction, or the number of CNN filters. Default 25.
        kind: ``"lstm"`` (default) or ``"cnn"``.
        kernel_size: the CNN's window over characters (odd). Default 3.
        padding_idx: the padding character id. Default 0.
        engine: the BiLSTM's engine (any of :func:`~rnnkit.models.recurrent.engine_choices`); ``"auto"`` where
            it cannot run an LSTM (scan, chosen for a linear cell of the word layers).

    Input: chars (N, L, W) character ids of each word, padded at the end of each word with
    ``padding_idx``; a word with no characters (a padded word position) gets a zero vector.

    Output: (N, L, output_size).
    """

    def __init__(self, char_vocab_size: int, char_embedding_dim: int = 25, hidden_size: int = 25,
                 kind: str = "lstm", kernel_size: int = 3, padding_idx: int = 0, engine: str = "auto"):
        super().__init__()
        check_whole_number("char_vocab_size", char_vocab_size)
        check_whole_number("char_embedding_dim", char_embedding_dim)
        check_whole_number("char_hidden_size", hidden_size)
        if kind not in CHAR_ENCODERS:
            raise InputError(f"unknown character encoder {kind!r}; choose one of {', '.join(CHAR_ENCODERS)}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be an odd whole number, got {kernel_size!r}")
        self.kind = kind
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(char_vocab_size, char_embedding_dim, padding_idx=padding_idx)
        if kind == "lstm":
            # the model's engine where it runs an LSTM; auto where it does not (scan: linear cells only)
            self.bilstm = RecurrentEncoder(char_embedding_dim, hidden_size, "lstm", bidirectional=True,
                                           engine=engine_or_auto("lstm", engine, bidirectional=True))
            self.output_size = self.bilstm.output_size
        else:
            # "same" padding: every character position has a window, the ends see zeros as padding does
            self.conv = nn.Conv1d(char_embedding_dim, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_size = hidden_size

    def forward(self, chars: Tensor) -> Tensor:
        N, L, W = chars.shape
        flat = chars.reshape(N * L, W)  # (N*L, W)
        lengths = (flat != self.padding_idx).sum(1)  # (N*L,)
        words = lengths > 0  # padded word positions have no characters and stay 0
        if torch.compiler.is_exporting():
            # a graph has no shapes that depend on data: every position is encoded, those without characters zeroed
            encoded = self._encode(flat, lengths.clamp(min=1))  # (N*L, out)
            return encoded.masked_fill(~words.unsqueeze(1), 0.0).view(N, L, self.output_size)
        real_chars, real_lengths = flat[words], lengths[words]  # (M, W), (M,)
        features = chars.new_zeros(N * L, self.output_size, dtype=self.embedding.weight.dtype)  # (N*L, out)
        if real_chars.size(0) == 0:
            return features.view(N, L, self.output_size)
        features[words] = self._encode(real_chars, real_lengths)
        return features.view(N, L, self.output_size)

    def _encode(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """(M, W) character ids of M words with (M,) lengths ≥ 1 -> (M, out) their features."""
        W = chars.size(1)
        # the padding row of the embedding is 0, but the explicit mask keeps that true whatever the weights
        valid = step_mask(lengths, chars.size(0), W, chars.device)  # (M, W)
        embedded = self.embedding(chars) * valid.unsqueeze(2)  # (M, W, E_char)
        if self.kind == "lstm":
            _, encoded = self.bilstm(embedded, lengths)  # (M, 2*H_char)
            return encoded
        convolved = self.conv(embedded.transpose(1, 2)).transpose(1, 2)  # (M, W, H_char)
        return convolved.masked_fill(~valid.unsqueeze(2), float("-inf")).amax(1)  # (M, H_char)


class SequenceTagger(nn.Module):
    r"""Sequence labelling: one tag per word (POS, NER), with optional character features and CRF.

    .. math::

        x_t = [E[w_t] ; \mathrm{charfeat}(w_t)], \quad
        h_t = \mathrm{RNN}(x_1..x_T)_t, \quad
        e_t = W\,\mathrm{dropout}(h_t) + b

    Without a CRF the tags are independent given the emissions: p(y_t) = softmax(e_t), trained with
    cross-entropy summed over the real steps. With ``crf=True`` a :class:`~rnnkit.models.crf.LinearChainCRF`
    scores whole tag paths (so "I-PER" after "B-LOC" can be learnt to be unlikely), trained with the
    path's negative log-likelihood and decoded by Viterbi.

    Args:
        vocab_size: V, the number of word ids.
        num_tags: C, the number of tags.
        embedding_dim: word embedding width. Default 100.
        char_vocab_size: the number of character ids, to add character-level word features; None
            (default) uses words alone.
        char_encoder: ``"lstm"`` (a character BiLSTM, default) or ``"cnn"``.
        char_embedding_dim, char_hidden_size: the character encoder's widths. Default 25 and 25.
        cell: any registered cell (:func:`rnnkit.nn.cell_names`). Default ``"lstm"``.
        hidden_size: H per direction. Default 128.
        num_layers: stacked recurrent layers. Default 1.
        bidirectional: read the sentence both ways (default True); False tags each word from its left
            context alone, the seeds' "output at every step as it reads".
        dropout: on the word vectors, between stacked layers and before the emissions. Default 0.
        crf: add a linear-chain CRF output layer. Default False.
        engine: ``"auto"`` (default), ``"fused"`` or ``"explicit"``.
        embedding_dropout: drop whole words (rows of the word embedding) per forward call. Default 0.
        recurrent: the regularisers of :data:`rnnkit.models.recurrent.RECURRENT_OPTIONS` for the word layers.
        padding_idx: the padding id of words and of characters. Default 0.

    Inputs: words, lengths, chars
        words: (N, L) word ids.
        lengths: (N,) real lengths in [1, L], or None when no row is padded.
        chars: (N, L, W) character ids per word (needed when ``char_vocab_size`` is set).

    Output: emissions (N, L, C) per-step tag scores. Then :meth:`loss` for training and :meth:`decode`
    for the predicted tags.

    Example::

        >>> tagger = SequenceTagger(vocab_size=50, num_tags=4, char_vocab_size=30, crf=True)
        >>> words, lengths = torch.randint(1, 50, (2, 6)), torch.tensor([6, 4])   # (N=2, L=6)
        >>> chars = torch.randint(1, 30, (2, 6, 5))                                 # (N, L, W=5)
        >>> emissions = tagger(words, lengths, chars)                               # (2, 6, 4)
        >>> loss_sum, tokens = tagger.loss(emissions, torch.zeros(2, 6, dtype=torch.long), lengths)
        >>> tagger.decode(emissions, lengths).shape                                 # -1 past each length
        torch.Size([2, 6])
    """

    def __init__(self, vocab_size: int, num_tags: int, *, embedding_dim: int = 100, char_vocab_size: int | None = None,
                 char_encoder: str = "lstm", char_embedding_dim: int = 25, char_hidden_size: int = 25,
                 cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0, crf: bool = False, engine: str = "auto", padding_idx: int = 0,
                 embedding_dropout: float = 0.0, **recurrent):
        super().__init__()
        check_whole_number("vocab_size", vocab_size)
        check_whole_number("num_tags", num_tags)
        check_whole_number("embedding_dim", embedding_dim)
        check_dropout(dropout)
        check_dropout(embedding_dropout, "embedding_dropout")
        if not 0 <= padding_idx < vocab_size:
            raise InputError(f"padding_idx must be a word id in [0, {vocab_size}), got {padding_idx!r}")
        self._config = dict(vocab_size=vocab_size, num_tags=num_tags, embedding_dim=embedding_dim,
                            char_vocab_size=char_vocab_size, char_encoder=char_encoder,
                            char_embedding_dim=char_embedding_dim, char_hidden_size=char_hidden_size, cell=cell,
                            hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                            dropout=dropout, crf=crf, engine=engine, padding_idx=padding_idx,
                            embedding_dropout=embedding_dropout, **recurrent_options(recurrent))
        self.num_tags = num_tags
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.characters = None
        step_size = embedding_dim
        if char_vocab_size is not None:
            self.characters = CharacterWordEncoder(char_vocab_size, char_embedding_dim, char_hidden_size,
                                                   char_encoder, padding_idx=padding_idx, engine=engine)
            step_size += self.characters.output_size
        locked = bool(recurrent.get("locked_dropout"))
        self.input_dropout = sequence_dropout(dropout, locked)
        self.encoder = RecurrentEncoder(step_size, hidden_size, cell, num_layers, bidirectional, dropout, engine,
                                        **recurrent)
        self.output_dropout = sequence_dropout(dropout, locked)
        self.emissions = nn.Linear(self.encoder.output_size, num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None

    @property
    def config(self) -> dict:
        """The constructor's arguments: ``SequenceTagger(**tagger.config)`` builds the same architecture."""
        return dict(self._config)

    def forward(self, words: Tensor, lengths: Tensor | None = None, chars: Tensor | None = None) -> Tensor:
        if words.dim() != 2 or words.is_floating_point():
            raise InputError(f"words must be (N, L) integer ids, got {words.dtype} of shape {tuple(words.shape)}")
        x = embedding_dropout(self.embedding, words, self._config["embedding_dropout"], self.training)  # (N, L, E)
        if self.characters is not None:
            if chars is None or chars.dim() != 3 or tuple(chars.shape[:2]) != tuple(words.shape):
                shape = None if chars is None else tuple(chars.shape)
                raise InputError(f"this tagger reads characters: chars must be (N, L, W) = "
                                 f"({words.size(0)}, {words.size(1)}, W) ids, got {shape}")
            x = torch.cat([x, self.characters(chars)], dim=2)  # (N, L, E + char features)
        outputs, _ = self.encoder(self.input_dropout(x), lengths)  # (N, L, D*H)
        return self.emissions(self.output_dropout(outputs))  # (N, L, C)

    def loss(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, int]:
        """The training loss summed over the batch, and the number of real tokens it covers.

        Softmax: Σ_n Σ_{t < lengths[n]} -log softmax(e_t)[y_t]. CRF: Σ_n -log p(y_n | x_n). Tags on padded
        steps are ignored. The pair is what a :class:`~rnnkit.train.TaskLoss` wants (loss_sum, n_tokens).
        """
        N, L, _ = emissions.shape
        check_lengths(lengths, N, L)
        mask = step_mask(lengths, N, L, emissions.device)  # (N, L)
        if self.crf is not None:
            return self.crf(emissions, tags, mask).sum(), int(mask.sum())
        if tuple(tags.shape) != (N, L):
            raise InputError(f"tags must be (N, L) = {(N, L)} like the words, got {tuple(tags.shape)}")
        real_tags = tags[mask]  # (T_real,)
        return F.cross_entropy(emissions[mask], real_tags, reduction="sum"), real_tags.numel()

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The predicted tags, (N, L) long, -1 on padded steps: Viterbi with a CRF, else per-step argmax."""
        N, L, _ = emissions.shape
        check_lengths(lengths, N, L)
        mask = step_mask(lengths, N, L, emissions.device)  # (N, L)
        if self.crf is not None:
            return self.crf.decode(emissions, mask)
        return emissions.argmax(dim=2).masked_fill(~mask, -1)  # (N, L)
