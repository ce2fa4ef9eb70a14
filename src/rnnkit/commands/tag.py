"""``rnnkit train tag``, and ``rnnkit evaluate`` / ``rnnkit predict`` for tagger runs (POS tagging, NER).

    rnnkit train tag --data FILE [--format conllu|conll] [--column upos|xpos|pos|chunk|ner] [--valid FILE]
                     [--crf/--no-crf] [--char-features/--no-char-features] [--embedding N] [--char-embedding N]
                     [--char-hidden N] [--min-freq N] [--lowercase-words/--keep-case] [--word-dropout P]
                     [network and training flags] [--out DIR] [--resume DIR]
    rnnkit evaluate DIR --data FILE [--checkpoint best] [--json]   token accuracy; span P/R/F1 for entity tags
    rnnkit predict DIR [--input FILE] [--json]                     token/TAG token/TAG ... per input line

Examples::

    rnnkit train tag --data en_ewt-ud-train.conllu --valid en_ewt-ud-dev.conllu --out runs/ewt
    rnnkit train tag --data conll2003/train.txt --valid conll2003/valid.txt --crf --out runs/ner
    echo "Peter lives in Berlin ." | rnnkit predict runs/ner
"""

import json
import sys
from functools import partial
from pathlib import Path

import click

from rnnkit.cli_options import Positive, Probability, absolute, config_option, explicit_options, new_run_path
from rnnkit.cli_options import EXIT_INTERRUPTED, open_for_resume, recurrent_options, require_task, resumed_settings
from rnnkit.cli_options import run_training, train_config_from, training_options
from rnnkit.data.conll import ALL_COLUMNS, FORMATS
from rnnkit.data.text import read_text
from rnnkit.errors import InputError


TASK = "tag"
DEFAULT_EPOCHS = 10

# Option name -> SequenceTagger argument.
MODEL_FIELDS = {"cell": "cell", "layers": "num_layers", "hidden": "hidden_size", "bidirectional": "bidirectional",
                "dropout": "dropout", "engine": "engine", "crf": "crf", "embedding": "embedding_dim",
                "char_embedding": "char_embedding_dim", "char_hidden": "char_hidden_size"}
# Option name -> TagDataConfig field.
DATA_FIELDS = {"data": "data", "valid": "valid_data", "data_format": "format", "column": "column",
               "batch_size": "batch_size", "min_freq": "min_freq", "lowercase_words": "lowercase_words",
               "word_dropout": "word_dropout", "char_features": "char_features"}
# What a resumed run may change: where the data lives, how long to go on, how the same arithmetic is run.
CHANGEABLE_ON_RESUME = {"data", "valid", "epochs", "time_budget", "max_steps", "patience", "save_every", "engine"}


@click.command()
@config_option
@click.option("--data", metavar="FILE", help="Tagged sentences to train on: CoNLL-U or CoNLL-2003.")
@click.option("--valid", metavar="FILE", help="Validation file in the same format; it picks the best checkpoint.")
@click.option("--format", "data_format", type=click.Choice(FORMATS),
              help="conllu (Universal Dependencies) or conll (CoNLL-2003 TOKEN POS CHUNK NER). Default: recognised from --data.")
@click.option("--column", type=click.Choice(ALL_COLUMNS),
              help="The tags to learn: upos, xpos (CoNLL-U); pos, chunk, ner (CoNLL-2003). Default: upos, or ner.")
@click.option("--crf/--no-crf", default=False, show_default=True,
              help="Score whole tag paths with a linear-chain CRF (Viterbi decoding); helps BIO entity tags.")
@click.option("--char-features/--no-char-features", default=True, show_default=True,
              help="Add a character BiLSTM's vector to each word, for unseen and rare words.")
@click.option("--embedding", type=Positive, default=100, show_default=True, help="Word embedding size.")
@click.option("--char-embedding", type=Positive, default=25, show_default=True, help="Character embedding size.")
@click.option("--char-hidden", type=Positive, default=25, show_default=True, help="Character BiLSTM units per direction.")
@click.option("--min-freq", type=Positive, default=1, show_default=True, help="Training words seen fewer times read as <unk>.")
@click.option("--lowercase-words/--keep-case", default=False, show_default=True,
              help="Look words up lower-cased (the character features still see the case).")
@click.option("--word-dropout", type=Probability, default=0.5, show_default=True,
              help="Replace each training word seen once by <unk> with this probability per batch, so <unk> learns unseen words.")
