r"""The music task: polyphonic music as piano rolls, one frame after another (one-to-many when generating).

The glue the CLI and the Trainer share: read a chorale-style JSON file or a folder of MIDI files
(:mod:`rnnkit.data.music`), fix the pitch range, batch whole pieces (padded, :mod:`rnnkit.data.piano_rolls`),
build the :class:`~rnnkit.models.music.PianoRollModel`, score it as the literature does, and sample from it.

Scores (Boulanger-Lewandowski et al. 2012; Bay et al. 2009):

    nll_per_step    = (1 / Σ_n T_n) Σ_n Σ_{t=1..T_n} −log P(v_t^n | v_<t^n)        nats per time step

                      every frame of every piece, each −log P summed over all P pitches of the range; each piece
                      starts from the model's initial state, so its first frame is predicted from nothing.
    frame_accuracy  = Σ_t TP_t / Σ_t (TP_t + FP_t + FN_t)

                      of the model's predicted frame (its most likely frame given the true ones before it:
                      thresholded at 1/2 for the Bernoulli output, decided pitch by pitch for the NADE) against
                      the true frame, counts summed over all frames before dividing.

Training minimises the same NLL, averaged over the frames of a batch; the Trainer's validation loss is
therefore the validation split's ``nll_per_step``. Training pieces may be cut to at most ``seq_len`` steps
and transposed by up to ``transpose`` semitones (a new random shift per piece and epoch, only shifts that
stay inside the pitch range); validation and evaluation always read whole, untransposed pieces.

Example::

    from rnnkit.tasks import music
    from rnnkit.tasks.run import train
    settings = RunSettings(music.MusicDataConfig(data="jsb-chorales-quarter.json"),
                           {"output": "nade", "hidden_size": 256}, TrainConfig(time_budget=600))
    report = train(music.SPEC, settings, run_dir=RunDirectory.create("runs/bach"))
    trained = music.from_run("runs/bach")
    music.evaluate(trained, split="test")                # {"nll_per_step": ..., "frame_accuracy": ..., ...}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from rnnkit.checks import MAX_BPM, MIN_BPM, check_fits_in_memory
from rnnkit.data.music import MAX_PIECE_STEPS, SPLITS, Piece, PitchRange, check_step, read_midi, read_music
from rnnkit.data.piano_rolls import by_length, frame_mask, padded, shift_limits, transposed
from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.files import check_distinct_outputs, write_failure
from rnnkit.models.music import PianoRollModel
from rnnkit.models.size import parameter_count
from rnnkit.train import Checkpoint, DistContext, Task, TaskLoss, seed_everything
from rnnkit.train.outputs import check_output
from rnnkit.train.progress import tracked
from rnnkit.train.task import Baseline

from .music_pieces import MusicData, load_data, piece_ref, split_pieces
from .operations import SEED, Choice, File, Float, Int, Operation, Option, Text
from .spec import REGULARISER_OPTIONS, Prepared, RunSettings, TaskSpec, build_within_memory

NAME = "music"
DEFAULT_EPOCHS = 100
EVAL_BATCH_SIZE = 64  # pieces per forward pass when only scoring
EVAL_BATCH_FRAMES = 65_536  # ... and at most this many padded frames a pass: long pieces are scored a few at a time
# What one frame of a training batch costs in bytes, roughly: every float the forward pass keeps for the backward
# one (each layer's gates and states, about 12 H a layer; the NADE's P × G hidden pre-activations three times over;
# the frame itself as input, target and mask), 4 bytes each. A check, not a plan: it refuses the batch of
# 100,000-step pieces that would fail inside the allocator, not one that merely fits tightly.
TRAINING_FLOATS_PER_LAYER_UNIT = 12
# Training batches are cut from pools of this many batches' worth of pieces sorted by length, so that a
# batch holds pieces of similar length (little padding), yet which pieces meet in a batch changes every epoch.
POOL_BATCHES = 8


@dataclass
class MusicDataConfig:
    """Where the music comes from, how it is quantised and batched; saved inside every checkpoint.

    Args:
        data: a chorale-style JSON file, a folder of MIDI files, or one MIDI file.
        valid_fraction: the share of the pieces held out for validation when the data has no ``valid`` split.
        step: quarter notes per time step when reading MIDI (1: quarter notes, 0.25: sixteenths).
        pitch_range: ``"LOW-HIGH"`` in MIDI numbers; None: the range of the training and validation pieces.
        batch_size: pieces per optimizer step (over all processes).
        seq_len: cut training pieces into parts of at most this many steps (None: whole pieces).
        transpose: transpose each training piece by a random shift of up to this many semitones each epoch.
    """

    data: str | None = None
    valid_fraction: float = 0.1
    step: float = 1.0
    pitch_range: str | None = None
    batch_size: int = 16
    seq_len: int | None = None
    transpose: int = 0

    def __post_init__(self):
        if self.data is None:
            raise InputError("give the music to learn with --data FILE.json or --data FOLDER_OF_MIDI")
        if not 0 <= self.valid_fraction < 1:
            raise InputError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        check_step(self.step)
        if self.batch_size < 1 or (self.seq_len is not None and self.seq_len < 1):
            raise InputError("--batch-size and --seq-len must be at least 1")
        if self.transpose < 0:
            raise InputError(f"--transpose must be >= 0 semitones, got {self.transpose}")
        if self.pitch_range is not None:
            PitchRange.parse(self.pitch_range)


# ------------------------------------------------------------------------------------------- scores


@torch.no_grad()
def score_rolls(model: PianoRollModel, rolls: list[np.ndarray], batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """``nll_per_step`` and ``frame_accuracy`` (see the module docstring) of whole pieces, each from the
    model's initial state; ``steps`` the frames scored, ``pieces`` the pieces."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nll, steps, tp, fp, fn = 0.0, 0, 0.0, 0.0, 0.0
    try:
        batches = _frame_bounded(by_length(rolls, batch_size), rolls)
        for rows in tracked(batches, "score", total=len(rolls), unit="piece", size=len):  # a bar on a terminal
            batch, lengths = padded([rolls[i] for i in rows])
            batch, lengths = batch.to(device), lengths.to(device)  # (N, L, P), (N,)
            mask = frame_mask(lengths, batch.size(1))  # (N, L)
            nll -= float(model(batch, lengths).sum())
            steps += int(lengths.sum())
            predicted = model.most_likely(batch) * mask.unsqueeze(-1)  # (N, L, P)
            tp += float((predicted * batch).sum())
            fp += float((predicted * (1 - batch)).sum())
            fn += float(((1 - predicted) * batch * mask.unsqueeze(-1)).sum())
    finally:
        model.train(was_training)
    # No note in any true or predicted frame: nothing was missed or invented.
    accuracy = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return {"nll_per_step": nll / steps, "frame_accuracy": accuracy, "steps": steps, "pieces": len(rolls)}


