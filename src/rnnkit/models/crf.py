r"""A linear-chain conditional random field over per-step tag scores, batched and in log space.

For emissions e_t (the tagger's per-step scores, one per tag), transition scores A[i, j] (tag i followed
by tag j), start scores s and end scores f, a tag path y_1..y_T of a sequence of length T scores

    score(y) = s[y_1] + e_1[y_1] + Σ_{t=2..T} (A[y_{t-1}, y_t] + e_t[y_t]) + f[y_T]

and p(y | x) = exp(score(y)) / Z with the partition function Z = Σ_y' exp(score(y')) over all C^T paths.
The forward algorithm computes log Z in O(T C^2):

    α_1[j] = s[j] + e_1[j]
    α_t[j] = logsumexp_i (α_{t-1}[i] + A[i, j]) + e_t[j]
    log Z  = logsumexp_j (α_T[j] + f[j])

and Viterbi the best path with max in place of logsumexp plus back-pointers. Padded steps (mask False)
leave α (and the Viterbi scores) unchanged, so a padded row gives exactly its unpadded result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from .recurrent_encoder import check_whole_number


class LinearChainCRF(nn.Module):
    r"""Linear-chain CRF output layer: negative log-likelihood for training, Viterbi for decoding.

    Args:
        num_tags: C, the number of tags.

    Parameters: ``transitions`` (C, C) with ``transitions[i, j]`` the score of tag j right after tag i;
    ``start_transitions`` (C,) and ``end_transitions`` (C,) for the first and the last tag. All start at 0,
    so an untrained CRF decodes as a per-step argmax.

    Shapes: emissions (N, L, C) float scores, tags (N, L) tag ids, mask (N, L) bool with True on each
    row's real steps: a prefix of at least one step (padding only at the end).

    ``forward(emissions, tags, mask)`` is the negative log-likelihood per sequence, (N,):
    ``-log p(tags | emissions) = log Z - score(tags)``, tags on padded steps ignored.

    Example::

        >>> crf = LinearChainCRF(num_tags=5)
        >>> emissions = torch.randn(2, 4, 5)                           # (N=2, L=4, C=5)
        >>> mask = torch.tensor([[True] * 4, [True, True, False, False]])
        >>> crf(emissions, torch.zeros(2, 4, dtype=torch.long), mask).shape
        torch.Size([2])
        >>> crf.decode(emissions, mask)[1, 2:]                         # -1 marks the padded steps
        tensor([-1, -1])
    """

    def __init__(self, num_tags: int):
        super().__init__()
        check_whole_number("num_tags", num_tags)
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.zeros(num_tags))
        self.end_transitions = nn.Parameter(torch.zeros(num_tags))

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = self._check(emissions, mask, tags)
        return self._log_partition(emissions, mask) - self._score(emissions, tags, mask)  # (N,)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """score(tags) of the module docstring for each row, (N,); tags on padded steps are ignored."""
        return self._score(emissions, tags, self._check(emissions, mask, tags))

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """log Z by the forward algorithm, (N,)."""
        return self._log_partition(emissions, self._check(emissions, mask))

    def _score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        tags = tags.masked_fill(~mask, 0)  # any valid id on padding; those terms are masked out below
        valid = mask.to(emissions.dtype)  # (N, L)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (N, L): e_t[y_t]
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (N, L-1): A[y_{t-1}, y_t]
        last_tag = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)  # (N,): y_T
        return (self.start_transitions[tags[:, 0]]
                + (emitted * valid).sum(1)
                + (moved * valid[:, 1:]).sum(1)
                + self.end_transitions[last_tag])  # (N,)

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        alpha = self.start_transitions + emissions[:, 0]  # (N, C)
        for t in range(1, emissions.size(1)):
            # (N, C, 1) + (C, C) → (N, C_prev, C_next); logsumexp over the previous tag
            step = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]  # (N, C)
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)  # padding keeps α_T
        return torch.logsumexp(alpha + self.end_transitions, dim=1)  # (N,)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """The highest-scoring tag path of each row (Viterbi), (N, L) long, -1 on padded steps."""
        mask = self._check(emissions, mask)
        N, L, C = emissions.shape
        best = self.start_transitions + emissions[:, 0]  # (N, C): best score of a path ending in each tag
        identity = torch.arange(C, device=emissions.device).expand(N, C)  # (N, C)
        back_pointers = []
        for t in range(1, L):
            candidates = best.unsqueeze(2) + self.transitions  # (N, C_prev, C_next)
            step_best, step_from = candidates.max(dim=1)  # (N, C), (N, C)
            real = mask[:, t].unsqueeze(1)  # (N, 1)
            best = torch.where(real, step_best + emissions[:, t], best)
            # on padding each tag points to itself, so the walk back carries the last real tag through it
            back_pointers.append(torch.where(real, step_from, identity))
        tag = (best + self.end_transitions).argmax(dim=1)  # (N,): y_T
        path = [tag]
        for step_from in reversed(back_pointers):
            tag = step_from.gather(1, tag.unsqueeze(1)).squeeze(1)  # (N,)
            path.append(tag)
        path = torch.stack(path[::-1], dim=1)  # (N, L)
        return path.masked_fill(~mask, -1)

    def _check(self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None) -> Tensor:
        """The mask to use (all True when None); InputError for shapes or masks the algorithms cannot read."""
        if emissions.dim() != 3 or emissions.size(2) != self.num_tags or emissions.size(1) == 0:
            raise InputError(f"emissions must be (N, L, {self.num_tags}) with L >= 1, got {tuple(emissions.shape)}")
        N, L, _ = emissions.shape
        if mask is None:
            mask = torch.ones(N, L, dtype=torch.bool, device=emissions.device)
        elif tuple(mask.shape) != (N, L):
            raise InputError(f"mask must be (N, L) = {(N, L)} like the emissions, got {tuple(mask.shape)}")
        mask = mask.bool()
        if N and not bool(mask[:, 0].all()):
            raise InputError("every sequence needs at least one real step: mask[:, 0] must be True")
        if L > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
            raise InputError("the mask must be a prefix of True steps per row (padding at the end only)")
        if tags is not None:
            if tuple(tags.shape) != (N, L) or tags.is_floating_point():
                raise InputError(f"tags must be (N, L) = {(N, L)} integer ids like the emissions, got "
                                 f"{tags.dtype} of shape {tuple(tags.shape)}")
            real_tags = tags[mask]
            if real_tags.numel() and (int(real_tags.min()) < 0 or int(real_tags.max()) >= self.num_tags):
                raise InputError(f"tags on real steps must lie in [0, {self.num_tags})")
        return mask