@recurrent_options(hidden=128, bidirectional=True, dropout=0.5)
@training_options(lr=2e-3, epochs=DEFAULT_EPOCHS, batch_size=32)
@click.option("--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off.")
@click.pass_context
def train_command(ctx: click.Context, **options) -> None:
    """Train a sequence tagger (part of speech, named entities): one tag per word, read in both directions.

    The tags are those of --column in the training file. Validation accuracy (span F1 for BIO entity tags)
    picks the best checkpoint (--checkpoint best) and drives --patience.
    """
    from rnnkit.tasks.tag import TagDataConfig, load_tag_data, train_tagger

    explicit = explicit_options(ctx)
    values = {field: options[option] for option, field in DATA_FIELDS.items()}
    values["data"], values["valid_data"] = absolute(values["data"]), absolute(values["valid_data"])
    model_options = {field: options[option] for option, field in MODEL_FIELDS.items()}
    train_config = train_config_from(options, explicit, DEFAULT_EPOCHS)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(options, TASK, "train tag")
        values, model_options, train_config = resumed_settings(
            checkpoint.meta["configs"], values, model_options, train_config, explicit=explicit,
            changeable=CHANGEABLE_ON_RESUME, model_fields=MODEL_FIELDS,
            data_option_of={field: option for option, field in DATA_FIELDS.items()})
    else:
        run_path = new_run_path(options, TASK)
    # The data is read and checked before the run directory is made: a bad file leaves nothing behind.
    data = load_tag_data(TagDataConfig(**values), checkpoint)

    report = run_training(partial(train_tagger, data, model_options, train_config, checkpoint=checkpoint),
                          options, run_path, new_run=checkpoint is None)
    if report is None:  # not rank 0
        return
    selection = "f1" if "valid_f1" in report else "accuracy"
    report.update(_best_epoch(run_path, selection))
    _print_report(report, options["as_json"])
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit train tag --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def evaluate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit evaluate DIR --data FILE [--json]``: token accuracy; span P/R/F1, overall and per type, for entity tags."""
    from rnnkit.tasks.tag import EVAL_BATCH_SIZE, TrainedTagger

    require_task(checkpoint.meta, TASK, run_dir, "train tag")
    if options.get("data") is None:
        raise InputError(f"{run_dir} holds a tagger: give the tagged file to score with --data FILE")
    if options.get("source") is not None or options.get("target") is not None:
        raise InputError("a tagger scores a CoNLL file given with --data FILE; --source/--target are for translation runs")
    tagger = TrainedTagger.from_checkpoint(checkpoint)
    scores = tagger.evaluate(options["data"], options.get("batch_size") or EVAL_BATCH_SIZE)
    if scores["unseen_tags"]:
        shown = ", ".join(scores["unseen_tags"][:10])
        click.echo(f"note: {len(scores['unseen_tags'])} tags of {options['data']} never occur in the training data "
                   f"({shown}); their tokens count as errors", err=True)
    if options.get("as_json"):
        click.echo(json.dumps(scores))
        return
    click.echo(_scores_table(scores, options["data"]))


def predict(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit predict DIR [--input FILE] [--json]``: one sentence per line, tokens separated by spaces;
    prints ``token/TAG token/TAG ...`` per line (``--json``: ``{"tokens": [...], "tags": [...]}``)."""
    from rnnkit.tasks.tag import TrainedTagger

    require_task(checkpoint.meta, TASK, run_dir, "train tag")
    if options.get("data") is not None or options.get("output") is not None:
        raise InputError("a tagger reads sentences with --input FILE (or stdin) and writes to stdout; "
                         "drop --data/--output and redirect the output (> FILE)")
    tagger = TrainedTagger.from_checkpoint(checkpoint)
    if options.get("input_path") is not None:
        text = read_text(options["input_path"])
    else:
        text = sys.stdin.read()
        if not text.strip():
            raise InputError("no sentences on stdin; pipe one sentence per line (tokens separated by spaces), "
                             "or give --input FILE")
    sentences = [line.split() for line in text.rstrip("\n").split("\n")]
    for tokens, tags in zip(sentences, tagger.tag(sentences)):
        if options.get("as_json"):
            click.echo(json.dumps({"tokens": tokens, "tags": tags}))
        else:
            click.echo(" ".join(f"{token}/{tag}" for token, tag in zip(tokens, tags)))


# ------------------------------------------------------------------------------------------- helpers


def _best_epoch(run_path: Path, selection: str) -> dict:
    """The epoch with the best validation score (``selection``) and that score, from metrics.jsonl, if any."""
    metrics = Path(run_path) / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
    key = f"valid_{selection}"
    scored = [r for r in records if key in r and not r.get("partial_epoch")]
    if not scored:
        return {}
    best = max(scored, key=lambda r: r[key])  # the first of equals, as the Trainer keeps it
    return {"best_epoch": best["epoch"], f"best_{key}": best[key]}


def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report))
        return
    lines = [f"stopped by {report['stop_reason']} after {report['steps']:,} steps "
             f"({report['elapsed_seconds']:.0f}s, {report['tokens_per_second']:,.0f} tokens/s)"]
    if "valid_accuracy" in report:
        line = f"validation: accuracy {report['valid_accuracy']:.4f}"
        if "valid_f1" in report:
            line += (f", span F1 {report['valid_f1']:.4f} (precision {report['valid_precision']:.4f}, "
                     f"recall {report['valid_recall']:.4f})")
        line += f", loss {report['valid_loss']:.4f}"
        for key, name in (("best_valid_f1", "span F1"), ("best_valid_accuracy", "accuracy")):
            if key in report:
                line += f"; best {name} {report[key]:.4f} at epoch {report['best_epoch']} (--checkpoint best)"
        lines.append(line)
    if "run_dir" in report:
        run = report["run_dir"]
        lines.append(f"run saved in {run}; use it with: rnnkit predict {run} --input FILE, "
                     f"rnnkit evaluate {run} --data FILE")
    click.echo("\n".join(lines))


def _scores_table(scores: dict, data: str) -> str:
    """Accuracy; for entity tags the span scores, then a row of precision / recall / F1 / support per type."""
    lines = [f"accuracy {scores['accuracy']:.4f}  ({scores['tokens']:,} tokens in {scores['sentences']:,} "
             f"sentences of {data})"]
    if "f1" not in scores:
        return lines[0]
    lines.append(f"spans: precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
                 f"({scores['gold_spans']:,} gold, {scores['predicted_spans']:,} predicted, "
                 f"{scores['correct_spans']:,} correct)")
    types = scores["per_type"]
    width = max(4, *(len(kind) for kind in types)) if types else 4
    lines += ["", f"{'type':<{width}}  precision  recall      f1  support"]
    for kind, row in types.items():
        lines.append(f"{kind:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  {row['support']:7,}")
    return "\n".join(lines)
