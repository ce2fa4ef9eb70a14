r"""A recurrent language model: predict the next token from the tokens so far.

    x_t        = E[w_t]   (embedding_dim > 0)   or   one_hot(w_t)   (embedding_dim = 0)
    h_t^(1..K) = recurrent layers of any registered cell (K = num_layers) over x_1..x_t, plain or in
                 pre-norm residual blocks (block = "residual", rnnkit.models.blocks)
    logits_t   = W dropout(h_t^(K)) + b     (or an adaptive softmax's log-probabilities: rnnkit.models.adaptive_softmax)
    (AWD-LSTM's rates, when given: dropouti on x_t, dropouth between layers, dropout on h_t^(K), each locked)
    p(w_{t+1} | w_1..w_t) = softmax(logits_t)

Trained with the cross-entropy of ``logits_t`` against ``w_{t+1}``, summed or averaged over time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_dropout
from ..errors import InputError
from ..nn import embedding_dropout
from .adaptive_softmax import AdaptiveSoftmax, check_cutoffs
from .recurrent import check_block, check_engine, recurrent_layer, registered_cell, sequence_dropout


@dataclass(frozen=True)
class LanguageModelConfig:
    """Everything needed to rebuild a :class:`LanguageModel`; stored as JSON in checkpoints."""

    vocab_size: int
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    embedding_dim: int = 0
    dropout: float = 0.0
    tie_weights: bool = False
    engine: str = "auto"
    init_range: float | None = None
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    weight_drop: float = 0.0
    forget_bias: float | None = None
    embedding_dropout: float = 0.0
    locked_dropout: bool = False
    block: str = "plain"
    # AWD-LSTM's separate rates (None: ``dropout`` at that place, as before they existed; old runs load so)
    input_dropout: float | None = None
    hidden_dropout: float | None = None
    output_dropout: float | None = None
    adaptive_softmax: tuple[int, ...] | None = None  # the cutoffs of an adaptive softmax; None: a full one

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LanguageModelConfig:
        """The config saved by :meth:`to_dict`; InputError for missing or unknown keys."""
        if not isinstance(d, dict):
            raise InputError("the saved model config is not a mapping; the checkpoint is corrupt")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(
                f"the saved model config has unknown keys {unknown}; it is not a language model checkpoint"
            )
        if "vocab_size" not in d:
            raise InputError("the saved model config has no vocab_size; it is not a language model checkpoint")
        if d.get("adaptive_softmax") is not None:
            d = {**d, "adaptive_softmax": tuple(d["adaptive_softmax"])}  # JSON keeps it as a list
        return cls(**d)


def _check(config: LanguageModelConfig) -> None:
    """InputError for a configuration no model can be built from."""

    def positive_int(name: str, minimum: int = 1) -> None:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(f"{name} must be an integer of at least {minimum}, got {value!r}")

    positive_int("vocab_size")
    positive_int("hidden_size")
    positive_int("num_layers")
    positive_int("embedding_dim", minimum=0)
    registered_cell(config.cell)
    check_engine(config.engine)
    check_block(config.block)
    for name in ("dropout", "embedding_dropout"):
        check_dropout(getattr(config, name), name)
    for name in ("input_dropout", "hidden_dropout", "output_dropout"):
        if getattr(config, name) is not None:
            check_dropout(getattr(config, name), name)
    if config.input_dropout and not config.embedding_dim:
        raise InputError("input_dropout (--input-dropout) drops features of a learned embedding and one-hot inputs "
                         "are never dropped: set embedding_dim (--embedding) above 0, or turn it off")
    if config.embedding_dropout and not config.embedding_dim:
        raise InputError("embedding_dropout drops rows of a learned embedding; set embedding_dim > 0 or turn it off")
    if not isinstance(config.locked_dropout, bool):
        raise InputError(f"locked_dropout must be true or false, got {config.locked_dropout!r}")
    if config.init_range is not None and (not isinstance(config.init_range, (int, float)) or config.init_range <= 0):
        raise InputError(f"init_range must be a positive number or None, got {config.init_range!r}")
    if config.adaptive_softmax is not None:
        check_cutoffs(config.adaptive_softmax, config.vocab_size)
        if config.tie_weights:
            raise InputError("tie_weights (--tie-weights) shares the embedding with a full output layer, which an "
                             "adaptive softmax replaces; drop one of them")
    if config.tie_weights and config.embedding_dim != config.hidden_size:
        raise InputError(
            f"tie_weights needs embedding_dim == hidden_size (got {config.embedding_dim} and {config.hidden_size}); "
            f"set embedding_dim to {config.hidden_size} or turn tying off"
        )


class LanguageModel(nn.Module):
    r"""Embedding (or one-hot) → dropout → recurrent layers → dropout → linear to the vocabulary.

    With the AWD-LSTM toolbox (Merity et al. 2017) it becomes embedding dropout (whole words) → locked
    dropout → layers with weight drop on W_hh and locked dropout between them → locked dropout → tied output.

    .. math::

        x_t = E[w_t] \text{ or } \mathrm{onehot}(w_t), \quad
        h_t = \mathrm{RNN}(x_t, h_{t-1}), \quad
        \mathrm{logits}_t = W\,\mathrm{dropout}(h_t) + b

    Args:
        vocab_size: V, the number of token ids.
        cell: any registered cell (:func:`rnnkit.nn.cell_names`: ``"lstm"``, ``"gru"``, ``"rnn"`` (tanh),
            ``"layernorm_lstm"``, ...).
        hidden_size: H, the width of every recurrent layer. Default 256.
        num_layers: stacked recurrent layers. Default 2.
        embedding_dim: width of a learned embedding; 0 (default) feeds one-hot vectors of size V,
            as char-rnn does.
        dropout: dropout probability on the embedding output, between recurrent layers and
            before the output layer (Zaremba et al. 2014). One-hot inputs are not dropped: a
            dropped one-hot vector would erase the whole input symbol. Default 0.
        tie_weights: share the embedding matrix with the output layer (Press & Wolf 2017);
            needs ``embedding_dim == hidden_size``.
        engine: ``"auto"`` (default), ``"fused"`` (PyTorch kernels), ``"explicit"`` (rnnkit's hand-written BPTT).
        init_range: if given, every parameter (biases included) starts uniform in
            ±init_range, as in Zaremba et al. (±0.1); None keeps PyTorch's initialisation.
        recurrent_dropout, zoneout, weight_drop, forget_bias: the regularisers inside the recurrence
            (:mod:`rnnkit.nn.regularisers`). Default off.
        embedding_dropout: drop whole words (rows of the embedding) per forward call. Default 0.
        locked_dropout: the dropout masks on the input, between layers and on the output stay the same
            at every step of a sequence (variational dropout). Default False.
        input_dropout, hidden_dropout, output_dropout: AWD-LSTM's separate rates (Merity et al. 2017:
            dropouti, dropouth, dropout), each locked (one mask per sequence, the same at every step): on the
            embedding output, between recurrent layers, on the last layer's output. None (default) keeps
            ``dropout`` (locked or not as ``locked_dropout`` says) at that place, so ``dropout`` keeps its meaning.
        adaptive_softmax: the cutoffs c_1 < ... < c_K of an adaptive softmax (Grave et al. 2017;
            :mod:`rnnkit.models.adaptive_softmax`) in place of the full output layer: the c_1 most frequent
            ids in a head, the rest in K narrower clusters. The distribution stays exact; training scores only
            the targets' clusters. Needs ids numbered by decreasing frequency (rnnkit's word vocabularies are).
            None (default): the full layer.
        block: ``"plain"`` (default) stacks the layers; ``"residual"`` stacks pre-norm residual blocks
            (LayerNorm → layer → add → LayerNorm → gated MLP → add; :mod:`rnnkit.models.blocks`), the
            embedding projected to ``hidden_size`` where it is narrower or wider.

    Inputs: tokens, state[, targets]
        tokens: (N, L) integer ids.
        state: the recurrent state from the previous call (carry it detached for truncated
            BPTT), or None for zeros: (num_layers, N, H), a pair of them for LSTM.
        targets: (N, L) next-token ids, a keyword (optional): the first output is then the cross-entropy
            summed over them, a scalar, in place of the logits; with an adaptive softmax this is the fast path.

    Outputs: logits, state
        logits: (N, L, V) unnormalised next-token scores (with an adaptive softmax, log-probabilities).
        state: the final state, same shapes as the input state.

    Example::

        >>> model = LanguageModel(vocab_size=65, hidden_size=128, embedding_dim=32)
        >>> logits, state = model(torch.zeros(4, 10, dtype=torch.long))
        >>> logits.shape
        torch.Size([4, 10, 65])
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", hidden_size: int = 256, num_layers: int = 2,
                 embedding_dim: int = 0, dropout: float = 0.0, tie_weights: bool = False,
                 engine: str = "auto", init_range: float | None = None, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0, weight_drop: float = 0.0, forget_bias: float | None = None,
                 embedding_dropout: float = 0.0, locked_dropout: bool = False, block: str = "plain",
                 input_dropout: float | None = None, hidden_dropout: float | None = None,
                 output_dropout: float | None = None, adaptive_softmax=None):
        super().__init__()
        if adaptive_softmax is not None and not isinstance(adaptive_softmax, (list, tuple)):
            raise InputError(f"adaptive_softmax takes a list of cutoffs such as [2000, 6000], got {adaptive_softmax!r}")
        config = LanguageModelConfig(vocab_size, cell, hidden_size, num_layers, embedding_dim, dropout,
                                     tie_weights, engine, init_range, recurrent_dropout, zoneout, weight_drop,
                                     forget_bias, embedding_dropout, locked_dropout, block, input_dropout,
                                     hidden_dropout, output_dropout,
                                     None if adaptive_softmax is None else tuple(adaptive_softmax))
        _check(config)
        self._config = config
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if embedding_dim > 0 else None
        self.input_dropout = _dropout_at(input_dropout, dropout, locked_dropout)
        between, between_locked = (dropout, locked_dropout) if hidden_dropout is None else (hidden_dropout, True)
        self.rnn = recurrent_layer(cell, embedding_dim or vocab_size, hidden_size, num_layers, dropout=between,
                                   engine=engine, locked_dropout=between_locked, recurrent_dropout=recurrent_dropout,
                                   zoneout=zoneout, weight_drop=weight_drop, forget_bias=forget_bias, block=block)
        self.output_dropout = _dropout_at(output_dropout, dropout, locked_dropout)
        self.decoder = (nn.Linear(hidden_size, vocab_size) if adaptive_softmax is None
                        else AdaptiveSoftmax(hidden_size, vocab_size, adaptive_softmax))
        if init_range is not None:
            for parameter in self.parameters():
                nn.init.uniform_(parameter, -init_range, init_range)
            if block == "residual":
                self.rnn.reset_norms()  # the range is for weights and biases, not the norms' gains
            if forget_bias:
                self.rnn._add_forget_bias()  # on top of the uniform start, as it is on top of the default one
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    @property
    def config(self) -> LanguageModelConfig:
        return self._config

    @classmethod
    def from_config(cls, config: LanguageModelConfig | dict) -> LanguageModel:
        """A freshly initialised model of this configuration (a dict is read with ``from_dict``)."""
        if isinstance(config, dict):
            config = LanguageModelConfig.from_dict(config)
        return cls(**config.to_dict())

    @property
    def input_dtype(self) -> torch.dtype:
        """The floating type of the recurrent layers' input (one-hot vectors take it)."""
        return next(self.rnn.parameters()).dtype

    def forward(self, tokens: Tensor, state=None, outputs: bool = False, targets: Tensor | None = None):
        """``(logits, state)``; with ``outputs`` also the last recurrent layer's output before and after the
        output dropout, each (N, L, H): what activation regularisation penalises (AR the dropped one, TAR the
        other; :func:`activation_regularisation`). With ``targets`` (N, L), the summed cross-entropy in place of
        the logits. Keywords, so that they pass through DistributedDataParallel."""
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"tokens must be (N, L) integer ids, got {tokens.dtype} of shape {tuple(tokens.shape)}")
        if self.embedding is not None:
            embedded = embedding_dropout(self.embedding, tokens, self.config.embedding_dropout, self.training)
            x = self.input_dropout(embedded)  # (N, L, E)
        else:
            x = F.one_hot(tokens.long(), self.vocab_size).to(self.input_dtype)  # (N, L, V)
        output, state = self.rnn(x, state)  # (N, L, H)
        dropped = self.output_dropout(output)  # (N, L, H)
        if targets is None:
            scores = self.decoder(dropped)  # (N, L, V)
        elif isinstance(self.decoder, AdaptiveSoftmax):
            scores = self.decoder.nll(dropped, targets).sum()  # only the clusters the targets are in
        else:
            scores = F.cross_entropy(self.decoder(dropped).reshape(-1, self.vocab_size), targets.reshape(-1),
                                     reduction="sum")
        return (scores, state, output, dropped) if outputs else (scores, state)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, cell={self.config.cell!r}, engine={self.config.engine!r}"


