"""``rnnkit train caption``, and ``rnnkit evaluate`` / ``rnnkit predict`` on a caption run.

    rnnkit train caption [--data FILE.npz] [--train-size N] [--max-digits 5] ... [--out DIR] [--resume DIR]
    rnnkit evaluate DIR [--data FILE.npz] [--json]      exact match and token accuracy (default: held-out digits)
    rnnkit predict DIR --input IMAGE.png|IMAGE.npy [--json]

Without --data the model learns the embedded digit compositions (:mod:`rnnkit.data.digits`): 1-5 handwritten
digits side by side, captioned "three one four"; evaluation uses compositions of test digits that training
never saw.
"""

import json
import sys
from dataclasses import asdict

import click

from rnnkit.cli_options import Positive, absolute, config_option, explicit_options, new_run_path
from rnnkit.cli_options import recurrent_options, train_config_from, training_options
from rnnkit.cli_options import EXIT_INTERRUPTED, log_line, open_for_resume, resumed
from rnnkit.commands.translate import print_report
from rnnkit.errors import InputError
from rnnkit.train import RunDirectory, TrainConfig, distributed

TASK = "caption"
# Option name -> Captioner field, where they differ.
MODEL_FIELDS = {"channels": "channels", "features": "feature_size", "embedding": "embedding_dim", "cell": "cell",
                "hidden": "hidden_size", "layers": "num_layers", "condition": "condition", "dropout": "dropout",
                "engine": "engine"}
# What a resumed run may change: where the data lives, how long to go on, how the same arithmetic is run.
CHANGEABLE_ON_RESUME = {"data", "valid_data", "test_size", "epochs", "time_budget", "max_steps", "patience",
                        "save_every", "engine"}


def _channels(ctx, param, value: str) -> list[int]:
    try:
        channels = [int(part) for part in value.split(",")]
    except ValueError:
        channels = []
    if not channels or min(channels) < 1:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of positive channel counts, e.g. 32,64")
    return channels


@click.command()
@config_option
@click.option("--data", metavar="FILE.npz", help="Images (N, H, W) and captions (N,) in an .npz. Default: the embedded digits.")
@click.option("--valid-data", metavar="FILE.npz", help="Validation images and captions. Default: hold out --valid-fraction of --data.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of --data held out for validation when there is no --valid-data.")
@click.option("--train-size", type=Positive, default=20_000, show_default=True, help="Digits: training compositions.")
@click.option("--valid-size", type=Positive, default=1_000, show_default=True, help="Digits: validation compositions.")
@click.option("--test-size", type=Positive, default=1_000, show_default=True,
              help="Digits: held-out compositions that `rnnkit evaluate` scores.")
@click.option("--max-digits", type=Positive, default=5, show_default=True, help="Digits: at most this many per image.")
@click.option("--composition-seed", type=int, default=0, show_default=True, help="Digits: which compositions are drawn.")
@recurrent_options(hidden=256, layers=1, bidirectional=False, dropout=0.1, cell="gru")
@click.option("--embedding", type=Positive, default=64, show_default=True, help="Caption token embedding width.")
@click.option("--features", type=Positive, default=256, show_default=True, help="Width of the image's feature vector.")
@click.option("--channels", default="32,64", show_default=True, callback=_channels,
              help="Output channels of the convolution blocks, comma-separated.")
@click.option("--condition", type=click.Choice(["init", "input", "both"]), default="both", show_default=True,
              help="The image features initialise the decoder, are fed at every step, or both.")
