"""``rnnkit train music``, and how ``rnnkit evaluate`` / ``rnnkit generate`` on a music run print.

    rnnkit train music --data jsb-chorales-quarter.json [--output nade|bernoulli] ... [--out DIR] [--resume DIR]
    rnnkit train music --data FOLDER_OF_MIDI --step 0.25 [--pitch-range 21-108] ...
    rnnkit evaluate RUN [--data FILE] [--split test] [--json]     nll_per_step, frame_accuracy, steps, pieces
    rnnkit generate RUN [--steps 64] [--seed 0] [--temperature 1.0] [--prime-piece test:0 --prime-steps 8 |
                        --prime-midi FILE.mid] [--midi out.mid] [--wav out.wav] [--plot roll.png] [--json]

Without --midi, --wav or --plot, ``generate`` prints the piece, one step a line of note names (``-`` for a rest).
"""


import click

from rnnkit.cli.options import Fraction, Positive, PositiveFloat, Probability, recurrent_options
from rnnkit.cli.options import regulariser_options, training_options
from rnnkit.cli.task_command import TaskCommand, lines, saved_line, stopped_line, train_command_of
from rnnkit.errors import InputError
from rnnkit.tasks.music import DEFAULT_EPOCHS, SPEC


def scores(metrics: dict, options: dict, run) -> str:
    """``rnnkit evaluate``: NLL per step and frame accuracy, with what was scored."""
    return (f"NLL {metrics['nll_per_step']:.4f} nats per step  frame accuracy {metrics['frame_accuracy']:.2%}  "
            f"({metrics['steps']:,} steps of {metrics['pieces']:,} pieces: {metrics['split']} split of "
            f"{metrics['data']})")


def piece(result: dict, options: dict, run) -> str | None:
    """``rnnkit generate``: the files written (on stderr), or without any the piece, a line of note names per step
    (``-`` for a rest; the prime's steps marked)."""
    written = {kind: result[kind] for kind in ("midi", "wav", "plot") if kind in result}
    if written:
        click.echo(f"{result['steps']} steps ({result['prime_steps']} prime + {result['steps'] - result['prime_steps']} "
                   "generated): " + ", ".join(f"{kind} {path}" for kind, path in written.items()), err=True)
        return None
    from rnnkit.viz.piano_roll import note_name

    return "\n".join(f"{t:4d} {' '.join(note_name(p) for p in frame) or '-'}"
                     + ("\tprime" if t < result["prime_steps"] else "") for t, frame in enumerate(result["frames"]))


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
    text={"evaluate": scores, "generate": piece},
    check=_no_bidirectional,
)
train_command = train_command_of(COMMAND)
