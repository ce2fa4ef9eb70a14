r"""The sequence-tagging task (synchronous many-to-many): one tag per word, e.g. part of speech or named entities.

The glue the CLI and the Trainer share: read CoNLL-U or CoNLL-2003 files (:mod:`rnnkit.data.conll`),
build the word, character and tag vocabularies from the training file only, batch sentences of similar
length together, build the :class:`~rnnkit.models.SequenceTagger`, and score it. Its loss per batch is the
tagger's own, summed over the real (unpadded) tokens:

    softmax:  Σ_n Σ_{t ≤ T_n} -log softmax(e_{n,t})[y_{n,t}]        CRF:  Σ_n -log p(y_n | x_n)

and the Trainer divides it by the number of tokens.

Unseen words. Without pretrained embeddings a model meets many test words it never saw; they read as
``<unk>``. So that ``<unk>`` learns something, each training word seen only once (a singleton) is replaced
by ``<unk>`` with probability ``word_dropout`` whenever a batch is drawn (Lample et al. 2016 use 0.5); the
character features (a BiLSTM over each word's characters, which always sees the word and its case) then
carry the word. ``lowercase_words`` looks words up lower-cased, which shares one embedding among "The"
and "the".

Scores: token accuracy, and for entity tags (every tag ``O`` or ``B-/I-/E-/S-TYPE``) span precision,
recall and F1 (:mod:`rnnkit.metrics.spans`, conlleval's definition). Span F1 picks the best checkpoint for
entity tags, accuracy for the others.

Example::

    from rnnkit.tasks.run import train
    config = TagDataConfig(data="en_ewt-ud-train.conllu", valid_data="en_ewt-ud-dev.conllu")
    report = train(SPEC, RunSettings(config, {"hidden_size": 128, "dropout": 0.5}, TrainConfig(epochs=10)),
                   run_dir=RunDirectory.create("runs/ewt"))
    tagger = from_run("runs/ewt", "best")
    tagger.tag([["The", "cat", "sat"]])          # [['DET', 'NOUN', 'VERB']]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch

from rnnkit.checks import check_positive
from rnnkit.data.batching import bucketed_batches, sorted_batches
from rnnkit.data.conll import ALL_COLUMNS, COLUMNS, DEFAULT_COLUMN, FORMAT_NAMES, FORMATS, Sentence, read_conll
from rnnkit.data.conll import resolve_format
from rnnkit.data.vocab import PAD_ID
from rnnkit.errors import InputError
from rnnkit.metrics.spans import span_scores
from rnnkit.models import SequenceTagger
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, Task, TaskLoss, seed_everything
from rnnkit.train.progress import tracked
from rnnkit.train.task import Baseline, uniform_baseline

from .operations import File, Inputs, Int, Operation, Option, input_lines
from .spec import EMBEDDING_REGULARISER_OPTIONS, NETWORK_OPTIONS, Prepared, RunSettings, TaskSpec
from .spec import build_within_memory
from .tag_encoding import EncodedSentences, Vocabularies, build_vocabularies, encode_sentences, encode_token_lists
from .tag_encoding import make_batch

NAME = "tag"
EVAL_BATCH_SIZE = 128  # sentences per forward pass when only tagging: no gradients, so larger batches are cheap


@dataclass
class TagDataConfig:
    """Where the tagged sentences come from, how words are read and batched; saved in every checkpoint.

    Args:
        data: the training file. valid_data: the validation file (None: no validation).
        format: ``conllu`` or ``conll`` (CoNLL-2003); None recognises it from the training file.
        column: the tags to learn: ``upos``/``xpos`` (CoNLL-U), ``pos``/``chunk``/``ner`` (CoNLL-2003);
            None takes the format's default (upos, ner).
        batch_size: sentences per optimizer step (over all processes).
        min_freq: training words seen fewer times read as ``<unk>``.
        lowercase_words: look words up lower-cased (the character features still see the case).
        word_dropout: the probability that a training singleton reads as ``<unk>`` in a batch.
        char_features: give each word a vector from its characters (a character BiLSTM).
    """

    data: str | None = None
    valid_data: str | None = None
    format: str | None = None
    column: str | None = None
    batch_size: int = 32
    min_freq: int = 1
    lowercase_words: bool = False
    word_dropout: float = 0.0
    char_features: bool = True

    def __post_init__(self):
        if self.format is not None and self.format not in FORMATS:
            raise InputError(f"--format must be conllu or conll, got {self.format!r}")
        if self.column is not None and self.column not in ALL_COLUMNS:
            raise InputError(f"--column must be one of {', '.join(ALL_COLUMNS)}, got {self.column!r}")
        check_positive("batch-size", self.batch_size, integer=True)
        check_positive("min-freq", self.min_freq, integer=True)
        if not 0 <= self.word_dropout < 1:
            raise InputError(f"--word-dropout must be in [0, 1), got {self.word_dropout}")

    def word_key(self, token: str) -> str:
        """The form a token is looked up by in the word vocabulary."""
        return token.lower() if self.lowercase_words else token


@dataclass
class TagData:
    """What training needs: the data config (format and column filled in), the vocabularies, the validation
    sentences (their gold tags score validation) and the encoded training and validation sentences."""

    config: TagDataConfig
    vocabs: Vocabularies
    valid_sentences: list[Sentence] | None
    train: EncodedSentences
    valid: EncodedSentences | None


def load_data(config: TagDataConfig, checkpoint: Checkpoint | None = None) -> TagData:
    """Read and encode the files ``config`` names: vocabularies from the training file; a validation tag the
    training file lacks is an error naming ``file:line`` (the model could never predict it).

    With the ``checkpoint`` of a run being resumed, the training file must give the run's own vocabularies
    (the saved weights index them): another file is an error, not a silently different model.
    """
    if config.data is None:
        raise InputError("give the tagged sentences to learn from with --data FILE (CoNLL-U or CoNLL-2003)")
    data_format = resolve_format(config.data, config.format)
    column = config.column or DEFAULT_COLUMN[data_format]
    config = replace(config, format=data_format, column=column)
    train_sentences = read_conll(config.data, data_format, column)
    valid_sentences = None
    if config.valid_data is not None:
        fix = f"give a {FORMAT_NAMES[data_format]} file like --data {config.data}"
        valid_sentences = read_conll(config.valid_data, data_format, column, fix=fix)
    vocabs = build_vocabularies(train_sentences, config)
    if checkpoint is not None and vocabs.to_dict() != checkpoint.meta["vocab"]:
        raise InputError(f"{config.data} gives other words, characters or tags than the checkpoint's; resume "
                         "with the run's training data (or start a new run)")
    if vocabs.tags == ["_"]:
        raise InputError(f"{config.data}: every {column} tag is '_' (the column is empty); choose another --column "
                         f"({', '.join(c for c in COLUMNS[data_format] if c != column)})")
    word_counts = Counter(config.word_key(token) for sentence in train_sentences for token in sentence.tokens)
    singletons = {word for word, count in word_counts.items() if count == 1}
    train = encode_sentences(train_sentences, vocabs, config, singletons)
    valid = None
    if valid_sentences is not None:
        check_known_tags(valid_sentences, vocabs.tags, config.data)
        valid = encode_sentences(valid_sentences, vocabs, config)
    return TagData(config, vocabs, valid_sentences, train, valid)


def check_known_tags(sentences: list[Sentence], tags: list[str], training_file: str) -> None:
    """InputError at the first tag outside ``tags``, naming its ``file:line``."""
    known = set(tags)
    for sentence in sentences:
        for index, tag in enumerate(sentence.tags):
            if tag not in known:
                raise InputError(
                    f"{sentence.where(index)}: tag {tag!r} never occurs in the training data {training_file} "
                    f"({len(tags)} tags); the model could not predict it: fix the tag or add training sentences with it"
                )


class TaggingTask(Task):
    """One tag per word, for the :class:`~rnnkit.train.Trainer` (full BPTT over padded batches).

    A batch is :func:`make_batch`'s dict. The epoch's batches are drawn by
    :func:`~rnnkit.data.batching.bucketed_batches` seeded with ``seed + epoch``, and the word dropout of
    batch b of epoch e from a generator seeded by (seed, e, b): the same epoch always has the same batches,
    so a run resumes exactly. In a distributed run each rank gets its contiguous block of every batch's rows.
    """

    def __init__(self, data: TagData, seed: int, dist: DistContext | None = None):
        self.dist = dist or DistContext()
        config = data.config
        self.dist.check_batch_size(config.batch_size)
        self.train, self.valid = data.train, data.valid
        self.valid_sentences = data.valid_sentences
        self.vocabs = data.vocabs
        self.config = config
        self.seed = seed
        self.selection = None
        if data.valid is not None:
            self.selection = ("f1", "max") if data.vocabs.entity_tags else ("accuracy", "max")
        self._train_lengths = self.train.lengths
        self._num_batches = len(self._epoch_batches(0))

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        return bucketed_batches(self._train_lengths, self.config.batch_size, self.seed + epoch,
                                min_rows=self.dist.world_size)

    def num_train_batches(self) -> int:
        return self._num_batches

    def train_batches(self, epoch: int, start: int) -> Iterator[dict]:
        for index, indices in enumerate(self._epoch_batches(epoch)[start:], start):
            # Seeded per batch (not drawn from a running stream), so that a resumed epoch drops the same words.
            generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + index)
            yield make_batch(self.train, self._rank_rows(indices), self.config.word_dropout, generator)

    def valid_batches(self):
        if self.valid is None:
            return None
        batches = sorted_batches(self.valid.lengths, EVAL_BATCH_SIZE, min_rows=self.dist.world_size)
        return [make_batch(self.valid, self._rank_rows(indices)) for indices in batches]

    def _rank_rows(self, indices: list[int]) -> list[int]:
        rank, world = self.dist.rank, self.dist.world_size
        return indices[rank * len(indices) // world : (rank + 1) * len(indices) // world]

    def loss(self, model: torch.nn.Module, batch: dict, state) -> TaskLoss:
        emissions = model(batch["words"], batch["lengths"], batch.get("chars"))  # (N, L, C)
        tagger = getattr(model, "module", model)  # the SequenceTagger inside a DDP wrapper
        loss_sum, tokens = tagger.loss(emissions, batch["tags"], batch["lengths"])
        return TaskLoss(loss_sum, tokens, batch["words"].size(0), None)

    def baseline_loss(self) -> Baseline:
        return uniform_baseline(len(self.vocabs.tags), "tags")

    def metrics(self, loss: float) -> dict[str, float]:
        return {}

    def score_validation(self, model: torch.nn.Module) -> dict[str, float]:
        """Accuracy and, for entity tags, span precision/recall/F1 of the whole validation set (every rank)."""
        predicted = predict_ids(model, self.valid)
        scores = tag_scores([s.tags for s in self.valid_sentences], ids_to_tags(predicted, self.vocabs.tags),
                            self.vocabs.entity_tags)
        return {name: scores[name] for name in ("accuracy", "precision", "recall", "f1") if name in scores}


@torch.no_grad()
def predict_ids(model: SequenceTagger, data: EncodedSentences, batch_size: int = EVAL_BATCH_SIZE) -> list[list[int]]:
    """The predicted tag ids of every sentence, in the order given; ``model`` in eval mode."""
    device = next(model.parameters()).device
    predicted: list[list[int]] = [[] for _ in range(len(data))]
    batches = sorted_batches(data.lengths, batch_size)
    for indices in tracked(batches, "tag", total=len(data), unit="sent", size=len):  # a bar on a terminal
        batch = make_batch(data, indices)
        chars = batch["chars"].to(device) if "chars" in batch else None
        emissions = model(batch["words"].to(device), batch["lengths"], chars)  # (N, L, C)
        tags = model.decode(emissions, batch["lengths"]).cpu()  # (N, L), -1 on padding
        for row, i in enumerate(indices):
            predicted[i] = tags[row, : len(data.words[i])].tolist()
    return predicted


def ids_to_tags(ids: list[list[int]], tags: list[str]) -> list[list[str]]:
    return [[tags[i] for i in sentence] for sentence in ids]


def tag_scores(gold: list[list[str]], predicted: list[list[str]], entity_tags: bool) -> dict:
    """Token accuracy (``accuracy``, ``tokens``, ``sentences``) and, with ``entity_tags``, the span scores
    of :func:`~rnnkit.metrics.spans.span_scores` (precision, recall, f1, per_type, ...)."""
    tokens = sum(len(tags) for tags in gold)
    correct = sum(g == p for gold_tags, predicted_tags in zip(gold, predicted) for g, p in zip(gold_tags, predicted_tags))
    scores = {"accuracy": correct / tokens if tokens else 0.0, "tokens": tokens, "sentences": len(gold)}
    if entity_tags:
        scores.update(span_scores(gold, predicted))
    return scores


def build_model(vocabs: Vocabularies, model_options: dict) -> SequenceTagger:
    """The tagger for the vocabularies, with ``model_options`` (SequenceTagger's keyword arguments other
    than vocab_size, num_tags and char_vocab_size)."""
    char_vocab_size = None if vocabs.chars is None else len(vocabs.chars)
    return SequenceTagger(len(vocabs.words), len(vocabs.tags), char_vocab_size=char_vocab_size,
                          padding_idx=PAD_ID, **model_options)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read the tagged files (a resumed run's must give its vocabularies), build the tagger."""
    seed = settings.train.seed
    seed_everything(seed)
    data = load_data(settings.data, checkpoint)
    model = build_within_memory(lambda: build_model(data.vocabs, settings.model))
    run_info = {"configs": {"data": asdict(data.config), "model": model.config}, "vocab": data.vocabs.to_dict()}
    config, vocabs = data.config, data.vocabs
    valid = f"{len(data.valid):,} validation" if data.valid is not None else "no validation"
    shown = ", ".join(vocabs.tags[:10]) + (", ..." if len(vocabs.tags) > 10 else "")
    chars = f", {len(vocabs.chars):,} characters" if vocabs.chars is not None else ""
    summary = (f"data: {config.data}: {len(data.train):,} training sentences ({sum(data.train.lengths):,} tokens), "
               f"{valid}; {len(vocabs.tags)} {config.column} tags ({shown}); vocabulary {len(vocabs.words):,} "
               f"words{chars}; model {parameter_count(model):,} parameters")
    return Prepared(model, TaggingTask(data, seed, dist), run_info, summary)