@click.option("--teacher-forcing", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Probability that the decoder reads the reference token rather than its own prediction.")
@training_options(lr=2e-3, epochs=10, batch_size=64)
@click.option("--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off.")
@click.pass_context
def train_command(ctx: click.Context, **options) -> None:
    """Train an image captioner (a small CNN encoder and a recurrent decoder).

    With no --data it learns to read handwritten digit strings ("three one four") composed from scikit-learn's
    bundled digits. Each epoch greedy captions of the validation images are scored; the best exact match is
    the run's `best` checkpoint.
    """
    from rnnkit.tasks.caption import CaptionDataConfig, prepare, train_captioner

    if options["bidirectional"]:
        raise InputError("--bidirectional does not apply to a caption decoder, which writes forward; drop it")
    explicit = explicit_options(ctx)
    data_values = {name: options[name] for name in (
        "data", "valid_data", "valid_fraction", "train_size", "valid_size", "test_size", "max_digits",
        "composition_seed", "batch_size", "teacher_forcing")}
    data_values["data"], data_values["valid_data"] = absolute(options["data"]), absolute(options["valid_data"])
    model_options = {field: options[option] for option, field in MODEL_FIELDS.items()}
    train_config = train_config_from(options, explicit)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(options, TASK, "train caption")
        saved = checkpoint.meta["configs"]
        data_values = resumed(saved["data"], data_values, {}, explicit, CHANGEABLE_ON_RESUME)
        option_of = {field: option for option, field in MODEL_FIELDS.items()}
        model_options = resumed(saved["model"], model_options, option_of, explicit, CHANGEABLE_ON_RESUME)
        train_config = TrainConfig(**resumed(saved["train"], asdict(train_config), {}, explicit, CHANGEABLE_ON_RESUME))
    else:
        run_path = new_run_path(options, TASK)
    data_config = CaptionDataConfig(**data_values)
    quiet = options["quiet"]

    dist = distributed.setup(options["device"])
    try:
        # data and model are checked before the run directory is touched: a mistake never costs an earlier run
        prepared = prepare(data_config, model_options, train_config.seed, checkpoint)
        run_dir = RunDirectory(run_path)
        if dist.is_main and checkpoint is None:
            run_dir = RunDirectory.create(run_path, options["overwrite"])
        report = train_captioner(
            data_config, model_options, train_config, run_dir=run_dir, checkpoint=checkpoint, dist=dist,
            prepared=prepared,
            progress_bar=not quiet and not options["as_json"] and sys.stderr.isatty(),
            log=None if quiet else log_line,
        )
    finally:
        distributed.teardown(dist)
    if not dist.is_main:
        return
    print_report(report, options["as_json"], f"rnnkit predict {run_path} --input IMAGE.png",
                 {"exact_match": "exact match {:.2%}", "token_accuracy": "token accuracy {:.2%}"})
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit train caption --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def evaluate(run_dir, checkpoint, options) -> None:
    """``rnnkit evaluate DIR [--data FILE.npz]``: exact match and token accuracy of greedy captions."""
    from rnnkit.tasks.caption import evaluate_captions, from_checkpoint

    if options.get("source") or options.get("target"):
        raise InputError(f"{run_dir} holds a caption run: --source/--target are for translation; "
                         "give images with --data FILE.npz, or nothing for the held-out digits")
    trained = from_checkpoint(checkpoint, run_dir)
    metrics = evaluate_captions(trained, options.get("data"))
    if options.get("as_json"):
        click.echo(json.dumps(metrics))
        return
    click.echo(f"exact match {metrics['exact_match']:.2%}  token accuracy {metrics['token_accuracy']:.2%}  "
               f"({metrics['images']:,} images: {metrics['data']})")


def predict(run_dir, checkpoint, options) -> None:
    """``rnnkit predict DIR --input IMAGE``: the caption of one PNG or .npy image."""
    from rnnkit.tasks.caption import caption_images, from_checkpoint, read_image

    # cli.py names the --input flag's value input_path
    path = options.get("input_path", options.get("input"))
    if not path:
        raise InputError(f"{run_dir} holds a caption run: give the image with --input IMAGE.png (or .npy)")
    trained = from_checkpoint(checkpoint, run_dir)
    image = read_image(path, *trained.image_shape)  # (H, W)
    caption = caption_images(trained.model, trained.vocab, image[None])[0]
    if options.get("as_json"):
        click.echo(json.dumps({"input": path, "caption": caption}))
    else:
        click.echo(caption)
