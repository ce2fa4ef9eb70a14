r"""How much of the first input is left in the hidden state after t steps, and how saturated the gates are.

The seeds' example: after reading "What time is it?", how much of "What" does the hidden state still hold?
Two measures, for the top layer's h_t, t = 1..L:

* ``jacobian``: ‖∂h_t/∂x_1‖ (Frobenius norm of the H_out × H_in Jacobian), computed exactly with
  forward-mode autodiff (``torch.func.jacfwd``): how strongly a small change of x_1 moves h_t.
* ``replacement``: ‖h_t − h_t'‖, where h' is the same run with x_1 replaced by another input (another
  word, another character): what a real change of the first input still changes at step t.

Both are 0 exactly when h_t does not depend on x_1 (for example, with W_hh = 0 a tanh RNN forgets x_1 after one
step). The difference of two runs cannot go below the rounding of h_t itself (about 1e-16 ‖h_t‖ in float64),
while the Jacobian, a product of step derivatives, can fall much further.

Gate saturation (:func:`gate_saturation`): the fraction of (step, unit) pairs in which each sigmoid gate is
below 0.1 (nearly shut) or above 0.9 (nearly open), from :meth:`rnnkit.nn.LSTM.trace`. A forget gate open
near 1 keeps the cell state (and its gradient) across many steps; a saturated gate also passes almost no
gradient to its own weights.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

SATURATION_LOW = 0.1
SATURATION_HIGH = 0.9
# Trace gate names that are sigmoid gates (the others, the LSTM family's "cell" and the GRU family's "new",
# are tanh candidates).
SIGMOID_GATES = ("input", "forget", "output", "reset", "update")


@dataclass
class Influence:
    """The first input's influence on h_t, t = 1..L (index 0 is t = 1).

    Attributes:
        jacobian: (L,) float64, ‖∂h_t/∂x_1‖.
        replacement: (L,) float64, ‖h_t − h_t'‖ with x_1 replaced.
    """

    jacobian: Tensor
    replacement: Tensor


@contextmanager
def _differentiable(layer: nn.Module):
    """Run an rnnkit layer on an engine that forward-mode autodiff goes through for a while: PyTorch's kernels
    as they are, else the cell's reference equations (the explicit engine's hand-written backward has no
    forward mode). Every engine computes the same function."""
    engine = getattr(layer, "engine", "fused")
    if engine in ("fused", "reference"):
        yield
        return
    if getattr(layer, "bptt_window", None):
        raise ValueError("input influence needs the whole-sequence derivative; use a layer without bptt_window")
    layer.engine = "reference"
    try:
        yield
    finally:
        layer.engine = engine


def input_influence(layer: nn.Module, input: Tensor, replacement: Tensor) -> Influence:
    r"""‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ for one unbatched sequence.

    Args:
        layer: a recurrent layer with torch.nn's interface (any number of layers; h_t is the output, i.e.
            the top layer's hidden state, both directions for a bidirectional layer).
        input: (L, H_in), one sequence; x_1 = input[0].
        replacement: (H_in,), what replaces x_1 for the second measure.

    Example::

        >>> from rnnkit.nn import LSTM
        >>> lstm = LSTM(4, 8).double()
        >>> x = torch.randn(30, 4, dtype=torch.float64)
        >>> influence = input_influence(lstm, x, torch.randn(4, dtype=torch.float64))
        >>> influence.jacobian.shape
        torch.Size([30])
    """
    if input.dim() != 2 or replacement.shape != input.shape[1:]:
        raise ValueError(f"input must be (L, H_in) and replacement (H_in,), got {tuple(input.shape)} and "
                         f"{tuple(replacement.shape)}")
    rest = input[1:]  # (L-1, H_in)
    # A random initial state is drawn once, so that both runs (and every tangent) start from the same h_0.
    hx = layer._initial_state(input) if getattr(layer, "init_state", "zeros") != "zeros" else None

    def outputs(first: Tensor) -> Tensor:  # (H_in,) -> (L, H_out)
        return layer(torch.cat([first.unsqueeze(0), rest]), hx)[0]

    with _differentiable(layer), torch.no_grad(), warnings.catch_warnings():
        # torch.func's first call scripts a helper and warns that torch.jit.script is deprecated: not ours to fix
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated")
        jacobian = torch.func.jacfwd(outputs, randomness="same")(input[0])  # (L, H_out, H_in); "same": dropout, if on
        changed = outputs(input[0]) - outputs(replacement)  # (L, H_out)
    return Influence(jacobian=jacobian.flatten(1).norm(dim=1).double().cpu(),
                     replacement=changed.norm(dim=1).double().cpu())


def gate_saturation(layer: nn.Module, input: Tensor, low: float = SATURATION_LOW,
                    high: float = SATURATION_HIGH) -> dict[str, dict[str, float]]:
    """Fraction of (layer, step, unit) entries where each sigmoid gate is < ``low`` or > ``high``.

    Args:
        layer: any rnnkit layer; its cell's sigmoid gates are reported (LSTM family: input, forget, output;
            GRU family: reset, update); a plain RNN has no gates and gives ``{}``.
        input: what ``layer.trace`` takes, e.g. (L, H_in) for one sequence.

    Returns:
        ``{gate: {"below": fraction < low, "above": fraction > high}}``, in the layer's gate order.
    """
    trace = layer.trace(input)
    result = {}
    for name, values in trace.gates.items():
        if name in SIGMOID_GATES:
            result[name] = {"below": float((values < low).double().mean()),
                            "above": float((values > high).double().mean())}
    return result
