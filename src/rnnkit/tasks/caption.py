"""The captioning task: one image in, a sentence describing it out (one-to-many).

The glue the CLI and the Trainer share: the images and captions (by default the embedded digit compositions
of :mod:`rnnkit.data.digits`; or an ``.npz`` file), the caption vocabulary, padded batches, the
:class:`~rnnkit.models.Captioner`, and its scores:

    exact match      the share of images whose generated caption equals the reference, token for token
    token accuracy   tokens right at their position, over max(len(generated), len(reference)) positions
                     per caption (a missing or extra token counts as an error)

Data files (``--data``): a NumPy ``.npz`` archive with ``images``, (N, H, W) grayscale, uint8 in 0..255 or
floats in [0, 1], and ``captions``, (N,) strings. Every image of a run has the same size.

Images to caption (``rnnkit predict --input``): a picture of any size and mode, or a ``.npy`` array, made into
what the model reads (grayscale, the run's size: 8 × 40 pixels for the default digits, height × width) as
:mod:`rnnkit.tasks.caption_image` says, which says what it did.

Example::

    from rnnkit.tasks.run import train
    settings = RunSettings(CaptionDataConfig(train_size=20000), {"hidden_size": 256}, TrainConfig(epochs=10))
    report = train(SPEC, settings, run_dir=RunDirectory.create("runs/digits"))
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from rnnkit.checks import check_fits_in_memory
from rnnkit.data.digits import DIGIT_SIZE, digit_compositions
from rnnkit.data.parallel import encode_sentences, target_pair
from rnnkit.data.tokens import detokenize, tokenize
from rnnkit.data.vocab import BOS_ID, EOS_ID, PAD_ID, SEQUENCE_SPECIALS, TokenVocab
from rnnkit.errors import InputError
from rnnkit.models import Captioner
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, Task, TaskLoss, seed_everything, summed_token_loss
from rnnkit.train.progress import tracked
from rnnkit.train.task import Baseline, uniform_baseline

from .caption_image import fit_image, gray_array, read_image, write_png  # noqa: F401  (write_png: tests, docs)
from .operations import File, Inputs, Operation, Option
from .spec import REGULARISER_OPTIONS, Prepared, RunSettings, TaskSpec, build_within_memory

NAME = "caption"
MAX_CAPTION_LENGTH = 50


@dataclass
class CaptionDataConfig:
    """Where the images and captions come from and how they are batched; saved inside every checkpoint.

    Args:
        data: an ``.npz`` file of ``images`` and ``captions``; None: the embedded digit compositions.
        valid_data: a validation ``.npz``; None holds out the last ``valid_fraction`` of ``data`` (or, for the
            digits, composes ``valid_size`` images from the validation digits).
        valid_fraction: the share of ``data`` held out when there is no ``valid_data``.
        train_size, valid_size, test_size: digit compositions for training, validation and ``rnnkit
            evaluate`` (drawn from disjoint sets of source digits).
        max_digits: the longest composition, 1..max_digits digits; it sets the image width (8 × max_digits).
        composition_seed: varies which compositions are drawn (the split of source digits is fixed).
        batch_size: images per step (over all processes).
        teacher_forcing: the probability that the decoder reads the reference token while training.
    """

    data: str | None = None
    valid_data: str | None = None
    valid_fraction: float = 0.1
    train_size: int = 20_000
    valid_size: int = 1_000
    test_size: int = 1_000
    max_digits: int = 5
    composition_seed: int = 0
    batch_size: int = 64
    teacher_forcing: float = 1.0

    def __post_init__(self):
        for flag, value in (("train-size", self.train_size), ("valid-size", self.valid_size),
                            ("test-size", self.test_size), ("max-digits", self.max_digits),
                            ("batch-size", self.batch_size)):
            if value < 1:
                raise InputError(f"--{flag} must be at least 1, got {value}")
        if not 0 <= self.valid_fraction < 1:
            raise InputError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        if not 0 <= self.teacher_forcing <= 1:
            raise InputError(f"--teacher-forcing must be in [0, 1], got {self.teacher_forcing}")
        if self.data is None and self.valid_data is not None:
            raise InputError("--valid-data needs --data; the embedded digits bring their own validation images")
        if self.data is None:  # the compositions are drawn here: their images must fit before they are allocated
            images = (self.train_size + self.valid_size + self.test_size) * DIGIT_SIZE * DIGIT_SIZE * self.max_digits
            check_fits_in_memory(4 * images, f"composing {self.train_size + self.valid_size + self.test_size:,} images "
                                             f"of up to {self.max_digits:,} digits", "give smaller --train-size, "
                                             "--valid-size, --test-size or --max-digits")


# ------------------------------------------------------------------------------------------- data


@dataclass
class CaptionedImages:
    """images (N, H, W) float32 in [0, 1]; captions: N strings; description: where they come from."""

    images: np.ndarray
    captions: list[str]
    description: str

    def __len__(self) -> int:
        return len(self.captions)


def read_npz(path: str) -> CaptionedImages:
    """Images and captions from an ``.npz`` archive (see the module docstring); InputError for every way it
    can be unusable. Images with an empty caption are skipped, and counted in the description."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; check the path")
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise ValueError("not an archive")
        missing = [key for key in ("images", "captions") if key not in archive.files]
        if missing:
            raise InputError(f"{path} has no {' and no '.join(missing)} array (it has {', '.join(archive.files) or 'none'}); "
                             "save one with np.savez(path, images=..., captions=...)")
        images, captions = archive["images"], archive["captions"]
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty or truncated file
        raise InputError(f"{path} is not a NumPy .npz archive without pickled objects ({error}); "
                         "save one with np.savez(path, images=uint8 array, captions=array of str)") from None
    if images.ndim != 3 or images.shape[0] == 0:
        raise InputError(f"{path}: images must be an (N, height, width) grayscale array, got shape {images.shape}")
    if captions.shape != (images.shape[0],) or captions.dtype.kind != "U":
        raise InputError(f"{path}: captions must be {images.shape[0]} strings, one per image, got "
                         f"{captions.dtype} of shape {captions.shape}")
    scaled = _scaled(images, path)
    kept = [n for n, caption in enumerate(captions) if str(caption).strip()]
    skipped = len(captions) - len(kept)
    if not kept:
        raise InputError(f"{path}: every caption is empty")
    description = path + (f" ({skipped:,} images with an empty caption skipped)" if skipped else "")
    return CaptionedImages(scaled[kept], [str(captions[n]).strip() for n in kept], description)


