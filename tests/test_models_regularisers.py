"""Every model takes any registered cell and the recurrent regularisers, keeps them in its config (so a run
directory rebuilds the same model), and asks the cell protocol rather than the cell's name."""

import pytest
import torch

import rnnkit.nn as rn
from rnnkit.models import Captioner, LanguageModel, Seq2Seq, SequenceClassifier, SequenceTagger

REGULARISED = {"recurrent_dropout": 0.2, "zoneout": 0.1, "forget_bias": 1.0, "locked_dropout": True}


def build(kind: str, cell: str, **options):
    if kind == "lm":
        return LanguageModel(11, cell=cell, hidden_size=8, num_layers=2, embedding_dim=6, dropout=0.3, **options)
    if kind == "classify":
        return SequenceClassifier(3, vocab_size=11, cell=cell, embedding_dim=6, hidden_size=8, num_layers=2,
                                  dropout=0.3, **options)
    if kind == "tag":
        return SequenceTagger(11, 4, embedding_dim=6, cell=cell, hidden_size=8, num_layers=2, dropout=0.3, **options)
    if kind == "translate":
        return Seq2Seq(11, 12, embedding_dim=6, cell=cell, hidden_size=8, **options)
    return Captioner(11, 8, 8, channels=(4,), feature_size=8, embedding_dim=6, cell=cell, hidden_size=8, **options)


def run(kind: str, model):
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 11, (2, 5), generator=generator)
    if kind == "lm":
        return model(tokens)[0]
    if kind in ("classify", "tag"):
        return model(tokens, torch.tensor([5, 3]))
    if kind == "translate":
        return model(tokens, torch.tensor([5, 3]), tokens)
    return model(torch.rand(2, 8, 8, generator=generator), tokens)


@pytest.mark.parametrize("kind", ["lm", "classify", "tag", "translate", "caption"])
@pytest.mark.parametrize("cell", ["layernorm_lstm", "gru", "mingru"])
def test_every_model_takes_every_cell_and_the_regularisers(kind, cell):
    options = dict(REGULARISED)
    if rn.get_cell(cell).forget_gate is None:
        options.pop("forget_bias")
    if rn.get_cell(cell).recurrent_weight is None:
        options.pop("recurrent_dropout")  # it acts where h_{t-1} meets W_hh: the linear cells have none
    model = build(kind, cell, **options)
    out = run(kind, model.train())
    assert torch.isfinite(out).all()
    out.sum().backward()
    config = model.config if isinstance(model.config, dict) else model.config.to_dict()
    for name, value in options.items():
        assert config[name] == value
    torch.testing.assert_close(run(kind, model.eval()), run(kind, model.eval()))


@pytest.mark.parametrize("kind", ["lm", "classify", "tag"])
def test_locked_dropout_keeps_the_masks_over_time(kind):
    model = build(kind, "lstm", locked_dropout=True)
    assert isinstance(model.input_dropout, rn.LockedDropout)
    rnn = model.rnn if kind == "lm" else model.encoder.rnn
    assert rnn.locked_dropout


def test_forget_bias_on_a_cell_without_forget_gate_is_one_clear_error():
    from rnnkit.errors import InputError

    with pytest.raises(InputError, match="no forget gate"):
        build("classify", "gru", forget_bias=1.0)
