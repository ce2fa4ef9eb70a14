r"""One step of a layer-direction as an exported graph computes it, from the cell's reference equations.

With ``(h~, c~) = cell.reference_step(p, x_t, (h, c), h)`` (evaluation: no recurrent dropout, so h_in = h):

    zoneout p > 0 (evaluation):  h~ = p h + (1 − p) h~   (c~ alike), the expectation of the training-time mask
    mask m_t (N, 1) bool:        h' = m_t ? h~ : h,   y_t = m_t ? h' : 0   (c' alike)
    no mask:                     h' = h~,             y_t = h~

so a row past its length keeps its state and outputs zeros: PackedSequence's meaning. Both exports run this:
the ONNX Scan body (:mod:`rnnkit.export.onnx_step`) and the torch.export scan (:mod:`rnnkit.export.exported_program`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..nn.cells.base import Cell


def masked_step(cell: Cell, params: dict[str, Tensor], state: tuple[Tensor, ...], x_t: Tensor, m_t: Tensor | None,
                zoneout: float) -> tuple[tuple[Tensor, ...], Tensor]:
    """``(new_state, y_t)`` of one step (see the module); state (N, P) [and (N, H)], x_t (N, In)."""
    new, _ = cell.reference_step(params, x_t, state, state[0])
    if zoneout:
        new = tuple(zoneout * old + (1 - zoneout) * s for old, s in zip(state, new))
    if m_t is None:
        return new, new[0]
    new = tuple(torch.where(m_t, s, old) for s, old in zip(new, state))
    return new, torch.where(m_t, new[0], 0.0)  # y_t: 0 past the row's length
