"""The text-classification task (many-to-one): a text in, one class out (sentiment, a news article's topic).

The glue the CLI and the Trainer share: read the labelled CSV/TSV files (:mod:`rnnkit.data.labelled_text`),
hold out a stratified validation share when no validation file is given, tokenize, build the vocabulary
from the training split only, batch texts of similar length together, build the
:class:`~rnnkit.models.SequenceClassifier`, and score it. One target per text:

    loss = -(1/N) Σ_n log softmax(logits_n)[y_n]          (the Trainer averages the summed loss over texts)

Validation reports accuracy and macro F1 (:mod:`rnnkit.metrics.classification`); accuracy picks the best
checkpoint and drives early stopping (``selection = ("accuracy", "max")``).

Labels are strings: the sorted set of the training labels, saved in the checkpoint with the vocabulary.

Example::

    from rnnkit.tasks.run import train
    config = ClassifyDataConfig(data="reviews.csv", text_column="review", label_column="sentiment")
    model = {"hidden_size": 128, "bidirectional": True, "pooling": "max", "embedding_dim": 128, "dropout": 0.5}
    report = train(SPEC, RunSettings(config, model, TrainConfig(epochs=5, lr=1e-3)),
                   run_dir=RunDirectory.create("runs/reviews"))
    from_run("runs/reviews").probabilities(["a gorgeous , witty film"])      # (1, C)
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from rnnkit.checks import fraction_for
from rnnkit.data.batching import Sequences, bucketed_batches, pad_sequences, sorted_batches
from rnnkit.data.labelled_text import Example, TableFormat, read_labelled, read_lines
from rnnkit.data.tokens import tokenize
from rnnkit.data.vocab import UNK_ID, TokenVocab
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.metrics.classification import accuracy, classification_scores, macro_f1
from rnnkit.models import SequenceClassifier
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, Task, TaskLoss, seed_everything
from rnnkit.train.progress import tracked
from rnnkit.train.task import Baseline, uniform_baseline

from .operations import File, Inputs, Operation, Option, input_lines
from .spec import EMBEDDING_REGULARISER_OPTIONS, NETWORK_OPTIONS, Prepared, RunSettings, TaskSpec
from .spec import build_within_memory

NAME = "classify"
EVAL_BATCH_SIZE = 256  # texts per forward pass when only scoring: no gradients, so larger batches are cheap


@dataclass
class ClassifyDataConfig:
    """Where the labelled texts come from, how they are read, tokenized and batched; saved in every checkpoint.

    Args:
        data: the training CSV/TSV file.
        valid_data: a separate validation file; None holds out ``valid_fraction`` of ``data``, stratified by label.
        valid_fraction: the share of each class held out for validation when there is no ``valid_data``.
        text_column, label_column, header, delimiter, encoding: the table's layout (see
            :class:`~rnnkit.data.labelled_text.TableFormat`); evaluation files are read the same way.
        lowercase: lowercase texts before tokenizing.
        min_freq: training tokens seen fewer times become ``<unk>``. max_vocab: at most this many tokens in
            the vocabulary (``<pad>``, ``<unk>`` included). max_length: keep only a text's first tokens.
        batch_size: texts per optimizer step (over all processes).
    """

    data: str | None = None
    valid_data: str | None = None
    valid_fraction: float = 0.1
    text_column: str = "text"
    label_column: str = "label"
    header: bool = True
    delimiter: str | None = None
    encoding: str = "utf-8"
    lowercase: bool = True
    min_freq: int = 1
    max_vocab: int | None = None
    max_length: int | None = None
    batch_size: int = 32

    def __post_init__(self):
        if not 0 <= self.valid_fraction < 1:
            raise InputError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        for flag, value in (("batch-size", self.batch_size), ("min-freq", self.min_freq),
                            ("max-length", self.max_length)):
            if value is not None and value < 1:
                raise InputError(f"--{flag} must be >= 1, got {value}")
        TableFormat(self.text_column, self.label_column, self.header, self.delimiter, self.encoding)  # checks them

    @property
    def table(self) -> TableFormat:
        return TableFormat(self.text_column, self.label_column, self.header, self.delimiter, self.encoding)

    def token_ids(self, vocab: TokenVocab, text: str) -> list[int]:
        """The ids of a text's tokens, cut to ``max_length``; a text with no token reads as one ``<unk>``."""
        tokens = tokenize(text, self.lowercase)[: self.max_length]
        return vocab.encode(tokens) or [UNK_ID]


