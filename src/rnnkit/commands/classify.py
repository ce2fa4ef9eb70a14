"""``rnnkit train classify``, and ``rnnkit evaluate`` / ``rnnkit predict`` for classifier runs.

    rnnkit train classify --data CSV [--text-column C[,C]] [--label-column C] [--valid CSV | --valid-fraction F]
                          [--no-header] [--delimiter CHAR] [--encoding ENC] [--lowercase/--no-lowercase]
                          [--min-freq N] [--max-vocab N] [--max-length N] [--embedding N] [--pooling last|mean|max]
                          [network and training flags] [--out DIR] [--resume DIR]
    rnnkit evaluate DIR --data CSV [--checkpoint best] [--json]    accuracy, macro F1, per-class P/R/F1, confusion
    rnnkit predict DIR [--input FILE] [--json]                      LABEL<TAB>PROBABILITY<TAB>TEXT per input line

Examples::

    rnnkit train classify --data sst2/train.tsv --text-column sentence --label-column label --out runs/sst2
    rnnkit train classify --data ag_news.csv --no-header --text-column 2,3 --label-column 1
    echo "a gorgeous , witty film" | rnnkit predict runs/sst2
"""

import json
import sys
from functools import partial
from dataclasses import asdict, fields
from pathlib import Path

import click

from rnnkit.cli_options import Positive, absolute, config_option, explicit_options, new_run_path, recurrent_options
from rnnkit.cli_options import EXIT_INTERRUPTED, open_for_resume, require_task, resumed_settings, run_training
from rnnkit.cli_options import train_config_from
from rnnkit.cli_options import training_options
from rnnkit.data.labelled_text import parse_delimiter, read_lines
from rnnkit.errors import InputError
from rnnkit.models.classifier import POOLINGS
from rnnkit.train import TrainConfig

TASK = "classify"
DEFAULT_EPOCHS = 5

# Option name -> SequenceClassifier argument.
MODEL_FIELDS = {"cell": "cell", "layers": "num_layers", "hidden": "hidden_size", "bidirectional": "bidirectional",
                "dropout": "dropout", "engine": "engine", "embedding": "embedding_dim", "pooling": "pooling"}
# Option name -> ClassifyDataConfig field, where they differ.
DATA_OPTIONS = {"valid_data": "valid"}
# What a resumed run may change: where the data lives, how long to go on, how the same arithmetic is run.
CHANGEABLE_ON_RESUME = {"data", "valid", "epochs", "time_budget", "max_steps", "patience", "save_every", "engine"}


@click.command()
@config_option
@click.option("--data", metavar="CSV", help="Labelled texts to train on: CSV, or TSV (by the .tsv extension).")
@click.option("--valid", metavar="CSV", help="Validation file, read like --data. Default: hold out --valid-fraction of --data.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of each class of --data held out for validation when there is no --valid (0: none).")
@click.option("--text-column", default="text", show_default=True, metavar="C[,C...]",
              help="The text's column: a header name or a 1-based number; several, comma-separated, are joined by a space.")
@click.option("--label-column", default="label", show_default=True, metavar="C", help="The label's column: a name or a 1-based number.")
@click.option("--header/--no-header", default=True, show_default=True,
              help="Whether the first row names the columns (without one, give columns by number).")
@click.option("--delimiter", metavar="CHAR",
              help="Field delimiter ('tab' for a tab). Default: tab for .tsv/.tab, comma otherwise.")
@click.option("--encoding", default="utf-8", show_default=True, metavar="NAME",
              help="The files' text encoding, e.g. cp1252 (MR's rt-polarity files).")
@click.option("--lowercase/--no-lowercase", default=True, show_default=True, help="Lowercase texts before tokenizing.")
@click.option("--min-freq", type=Positive, default=1, show_default=True, help="Training tokens seen fewer times become <unk>.")
@click.option("--max-vocab", type=click.IntRange(min=3), help="At most this many tokens in the vocabulary (<pad>, <unk> included).")
@click.option("--max-length", type=Positive, help="Keep only each text's first N tokens.")
@click.option("--embedding", type=Positive, default=128, show_default=True, help="Token embedding size.")
@click.option("--pooling", type=click.Choice(POOLINGS), default="max", show_default=True,
              help="What the head reads: the last hidden state, or the mean / element-wise max over the steps.")