def _scaled(array: np.ndarray, name: str) -> np.ndarray:
    """uint8 0..255 → [0, 1]; floats must already lie in [0, 1]."""
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32)
    if array.dtype.kind != "f":
        raise InputError(f"{name}: pixel values must be uint8 (0-255) or floats in [0, 1], got {array.dtype}")
    if array.size and (not np.isfinite(array).all() or array.min() < 0 or array.max() > 1):
        raise InputError(f"{name}: float pixel values must lie in [0, 1], got {array.min():g} to {array.max():g}; "
                         "divide by the maximum (255 for 8-bit images)")
    return array.astype(np.float32)


def digits(split: str, config: CaptionDataConfig) -> CaptionedImages:
    size = {"train": config.train_size, "valid": config.valid_size, "test": config.test_size}[split]
    images, captions = digit_compositions(split, size, config.max_digits, config.composition_seed)
    return CaptionedImages(images, captions, f"embedded digits ({split}: {size:,} compositions of "
                                             f"1-{config.max_digits} digits)")


def load_data(config: CaptionDataConfig) -> tuple[CaptionedImages, CaptionedImages | None]:
    """The training and validation images that ``config`` names."""
    if config.data is None:
        return digits("train", config), digits("valid", config)
    train = read_npz(config.data)
    if config.valid_data is not None:
        valid = read_npz(config.valid_data)
        if valid.images.shape[1:] != train.images.shape[1:]:
            raise InputError(f"{config.valid_data} holds {_size(valid.images.shape[1:])} images but {config.data} "
                             f"{_size(train.images.shape[1:])}; give images of one size")
        return train, valid
    if config.valid_fraction == 0:
        return train, None
    held = max(1, round(len(train) * config.valid_fraction))
    if held >= len(train):
        raise InputError(f"{config.data} has only {len(train)} images, too few to hold some out; give --valid-data")
    cut = len(train) - held
    return (CaptionedImages(train.images[:cut], train.captions[:cut], train.description),
            CaptionedImages(train.images[cut:], train.captions[cut:], f"{train.description} (held out)"))


