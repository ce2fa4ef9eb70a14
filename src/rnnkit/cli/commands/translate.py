"""``rnnkit train translate``, and ``rnnkit evaluate`` / ``rnnkit predict`` on a translation run.

    rnnkit train translate --source train.de --target train.en [--valid-source F --valid-target F]
                           [--attention none|additive|dot|general] [--beam N] ... [--out DIR] [--resume DIR]
    rnnkit evaluate DIR --source test.de --target test.en [--json]     BLEU and chrF (sacrebleu)
    rnnkit predict DIR [--input FILE] [--output FILE] [--json]         the same as `rnnkit translate DIR`
    rnnkit translate DIR [--input FILE] [--output FILE] [--beam N] [--length-penalty A] [--json]

Warnings (pairs skipped for an empty side, sentences truncated, unknown tokens) go to stderr as
``warning: ...`` lines; translations go to stdout (or --output, replaced atomically).
"""

import sys
from dataclasses import replace
from pathlib import Path

import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import FiniteFloat, Fraction, Positive, checkpoint_option, recurrent_options
from rnnkit.cli.options import regulariser_options, training_options
from rnnkit.cli.outputs import check_output
from rnnkit.cli.task_command import Applies, TaskCommand, lines, read_stdin, saved_line, show, stopped_line, train_command_of
from rnnkit.cli.task_command import validation_line
from rnnkit.data.reading import read_lines
from rnnkit.errors import InputError
from rnnkit.files import write_atomic
from rnnkit.tasks import translate
from rnnkit.tasks.translate import SPEC, translate_sentences
from rnnkit.train.progress import warn_line


def evaluate(run_dir, checkpoint, options) -> None:
    """``rnnkit evaluate DIR --source F --target F``: BLEU and chrF of the run's translations (sacrebleu)."""
    translator = SPEC.from_run(run_dir, checkpoint=checkpoint)
    if not options.get("source") or not options.get("target"):
        raise InputError(f"{run_dir} holds a translation run: give the sentences with --source FILE and their "
                         "reference translations with --target FILE")
    metrics = translate.evaluate(translator, options["source"], options["target"], warn=warn_line)
    show(metrics, options, lambda m: f"BLEU {m['bleu']:.2f}  chrF {m['chrf']:.2f}  ({m['sentences']:,} sentences of "
                                     f"{options['source']}, beam {m['beam_size']}; sacrebleu {m['bleu_signature']})")


def predict(run_dir, checkpoint, options) -> None:
    """``rnnkit predict DIR [--input FILE] [--output FILE]``: translate, as ``rnnkit translate DIR`` does."""
    check_translation_output(options.get("input_path"), options.get("output"))
    translator = SPEC.from_run(run_dir, checkpoint=checkpoint)
    translate_to_output(translator, translator.decode, options.get("input_path"), options.get("output"),
                        options.get("as_json", False))


def check_translation_output(input_path: str | None, output_path: str | None) -> None:
    """Before any work: --output is a file that can be written and is not the --input it would replace."""
    if output_path is not None:
        check_output(output_path, "--output", inputs=[input_path], example="translations.txt")


def translate_to_output(translator, decode, input_path: str | None, output_path: str | None, as_json: bool) -> None:
    """Translate the lines of ``input_path`` (stdin if None) to ``output_path`` (stdout if None), line by line."""
    if input_path is None:
        if sys.stdin.isatty():
            click.echo("reading sentences from stdin, one per line (end with Ctrl-D)", err=True)
        text = read_stdin()
        lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        source_name = "stdin"
    else:
        lines = read_lines(input_path)
        source_name = input_path
    if not any(line.strip() for line in lines):
        raise InputError(f"{source_name} holds no sentence to translate; give one sentence per line")
    translations = translate_sentences(translator, [line.strip() for line in lines], decode, warn_line)
    if as_json:
        text = "".join(to_json({"source": source, "translation": translation}, ensure_ascii=False) + "\n"
                       for source, translation in zip(lines, translations))
    else:
        text = "".join(translation + "\n" for translation in translations)
    if output_path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(Path(output_path), text.encode("utf-8"))
        click.echo(f"{len(translations):,} translations written to {output_path}", err=True)


def report(report: dict, run_path, settings) -> str:
    return lines(stopped_line(report), validation_line(report, {"bleu": "BLEU (greedy) {:.2f}"}),
                 saved_line(report, "use it with: rnnkit translate {run} --input FILE"))


@click.command("translate")
@click.argument("run_dir", metavar="DIR")
@click.option("--input", "input_path", metavar="FILE", help="Source sentences, one per line. Default: stdin.")
@click.option("--output", metavar="FILE", help="Write the translations here (atomically). Default: stdout.")
@click.option("--beam", type=Positive, help="Beam size; 1 = greedy search. Default: the run's (--beam of training).")
@click.option("--length-penalty", type=FiniteFloat(min=0),
              help="GNMT length normalisation alpha (0: none). Default: the run's.")
@checkpoint_option(best="the highest validation BLEU")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: {source, translation}.")
def translate_command(run_dir: str, input_path: str | None, output: str | None, beam: int | None,
                      length_penalty: float | None, which: str, as_json: bool) -> None:
    """Translate sentences (one per line, from --input or stdin) with the translation run in DIR.

    An empty input line gives an empty output line, so line i of the output always translates line i of the
    input; --output is replaced atomically. Sentences longer than the run's --max-length are truncated and
    unknown tokens read as <unk>; both are counted on stderr.
    """
    check_translation_output(input_path, output)
    translator = SPEC.from_run(run_dir, which)
    decode = translator.decode
    if beam is not None:
        decode = replace(decode, beam_size=beam)
    if length_penalty is not None:
        decode = replace(decode, length_penalty=length_penalty)
    translate_to_output(translator, decode, input_path, output, as_json)


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
        click.option("--length-penalty", type=FiniteFloat(min=0), default=0.6, show_default=True,
                     help="GNMT length normalisation alpha of beam search (0: none)."),
        training_options(lr=1e-3, epochs=10, batch_size=64),
    ),
    report=report,
    evaluate=Applies(evaluate, ("source", "target")),
    predict=Applies(predict, ("input_path", "output")),
)
train_command = train_command_of(COMMAND)
