"""SequenceTagger and its character features: shapes, padding never read, loss and decoding, and learning a
tiny synthetic task (tag = word id mod 3) to 100% through the shared Trainer, with and without CRF and
character features."""

import pytest
import torch

from rnnkit.errors import InputError
from rnnkit.models import CharacterWordEncoder, SequenceTagger
from rnnkit.train import TaskLoss, TrainConfig, Trainer

V, TAGS, CHARS = 12, 3, 5


def word_chars(word: int) -> list[int]:
    """A word's characters: its base-3 digits (1 + digit, so that 0 stays padding), 1 to 3 characters."""
    digits = []
    while True:
        digits.append(1 + word % 3)
        word //= 3
        if word == 0:
            return digits[::-1]


def batch_of(sentences: list[list[int]]):
    """(words (N, L), lengths (N,), chars (N, L, W), tags (N, L)); padding past each length is garbage on
    purpose (non-padding ids and tags), so that a model reading it would give itself away."""
    N, L, W = len(sentences), max(map(len, sentences)), 3
    words = torch.randint(1, V, (N, L), generator=torch.Generator().manual_seed(N * L))
    chars = torch.zeros(N, L, W, dtype=torch.long)
    for n, sentence in enumerate(sentences):
        words[n, :len(sentence)] = torch.tensor(sentence)
        for t, word in enumerate(sentence):
            spelled = word_chars(word)
            chars[n, t, :len(spelled)] = torch.tensor(spelled)
    tags = words % TAGS
    return words, torch.tensor([len(s) for s in sentences]), chars, tags


def random_sentences(count: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 8, (count,), generator=generator).tolist()
    return [torch.randint(1, V, (length,), generator=generator).tolist() for length in lengths]


def make_tagger(seed=0, **kwargs):
    torch.manual_seed(seed)
    options = dict(embedding_dim=8, hidden_size=8)
    return SequenceTagger(V, TAGS, **{**options, **kwargs})


@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("char_encoder", [None, "lstm", "cnn"])
def test_emissions_and_decoded_tags_have_one_row_per_step(crf, char_encoder):
    characters = {} if char_encoder is None else dict(char_vocab_size=CHARS, char_encoder=char_encoder)
    tagger = make_tagger(crf=crf, **characters)
    words, lengths, chars, tags = batch_of([[1, 2, 3], [4, 5], [6, 7, 8, 9]])
    emissions = tagger(words, lengths, chars)
    assert emissions.shape == (3, 4, TAGS)
    loss_sum, tokens = tagger.loss(emissions, tags, lengths)
    assert loss_sum.dim() == 0 and tokens == 9
    decoded = tagger.decode(emissions, lengths)
    assert decoded.shape == (3, 4)
    assert (decoded[1, 2:] == -1).all() and (decoded[0, 3] == -1)
    assert ((decoded[0, :3] >= 0) & (decoded[0, :3] < TAGS)).all()


@pytest.mark.parametrize("char_encoder", [None, "lstm", "cnn"])
@pytest.mark.parametrize("engine", ["fused", "explicit"])
def test_padded_batch_equals_each_sentence_alone(char_encoder, engine):
    characters = {} if char_encoder is None else dict(char_vocab_size=CHARS, char_encoder=char_encoder)
    tagger = make_tagger(crf=True, num_layers=2, engine=engine, **characters).double()
    sentences = [[1, 11, 3, 7, 2], [4], [10, 5, 9]]
    words, lengths, chars, tags = batch_of(sentences)
    emissions = tagger(words, lengths, chars)  # (N, L, C)
    loss_sum, _ = tagger.loss(emissions, tags, lengths)
    alone_loss = 0.0
    for n, sentence in enumerate(sentences):
        T = len(sentence)
        alone_words, _, alone_chars, alone_tags = batch_of([sentence])  # its own, narrower W where it can be
        alone = tagger(alone_words, None, alone_chars[:, :, :max(len(word_chars(w)) for w in sentence)])
        torch.testing.assert_close(emissions[n, :T], alone[0], rtol=1e-10, atol=1e-12)
        assert tagger.decode(emissions, lengths)[n, :T].tolist() == tagger.decode(alone)[0].tolist()
        alone_loss = alone_loss + tagger.loss(alone, alone_tags)[0]
    torch.testing.assert_close(loss_sum, alone_loss)


