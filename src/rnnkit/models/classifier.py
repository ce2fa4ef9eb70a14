r"""Many-to-one: read a whole sequence, then give one answer: a class (:class:`SequenceClassifier`) or
numbers (:class:`SequenceRegressor`).

    x_t     = E[w_t]  (token ids, vocab_size)   or   the step's features  (float input, input_size)
    h_t     = recurrent layers over x_1 .. x_T   (T = the sequence's own length; padding is never read)
    s       = h_T                                pooling="last" ([h_T^fwd ; h_1^bwd] if bidirectional)
            = (1/T) sum_t h_t                    pooling="mean"
            = max_t h_t  (element-wise)          pooling="max"
    y       = W dropout(s) + b

The seeds' examples: sentiment analysis (a review's words → positive / negative) and document
classification (a news article → sports, politics, ...). One-to-one is the same model on sequences of
length 1: nothing recurs, the cell maps its one input straight to the output (hours studied → score).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..nn import embedding_dropout
from .fit_predict import FitPredict
from .recurrent import recurrent_options, sequence_dropout
from .recurrent_encoder import RecurrentEncoder, check_dropout, check_whole_number, step_mask

POOLINGS = ("last", "mean", "max")


class ManyToOne(FitPredict, nn.Module):
    """The body shared by :class:`SequenceClassifier` and :class:`SequenceRegressor`: input → recurrent
    layers → pooling → linear head with ``num_outputs`` outputs. Its arguments are theirs (see below)."""

    def __init__(self, num_outputs: int, *, vocab_size: int | None = None, input_size: int | None = None,
                 embedding_dim: int = 64, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, pooling: str = "last",
                 engine: str = "auto", padding_idx: int = 0, embedding_dropout: float = 0.0, **recurrent):
        super().__init__()
        check_whole_number("num_outputs", num_outputs)
        if (vocab_size is None) == (input_size is None):
            raise InputError("give vocab_size for token-id input or input_size for float features (exactly one)")
        if pooling not in POOLINGS:
            raise InputError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        check_dropout(dropout)
        check_dropout(embedding_dropout, "embedding_dropout")
        self.num_outputs = num_outputs
        self.vocab_size = vocab_size
        self.input_size = input_size
        self.pooling = pooling
        self.options = dict(vocab_size=vocab_size, input_size=input_size, embedding_dim=embedding_dim, cell=cell,
                            hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                            dropout=dropout, pooling=pooling, engine=engine, padding_idx=padding_idx,
                            embedding_dropout=embedding_dropout, **recurrent_options(recurrent))
        self.embedding_dropout = embedding_dropout
        if vocab_size is not None:
            check_whole_number("vocab_size", vocab_size)
            check_whole_number("embedding_dim", embedding_dim)
            if not 0 <= padding_idx < vocab_size:
                raise InputError(f"padding_idx must be a token id in [0, {vocab_size}), got {padding_idx!r}")
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
            step_size = embedding_dim
        else:
            check_whole_number("input_size", input_size)
            if embedding_dropout:
                raise InputError("embedding_dropout drops words of a token-id input; this model reads float features")
            self.embedding = None
            step_size = input_size
        self.input_dropout = sequence_dropout(dropout, bool(recurrent.get("locked_dropout")))
        self.encoder = RecurrentEncoder(step_size, hidden_size, cell, num_layers, bidirectional, dropout, engine,
                                        **recurrent)
        self.output_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size, num_outputs)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """inputs (N, L) token ids or (N, L, F) features; lengths (N,) or None (all L) → (N, num_outputs)."""
        x = self._steps(inputs)  # (N, L, E) or (N, L, F)
        outputs, final = self.encoder(x, lengths)  # (N, L, D*H), (N, D*H)
        pooled = self._pool(outputs, final, lengths)  # (N, D*H)
        return self.head(self.output_dropout(pooled))  # (N, num_outputs)

    def _steps(self, inputs: Tensor) -> Tensor:
        """The step vectors: embedded token ids, or the float features as given."""
        if self.embedding is not None:
            if inputs.dim() != 2 or inputs.is_floating_point() or inputs.is_complex():
                raise InputError(
                    f"this model reads token ids: inputs must be an (N, L) integer tensor, got {inputs.dtype} of "
                    f"shape {tuple(inputs.shape)}"
                )
            # one-hot-like inputs would lose their whole symbol to dropout; embeddings only lose features
            return self.input_dropout(embedding_dropout(self.embedding, inputs, self.embedding_dropout,
                                                        self.training))  # (N, L, E)
        size = self.input_size
        if inputs.dim() != 3 or inputs.size(2) != size or not inputs.is_floating_point():
            raise InputError(
                f"this model reads float features: inputs must be (N, L, {size}) floats, got {inputs.dtype} of "
                f"shape {tuple(inputs.shape)}; one feature per step is X.reshape(N, L, 1)"
            )
        return inputs.to(self.head.weight.dtype)  # (N, L, F)

    def _pool(self, outputs: Tensor, final: Tensor, lengths: Tensor | None) -> Tensor:
        if self.pooling == "last":
            return final  # (N, D*H)
        N, L = outputs.shape[0], outputs.shape[1]
        valid = step_mask(lengths, N, L, outputs.device).unsqueeze(2)  # (N, L, 1)
        if self.pooling == "mean":
            # padded steps are already 0 in outputs, so the sum runs over the real steps only
            return outputs.sum(1) / valid.sum(1).to(outputs.dtype)  # (N, D*H)
        return outputs.masked_fill(~valid, float("-inf")).amax(1)  # (N, D*H)

    def extra_repr(self) -> str:
        reads = "token ids" if self.embedding is not None else "float features"
        return f"reads {reads}, pooling={self.pooling!r}, num_outputs={self.num_outputs}"


class SequenceClassifier(ManyToOne):
    r"""Many-to-one classification: a sequence in, one class out (sentiment, document category).

    .. math::

        s = \mathrm{pool}(h_1, \dots, h_T), \quad
        \mathrm{logits} = W\,\mathrm{dropout}(s) + b, \quad
        p(c \mid x) = \mathrm{softmax}(\mathrm{logits})_c
        \;\; (\text{or } \sigma(\mathrm{logits}) \text{ when num\_classes} = 1)

    Args:
        num_classes: C. With C = 1 the model is a binary classifier with one sigmoid output (Keras's
            ``Dense(1, activation="sigmoid")``); with C ≥ 2 a softmax over C classes.
        vocab_size: V, for token-id input: ids in [0, V) go through a learned embedding. Give this or
            ``input_size``.
        input_size: F, for float feature input (N, L, F), e.g. a time series with F values per step.
        embedding_dim: the embedding's width (token input only). Default 64.
        cell: any registered cell (:func:`rnnkit.nn.cell_names`). Default ``"lstm"``.
        hidden_size: H, each direction's hidden width. Default 128.
        num_layers: stacked recurrent layers. Default 1.
        bidirectional: read both ways; "last" pooling then joins both directions' ends. Default False.
        dropout: on the embedding, between stacked layers and before the head. Default 0.
        pooling: ``"last"`` (the final hidden state, default), ``"mean"`` or ``"max"`` over the real steps.
        engine: ``"auto"`` (default), ``"fused"`` (PyTorch kernels) or ``"explicit"`` (rnnkit's hand-written BPTT).
        embedding_dropout: drop whole words (rows of the embedding) per forward call. Default 0.
        recurrent: the regularisers of :data:`rnnkit.models.recurrent.RECURRENT_OPTIONS` (``recurrent_dropout``,
            ``zoneout``, ``weight_drop``, ``forget_bias``).
        padding_idx: the token id used for padding; its embedding stays 0. Default 0.

    Inputs: inputs, lengths
        inputs: (N, L) integer token ids, or (N, L, F) float features.
        lengths: (N,) the real length of each row in [1, L]; None when no row is padded. Steps past a
            row's length are never read, so padding cannot change the result.

    Output: logits (N, C). :meth:`predict` turns them into probabilities, :meth:`fit` trains on arrays.

    Example (the seeds' sentiment analysis: 4 reviews of up to 6 word ids, 2 classes)::

        >>> model = SequenceClassifier(2, vocab_size=100, bidirectional=True, pooling="max")
        >>> tokens = torch.randint(1, 100, (4, 6))                    # (N=4, L=6), 0 would be padding
        >>> model(tokens, lengths=torch.tensor([6, 3, 5, 1])).shape
        torch.Size([4, 2])
    """

    def __init__(self, num_classes: int, **options):
        check_whole_number("num_classes", num_classes)
        super().__init__(num_classes, **options)

    @property
    def config(self) -> dict:
        """The constructor's arguments: ``SequenceClassifier(**model.config)`` builds the same architecture."""
        return {"num_classes": self.num_outputs, **self.options}

    def default_loss(self) -> str:
        return "binary_crossentropy" if self.num_outputs == 1 else "cross_entropy"

    def output_activation(self, logits: Tensor) -> Tensor:
        """Probabilities: sigmoid for one output (p of class 1), softmax over C ≥ 2 classes."""
        return torch.sigmoid(logits) if self.num_outputs == 1 else torch.softmax(logits, dim=-1)


class SequenceRegressor(ManyToOne):
    r"""Many-to-one (and one-to-one) regression: a sequence in, ``num_outputs`` real numbers out.

    .. math::

        s = \mathrm{pool}(h_1, \dots, h_T), \quad \hat y = W\,\mathrm{dropout}(s) + b

    Args:
        num_outputs: K, the numbers predicted per sequence. Default 1.
        options: every other argument as :class:`SequenceClassifier` (``vocab_size`` or ``input_size``,
            ``embedding_dim``, ``cell``, ``hidden_size``, ``num_layers``, ``bidirectional``, ``dropout``,
            ``pooling``, ``engine``, ``padding_idx``).

    Inputs: inputs (N, L) token ids or (N, L, F) features, lengths (N,) or None. Output: (N, K).

    Example: one-to-one is a sequence of length 1. The seeds' "10 hours studied → 95 points": each
    student is one step with one feature, and the cell maps it straight to a score with no past to
    remember::

        >>> import numpy as np
        >>> _ = torch.manual_seed(0)
        >>> hours = np.array([1.0, 3.0, 5.0, 8.0, 10.0]).reshape(5, 1, 1)   # (N=5, L=1, F=1)
        >>> scores = np.array([40.0, 55.0, 70.0, 85.0, 95.0])                # (N=5,)
        >>> model = SequenceRegressor(input_size=1, hidden_size=8, cell="rnn")
        >>> history = model.fit(hours / 10, scores / 100, epochs=300, lr=0.05)
        >>> score = float(model.predict(np.array([[[1.0]]]))[0, 0]) * 100     # 10 hours (scaled to 1.0)
        >>> 90 < score < 100                                                   # about 95 points
        True
    """

    def __init__(self, num_outputs: int = 1, **options):
        super().__init__(num_outputs, **options)

    @property
    def config(self) -> dict:
        """The constructor's arguments: ``SequenceRegressor(**model.config)`` builds the same architecture."""
        return {"num_outputs": self.num_outputs, **self.options}

    def default_loss(self) -> str:
        return "mse"

    def output_activation(self, outputs: Tensor) -> Tensor:
        """A regressor's outputs are its predictions."""
        return outputs
