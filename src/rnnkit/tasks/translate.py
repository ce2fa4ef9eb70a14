"""The translation task: a sentence in one language → the same sentence in another (sequence to sequence).

The glue the CLI and the Trainer share: read the parallel files (:mod:`rnnkit.data.parallel`: line counts
checked, empty pairs skipped and counted, sentences tokenized reversibly and cut to ``max_length`` tokens with
a count), build the two vocabularies from the training pairs, batch pairs of similar length with padding,
build the :class:`~rnnkit.models.Seq2Seq`, and score it: the loss per target token during training, BLEU of
greedy translations on the validation pairs each epoch (it picks the best checkpoint), and BLEU and chrF
(sacrebleu) of beam-search translations for ``rnnkit evaluate``.

Translations are detokenized and compared with the raw reference lines, so the numbers are sacrebleu's
standard ones (13a tokenization, case-sensitive). An ``<unk>`` in an attention model's output is replaced by
the source token it attended to most (Luong et al. 2015, "Addressing the rare word problem"): names and
numbers are copied instead of lost.

Example::

    from rnnkit.tasks.run import train
    config = TranslateDataConfig(source="train.de", target="train.en", valid_source="val.de", valid_target="val.en")
    settings = RunSettings(config, {"attention": "additive", "hidden_size": 256, "bidirectional": True},
                           TrainConfig(epochs=10, lr=1e-3), {"decode": {"beam_size": 5}})
    report = train(SPEC, settings, run_dir=RunDirectory.create("runs/de-en"))
    translate_sentences(from_run("runs/de-en"), ["Ein Hund läuft."], DecodeConfig(beam_size=5))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from rnnkit.checks import MAX_LENGTH_PENALTY
from rnnkit.data.batching import bucketed_batches, pad_sequences
from rnnkit.data.parallel import EncodedSide, ParallelText, encode_sentences, read_parallel, target_pair
from rnnkit.data.tokens import detokenize, tokenize
from rnnkit.data.vocab import BOS_ID, EOS_ID, PAD_ID, SEQUENCE_SPECIALS, UNK, TokenVocab
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.files import write_output
from rnnkit.models import Seq2Seq
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, Task, TaskLoss, seed_everything, summed_token_loss
from rnnkit.train.outputs import check_output
from rnnkit.train.progress import tracked
from rnnkit.train.task import Baseline, uniform_baseline

from .operations import File, Float, Inputs, Int, Operation, Option, input_lines
from .spec import NETWORK_OPTIONS, REGULARISER_OPTIONS, Prepared, RunSettings, TaskSpec
from .spec import build_within_memory

NAME = "translate"


@dataclass
class TranslateDataConfig:
    """Where the sentence pairs come from and how they are batched and learnt; saved inside every checkpoint.

    Args:
        source, target: the parallel training files (one sentence per line; ``.gz`` allowed).
        valid_source, valid_target: parallel validation files; None holds out the last ``valid_fraction``.
        valid_fraction: the share of the training pairs held out when there are no validation files.
        min_freq: tokens seen fewer times in the training pairs read as ``<unk>``.
        max_vocab: at most this many ids per vocabulary (specials included); None: no limit.
        max_length: sentences longer than this many tokens are truncated (with a warning that counts them).
        batch_size: sentence pairs per step (over all processes).
        teacher_forcing: the probability that the decoder reads the reference token rather than its own
            previous prediction while training (1: always the reference).
        label_smoothing: spread this much of each target's probability over the vocabulary in the training
            loss (Szegedy et al. 2016); the validation loss is always the plain cross-entropy.
    """

    source: str
    target: str
    valid_source: str | None = None
    valid_target: str | None = None
    valid_fraction: float = 0.05
    min_freq: int = 2
    max_vocab: int | None = None
    max_length: int = 100
    batch_size: int = 64
    teacher_forcing: float = 1.0
    label_smoothing: float = 0.0

    def __post_init__(self):
        if (self.valid_source is None) != (self.valid_target is None):
            raise InputError("give both --valid-source and --valid-target, or neither")
        if not 0 <= self.valid_fraction < 1:
            raise InputError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        for flag, value in (("min-freq", self.min_freq), ("max-length", self.max_length),
                            ("batch-size", self.batch_size)):
            if value < 1:
                raise InputError(f"--{flag} must be at least 1, got {value}")
        if not 0 <= self.teacher_forcing <= 1:
            raise InputError(f"--teacher-forcing must be in [0, 1], got {self.teacher_forcing}")
        if not 0 <= self.label_smoothing < 1:
            raise InputError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")


MAX_BEAM = 1000  # hypotheses kept a sentence; 10^9 would ask for hundreds of GB before the first step


@dataclass
class DecodeConfig:
    """How a trained model translates by default (``rnnkit translate`` and ``rnnkit evaluate``).

    beam_size: 1 is greedy search. length_penalty: GNMT's alpha (0: none). replace_unknown: replace an
    ``<unk>`` output by the source token it attended to most (attention models only).
    """

    beam_size: int = 5
    length_penalty: float = 0.6
    replace_unknown: bool = True

    def __post_init__(self):
        if not 1 <= self.beam_size <= MAX_BEAM:  # every beam keeps its hypotheses' states and scores a step
            raise InputError(f"--beam must be from 1 to {MAX_BEAM:,}, got {self.beam_size}; 5 to 10 is usual")
        if self.length_penalty < 0:
            raise InputError(f"--length-penalty must be >= 0, got {self.length_penalty}")


@dataclass
class EncodedPairs:
    """Sentence pairs as ids; ``references`` are the raw target lines (what BLEU compares with)."""

    sources: list[list[int]]
    targets: list[list[int]]
    source_tokens: list[list[str]]
    references: list[str]

    def __len__(self) -> int:
        return len(self.sources)


@dataclass
class TranslationCorpus:
    source_vocab: TokenVocab
    target_vocab: TokenVocab
    train: EncodedPairs
    valid: EncodedPairs | None
    description: str
    train_unknown: float


def _encode_pairs(text: ParallelText, source_vocab: TokenVocab, target_vocab: TokenVocab, max_length: int,
                  warn: Callable[[str], None] | None, what: str) -> tuple[EncodedPairs, EncodedSide]:
    source_tokens = [tokenize(s, joiners=True) for s in text.sources]
    sources = encode_sentences(source_tokens, source_vocab, max_length)
    targets = encode_sentences([tokenize(t, joiners=True) for t in text.targets], target_vocab, max_length)
    if warn is not None:
        # the training pairs' unknown tokens are the vocabulary's rare ones (--min-freq): reported in the log
        unknown_too = what != "training"
        for line in [text.empty_warning(), *sources.warnings(f"{what} source", max_length, unknown_too),
                     *targets.warnings(f"{what} target", max_length, unknown_too)]:
            if line:
                warn(line)
    clipped = [tokens[:max_length] for tokens in source_tokens]
    return EncodedPairs(sources.ids, targets.ids, clipped, list(text.targets)), targets


def load_data(config: TranslateDataConfig, vocabs: tuple[TokenVocab, TokenVocab] | None = None,
                warn: Callable[[str], None] | None = None) -> TranslationCorpus:
    """Read, tokenize and encode the files ``config`` names; vocabularies from the training pairs
    (or ``vocabs``, those of a saved run). ``warn`` receives one line per problem worth knowing."""
    train_text = read_parallel(config.source, config.target)
    description = train_text.description
    if config.valid_source is not None:
        valid_text = read_parallel(config.valid_source, config.valid_target)
    elif config.valid_fraction > 0:
        if warn is not None and train_text.empty_warning():
            warn(train_text.empty_warning())
        train_text, valid_text = train_text.split(config.valid_fraction)
    else:
        valid_text = None
    if vocabs is None:
        source_vocab = TokenVocab.build((tokenize(s, joiners=True) for s in train_text.sources), config.min_freq,
                                        config.max_vocab, SEQUENCE_SPECIALS)
        target_vocab = TokenVocab.build((tokenize(t, joiners=True) for t in train_text.targets), config.min_freq,
                                        config.max_vocab, SEQUENCE_SPECIALS)
    else:
        source_vocab, target_vocab = vocabs
    train, train_targets = _encode_pairs(train_text, source_vocab, target_vocab, config.max_length, warn, "training")
    valid = None
    if valid_text is not None:
        valid, _ = _encode_pairs(valid_text, source_vocab, target_vocab, config.max_length, warn, "validation")
    return TranslationCorpus(source_vocab, target_vocab, train, valid, description,
                             train_targets.unknown / max(train_targets.tokens, 1))


def make_batch(sources: list[list[int]], targets: list[list[int]]):
    """(source (N, S), source lengths (N,), decoder inputs (N, T), decoder targets (N, T)), padded."""
    source, lengths = pad_sequences(sources)
    target_inputs, target_outputs = target_pair(targets)
    return source, lengths, target_inputs, target_outputs


class TranslationTask(Task):
    """Padded batches of sentence pairs for the :class:`~rnnkit.train.Trainer` (full BPTT, no carried state).

    Batches hold pairs of similar source length (:func:`~rnnkit.data.batching.bucketed_batches`), drawn anew
    each epoch from the seed and the epoch number, so that a resumed run sees the same batches. In a
    distributed run each rank takes its block of every batch's rows. The validation score is the BLEU of
    greedy translations of the validation pairs (``selection``: the best checkpoint has the highest).
    """

    selection = ("bleu", "max")

    def __init__(self, corpus: TranslationCorpus, config: TranslateDataConfig, seed: int,
                 dist: DistContext | None = None):
        self.dist = dist or DistContext()
        self.dist.check_batch_size(config.batch_size)
        self.corpus = corpus
        self.config = config
        self.seed = seed
        self.source_lengths = [len(s) for s in corpus.train.sources]
        self._batches_per_epoch = len(self._epoch_batches(0))

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        batches = bucketed_batches(self.source_lengths, self.config.batch_size, generator, pool_batches=50)
        # every rank needs at least one row of every batch
        return [batch for batch in batches if len(batch) >= self.dist.world_size]

    def num_train_batches(self) -> int:
        return self._batches_per_epoch

    def _rows(self, indices: list[int]) -> list[int]:
        if not self.dist.is_distributed:
            return indices
        blocks = torch.tensor_split(torch.tensor(indices), self.dist.world_size)
        return blocks[self.dist.rank].tolist()

    def train_batches(self, epoch: int, start: int) -> Iterator:
        train = self.corpus.train
        for indices in self._epoch_batches(epoch)[start:]:
            rows = self._rows(indices)
            yield make_batch([train.sources[i] for i in rows], [train.targets[i] for i in rows])

    def valid_batches(self):
        valid = self.corpus.valid
        if valid is None:
            return None
        order = sorted(range(len(valid)), key=lambda i: len(valid.sources[i]))
        size = self.config.batch_size
        batches = [self._rows(order[i : i + size]) for i in range(0, len(order), size)]
        return [make_batch([valid.sources[i] for i in rows], [valid.targets[i] for i in rows])
                for rows in batches if rows]

    def loss(self, model: torch.nn.Module, batch, state) -> TaskLoss:
        source, lengths, target_inputs, target_outputs = batch
        training = model.training
        ratio = self.config.teacher_forcing if training else 1.0
        logits = model(source, lengths, target_inputs, ratio)  # (N, T, V)
        smoothing = self.config.label_smoothing if training else 0.0
        if smoothing:
            loss_sum = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target_outputs.reshape(-1),
                                       ignore_index=PAD_ID, label_smoothing=smoothing, reduction="sum")
            n_tokens = int((target_outputs != PAD_ID).sum())
        else:
            loss_sum, n_tokens = summed_token_loss(logits, target_outputs, pad_index=PAD_ID)
        return TaskLoss(loss_sum, n_tokens, source.size(0), None)

    def baseline_loss(self) -> Baseline:
        return uniform_baseline(len(self.corpus.target_vocab), "target tokens")

    def metrics(self, loss: float) -> dict[str, float]:
        return {"perplexity": math.exp(loss) if loss < 700 else math.inf}

    def score_validation(self, model: Seq2Seq) -> dict[str, float]:
        valid = self.corpus.valid
        hypotheses = translate_ids(model, self.corpus.target_vocab, valid.sources, valid.source_tokens,
                                   DecodeConfig(beam_size=1), batch_size=max(self.config.batch_size, 64))
        return {"bleu": require("sacrebleu", "translate").corpus_bleu(hypotheses, [valid.references]).score}


# Seq2Seq arguments the task takes from the vocabularies; the other ones are saved as the run's model settings.
DERIVED_MODEL_FIELDS = ("source_vocab_size", "target_vocab_size", "pad_index", "bos_index", "eos_index")


def build_model(source_vocab: TokenVocab, target_vocab: TokenVocab, model_options: dict) -> Seq2Seq:
    """The Seq2Seq for two vocabularies with ``model_options`` (its keyword arguments but the sizes)."""
    return Seq2Seq(len(source_vocab), len(target_vocab), **model_options,
                   pad_index=PAD_ID, bos_index=BOS_ID, eos_index=EOS_ID)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read the parallel text (with a resumed run's saved vocabularies), build the model; ``warn``
    receives the lines about skipped pairs, truncated sentences and unknown tokens."""
    config = settings.data
    seed_everything(settings.train.seed)
    vocabs = None
    if checkpoint is not None:
        vocabs = (TokenVocab.from_dict(checkpoint.meta["source_vocab"], SEQUENCE_SPECIALS),
                  TokenVocab.from_dict(checkpoint.meta["target_vocab"], SEQUENCE_SPECIALS))
    corpus = load_data(config, vocabs, warn)
    if corpus.valid is not None:  # BLEU of every validation: a missing sacrebleu is said before training
        require("sacrebleu", "translate")
    model = build_within_memory(lambda: build_model(corpus.source_vocab, corpus.target_vocab, settings.model))
    options = {key: value for key, value in model.config.items() if key not in DERIVED_MODEL_FIELDS}
    run_info = {"configs": {"data": asdict(config), "model": options, "decode": asdict(decode_config(settings))},
                "source_vocab": corpus.source_vocab.to_dict(), "target_vocab": corpus.target_vocab.to_dict(),
                "corpus": corpus.description}
    valid = f", {len(corpus.valid):,} validation pairs" if corpus.valid is not None else ""
    summary = (f"corpus: {corpus.description}: {len(corpus.train):,} training pairs{valid}; vocabularies "
               f"{len(corpus.source_vocab):,} source / {len(corpus.target_vocab):,} target tokens (min freq "
               f"{config.min_freq}: {corpus.train_unknown:.1%} of training target tokens are <unk>); "
               f"model {parameter_count(model):,} parameters")
    return Prepared(model, TranslationTask(corpus, config, settings.train.seed, dist), run_info, summary)


