r"""What rnnkit's ``autograd.Function``\ s share to work under PyTorch's function transforms (``torch.func``: ``vmap``,
``grad``, ``vjp``, ``jacrev``, and ``gradcheck(..., check_batched_grad=True)``, which vmaps a backward pass).

* The Functions are written in ``setup_context`` style (a forward without ``ctx``), which the transforms require;
  what the forward leaves for the hand-written backward besides the saved tensors (the cell's workspace) travels as
  one non-tensor output, which autograd passes through and the backward gets None for.
* :func:`wrapped`: whether any tensor is a transform's wrapper (vmap's batched tensor, grad's tracking tensor, or
  the batched tensor of the older vmap that ``gradcheck(..., check_batched_grad=True)`` runs a backward under). The
  hand-written backward passes write into preallocated buffers in place, which a wrapper cannot go into; given one,
  they differentiate the cell's reference equations instead, plain operations that every transform composes with (as
  they already do for a graph of the gradient, ``create_graph=True``, which is also how ``torch.func.grad`` asks).
* :func:`vmap_rows`: the Functions' ``vmap`` rule. The rows of a batch run independently, so vmap's dimension becomes
  more rows: row ``n * B + b`` is row n of vmap's example b, one run of N * B rows (the common case, per-example
  gradients over unbatched parameters), with the regularisers' masks drawn per example (``randomness="different"``)
  or shared. Parameters that vary along vmap's dimension (an ensemble) run one example at a time.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from .base import SequenceRun

_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_is_legacy_batched = torch._C._functorch.is_legacy_batchedtensor
_F = torch._C._functorch


def wrapped(*tensors: Tensor | None) -> bool:
    """Whether any of these tensors is a transform's wrapper (None entries are skipped): functorch's, or a batched
    tensor of the older ``torch._vmap_internals.vmap`` that ``gradcheck``'s batched check still uses, under which
    no vmap rule of a Function or an op applies and only plain operations run. False while ``torch.compile``
    traces (Dynamo would break the graph on these checks; the Functions' transform paths are for eager use)."""
    if torch.compiler.is_compiling():
        return False
    return any(t is not None and (_is_wrapped(t) or _is_legacy_batched(t)) for t in tensors)


def legacy_batched(*tensors: Tensor | None) -> bool:
    """Whether any of these is a batched tensor of ``torch._vmap_internals.vmap`` (``gradcheck``'s batched check)."""
    return any(t is not None and _is_legacy_batched(t) for t in tensors)


def _fold(t: Tensor | None, bdim: int | None, rows: int, B: int) -> Tensor | None:
    """(…, N, …) with vmap's dimension at ``bdim`` (None: shared by every example) → (…, N * B, …): row n * B + b
    is row n of example b."""
    if t is None:
        return None
    if bdim is None:
        t = t.unsqueeze(rows + 1).expand(*t.shape[:rows + 1], B, *t.shape[rows + 1:])
    else:
        t = t.movedim(bdim, 0).movedim(0, rows + 1)  # vmap's dimension right after the rows
    return t.flatten(rows, rows + 1)


def _physical(t: Tensor) -> tuple[Tensor, int | None]:
    """A tensor that ``run`` carried into a vmap rule (functorch unwraps the Function's own arguments only): the
    tensor beneath the transforms' wrappers above the current level, and where this vmap level's dimension is in it
    (None: shared by every example). A grad transform's wrapper is peeled: masks and resets take no gradient."""
    current = _F.maybe_current_level()
    current = -1 if current is None else current
    bdim = None
    while _is_wrapped(t) and _F.maybe_get_level(t) > current:
        if _F.is_batchedtensor(t):
            bdim = _F.maybe_get_bdim(t)  # the innermost batched level above the current one: this rule's
        t = _F.get_unwrapped(t)
    return t, bdim


def _run_tensors(run: SequenceRun, each) -> SequenceRun:
    """``run`` with its masks and resets replaced by ``each(tensor, vmap's dimension in it or None, rows dimension)``
    (floats and None kept)."""
    def apply(t, rows):
        return each(*_physical(t), rows) if isinstance(t, Tensor) else t

    return dataclasses.replace(run, recurrent_mask=apply(run.recurrent_mask, 0), zoneout_h=apply(run.zoneout_h, 1),
                               zoneout_c=apply(run.zoneout_c, 1), resets=apply(run.resets, 1))


def fold_run(run: SequenceRun, B: int) -> SequenceRun:
    """``run`` for vmap's examples as more rows (row n * B + b): rows alive, and the masks and resets, drawn per
    example under vmap (``randomness="different"``) or shared."""
    run = _run_tensors(run, lambda t, bdim, rows: _fold(t, bdim, rows, B))
    if run.batch_sizes is not None:
        run = dataclasses.replace(run, batch_sizes=[size * B for size in run.batch_sizes])
    return run


def vmap_rows(function, info, in_dims, run: SequenceRun, rowed: tuple, row_dims: tuple[int, ...], params: tuple,
              out_row_dims: tuple[int | None, ...]):
    """The ``vmap`` rule of ``function.apply(run, *rowed, *params)``.

    ``rowed``: the tensors with a rows dimension (x, h0, ...; None where absent), at ``row_dims``; ``params``: the
    parameters. The outputs have their rows at ``out_row_dims`` (None: not a tensor with rows, such as the
    workspace, which is not carried out of vmap: a backward under vmap gets wrapped gradients and recomputes).
    Returns ``(outputs, out_dims)`` as ``torch.autograd.Function.vmap`` does.
    """
    B = info.batch_size
    rowed_dims, param_dims = in_dims[1:1 + len(rowed)], in_dims[1 + len(rowed):]
    if all(d is None for d in param_dims):
        folded = [_fold(t, d, r, B) for t, d, r in zip(rowed, rowed_dims, row_dims)]
        outputs = function.apply(fold_run(run, B), *folded, *params)
        result = tuple(None if r is None or o is None else o.unflatten(r, (-1, B))
                       for o, r in zip(outputs, out_row_dims))
        return result, tuple(None if o is None else r + 1 for o, r in zip(result, out_row_dims))

    def pick(t, d, b):
        return t if t is None or d is None else t.select(d, b)

    per_example = [function.apply(_run_tensors(run, lambda t, d, rows: pick(t, d, b)),
                                  *(pick(t, d, b) for t, d in zip(rowed, rowed_dims)),
                                  *(pick(t, d, b) for t, d in zip(params, param_dims))) for b in range(B)]
    result = tuple(None if r is None or parts[0] is None else torch.stack(parts)
                   for parts, r in zip(zip(*per_example), out_row_dims))
    return result, tuple(None if o is None else 0 for o in result)