def _frame_bounded(batches: list[list[int]], rolls: list[np.ndarray]) -> Iterator[list[int]]:
    """``batches`` (indices of pieces sorted by length) cut further so that a batch padded to its longest piece
    holds at most :data:`EVAL_BATCH_FRAMES` frames (one piece at least): scoring memory stays bounded."""
    for rows in batches:
        part: list[int] = []
        for i in rows:  # shortest first: the last piece added is the longest
            if part and (len(part) + 1) * len(rolls[i]) > EVAL_BATCH_FRAMES:
                yield part
                part = []
            part.append(i)
        if part:
            yield part


def check_training_batch_memory(config: MusicDataConfig, model: PianoRollModel, pieces: list) -> None:
    """InputError (one line, before any batch is built) when a batch of the longest training ``pieces`` (anything
    with a length in steps) cannot fit in this machine's memory for training; the fix: --seq-len (or a smaller
    --batch-size)."""
    if not pieces:
        return
    longest = max(len(piece) for piece in pieces)
    settings = model.config
    P = model.num_pitches
    frame_floats = TRAINING_FLOATS_PER_LAYER_UNIT * settings.num_layers * settings.hidden_size + 8 * P
    if settings.output == "nade":
        frame_floats += 3 * P * settings.nade_hidden
    check_fits_in_memory(4 * frame_floats * longest * config.batch_size,
                         f"training on batches of {config.batch_size} pieces of up to {longest:,} steps",
                         f"cut the pieces with --seq-len (e.g. --seq-len {min(longest // 2, 1000) or 1}) or give a "
                         "smaller --batch-size")