@dataclass
class EncodedTexts(Sequences):
    """Texts as token ids (each at least one id) and their class indices."""

    ids: list[list[int]]
    targets: list[int]

    def sequences(self) -> list[list[int]]:
        return self.ids


@dataclass
class ClassificationData:
    """The vocabulary, the class names (index = class), and the encoded training and validation texts."""

    vocab: TokenVocab
    labels: list[str]
    train: EncodedTexts
    valid: EncodedTexts | None
    description: str


def load_data(config: ClassifyDataConfig, seed: int, vocab: TokenVocab | None = None,
              labels: list[str] | None = None) -> ClassificationData:
    """Read, split and encode the data ``config`` names; with ``vocab``/``labels`` (a resumed run) check
    that the data gives the same ones."""
    if config.data is None:
        raise InputError("give the labelled texts to learn from with --data FILE (CSV or TSV)")
    examples = read_labelled(config.data, config.table)
    if config.valid_data is not None:
        train_examples, valid_examples = examples, read_labelled(config.valid_data, config.table)
        valid_name = config.valid_data
    else:
        train_examples, valid_examples = stratified_split(examples, config.valid_fraction, seed)
        valid_name = config.data
    built_labels = sorted({example.label for example in train_examples})
    if len(built_labels) < 2:
        raise InputError(
            f"{config.data} has only one label ({built_labels[0]!r}); a classifier needs texts of at least "
            "two classes: check --label-column"
        )
    if config.valid_data is None and config.valid_fraction > 0 and not valid_examples:
        largest = max(Counter(example.label for example in examples).values())
        fix = (f"use at least {fraction_for(1, largest):g}" if largest > 1
               else "every class has one text, which training needs: give --valid FILE")
        raise InputError(f"--valid-fraction {config.valid_fraction:g} holds out no text of {config.data} (its "
                         f"largest class has {largest:,}); {fix}, or --valid-fraction 0 for no validation")
    token_lists = [tokenize(example.text, config.lowercase)[: config.max_length] for example in train_examples]
    built_vocab = TokenVocab.build(token_lists, config.min_freq, config.max_vocab)
    if (vocab is not None and built_vocab != vocab) or (labels is not None and built_labels != labels):
        raise InputError(
            f"{config.data} gives other labels or another vocabulary than the checkpoint's; "
            "resume with the data the run was trained on"
        )
    train = encode_examples(train_examples, built_vocab, built_labels, config, config.data)
    valid = encode_examples(valid_examples, built_vocab, built_labels, config, valid_name) if valid_examples else None
    return ClassificationData(built_vocab, built_labels, train, valid, config.data)


def stratified_split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, valid): ``round(fraction * n_c)`` random examples of each class c held out (seeded), at least
    one of each class left for training; both parts keep the file's order."""
    if fraction == 0:
        return examples, []
    by_label: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_label.setdefault(example.label, []).append(index)
    generator = random.Random(seed)
    held_out: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        count = min(round(fraction * len(indices)), len(indices) - 1)
        held_out.update(generator.sample(indices, count))
    return ([e for i, e in enumerate(examples) if i not in held_out],
            [e for i, e in enumerate(examples) if i in held_out])


def encode_examples(examples: list[Example], vocab: TokenVocab, labels: list[str], config: ClassifyDataConfig,
                    name: str) -> EncodedTexts:
    """Token ids and class indices; a label the model does not know is an error naming ``name:line``."""
    index = {label: i for i, label in enumerate(labels)}
    targets = []
    for example in examples:
        if example.label not in index:
            known = ", ".join(repr(label) for label in labels[:10]) + (", ..." if len(labels) > 10 else "")
            raise InputError(
                f"{name}:{example.line}: label {example.label!r} never occurs in the training data "
                f"(its labels: {known}); fix the label or remove the row"
            )
        targets.append(index[example.label])
    return EncodedTexts([config.token_ids(vocab, example.text) for example in examples], targets)


