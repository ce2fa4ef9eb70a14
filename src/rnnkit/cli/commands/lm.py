"""``rnnkit train lm``, and ``rnnkit evaluate`` of a language model (``rnnkit generate`` samples it).

    rnnkit train lm [--data FILE] [--level char|word] [--cell lstm|gru|rnn] ... [--out DIR] [--resume DIR]
    rnnkit evaluate DIR --data FILE [--batch-size N] [--seq-len N] [--json]
    torchrun --nproc-per-node=2 -m rnnkit train lm ...        (data-parallel training)
"""


import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import FiniteFloat, Fraction, Layers, Positive, PositiveFloat, cell_option, engine_option
from rnnkit.cli.options import regulariser_options, training_options
from rnnkit.cli.task_command import Applies, TaskCommand, lines, saved_line, show, stopped_line, train_command_of
from rnnkit.errors import InputError
from rnnkit.tasks import lm
from rnnkit.tasks.lm import SPEC


def evaluate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit evaluate DIR --data FILE``: loss (nats/token), perplexity and, for characters, bits per character."""
    from rnnkit.data.reading import read_text

    trained = SPEC.from_run(run_dir, checkpoint=checkpoint)
    data = options.get("data")
    if data is None:
        raise InputError(f"{run_dir} holds a language model: give the text to score with --data FILE")
    unknown = options.get("unknown") or "error"
    if unknown == "skip" and trained.vocab.level == "word":
        raise InputError(f"--unknown skip is for character models; the word model in {run_dir} reads words it never "
                         "saw as <unk> (counted in the result): drop --unknown")
    metrics = lm.evaluate(trained, read_text(data), options.get("batch_size"), options.get("seq_len"), unknown=unknown,
                          source=data)
    show(metrics, options, lambda m: f"loss {m['loss']:.4f} nats/token  perplexity {m['perplexity']:.2f}"
         + (f"  bits/char {m['bits_per_char']:.4f}" if "bits_per_char" in m else "")
         + f"  ({m['tokens']:,} tokens of {data}{_unseen_words(m)})")


def _unseen_words(metrics: dict) -> str:
    """``; 3 characters the model never saw skipped`` (or words read as <unk>), or nothing."""
    if metrics.get("skipped_characters"):
        return f"; {metrics['skipped_characters']:,} characters the model never saw skipped"
    if metrics.get("unknown_words"):
        return f"; {metrics['unknown_words']:,} words the model never saw read as <unk>"
    return ""


def generate(run_dir: str, checkpoint, options: dict) -> None:
    """``rnnkit generate DIR``: text from the language model, written to stdout piece by piece as it is sampled
    (the prime first); with --json one object ``{"prime", "text"}`` at the end."""
    import sys

    from rnnkit.generate import sample

    model, vocab, _ = SPEC.from_run(run_dir, checkpoint=checkpoint)
    prime = options.get("prime") or ""
    pieces = sample(model, vocab, prime=prime, length=options.get("length") or 500,
                    temperature=options.get("temperature") or 1.0, top_k=options.get("top_k"),
                    top_p=options.get("top_p"), greedy=bool(options.get("greedy")), seed=options.get("seed"))
    if options.get("as_json"):
        click.echo(to_json({"prime": prime, "text": "".join(pieces)}))
        return
    # The sampler (having checked its arguments) feeds the prime through without yielding it; show it.
    sys.stdout.write(prime)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def report(report: dict, run_path, settings) -> str:
    validation = None
    if "valid_loss" in report:
        unit = "nats/char" if settings.data.level == "char" else "nats/word"
        validation = f"validation: loss {report['valid_loss']:.4f} {unit}, perplexity {report['valid_perplexity']:.2f}"
        if "valid_bits_per_char" in report:
            validation += f", {report['valid_bits_per_char']:.4f} bits/char"
    return lines(stopped_line(report), validation, saved_line(report, "sample it with: rnnkit generate {run}"))


COMMAND = TaskCommand(
    SPEC,
    help="""Train a character- or word-level language model (truncated BPTT over parallel streams).

    With no --data it learns Python source code from the standard library that ships with Python.
    """,
    options=(
        click.option("--data", metavar="FILE", help="Training text file (UTF-8). Default: the embedded corpus of Python standard library source."),
        click.option("--valid-data", metavar="FILE", help="Validation text file. Default: the last --valid-fraction of --data."),
        click.option("--valid-fraction", type=Fraction, default=0.1, show_default=True,
                     help="Share of --data held out for validation when there is no --valid-data."),
        click.option("--level", type=click.Choice(["char", "word"]), default="char", show_default=True,
                     help="Tokens: characters, or whitespace-separated words with <eos> per line."),
        cell_option(),
        click.option("--layers", type=Layers, default=2, show_default=True, help="Stacked recurrent layers."),
        click.option("--hidden", type=Positive, default=256, show_default=True, help="Hidden units per layer."),
        click.option("--embedding", type=click.IntRange(min=0),
                     help="Embedding size; 0 feeds one-hot vectors (char-rnn). Default: 64 for --level char, --hidden for word."),
        click.option("--dropout", type=FiniteFloat(0, 1, max_open=True), default=0.0, show_default=True,
                     help="Dropout probability between layers, in [0, 1)."),
        click.option("--tie-weights/--no-tie-weights", default=False, show_default=True,
                     help="Share the embedding and output weights (needs --embedding equal to --hidden)."),
        engine_option(),
        regulariser_options(embedding=True),
        click.option("--init-range", type=PositiveFloat, help="Initialise every weight uniformly in ±X (Zaremba: 0.1). Default: PyTorch's."),
        click.option("--seq-len", type=Positive, default=64, show_default=True, help="Tokens per window: the truncated BPTT length."),
        click.option("--batch-size", type=Positive, default=16, show_default=True, help="Parallel streams per step (over all processes)."),
        click.option("--loss-over-time", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
                     help="mean: average over every token; sum: sum over time steps, average over sequences."),
        training_options(lr=3e-3, batch_size=None),
        click.option("--log-gradients", type=Positive, metavar="N",
                     help="Every N steps record ||dL/dh_t|| for each step of the batch in RUN/gradients.jsonl."),
    ),
    report=report,
    evaluate=Applies(evaluate, ("data", "batch_size", "seq_len", "unknown")),
    generate=Applies(generate, ("prime", "length", "temperature", "top_k", "top_p", "greedy", "seed")),
    instead="sample it with `rnnkit generate {run}`",
)
train_command = train_command_of(COMMAND)
