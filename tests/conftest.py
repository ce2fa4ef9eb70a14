"""Small models and tasks shared by the trainer, checkpoint and distributed tests.

They stand in for the real tasks so that the Trainer's machinery is tested on its own: a token stream
trained with truncated BPTT (state carried from batch to batch) and padded sequences of unequal length
trained with full BPTT (padding masked).
"""

import pytest
import torch
from torch import nn

from rnnkit.nn import LSTM
from rnnkit.train import Task, TaskLoss, summed_token_loss

PAD = 0


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Run torch on one thread for the whole suite: tiny models are fastest so, and on a busy machine two
    OpenMP threads spinning at each barrier against other processes can slow them down a hundredfold."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class ToyLanguageModel(nn.Module):
    """Embedding -> rnnkit LSTM -> linear; forward(tokens (N, L), state) -> (logits (N, L, V), state)."""

    def __init__(self, vocab_size: int = 7, hidden_size: int = 8, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.rnn = LSTM(hidden_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens, state=None):
        output, state = self.rnn(self.drop(self.embedding(tokens)), state)  # (N, L, H)
        return self.decoder(self.drop(output)), state  # (N, L, V)


class StreamToyTask(Task):
    """A random token stream cut into ``batch_size`` parallel streams, read ``seq_len`` tokens at a time.

    ``rows`` selects this rank's block of streams (all of them by default), as a distributed task must.
    """

    carries_state = True

    def __init__(self, n_tokens=400, vocab_size=7, batch_size=4, seq_len=5, seed=0, rows=None, valid=True):
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(1, vocab_size, (n_tokens,), generator=generator)  # (T,)
        usable = (n_tokens - 1) // batch_size * batch_size
        self.inputs = ids[:usable].view(batch_size, -1)  # (N, T / N)
        self.targets = ids[1 : usable + 1].view(batch_size, -1)  # (N, T / N)
        if rows is not None:
            self.inputs, self.targets = self.inputs[rows], self.targets[rows]
        self.seq_len = seq_len
        self.valid = valid

    def num_train_batches(self):
        return self.inputs.size(1) // self.seq_len

    def train_batches(self, epoch, start):
        for index in range(start, self.num_train_batches()):
            window = slice(index * self.seq_len, (index + 1) * self.seq_len)
            yield self.inputs[:, window], self.targets[:, window]  # (N, L), (N, L)

    def valid_batches(self):
        return list(self.train_batches(0, 0))[:3] if self.valid else None

    def loss(self, model, batch, state):
        inputs, targets = batch
        logits, state = model(inputs, state)  # (N, L, V)
        loss_sum, n_tokens = summed_token_loss(logits, targets)
        return TaskLoss(loss_sum, n_tokens, inputs.size(0), state)

    def metrics(self, loss):
        return {"perplexity": float(torch.tensor(loss).exp())}


class PaddedToyTask(Task):
    """Sequences of unequal lengths padded with PAD; each batch starts from the initial state (full BPTT)."""

    def __init__(self, n_sequences=12, vocab_size=7, batch_size=4, seed=0, rows=None):
        generator = torch.Generator().manual_seed(seed)
        lengths = torch.randint(2, 9, (n_sequences,), generator=generator).tolist()
        self.sequences = [torch.randint(1, vocab_size, (length,), generator=generator) for length in lengths]
        self.batch_size = batch_size
        self.rows = rows

    def num_train_batches(self):
        return len(self.sequences) // self.batch_size

    def batch(self, index):
        chosen = self.sequences[index * self.batch_size : (index + 1) * self.batch_size]
        padded = nn.utils.rnn.pad_sequence(chosen, batch_first=True, padding_value=PAD)  # (N, L_max)
        inputs, targets = padded[:, :-1], padded[:, 1:].clone()  # (N, L_max - 1) each
        targets[inputs == PAD] = PAD  # nothing is predicted from a padding position
        if self.rows is not None:
            inputs, targets = inputs[self.rows], targets[self.rows]
        return inputs, targets

    def train_batches(self, epoch, start):
        for index in range(start, self.num_train_batches()):
            yield self.batch(index)

    def valid_batches(self):
        return [self.batch(0)]

    def loss(self, model, batch, state):
        inputs, targets = batch
        logits, _ = model(inputs)  # (N, L, V)
        loss_sum, n_tokens = summed_token_loss(logits, targets, pad_index=PAD)
        return TaskLoss(loss_sum, n_tokens, inputs.size(0), None)

