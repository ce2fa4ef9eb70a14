r"""``check_cell(name)``: does a cell's hand-written backward agree with its own equations?

The test a researcher runs after writing a cell: on small float64 problems it runs the cell on rnnkit's
fast engines (the explicit engine, and the scan engine for linear cells) and on the reference engine (the
cell's ``reference_step`` under autograd), two layers, both directions, padded and packed input, and compares
outputs, final states and the gradients of the input, the initial state and every parameter; then it runs
``torch.autograd.gradcheck`` (central differences) on the explicit engine.

    >>> from rnnkit.nn.check import check_cell
    >>> check_cell("gru") < 1e-10
    True
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_sequence

from .cells import get_cell
from .layer import Recurrent


def _flat(result) -> list[torch.Tensor]:
    output, state = result
    out = output.data if isinstance(output, PackedSequence) else output
    return [out, *(state if isinstance(state, tuple) else (state,))]


def _compare(name: str, engine: str, packed: bool, seed: int) -> float:
    torch.manual_seed(seed)
    ours = Recurrent(name, 3, 4, num_layers=2, bidirectional=True, engine=engine, dtype=torch.float64)
    reference = Recurrent(name, 3, 4, num_layers=2, bidirectional=True, engine="reference", dtype=torch.float64)
    reference.load_state_dict(ours.state_dict())
    if packed:
        leaves = [torch.randn(n, 3, dtype=torch.float64, requires_grad=True) for n in (3, 5, 2)]
    else:
        leaves = [torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)]
    states = [torch.randn(4, 3, size, dtype=torch.float64, requires_grad=True) for size in ours.cell.state_sizes()]
    hx = tuple(states) if len(states) == 2 else states[0]
    worst = 0.0
    results = []
    for layer in (ours, reference):
        x = pack_sequence(leaves, enforce_sorted=False) if packed else leaves[0]
        outputs = _flat(layer(x, hx))
        generator = torch.Generator().manual_seed(seed)
        loss = sum((o * torch.randn(o.shape, generator=generator, dtype=o.dtype)).sum() for o in outputs)
        grads = torch.autograd.grad(loss, [*leaves, *states, *layer.parameters()], allow_unused=True)
        results.append((outputs, grads))
    for got, want in zip(*(o + list(g) for o, g in results), strict=True):
        if (got is None) != (want is None):
            raise AssertionError(f"cell {name!r} on the {engine} engine: a gradient is missing on one side")
        if got is not None:
            got, want = got.detach(), want.detach()
            worst = max(worst, float((got - want).abs().max()) / (1.0 + float(want.abs().max())))
    return worst


def check_cell(name: str, tolerance: float = 1e-10) -> float:
    """Check a registered cell's fast engines against its reference equations; AssertionError naming what
    disagrees, else the largest relative difference seen."""
    cell = get_cell(name)
    engines = ["explicit", "scan"] if cell.linear else ["explicit"]
    worst = 0.0
    for engine in engines:
        for packed in (False, True):
            difference = _compare(name, engine, packed, seed=len(name) + packed)
            if difference > tolerance:
                kind = "packed" if packed else "padded"
                raise AssertionError(f"cell {name!r} on the {engine} engine differs from its reference equations by "
                                     f"{difference:.3g} ({kind} input): check its workspace's step and step_backward")
            worst = max(worst, difference)
    torch.manual_seed(0)
    layer = Recurrent(name, 3, 4, engine="explicit", dtype=torch.float64)
    params = dict(layer.named_parameters())
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *weights):
        return torch.func.functional_call(layer, dict(zip(params, weights)), (x,))[0]

    if not torch.autograd.gradcheck(run, (x, *params.values()), eps=1e-6, atol=1e-7, raise_exception=False,
                                    nondet_tol=1e-12):
        raise AssertionError(f"cell {name!r}: the explicit engine's gradient disagrees with central differences")
    return worst