@pytest.mark.parametrize("kind", ["lstm", "cnn"])
def test_character_features_are_zero_for_padded_words_and_ignore_char_padding(kind):
    torch.manual_seed(0)
    encoder = CharacterWordEncoder(CHARS, 4, 3, kind=kind)
    chars = torch.tensor([[[1, 2, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]]])  # (N=1, L=3, W=4); word 3 is padding
    features = encoder(chars)  # (1, 3, out)
    assert features.shape == (1, 3, encoder.output_size)
    assert torch.all(features[0, 2] == 0)
    torch.testing.assert_close(features[0, :2], encoder(chars[:, :2, :2])[0])  # less char padding, same vectors


class TaggingTask:
    """The synthetic tagging data as a task for the shared Trainer (full BPTT over padded batches)."""

    carries_state = False

    def __init__(self, sentences, batch_size):
        self.batches = [batch_of(sentences[i:i + batch_size]) for i in range(0, len(sentences), batch_size)]

    def num_train_batches(self):
        return len(self.batches)

    def train_batches(self, epoch, start):
        return iter(self.batches[start:])

    def valid_batches(self):
        return None

    def loss(self, model, batch, state):
        words, lengths, chars, tags = batch
        loss_sum, tokens = model.loss(model(words, lengths, chars), tags, lengths)
        return TaskLoss(loss_sum, tokens, words.size(0), None)

    def metrics(self, loss):
        return {}


@pytest.mark.parametrize("options", [
    dict(),
    dict(crf=True),
    dict(char_vocab_size=CHARS, char_encoder="lstm"),
    dict(crf=True, char_vocab_size=CHARS, char_encoder="cnn"),
], ids=["softmax", "crf", "chars-lstm", "crf-chars-cnn"])
def test_learns_word_identity_mod_3_to_100_percent(options):
    tagger = make_tagger(**options)
    task = TaggingTask(random_sentences(64, seed=1), batch_size=16)  # every word id seen often enough
    Trainer(tagger, task, TrainConfig(epochs=20, lr=0.05, clip=None)).fit()
    words, lengths, chars, tags = batch_of(random_sentences(20, seed=2))  # unseen sentences of known words
    tagger.eval()
    decoded = tagger.decode(tagger(words, lengths, chars), lengths)
    real = decoded != -1
    assert torch.equal(real.sum(1), lengths)
    assert torch.equal(decoded[real], tags[real])


def test_config_rebuilds_the_same_architecture():
    tagger = make_tagger(crf=True, char_vocab_size=CHARS, char_encoder="cnn", cell="gru")
    rebuilt = SequenceTagger(**tagger.config)
    rebuilt.load_state_dict(tagger.state_dict())
    assert rebuilt.config == tagger.config


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError, match="character encoder"):
        SequenceTagger(V, TAGS, char_vocab_size=CHARS, char_encoder="rnn")
    with pytest.raises(InputError, match="kernel_size"):
        CharacterWordEncoder(CHARS, kind="cnn", kernel_size=2)
    char_tagger = make_tagger(char_vocab_size=CHARS)
    words, lengths, chars, tags = batch_of([[1, 2], [3]])
    with pytest.raises(InputError, match="reads characters"):
        char_tagger(words, lengths)
    with pytest.raises(InputError, match="integer ids"):
        char_tagger(words.float(), lengths, chars)
    tagger = make_tagger()
    with pytest.raises(InputError, match="lengths must lie in"):
        tagger.loss(tagger(words), tags, torch.tensor([2, 3]))
