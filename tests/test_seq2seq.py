"""Seq2Seq and attention: masking, padding invariance, the fast and the step-by-step decoder agreeing, teacher
forcing, the bridge, and a reversal task learnt to 99% exact match in seconds."""

import doctest

import pytest
import torch

import rnnkit.models.attention as attention_module
import rnnkit.models.seq2seq as seq2seq_module
from rnnkit.data.parallel import JOINER, pad_sequences, read_parallel, target_pair
from rnnkit.errors import InputError
from rnnkit.models import Attention, Seq2Seq, greedy_search
from rnnkit.models.decoding import best_writable
from rnnkit.train import summed_token_loss


CONNECTIONS = ("none", "additive", "dot", "general")


def test_docstring_examples():
    for module in (seq2seq_module, attention_module):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def padded_batch(generator, rows=4, vocab=11, longest=6):
    """Source rows of different lengths padded with 0, their lengths, and teacher-forced target inputs."""
    lengths = torch.tensor([longest, 2, 4, 1][:rows])
    source = torch.randint(4, vocab, (rows, longest), generator=generator)
    for n, length in enumerate(lengths):
        source[n, length:] = 0
    targets = torch.randint(4, vocab, (rows, 5), generator=generator)
    targets[:, 0] = 2  # <bos>
    return source, lengths, targets


# ------------------------------------------------------------------------------------------- attention


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_attention_weights_sum_to_one_over_real_tokens_and_are_zero_on_padding(kind):
    torch.manual_seed(0)
    attention = Attention(kind, query_size=6, memory_size=6)
    memory = torch.randn(3, 5, 6)  # (N, S, K)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    for query in (torch.randn(3, 6), torch.randn(3, 4, 6)):  # one step, and four steps at once
        context, weights = attention(query, memory * 10, mask)  # large scores: padding must still get 0
        weights = weights if weights.dim() == 3 else weights.unsqueeze(1)  # (N, T, S)
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
        assert torch.equal(weights.masked_select(~mask.unsqueeze(1).expand_as(weights)), torch.zeros(
            int((~mask).sum()) * weights.size(1)))
        assert (weights.masked_select(mask.unsqueeze(1).expand_as(weights)) > 0).all()
    # the context is the weighted average: the padded memory rows cannot leak into it
    changed = memory.clone()
    changed[1, 2:] = 1e3
    context_a, _ = attention(query[:, 0], memory, mask)
    context_b, _ = attention(query[:, 0], changed, mask)
    torch.testing.assert_close(context_a[1], context_b[1])