# ------------------------------------------------------------------------------------------- the task


class MusicTask(Task):
    """Padded batches of whole (or cut) pieces for the :class:`~rnnkit.train.Trainer`. The loss of a batch is
    Σ −log P(v_t | v_<t) over its real frames, so the validation loss is the NLL per step; each epoch the
    validation frame accuracy is reported too."""

    carries_state = False
    target_unit = "frames"

    def __init__(self, data: MusicData, config: MusicDataConfig, seed: int, dist: DistContext | None = None):
        self.dist = dist or DistContext()
        if config.batch_size < self.dist.world_size:
            raise InputError(f"--batch-size {config.batch_size} is smaller than the {self.dist.world_size} processes")
        self.config, self.seed = config, seed
        rolls = [data.pitches.roll(piece) for piece in data.train]
        if config.seq_len:
            rolls = [roll[i : i + config.seq_len] for roll in rolls for i in range(0, len(roll), config.seq_len)]
        self.train_rolls = rolls
        self.limits = [shift_limits(roll, config.transpose) for roll in rolls]
        self.valid_rolls = [data.pitches.roll(piece) for piece in data.valid]
        self.pitch_count = data.pitches.size

    def num_train_batches(self) -> int:
        # every pool but the last is whole batches, so only the very last batch can be short
        full, rest = divmod(len(self.train_rolls), self.config.batch_size)
        return full + int(rest > 0 and rest >= self.dist.world_size)

    def _epoch_batches(self, generator: torch.Generator) -> list[list[int]]:
        """This epoch's batches of piece indices: a random order, cut into pools sorted by length, cut into
        batches, in a random order (a batch too small to give every process a row is left out)."""
        size = self.config.batch_size
        order = torch.randperm(len(self.train_rolls), generator=generator).tolist()
        pool = size * POOL_BATCHES
        batches = [chunk[i : i + size]
                   for start in range(0, len(order), pool)
                   for chunk in [sorted(order[start : start + pool], key=lambda n: len(self.train_rolls[n]))]
                   for i in range(0, len(chunk), size)]
        batches = [batch for batch in batches if len(batch) >= self.dist.world_size]
        return [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]

    def _rows(self, indices: list[int]) -> list[int]:
        if not self.dist.is_distributed:
            return indices
        return [int(i) for i in torch.tensor_split(torch.tensor(indices), self.dist.world_size)[self.dist.rank]]

    def train_batches(self, epoch: int, start: int) -> Iterator:
        # Order and shifts depend only on (seed, epoch): a resumed run draws the same ones.
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        batches = self._epoch_batches(generator)
        shifts = [int(torch.randint(low, high + 1, (), generator=generator)) for low, high in self.limits]
        for batch in batches[start:]:
            rows = self._rows(batch)
            yield padded([transposed(self.train_rolls[i], shifts[i]) for i in rows])

    def valid_batches(self):
        if not self.valid_rolls:
            return None
        blocks = [self._rows(rows) for rows in by_length(self.valid_rolls, self.config.batch_size)]
        return [padded([self.valid_rolls[i] for i in rows]) for rows in blocks if rows]

    def loss(self, model: torch.nn.Module, batch, state) -> TaskLoss:
        rolls, lengths = batch  # (N, L, P), (N,)
        log_probs = model(rolls, lengths)  # (N, L), 0 on padding
        return TaskLoss(-log_probs.sum(), int(lengths.sum()), rolls.size(0), None)

    def baseline_loss(self) -> Baseline:
        """A fair coin for each pitch of a frame: P ln 2 nats per frame (the loss sums over the P pitches)."""
        return Baseline(self.pitch_count * math.log(2), f"a fair coin for each of {self.pitch_count} pitches")

    def score_validation(self, model: PianoRollModel) -> dict[str, float]:
        return {"frame_accuracy": score_rolls(model, self.valid_rolls)["frame_accuracy"]}


