"""``rnnkit train translate``, and ``rnnkit evaluate`` / ``rnnkit predict`` on a translation run.

    rnnkit train translate --source train.de --target train.en [--valid-source F --valid-target F]
                           [--attention none|additive|dot|general] [--beam N] ... [--out DIR] [--resume DIR]
    rnnkit evaluate DIR --source test.de --target test.en [--json]     BLEU and chrF (sacrebleu)
    rnnkit predict DIR [--input FILE] [--output FILE] [--json]         the same as `rnnkit translate DIR`

Warnings (pairs skipped for an empty side, sentences truncated, unknown tokens) go to stderr as
``warning: ...`` lines; translations go to stdout (or --output, replaced atomically).
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from tqdm import tqdm

from rnnkit.cli_options import Positive, absolute, config_option, explicit_options, new_run_path
from rnnkit.cli_options import EXIT_INTERRUPTED, log_line, open_for_resume, recurrent_options, resumed
from rnnkit.cli_options import train_config_from, training_options
from rnnkit.data.parallel import read_lines
from rnnkit.errors import InputError
from rnnkit.train import RunDirectory, TrainConfig, distributed
from rnnkit.train.checkpoint import write_atomic

TASK = "translate"
# Option name -> Seq2Seq / DecodeConfig field, where they differ.
MODEL_FIELDS = {"embedding": "embedding_dim", "cell": "cell", "hidden": "hidden_size", "layers": "num_layers",
                "bidirectional": "bidirectional", "decoder_hidden": "decoder_hidden_size", "attention": "attention",
                "attention_size": "attention_size", "dropout": "dropout", "tie_embeddings": "tie_embeddings",
                "engine": "engine"}
DECODE_FIELDS = {"beam": "beam_size", "length_penalty": "length_penalty"}
# What a resumed run may change: where the data lives, how long to go on, how the same arithmetic is run,
# and how the finished model translates by default.
CHANGEABLE_ON_RESUME = {"source", "target", "valid_source", "valid_target", "epochs", "time_budget", "max_steps",
                        "patience", "save_every", "engine", "beam", "length_penalty"}


@click.command()
@config_option
@click.option("--source", metavar="FILE", help="Training source sentences, one per line (.gz allowed).")
@click.option("--target", metavar="FILE", help="Their translations, line by line (.gz allowed).")
@click.option("--valid-source", metavar="FILE", help="Validation source sentences. Default: hold out --valid-fraction.")
@click.option("--valid-target", metavar="FILE", help="Validation translations, line by line with --valid-source.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.05, show_default=True,
              help="Share of the training pairs held out when there are no validation files.")
@click.option("--attention", type=click.Choice(["none", "additive", "dot", "general"]), default="additive",
              show_default=True,
              help="none: the encoder's final state is the only context (the bottleneck); additive: Bahdanau; "
                   "dot / general: Luong.")
@click.option("--attention-size", type=Positive, help="Additive attention's hidden width. Default: the decoder's width.")
@click.option("--embedding", type=Positive, default=256, show_default=True, help="Token embedding width (both sides).")
@click.option("--decoder-hidden", type=Positive, help="Decoder width. Default: the encoder's output width (2 × --hidden if bidirectional).")
@click.option("--tie-embeddings/--no-tie-embeddings", default=False, show_default=True,
              help="Share the target embedding with the output layer.")
@recurrent_options(hidden=256, layers=1, bidirectional=True, dropout=0.3, cell="gru")
@click.option("--min-freq", type=Positive, default=2, show_default=True,
              help="Tokens seen fewer times in training read as <unk>.")
@click.option("--max-vocab", type=Positive, help="At most this many tokens per vocabulary (specials included).")
@click.option("--max-length", type=Positive, default=100, show_default=True,
              help="Truncate longer sentences (counted in a warning).")
@click.option("--teacher-forcing", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Probability that the decoder reads the reference token rather than its own prediction.")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Label smoothing of the training loss.")
@click.option("--beam", type=Positive, default=5, show_default=True,
              help="Beam size this run translates with by default (`rnnkit translate`, `rnnkit evaluate`); 1 = greedy.")
@click.option("--length-penalty", type=click.FloatRange(min=0), default=0.6, show_default=True,
              help="GNMT length normalisation alpha of beam search (0: none).")
@training_options(lr=1e-3, epochs=10, batch_size=64)
@click.option("--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off.")
@click.pass_context
def train_command(ctx: click.Context, **options) -> None:
    """Train a sequence-to-sequence translator (encoder-decoder, with or without attention) on parallel text.

    Each epoch the validation pairs are translated greedily and scored with BLEU; the best-scoring
    checkpoint is the run's `best`.
    """
    from rnnkit.tasks.translate import DecodeConfig, TranslateDataConfig, prepare_translation, train_translation

    explicit = explicit_options(ctx)
    data_values = {name: options[name] for name in (
        "source", "target", "valid_source", "valid_target", "valid_fraction", "min_freq", "max_vocab", "max_length",
        "batch_size", "teacher_forcing", "label_smoothing")}
    for name in ("source", "target", "valid_source", "valid_target"):
        data_values[name] = absolute(data_values[name])
    model_options = {field: options[option] for option, field in MODEL_FIELDS.items()}
    decode_values = {field: options[option] for option, field in DECODE_FIELDS.items()}
    train_config = train_config_from(options, explicit)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(options, TASK, "train translate")
        saved = checkpoint.meta["configs"]
        data_values = resumed(saved["data"], data_values, {}, explicit, CHANGEABLE_ON_RESUME)
        model_options = resumed(saved["model"], model_options, _options_of(MODEL_FIELDS), explicit,
                                CHANGEABLE_ON_RESUME)
        decode_values = resumed(saved["decode"], decode_values, _options_of(DECODE_FIELDS), explicit,
                                CHANGEABLE_ON_RESUME)
        train_config = TrainConfig(**resumed(saved["train"], asdict(train_config), {}, explicit, CHANGEABLE_ON_RESUME))
    else:
        if not data_values["source"] or not data_values["target"]:
            raise InputError("give the training pairs with --source FILE and --target FILE "
                             "(or continue a run with --resume DIR)")
        run_path = new_run_path(options, TASK)
    data_config = TranslateDataConfig(**data_values)
    decode_config = DecodeConfig(**decode_values)
    quiet = options["quiet"]

    dist = distributed.setup(options["device"])
    try:
        # data and model are checked before the run directory is touched: a mistake never costs an earlier run
        prepared = prepare_translation(data_config, model_options, train_config.seed, checkpoint,
                                       warn=warn if dist.is_main else None)
        run_dir = RunDirectory(run_path)
        if dist.is_main and checkpoint is None:
            run_dir = RunDirectory.create(run_path, options["overwrite"])
        report = train_translation(
            data_config, model_options, decode_config, train_config, run_dir=run_dir, checkpoint=checkpoint,
            dist=dist, prepared=prepared,
            progress_bar=not quiet and not options["as_json"] and sys.stderr.isatty(),
            log=None if quiet else log_line,
        )
    finally:
        distributed.teardown(dist)
    if not dist.is_main:
        return
    print_report(report, options["as_json"], f"rnnkit translate {run_path} --input FILE",
                 {"bleu": "BLEU (greedy) {:.2f}"})
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit train translate --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)






def _options_of(fields_by_option: dict[str, str]) -> dict[str, str]:
    return {field: option for option, field in fields_by_option.items()}


def evaluate(run_dir, checkpoint, options) -> None:
    """``rnnkit evaluate DIR --source F --target F``: BLEU and chrF of the run's translations (sacrebleu)."""
    from rnnkit.tasks.translate import evaluate_files, from_checkpoint

    if options.get("data"):
        raise InputError(f"{run_dir} holds a translation run: give --source FILE --target FILE instead of --data")
    if not options.get("source") or not options.get("target"):
        raise InputError(f"{run_dir} holds a translation run: give the sentences with --source FILE and their "
                         "reference translations with --target FILE")
    translator = from_checkpoint(checkpoint, run_dir)
    metrics = evaluate_files(translator, options["source"], options["target"], translator.decode, warn)
    if options.get("as_json"):
        click.echo(json.dumps(metrics))
        return
    click.echo(f"BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  ({metrics['sentences']:,} sentences of "
               f"{options['source']}, beam {metrics['beam_size']}; sacrebleu {metrics['bleu_signature']})")


