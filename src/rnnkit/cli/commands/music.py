"""``rnnkit train music``, and ``rnnkit evaluate`` / ``rnnkit generate`` on a music run.

    rnnkit train music --data jsb-chorales-quarter.json [--output nade|bernoulli] ... [--out DIR] [--resume DIR]
    rnnkit train music --data FOLDER_OF_MIDI --step 0.25 [--pitch-range 21-108] ...
    rnnkit evaluate DIR [--data FILE] [--split test] [--json]     nll_per_step, frame_accuracy, steps, pieces
    rnnkit generate DIR [--steps 64] [--seed 0] [--temperature 1.0] [--prime-piece test:0 --prime-steps 8 |
                        --prime-midi FILE.mid] [--midi out.mid] [--wav out.wav] [--plot roll.png] [--json]

Without --midi, --wav or --plot, ``generate`` prints the piece, one step a line of note names (``-`` for a rest).
"""


from pathlib import Path

import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import Fraction, Positive, PositiveFloat, Probability, recurrent_options
from rnnkit.cli.options import regulariser_options, training_options
from rnnkit.cli.outputs import check_output
from rnnkit.cli.task_command import Applies, TaskCommand, lines, saved_line, show, stopped_line, train_command_of
from rnnkit.errors import InputError
from rnnkit.files import write_failure
from rnnkit.tasks import music
from rnnkit.tasks.music import DEFAULT_EPOCHS, SPEC, generate_music, real_piece


def evaluate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit evaluate DIR [--data FILE|DIR] [--split test] [--json]``: NLL per step and frame accuracy."""
    trained = SPEC.from_run(run_dir, checkpoint=checkpoint)
    metrics = music.evaluate(trained, options.get("data"), options.get("split") or "test")
    show(metrics, options, lambda m: f"NLL {m['nll_per_step']:.4f} nats per step  frame accuracy "
                                     f"{m['frame_accuracy']:.2%}  ({m['steps']:,} steps of {m['pieces']:,} pieces: "
                                     f"{m['split']} split of {m['data']})")


def report(report: dict, run_path, settings) -> str:
    validation = None
    if "valid_loss" in report:
        validation = f"validation: NLL {report['valid_loss']:.4f} nats per step"
        if "valid_frame_accuracy" in report:
            validation += f", frame accuracy {report['valid_frame_accuracy']:.2%}"
        if report.get("best_valid_loss") is not None:
            validation += f"; best NLL {report['best_valid_loss']:.4f} (--checkpoint best)"
    return lines(stopped_line(report, "frames"), validation, saved_line(
        report, "use it with: rnnkit generate {run} --midi out.mid --wav out.wav, rnnkit evaluate {run} --json"))


def _no_bidirectional(options: dict) -> None:
    if options["bidirectional"]:
        raise InputError("--bidirectional does not apply to a model that predicts the next frame; drop it")


def generate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit generate DIR ...`` on a music run: sample ``steps`` frames after an optional prime and write
    them as MIDI (``midi``), audio (``wav``) and a piano-roll picture (``plot``), or print them.

    ``options`` by name: steps, seed, temperature, prime_piece, prime_steps, prime_midi, data, midi, wav,
    plot, bpm, program, as_json (missing or None: 64 steps, an 8-step prime, 90 bpm, program 0).
    """
    from rnnkit.music import write_midi, write_wav

    option = {**_GENERATE_DEFAULTS, **{key: value for key, value in options.items() if value is not None}}
    for flag, example in (("midi", "out.mid"), ("wav", "out.wav"), ("plot", "roll.png")):
        if option.get(flag):
            check_output(option[flag], f"--{flag}", inputs=[option.get("prime_midi"), option.get("data")],
                         example=example)
    trained = SPEC.from_run(run_dir, checkpoint=checkpoint)
    piece = generate_music(trained, option["steps"], option.get("seed"), option["temperature"],
                           option.get("prime_piece"), option.get("prime_midi"), option.get("prime_steps"),
                           option.get("data"))
    frames = trained.pitches.frames(piece.roll)
    step, written = trained.data_config.step, {}
    if option.get("midi"):
        written["midi"] = _write(option["midi"], lambda: write_midi(frames, option["midi"], step, option["bpm"],
                                                                    option["program"]))
    if option.get("wav"):
        written["wav"] = _write(option["wav"], lambda: write_wav(frames, option["wav"], step, option["bpm"]))
    if option.get("plot"):
        from rnnkit.viz.piano_roll import piano_roll_png

        reference, name = real_piece(trained, piece, option.get("data"))
        written["plot"] = str(piano_roll_png(option["plot"], piece.roll, trained.pitches.low, piece.prime_steps,
                                             reference, name, title=str(run_dir)))
    if option.get("as_json"):
        click.echo(to_json({"steps": len(frames), "prime_steps": piece.prime_steps, "frames": frames, **written}))
        return
    if not written:
        from rnnkit.viz.piano_roll import note_name

        for t, frame in enumerate(frames):
            marker = "prime" if t < piece.prime_steps else ""
            click.echo(f"{t:4d} {' '.join(note_name(p) for p in frame) or '-'}" + (f"\t{marker}" if marker else ""))
        return
    click.echo(f"{len(frames)} steps ({piece.prime_steps} prime + {len(frames) - piece.prime_steps} generated): "
               + ", ".join(f"{kind} {path}" for kind, path in written.items()), err=True)


