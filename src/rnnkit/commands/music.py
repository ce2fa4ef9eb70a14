"""``rnnkit train music``, and ``rnnkit evaluate`` / ``rnnkit generate`` on a music run.

    rnnkit train music --data jsb-chorales-quarter.json [--output nade|bernoulli] ... [--out DIR] [--resume DIR]
    rnnkit train music --data FOLDER_OF_MIDI --step 0.25 [--pitch-range 21-108] ...
    rnnkit evaluate DIR [--data FILE] [--split test] [--json]     nll_per_step, frame_accuracy, steps
    rnnkit generate DIR [--steps 64] [--seed 0] [--temperature 1.0] [--prime-piece test:0 --prime-steps 8 |
                        --prime-midi FILE.mid] [--midi out.mid] [--wav out.wav] [--plot roll.png] [--json]

Without --midi, --wav or --plot, ``generate`` prints the piece, one step a line of note names (``-`` for a rest).
"""

import json
import sys
from dataclasses import asdict, fields

import click

from rnnkit.cli_options import Positive, PositiveFloat, absolute, checkpoint_option, config_option, explicit_options
from rnnkit.cli_options import new_run_path, recurrent_options, resumed_settings, train_config_from, training_options
from rnnkit.cli_options import EXIT_INTERRUPTED, log_line, open_for_resume, require_task
from rnnkit.errors import InputError
from rnnkit.train import RunDirectory, TrainConfig, distributed

TASK = "music"
DEFAULT_EPOCHS = 100
# Option name -> PianoRollModel argument.
MODEL_FIELDS = {"output": "output", "cell": "cell", "hidden": "hidden_size", "layers": "num_layers",
                "dropout": "dropout", "nade_hidden": "nade_hidden", "engine": "engine"}
# What a resumed run may change: where the data lives, how long to go on, how the same arithmetic is run.
CHANGEABLE_ON_RESUME = {"data", "epochs", "time_budget", "max_steps", "patience", "save_every", "engine"}


@click.command()
@config_option
@click.option("--data", metavar="FILE|DIR",
              help="Required (a resumed run reads its own). A JSON file of splits (train/valid/test, each a list of pieces, each a list of steps of MIDI "
                   "pitches), a folder of MIDI files (with train/ valid/ test/ subfolders, or not), or one MIDI file.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of the pieces held out for validation when the data has no valid split.")
@click.option("--step", type=PositiveFloat, default=1.0, show_default=True,
              help="MIDI: quarter notes per time step (1: quarter notes, 0.25: sixteenths).")
@click.option("--pitch-range", metavar="LOW-HIGH",
              help="MIDI pitches the model knows, e.g. 21-108. Default: those of the training and validation pieces.")
@click.option("--seq-len", type=Positive, help="Cut training pieces into parts of at most N steps. Default: whole pieces.")
@click.option("--transpose", type=click.IntRange(min=0), default=0, show_default=True,
              help="Transpose each training piece by a random shift of up to N semitones each epoch.")
@click.option("--output", type=click.Choice(["nade", "bernoulli"]), default="nade", show_default=True,
              help="nade: each pitch given the lower ones of its frame; bernoulli: independent pitches.")