@dataclass
class TrainedTagger:
    """What a run directory holds for tagging: the model (eval mode, CPU), vocabularies and data settings."""

    model: SequenceTagger
    vocabs: Vocabularies
    config: TagDataConfig

    def tag(self, sentences: list[list[str]], batch_size: int = EVAL_BATCH_SIZE) -> list[list[str]]:
        """The predicted tags of tokenized sentences (an empty sentence gets no tags)."""
        kept = [tokens for tokens in sentences if tokens]
        encoded = encode_token_lists(kept, None, self.vocabs, self.config)
        predicted = iter(ids_to_tags(predict_ids(self.model, encoded, batch_size), self.vocabs.tags))
        return [next(predicted) if tokens else [] for tokens in sentences]


def from_checkpoint(checkpoint: Checkpoint) -> TrainedTagger:
    """The tagger, vocabularies and data settings of a loaded tagger checkpoint."""
    meta = checkpoint.meta
    model = checkpoint.load_weights(SequenceTagger(**meta["configs"]["model"]))
    return TrainedTagger(model.eval(), Vocabularies.from_dict(meta["vocab"]), TagDataConfig(**meta["configs"]["data"]))


def evaluate(tagger: TrainedTagger, data: str | Path, batch_size: int = EVAL_BATCH_SIZE,
             warn: Callable[[str], None] | None = None) -> dict:
    """:func:`tag_scores` of a file in the run's format and column, plus ``unseen_tags``: gold tags the
    training data lacked (their tokens count as errors, and ``warn`` is told)."""
    fix = f"give a {FORMAT_NAMES[tagger.config.format]} file like the run's training data"
    sentences = read_conll(data, tagger.config.format, tagger.config.column, fix=fix)
    gold = [sentence.tags for sentence in sentences]
    predicted = tagger.tag([sentence.tokens for sentence in sentences], batch_size)
    known = set(tagger.vocabs.tags)
    scores = tag_scores(gold, predicted, tagger.vocabs.entity_tags)
    scores["unseen_tags"] = sorted({tag for tags in gold for tag in tags if tag not in known})
    if scores["unseen_tags"] and warn is not None:
        shown = ", ".join(scores["unseen_tags"][:10])
        warn(f"{len(scores['unseen_tags'])} tags of {data} never occur in the training data ({shown}); their tokens "
             "count as errors")
    return scores