# PianoRollModel arguments the task takes from the data; the others are the run's model settings.
DERIVED_MODEL_FIELDS = ("num_pitches",)


def prepare(settings: RunSettings, checkpoint: Checkpoint | None, dist: DistContext,
            warn: Callable[[str], None] | None = None) -> Prepared:
    """Seed, read the pieces, fix the pitch range (a resumed run keeps its own) and build the model: all that
    can fail on what the user gave, done before a command touches a run directory."""
    config = settings.data
    seed_everything(settings.train.seed)
    saved = PitchRange(*checkpoint.meta["pitch_range"]) if checkpoint is not None else None
    data = load_data(config, saved)
    model = build_within_memory(lambda: PianoRollModel(data.pitches.size, **settings.model),
                                "lower the model's sizes (--hidden, --layers, --nade-hidden)")
    cut = config.seq_len or MAX_PIECE_STEPS
    check_training_batch_memory(config, model, [range(min(len(piece), cut)) for piece in data.train])
    options = {key: value for key, value in model.config.to_dict().items() if key not in DERIVED_MODEL_FIELDS}
    run_info = {"configs": {"data": asdict(config), "model": options},
                "pitch_range": [data.pitches.low, data.pitches.high], "data": data.description}
    steps = sum(len(piece) for piece in data.train)
    summary = (f"data: {data.description}: {len(data.train):,} training pieces ({steps:,} steps), "
               f"{len(data.valid):,} validation pieces; pitches {data.pitches} ({data.pitches.size}); "
               f"model {parameter_count(model):,} parameters")
    return Prepared(model, MusicTask(data, config, settings.train.seed, dist), run_info, summary, data)


# ------------------------------------------------------------------------------------------- a trained run


@dataclass
class TrainedMusicModel:
    """A trained music model (eval mode, CPU), its pitch range, its data settings, and the run it came from."""

    model: PianoRollModel
    pitches: PitchRange
    data_config: MusicDataConfig
    run_dir: str = "generated"


def from_checkpoint(checkpoint: Checkpoint) -> TrainedMusicModel:
    """The model (eval mode, CPU), pitch range and data settings of a loaded music checkpoint."""
    meta = checkpoint.meta
    pitches = PitchRange(*meta["pitch_range"])
    model = PianoRollModel(pitches.size, **meta["configs"]["model"])
    checkpoint.load_weights(model)
    return TrainedMusicModel(model.eval(), pitches, MusicDataConfig(**meta["configs"]["data"]),
                             str(checkpoint.path.parent.parent))


def from_run(run_dir: str | Path, which: str = "auto") -> TrainedMusicModel:
    """The model of a run directory's ``auto`` (best if any, else latest), ``latest`` or ``best`` checkpoint."""
    return SPEC.from_run(run_dir, which)


def evaluate(trained: TrainedMusicModel, data: str | None = None, split: str = "test") -> dict:
    """``nll_per_step``, ``frame_accuracy``, ``steps`` and ``pieces`` on one split of ``data`` (default: the
    run's own data file), every piece scored whole from the initial state."""
    pieces, split = split_pieces(trained.data_config, split, data)
    trained.pitches.check(pieces, "this model knows only those pitches; score music inside them, or train a model "
                                  "with --pitch-range {needed}")
    scores = score_rolls(trained.model, [trained.pitches.roll(piece) for piece in pieces])
    return {**scores, "data": str(data or trained.data_config.data), "split": split}


@dataclass
class Generated:
    """A generated piece: ``roll`` (T, P) uint8, of which the first ``prime_steps`` frames are the prime, cut
    from ``source`` (None without a prime)."""

    roll: np.ndarray
    prime_steps: int
    source: Piece | None


