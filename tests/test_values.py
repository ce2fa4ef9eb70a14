"""Values at the edge (issue 26), in the library: a forget-gate bias that is not finite or absurdly large is a
ValueError naming ``forget_bias``; sampling works at any temperature > 0 (1e-300 is greedy decoding, not nan);
CSV rows are read strictly, naming the line where a quote opened."""

import math

import pytest
import torch

from rnnkit.checks import FORGET_BIAS_LIMIT
from rnnkit.data.reading import csv_rows
from rnnkit.errors import InputError
from rnnkit.generate import tempered
from rnnkit.models.music import _tempered_sigmoid
from rnnkit.nn import LSTM, Recurrent


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -(FORGET_BIAS_LIMIT + 1)])
def test_a_forget_bias_that_is_not_finite_or_absurd_is_refused_by_name(value):
    with pytest.raises(ValueError, match="forget_bias"):
        Recurrent("lstm", 4, 4, forget_bias=value)
    with pytest.raises(ValueError, match="forget_bias"):
        LSTM(4, 4, forget_bias=value)


def test_a_forget_bias_within_the_limit_is_added_and_the_output_finite():
    layer = Recurrent("lstm", 4, 4, forget_bias=FORGET_BIAS_LIMIT)
    output, _ = layer(torch.randn(3, 5, 4))  # (T, N, H)
    assert torch.isfinite(output).all()


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-45])
def test_a_tiny_temperature_is_greedy_decoding(temperature):
    scores = torch.tensor([0.5, 3.0, -2.0, 2.999])  # (V,)
    probs = tempered(scores, temperature)
    assert torch.equal(probs, torch.tensor([0.0, 1.0, 0.0, 0.0]))
    tied = tempered(torch.tensor([1.0, 4.0, 4.0]), temperature)  # a tie splits the mass, as the limit does
    assert torch.allclose(tied, torch.tensor([0.0, 0.5, 0.5]))
    assert torch.equal(tempered(scores, temperature, top_k=2), probs)


def test_a_huge_temperature_is_uniform_and_one_is_the_softmax():
    scores = torch.tensor([[0.5, 3.0, -2.0], [1.0, 1.0, 9.0]])  # (N, V)
    assert torch.allclose(tempered(scores, 1e308), torch.full((2, 3), 1 / 3))
    assert torch.allclose(tempered(scores, 1.0), scores.softmax(dim=-1))


def test_the_music_sampler_is_finite_at_a_tiny_temperature():
    z = torch.tensor([-1.0, 0.0, 2.0])  # (P,)
    assert torch.equal(_tempered_sigmoid(z, 1e-300), torch.tensor([0.0, 0.5, 1.0]))


def test_csv_rows_name_their_lines_and_the_line_where_a_quote_opened():
    text = 'a,b\n"x\ny",1\n\nz,2\n'
    assert list(csv_rows(text, "t.csv")) == [(1, 1, ["a", "b"]), (2, 3, ["x\ny", "1"]), (4, 4, []),
                                             (5, 5, ["z", "2"])]
    with pytest.raises(InputError, match=r"^t\.csv:3: a quote opened in this row is never closed"):
        list(csv_rows('a,b\nc,1\n"d,2\ne,3\n', "t.csv"))