def decode_config(settings: RunSettings) -> DecodeConfig:
    """How the run translates by default: its ``decode`` settings (beam size, length penalty)."""
    return DecodeConfig(**settings.sections.get("decode", {}))


@dataclass
class TrainedTranslator:
    model: Seq2Seq
    source_vocab: TokenVocab
    target_vocab: TokenVocab
    data_config: dict
    decode: DecodeConfig


def from_checkpoint(checkpoint: Checkpoint) -> TrainedTranslator:
    """The model (eval mode, CPU), vocabularies and settings of a loaded translation checkpoint."""
    meta = checkpoint.meta
    source_vocab = TokenVocab.from_dict(meta["source_vocab"], SEQUENCE_SPECIALS)
    target_vocab = TokenVocab.from_dict(meta["target_vocab"], SEQUENCE_SPECIALS)
    model = checkpoint.load_weights(build_model(source_vocab, target_vocab, meta["configs"]["model"]))
    return TrainedTranslator(model.eval(), source_vocab, target_vocab, meta["configs"]["data"],
                             DecodeConfig(**meta["configs"]["decode"]))


def translate_ids(model: Seq2Seq, target_vocab: TokenVocab, sources: list[list[int]],
                  source_tokens: list[list[str]], decode: DecodeConfig, batch_size: int = 64) -> list[str]:
    """Detokenized translations of encoded sentences (in their order), batched by length."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    translations = [""] * len(sources)
    starts = range(0, len(order), batch_size)
    what = "greedy search" if decode.beam_size == 1 else f"beam search ({decode.beam_size})"
    for start in tracked(starts, what, total=len(order), unit="sent",  # a bar on a terminal
                         size=lambda start: len(order[start : start + batch_size])):
        rows = [i for i in order[start : start + batch_size] if sources[i]]
        if not rows:
            continue
        source, lengths = pad_sequences([sources[i] for i in rows])
        result = model.generate(source, lengths, beam_size=decode.beam_size, length_penalty=decode.length_penalty)
        for k, i in enumerate(rows):
            tokens = target_vocab.decode(result.tokens[k])
            if decode.replace_unknown and result.alignments is not None:
                tokens = [source_tokens[i][position] if token == UNK else token
                          for token, position in zip(tokens, result.alignments[k])]
            translations[i] = detokenize(tokens)
    return translations


def translate_sentences(translator: TrainedTranslator, sentences: list[str], decode: DecodeConfig,
                        warn: Callable[[str], None] | None = None, batch_size: int = 64) -> list[str]:
    """Translate raw sentences (one per item; an empty one gives an empty translation).

    Sentences longer than the run's ``max_length`` are truncated and unknown tokens read as ``<unk>``; both
    are counted in lines given to ``warn``.
    """
    max_length = translator.data_config["max_length"]
    tokens = [tokenize(sentence, joiners=True) for sentence in sentences]
    encoded = encode_sentences(tokens, translator.source_vocab, max_length)
    if warn is not None:
        for line in encoded.warnings("input", max_length):
            warn(line)
    clipped = [t[:max_length] for t in tokens]
    return translate_ids(translator.model, translator.target_vocab, encoded.ids, clipped, decode, batch_size)


def decoding(translator: TrainedTranslator, beam: int | None = None, length_penalty: float | None = None
             ) -> DecodeConfig:
    """How to translate: the run's own decoding, with ``beam`` and ``length_penalty`` where given."""
    decode = translator.decode
    if beam is not None:
        decode = replace(decode, beam_size=beam)
    if length_penalty is not None:
        decode = replace(decode, length_penalty=length_penalty)
    return decode


