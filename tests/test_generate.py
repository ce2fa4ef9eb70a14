"""filter_logits (top-k, top-p) and sample (greedy, seeds, streaming, prime handling, checks)."""

import math

import pytest
import torch

from rnnkit.data.text import CharVocab, WordVocab
from rnnkit.errors import InputError
from rnnkit.generate import filter_logits, sample
from rnnkit.models import LanguageModel

TEXT = "the quick brown fox jumps over the lazy dog\nand runs away.\n"


class CountingModel(torch.nn.Module):
    """A LanguageModel that records every input it is given and whether it was in training mode."""

    def __init__(self, vocab_size):
        super().__init__()
        torch.manual_seed(0)
        self.model = LanguageModel(vocab_size, hidden_size=16, embedding_dim=8, num_layers=1)
        self.vocab_size = vocab_size
        self.calls = []

    def forward(self, tokens, state=None):
        self.calls.append((tokens.tolist(), self.training))
        return self.model(tokens, state)


@pytest.fixture
def char_setup():
    vocab = CharVocab.build(TEXT)
    return CountingModel(len(vocab)), vocab


# --- filter_logits ------------------------------------------------------------------------------

def test_top_k_keeps_exactly_k_even_with_ties():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    kept = filter_logits(logits, top_k=2).isfinite()
    assert kept[0].tolist() == [False, True, False, True, False]
    assert kept.sum(dim=-1).tolist() == [2, 2]
    assert torch.equal(filter_logits(logits, top_k=10), logits)  # k ≥ V keeps all
    assert torch.isfinite(logits).all()  # the input is not modified


@pytest.mark.parametrize("top_p, expected_kept", [(0.3, 1), (0.6, 2), (0.81, 3), (0.99, 4), (1.0, 4)])
def test_top_p_keeps_the_most_likely_tokens_up_to_mass_p(top_p, expected_kept):
    probs = torch.tensor([0.15, 0.5, 0.05, 0.3])
    kept = filter_logits(probs.log(), top_p=top_p).isfinite()
    order = [1, 3, 0, 2]  # most likely first
    assert kept.sum() == expected_kept
    assert all(kept[i] for i in order[:expected_kept])


def test_top_p_keeps_the_smallest_set_with_mass_at_least_p():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 30, generator=generator) * 2  # (N, V)
    probs = logits.softmax(-1)
    for top_p in (0.1, 0.5, 0.9):
        kept = filter_logits(logits, top_p=top_p).isfinite()  # (N, V)
        for row_probs, row_kept in zip(probs, kept):
            mass = row_probs[row_kept].sum()
            assert mass >= top_p - 1e-6
            if not row_kept.all():
                assert row_probs[row_kept].min() >= row_probs[~row_kept].max()  # the most likely ones
            assert mass - row_probs[row_kept].min() < top_p  # one fewer would not reach p


def test_top_p_applies_to_what_top_k_left():
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])
    # after top-2 the mass is renormalised to 4/7, 3/7: p=0.5 needs only the first
    assert filter_logits(probs.log(), top_k=2, top_p=0.5).isfinite().tolist() == [True, False, False, False]


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"top_k": 2.5}, {"top_p": 0}, {"top_p": 1.5}, {"top_p": -0.1}])
def test_filter_logits_rejects_bad_values(bad):
    with pytest.raises(InputError):
        filter_logits(torch.zeros(5), **bad)


# --- sample -------------------------------------------------------------------------------------

def test_greedy_is_deterministic_and_takes_the_argmax(char_setup):
    model, vocab = char_setup
    first = "".join(sample(model, vocab, prime="the ", length=20, greedy=True))
    second = "".join(sample(model, vocab, prime="the ", length=20, greedy=True, seed=123))
    assert first == second and len(first) == 20
    # replay: each generated character is the argmax after the prime and the characters before it
    ids = vocab.encode("the " + first)
    with torch.no_grad():
        logits, _ = model.model.eval()(ids[None, :-1])  # (1, T-1, V)
    assert torch.equal(logits[0, 3:].argmax(-1), ids[4:])


