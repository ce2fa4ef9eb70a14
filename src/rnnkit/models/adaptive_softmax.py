r"""The adaptive softmax (Grave, Joulin, Cissé, Grangier & Jégou 2017): an exact distribution over a large
vocabulary that costs a full product only for its frequent words.

A word-level model spends most of its step on the output layer (H x V products a token: at H = 200, V = 10,000
that is three quarters of a 2x200 LSTM's work). Word frequencies follow Zipf's law, so the ids, which rnnkit's
word vocabularies number by decreasing frequency, are cut at c_1 < c_2 < ... < c_K < V: a *head* scores the c_1
most frequent words and one token per tail cluster; cluster k, the ids [c_k, c_{k+1}) (c_{K+1} = V), is scored
from a projection of h to d_k = H / div^k dimensions:

    log p(w | h) = log softmax(W_head h + b)[w]                                          w < c_1
    log p(w | h) = log softmax(W_head h + b)[c_1 + k - 1] + log softmax(U_k P_k h)[w - c_k]   c_k <= w < c_{k+1}

The probabilities sum to one over the V words (each cluster's softmax times its head probability), so the
perplexity is exact, not an approximation. Training needs only each target's own cluster (:meth:`nll`);
sampling and scoring read the whole distribution (:meth:`forward`). The layout of the weights is that of
``torch.nn.AdaptiveLogSoftmaxWithLoss`` (a head with a bias, bias-free projections), the oracle of the tests.

Example::

    >>> output = AdaptiveSoftmax(200, 10_000, cutoffs=(2000, 6000))
    >>> h = torch.randn(4, 20, 200)
    >>> output(h).exp().sum(-1).allclose(torch.ones(4, 20))
    True
    >>> output.nll(h, torch.randint(10_000, (4, 20))).shape
    torch.Size([4, 20])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError

DIV_VALUE = 4.0  # each cluster's projection is this many times narrower than the previous one's (Grave et al.)


def check_cutoffs(cutoffs, vocab_size: int) -> tuple[int, ...]:
    """``cutoffs`` as a tuple; InputError unless they are integers, increasing, between 1 and V - 1."""
    cutoffs = tuple(cutoffs)
    if (not cutoffs or any(isinstance(c, bool) or not isinstance(c, int) for c in cutoffs)
            or any(b <= a for a, b in zip(cutoffs, cutoffs[1:])) or cutoffs[0] < 1 or cutoffs[-1] >= vocab_size):
        raise InputError(
            f"the adaptive softmax's cutoffs must be increasing integers between 1 and the vocabulary's size less "
            f"one ({vocab_size - 1:,}), got {list(cutoffs)}; give the head's size and each cluster's start, e.g. "
            f"{min(2000, max(vocab_size // 5, 1))},{min(6000, max(vocab_size // 2, 2))} for a vocabulary of 10,000")
    return cutoffs


class AdaptiveSoftmax(nn.Module):
    r"""The output layer ``h -> log p(. | h)`` of an adaptive softmax (see the module's docstring).

    Args:
        in_features: H, the width of the hidden state it reads.
        vocab_size: V.
        cutoffs: c_1 < ... < c_K, each below V: the head holds ids [0, c_1), cluster k the ids [c_k, c_{k+1}).
        div_value: cluster k is scored from H / div_value^k dimensions (at least 1). Default 4.

    Shapes: ``forward``: (..., H) -> (..., V) log-probabilities; ``nll``: (..., H), targets (...) -> (...).
    """

    def __init__(self, in_features: int, vocab_size: int, cutoffs, div_value: float = DIV_VALUE):
        super().__init__()
        self.cutoffs = check_cutoffs(cutoffs, vocab_size)
        self.vocab_size = vocab_size
        self.shortlist = self.cutoffs[0]
        bounds = (*self.cutoffs, vocab_size)
        self.head = nn.Linear(in_features, self.shortlist + len(self.cutoffs))
        widths = [max(1, int(in_features // div_value ** k)) for k in range(1, len(bounds))]  # d_1 .. d_K
        self.tail = nn.ModuleList(  # cluster k: P_k (H -> d_k), then U_k (d_k -> its words)
            nn.Sequential(nn.Linear(in_features, width, bias=False), nn.Linear(width, high - low, bias=False))
            for width, low, high in zip(widths, bounds, bounds[1:]))
        self.register_buffer("starts", torch.tensor(self.cutoffs), persistent=False)  # (K,)

    def forward(self, hidden: Tensor) -> Tensor:
        """The log-probability of every word, (..., V): usable wherever logits are (softmax of it is p)."""
        head = F.log_softmax(self.head(hidden), dim=-1)  # (..., c_1 + K)
        parts = [head[..., : self.shortlist]]
        for k, cluster in enumerate(self.tail):
            gate = head[..., self.shortlist + k : self.shortlist + k + 1]  # (..., 1): log p(cluster k)
            parts.append(F.log_softmax(cluster(hidden), dim=-1) + gate)  # (..., c_{k+1} - c_k)
        return torch.cat(parts, dim=-1)  # (..., V)

    def nll(self, hidden: Tensor, targets: Tensor) -> Tensor:
        """-log p(target | h) of each position, (...): each tail cluster is scored on its own targets' rows only."""
        flat = hidden.reshape(-1, hidden.size(-1))  # (M, H)
        words = targets.reshape(-1)  # (M,)
        cluster = torch.bucketize(words, self.starts, right=True)  # (M,): 0 the head, k the tail cluster k
        head_index = torch.where(cluster == 0, words, self.shortlist + cluster - 1)  # the word, or its cluster
        head = F.log_softmax(self.head(flat), dim=-1)  # (M, c_1 + K)
        nll = -head.gather(1, head_index.unsqueeze(1)).squeeze(1)  # (M,)
        for k, part in enumerate(self.tail, start=1):
            rows = (cluster == k).nonzero().squeeze(1)  # (M_k,)
            if rows.numel() == 0:
                continue
            within = (words.index_select(0, rows) - self.cutoffs[k - 1]).unsqueeze(1)  # (M_k, 1)
            logp = F.log_softmax(part(flat.index_select(0, rows)), dim=-1)  # (M_k, c_{k+1} - c_k)
            nll = nll.index_add(0, rows, -logp.gather(1, within).squeeze(1))
        return nll.view(targets.shape)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, cutoffs={list(self.cutoffs)}"
