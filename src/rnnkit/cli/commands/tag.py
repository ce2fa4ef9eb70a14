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


import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import Positive, Probability, recurrent_options, regulariser_options, training_options
from rnnkit.cli.task_command import Applies, TaskCommand, best_line, lines, read_stdin, saved_line, show, stopped_line
from rnnkit.cli.task_command import train_command_of
from rnnkit.data.conll import ALL_COLUMNS, FORMATS
from rnnkit.data.reading import read_text
from rnnkit.errors import InputError
from rnnkit.tasks import tag
from rnnkit.tasks.tag import EVAL_BATCH_SIZE, SPEC


def evaluate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit evaluate DIR --data FILE [--json]``: token accuracy; span P/R/F1, overall and per type, for entity tags."""
    tagger = SPEC.from_run(run_dir, checkpoint=checkpoint)
    if options.get("data") is None:
        raise InputError(f"{run_dir} holds a tagger: give the tagged file to score with --data FILE")
    scores = tag.evaluate(tagger, options["data"], options.get("batch_size") or EVAL_BATCH_SIZE)
    if scores["unseen_tags"]:
        shown = ", ".join(scores["unseen_tags"][:10])
        click.echo(f"note: {len(scores['unseen_tags'])} tags of {options['data']} never occur in the training data "
                   f"({shown}); their tokens count as errors", err=True)
    show(scores, options, lambda scores: _scores_table(scores, options["data"]))


def predict(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit predict DIR [--input FILE] [--json]``: one sentence per line, tokens separated by spaces;
    prints ``token/TAG token/TAG ...`` per line (``--json``: ``{"tokens": [...], "tags": [...]}``)."""
    tagger = SPEC.from_run(run_dir, checkpoint=checkpoint)
    if options.get("input_path") is not None:
        text = read_text(options["input_path"])
    else:
        text = read_stdin()
        if not text.strip():
            raise InputError("no sentences on stdin; pipe one sentence per line (tokens separated by spaces), "
                             "or give --input FILE")
    sentences = [line.split() for line in text.rstrip("\n").split("\n")]
    for tokens, tags in zip(sentences, tagger.tag(sentences)):
        if options.get("as_json"):
            click.echo(to_json({"tokens": tokens, "tags": tags}))
        else:
            click.echo(" ".join(f"{token}/{label}" for token, label in zip(tokens, tags)))


def report(report: dict, run_path, settings) -> str:
    validation = None
    if "valid_accuracy" in report:
        validation = f"validation: accuracy {report['valid_accuracy']:.4f}"
        if "valid_f1" in report:
            validation += (f", span F1 {report['valid_f1']:.4f} (precision {report['valid_precision']:.4f}, "
                           f"recall {report['valid_recall']:.4f})")
        validation += (f", loss {report['valid_loss']:.4f}" + best_line(report, "f1", "span F1")
                       + best_line(report, "accuracy", "accuracy"))
    return lines(stopped_line(report), validation,
                 saved_line(report, "use it with: rnnkit predict {run} --input FILE, rnnkit evaluate {run} --data FILE"))


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


COMMAND = TaskCommand(
    SPEC,
    help="""Train a sequence tagger (part of speech, named entities): one tag per word, read in both directions.

    The tags are those of --column in the training file. Validation accuracy (span F1 for BIO entity tags)
    picks the best checkpoint (--checkpoint best) and drives --patience.
    """,
    options=(
        click.option("--data", metavar="FILE", help="Tagged sentences to train on: CoNLL-U or CoNLL-2003."),
        click.option("--valid", metavar="FILE", help="Validation file in the same format; it picks the best checkpoint."),
        click.option("--format", "data_format", type=click.Choice(FORMATS),
                     help="conllu (Universal Dependencies) or conll (CoNLL-2003 TOKEN POS CHUNK NER). Default: recognised from --data."),
        click.option("--column", type=click.Choice(ALL_COLUMNS),
                     help="The tags to learn: upos, xpos (CoNLL-U); pos, chunk, ner (CoNLL-2003). Default: upos, or ner."),
        click.option("--crf/--no-crf", default=False, show_default=True,
                     help="Score whole tag paths with a linear-chain CRF (Viterbi decoding); helps BIO entity tags."),
        click.option("--char-features/--no-char-features", default=True, show_default=True,
                     help="Add a character BiLSTM's vector to each word, for unseen and rare words."),
        click.option("--embedding", type=Positive, default=100, show_default=True, help="Word embedding size."),
        click.option("--char-embedding", type=Positive, default=25, show_default=True, help="Character embedding size."),
        click.option("--char-hidden", type=Positive, default=25, show_default=True, help="Character BiLSTM units per direction."),
        click.option("--min-freq", type=Positive, default=1, show_default=True, help="Training words seen fewer times read as <unk>."),
        click.option("--lowercase-words/--keep-case", default=False, show_default=True,
                     help="Look words up lower-cased (the character features still see the case)."),
        click.option("--word-dropout", type=Probability, default=0.5, show_default=True,
                     help="Replace each training word seen once by <unk> with this probability per batch, so <unk> learns unseen words."),
        recurrent_options(hidden=128, bidirectional=True, dropout=0.5),
        regulariser_options(embedding=True),
        training_options(lr=2e-3, epochs=SPEC.default_epochs, batch_size=32),
    ),
    report=report,
    evaluate=Applies(evaluate, ("data", "batch_size")),
    predict=Applies(predict, ("input_path",)),
)
train_command = train_command_of(COMMAND)
