"""Greedy and beam search: beam 1 is greedy, beam search finds what greedy misses, scores are the model's log
probabilities of what was written, end-of-sequence and max-length handling, length normalisation, batching."""

import doctest
import math

import pytest
import torch

import rnnkit.models.decoding as decoding_module
from rnnkit.errors import InputError
from rnnkit.models import Captioner, Seq2Seq, beam_search, greedy_search
from rnnkit.models.decoding import length_penalty


PAD, BOS, EOS, A, B = 0, 2, 3, 4, 5


class MarkovDecoder:
    """A decoder whose next-token distribution depends only on the previous token: ``table[previous]``.

    It implements the ConditionalDecoder interface; its input is the batch size, its state a dummy
    (1, N, 1) tensor (the batch lives in dim 1, as in a recurrent state).
    """

    bos_index, eos_index, pad_index = BOS, EOS, PAD

    def __init__(self, rows: dict[int, dict[int, float]], vocab: int = 6):
        self.log_table = torch.full((vocab, vocab), -1e9)
        for previous, row in rows.items():
            for token, p in row.items():
                self.log_table[previous, token] = math.log(p)

    def start(self, batch: int):
        return torch.zeros(1, batch, 1), ()

    def step(self, tokens, state, memory):
        return self.log_table[tokens], state, None


# greedy takes A (0.55) then stops: 0.55 * 0.4 = 0.22; B then <eos> is worth 0.45 * 0.95 = 0.43
TRAP = MarkovDecoder({BOS: {A: 0.55, B: 0.45}, A: {EOS: 0.4, A: 0.3, B: 0.3}, B: {EOS: 0.95, A: 0.05}})


def test_docstring_example_runs():
    assert doctest.testmod(decoding_module).failed == 0


def test_beam_search_finds_what_greedy_misses():
    greedy = greedy_search(TRAP, 1, max_length=5)
    beam = beam_search(TRAP, 1, beam_size=2, max_length=5)
    assert greedy.tokens == [[A]] and beam.tokens == [[B]]
    torch.testing.assert_close(greedy.scores, torch.tensor([math.log(0.55 * 0.4)]))
    torch.testing.assert_close(beam.scores, torch.tensor([math.log(0.45 * 0.95)]))
    assert greedy.finished == beam.finished == [True]


def test_neither_search_writes_pad_or_bos():
    tempting = MarkovDecoder({BOS: {PAD: 0.4, BOS: 0.3, A: 0.2, B: 0.1}, A: {EOS: 1.0}, B: {EOS: 1.0}})
    for result in (greedy_search(tempting, 2, max_length=4), beam_search(tempting, 2, beam_size=3, max_length=4)):
        assert result.tokens == [[A], [A]] and result.finished == [True, True]
        torch.testing.assert_close(result.scores, torch.tensor([math.log(0.2)] * 2))


def test_beam_one_is_greedy_on_the_trap():
    greedy, beam = greedy_search(TRAP, 3, max_length=5), beam_search(TRAP, 3, beam_size=1, max_length=5)
    assert beam.tokens == greedy.tokens and torch.equal(beam.scores, greedy.scores)


@pytest.mark.parametrize("connection", ["none", "additive", "general"])
def test_beam_one_equals_greedy_on_a_seq2seq(connection):
    torch.manual_seed(0)
    model = Seq2Seq(12, 12, embedding_dim=8, hidden_size=8, cell="lstm", attention=connection).eval()
    source = torch.randint(4, 12, (5, 6))
    lengths = torch.tensor([6, 3, 5, 1, 2])
    greedy = greedy_search(model, source, lengths, max_length=9)
    beam = beam_search(model, source, lengths, beam_size=1, max_length=9)
    assert beam.tokens == greedy.tokens
    torch.testing.assert_close(beam.scores, greedy.scores)
    assert beam.alignments == greedy.alignments


