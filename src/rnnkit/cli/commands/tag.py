"""``rnnkit train tag``, and how ``rnnkit evaluate`` / ``rnnkit predict`` on tagger runs (POS, NER) print.

    rnnkit train tag --data FILE [--format conllu|conll] [--column upos|xpos|pos|chunk|ner] [--valid FILE]
                     [--crf/--no-crf] [--char-features/--no-char-features] [--embedding N] [--char-embedding N]
                     [--char-hidden N] [--min-freq N] [--lowercase-words/--keep-case] [--word-dropout P]
                     [network and training flags] [--out DIR] [--resume DIR]
    rnnkit evaluate RUN --data FILE [--checkpoint best] [--json]   token accuracy; span P/R/F1 for entity tags
    rnnkit predict RUN [--input FILE] [--json]                     token/TAG token/TAG ... per input line

Examples::

    rnnkit train tag --data en_ewt-ud-train.conllu --valid en_ewt-ud-dev.conllu --out runs/ewt
    rnnkit train tag --data conll2003/train.txt --valid conll2003/valid.txt --crf --out runs/ner
    echo "Peter lives in Berlin ." | rnnkit predict runs/ner
"""


import click

from rnnkit.cli.options import Positive, Probability, recurrent_options, regulariser_options, training_options
from rnnkit.cli.task_command import TaskCommand, best_line, lines, saved_line, stopped_line, train_command_of
from rnnkit.data.conll import ALL_COLUMNS, FORMATS
from rnnkit.tasks.tag import SPEC


def tagged(result: list[dict], options: dict, run) -> str:
    """``rnnkit predict``: ``token/TAG token/TAG ...``, one line per sentence."""
    return "\n".join(" ".join(f"{token}/{label}" for token, label in zip(row["tokens"], row["tags"])) for row in result)


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


def scores_table(scores: dict, options: dict, run) -> str:
    """Accuracy; for entity tags the span scores, then a row of precision / recall / F1 / support per type."""
    lines = [f"accuracy {scores['accuracy']:.4f}  ({scores['tokens']:,} tokens in {scores['sentences']:,} "
             f"sentences of {options['data']})"]
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
    text={"evaluate": scores_table, "predict": tagged},
)
train_command = train_command_of(COMMAND)