@recurrent_options(hidden=256, layers=1, dropout=0.3, cell="lstm")
@click.option("--nade-hidden", type=Positive, default=128, show_default=True, help="Hidden units of the NADE output.")
@training_options(lr=2e-3, epochs=DEFAULT_EPOCHS, batch_size=16)
@click.option("--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off.")
@click.pass_context
def train_command(ctx: click.Context, **options) -> None:
    """Train a model of polyphonic music: a recurrent network over piano-roll frames.

    The validation loss is the NLL per time step in nats (every frame, summed over the pitches of the
    range); the lowest picks the best checkpoint and drives --patience.
    """
    from rnnkit.tasks.music import MusicDataConfig, prepare, train_music

    if options["bidirectional"]:
        raise InputError("--bidirectional does not apply to a model that predicts the next frame; drop it")
    explicit = explicit_options(ctx)
    data_values = {f.name: options[f.name] for f in fields(MusicDataConfig)}
    data_values["data"] = absolute(options["data"])
    model_options = {field: options[option] for option, field in MODEL_FIELDS.items()}
    train_config = train_config_from(options, explicit, DEFAULT_EPOCHS)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(options, TASK, "train music")
        data_values, model_options, train_config = resumed_settings(
            checkpoint.meta["configs"], data_values, model_options, train_config, explicit=explicit,
            changeable=CHANGEABLE_ON_RESUME, model_fields=MODEL_FIELDS)
    else:
        run_path = new_run_path(options, TASK)
    data_config = MusicDataConfig(**data_values)
    quiet = options["quiet"]

    dist = distributed.setup(options["device"])
    try:
        # data and model are checked before the run directory is touched: a mistake never costs an earlier run
        prepared = prepare(data_config, model_options, train_config.seed, checkpoint)
        run_dir = RunDirectory(run_path)
        if dist.is_main and checkpoint is None:
            run_dir = RunDirectory.create(run_path, options["overwrite"])
        report = train_music(
            data_config, model_options, train_config, run_dir=run_dir, checkpoint=checkpoint, dist=dist,
            prepared=prepared, progress_bar=not quiet and not options["as_json"] and sys.stderr.isatty(),
            log=None if quiet else log_line,
        )
    finally:
        distributed.teardown(dist)
    if not dist.is_main:
        return
    _print_report(report, options["as_json"], run_path)
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit train music --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _print_report(report: dict, as_json: bool, run_path) -> None:
    if as_json:
        click.echo(json.dumps(report))
        return
    lines = [f"stopped by {report['stop_reason']} after {report['steps']:,} steps "
             f"({report['elapsed_seconds']:.0f}s, {report['tokens_per_second']:,.0f} frames/s)"]
    if "valid_loss" in report:
        line = f"validation: NLL {report['valid_loss']:.4f} nats per step"
        if "valid_frame_accuracy" in report:
            line += f", frame accuracy {report['valid_frame_accuracy']:.2%}"
        if report.get("best_valid_loss") is not None:
            line += f"; best NLL {report['best_valid_loss']:.4f} (--checkpoint best)"
        lines.append(line)
    lines.append(f"run saved in {run_path}; use it with: rnnkit generate {run_path} --midi out.mid --wav out.wav, "
                 f"rnnkit evaluate {run_path} --split test")
    click.echo("\n".join(lines))


# ------------------------------------------------------------------------------------------- evaluate