def _dropout_at(rate: float | None, dropout: float, locked: bool) -> nn.Module:
    """The dropout at one place: AWD's own ``rate``, locked, where given; else the shared ``dropout``."""
    return sequence_dropout(dropout, locked) if rate is None else sequence_dropout(rate, True)


def activation_regularisation(output: Tensor, dropped: Tensor, ar: float = 0.0, tar: float = 0.0) -> Tensor:
    r"""AWD-LSTM's activation regularisers (Merity et al. 2017, §4.6) of one window, a scalar:

    .. math::

        \mathrm{AR} = \alpha \cdot \mathrm{mean}_{n,t,j}\big(\tilde h_{n,t,j}^2\big), \qquad
        \mathrm{TAR} = \beta \cdot \mathrm{mean}_{n,t,j}\big((h_{n,t,j} - h_{n,t-1,j})^2\big)

    with :math:`\tilde h` the last layer's output after dropout (``dropped``) and :math:`h` before it
    (``output``), both (N, L, H); TAR's mean runs over the L − 1 differences inside the window (0 for L = 1).
    """
    total = output.new_zeros(())
    if ar:
        total = total + ar * dropped.pow(2).mean()
    if tar and output.size(1) > 1:
        total = total + tar * (output[:, 1:] - output[:, :-1]).pow(2).mean()  # (N, L-1, H) differences
    return total