def predict(run_dir, checkpoint, options) -> None:
    """``rnnkit predict DIR [--input FILE] [--output FILE]``: translate, as ``rnnkit translate DIR`` does."""
    from rnnkit.tasks.translate import from_checkpoint

    translator = from_checkpoint(checkpoint, run_dir)
    # cli.py names the --input flag's value input_path
    input_path = options.get("input_path", options.get("input"))
    translate_to_output(translator, translator.decode, input_path, options.get("output"),
                        options.get("as_json", False))


def translate_to_output(translator, decode, input_path: str | None, output_path: str | None, as_json: bool) -> None:
    """Translate the lines of ``input_path`` (stdin if None) to ``output_path`` (stdout if None), line by line."""
    from rnnkit.tasks.translate import translate_sentences

    if input_path is None:
        if sys.stdin.isatty():
            click.echo("reading sentences from stdin, one per line (end with Ctrl-D)", err=True)
        lines = sys.stdin.read().splitlines()
        source_name = "stdin"
    else:
        lines = read_lines(input_path)
        source_name = input_path
    if not any(line.strip() for line in lines):
        raise InputError(f"{source_name} holds no sentence to translate; give one sentence per line")
    translations = translate_sentences(translator, [line.strip() for line in lines], decode, warn)
    if as_json:
        text = "".join(json.dumps({"source": source, "translation": translation}, ensure_ascii=False) + "\n"
                       for source, translation in zip(lines, translations))
    else:
        text = "".join(translation + "\n" for translation in translations)
    if output_path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(Path(output_path), text.encode("utf-8"))
        click.echo(f"{len(translations):,} translations written to {output_path}", err=True)


def print_report(report: dict, as_json: bool, next_command: str, scores: dict[str, str]) -> None:
    """The final report of a sequence-generation run: JSON, or a few human lines. ``scores``: the
    validation scores to show, by name, each with its format (``"BLEU (greedy) {:.2f}"``)."""
    if as_json:
        click.echo(json.dumps(report))
        return
    lines = [f"stopped by {report['stop_reason']} after {report['steps']:,} steps "
             f"({report['elapsed_seconds']:.0f}s, {report['tokens_per_second']:,.0f} tokens/s)"]
    if "valid_loss" in report:
        parts = [f"validation: loss {report['valid_loss']:.4f} nats/token"]
        if "valid_perplexity" in report:
            parts.append(f"perplexity {report['valid_perplexity']:.2f}")
        parts += [shown.format(report[f"valid_{name}"]) for name, shown in scores.items() if f"valid_{name}" in report]
        lines.append(", ".join(parts))
    if "run_dir" in report:
        lines.append(f"run saved in {report['run_dir']}; use it with: {next_command}")
    click.echo("\n".join(lines))




def warn(line: str) -> None:
    tqdm.write(f"warning: {line}", file=sys.stderr)
