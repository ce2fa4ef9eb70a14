"""What a task's loss gives the Trainer for one batch, and the summed token cross-entropy most tasks use.

    >>> logits, targets = torch.zeros(1, 3, 4), torch.tensor([[1, 2, 0]])
    >>> loss_sum, n = summed_token_loss(logits, targets, pad_index=0)
    >>> round(loss_sum.item(), 4), n          # two real tokens, each -log(1/4)
    (2.7726, 2)
"""

from typing import Any, NamedTuple

import torch


class TaskLoss(NamedTuple):
    """What a task's loss returns for one batch.

    loss_sum: scalar tensor, the loss summed over every target token of the batch (padding excluded).
    n_tokens: the number of those target tokens. n_sequences: the number of sequences (batch rows).
    state: the hidden state to carry into the next batch, or None.
    lr_scale: the training step's learning rate is multiplied by this for this step alone, after the gradient
        is clipped (AWD-LSTM's variable windows: ℓ / bptt); 1.0 leaves it as it is.
    """

    loss_sum: torch.Tensor
    n_tokens: int
    n_sequences: int
    state: Any
    lr_scale: float = 1.0


def summed_token_loss(logits: torch.Tensor, targets: torch.Tensor, pad_index: int | None = None) -> tuple[torch.Tensor, int]:
    """Cross-entropy summed over every target token, padding excluded: the ``loss_sum`` of a :class:`TaskLoss`.

        loss_sum = Σ_{n,t: y_{n,t} ≠ pad} -log softmax(logits_{n,t})[y_{n,t}]

    logits (N, L, C), targets (N, L) class indices; positions where ``targets == pad_index`` count for
    nothing. Returns (loss_sum scalar, number of counted tokens).
    """
    flat_logits = logits.reshape(-1, logits.size(-1))  # (N * L, C)
    flat_targets = targets.reshape(-1)  # (N * L,)
    if pad_index is None:
        return torch.nn.functional.cross_entropy(flat_logits, flat_targets, reduction="sum"), flat_targets.numel()
    loss_sum = torch.nn.functional.cross_entropy(flat_logits, flat_targets, reduction="sum", ignore_index=pad_index)
    return loss_sum, int((flat_targets != pad_index).sum())
