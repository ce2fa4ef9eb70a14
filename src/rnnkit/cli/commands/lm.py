"""``rnnkit train lm``, and how ``rnnkit evaluate`` / ``rnnkit generate`` on a language model print.

    rnnkit train lm [--data FILE] [--level char|word] [--cell lstm|gru|rnn] ... [--out DIR] [--resume DIR]
    rnnkit evaluate RUN --data FILE [--batch-size N] [--seq-len N] [--unknown error|skip] [--json]
    rnnkit generate RUN [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P] [--greedy] [--seed N]
    torchrun --nproc-per-node=2 -m rnnkit train lm ...        (data-parallel training)
"""


import click

from rnnkit.checks import MAX_INIT_RANGE
from rnnkit.cli.options import FiniteFloat, Fraction, Layers, Positive, Probability, block_option, cell_option
from rnnkit.cli.options import LengthList, engine_option
from rnnkit.cli.options import regulariser_options, training_options
from rnnkit.cli.task_command import TaskCommand, lines, saved_line, stopped_line, train_command_of
from rnnkit.tasks.lm import SPEC


def scores(metrics: dict, options: dict, run) -> str:
    """``rnnkit evaluate``: loss (nats/token), perplexity and, for characters, bits per character."""
    return (f"loss {metrics['loss']:.4f} nats/token  perplexity {metrics['perplexity']:.2f}"
            + (f"  bits/char {metrics['bits_per_char']:.4f}" if "bits_per_char" in metrics else "")
            + f"  ({metrics['tokens']:,} tokens of {options['data']}: every one after the first"
               f"{_unseen_words(metrics)})")


def _unseen_words(metrics: dict) -> str:
    """``; 3 characters the model never saw skipped`` (or words read as <unk>), or nothing."""
    if metrics.get("skipped_characters"):
        return f"; {metrics['skipped_characters']:,} characters the model never saw skipped"
    if metrics.get("unknown_words"):
        return f"; {metrics['unknown_words']:,} words the model never saw read as <unk>"
    return ""


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
        click.option("--adaptive-softmax", type=LengthList(increasing=True, what="cutoffs such as 2000,6000"),
                     metavar="C1,C2,...",
                     help="An adaptive softmax (Grave et al. 2017) in place of the full output layer: the C1 most "
                          "frequent words in its head, the rest in clusters starting at C2, ... Fast for a word-level "
                          "vocabulary; the perplexity stays exact. Default: the full softmax."),
        engine_option(),
        block_option(),
        regulariser_options(embedding=True),
        click.option("--input-dropout", type=Probability,
                     help="AWD-LSTM's dropouti: locked dropout on the embedding output. Default: --dropout."),
        click.option("--hidden-dropout", type=Probability,
                     help="AWD-LSTM's dropouth: locked dropout between the layers. Default: --dropout."),
        click.option("--output-dropout", type=Probability,
                     help="AWD-LSTM's dropout: locked dropout on the last layer's output. Default: --dropout."),
        click.option("--variable-bptt/--fixed-bptt", default=False, show_default=True,
                     help="AWD-LSTM's windows: length ~ N(--seq-len, 5) (half --seq-len 5%% of the time), each "
                          "step's gradient scaled by length / --seq-len."),
        click.option("--ar", type=FiniteFloat(0), default=0.0, show_default=True, metavar="ALPHA",
                     help="Activation regularisation: ALPHA * mean(h^2) of the last layer's dropped output "
                          "(AWD-LSTM: 2)."),
        click.option("--tar", type=FiniteFloat(0), default=0.0, show_default=True, metavar="BETA",
                     help="Temporal activation regularisation: BETA * mean((h_t - h_{t-1})^2) of the last layer's "
                          "output before dropout (AWD-LSTM: 1)."),
        click.option("--init-range", type=FiniteFloat(0, MAX_INIT_RANGE, min_open=True), help="Initialise every weight uniformly in ±X (Zaremba: 0.1). Default: PyTorch's."),
        click.option("--seq-len", type=Positive, default=64, show_default=True, help="Tokens per window: the truncated BPTT length."),
        click.option("--batch-size", type=Positive, default=16, show_default=True, help="Parallel streams per step (over all processes)."),
        click.option("--loss-over-time", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
                     help="mean: average over every token; sum: sum over time steps, average over sequences."),
        training_options(lr=3e-3, batch_size=None),
        click.option("--log-gradients", type=Positive, metavar="N",
                     help="Every N steps record ||dL/dh_t|| for each step of the batch in RUN/gradients.jsonl."),
    ),
    report=report,
    # generate streams the prime and each piece to stdout as it is sampled; a line break ends it.
    text={"evaluate": scores, "generate": lambda result, options, run: ""},
)
train_command = train_command_of(COMMAND)