def evaluate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit evaluate DIR [--data FILE|DIR] [--split test] [--json]``: NLL per step and frame accuracy."""
    from rnnkit.tasks.music import evaluate_music, from_checkpoint

    require_task(checkpoint.meta, TASK, run_dir, "train music")
    if options.get("source") or options.get("target"):
        raise InputError(f"{run_dir} holds a music run: --source/--target are for translation; "
                         "give the music with --data FILE and the split with --split")
    trained = from_checkpoint(checkpoint, run_dir)
    metrics = evaluate_music(trained, options.get("data"), options.get("split") or "test")
    if options.get("as_json"):
        click.echo(json.dumps(metrics))
        return
    click.echo(f"NLL {metrics['nll_per_step']:.4f} nats per step  frame accuracy {metrics['frame_accuracy']:.2%}  "
               f"({metrics['steps']:,} steps of {metrics['pieces']:,} pieces: {metrics['split']} split of {metrics['data']})")


def predict(run_dir: str, checkpoint, options: dict) -> None:
    raise InputError(f"{run_dir} holds a music model; write music with `rnnkit generate {run_dir} --midi out.mid` "
                     f"and score it with `rnnkit evaluate {run_dir}`")


# ------------------------------------------------------------------------------------------- generate


def generate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit generate DIR ...`` on a music run: sample ``steps`` frames after an optional prime and write
    them as MIDI (``midi``), audio (``wav``) and a piano-roll picture (``plot``), or print them.

    ``options`` by name: steps, seed, temperature, prime_piece, prime_steps, prime_midi, data, midi, wav,
    plot, bpm, program, as_json (missing ones take the defaults of :func:`generate_command`).
    """
    from rnnkit.music import write_midi, write_wav
    from rnnkit.tasks.music import from_checkpoint, generate_music

    option = {**_GENERATE_DEFAULTS, **{key: value for key, value in options.items() if value is not None}}
    require_task(checkpoint.meta, TASK, run_dir, "train music")
    trained = from_checkpoint(checkpoint, run_dir)
    piece = generate_music(trained, option["steps"], option.get("seed"), option["temperature"],
                           option.get("prime_piece"), option.get("prime_midi"), option.get("prime_steps"),
                           option.get("data"))
    frames = trained.pitches.frames(piece.roll)
    step, written = trained.data_config.step, {}
    if option.get("midi"):
        written["midi"] = str(write_midi(frames, option["midi"], step, option["bpm"], option["program"]))
    if option.get("wav"):
        written["wav"] = str(write_wav(frames, option["wav"], step, option["bpm"]))
    if option.get("plot"):
        from rnnkit.viz.piano_roll import piano_roll_png

        written["plot"] = str(piano_roll_png(option["plot"], piece.roll, trained.pitches.low, piece.prime_steps,
                                             piece.reference, piece.reference_name, title=str(run_dir)))
    if option.get("as_json"):
        click.echo(json.dumps({"steps": len(frames), "prime_steps": piece.prime_steps, "frames": frames, **written}))
        return
    if not written:
        from rnnkit.viz.piano_roll import note_name

        for t, frame in enumerate(frames):
            marker = "prime" if t < piece.prime_steps else ""
            click.echo(f"{t:4d} {' '.join(note_name(p) for p in frame) or '-'}" + (f"\t{marker}" if marker else ""))
        return
    click.echo(f"{len(frames)} steps ({piece.prime_steps} prime + {len(frames) - piece.prime_steps} generated): "
               + ", ".join(f"{kind} {path}" for kind, path in written.items()), err=True)


_GENERATE_DEFAULTS = {"steps": 64, "temperature": 1.0, "bpm": 90.0, "program": 0}


@click.command("generate")
@click.argument("run_dir", metavar="DIR")
@click.option("--steps", type=click.IntRange(min=0), default=64, show_default=True, help="Time steps to generate after the prime.")
@click.option("--seed", type=int, help="Seed for a reproducible piece.")
@click.option("--temperature", type=PositiveFloat, default=1.0, show_default=True,
              help="Sharpen (<1) or flatten (>1) each pitch's probability; must be > 0.")
@click.option("--prime-piece", metavar="SPLIT:INDEX", help="Start from the first steps of this piece of the data, e.g. test:0.")
@click.option("--prime-steps", type=Positive, help="Steps of the prime to use. Default: 8.")
@click.option("--prime-midi", metavar="FILE", help="Start from the first steps of this MIDI file.")
@click.option("--data", metavar="FILE|DIR", help="Where --prime-piece and the real piece beside the plot come from. Default: the run's data.")
@click.option("--midi", metavar="FILE", help="Write the piece as a MIDI file.")
@click.option("--wav", metavar="FILE", help="Render the piece to a WAV file with rnnkit's synthesiser.")
@click.option("--plot", metavar="FILE", help="Draw its piano roll (prime and continuation marked) beside a real piece, as PNG.")
@click.option("--bpm", type=PositiveFloat, default=90.0, show_default=True, help="Tempo of the MIDI and WAV: quarter notes per minute.")
@click.option("--program", type=click.IntRange(0, 127), default=0, show_default=True,
              help="General MIDI instrument of the MIDI file, 0-based (0 piano, 19 church organ).")
@checkpoint_option()
@click.option("--json", "as_json", is_flag=True, help="Print the piece and the files written as one JSON object.")
def generate_command(run_dir: str, which: str, **options) -> None:
    """Write music with the trained model in DIR: sampled step by step, optionally after a prime."""
    generate(run_dir, RunDirectory.open(run_dir).load(which), options)