def evaluate(translator: TrainedTranslator, source: str, target: str, beam: int | None = None,
             length_penalty: float | None = None, warn: Callable[[str], None] | None = None) -> dict:
    """BLEU and chrF (sacrebleu) of the translations of the file ``source`` against the file ``target``, decoded
    as the run decodes unless ``beam`` or ``length_penalty`` say otherwise."""
    sacrebleu = require("sacrebleu", "translate")  # before the decoding it would score
    decode = decoding(translator, beam, length_penalty)
    text = read_parallel(source, target)
    if warn is not None and text.empty_warning():
        warn(text.empty_warning())
    hypotheses = translate_sentences(translator, text.sources, decode, warn)
    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    return {"bleu": bleu.corpus_score(hypotheses, [text.targets]).score,
            "chrf": chrf.corpus_score(hypotheses, [text.targets]).score,
            "sentences": len(text), "beam_size": decode.beam_size, "length_penalty": decode.length_penalty,
            "bleu_signature": str(bleu.get_signature())}


def predict(translator: TrainedTranslator, input=None, output: str | None = None, beam: int | None = None,
            length_penalty: float | None = None, warn: Callable[[str], None] | None = None) -> list[dict]:
    """The translation of each sentence (a file of them, one per line, or a list): one ``{"source",
    "translation"}`` per line, in their order (an empty line gives an empty translation); with ``output``, the
    translations are also written there, one per line (replaced atomically)."""
    if output is not None:
        check_output(output, "--output", inputs=[input if isinstance(input, str) else None],
                     example="translations.txt")
    lines, name = input_lines(input, "sentences, one per line")
    if not any(line.strip() for line in lines):
        raise InputError(f"{name} holds no sentence to translate; give one sentence per line")
    translations = translate_sentences(translator, [line.strip() for line in lines],
                                       decoding(translator, beam, length_penalty), warn)
    if output is not None:
        write_output(Path(output), "".join(translation + "\n" for translation in translations).encode("utf-8"))
    return [{"source": line, "translation": translation} for line, translation in zip(lines, translations)]


