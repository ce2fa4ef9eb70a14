"""Many-to-one models: shapes, padding never read (every pooling, both directions, both engines), pooling
equations, one-to-one as a single recurrent step, configuration checks."""

import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.models import RecurrentEncoder, SequenceClassifier, SequenceRegressor

V, C = 20, 3


def padded_tokens(lengths, seed=0):
    """(N, L_max) ids with random non-padding ids past each length, so that reading them would show."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, V, (len(lengths), max(lengths)), generator=generator)


@pytest.mark.parametrize("cell, bidirectional, pooling", [
    ("lstm", True, "last"), ("gru", False, "mean"), ("rnn", True, "max"), ("rnn", False, "last"),
])
def test_logits_have_one_row_per_sequence(cell, bidirectional, pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(C, vocab_size=V, embedding_dim=5, hidden_size=6, cell=cell, num_layers=2,
                               bidirectional=bidirectional, pooling=pooling)
    assert model(padded_tokens([4, 2, 3])).shape == (3, C)
    assert model(padded_tokens([4, 2, 3]), torch.tensor([4, 2, 3])).shape == (3, C)


def test_float_features_give_one_row_per_sequence():
    torch.manual_seed(0)
    model = SequenceRegressor(2, input_size=4, hidden_size=6, cell="gru")
    assert model(torch.randn(5, 7, 4)).shape == (5, 2)
    assert model(torch.randn(5, 7, 4, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.parametrize("engine, cell", [("fused", "lstm"), ("explicit", "gru")])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_padded_batch_equals_each_sequence_alone(engine, cell, bidirectional, pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(C, vocab_size=V, embedding_dim=5, hidden_size=6, cell=cell, num_layers=2,
                               bidirectional=bidirectional, pooling=pooling, engine=engine).double()
    lengths = [3, 6, 1, 4]
    tokens = padded_tokens(lengths)
    batched = model(tokens, torch.tensor(lengths))  # (N, C)
    for n, length in enumerate(lengths):
        alone = model(tokens[n:n + 1, :length])  # (1, C)
        torch.testing.assert_close(batched[n:n + 1], alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_padded_features_equal_each_sequence_alone(pooling):
    torch.manual_seed(0)
    model = SequenceRegressor(input_size=2, hidden_size=5, bidirectional=True, pooling=pooling).double()
    lengths = [2, 5, 3]
    x = torch.randn(3, 5, 2, dtype=torch.float64) * 100  # large padding values would change any read
    batched = model(x, torch.tensor(lengths))
    for n, length in enumerate(lengths):
        torch.testing.assert_close(batched[n], model(x[n:n + 1, :length])[0], rtol=1e-10, atol=1e-12)


def test_bidirectional_final_state_joins_forward_end_and_backward_start():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(3, 4, cell="lstm", num_layers=2, bidirectional=True).double()
    x, lengths = torch.randn(2, 5, 3, dtype=torch.float64), torch.tensor([5, 3])
    outputs, final = encoder(x, lengths)  # (N, L, 8), (N, 8)
    for n, length in enumerate(lengths.tolist()):
        forward_end = outputs[n, length - 1, :4]  # the forward direction has read the whole sequence
        backward_end = outputs[n, 0, 4:]  # the backward direction ends at the first step
        torch.testing.assert_close(final[n], torch.cat([forward_end, backward_end]))
        assert torch.all(outputs[n, length:] == 0)  # padded steps are zero, never a computed state


def test_mean_and_max_pool_over_the_real_steps_only():
    torch.manual_seed(0)
    kwargs = dict(vocab_size=V, embedding_dim=4, hidden_size=5)
    mean_model = SequenceClassifier(C, pooling="mean", **kwargs).double()
    max_model = SequenceClassifier(C, pooling="max", **kwargs).double()
    max_model.load_state_dict(mean_model.state_dict())
    tokens, lengths = padded_tokens([2, 4]), torch.tensor([2, 4])
    outputs, _ = mean_model.encoder(mean_model.embedding(tokens), lengths)  # (N, L, H)
    for n, length in enumerate(lengths.tolist()):
        real = outputs[n, :length]  # (T, H)
        torch.testing.assert_close(mean_model(tokens, lengths)[n], mean_model.head(real.mean(0)))
        torch.testing.assert_close(max_model(tokens, lengths)[n], max_model.head(real.amax(0)))


def test_one_to_one_is_a_single_step_of_the_cell():
    """Length-1 sequences: y = W tanh(W_ih x + b_ih + b_hh) + b, with no recurrence (hours studied → score)."""
    torch.manual_seed(0)
    model = SequenceRegressor(input_size=1, hidden_size=8, cell="rnn")
    hours = torch.tensor([[[10.0]], [[2.0]]])  # (N=2, L=1, F=1)
    rnn = model.encoder.rnn
    hidden = torch.tanh(hours[:, 0] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + rnn.bias_hh_l0)  # (N, 8)
    torch.testing.assert_close(model(hours), model.head(hidden))


def test_config_rebuilds_the_same_architecture():
    model = SequenceClassifier(4, vocab_size=V, hidden_size=6, bidirectional=True, pooling="mean", cell="gru")
    rebuilt = SequenceClassifier(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == model.config
    assert SequenceRegressor(**SequenceRegressor(3, input_size=2).config).num_outputs == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "exactly one"),
    (dict(vocab_size=V, input_size=3), "exactly one"),
    (dict(vocab_size=V, pooling="sum"), "unknown pooling"),
    (dict(vocab_size=V, cell="tree"), "unknown cell"),
    (dict(vocab_size=V, engine="fast"), "unknown engine"),
    (dict(vocab_size=V, dropout=1.0), "dropout"),
    (dict(vocab_size=V, hidden_size=0), "hidden_size"),
    (dict(vocab_size=V, padding_idx=V), "padding_idx"),
])
def test_bad_configuration_is_one_input_error_line(kwargs, message):
    with pytest.raises(InputError, match=message) as caught:
        SequenceClassifier(2, **kwargs)
    assert "\n" not in str(caught.value)


def test_bad_inputs_are_input_errors():
    tokens_model = SequenceClassifier(2, vocab_size=V, hidden_size=4)
    features_model = SequenceRegressor(input_size=3, hidden_size=4)
    with pytest.raises(InputError, match="token ids"):
        tokens_model(torch.randn(2, 5, 3))
    with pytest.raises(InputError, match=r"\(N, L, 3\)"):
        features_model(torch.randn(2, 5, 2))
    with pytest.raises(InputError, match="lengths must lie in"):
        tokens_model(padded_tokens([3, 3]), torch.tensor([3, 0]))
    with pytest.raises(InputError, match="one per sequence"):
        tokens_model(padded_tokens([3, 3]), torch.tensor([3]))