def _size(shape) -> str:
    height, width = shape
    return f"{width}×{height} (width×height)"


# ------------------------------------------------------------------------------------------- images to caption


# read_image, fit_image, write_png: any picture made into what the model reads (.caption_image)


# ------------------------------------------------------------------------------------------- the task


def caption_tokens(captions: list[str]) -> list[list[str]]:
    """The (reversible) tokens of each caption."""
    return [tokenize(caption, joiners=True) for caption in captions]


def caption_scores(hypotheses: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    """Exact match and token accuracy (see the module docstring) of generated against reference tokens."""
    exact = sum(h == r for h, r in zip(hypotheses, references))
    right = sum(sum(a == b for a, b in zip(h, r)) for h, r in zip(hypotheses, references))
    positions = sum(max(len(h), len(r)) for h, r in zip(hypotheses, references))
    return {"exact_match": exact / len(references), "token_accuracy": right / max(positions, 1)}


class CaptionTask(Task):
    """Padded batches of images and captions for the :class:`~rnnkit.train.Trainer`; the validation score
    is the exact match of greedy captions (``selection``)."""

    selection = ("exact_match", "max")

    def __init__(self, train: CaptionedImages, valid: CaptionedImages | None, vocab: TokenVocab,
                 config: CaptionDataConfig, seed: int, dist: DistContext | None = None):
        self.dist = dist or DistContext()
        self.dist.check_batch_size(config.batch_size)
        self.vocab, self.config, self.seed = vocab, config, seed
        self.train_images = torch.from_numpy(train.images)  # (N, H, W)
        self.train_ids = encode_sentences(caption_tokens(train.captions), vocab, MAX_CAPTION_LENGTH).ids
        self.valid = valid
        if valid is not None:
            self.valid_images = torch.from_numpy(valid.images)
            self.valid_ids = encode_sentences(caption_tokens(valid.captions), vocab, MAX_CAPTION_LENGTH).ids
        size = config.batch_size
        self._batches = [slice(i, i + size) for i in range(0, len(self.train_ids), size)
                         if len(self.train_ids[i : i + size]) >= self.dist.world_size]

    def num_train_batches(self) -> int:
        return len(self._batches)

    def _rows(self, indices: torch.Tensor) -> torch.Tensor:
        if not self.dist.is_distributed:
            return indices
        return torch.tensor_split(indices, self.dist.world_size)[self.dist.rank]

    def _batch(self, images: torch.Tensor, ids: list[list[int]], rows: torch.Tensor):
        target_inputs, target_outputs = target_pair([ids[i] for i in rows.tolist()])
        return images[rows], target_inputs, target_outputs

    def train_batches(self, epoch: int, start: int) -> Iterator:
        order = torch.randperm(len(self.train_ids), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        for cut in self._batches[start:]:
            yield self._batch(self.train_images, self.train_ids, self._rows(order[cut]))

    def valid_batches(self):
        if self.valid is None:
            return None
        size = self.config.batch_size
        everything = torch.arange(len(self.valid_ids))
        blocks = [self._rows(everything[i : i + size]) for i in range(0, len(everything), size)]
        return [self._batch(self.valid_images, self.valid_ids, rows) for rows in blocks if len(rows)]

    def loss(self, model: torch.nn.Module, batch, state) -> TaskLoss:
        images, target_inputs, target_outputs = batch
        ratio = self.config.teacher_forcing if model.training else 1.0
        logits = model(images, target_inputs, ratio)  # (N, T, V)
        loss_sum, n_tokens = summed_token_loss(logits, target_outputs, pad_index=PAD_ID)
        return TaskLoss(loss_sum, n_tokens, images.size(0), None)

    def baseline_loss(self) -> Baseline:
        return uniform_baseline(len(self.vocab), "words")

    def score_validation(self, model: Captioner) -> dict[str, float]:
        generated = caption_images(model, self.vocab, self.valid.images, beam_size=1)
        return caption_scores(caption_tokens(generated), caption_tokens(self.valid.captions))


# Captioner arguments the task takes from the vocabulary and the images; the others are the run's model settings.
DERIVED_MODEL_FIELDS = ("vocab_size", "image_height", "image_width", "pad_index", "bos_index", "eos_index")


def build_model(vocab: TokenVocab, image_shape: tuple[int, int], model_options: dict) -> Captioner:
    return Captioner(len(vocab), *image_shape, **model_options, pad_index=PAD_ID, bos_index=BOS_ID, eos_index=EOS_ID)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read the training and validation images, take the caption vocabulary (every token of the
    training captions, or a resumed run's own) and build the model."""
    config, seed = settings.data, settings.train.seed
    seed_everything(seed)
    train, valid = load_data(config)
    image_shape = tuple(train.images.shape[1:])
    if checkpoint is not None:
        vocab = TokenVocab.from_dict(checkpoint.meta["vocab"], SEQUENCE_SPECIALS)
        saved_shape = tuple(checkpoint.meta["image_shape"])
        if image_shape != saved_shape:
            raise InputError(f"the data holds {_size(image_shape)} images but the run was trained on "
                             f"{_size(saved_shape)}; resume with images of the run's size")
    else:
        vocab = TokenVocab.build(caption_tokens(train.captions), min_freq=1, specials=SEQUENCE_SPECIALS)
    model = build_within_memory(lambda: build_model(vocab, image_shape, settings.model),
                                "lower the model's sizes (--hidden, --embedding, --features, --channels)")
    options = {key: value for key, value in model.config.items() if key not in DERIVED_MODEL_FIELDS}
    run_info = {"configs": {"data": asdict(config), "model": options}, "vocab": vocab.to_dict(),
                "image_shape": list(image_shape), "data": train.description}
    held = f", {len(valid):,} validation images" if valid is not None else ""
    summary = (f"data: {train.description}: {len(train):,} training images of {_size(image_shape)}{held}; "
               f"vocabulary {len(vocab):,} tokens; model {parameter_count(model):,} parameters")
    return Prepared(model, CaptionTask(train, valid, vocab, config, seed, dist), run_info, summary)


@dataclass
class TrainedCaptioner:
    model: Captioner
    vocab: TokenVocab
    image_shape: tuple[int, int]
    data_config: CaptionDataConfig


def from_checkpoint(checkpoint: Checkpoint) -> TrainedCaptioner:
    """The model (eval mode, CPU), vocabulary and data settings of a loaded caption checkpoint."""
    meta = checkpoint.meta
    vocab = TokenVocab.from_dict(meta["vocab"], SEQUENCE_SPECIALS)
    image_shape = tuple(meta["image_shape"])
    model = checkpoint.load_weights(build_model(vocab, image_shape, meta["configs"]["model"]))
    return TrainedCaptioner(model.eval(), vocab, image_shape, CaptionDataConfig(**meta["configs"]["data"]))


def caption_images(model: Captioner, vocab: TokenVocab, images: np.ndarray, beam_size: int = 1,
                   batch_size: int = 256) -> list[str]:
    """Captions of (N, H, W) images in [0, 1], generated greedily or by beam search."""
    captions = []
    starts = range(0, len(images), batch_size)
    for start in tracked(starts, "caption", total=len(images), unit="image",  # a bar on a terminal
                         size=lambda start: len(images[start : start + batch_size])):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
        result = model.generate(batch, beam_size=beam_size, max_length=MAX_CAPTION_LENGTH)
        captions += [detokenize(vocab.decode(tokens)) for tokens in result.tokens]
    return captions


def evaluate(trained: TrainedCaptioner, data: str | None = None, beam_size: int = 1) -> dict:
    """Exact match and token accuracy on ``data`` (an .npz) or, by default, the run's held-out digit
    compositions (from test digits never used in training or validation)."""
    if data is None:
        if trained.data_config.data is not None:
            raise InputError("this run was trained on --data files: give held-out images with --data FILE.npz")
        held_out = digits("test", trained.data_config)
    else:
        held_out = read_npz(data)
        if held_out.images.shape[1:] != trained.image_shape:
            raise InputError(f"{data} holds {_size(held_out.images.shape[1:])} images; this model reads "
                             f"{_size(trained.image_shape)} images")
    generated = caption_images(trained.model, trained.vocab, held_out.images, beam_size)
    scores = caption_scores(caption_tokens(generated), caption_tokens(held_out.captions))
    return {**scores, "images": len(held_out), "data": held_out.description}


def predict(trained: TrainedCaptioner, input=None, warn: Callable[[str], None] | None = None) -> dict:
    """``{"input", "caption"}``: the caption of one image of any size and mode, a picture or ``.npy`` file
    (:func:`~rnnkit.tasks.caption_image.read_image`) or in Python an (h, w) or (h, w, 3|4) array (``"input"`` is
    then ``"array"``), made into the model's size and mode first; ``warn`` is told in one line what was done to
    it (``adjusted``, the same words, is in the result)."""
    notes: list[str] = []
    if isinstance(input, str):
        image = read_image(input, *trained.image_shape, notes)  # (H, W)
    else:
        gray, converted = gray_array(input)
        image, fitted = fit_image(gray, *trained.image_shape)  # (H, W)
        notes += converted + fitted
    name = input if isinstance(input, str) else "array"
    result = {"input": name, "caption": caption_images(trained.model, trained.vocab, image[None])[0]}
    if notes:
        H, W = trained.image_shape
        result["adjusted"] = f"{name}: the model reads {W}×{H} grayscale images; {'; '.join(notes)}"
        if warn is not None:
            warn(result["adjusted"])
    return result


EVALUATE = Operation(evaluate, "Exact match and token accuracy of greedy captions.", (
    Option("data", File("FILE.npz"), "Images (N, H, W) and captions (N,) in an .npz. Default: the held-out digit "
                                     "compositions of the run."),
))
PREDICT = Operation(predict, "The caption of one image.", (
    Option("input", Inputs("images", metavar="IMAGE"), "The image: a picture (PNG, JPEG, ... of any size and mode: "
                                                       "converted to the model's, which is said) or a .npy array.",
           required="the image"),
))


SPEC = TaskSpec(
    name=NAME, noun="captioner", data_config=CaptionDataConfig, prepare=prepare, from_checkpoint=from_checkpoint,
    model_options={"channels": "channels", "features": "feature_size", "embedding": "embedding_dim", "cell": "cell",
                   "hidden": "hidden_size", "layers": "num_layers", "condition": "condition", "dropout": "dropout",
                   "engine": "engine", "block": "block", **REGULARISER_OPTIONS},
    changeable=frozenset({"data", "valid_data", "test_size"}), derived_model_fields=DERIVED_MODEL_FIELDS,
    evaluate=EVALUATE, predict=PREDICT,
)

# The trained model of a run directory: from_run(run_dir, which="auto") -> TrainedCaptioner.
from_run = SPEC.from_run
