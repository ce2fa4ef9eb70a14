r"""The reference engine: a cell's own step equations (:meth:`rnnkit.nn.cells.base.Cell.reference_step`)
in a plain loop over time, differentiated by autograd.

It is slow and simple on purpose: it is the oracle every fast engine is tested against, the path a
double backward differentiates, and ``engine="reference"`` for anyone who wants to read or step
through exactly what a cell computes. It applies the same regularisers, truncation and packed lengths
as the explicit engine, in the plainest form:

    h_in = h_{t-1} ⊙ r                                  recurrent dropout
    (h~_t, c~_t) = cell.reference_step(x_t, (h_{t-1}, c_{t-1}), h_in)
    h_t = m_t ⊙ h_{t-1} + (1 − m_t) ⊙ h~_t              zoneout (and c_t alike)

Truncated BPTT (``bptt_window=k``) detaches the state entering every k-th step (of the rows still
running: a row that has ended keeps the path from its final state back to its own last steps).

Resets: a row that resets before step t reads the initial state (h_0, c_0) instead of its previous state, so its
gradient flows into h_0 there and not into the steps before.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.linear import autocast_off
from .base import Engine, SequenceRun


def reference_sequence(run, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor],
                       record: list | None = None):
    """One layer in one direction over x (L, N, In), rows sorted by decreasing length when
    ``run.batch_sizes`` is given. Returns ``(y, h_n, c_n)``: y (L, N, P) with zeros past each row's
    length, the final states (N, P) and (N, H) or None. ``record`` collects each step's gates."""
    L, N, _ = x.shape
    state = (h0,) if c0 is None else (h0, c0)
    outputs = []
    for t in range(L):
        bs = run.batch_sizes[t] if run.batch_sizes is not None else N
        alive = tuple(s[:bs] for s in state)
        if run.bptt_window and t % run.bptt_window == 0 and t > 0:
            alive = tuple(s.detach() for s in alive)  # rows that ended earlier keep their gradient path
        if run.resets is not None and t > 0:
            reset = run.resets[t, :bs].unsqueeze(1)  # (bs, 1)
            alive = tuple(torch.where(reset, first[:bs], s) for first, s in zip((h0, c0), alive))
        h_in = alive[0] if run.recurrent_mask is None else alive[0] * run.recurrent_mask[:bs]
        new, gates = run.cell.reference_step(p, x[t, :bs], alive, h_in)
        if run.zoneout_h is not None:
            masks = (run.zoneout_h, run.zoneout_c)
            new = tuple(_keep(m, t, bs) * old + (1 - _keep(m, t, bs)) * s for m, old, s in zip(masks, alive, new))
        if record is not None:
            record.append(gates)
        state = tuple(torch.cat([s_new, s[bs:]]) if bs < N else s_new for s_new, s in zip(new, state))
        h_t = new[0] if bs == N else torch.cat([new[0], new[0].new_zeros(N - bs, new[0].shape[1])])
        outputs.append(h_t)
    y = torch.stack(outputs)  # (L, N, P)
    return y, state[0], (state[1] if c0 is not None else None)


def reference_gradients(run, x: Tensor, h0: Tensor, c0: Tensor | None, params, dy: Tensor, dh_n: Tensor,
                        dc_n: Tensor | None, needs: dict[str, bool]) -> dict[str, Tensor]:
    """The gradients of one layer-direction by the reference equations, for the fast engines' backward passes when
    theirs cannot serve: the sequence recomputed under autograd and differentiated.

    A graph of the gradient when grad mode is on (``create_graph=True``, and ``torch.func.grad``, which asks that
    way), so double backward is exact; plain otherwise (a second backward through a graph whose buffers were
    reused, or a backward under vmap, whose wrapped tensors no in-place buffer takes). ``needs`` maps "x", "h0",
    "c0" and the names in ``run.names`` to whether a gradient is wanted; returns them by those names.
    """
    keys = ["x", "h0", "c0", *run.names]
    tensors = [x, h0, c0, *params]
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        # a plain gradient: from fresh leaves, so that no graph outlives this call; under a transform (a vmapped
        # backward) requires_grad_ is refused, and the saved tensors serve (the graph from them is freed all the same)
        if not create_graph and not torch._C._are_functorch_transforms_active():
            tensors = [t if t is None else t.detach().requires_grad_(needs.get(k, False))
                       for k, t in zip(keys, tensors)]
            x, h0, c0, *params = tensors
        wanted = [(k, t) for k, t in zip(keys, tensors) if needs.get(k)]
        y, h_n, c_n = reference_sequence(run, x, h0, c0, dict(zip(run.names, params)))
        outputs = [y, h_n] + ([c_n] if c_n is not None else [])
        grad_outputs = [dy, dh_n] + ([dc_n] if c_n is not None else [])
        grads = torch.autograd.grad(outputs, [t for _, t in wanted], grad_outputs, create_graph=create_graph,
                                    allow_unused=True)
    return {k: torch.zeros_like(t) if g is None else g for (k, t), g in zip(wanted, grads)}


def _keep(mask, t: int, bs: int):
    return mask if isinstance(mask, float) else mask[t, :bs]


class ReferenceEngine(Engine):
    """The cell's own step equations in a plain loop under autograd: the oracle of every fast engine."""

    name = "reference"
    summary = "the cell's step equations in a plain loop under autograd: the oracle of the fast engines"

    def run(self, run: SequenceRun, x: Tensor, h0: Tensor, c0: Tensor | None, p: dict[str, Tensor]):
        with autocast_off(x):  # in the dtype given (the layer casts for autocast)
            return reference_sequence(run, x, h0, c0, p)
