"""LanguageModel: shapes, one-hot vs embedding, weight tying, initialisation, engines, config."""

import json

import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.streams import StreamBatcher
from rnnkit.errors import InputError
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.nn import detach_state

V, H = 11, 6


def tokens(N=3, L=7, seed=0):
    return torch.randint(0, V, (N, L), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embedding_dim", [0, 4])
def test_shapes_of_logits_and_state(cell, embedding_dim):
    torch.manual_seed(0)
    model = LanguageModel(V, cell=cell, hidden_size=H, num_layers=2, embedding_dim=embedding_dim)
    logits, state = model(tokens())
    assert logits.shape == (3, 7, V)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (2, 3, H)
    if cell == "lstm":
        assert state[1].shape == (2, 3, H)
    logits_again, _ = model(tokens(), state)  # a carried state is accepted
    assert not torch.equal(logits_again, logits)


def test_one_hot_input_feeds_the_token_ids_as_unit_vectors():
    torch.manual_seed(0)
    model = LanguageModel(V, hidden_size=H, num_layers=1)
    assert model.embedding is None and model.rnn.input_size == V
    x = tokens()
    expected, _ = model.rnn(F.one_hot(x, V).float())
    logits, _ = model(x)
    assert torch.allclose(logits, model.decoder(expected))


def test_embedding_input_goes_through_the_embedding():
    torch.manual_seed(0)
    model = LanguageModel(V, hidden_size=H, num_layers=1, embedding_dim=4)
    assert model.rnn.input_size == 4
    x = tokens()
    expected, _ = model.rnn(model.embedding(x))
    logits, _ = model(x)
    assert torch.allclose(logits, model.decoder(expected))


def test_tied_weights_are_one_parameter():
    model = LanguageModel(V, hidden_size=H, embedding_dim=H, tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    assert sum(p is model.embedding.weight for p in model.parameters()) == 1
    logits, _ = model(tokens())
    logits.sum().backward()
    assert model.embedding.weight.grad is not None


@pytest.mark.parametrize("embedding_dim", [0, 4])
def test_tying_needs_embedding_dim_equal_to_hidden_size(embedding_dim):
    with pytest.raises(InputError, match="embedding_dim == hidden_size"):
        LanguageModel(V, hidden_size=H, embedding_dim=embedding_dim, tie_weights=True)


def test_init_range_sets_every_parameter_uniform_in_range():
    torch.manual_seed(0)
    model = LanguageModel(50, hidden_size=40, embedding_dim=30, init_range=0.1)
    for name, parameter in model.named_parameters():
        assert parameter.abs().max() <= 0.1, name
        assert parameter.abs().max() > 0.09, name  # spread over the whole range, not left at a default


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = LanguageModel(V, hidden_size=H, embedding_dim=4, dropout=0.5)
    x = tokens()
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_and_explicit_engines_give_the_same_logits_and_gradients(cell):
    torch.manual_seed(0)
    fused = LanguageModel(V, cell=cell, hidden_size=H, num_layers=2, embedding_dim=4, engine="fused")
    explicit = LanguageModel(V, cell=cell, hidden_size=H, num_layers=2, embedding_dim=4, engine="explicit")
    explicit.load_state_dict(fused.state_dict())
    x = tokens()
    a, _ = fused(x)
    b, _ = explicit(x)
    assert torch.allclose(a, b, atol=1e-5)
    a.square().sum().backward()
    b.square().sum().backward()
    for (name, p), q in zip(fused.named_parameters(), explicit.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4), name


def test_chunked_stream_with_carried_state_equals_the_whole_sequence():
    torch.manual_seed(0)
    model = LanguageModel(V, hidden_size=H, embedding_dim=4).eval()
    ids = torch.randint(0, V, (61,))
    batcher = StreamBatcher(ids, batch_size=2, seq_len=5)
    whole, _ = model(batcher.inputs)  # (N, S, V)
    state, chunks = None, []
    for inputs, _ in batcher:
        logits, state = model(inputs, state)
        chunks.append(logits)
        state = detach_state(state)
    assert torch.allclose(torch.cat(chunks, dim=1), whole, atol=1e-6)


def test_config_round_trips_through_json_and_rebuilds_the_same_model():
    model = LanguageModel(V, cell="gru", hidden_size=H, num_layers=3, embedding_dim=H, dropout=0.25,
                          tie_weights=True, engine="explicit", init_range=0.05)
    saved = json.loads(json.dumps(model.config.to_dict()))
    rebuilt = LanguageModel.from_config(saved)
    assert rebuilt.config == model.config
    assert isinstance(model.config, LanguageModelConfig)
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    assert torch.equal(model(tokens())[0], rebuilt(tokens())[0])
    assert LanguageModel.from_config(model.config).config == model.config


def test_config_from_dict_rejects_foreign_configs():
    with pytest.raises(InputError, match="unknown keys"):
        LanguageModelConfig.from_dict({"vocab_size": V, "n_head": 4})
    with pytest.raises(InputError, match="no vocab_size"):
        LanguageModelConfig.from_dict({"cell": "lstm"})


@pytest.mark.parametrize("bad", [
    {"cell": "transformer"}, {"engine": "cuda"}, {"hidden_size": 0}, {"num_layers": 0},
    {"embedding_dim": -1}, {"dropout": 1.0}, {"init_range": 0}, {"vocab_size": 0},
])
def test_bad_settings_are_input_errors(bad):
    with pytest.raises(InputError):
        LanguageModel(**{"vocab_size": V, **bad})
