"""diagnose.memory asks the cell protocol, so every registered cell can be looked into."""

import pytest
import torch

import rnnkit.nn as rn
from rnnkit.diagnose.memory import gate_saturation, input_influence


@pytest.mark.parametrize("name", rn.cell_names())
def test_input_influence_and_gate_saturation_for_every_cell(name):
    torch.manual_seed(0)
    layer = rn.Recurrent(name, 3, 5, engine="explicit", dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)
    influence = input_influence(layer, x, torch.randn(3, dtype=torch.float64))
    assert influence.jacobian.shape == (6,) and torch.isfinite(influence.jacobian).all()
    assert influence.jacobian[0] > 0
    assert layer.engine == "explicit"  # restored
    saturation = gate_saturation(layer, x)
    assert set(saturation) <= set(layer.cell.gate_names)