def predict(tagger: TrainedTagger, input=None) -> list[dict]:
    """The tags of each sentence (a file of them, one per line with tokens separated by spaces, or a list of such
    lines or of token lists): one ``{"tokens", "tags"}`` per sentence, in their order."""
    if isinstance(input, list) and all(isinstance(tokens, list) for tokens in input):
        sentences = input
    else:
        lines, _ = input_lines(input, "sentences, one per line (tokens separated by spaces)")
        sentences = [line.split() for line in lines]
    return [{"tokens": tokens, "tags": tags} for tokens, tags in zip(sentences, tagger.tag(sentences))]


EVALUATE = Operation(evaluate, """Token accuracy; for entity (BIO) tags, span precision, recall and F1, overall and
    per type.""", (
    Option("data", File(), "Tagged sentences in the run's format and column.", required="the tagged file to score"),
    Option("batch_size", Int(1), "Sentences per forward pass."),
))
PREDICT = Operation(predict, "The tags of each sentence, token by token.", (
    Option("input", Inputs("sentences, one per line (tokens separated by spaces)", stdin=True),
           "Sentences, one per line, tokens separated by spaces. Default: stdin.", required="the sentences"),
))


SPEC = TaskSpec(
    name=NAME, noun="tagger", data_config=TagDataConfig, prepare=prepare, from_checkpoint=from_checkpoint,
    model_options={**NETWORK_OPTIONS, "crf": "crf", "embedding": "embedding_dim", "char_embedding": "char_embedding_dim",
                   "char_hidden": "char_hidden_size", **EMBEDDING_REGULARISER_OPTIONS},
    data_options={"valid_data": "valid", "format": "data_format"}, changeable=frozenset({"data", "valid"}),
    derived_model_fields=("vocab_size", "num_tags", "char_vocab_size", "padding_idx"),
    evaluate=EVALUATE, predict=PREDICT,
)

# The trained model of a run directory: from_run(run_dir, which="auto") -> TrainedTagger.
from_run = SPEC.from_run
