"""rnnkit.models.size: a model's parameter count, and a cell's counted from its parameter list before building."""

import pytest
from torch import nn

from rnnkit.errors import InputError
from rnnkit.models.size import cell_parameter_count, parameter_count
from rnnkit.nn import Recurrent, cell_names


def test_a_shared_parameter_is_counted_once():
    embedding = nn.Embedding(10, 4)
    decoder = nn.Linear(4, 10)
    decoder.weight = embedding.weight  # tied weights, as a language model's
    assert parameter_count(nn.ModuleList([embedding, decoder])) == 10 * 4 + 10


@pytest.mark.parametrize("cell", cell_names())
def test_a_cell_counted_before_building_is_the_layer_built(cell):
    assert cell_parameter_count(cell, hidden_size=6, input_size=5) == parameter_count(Recurrent(cell, 5, 6))


def test_an_unknown_cell_is_one_line():
    with pytest.raises(InputError, match="unknown cell 'tree'"):
        cell_parameter_count("tree", 4, 4)