def prime_frames(trained: TrainedMusicModel, prime_piece: str | None, prime_midi: str | None, prime_steps: int | None,
                 data: str | None = None) -> tuple[np.ndarray, Piece | None]:
    """The prime's roll (L0, P) and the piece it was cut from (None without a prime)."""
    if prime_piece and prime_midi:
        raise InputError("--prime-piece and --prime-midi both name a prime; give one")
    if prime_steps is not None and not (prime_piece or prime_midi):
        raise InputError("--prime-steps needs a prime: give --prime-piece SPLIT:INDEX or --prime-midi FILE")
    if not (prime_piece or prime_midi):
        return np.zeros((0, trained.pitches.size), dtype=np.uint8), None
    if prime_piece:
        split, index = piece_ref(prime_piece)
        pieces, split = split_pieces(trained.data_config, split, data)
        if index >= len(pieces):
            raise InputError(f"--prime-piece {prime_piece}: the {split!r} split has {len(pieces)} pieces "
                             f"(0..{len(pieces) - 1}); give an index in that range")
        piece = pieces[index]
    else:
        piece = read_midi(prime_midi, trained.data_config.step)
    trained.pitches.check([piece], "this model knows only those pitches; give a prime inside them")
    roll = trained.pitches.roll(piece)
    return roll[: prime_steps or 8], piece


def generate_music(trained: TrainedMusicModel, steps: int, seed: int | None = None, temperature: float = 1.0,
                   prime_piece: str | None = None, prime_midi: str | None = None, prime_steps: int | None = None,
                   data: str | None = None) -> Generated:
    """``steps`` frames sampled after the prime (default 8 steps of ``prime_piece`` / ``prime_midi``, or none)."""
    prime, source = prime_frames(trained, prime_piece, prime_midi, prime_steps, data)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    sampled = trained.model.sample(steps, torch.from_numpy(prime).float(), temperature, generator)  # (L0 + steps, P)
    return Generated(sampled.round().to(torch.uint8).numpy(), len(prime), source)


def generate(trained: TrainedMusicModel, steps: int = 64, seed: int | None = None, temperature: float = 1.0,
             prime_piece: str | None = None, prime_steps: int | None = None, prime_midi: str | None = None,
             data: str | None = None, midi: str | None = None, wav: str | None = None, plot: str | None = None,
             bpm: float = 90.0, program: int = 0) -> dict:
    """A piece sampled after an optional prime (:func:`generate_music`), written as MIDI (``midi``), audio
    (``wav``) and a piano-roll picture beside a real piece (``plot``) where asked:
    ``{"steps", "prime_steps", "frames": [[pitch, ...] per step], "midi", "wav", "plot"}`` (the files written)."""
    from rnnkit.music import check_duration, write_midi, write_wav

    for path, flag, example in ((midi, "--midi", "out.mid"), (wav, "--wav", "out.wav"), (plot, "--plot", "roll.png")):
        if path:
            check_output(path, flag, inputs=[prime_midi, data], example=example)
    check_distinct_outputs((("--midi", midi), ("--wav", wav), ("--plot", plot)))  # --midi x --wav x: one would be lost
    for asked, module, extra in ((midi or prime_midi, "mido", "music"), (plot, "matplotlib.figure", "viz")):
        if asked:  # a missing extra is said before sampling, not after
            require(module, extra)
    if wav:
        check_duration(steps, trained.data_config.step, bpm)  # the continuation alone: before sampling it
    piece = generate_music(trained, steps, seed, temperature, prime_piece, prime_midi, prime_steps, data)
    frames = trained.pitches.frames(piece.roll)
    step, written = trained.data_config.step, {}
    if wav:
        check_duration(len(frames), step, bpm)  # before any file is written: no MIDI left behind by a refused WAV
    if midi:
        written["midi"] = _write(midi, lambda: write_midi(frames, midi, step, bpm, program))
    if wav:
        written["wav"] = _write(wav, lambda: write_wav(frames, wav, step, bpm))
    if plot:
        from rnnkit.viz.piano_roll import piano_roll_png

        reference, name = real_piece(trained, piece, data)
        written["plot"] = str(piano_roll_png(plot, piece.roll, trained.pitches.low, piece.prime_steps, reference, name,
                                             title=trained.run_dir))
    return {"steps": len(frames), "prime_steps": piece.prime_steps, "frames": frames, **written}


