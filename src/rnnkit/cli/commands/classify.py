"""``rnnkit train classify``, and how ``rnnkit evaluate`` / ``rnnkit predict`` on classifier runs print.

    rnnkit train classify --data CSV [--text-column C[,C]] [--label-column C] [--valid CSV | --valid-fraction F]
                          [--no-header] [--delimiter CHAR] [--encoding ENC] [--lowercase/--no-lowercase]
                          [--min-freq N] [--max-vocab N] [--max-length N] [--embedding N] [--pooling last|mean|max]
                          [network and training flags] [--out DIR] [--resume DIR]
    rnnkit evaluate RUN --data CSV [--checkpoint best] [--json]    accuracy, macro F1, per-class P/R/F1, confusion
    rnnkit predict RUN [--input FILE] [--json]                      LABEL<TAB>PROBABILITY<TAB>TEXT per input line

Examples::

    rnnkit train classify --data sst2/train.tsv --text-column sentence --label-column label --out runs/sst2
    rnnkit train classify --data ag_news.csv --no-header --text-column 2,3 --label-column 1
    echo "a gorgeous , witty film" | rnnkit predict runs/sst2
"""


import click

from rnnkit.cli.options import Fraction, Positive, recurrent_options, regulariser_options, training_options
from rnnkit.cli.task_command import TaskCommand, best_line, lines, saved_line, stopped_line, train_command_of
from rnnkit.data.labelled_text import parse_delimiter
from rnnkit.models.classifier import POOLINGS
from rnnkit.tasks.classify import SPEC


def predictions(result: list[dict], options: dict, run) -> str:
    """``rnnkit predict``: LABEL<TAB>PROBABILITY<TAB>TEXT, one line per text."""
    return "\n".join(f"{row['label']}\t{row['probability']:.4f}\t{row['text']}" for row in result)


def report(report: dict, run_path, settings) -> str:
    validation = None
    if "valid_accuracy" in report:
        validation = (f"validation: accuracy {report['valid_accuracy']:.4f}, macro F1 {report['valid_macro_f1']:.4f}, "
                      f"loss {report['valid_loss']:.4f}" + best_line(report, "accuracy", "accuracy"))
    return lines(stopped_line(report, "texts"), validation,
                 saved_line(report, "use it with: rnnkit predict {run} --input FILE, rnnkit evaluate {run} --data CSV"))


def scores_table(scores: dict, options: dict, run) -> str:
    """accuracy and macro F1, then a row of precision / recall / F1 / support per class, then the confusion counts."""
    labels = scores["labels"]
    width = max(8, *(len(label) for label in labels))
    lines = [f"accuracy {scores['accuracy']:.4f}  macro F1 {scores['macro_f1']:.4f}  ({scores['examples']:,} texts of "
             f"{options['data']})",
             "", f"{'class':<{width}}  precision  recall      f1  support"]
    for label in labels:
        c = scores["per_class"][label]
        lines.append(f"{label:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}  {c['f1']:6.4f}  {c['support']:7,}")
    counts = scores["confusion"]
    cell = max(6, *(len(label) for label in labels), *(len(f"{n:,}") for row in counts for n in row))
    lines += ["", "confusion counts (rows: true class, columns: predicted)",
              " " * width + "  " + "  ".join(f"{label:>{cell}}" for label in labels)]
    for label, row in zip(labels, counts):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{n:>{cell},}" for n in row))
    return "\n".join(lines)


COMMAND = TaskCommand(
    SPEC,
    help="""Train a text classifier (sentiment, topic): a recurrent network reads each text, one class comes out.

    The labels are the distinct values of --label-column in the training data. Validation accuracy picks
    the best checkpoint (--checkpoint best) and drives --patience.
    """,
    options=(
        click.option("--data", metavar="CSV", help="Labelled texts to train on: CSV, or TSV (by the .tsv extension)."),
        click.option("--valid", metavar="CSV", help="Validation file, read like --data. Default: hold out --valid-fraction of --data."),
        click.option("--valid-fraction", type=Fraction, default=0.1, show_default=True,
                     help="Share of each class of --data held out for validation when there is no --valid (0: none)."),
        click.option("--text-column", default="text", show_default=True, metavar="C[,C...]",
                     help="The text's column: a header name or a 1-based number; several, comma-separated, are joined by a space."),
        click.option("--label-column", default="label", show_default=True, metavar="C", help="The label's column: a name or a 1-based number."),
        click.option("--header/--no-header", default=True, show_default=True,
                     help="Whether the first row names the columns (without one, give columns by number)."),
        click.option("--delimiter", metavar="CHAR", callback=lambda ctx, param, value: parse_delimiter(value),
                     help="Field delimiter ('tab' for a tab). Default: tab for .tsv/.tab, comma otherwise."),
        click.option("--encoding", default="utf-8", show_default=True, metavar="NAME",
                     help="The files' text encoding, e.g. cp1252 (MR's rt-polarity files)."),
        click.option("--lowercase/--no-lowercase", default=True, show_default=True, help="Lowercase texts before tokenizing."),
        click.option("--min-freq", type=Positive, default=1, show_default=True, help="Training tokens seen fewer times become <unk>."),
        click.option("--max-vocab", type=click.IntRange(min=3), help="At most this many tokens in the vocabulary (<pad>, <unk> included)."),
        click.option("--max-length", type=Positive, help="Keep only each text's first N tokens."),
        click.option("--embedding", type=Positive, default=128, show_default=True, help="Token embedding size."),
        click.option("--pooling", type=click.Choice(POOLINGS), default="max", show_default=True,
                     help="What the head reads: the last hidden state, or the mean / element-wise max over the steps."),
        recurrent_options(hidden=128, bidirectional=True, dropout=0.5),
        regulariser_options(embedding=True),
        training_options(lr=1e-3, epochs=SPEC.default_epochs, batch_size=32),
    ),
    report=report,
    text={"evaluate": scores_table, "predict": predictions},
)
train_command = train_command_of(COMMAND)