@recurrent_options(hidden=128, bidirectional=True, dropout=0.5)
@training_options(lr=1e-3, epochs=DEFAULT_EPOCHS, batch_size=32)
@click.option("--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off.")
@click.pass_context
def train_command(ctx: click.Context, **options) -> None:
    """Train a text classifier (sentiment, topic): a recurrent network reads each text, one class comes out.

    The labels are the distinct values of --label-column in the training data. Validation accuracy picks
    the best checkpoint (--checkpoint best) and drives --patience.
    """
    from rnnkit.tasks.classify import load_data_for, train_classifier

    explicit = explicit_options(ctx)
    data_config, model_options, train_config = _configs(options, explicit)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(options, TASK, "train classify")
        data_config, model_options, train_config = _resumed_configs(
            checkpoint.meta["configs"], data_config, model_options, train_config, explicit
        )
    else:
        run_path = new_run_path(options, TASK)
    # Read the data before the run directory is created (or an old run replaced with --overwrite).
    data = load_data_for(data_config, train_config, checkpoint)

    report = run_training(partial(train_classifier, data_config, model_options, train_config, checkpoint=checkpoint, data=data),
                          options, run_path, new_run=checkpoint is None)
    if report is None:  # not rank 0
        return
    report.update(_best_epoch(run_path))
    _print_report(report, options["as_json"])
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit train classify --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def evaluate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit evaluate DIR --data CSV [--json]``: accuracy, macro F1, per-class scores, confusion counts."""
    from rnnkit.tasks.classify import TrainedClassifier

    require_task(checkpoint.meta, TASK, run_dir, "train classify")
    if options.get("data") is None:
        raise InputError(f"{run_dir} holds a classifier: give the labelled file to score with --data FILE")
    classifier = TrainedClassifier.from_checkpoint(checkpoint)
    scores = classifier.evaluate(options["data"])
    if options.get("as_json"):
        click.echo(json.dumps(scores))
        return
    click.echo(_scores_table(scores, options["data"]))


def predict(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit predict DIR [--input FILE] [--json]``: one line per input line, LABEL<TAB>PROBABILITY<TAB>TEXT."""
    from rnnkit.tasks.classify import TrainedClassifier

    require_task(checkpoint.meta, TASK, run_dir, "train classify")
    if options.get("data") is not None or options.get("output") is not None:
        raise InputError("a classifier reads texts with --input FILE (or stdin) and writes to stdout; "
                         "drop --data/--output and redirect the output (> FILE)")
    classifier = TrainedClassifier.from_checkpoint(checkpoint)
    if options.get("input_path") is not None:
        texts = read_lines(options["input_path"], classifier.config.encoding)
    else:
        text = sys.stdin.read().replace("\r\n", "\n")
        texts = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        if not text:
            raise InputError("no texts on stdin; pipe texts one per line, or give --input FILE")
    probabilities = classifier.probabilities(texts)  # (n, C)
    labels = classifier.labels
    for text, row in zip(texts, probabilities.tolist()):
        best = max(range(len(row)), key=row.__getitem__)
        if options.get("as_json"):
            click.echo(json.dumps({"label": labels[best], "probability": row[best],
                                   "probabilities": dict(zip(labels, row)), "text": text}))
        else:
            click.echo(f"{labels[best]}\t{row[best]:.4f}\t{text}")


# ------------------------------------------------------------------------------------------- helpers


def _configs(options: dict, explicit: set[str]):
    """The data config, model options and training config that the flags describe."""
    from rnnkit.tasks.classify import ClassifyDataConfig

    values = {f.name: options[DATA_OPTIONS.get(f.name, f.name)] for f in fields(ClassifyDataConfig)}
    values["data"], values["valid_data"] = absolute(values["data"]), absolute(values["valid_data"])
    values["delimiter"] = parse_delimiter(values["delimiter"])
    model_options = {field: options[option] for option, field in MODEL_FIELDS.items()}
    return ClassifyDataConfig(**values), model_options, train_config_from(options, explicit, DEFAULT_EPOCHS)



def _resumed_configs(saved: dict, data_config, model_options: dict, train_config: TrainConfig, explicit: set[str]):
    """The run's saved configs, with the changes a resumed run allows (InputError for any other)."""
    from rnnkit.tasks.classify import ClassifyDataConfig

    data_values, model_options, train_config = resumed_settings(
        saved, asdict(data_config), model_options, train_config, explicit=explicit, changeable=CHANGEABLE_ON_RESUME,
        model_fields=MODEL_FIELDS, data_option_of={f.name: DATA_OPTIONS.get(f.name, f.name) for f in fields(ClassifyDataConfig)})
    return ClassifyDataConfig(**data_values), model_options, train_config


def _best_epoch(run_path: Path) -> dict:
    """The epoch with the best validation accuracy so far and that accuracy (from metrics.jsonl), if any."""
    metrics = Path(run_path) / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
    scored = [r for r in records if "valid_accuracy" in r and not r.get("partial_epoch")]
    if not scored:
        return {}
    best = max(scored, key=lambda r: r["valid_accuracy"])  # the first of equals, as the Trainer keeps it
    return {"best_epoch": best["epoch"], "best_valid_accuracy": best["valid_accuracy"]}



def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report))
        return
    lines = [f"stopped by {report['stop_reason']} after {report['steps']:,} steps "
             f"({report['elapsed_seconds']:.0f}s, {report['tokens_per_second']:,.0f} texts/s)"]
    if "valid_accuracy" in report:
        line = (f"validation: accuracy {report['valid_accuracy']:.4f}, macro F1 {report['valid_macro_f1']:.4f}, "
                f"loss {report['valid_loss']:.4f}")
        if "best_epoch" in report:
            line += f"; best accuracy {report['best_valid_accuracy']:.4f} at epoch {report['best_epoch']} (--checkpoint best)"
        lines.append(line)
    if "run_dir" in report:
        run = report["run_dir"]
        lines.append(f"run saved in {run}; use it with: rnnkit predict {run} --input FILE, "
                     f"rnnkit evaluate {run} --data CSV")
    click.echo("\n".join(lines))


def _scores_table(scores: dict, data: str) -> str:
    """accuracy and macro F1, then a row of precision / recall / F1 / support per class, then the confusion counts."""
    labels = scores["labels"]
    width = max(8, *(len(label) for label in labels))
    lines = [f"accuracy {scores['accuracy']:.4f}  macro F1 {scores['macro_f1']:.4f}  ({scores['examples']:,} texts of {data})",
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
