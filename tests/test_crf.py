"""LinearChainCRF against brute force over every tag path: partition function, path score, NLL, Viterbi;
masking equal to the unpadded sequence; finite gradients and gradcheck; input checks."""

import itertools
import math

import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.models import LinearChainCRF

C = 3


def random_crf(seed=0, num_tags=C):
    """A CRF with random transition scores (a fresh one has zeros, which would hide mistakes)."""
    torch.manual_seed(seed)
    crf = LinearChainCRF(num_tags).double()
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    return crf


def path_score(crf, emissions, path):
    """score(y) for one unpadded sequence, term by term as the module docstring writes it."""
    total = crf.start_transitions[path[0]] + emissions[0, path[0]]
    for t in range(1, len(path)):
        total = total + crf.transitions[path[t - 1], path[t]] + emissions[t, path[t]]
    return total + crf.end_transitions[path[-1]]


def brute_force(crf, emissions):
    """(log Z, best path) over all C^T paths of one sequence's emissions (T, C)."""
    paths = list(itertools.product(range(crf.num_tags), repeat=emissions.size(0)))
    scores = torch.stack([path_score(crf, emissions, path) for path in paths])  # (C^T,)
    return torch.logsumexp(scores, 0), list(paths[int(scores.argmax())])


@pytest.mark.parametrize("length", [1, 2, 3, 5])
def test_forward_algorithm_equals_brute_force_partition_function(length):
    crf = random_crf(length)
    emissions = torch.randn(2, length, C, dtype=torch.float64)  # (N, L, C)
    log_z = crf.log_partition(emissions)  # (N,)
    for n in range(2):
        torch.testing.assert_close(log_z[n], brute_force(crf, emissions[n])[0])


@pytest.mark.parametrize("length", [1, 2, 4, 5])
def test_viterbi_equals_brute_force_argmax(length):
    crf = random_crf(10 + length)
    emissions = torch.randn(3, length, C, dtype=torch.float64)
    decoded = crf.decode(emissions)  # (N, L)
    for n in range(3):
        assert decoded[n].tolist() == brute_force(crf, emissions[n])[1]


def test_score_and_nll_equal_brute_force():
    crf = random_crf(1)
    emissions = torch.randn(2, 4, C, dtype=torch.float64)
    tags = torch.tensor([[0, 2, 1, 1], [2, 2, 0, 1]])
    nll = crf(emissions, tags)  # (N,)
    for n in range(2):
        score = path_score(crf, emissions[n], tags[n].tolist())
        torch.testing.assert_close(crf.score(emissions, tags)[n], score)
        torch.testing.assert_close(nll[n], brute_force(crf, emissions[n])[0] - score)
    assert (nll > 0).all()  # -log of a probability below 1


def test_padded_rows_equal_their_unpadded_sequences():
    crf = random_crf(2)
    lengths = [4, 1, 3]
    emissions = torch.randn(3, 4, C, dtype=torch.float64) * 10  # large scores on padding would show
    tags = torch.randint(0, C, (3, 4))
    tags[1, 1:] = -1  # tags on padding are ignored, even invalid ones
    mask = torch.arange(4) < torch.tensor(lengths).unsqueeze(1)  # (N, L)
    nll, log_z, decoded = crf(emissions, tags, mask), crf.log_partition(emissions, mask), crf.decode(emissions, mask)
    for n, length in enumerate(lengths):
        alone = emissions[n:n + 1, :length]
        torch.testing.assert_close(nll[n:n + 1], crf(alone, tags[n:n + 1, :length]))
        torch.testing.assert_close(log_z[n:n + 1], crf.log_partition(alone))
        assert decoded[n, :length].tolist() == crf.decode(alone)[0].tolist()
        assert (decoded[n, length:] == -1).all()


def test_nll_gradients_are_finite_and_match_finite_differences():
    crf = random_crf(3)
    emissions = (torch.randn(2, 4, C, dtype=torch.float64) * 30).requires_grad_()  # large scores: log space must hold
    tags = torch.randint(0, C, (2, 4))
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    crf(emissions, tags, mask).sum().backward()
    for tensor in [emissions, *crf.parameters()]:
        assert torch.isfinite(tensor.grad).all()
    small = torch.randn(2, 3, C, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: crf(e, tags[:, :3], mask[:, :3]), (small,))


def test_untrained_crf_decodes_as_per_step_argmax():
    crf = LinearChainCRF(4)
    emissions = torch.randn(2, 5, 4)
    assert torch.equal(crf.decode(emissions), emissions.argmax(2))


def test_log_partition_holds_for_long_sequences_of_large_scores():
    crf = random_crf(4)
    emissions = torch.randn(1, 200, C, dtype=torch.float64) * 50
    log_z = crf.log_partition(emissions)
    assert math.isfinite(log_z.item())
    assert log_z.item() >= crf.score(emissions, crf.decode(emissions)).item()  # Z sums the best path and more


@pytest.mark.parametrize("mask, message", [
    (torch.tensor([[False, True, True]]), "at least one real step"),
    (torch.tensor([[True, False, True]]), "prefix"),
    (torch.tensor([[True, True]]), "mask must be"),
])
def test_bad_masks_are_input_errors(mask, message):
    with pytest.raises(InputError, match=message):
        LinearChainCRF(C).log_partition(torch.randn(1, 3, C), mask)


def test_bad_shapes_and_tags_are_input_errors():
    crf = LinearChainCRF(C)
    with pytest.raises(InputError, match="emissions must be"):
        crf.decode(torch.randn(1, 3, C + 1))
    with pytest.raises(InputError, match="tags must be"):
        crf(torch.randn(1, 3, C), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        crf(torch.randn(1, 3, C), torch.tensor([[0, 1, 3]]))