def test_top_k_of_one_is_greedy(char_setup):
    model, vocab = char_setup
    greedy = "".join(sample(model, vocab, prime="a", length=15, greedy=True))
    assert "".join(sample(model, vocab, prime="a", length=15, top_k=1, seed=5)) == greedy


def test_same_seed_same_text_different_seed_different_text(char_setup):
    model, vocab = char_setup
    texts = ["".join(sample(model, vocab, prime="the", length=60, temperature=1.5, seed=s)) for s in (7, 7, 8)]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_sampling_leaves_the_global_random_state_alone(char_setup):
    model, vocab = char_setup
    before = torch.get_rng_state()
    list(sample(model, vocab, length=10, seed=1))
    list(sample(model, vocab, length=10))
    assert torch.equal(torch.get_rng_state(), before)


def test_pieces_are_yielded_as_they_are_produced(char_setup):
    model, vocab = char_setup
    pieces = sample(model, vocab, prime="over", length=5, seed=0)
    assert model.calls == []  # nothing runs before the first piece is asked for
    first = next(pieces)
    assert len(first) == 1 and len(model.calls) == 1  # the prime only
    assert model.calls[0][0] == [vocab.encode("over").tolist()]
    next(pieces)
    assert len(model.calls) == 2
    assert model.calls[1][0] == [[vocab.encode(first).item()]]  # the drawn character fed back
    assert len(list(pieces)) == 3
    assert len(model.calls) == 5  # no forward pass after the last piece


def test_eval_mode_during_sampling_and_previous_mode_restored(char_setup):
    model, vocab = char_setup
    model.train()
    for _ in sample(model, vocab, length=3, seed=0):
        assert not model.training
        assert torch.is_grad_enabled()  # no_grad does not leak to the caller between pieces
    assert model.training and all(not training for _, training in model.calls)
    model.eval()
    list(sample(model, vocab, length=3, seed=0))
    assert not model.training


def test_empty_prime_starts_after_a_newline(char_setup):
    model, vocab = char_setup
    assert len(list(sample(model, vocab, length=4, seed=0))) == 4
    assert model.calls[0][0] == [[vocab.encode("\n").item()]]
    assert list(sample(model, vocab, length=0)) == []


def test_empty_prime_without_a_newline_in_the_vocabulary():
    vocab = CharVocab.build("abc")
    with pytest.raises(InputError, match="give a prime"):
        sample(CountingModel(len(vocab)), vocab)


def test_char_prime_outside_the_vocabulary_names_the_characters(char_setup):
    model, vocab = char_setup
    with pytest.raises(InputError) as excinfo:
        sample(model, vocab, prime="the Zebra!")
    assert "'Z', '!'" in str(excinfo.value)


def test_word_level_unknown_prime_words_are_fed_as_unk_and_pieces_join_like_decode():
    vocab = WordVocab.build(TEXT)
    model = CountingModel(len(vocab))
    pieces = list(sample(model, vocab, prime="the zebra jumps", length=12, seed=3))
    assert model.calls[0][0] == [[vocab.encode("the").item(), vocab.unk_id, vocab.encode("jumps").item()]]
    generated = [vocab.encode(p).item() for p in pieces]  # "\n" encodes to <eos>
    jumps = vocab.encode("jumps").item()
    assert "".join(pieces) == vocab.decode([jumps, *generated])[len("jumps"):]


def test_word_level_empty_prime_starts_after_eos():
    vocab = WordVocab.build(TEXT)
    model = CountingModel(len(vocab))
    first = next(sample(model, vocab, length=3, seed=0))
    assert model.calls[0][0] == [[vocab.eos_id]]
    assert not first.startswith(" ")  # the first word starts a line


@pytest.mark.parametrize("bad, fragment", [
    ({"length": -1}, "length"),
    ({"temperature": 0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": math.inf}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.01}, "top_p"),
])
def test_bad_arguments_raise_when_sample_is_called(char_setup, bad, fragment):
    model, vocab = char_setup
    with pytest.raises(InputError, match=fragment):
        sample(model, vocab, **bad)  # raised at the call, not at the first piece


def test_vocabulary_of_another_size_is_refused(char_setup):
    model, _ = char_setup
    with pytest.raises(InputError, match="vocabulary"):
        sample(model, CharVocab.build("xyz\n"))
