"""The language-model task: predict the next character (or word) of a text.

The glue the CLI and the Trainer share: read the text (the embedded default corpus when no file is
given), build the vocabulary, cut the token stream into ``batch_size`` parallel streams read ``seq_len``
tokens at a time (truncated BPTT: the hidden state flows from one window to the next), build the
:class:`~rnnkit.models.LanguageModel`, and score it: loss in nats per token, perplexity, and bits per
character at character level.

Example::

    from rnnkit.tasks.run import train
    report = train(SPEC, RunSettings(LMDataConfig(data="input.txt", seq_len=128, batch_size=32),
                                     {"cell": "lstm", "hidden_size": 256, "num_layers": 2}, TrainConfig(epochs=5)),
                   run_dir=RunDirectory.create("runs/shakespeare"))
    model, vocab, checkpoint = from_run("runs/shakespeare")
"""

import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from rnnkit.checks import check_positive, fraction_for
from rnnkit.data.corpus import default_corpus, split_train_valid
from rnnkit.data.reading import read_text
from rnnkit.data.streams import StreamBatcher, VariableStreamBatcher, tokens_needed
from rnnkit.data.text import CharVocab, WordVocab, vocab_from_dict
from rnnkit.errors import InputError
from rnnkit.models import LanguageModel
from rnnkit.models.language_model import activation_regularisation
from rnnkit.models.decoding import select_rows
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, Task, TaskLoss, seed_everything, summed_token_loss
from rnnkit.train.progress import tracked
from rnnkit.train.task import Baseline, uniform_baseline

from .operations import SEED, Choice, File, Flag, Float, Int, Operation, Option, Text
from .spec import EMBEDDING_REGULARISER_OPTIONS, Prepared, RunSettings, TaskSpec, build_within_memory

NAME = "lm"
LEVELS = ("char", "word")
# Characters: a small learned embedding learns much faster than one-hot input (1.45 against 1.81 nats/char
# after 60 s on the default corpus). Words: one-hot over thousands of words is out of the question.
DEFAULT_CHAR_EMBEDDING = 64


