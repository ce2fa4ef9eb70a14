"""The piano-roll model: exact NLL on hand-computable models, NADE as a proper distribution over all 2^P
frames, exact sampling, reproducible generation with the state carried, and clear errors."""

import itertools
import math

import numpy as np
import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.nn import cell_names
from rnnkit.models.music import PianoRollConfig, PianoRollModel
from rnnkit.tasks.music import score_rolls

P = 5


def all_frames(p: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=p)))  # (2^p, p)


def constant_bernoulli(bias: list[float]) -> PianoRollModel:
    """A model whose every frame has P(v_p = 1) = σ(bias_p), whatever came before."""
    model = PianoRollModel(len(bias), "bernoulli", hidden_size=3).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.frame.linear.bias.copy_(torch.tensor(bias))
    return model


def test_the_nll_per_step_is_the_literature_formula_on_a_hand_computable_model():
    bias = [-1.0, 0.5, 2.0]
    model = constant_bernoulli(bias)
    pieces = [np.array([[1, 0, 1], [0, 0, 0]], dtype=np.uint8), np.array([[1, 1, 1], [0, 1, 0], [0, 0, 1]], dtype=np.uint8)]
    on = [1 / (1 + math.exp(-b)) for b in bias]
    # −log P(v_t | v_<t) summed over all pitches, averaged over all 5 frames of both pieces
    nll = sum(-math.log(on[p] if v[p] else 1 - on[p]) for piece in pieces for v in piece for p in range(3)) / 5
    scores = score_rolls(model, pieces, batch_size=1)
    assert scores["nll_per_step"] == pytest.approx(nll, rel=1e-6)
    assert scores["steps"] == 5 and scores["pieces"] == 2
    # padding in a batch changes nothing
    assert score_rolls(model, pieces, batch_size=2)["nll_per_step"] == pytest.approx(nll, rel=1e-6)
    # predicted frame: pitches 1 and 2 on (σ > 1/2), pitch 0 off, every step
    true = np.concatenate(pieces)
    tp = true[:, 1:].sum()
    fp = (1 - true[:, 1:]).sum()
    fn = true[:, 0].sum()
    assert scores["frame_accuracy"] == pytest.approx(tp / (tp + fp + fn))


@pytest.mark.parametrize("output", ["bernoulli", "nade"])
def test_the_probabilities_of_all_frames_sum_to_one(output):
    torch.manual_seed(0)
    model = PianoRollModel(6, output, hidden_size=8, nade_hidden=5).eval()
    h = torch.randn(4, 1, 8) * 3  # (4 states, 1, H)
    frames = all_frames(6)  # (64, 6)
    log_probs = model.frame.log_prob(h.expand(4, 64, 8), frames.expand(4, 64, 6))  # (4, 64)
    assert torch.allclose(torch.logsumexp(log_probs, dim=1), torch.zeros(4), atol=1e-5)


def test_the_nade_log_probability_equals_its_pitch_by_pitch_definition():
    torch.manual_seed(1)
    model = PianoRollModel(P, "nade", hidden_size=6, nade_hidden=4).eval()
    nade = model.frame
    h = torch.randn(6)
    v = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    with torch.no_grad():
        b_v, b_g = nade.visible_bias(h), nade.hidden_bias(h)
        log_prob = nade.log_prob(h, v).item()
    expected = 0.0
    for p in range(P):
        g = torch.sigmoid(b_g + nade.W[:, :p].detach() @ v[:p])
        on = torch.sigmoid(b_v[p] + nade.V[p].detach() @ g).item()
        expected += math.log(on if v[p] else 1 - on)
    assert log_prob == pytest.approx(expected, abs=1e-5)


def test_the_nade_greedy_frame_takes_the_more_likely_value_pitch_by_pitch():
    torch.manual_seed(2)
    nade = PianoRollModel(P, "nade", hidden_size=6, nade_hidden=4).eval().frame
    h = torch.randn(6) * 2
    chosen = torch.zeros(P)
    for p in range(P):
        z = nade.logits(h, chosen)[p]  # the logit of pitch p depends on the pitches below it only
        chosen[p] = float(z > 0)
    assert torch.equal(nade.most_likely(h), chosen)