def test_beam_one_equals_greedy_on_a_captioner():
    torch.manual_seed(1)
    model = Captioner(9, 8, 16, channels=(4,), feature_size=8, embedding_dim=4, hidden_size=8).eval()
    images = torch.rand(4, 8, 16)
    greedy, beam = greedy_search(model, images, max_length=7), beam_search(model, images, beam_size=1, max_length=7)
    assert beam.tokens == greedy.tokens
    torch.testing.assert_close(beam.scores, greedy.scores)


def teacher_forced_log_probability(model, source, lengths, tokens, finished):
    """log p(tokens (+ <eos>) | source) by reading the output back through the model."""
    written = tokens + ([EOS] if finished else [])
    inputs = torch.tensor([[BOS, *written[:-1]]])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(source, lengths, inputs), dim=-1)[0]  # (T, V)
    return float(log_probs[torch.arange(len(written)), torch.tensor(written)].sum())


def test_beam_scores_are_the_log_probabilities_of_the_written_outputs_and_beat_greedy():
    torch.manual_seed(2)
    model = Seq2Seq(10, 10, embedding_dim=8, hidden_size=8, attention="additive").eval()
    source = torch.randint(4, 10, (6, 5))
    lengths = torch.tensor([5, 4, 3, 5, 2, 1])
    greedy = greedy_search(model, source, lengths, max_length=6)
    beam = beam_search(model, source, lengths, beam_size=4, max_length=6)
    for n in range(6):
        alone = source[n : n + 1, : lengths[n]]
        expected = teacher_forced_log_probability(model, alone, None, beam.tokens[n], beam.finished[n])
        assert beam.scores[n].item() == pytest.approx(expected, abs=1e-4)
        # without length normalisation the beam's answer is at least as likely as greedy's
        assert beam.scores[n] >= greedy.scores[n] - 1e-5
        # a batch is searched as if each input were alone
        one = beam_search(model, alone, None, beam_size=4, max_length=6)
        assert one.tokens[0] == beam.tokens[n]


def test_outputs_stop_at_eos_and_at_max_length():
    chatter = MarkovDecoder({BOS: {A: 1.0}, A: {A: 0.6, B: 0.4}, B: {A: 0.5, B: 0.5}})  # never says <eos>
    for result in (greedy_search(chatter, 2, max_length=4), beam_search(chatter, 2, beam_size=3, max_length=4)):
        assert [len(t) for t in result.tokens] == [4, 4] and result.finished == [False, False]
    quiet = MarkovDecoder({BOS: {EOS: 0.9, A: 0.1}, A: {EOS: 1.0}})
    for result in (greedy_search(quiet, 2, max_length=4), beam_search(quiet, 2, beam_size=3, max_length=4)):
        assert result.tokens == [[], []] and result.finished == [True, True]  # <eos> itself is not returned


def test_length_normalisation_lets_longer_outputs_win():
    # "" (p 0.5, |Y| = 1 with <eos>) against "A" (p 0.5 * 0.9 = 0.45, |Y| = 2)
    choice = MarkovDecoder({BOS: {EOS: 0.5, A: 0.5}, A: {EOS: 0.9, B: 0.1}, B: {EOS: 1.0}})
    assert beam_search(choice, 1, beam_size=2, max_length=5, length_penalty_alpha=0.0).tokens == [[]]
    assert beam_search(choice, 1, beam_size=2, max_length=5, length_penalty_alpha=2.0).tokens == [[A]]
    torch.testing.assert_close(length_penalty(torch.tensor([1, 7]), 1.0), torch.tensor([1.0, 2.0]))


def test_bad_search_settings_are_refused():
    with pytest.raises(InputError, match="beam size"):
        beam_search(TRAP, 1, beam_size=0, max_length=5)
    with pytest.raises(InputError, match="max length"):
        greedy_search(TRAP, 1, max_length=0)
    with pytest.raises(InputError, match="length penalty"):
        beam_search(TRAP, 1, beam_size=2, max_length=5, length_penalty_alpha=-1)