def test_additive_attention_follows_its_equation():
    torch.manual_seed(1)
    attention = Attention("additive", query_size=4, memory_size=3, attention_size=5)
    s, h = torch.randn(1, 4), torch.randn(1, 2, 3)
    W, U, v = attention.query_layer.weight, attention.key_layer, attention.score_layer.weight
    e = torch.stack([(v @ torch.tanh(W @ s[0] + U(h[0, j]))).squeeze() for j in range(2)])  # e_j = v^T tanh(W s + U h_j)
    context, weights = attention(s, h, torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(weights[0], torch.softmax(e, 0))
    torch.testing.assert_close(context[0], weights[0] @ h[0])


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(InputError, match="general attention"):
        Attention("dot", query_size=4, memory_size=8)
    with pytest.raises(InputError, match="unknown attention"):
        Seq2Seq(10, 10, attention="bahdanau")


# ------------------------------------------------------------------------------------------- padding


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padded_batch_equals_the_sequences_one_by_one(connection, cell):
    torch.manual_seed(2)
    model = Seq2Seq(11, 11, embedding_dim=8, hidden_size=6, num_layers=2, cell=cell, attention=connection).eval()
    source, lengths, targets = padded_batch(torch.Generator().manual_seed(3))
    with torch.no_grad():
        outputs, _ = model.encoder(model.source_embedding(source), lengths)  # (N, S, D*H)
        logits = model(source, lengths, targets)  # (N, T, V)
        batch_greedy = greedy_search(model, source, lengths, max_length=6)
        for n, length in enumerate(lengths.tolist()):
            alone = source[n : n + 1, :length]
            one_outputs, _ = model.encoder(model.source_embedding(alone))
            torch.testing.assert_close(outputs[n, :length], one_outputs[0])
            assert torch.equal(outputs[n, length:], torch.zeros_like(outputs[n, length:]))
            torch.testing.assert_close(logits[n], model(alone, None, targets[n : n + 1])[0])
            one_greedy = greedy_search(model, alone, None, max_length=6)
            assert one_greedy.tokens[0] == batch_greedy.tokens[n]
            torch.testing.assert_close(one_greedy.scores[0], batch_greedy.scores[n])


@pytest.mark.parametrize("connection", ["none", "dot", "general"])
def test_the_all_steps_decoder_equals_the_step_by_step_one(connection):
    torch.manual_seed(4)
    model = Seq2Seq(11, 11, embedding_dim=8, hidden_size=6, attention=connection).eval()
    source, lengths, targets = padded_batch(torch.Generator().manual_seed(5))
    with torch.no_grad():
        state, memory = model.encode(source, lengths)
        torch.testing.assert_close(model._decode_all(targets, state, memory),
                                   model._decode_stepwise(targets, state, memory, 1.0))


# ------------------------------------------------------------------------------------------- teacher forcing


@pytest.mark.parametrize("connection", ["additive", "dot"])
def test_teacher_forcing_ratio_one_reads_the_reference_and_zero_reads_the_model(connection):
    torch.manual_seed(6)
    model = Seq2Seq(11, 11, embedding_dim=8, hidden_size=6, attention=connection).eval()
    source, lengths, targets = padded_batch(torch.Generator().manual_seed(7))
    with torch.no_grad():
        forced = model(source, lengths, targets, teacher_forcing=1.0)  # (N, T, V)
        free = model(source, lengths, targets, teacher_forcing=0.0)
        # ratio 1: the logits at step i depend on the reference y_<i only
        altered = targets.clone()
        altered[:, 3:] = 4
        torch.testing.assert_close(model(source, lengths, altered)[:, :3], forced[:, :3])
        # ratio 0: the decoder reads its own argmax, so it writes the greedy output whatever the reference says
        torch.testing.assert_close(model(source, lengths, altered, teacher_forcing=0.0), free)
        greedy = greedy_search(model, source, lengths, max_length=targets.size(1))
        for n, tokens in enumerate(greedy.tokens):
            assert best_writable(free[n], model).tolist()[: len(tokens)] == tokens
        assert not torch.allclose(forced, free)


def test_teacher_forcing_ratio_must_be_a_probability():
    model = Seq2Seq(11, 11, embedding_dim=4, hidden_size=4)
    source, lengths, targets = padded_batch(torch.Generator().manual_seed(0))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        model(source, lengths, targets, teacher_forcing=1.5)


# ------------------------------------------------------------------------------------------- bridge, config


def test_the_context_vector_is_the_decoders_initial_state():
    torch.manual_seed(8)
    plain = Seq2Seq(11, 11, embedding_dim=4, hidden_size=6, bidirectional=False, attention="none").eval()
    source, lengths, _ = padded_batch(torch.Generator().manual_seed(9))
    with torch.no_grad():
        state, memory = plain.encode(source, lengths)
        _, final = plain.encoder(plain.source_embedding(source), lengths)
    assert torch.equal(state, final)  # s_0 = h_S: the seeds' hand-over, no weights
    assert memory.outputs is None  # without attention the decoder sees nothing else of the source
    bidirectional = Seq2Seq(11, 11, embedding_dim=4, hidden_size=6, num_layers=2, cell="lstm", attention="none")
    state, _ = bidirectional.encode(source, lengths)
    assert state[0].shape == state[1].shape == (2, 4, 12)  # both directions bridged to the decoder's width


def test_config_rebuilds_the_same_architecture():
    model = Seq2Seq(20, 30, embedding_dim=8, hidden_size=6, attention="general", tie_embeddings=True)
    rebuilt = Seq2Seq(**model.config)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    assert rebuilt.output.weight is rebuilt.target_embedding.weight


# ------------------------------------------------------------------------------------------- learning


def reversal_batch(generator, rows):
    """Random sequences of 1-5 symbols (ids 4..9) and their reversals."""
    lengths = torch.randint(1, 6, (rows,), generator=generator).tolist()
    sequences = [torch.randint(4, 10, (length,), generator=generator).tolist() for length in lengths]
    source, source_lengths = pad_sequences(sequences)
    target_inputs, target_outputs = target_pair([s[::-1] for s in sequences])
    return source, source_lengths, target_inputs, target_outputs, sequences


def test_reversal_is_learnt_to_99_percent_exact_match_in_seconds():
    torch.manual_seed(0)
    model = Seq2Seq(10, 10, embedding_dim=16, hidden_size=32, attention="dot")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    train, held_out = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    source, lengths, _, _, sequences = reversal_batch(held_out, 300)
    accuracy = 0.0
    for step in range(1, 401):
        model.train()
        batch_source, batch_lengths, inputs, outputs, _ = reversal_batch(train, 64)
        loss_sum, tokens = summed_token_loss(model(batch_source, batch_lengths, inputs), outputs, pad_index=0)
        optimizer.zero_grad()
        (loss_sum / tokens).backward()
        optimizer.step()
        if step % 25 == 0:
            written = model.generate(source, lengths, max_length=7).tokens
            accuracy = sum(w == s[::-1] for w, s in zip(written, sequences)) / len(sequences)
            if accuracy >= 0.99:
                break
    assert accuracy >= 0.99, f"exact match {accuracy:.3f} after {step} steps"


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_the_explicit_engine_gives_the_same_model(cell):
    torch.manual_seed(10)
    fused = Seq2Seq(11, 11, embedding_dim=6, hidden_size=5, cell=cell, attention="additive").eval()
    explicit = Seq2Seq(**{**fused.config, "engine": "explicit"}).eval()
    explicit.load_state_dict(fused.state_dict())
    source, lengths, targets = padded_batch(torch.Generator().manual_seed(11))
    torch.testing.assert_close(explicit(source, lengths, targets), fused(source, lengths, targets))


def test_a_line_without_tokens_is_skipped_like_an_empty_one(tmp_path):
    (tmp_path / "src").write_text(f"ein Hund\n  \n{JOINER}\nzwei\n", encoding="utf-8")
    (tmp_path / "tgt").write_text("a dog\nnothing\nnothing\ntwo\n", encoding="utf-8")
    pairs = read_parallel(tmp_path / "src", tmp_path / "tgt")
    assert pairs.empty_lines == [2, 3] and pairs.sources == ["ein Hund", "zwei"]