@pytest.mark.parametrize("output", ["bernoulli", "nade"])
def test_sampling_draws_from_the_model_distribution(output):
    torch.manual_seed(3)
    model = PianoRollModel(3, output, hidden_size=4, nade_hidden=4).eval()
    h = torch.randn(4)
    draws = model.frame.sample(h.expand(40_000, 4), generator=torch.Generator().manual_seed(0))  # (40000, 3)
    frames = all_frames(3)
    exact = model.frame.log_prob(h.expand(8, 4), frames).exp()  # (8,)
    counts = torch.stack([(draws == frame).all(1).float().mean() for frame in frames])
    assert torch.allclose(counts, exact, atol=0.012)


@pytest.mark.parametrize("output", ["bernoulli", "nade"])
def test_a_piece_step_by_step_with_the_state_carried_scores_as_the_whole(output):
    torch.manual_seed(4)
    model = PianoRollModel(P, output, hidden_size=7, num_layers=2, nade_hidden=3).eval()
    roll = torch.randint(0, 2, (1, 9, P)).float()
    whole = model(roll)  # (1, 9)
    x, state, parts = model.inputs(roll), None, []
    for t in range(9):
        h, state = model.hidden(x[:, t : t + 1], state)
        parts.append(model.frame.log_prob(h, roll[:, t : t + 1]))
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-5)


@pytest.mark.parametrize("output", ["bernoulli", "nade"])
def test_with_lengths_the_padding_costs_nothing_and_changes_nothing(output):
    torch.manual_seed(7)
    model = PianoRollModel(P, output, hidden_size=6, nade_hidden=3).eval()
    rolls = torch.randint(0, 2, (3, 6, P)).float()
    lengths = torch.tensor([6, 2, 4])
    log_probs = model(rolls, lengths)  # (3, 6)
    for n, length in enumerate(lengths.tolist()):
        assert torch.allclose(log_probs[n, :length], model(rolls[n : n + 1, :length])[0], atol=1e-6)
        assert not log_probs[n, length:].any()


@pytest.mark.parametrize("output", ["bernoulli", "nade"])
def test_generation_is_reproducible_with_a_seed_and_keeps_the_prime(output):
    torch.manual_seed(5)
    model = PianoRollModel(P, output, hidden_size=8, nade_hidden=4).eval()
    prime = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 0]])

    def draw(seed):
        return model.sample(20, prime, temperature=1.0, generator=torch.Generator().manual_seed(seed))

    first = draw(0)
    assert first.shape == (22, P) and torch.equal(first[:2], prime)
    assert torch.equal(first, draw(0))
    assert not torch.equal(first, draw(1))
    assert model.sample(3).shape == (3, P)


@pytest.mark.parametrize("cell", cell_names())
def test_every_cell_trains_a_step(cell):
    torch.manual_seed(6)
    model = PianoRollModel(P, "nade", cell=cell, hidden_size=6, num_layers=2, dropout=0.2, nade_hidden=3)
    loss = -model(torch.randint(0, 2, (2, 4, P)).float()).sum()
    loss.backward()
    assert all(parameter.grad is not None for parameter in model.parameters())


def test_mistakes_fail_with_one_line():
    with pytest.raises(InputError, match="unknown output 'rbm'; choose one of bernoulli, nade"):
        PianoRollModel(P, "rbm")
    with pytest.raises(InputError, match="unknown cell"):
        PianoRollConfig(P, cell="transformer")
    with pytest.raises(InputError, match=r"rolls must be \(N, L, 5\) frames"):
        PianoRollModel(P)(torch.zeros(2, 3, 4))
    with pytest.raises(InputError, match="temperature must be > 0"):
        PianoRollModel(P).sample(3, temperature=0)
    with pytest.raises(InputError, match="no fused PyTorch kernel"):
        PianoRollModel(P, cell="layernorm_lstm", engine="fused")
    with pytest.raises(InputError, match="unknown keys"):
        PianoRollConfig.from_dict({"num_pitches": 3, "vocab_size": 4})