BEAM = Option("beam", Int(1), "Beam size; 1 = greedy search. Default: the run's (--beam of training).")
LENGTH_PENALTY = Option("length_penalty", Float(0, MAX_LENGTH_PENALTY),
                        "GNMT length normalisation alpha (0: none). Default: the run's.")
EVALUATE = Operation(evaluate, "BLEU and chrF (sacrebleu) of the run's translations against reference translations.", (
    Option("source", File(), "Source sentences, one per line.", required="the source sentences"),
    Option("target", File(), "Their reference translations, line by line with --source.",
           required="their reference translations"),
    BEAM, LENGTH_PENALTY,
))
PREDICT = Operation(predict, """Translate sentences, one per line: line i of the output translates line i of the
    input (an empty line gives an empty line). Sentences longer than the run's --max-length are truncated and
    unknown tokens read as <unk>; both are counted in a warning.""", (
    Option("input", Inputs("sentences, one per line", stdin=True), "Source sentences, one per line. Default: stdin.",
           required="the sentences to translate"),
    Option("output", File(), "Also write the translations here, one per line (atomically)."),
    BEAM, LENGTH_PENALTY,
))


SPEC = TaskSpec(
    name=NAME, noun="translation model", data_config=TranslateDataConfig, prepare=prepare,
    from_checkpoint=from_checkpoint,
    model_options={**NETWORK_OPTIONS, "embedding": "embedding_dim", "decoder_hidden": "decoder_hidden_size",
                   "attention": "attention", "attention_size": "attention_size", "tie_embeddings": "tie_embeddings",
                   **REGULARISER_OPTIONS},
    sections={"decode": {"beam": "beam_size", "length_penalty": "length_penalty"}},
    path_fields=("source", "target", "valid_source", "valid_target"),
    changeable=frozenset({"source", "target", "valid_source", "valid_target", "beam", "length_penalty"}),
    required={"source": "--source FILE", "target": "--target FILE"}, derived_model_fields=DERIVED_MODEL_FIELDS,
    evaluate=EVALUATE, predict=PREDICT,
)

# The trained model of a run directory: from_run(run_dir, which="auto") -> TrainedTranslator.
from_run = SPEC.from_run
