"""``rnnkit train translate``, ``rnnkit translate RUN``, and how ``rnnkit evaluate`` / ``rnnkit predict`` on a
translation run print.

    rnnkit train translate --source train.de --target train.en [--valid-source F --valid-target F]
                           [--attention none|additive|dot|general] [--beam N] ... [--out DIR] [--resume DIR]
    rnnkit evaluate RUN --source test.de --target test.en [--beam N] [--json]     BLEU and chrF (sacrebleu)
    rnnkit translate RUN [--input FILE] [--output FILE] [--beam N] [--length-penalty A] [--json]
    rnnkit predict RUN ...                                                         the same as `rnnkit translate RUN`

Warnings (pairs skipped for an empty side, sentences truncated, unknown tokens) go to stderr as
``warning: ...`` lines; translations go to stdout (and to --output, replaced atomically).
"""

import click

from rnnkit.checks import MAX_LENGTH_PENALTY
from rnnkit.cli.options import FiniteFloat, Fraction, Positive, recurrent_options, regulariser_options
from rnnkit.cli.options import training_options
from rnnkit.cli.task_command import TaskCommand, lines, operation_command, saved_line, stopped_line
from rnnkit.cli.task_command import train_command_of, validation_line
from rnnkit.tasks.translate import SPEC


def scores(metrics: dict, options: dict, run) -> str:
    """``rnnkit evaluate``: BLEU and chrF, with what was scored and sacrebleu's signature."""
    return (f"BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  ({metrics['sentences']:,} sentences of "
            f"{options['source']}, beam {metrics['beam_size']}; sacrebleu {metrics['bleu_signature']})")


def translations(result: list[dict], options: dict, run) -> str | None:
    """``rnnkit predict`` / ``translate``: the translations, one per line (with --output, only how many were
    written there, on stderr)."""
    if options["output"] is not None:
        click.echo(f"{len(result):,} translations written to {options['output']}", err=True)
        return None
    return "\n".join(row["translation"] for row in result)


def report(report: dict, run_path, settings) -> str:
    return lines(stopped_line(report), validation_line(report, {"bleu": "BLEU (greedy) {:.2f}"}),
                 saved_line(report, "use it with: rnnkit translate {run} --input FILE"))


COMMAND = TaskCommand(
    SPEC,
    help="""Train a sequence-to-sequence translator (encoder-decoder, with or without attention) on parallel text.

    Each epoch the validation pairs are translated greedily and scored with BLEU; the best-scoring
    checkpoint is the run's `best`.
    """,
    options=(
        click.option("--source", metavar="FILE", help="Training source sentences, one per line (.gz allowed)."),
        click.option("--target", metavar="FILE", help="Their translations, line by line (.gz allowed)."),
        click.option("--valid-source", metavar="FILE", help="Validation source sentences. Default: hold out --valid-fraction."),
        click.option("--valid-target", metavar="FILE", help="Validation translations, line by line with --valid-source."),
        click.option("--valid-fraction", type=Fraction, default=0.05, show_default=True,
                     help="Share of the training pairs held out when there are no validation files."),
        click.option("--attention", type=click.Choice(["none", "additive", "dot", "general"]), default="additive",
                     show_default=True,
                     help="none: the encoder's final state is the only context (the bottleneck); additive: Bahdanau; "
                          "dot / general: Luong."),
        click.option("--attention-size", type=Positive, help="Additive attention's hidden width. Default: the decoder's width."),
        click.option("--embedding", type=Positive, default=256, show_default=True, help="Token embedding width (both sides)."),
        click.option("--decoder-hidden", type=Positive,
                     help="Decoder width. Default: the encoder's output width (2 × --hidden if bidirectional)."),
        click.option("--tie-embeddings/--no-tie-embeddings", default=False, show_default=True,
                     help="Share the target embedding with the output layer."),
        recurrent_options(hidden=256, layers=1, bidirectional=True, dropout=0.3, cell="gru"),
        regulariser_options(embedding=False),
        click.option("--min-freq", type=Positive, default=2, show_default=True,
                     help="Tokens seen fewer times in training read as <unk>."),
        click.option("--max-vocab", type=Positive, help="At most this many tokens per vocabulary (specials included)."),
        click.option("--max-length", type=Positive, default=100, show_default=True,
                     help="Truncate longer sentences (counted in a warning)."),
        click.option("--teacher-forcing", type=FiniteFloat(0, 1), default=1.0, show_default=True,
                     help="Probability that the decoder reads the reference token rather than its own prediction."),
        click.option("--label-smoothing", type=FiniteFloat(0, 1, max_open=True), default=0.0, show_default=True,
                     help="Label smoothing of the training loss."),
        click.option("--beam", type=Positive, default=5, show_default=True,
                     help="Beam size this run translates with by default (`rnnkit translate`, `rnnkit evaluate`); 1 = greedy."),
        click.option("--length-penalty", type=FiniteFloat(0, MAX_LENGTH_PENALTY), default=0.6, show_default=True,
                     help="GNMT length normalisation alpha of beam search (0: none)."),
        training_options(lr=1e-3, epochs=10, batch_size=64),
    ),
    report=report,
    text={"evaluate": scores, "predict": translations},
)
train_command = train_command_of(COMMAND)
translate_command = operation_command(COMMAND, "predict", title="translate", help="""Translate sentences (one per
    line, from --input or stdin) with the translation run in RUN.

    An empty input line gives an empty output line, so line i of the output always translates line i of the
    input; --output is replaced atomically. Sentences longer than the run's --max-length are truncated and
    unknown tokens read as <unk>; both are counted on stderr. The same as `rnnkit predict RUN`.
    """)