class ClassificationTask(Task):
    """One class per text, for the :class:`~rnnkit.train.Trainer` (full BPTT over padded batches).

    A batch is ``(tokens (N, L), lengths (N,), targets (N,))``. The epoch's batches are drawn by
    :func:`~rnnkit.data.batching.bucketed_batches` seeded with ``seed + epoch``: the same epoch always
    has the same batches, so a run resumes exactly. In a distributed run each rank gets its contiguous block
    of every batch's rows.
    """

    target_unit = "texts"  # what n_tokens counts: one target per text
    selection = ("accuracy", "max")

    def __init__(self, data: ClassificationData, config: ClassifyDataConfig, seed: int, dist: DistContext | None = None):
        self.dist = dist or DistContext()
        self.dist.check_batch_size(config.batch_size)
        self.train, self.valid = data.train, data.valid
        self.num_classes = len(data.labels)
        self.batch_size = config.batch_size
        self.seed = seed
        self._train_lengths = self.train.lengths
        self._num_batches = len(self._epoch_batches(0))

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        return bucketed_batches(self._train_lengths, self.batch_size, self.seed + epoch, min_rows=self.dist.world_size)

    def num_train_batches(self) -> int:
        return self._num_batches

    def train_batches(self, epoch: int, start: int) -> Iterator:
        for indices in self._epoch_batches(epoch)[start:]:
            yield self._batch(self.train, self._rank_rows(indices))

    def valid_batches(self):
        if self.valid is None:
            return None
        batches = sorted_batches(self.valid.lengths, EVAL_BATCH_SIZE, min_rows=self.dist.world_size)
        return [self._batch(self.valid, self._rank_rows(indices)) for indices in batches]

    def _rank_rows(self, indices: list[int]) -> list[int]:
        rank, world = self.dist.rank, self.dist.world_size
        return indices[rank * len(indices) // world : (rank + 1) * len(indices) // world]

    @staticmethod
    def _batch(texts: EncodedTexts, indices: list[int]):
        tokens, lengths = pad_sequences([texts.ids[i] for i in indices])  # (N, L), (N,)
        return tokens, lengths, torch.tensor([texts.targets[i] for i in indices], dtype=torch.long)  # (N,)

    def loss(self, model: torch.nn.Module, batch, state) -> TaskLoss:
        tokens, lengths, targets = batch  # (N, L), (N,), (N,)
        logits = model(tokens, lengths)  # (N, C)
        loss_sum = F.cross_entropy(logits, targets, reduction="sum")
        return TaskLoss(loss_sum, targets.numel(), targets.numel(), None)

    def baseline_loss(self) -> Baseline:
        return uniform_baseline(self.num_classes, "classes")

    def score_validation(self, model: torch.nn.Module) -> dict[str, float]:
        """Accuracy and macro F1 of the whole validation set (every rank scores all of it)."""
        predicted = class_probabilities(model, self.valid.ids).argmax(1).tolist()  # (n,)
        return {"accuracy": accuracy(self.valid.targets, predicted),
                "macro_f1": macro_f1(self.valid.targets, predicted, self.num_classes)}


@torch.no_grad()
def class_probabilities(model: SequenceClassifier, ids: list[list[int]], batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """(n, C) class probabilities of each text (given as token ids), in the order given; ``model`` in eval mode."""
    device = next(model.parameters()).device
    probabilities = torch.empty(len(ids), model.num_outputs)  # (n, C)
    batches = sorted_batches([len(x) for x in ids], batch_size)
    for indices in tracked(batches, "classify", total=len(ids), unit="text", size=len):  # a bar on a terminal
        tokens, lengths = pad_sequences([ids[i] for i in indices])  # (N, L), (N,)
        logits = model(tokens.to(device), lengths)  # (N, C)
        probabilities[indices] = model.output_activation(logits).float().cpu()
    return probabilities


def build_model(vocab_size: int, num_classes: int, model_options: dict) -> SequenceClassifier:
    """The classifier for a vocabulary and class count, with ``model_options`` (SequenceClassifier's
    keyword arguments other than vocab_size and num_classes)."""
    return SequenceClassifier(num_classes, vocab_size=vocab_size, **model_options)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read and split the labelled texts (checked against a resumed run's vocabulary and labels),
    build the classifier."""
    config, seed = settings.data, settings.train.seed
    seed_everything(seed)
    if checkpoint is None:
        data = load_data(config, seed)
    else:
        data = load_data(config, seed, TokenVocab.from_dict(checkpoint.meta["vocab"]), list(checkpoint.meta["labels"]))
    if data.valid is not None:  # macro F1 of every validation: a missing scikit-learn is said before training
        require("sklearn.metrics", "classify")
    model = build_within_memory(lambda: build_model(len(data.vocab), len(data.labels), settings.model))
    run_info = {"configs": {"data": asdict(config), "model": model.config}, "vocab": data.vocab.to_dict(),
                "labels": data.labels}
    valid = f"{len(data.valid):,} validation" if data.valid is not None else "no validation"
    shown = ", ".join(data.labels[:8]) + (", ..." if len(data.labels) > 8 else "")
    summary = (f"data: {data.description}: {len(data.train):,} training texts, {valid}; {len(data.labels)} classes "
               f"({shown}); vocabulary {len(data.vocab):,}; model {parameter_count(model):,} parameters")
    return Prepared(model, ClassificationTask(data, config, seed, dist), run_info, summary)


@dataclass
class TrainedClassifier:
    """What a run directory holds for prediction: the model (eval mode, CPU), vocabulary, labels, data settings."""

    model: SequenceClassifier
    vocab: TokenVocab
    labels: list[str]
    config: ClassifyDataConfig

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        """(n, C) class probabilities of raw texts, tokenized as in training."""
        return class_probabilities(self.model, [self.config.token_ids(self.vocab, text) for text in texts])


def from_checkpoint(checkpoint: Checkpoint) -> TrainedClassifier:
    """The classifier, vocabulary, labels and data settings of a loaded classifier checkpoint."""
    meta = checkpoint.meta
    model = checkpoint.load_weights(SequenceClassifier(**meta["configs"]["model"]))
    return TrainedClassifier(model.eval(), TokenVocab.from_dict(meta["vocab"]), list(meta["labels"]),
                             ClassifyDataConfig(**meta["configs"]["data"]))


def evaluate(classifier: TrainedClassifier, data: str | Path) -> dict:
    """:func:`~rnnkit.metrics.classification.classification_scores` of a labelled file read with the run's
    layout; a label the model does not know is an error naming ``file:line``."""
    require("sklearn.metrics", "classify")  # the scores' package, before the file is read and classified
    examples = read_labelled(data, classifier.config.table)
    encoded = encode_examples(examples, classifier.vocab, classifier.labels, classifier.config, str(data))
    predicted = class_probabilities(classifier.model, encoded.ids).argmax(1).tolist()
    return classification_scores(encoded.targets, predicted, classifier.labels)


def predict(classifier: TrainedClassifier, input=None) -> list[dict]:
    """The class of each text (a file of them, one per line, read with the run's encoding, or a list): one
    ``{"label", "probability", "probabilities": {label: p}, "text"}`` per text, in their order."""
    encoding = classifier.config.encoding
    texts, _ = input_lines(input, "texts, one per line", encoding, read=lambda path: read_lines(path, encoding))
    probabilities = classifier.probabilities(texts)  # (n, C)
    labels = classifier.labels
    predictions = []
    for text, row in zip(texts, probabilities.tolist()):
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append({"label": labels[best], "probability": row[best], "probabilities": dict(zip(labels, row)),
                            "text": text})
    return predictions


EVALUATE = Operation(evaluate, "Accuracy, macro F1, per-class precision, recall and F1, and the confusion counts.", (
    Option("data", File("CSV"), "Labelled texts in the run's layout (columns, delimiter, encoding).",
           required="the labelled file to score"),
))
PREDICT = Operation(predict, "The class of each text, with its probability and those of every class.", (
    Option("input", Inputs("texts, one per line", stdin=True), "Texts, one per line. Default: stdin.",
           required="the texts"),
))


SPEC = TaskSpec(
    name=NAME, noun="classifier", data_config=ClassifyDataConfig, prepare=prepare, from_checkpoint=from_checkpoint,
    model_options={**NETWORK_OPTIONS, "embedding": "embedding_dim", "pooling": "pooling", **EMBEDDING_REGULARISER_OPTIONS},
    data_options={"valid_data": "valid"}, changeable=frozenset({"data", "valid"}),
    derived_model_fields=("num_classes", "vocab_size"), default_epochs=5, evaluate=EVALUATE, predict=PREDICT,
)

# The trained model of a run directory: from_run(run_dir, which="auto") -> TrainedClassifier.
from_run = SPEC.from_run