def _write(path: str, write) -> str:
    """``write()`` (MIDI and WAV files go through rnnkit.files.write_output), with the
    system's refusal (a read-only mount, /proc, a full disk) as one line naming the path."""
    try:
        return str(write())
    except OSError as error:
        raise write_failure(Path(path), error) from None


def real_piece(trained: TrainedMusicModel, generated: Generated,
               data: str | None = None) -> tuple[np.ndarray, str] | tuple[None, None]:
    """A real piece to show beside ``generated``, cut to its length, and its name: the prime's own piece when
    it is long enough, else the first long enough piece of the test (valid, train) split of ``data`` (default:
    the run's data), else the longest; (None, None) when there is none to read."""
    length, source = len(generated.roll), generated.source
    candidates = [source] if source is not None else []
    try:
        splits = read_music(data or trained.data_config.data, trained.data_config.step)
    except InputError:
        splits = {}
    for split in ("test", "valid", "train"):
        candidates += splits.get(split, [])
    inside = [piece for piece in candidates if trained.pitches.contains(piece)]
    if not inside:
        return None, None
    long_enough = [piece for piece in inside if len(piece) >= length]
    piece = long_enough[0] if long_enough else max(inside, key=len)
    return trained.pitches.roll(piece)[:length], piece.name


EVALUATE = Operation(evaluate, """NLL per time step (nats) and frame accuracy of one split of the data, every piece
    scored whole from the initial state.""", (
    Option("data", File("FILE|DIR"), "The music, in the run's format (chorale JSON or MIDI). Default: the run's data."),
    Option("split", Choice(SPLITS), "The split of the data to score."),
))
GENERATE = Operation(generate, """Music from the model: a piece sampled after an optional prime, written as MIDI, WAV
    and a piano roll where asked (--midi, --wav, --plot).""", (
    Option("steps", Int(0, MAX_PIECE_STEPS), "Time steps to generate after the prime."),
    Option("seed", SEED, "Seed for a reproducible piece."),
    Option("temperature", Float(0, low_open=True), "Sharpen (<1) or flatten (>1) the model's distribution."),
    Option("prime_piece", Text("SPLIT:INDEX"), "Start from the first steps of this piece of the data, e.g. test:0."),
    Option("prime_steps", Int(1), "Steps of the prime to use. Default: 8."),
    Option("prime_midi", File(), "Start from the first steps of this MIDI file."),
    Option("data", File("FILE|DIR"), "Where --prime-piece and the real piece beside the plot come from. Default: "
                                     "the run's data."),
    Option("midi", File(), "Write the piece as a MIDI file."),
    Option("wav", File(), "Render the piece to a WAV file with rnnkit's synthesiser."),
    Option("plot", File(), "Draw its piano roll (prime and continuation marked) beside a real piece, as PNG."),
    Option("bpm", Float(MIN_BPM, MAX_BPM), "Tempo of the MIDI and WAV, quarter notes per minute."),
    Option("program", Int(0, 127), "General MIDI instrument of the MIDI file, 0-based (0 piano; 19 church organ)."),
))


SPEC = TaskSpec(
    name=NAME, noun="music model", data_config=MusicDataConfig, prepare=prepare, from_checkpoint=from_checkpoint,
    model_options={"output": "output", "cell": "cell", "hidden": "hidden_size", "layers": "num_layers",
                   "dropout": "dropout", "input_dropout": "input_dropout", "nade_hidden": "nade_hidden",
                   "engine": "engine", "block": "block", **REGULARISER_OPTIONS},
    path_fields=("data",), changeable=frozenset({"data"}),
    required={"data": "the music with --data FILE.json or --data FOLDER_OF_MIDI"},
    derived_model_fields=DERIVED_MODEL_FIELDS, default_epochs=DEFAULT_EPOCHS, evaluate=EVALUATE, generate=GENERATE,
)
