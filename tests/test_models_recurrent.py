"""rnnkit.models.recurrent's engine helpers: the registry's names, a model moved onto another engine all at once or
not at all, and an engine that cannot run a cell or an option refused in one InputError before anything is built."""

import pytest
import torch
from torch import nn

from rnnkit.errors import InputError
from rnnkit.models import LanguageModel
from rnnkit.models.recurrent import check_engine, check_runs_on, engine_choices, recurrent_layer, use_engine
from rnnkit.nn import engine_names


def test_engine_choices_are_auto_and_the_registry():
    assert engine_choices() == ("auto", *engine_names())
    with pytest.raises(InputError, match="unknown engine 'warp'; choose one of auto, fused, "):
        check_engine("warp")


def test_use_engine_moves_every_layer_of_a_model():
    model = LanguageModel(10, hidden_size=4, num_layers=2, embedding_dim=4)
    x = torch.randint(0, 10, (2, 5))
    before = model(x)[0]
    assert use_engine(model, "explicit") is model and model.rnn.engine == "explicit"
    torch.testing.assert_close(model(x)[0], before)
    assert model.config.engine == "auto"  # what the checkpoint says is left alone


def test_use_engine_is_all_or_nothing():
    model = nn.Sequential(recurrent_layer("lstm", 2, 3, engine="explicit"),
                          recurrent_layer("lstm", 3, 3, engine="explicit", zoneout=0.1))
    with pytest.raises(InputError, match="zoneout needs engine='explicit'"):
        use_engine(model, "fused")
    assert [layer.engine for layer in model] == ["explicit", "explicit"]


def test_check_runs_on_draws_nothing_and_names_the_fix():
    state = torch.random.get_rng_state()
    check_runs_on("mingru", "scan")
    check_runs_on("lstm", "explicit", zoneout=0.1, forget_bias=1.0)
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(InputError, match="scan engine runs linear recurrences only"):
        check_runs_on("gru", "scan")
    with pytest.raises(InputError, match="'layernorm_lstm' has no fused PyTorch kernel"):
        check_runs_on("layernorm_lstm", "fused")
