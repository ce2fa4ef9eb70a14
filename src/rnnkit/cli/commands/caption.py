"""``rnnkit train caption``, and how ``rnnkit evaluate`` / ``rnnkit predict`` on a caption run print.

    rnnkit train caption [--data FILE.npz] [--train-size N] [--max-digits 5] ... [--out DIR] [--resume DIR]
    rnnkit evaluate RUN [--data FILE.npz] [--json]      exact match and token accuracy (default: held-out digits)
    rnnkit predict RUN --input IMAGE.png|IMAGE.npy [--json]

Without --data the model learns the embedded digit compositions (:mod:`rnnkit.data.digits`): 1-5 handwritten
digits side by side, captioned "three one four"; evaluation uses compositions of test digits that training
never saw.
"""


import click

from rnnkit.cli.options import FiniteFloat, Fraction, Positive, Seed, recurrent_options, regulariser_options
from rnnkit.cli.options import training_options
from rnnkit.cli.task_command import TaskCommand, lines, saved_line, stopped_line, train_command_of
from rnnkit.cli.task_command import validation_line
from rnnkit.errors import InputError
from rnnkit.tasks.caption import SPEC


def _channels(ctx, param, value: str) -> list[int]:
    try:
        channels = [int(part) for part in value.split(",")]
    except ValueError:
        channels = []
    if not channels or min(channels) < 1:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of positive channel counts, e.g. 32,64")
    return channels


def scores(metrics: dict, options: dict, run) -> str:
    """``rnnkit evaluate``: exact match and token accuracy of greedy captions."""
    return (f"exact match {metrics['exact_match']:.2%}  token accuracy {metrics['token_accuracy']:.2%}  "
            f"({metrics['images']:,} images: {metrics['data']})")


def report(report: dict, run_path, settings) -> str:
    validation = validation_line(report, {"exact_match": "exact match {:.2%}", "token_accuracy": "token accuracy {:.2%}"})
    return lines(stopped_line(report), validation, saved_line(report, "use it with: rnnkit predict {run} --input IMAGE.png"))


def _no_bidirectional(options: dict) -> None:
    if options["bidirectional"]:
        raise InputError("--bidirectional does not apply to a caption decoder, which writes forward; drop it")


COMMAND = TaskCommand(
    SPEC,
    help="""Train an image captioner (a small CNN encoder and a recurrent decoder).

    With no --data it learns to read handwritten digit strings ("three one four") composed from scikit-learn's
    bundled digits. Each epoch greedy captions of the validation images are scored; the best exact match is
    the run's `best` checkpoint.
    """,
    options=(
        click.option("--data", metavar="FILE.npz", help="Images (N, H, W) and captions (N,) in an .npz. Default: the embedded digits."),
        click.option("--valid-data", metavar="FILE.npz", help="Validation images and captions. Default: hold out --valid-fraction of --data."),
        click.option("--valid-fraction", type=Fraction, default=0.1, show_default=True,
                     help="Share of --data held out for validation when there is no --valid-data."),
        click.option("--train-size", type=Positive, default=20_000, show_default=True, help="Digits: training compositions."),
        click.option("--valid-size", type=Positive, default=1_000, show_default=True, help="Digits: validation compositions."),
        click.option("--test-size", type=Positive, default=1_000, show_default=True,
                     help="Digits: held-out compositions that `rnnkit evaluate` scores."),
        click.option("--max-digits", type=Positive, default=5, show_default=True, help="Digits: at most this many per image."),
        click.option("--composition-seed", type=Seed, default=0, show_default=True, help="Digits: which compositions are drawn."),
        recurrent_options(hidden=256, layers=1, bidirectional=False, dropout=0.1, cell="gru"),
        regulariser_options(embedding=False),
        click.option("--embedding", type=Positive, default=64, show_default=True, help="Caption token embedding width."),
        click.option("--features", type=Positive, default=256, show_default=True, help="Width of the image's feature vector."),
        click.option("--channels", default="32,64", show_default=True, callback=_channels,
                     help="Output channels of the convolution blocks, comma-separated."),
        click.option("--condition", type=click.Choice(["init", "input", "both"]), default="both", show_default=True,
                     help="The image features initialise the decoder, are fed at every step, or both."),
        click.option("--teacher-forcing", type=FiniteFloat(0, 1), default=1.0, show_default=True,
                     help="Probability that the decoder reads the reference token rather than its own prediction."),
        training_options(lr=2e-3, epochs=10, batch_size=64),
    ),
    report=report,
    text={"evaluate": scores, "predict": lambda result, options, run: result["caption"]},
    check=_no_bidirectional,
)
train_command = train_command_of(COMMAND)
