r"""The regularisers of recurrent networks that torch.nn does not offer, as masks and modules.

Inside the recurrence (arguments of :class:`rnnkit.nn.Recurrent`, applied by the engines):

* **recurrent dropout** (Gal & Ghahramani 2016, "variational" dropout): in training one Bernoulli mask
  per sequence and layer, shape (N, H_out), the same at every step, on h_{t-1} where it enters W_hh,
  scaled by 1/(1−p); the identity in evaluation.
* **zoneout** (Krueger et al. 2017): in training each unit keeps its previous value with probability p,
  a fresh mask per step: ``h_t = m_t ⊙ h_{t-1} + (1 − m_t) ⊙ h~_t`` (and the same for c_t); in
  evaluation the expectation, ``h_t = p h_{t-1} + (1 − p) h~_t``.
* **weight drop** (DropConnect on W_hh, Merity et al. 2017): one mask over the recurrent weight matrix
  per forward call, scaled by 1/(1−p); the stored weights are never modified.

Around the recurrence (modules for the models, as AWD-LSTM uses them):

* :class:`LockedDropout`: one dropout mask per sequence, the same at every step (between layers, on the
  input and on the output of a recurrent stack).
* :func:`embedding_dropout`: drops whole words, i.e. rows of the embedding matrix, per forward call.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_probability(name: str, value, *, inclusive: bool = False) -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``inclusive``); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            0 <= value < 1 or (inclusive and value == 1)):
        upper = "1]" if inclusive else "1)"
        raise ValueError(f"{name} must be a probability in [0, {upper}, got {value!r}")
    return float(value)


def recurrent_dropout_mask(p: float, rows: int, size: int, like: Tensor, training: bool) -> Tensor | None:
    """(N, H_out) Bernoulli(1−p) mask scaled by 1/(1−p), or None when off (p = 0 or evaluation)."""
    if not training or p == 0:
        return None
    return like.new_empty(rows, size).bernoulli_(1 - p).div_(1 - p)


def zoneout_masks(p: float, steps: int, rows: int, sizes: tuple[int, ...], like: Tensor,
                  training: bool) -> tuple[Tensor | float | None, Tensor | float | None]:
    """Zoneout's keep masks for h and c: (L, N, size) Bernoulli(p) in training, the probability p itself
    in evaluation, None when off. The second is None for cells without a cell state."""
    if p == 0:
        return None, None
    if not training:
        return p, (p if len(sizes) > 1 else None)
    # rand < p: the same Bernoulli(p) as bernoulli_, at about half its cost on CPU (the masks are L·N·H values a call)
    masks = [torch.rand(steps, rows, size, dtype=like.dtype, device=like.device).lt_(p) for size in sizes]
    return masks[0], (masks[1] if len(masks) > 1 else None)


def drop_weight(weight: Tensor, p: float, training: bool) -> Tensor:
    """DropConnect: ``weight`` with each entry zeroed with probability p and the rest scaled by 1/(1−p),
    as a new tensor (the parameter itself is untouched, and its gradient flows through the mask)."""
    if not training or p == 0:
        return weight
    return F.dropout(weight, p, training=True)


class LockedDropout(nn.Module):
    r"""Dropout with one mask per sequence, the same at every step ("variational", "locked").

    ``y[n, t, :] = x[n, t, :] ⊙ m[n, :] / (1 − p)``; identity in evaluation.

    Args:
        p: the probability of zeroing a feature for a whole sequence.
        batch_first: input (N, L, F) if True, else (L, N, F).

    Example::

        >>> drop = LockedDropout(0.5, batch_first=True)
        >>> y = drop(torch.ones(2, 5, 3))
        >>> bool((y[:, 0] == y[:, 4]).all())                 # the same mask at every step
        True
    """

    def __init__(self, p: float = 0.5, batch_first: bool = True):
        super().__init__()
        self.p = check_probability("locked dropout", p)
        self.batch_first = batch_first

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        time_dim = 1 if self.batch_first else 0
        shape = list(x.shape)
        shape[time_dim] = 1
        mask = x.new_empty(shape).bernoulli_(1 - self.p).div_(1 - self.p)  # (N, 1, F) or (1, N, F)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout(embedding: nn.Embedding, tokens: Tensor, p: float, training: bool) -> Tensor:
    """Embeddings of ``tokens`` with whole words dropped: each row of the embedding matrix (each word
    type) is zeroed with probability p for this forward call and the rest scaled by 1/(1−p), so every
    occurrence of a dropped word is blanked at once (Gal & Ghahramani 2016; AWD-LSTM's ``dropoute``)."""
    if not training or p == 0:
        return embedding(tokens)
    weight = embedding.weight  # (V, E)
    mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p).div_(1 - p)  # (V, 1)
    return F.embedding(tokens, weight * mask, embedding.padding_idx, embedding.max_norm, embedding.norm_type,
                       embedding.scale_grad_by_freq, embedding.sparse)