@dataclass
class LMDataConfig:
    """Where the text comes from and how it is batched; saved inside every checkpoint.

    Args:
        data: the training text file; None trains on the embedded default corpus (Python standard
            library source, see :func:`rnnkit.data.corpus.default_corpus`).
        valid_data: a separate validation file; None holds out the last ``valid_fraction`` of ``data``.
        valid_fraction: the share of ``data`` held out for validation when there is no ``valid_data``.
        level: ``char`` (one token per character) or ``word`` (whitespace words, ``<eos>`` per line).
        seq_len: tokens per window: the truncated BPTT length. batch_size: parallel streams (all ranks).
        variable_bptt: training windows of AWD-LSTM's random lengths around ``seq_len``
            (:class:`~rnnkit.data.streams.VariableStreamBatcher`), each step's learning rate scaled by ℓ / seq_len
            after clipping (``TaskLoss.lr_scale``), as AWD-LSTM does.
        ar, tar: AWD-LSTM's activation regularisers α and β added to the training loss
            (:func:`rnnkit.models.language_model.activation_regularisation`). Kept here, beside the windows,
            because they shape how the task trains on its text, not the model (a run's evaluation ignores them).
    """

    data: str | None = None
    valid_data: str | None = None
    valid_fraction: float = 0.1
    level: str = "char"
    seq_len: int = 64
    batch_size: int = 16
    variable_bptt: bool = False
    ar: float = 0.0
    tar: float = 0.0

    def __post_init__(self):
        if self.level not in LEVELS:
            raise InputError(f"--level must be char or word, got {self.level!r}")
        check_positive("seq-len", self.seq_len, integer=True)
        check_positive("batch-size", self.batch_size, integer=True)
        if not 0 <= self.valid_fraction < 1:
            raise InputError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        for name in ("ar", "tar"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise InputError(f"--{name} must be a finite number of at least 0 (AWD-LSTM: 2 and 1), got {value!r}")


@dataclass
class Corpus:
    """A text turned into ids: the vocabulary, the training ids (T,) and the validation ids (T_valid,)."""

    vocab: CharVocab | WordVocab
    train_ids: torch.Tensor
    valid_ids: torch.Tensor | None
    description: str


def load_data(config: LMDataConfig, vocab: CharVocab | WordVocab | None = None) -> Corpus:
    """Read and encode the texts ``config`` names; with ``vocab`` (a resumed run) check that they fit it."""
    if config.data is None:
        text, description = default_corpus()
    else:
        text, description = read_text(config.data), config.data
    if config.valid_data is not None:
        train_text, valid_text = text, read_text(config.valid_data)
    elif config.valid_fraction > 0:
        train_text, valid_text = split_train_valid(text, config.valid_fraction)
        _check_held_out(text, valid_text, config, description)
    else:
        train_text, valid_text = text, None
    built = build_vocab(config.level, train_text, valid_text)
    if vocab is not None and built != vocab:
        raise InputError(
            f"the data gives a different vocabulary ({len(built)} {config.level} tokens) than the checkpoint "
            f"({len(vocab)}); resume with the data the run was trained on"
        )
    vocab = vocab or built
    valid_ids = vocab.encode(valid_text) if valid_text else None
    return Corpus(vocab, vocab.encode(train_text), valid_ids, description)


# What evaluation does with characters a character model never saw (--unknown).
UNKNOWN_CHARACTERS = ("error", "skip")
# Scoring needs one window of one input token and its target.
MIN_VALID_TOKENS = 2
MAX_GENERATED = 10_000_000  # tokens `generate` draws (one at a time: 10^12 would run for years)


def _check_held_out(text: str, valid_text: str, config: LMDataConfig, description: str) -> None:
    """InputError when --valid-fraction holds out too little text to score, with the smallest fraction that
    holds out enough: an empty held-out part would otherwise train without validation, unsaid."""
    held = _token_count(valid_text, config.level)
    if held >= MIN_VALID_TOKENS or _token_count(text, config.level) < tokens_needed(config.batch_size, config.seq_len):
        return  # enough held out, or a text too short for even one batch, which the batcher names
    # The fewest characters at the end of the text that hold enough tokens (the count grows with the length).
    low, high = MIN_VALID_TOKENS, MIN_VALID_TOKENS
    while high < len(text) and _token_count(text[-high:], config.level) < MIN_VALID_TOKENS:
        low, high = high, min(2 * high, len(text))
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if _token_count(text[-middle:], config.level) < MIN_VALID_TOKENS else (low, middle)
    raise InputError(f"--valid-fraction {config.valid_fraction:g} holds out {held} {config.level} token(s) of "
                     f"{description}, too few to validate ({MIN_VALID_TOKENS} needed); use at least "
                     f"{fraction_for(high, len(text)):g}, or 0 for no validation")


def _token_count(text: str, level: str) -> int:
    return len(text) if level == "char" else len(WordVocab.tokenize(text))


def build_vocab(level: str, train_text: str, valid_text: str | None) -> CharVocab | WordVocab:
    """Characters come from both texts (a character has no ``<unk>``); words from the training text only,
    so that validation words unseen in training count as ``<unk>``, as in the Penn Treebank setups."""
    if level == "char":
        return CharVocab.build(train_text + (valid_text or ""))
    return WordVocab.build(train_text)


class LanguageModelTask(Task):
    """Next-token prediction over streams, for the :class:`~rnnkit.train.Trainer` (truncated BPTT).

    In a distributed run each rank reads its own block of the ``batch_size`` streams. With
    ``config.variable_bptt`` the training windows have AWD-LSTM's random lengths (drawn from ``seed`` and the
    epoch) and with ``config.ar`` / ``config.tar`` the training loss carries the activation regularisers.
    """

    carries_state = True

    def __init__(self, corpus: Corpus, config: LMDataConfig, dist: DistContext | None = None, seed: int = 0):
        dist = dist or DistContext()
        if config.batch_size % dist.world_size:
            raise InputError(
                f"--batch-size {config.batch_size} does not split evenly over {dist.world_size} processes; "
                f"use a multiple of {dist.world_size}"
            )
        self.level = config.level
        self.baseline = uniform_baseline(len(corpus.vocab), "characters" if config.level == "char" else "words")
        source = f"the training part of {corpus.description}"
        batcher = (VariableStreamBatcher(corpus.train_ids, config.batch_size, config.seq_len, source, seed=seed)
                   if config.variable_bptt else StreamBatcher(corpus.train_ids, config.batch_size, config.seq_len, source))
        self.train = batcher.shard(dist.rank, dist.world_size)
        self.bptt, self.variable_bptt, self.ar, self.tar = config.seq_len, config.variable_bptt, config.ar, config.tar
        self.valid = None
        if corpus.valid_ids is not None:
            self.valid = validation_batcher(corpus.valid_ids, config.batch_size, config.seq_len, dist)

    def num_train_batches(self) -> int:
        return len(self.train)

    def train_batches(self, epoch: int, start: int) -> Iterator:
        # Every epoch reads the same streams from the start; only the position within the epoch varies (and,
        # with variable windows, their lengths: drawn anew for each epoch, the same again for a resumed one).
        if self.variable_bptt and self.train.epoch != epoch:
            self.train.set_epoch(epoch)
        return self.train.iterate(start)

    def valid_batches(self):
        return None if self.valid is None else self.valid.iterate()

    def loss(self, model: torch.nn.Module, batch, state) -> TaskLoss:
        r"""The cross-entropy summed over the window's tokens. In training, the gradient is that of

        .. math:: \mathrm{CE} + n_\text{tokens}\,(\mathrm{AR} + \mathrm{TAR})

        (:func:`~rnnkit.models.language_model.activation_regularisation`), while the value returned, which the
        Trainer logs and sums, stays the plain cross-entropy. With variable windows the step's learning rate is
        scaled by ℓ / bptt (``TaskLoss.lr_scale``): the Trainer clips the gradient first, then steps at the
        scaled rate, so that divided by the tokens (``--loss-over-time mean``) this is AWD-LSTM's
        ``loss + AR + TAR`` with its clip-then-scale step, for any optimizer.
        """
        inputs, targets = batch  # (N, L), (N, L)
        regularised = model.training and (self.ar or self.tar)
        # the model sums the cross-entropy itself: an adaptive softmax then scores only the targets' clusters
        if regularised:
            loss_sum, state, output, dropped = model(inputs, state, outputs=True, targets=targets)  # (N, L, H) x2
        else:
            loss_sum, state = model(inputs, state, targets=targets)
        n_tokens = targets.numel()
        if regularised:
            penalty = activation_regularisation(output, dropped, self.ar, self.tar)
            trained = loss_sum + n_tokens * penalty
            loss_sum = trained - (trained - loss_sum).detach()  # the value of loss_sum, the gradient of trained
        # a short window steps less far (AWD-LSTM): the Trainer scales the rate after clipping
        lr_scale = inputs.size(1) / self.bptt if model.training and self.variable_bptt else 1.0
        return TaskLoss(loss_sum, n_tokens, inputs.size(0), state, lr_scale)

    def metrics(self, loss: float) -> dict[str, float]:
        return language_model_metrics(loss, self.level)

    def baseline_loss(self) -> Baseline:
        return self.baseline

    def gradient_flow(self, model: LanguageModel, batch, state) -> dict:
        """‖∂L/∂h_t‖ of the top layer for each step t of this batch, L the loss summed over the window's steps
        as in training, and the global parameter-gradient norm: how far back the training signal reaches."""
        from rnnkit.diagnose.gradients import per_step_gradient_norms

        inputs, targets = batch  # (N, L), (N, L)
        if model.embedding is not None:
            x = model.embedding(inputs)  # (N, L, E)
        else:
            x = F.one_hot(inputs, model.vocab_size).to(model.input_dtype)  # (N, L, V)
        flow = per_step_gradient_norms(
            model.rnn, x, state, loss="sum", parameters=list(model.parameters()),
            loss_fn=lambda t, h: F.cross_entropy(model.decoder(h), targets[:, t], reduction="sum"),
        )
        return {"hidden": [round(value, 6) for value in flow.hidden[-1].tolist()],
                "parameter_norm": float(flow.parameter_norm)}


def language_model_metrics(loss: float, level: str) -> dict[str, float]:
    """Perplexity ``exp(loss)`` and, at character level, bits per character ``loss / ln 2``."""
    metrics = {"perplexity": math.exp(loss) if loss < 700 else math.inf}
    if level == "char":
        metrics["bits_per_char"] = loss / math.log(2)
    return metrics


def validation_batcher(ids: torch.Tensor, batch_size: int, seq_len: int, dist: DistContext) -> StreamBatcher:
    """A batcher for held-out text, with fewer streams when the text is too short for ``batch_size``.

    A small validation split should still be scored, so the number of streams shrinks (keeping it a
    multiple of the world size, so that ranks stay in step) until each stream holds one window.
    """
    streams = batch_size
    while streams > dist.world_size and (len(ids) - 1) // streams < seq_len:
        streams -= dist.world_size
    if (len(ids) - 1) // streams < 1:
        raise InputError(
            f"the validation text has only {len(ids)} tokens, too few to score; "
            "give a longer --valid-data or a larger --valid-fraction"
        )
    window = min(seq_len, (len(ids) - 1) // streams)
    return StreamBatcher(ids, streams, window).shard(dist.rank, dist.world_size)


def build_model(vocab_size: int, model_options: dict, level: str = "char") -> LanguageModel:
    """The language model for a vocabulary of ``vocab_size`` with ``model_options`` (LanguageModel's
    keyword arguments other than vocab_size); an ``embedding_dim`` of None takes the ``level``'s default
    (64 for characters, ``hidden_size`` for words)."""
    options = dict(model_options)
    if options.get("embedding_dim", 0) is None:
        options["embedding_dim"] = DEFAULT_CHAR_EMBEDDING if level == "char" else options.get("hidden_size", 256)
    if options.get("tie_weights") and "hidden_size" in options and options.get("embedding_dim") != options["hidden_size"]:
        raise InputError(f"--tie-weights shares one matrix between the embedding and the output, so it needs "
                         f"--embedding equal to --hidden (got {options.get('embedding_dim')} and {options['hidden_size']}); "
                         f"give --embedding {options['hidden_size']}, or drop --tie-weights")
    return LanguageModel(vocab_size=vocab_size, **options)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read the text (with a resumed run's vocabulary), build the model and the streams."""
    config = settings.data
    seed_everything(settings.train.seed)
    corpus = load_data(config, vocab_from_dict(checkpoint.meta["vocab"]) if checkpoint is not None else None)
    model = build_within_memory(lambda: build_model(len(corpus.vocab), settings.model, config.level))
    run_info = {"configs": {"data": asdict(config), "model": asdict(model.config)}, "vocab": corpus.vocab.to_dict(),
                "corpus": corpus.description}
    summary = (f"corpus: {corpus.description}: {len(corpus.train_ids):,} training {config.level} tokens, "
               f"vocabulary {len(corpus.vocab):,}, model {parameter_count(model):,} parameters")
    return Prepared(model, LanguageModelTask(corpus, config, dist, seed=settings.train.seed or 0), run_info, summary)


class TrainedLanguageModel(NamedTuple):
    """A trained language model (eval mode, CPU), its vocabulary and the checkpoint it came from."""

    model: LanguageModel
    vocab: CharVocab | WordVocab
    checkpoint: Checkpoint


def from_checkpoint(checkpoint: Checkpoint) -> TrainedLanguageModel:
    """The model and vocabulary of a loaded language-model checkpoint."""
    model = checkpoint.load_weights(LanguageModel.from_config(checkpoint.meta["configs"]["model"]))
    return TrainedLanguageModel(model.eval(), vocab_from_dict(checkpoint.meta["vocab"]), checkpoint)


def training_text(trained: TrainedLanguageModel) -> tuple[str, str]:
    """The text the run trained on (its --data file, or the built-in corpus) and where it is from: what a
    diagnosis of the model reads when it is given no other text."""
    saved = trained.checkpoint.meta["configs"]["data"].get("data")
    return (read_text(saved), saved) if saved else (default_corpus()[0], "the built-in corpus")


def evaluate(trained: TrainedLanguageModel, data: str, batch_size: int | None = None, seq_len: int | None = None,
             unknown: str = "error") -> dict:
    """:func:`score_text` of the text file ``data``: loss per token (nats), perplexity, bits per character."""
    if unknown == "skip" and trained.vocab.level == "word":
        raise InputError("--unknown skip is for character models; a word model reads words it never saw as <unk> "
                         "(counted in the result): drop --unknown")
    return score_text(trained, read_text(data), batch_size, seq_len, unknown=unknown, source=data)


@torch.no_grad()
def score_text(trained: TrainedLanguageModel, text: str, batch_size: int | None = None, seq_len: int | None = None,
               unknown: str = "error", source: str = "the text") -> dict:
    """Loss per token (nats), perplexity and, for characters, bits per character of ``text`` (``source``
    names it in messages), with how many of its tokens the model never saw; read in ``batch_size`` parallel
    streams of ``seq_len`` tokens per window (default: the run's own).

    A word model reads an unseen word as ``<unk>`` (counted as ``unknown_words``). A character vocabulary has
    no ``<unk>``: with ``unknown="error"`` an unseen character is an InputError naming them and their count;
    with ``unknown="skip"`` they are left out of the scored stream (the state is not reset) and counted as
    ``skipped_characters``.
    """
    if unknown not in UNKNOWN_CHARACTERS:
        raise InputError(f"--unknown must be one of {', '.join(UNKNOWN_CHARACTERS)}, got {unknown!r}")
    model, vocab, checkpoint = trained
    saved = checkpoint.meta["configs"]["data"]
    if vocab.level == "char":
        unseen = vocab.unknown_symbols(text)
        occurrences = sum(1 for character in text if character not in vocab) if unseen else 0
        if unseen and unknown == "error":
            shown = ", ".join(repr(symbol) for symbol in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
            raise InputError(
                f"{source} has {occurrences:,} character(s) the model never saw ({len(unseen)} distinct: {shown}); "
                "score the rest with --unknown skip, or evaluate text written with the training alphabet"
            )
        ids = vocab.encode(text, unknown="skip")  # (T,)
        counted = {"skipped_characters": occurrences}
    else:
        ids = vocab.encode(text)  # (T,)
        counted = {"unknown_words": sum(1 for word in vocab.tokenize(text) if word not in vocab)}
    if len(ids) < 2:
        raise InputError(f"{source} has {len(ids)} token(s) the model knows; scoring needs at least 2 (the first is "
                         "the context of the second): give a longer text")
    model.eval()
    loss_sum, tokens = 0.0, 0
    predictions = _every_prediction(model, ids, batch_size or saved["batch_size"], seq_len or saved["seq_len"])
    for logits, targets in tracked(predictions, "evaluate", total=len(ids) - 1, unit="tok",
                                   size=lambda pair: pair[1].numel()):  # a bar on a terminal (rnnkit evaluate)
        batch_loss, batch_tokens = summed_token_loss(logits, targets)
        loss_sum += batch_loss.item()
        tokens += batch_tokens
    loss = loss_sum / tokens
    # every token but the first (which has no context to be predicted from) is scored: "tokens" is len(ids) - 1
    return {"loss": loss, **language_model_metrics(loss, vocab.level), "tokens": tokens, **counted}


def _every_prediction(model, ids: torch.Tensor, batch_size: int, seq_len: int):
    """(logits, targets) pairs that together predict each of ``ids[1:]`` exactly once, each from all the text
    before it: ``N = min(batch_size, T - 1)`` parallel streams of S = (T - 1) // N tokens read in windows of
    ``seq_len`` (the last one shorter), carrying the state; then the r = (T - 1) - N·S tokens after the streams
    (r < N), read as the continuation of the last stream, from its final state. Training's batcher drops the
    partial window and the remainder; a score of a text drops nothing."""
    T = len(ids)
    N = min(batch_size, T - 1)
    S = (T - 1) // N
    inputs = ids[: N * S].reshape(N, S).long()  # (N, S)
    targets = ids[1 : N * S + 1].reshape(N, S).long()  # (N, S)
    state = None
    for start in range(0, S, seq_len):
        logits, state = model(inputs[:, start : start + seq_len], state)  # (N, L, V)
        yield logits, targets[:, start : start + seq_len]
    rest = ids[N * S : T].long()  # (r + 1,): the last stream's final target, then the r tokens left
    if len(rest) > 1:
        last = select_rows(state, torch.tensor([N - 1], device=rest.device))  # the state after ids[N*S - 1]
        for start in range(0, len(rest) - 1, seq_len):
            window = rest[start : start + seq_len + 1]  # (L + 1,)
            logits, last = model(window[None, :-1], last)  # (1, L, V)
            yield logits, window[None, 1:]


def generate(trained: TrainedLanguageModel, prime: str = "", length: int = 500, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False, seed: int | None = None,
             stream: Callable[[str], None] | None = None) -> dict:
    """``{"prime", "text"}``: ``length`` tokens sampled after ``prime`` (:func:`rnnkit.generate.sample`);
    ``stream`` receives the prime and then each piece as soon as it is drawn."""
    from rnnkit.generate import sample

    pieces = sample(trained.model, trained.vocab, prime=prime, length=length, temperature=temperature, top_k=top_k,
                    top_p=top_p, greedy=greedy, seed=seed)  # the arguments are checked here, before the first piece
    text = []
    if stream is not None:
        stream(prime)
    for piece in pieces:
        text.append(piece)
        if stream is not None:
            stream(piece)
    return {"prime": prime, "text": "".join(text)}


EVALUATE = Operation(evaluate, """Loss (nats/token), perplexity and, for characters, bits per character of a text,
    with the tokens the model never saw counted.""", (
    Option("data", File(), "The text to score (UTF-8).", required="the text to score"),
    Option("batch_size", Int(1), "Parallel streams. Default: the run's."),
    Option("seq_len", Int(1), "Tokens per window. Default: the run's."),
    Option("unknown", Choice(UNKNOWN_CHARACTERS),
           "Characters the model never saw: error, or skip them (left out of the scored text, and counted)."),
))
GENERATE = Operation(generate, "Text from the language model: the prime, then each sampled token as it is drawn.", (
    Option("prime", Text(), "Text the sample starts from (default: the model picks the first token)."),
    Option("length", Int(1, MAX_GENERATED), "Tokens to generate."),
    Option("temperature", Float(0, low_open=True), "Sharpen (<1) or flatten (>1) the model's distribution."),
    Option("top_k", Int(1), "Sample only among the K most likely tokens."),
    Option("top_p", Float(0, 1, low_open=True), "Sample only from the smallest set of tokens holding probability P."),
    Option("greedy", Flag(), "Always take the most likely token (no sampling)."),
    Option("seed", SEED, "Seed for a reproducible sample."),
))


SPEC = TaskSpec(
    name=NAME, noun="language model", described="a language model", data_config=LMDataConfig, prepare=prepare,
    from_checkpoint=from_checkpoint,
    model_options={"cell": "cell", "layers": "num_layers", "hidden": "hidden_size", "embedding": "embedding_dim",
                   "dropout": "dropout", "tie_weights": "tie_weights", "engine": "engine", "init_range": "init_range",
                   "locked_dropout": "locked_dropout", "block": "block", "input_dropout": "input_dropout",
                   "hidden_dropout": "hidden_dropout", "output_dropout": "output_dropout",
                   "adaptive_softmax": "adaptive_softmax", **EMBEDDING_REGULARISER_OPTIONS},
    changeable=frozenset({"data", "valid_data", "log_gradients"}), derived_model_fields=("vocab_size",),
    evaluate=EVALUATE, generate=GENERATE,
)

# The trained model of a run directory: from_run(run_dir, which="auto") -> TrainedLanguageModel.
from_run = SPEC.from_run