def _write(path: str, write) -> str:
    """``write()`` (MIDI and WAV files are written in place, not through rnnkit.files.write_atomic), with the
    system's refusal (a read-only mount, /proc, a full disk) as one line naming the path."""
    try:
        return str(write())
    except OSError as error:
        raise write_failure(Path(path), error) from None


_GENERATE_DEFAULTS = {"steps": 64, "temperature": 1.0, "bpm": 90.0, "program": 0}

# The flags of `rnnkit generate` that only music takes (beside --seed, --temperature and --checkpoint, which it
# shares with text generation). Their defaults are None (applied in `generate`), so that a command serving both
# can tell which were given.


COMMAND = TaskCommand(
    SPEC,
    help="""Train a model of polyphonic music: a recurrent network over piano-roll frames.

    --data is a JSON file of train/valid/test splits (each a list of pieces, each a list of steps, each the
    list of sounding MIDI pitches: the Bach chorale files), a folder of MIDI files (with train/ valid/ test/
    subfolders, or not) or one MIDI file. The validation loss is the NLL per time step in nats (every frame,
    summed over the pitches of the range); the lowest picks the best checkpoint and drives --patience.
    """,
    options=(
        click.option("--data", metavar="FILE|DIR", help="The music: a JSON file of splits, a folder of MIDI files or one MIDI file."),
        click.option("--valid-fraction", type=Fraction, default=0.1, show_default=True,
                     help="Share of the pieces held out for validation when the data has no valid split."),
        click.option("--step", type=PositiveFloat, default=1.0, show_default=True,
                     help="MIDI: quarter notes per time step (1: quarter notes, 0.25: sixteenths)."),
        click.option("--pitch-range", metavar="LOW-HIGH",
                     help="MIDI pitches the model knows, e.g. 21-108. Default: those of the training and validation pieces."),
        click.option("--seq-len", type=Positive, help="Cut training pieces into parts of at most N steps. Default: whole pieces."),
        click.option("--transpose", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Transpose each training piece by a random shift of up to N semitones each epoch."),
        click.option("--output", type=click.Choice(["nade", "bernoulli"]), default="nade", show_default=True,
                     help="nade: each pitch given the lower ones of its frame; bernoulli: independent pitches."),
        recurrent_options(hidden=256, layers=1, dropout=0.4, cell="lstm"),
        click.option("--input-dropout", type=Probability, default=0.1, show_default=True,
                     help="Dropout on the notes of the input frames."),
        regulariser_options(),
        click.option("--nade-hidden", type=Positive, default=128, show_default=True, help="Hidden units of the NADE output."),
        training_options(lr=2e-3, epochs=DEFAULT_EPOCHS, batch_size=16),
    ),
    report=report,
    evaluate=Applies(evaluate, ("data", "split")),
    generate=Applies(generate, ("seed", "temperature", "steps", "prime_piece", "prime_steps", "prime_midi", "data",
                                "midi", "wav", "plot", "bpm", "program")),
    instead="write music with `rnnkit generate {run} --midi out.mid`, score it with `rnnkit evaluate {run}`",
    check=_no_bidirectional,
)
train_command = train_command_of(COMMAND)
