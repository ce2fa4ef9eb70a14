r"""Attention: at every output step, a weighted average of all encoder states instead of one context vector.

A decoder state (the query) scores every encoder state h_j (the memory); the scores become weights by a
softmax over the source positions that hold a real token, and the context vector is the weighted sum:

    additive (Bahdanau et al. 2015):   e_ij = v^T tanh(W s_{i-1} + U h_j)      query: the previous state s_{i-1}
    dot      (Luong et al. 2015):      e_ij = s_i^T h_j                         query: the current state s_i
    general  (Luong et al. 2015):      e_ij = s_i^T W_a h_j

    alpha_ij = exp(e_ij) / sum_{k valid} exp(e_ik)      alpha_ij = 0 exactly where j is padding
    c_i      = sum_j alpha_ij h_j

Which state is the query (s_{i-1} or s_i) is the decoder's business (:class:`~rnnkit.models.Seq2Seq`);
this module only scores, masks and averages. ``U h_j`` (additive) and ``W_a h_j`` (general) do not depend on
the step, so :meth:`Attention.keys` computes them once per source sentence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from .recurrent_encoder import check_whole_number

ATTENTIONS = ("additive", "dot", "general")


class Attention(nn.Module):
    r"""Additive (Bahdanau) or multiplicative (Luong dot / general) attention with source padding masked.

    .. math::

        e_{ij} = v^\top \tanh(W q_i + U h_j) \;\text{(additive)}, \quad
        q_i^\top h_j \;\text{(dot)}, \quad q_i^\top W_a h_j \;\text{(general)}

        \alpha_{ij} = \frac{\exp e_{ij}}{\sum_{k:\,\mathrm{mask}_k} \exp e_{ik}}, \qquad c_i = \sum_j \alpha_{ij} h_j

    Args:
        kind: ``"additive"``, ``"dot"`` or ``"general"``.
        query_size: Q, the width of a decoder state.
        memory_size: K, the width of an encoder state (2 H for a bidirectional encoder). ``dot`` needs Q = K.
        attention_size: A, the width of the additive score's hidden layer. Default: ``query_size``.

    Inputs: query, memory, mask, keys
        query: (N, Q) one step, or (N, T, Q) T steps at once.
        memory: (N, S, K) the encoder states.
        mask: (N, S) bool, True on real source tokens (every row needs at least one).
        keys: :meth:`keys` of ``memory`` computed beforehand, or None to compute them here.

    Outputs: context, weights
        context: (N, K) or (N, T, K).
        weights: (N, S) or (N, T, S); each row sums to 1 over the real tokens and is 0 on padding.

    Example::

        >>> attention = Attention("additive", query_size=8, memory_size=6)
        >>> memory, mask = torch.randn(2, 5, 6), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
        >>> context, weights = attention(torch.randn(2, 8), memory, mask)
        >>> context.shape, weights[1, 3:].tolist()
        (torch.Size([2, 6]), [0.0, 0.0])
    """

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        if kind not in ATTENTIONS:
            raise InputError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTIONS)}")
        check_whole_number("query_size", query_size)
        check_whole_number("memory_size", memory_size)
        if kind == "dot" and query_size != memory_size:
            raise InputError(
                f"dot attention scores s_i^T h_j, so the decoder's width ({query_size}) must equal the encoder "
                f"output's ({memory_size}, twice the hidden size when bidirectional); use general attention or "
                "equal sizes"
            )
        self.kind = kind
        if kind == "additive":
            attention_size = attention_size or query_size
            check_whole_number("attention_size", attention_size)
            self.query_layer = nn.Linear(query_size, attention_size, bias=False)  # W
            self.key_layer = nn.Linear(memory_size, attention_size)  # U (its bias is the score's bias)
            self.score_layer = nn.Linear(attention_size, 1, bias=False)  # v
        elif kind == "general":
            self.key_layer = nn.Linear(memory_size, query_size, bias=False)  # W_a

    def keys(self, memory: Tensor) -> Tensor:
        """The step-independent part of the scores: U h_j (N, S, A), W_a h_j (N, S, Q), or h_j itself (dot)."""
        return memory if self.kind == "dot" else self.key_layer(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """Unnormalised scores e: query (N, T, Q), keys (N, S, ·) → (N, T, S)."""
        if self.kind == "additive":
            hidden = torch.tanh(self.query_layer(query).unsqueeze(2) + keys.unsqueeze(1))  # (N, T, S, A)
            return self.score_layer(hidden).squeeze(3)  # (N, T, S)
        return torch.bmm(query, keys.transpose(1, 2))  # (N, T, S)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor, keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        one_step = query.dim() == 2
        queries = query.unsqueeze(1) if one_step else query  # (N, T, Q)
        if keys is None:
            keys = self.keys(memory)
        scores = self.scores(queries, keys)  # (N, T, S)
        # -inf before the softmax makes padded positions exactly 0 and leaves the others summing to 1
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (N, T, S)
        context = torch.bmm(weights, memory)  # (N, T, K)
        if one_step:
            return context.squeeze(1), weights.squeeze(1)  # (N, K), (N, S)
        return context, weights

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
