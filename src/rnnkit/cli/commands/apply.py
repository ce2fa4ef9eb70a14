"""``rnnkit evaluate DIR`` and ``rnnkit predict DIR``: the run's task scores or applies its model.

Both take the flags of every task; a flag the run's task does not take is one line naming those it does
(:func:`rnnkit.cli.task_command.apply`).
"""

import click

from rnnkit.cli.commands import task_command
from rnnkit.cli.options import Positive, checkpoint_option
from rnnkit.cli.task_command import apply
from rnnkit.train import RunDirectory


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--data", metavar="FILE",
              help="Held-out data in the run's own format: text (lm), CSV (classify, forecast), CoNLL(-U) (tag), "
                   "chorale JSON or MIDI (music).")
@click.option("--source", metavar="FILE", help="Translation: source sentences, one per line.")
@click.option("--target", metavar="FILE", help="Translation: reference translations, line by line with --source.")
@click.option("--batch-size", type=Positive, help="Language models: parallel streams; taggers: sentences per pass. "
                                                  "Default: the run's.")
@click.option("--seq-len", type=Positive, help="Language models: tokens per window. Default: the run's.")
@click.option("--unknown", type=click.Choice(["error", "skip"]),
              help="Character language models: what to do with characters the model never saw: error (the "
                   "default), or skip them (left out of the scored text, and counted).")
@click.option("--split", type=click.Choice(["train", "valid", "test"]),
              help="Music: the split of --data (or of the run's data) to score. Default: test.")
@checkpoint_option()
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object on stdout.")
@click.pass_context
def evaluate(ctx: click.Context, run_dir: str, which: str, **options) -> None:
    """Score the trained model in DIR on held-out data with its task's metrics.

    Language models: loss (nats/token), perplexity, bits per character. Classifiers: accuracy and macro F1.
    Taggers: accuracy, and entity span F1 for BIO tags. Forecasters: MAE, RMSE, MASE beside the naive baselines.
    Translators: BLEU and chrF (sacrebleu). Captioners: exact match and token accuracy (default: the held-out digits).
    Music: NLL per time step (nats) and frame accuracy.
    """
    checkpoint = RunDirectory.open(run_dir).load(which)
    command = task_command(checkpoint.meta.get("task"), run_dir)
    apply(ctx, command, command.evaluate, run_dir, checkpoint, {**options, "which": which})


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--input", "input_path", metavar="FILE",
              help="Classify, tag, translate: texts, one per line (tag: tokens separated by spaces). Default: stdin. "
                   "Caption: the image.")
@click.option("--data", metavar="CSV", help="Forecast: the series (same columns as training) to forecast from.")
@click.option("--output", metavar="PATH", help="Forecast: the forecast CSV to write (a PNG plot is written beside it). "
                                               "Translate: the translations.")
@checkpoint_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input line instead of text.")
@click.pass_context
def predict(ctx: click.Context, run_dir: str, which: str, **options) -> None:
    """Apply the trained model in DIR: labels with probabilities, tags per token, a forecast with its plot,
    translations, or a caption."""
    checkpoint = RunDirectory.open(run_dir).load(which)
    command = task_command(checkpoint.meta.get("task"), run_dir)
    apply(ctx, command, command.predict, run_dir, checkpoint, {**options, "which": which})
