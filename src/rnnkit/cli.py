"""The ``rnnkit`` command.

    rnnkit train lm [--data FILE] [--level char|word] [--cell lstm|gru|rnn] ... [--out DIR] [--resume DIR]
    rnnkit generate DIR [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P] [--seed N]
    rnnkit evaluate DIR --data FILE [--json]
    torchrun --nproc-per-node=2 -m rnnkit train lm ...        (data-parallel training)

Every flag of ``train`` can also come from a TOML file given with ``--config``: its keys are the flag
names without ``--`` (``seq-len = 128``); flags on the command line win over the file. A user mistake
prints one line ``error: ...`` on stderr and exits with status 2, without a traceback.
"""

import importlib
import json
import sys
from functools import partial
from dataclasses import asdict, fields

import click

from rnnkit import __version__
from rnnkit.cli_options import Positive, PositiveFloat, absolute, checkpoint_option, config_option, explicit_options, new_run_path
from rnnkit.cli_options import EXIT_INTERRUPTED, open_for_resume, resumed, run_training, train_config_from, training_options
from rnnkit.commands import TASK_COMMANDS, TOP_LEVEL_COMMANDS, task_module
from rnnkit.errors import InputError
from rnnkit.train import RunDirectory, TrainConfig

EXIT_USER_ERROR = 2
DEFAULT_CHAR_EMBEDDING = 64

# Options whose value a resumed run may change: where the data lives, how long to go on, and how the
# same arithmetic is run. Any other option given with --resume must equal the run's saved value.
CHANGEABLE_ON_RESUME = {"data", "valid_data", "epochs", "time_budget", "max_steps", "patience", "save_every", "engine",
                        "log_gradients"}

# Option name -> LanguageModel field, for the model options saved in a checkpoint's configs.
MODEL_FIELDS = {"cell": "cell", "layers": "num_layers", "hidden": "hidden_size", "embedding": "embedding_dim",
                "dropout": "dropout", "tie_weights": "tie_weights", "engine": "engine", "init_range": "init_range"}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rnnkit`` console script and of ``python -m rnnkit``."""
    try:
        cli.main(args=argv, prog_name="rnnkit", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.ClickException as error:
        _fail(" ".join(error.format_message().split()), error.exit_code)
    except InputError as error:
        _fail(str(error), EXIT_USER_ERROR)
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `rnnkit generate run | head`): not an error.
        sys.stderr.close()
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# ------------------------------------------------------------------------------------------- commands


class LazyGroup(click.Group):
    """A command group whose task commands are imported on first use, so that ``rnnkit train lm`` never
    imports (or depends on) the translation or forecasting code. ``lazy`` maps a command name to
    (module, attribute)."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy={name: (f"rnnkit.commands.{module}", "command") for name, module in TOP_LEVEL_COMMANDS.items()},
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rnnkit")
def cli() -> None:
    """rnnkit: recurrent neural networks on PyTorch: train, generate, evaluate."""


@cli.group(cls=LazyGroup, lazy={name: (f"rnnkit.commands.{name}", "train_command") for name in TASK_COMMANDS})
def train() -> None:
    """Train a model for a task; checkpoints and metrics go to a run directory (--out)."""


@train.command("lm")
@config_option
@click.option("--data", metavar="FILE", help="Training text file (UTF-8). Default: the embedded corpus of Python standard library source.")
@click.option("--valid-data", metavar="FILE", help="Validation text file. Default: the last --valid-fraction of --data.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of --data held out for validation when there is no --valid-data.")
@click.option("--level", type=click.Choice(["char", "word"]), default="char", show_default=True,
              help="Tokens: characters, or whitespace-separated words with <eos> per line.")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default="lstm", show_default=True, help="Recurrent cell.")
@click.option("--layers", type=Positive, default=2, show_default=True, help="Stacked recurrent layers.")
@click.option("--hidden", type=Positive, default=256, show_default=True, help="Hidden units per layer.")
@click.option("--embedding", type=click.IntRange(min=0),
              help="Embedding size; 0 feeds one-hot vectors (char-rnn). Default: 64 for --level char, --hidden for word.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Dropout probability between layers, in [0, 1).")
@click.option("--tie-weights/--no-tie-weights", default=False, show_default=True,
              help="Share the embedding and output weights (needs --embedding equal to --hidden).")
@click.option("--engine", type=click.Choice(["fused", "explicit"]), default="fused", show_default=True,
              help="fused: PyTorch's kernels; explicit: rnnkit's loop with hand-written BPTT.")
@click.option("--init-range", type=PositiveFloat, help="Initialise every weight uniformly in ±X (Zaremba: 0.1). Default: PyTorch's.")
@click.option("--seq-len", type=Positive, default=64, show_default=True, help="Tokens per window: the truncated BPTT length.")
@click.option("--batch-size", type=Positive, default=16, show_default=True, help="Parallel streams per step (over all processes).")
@click.option("--loss-over-time", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="mean: average over every token; sum: sum over time steps, average over sequences.")
@training_options(lr=3e-3, batch_size=None)
@click.option("--log-gradients", type=Positive, metavar="N",
              help="Every N steps record ||dL/dh_t|| for each step of the batch in RUN/gradients.jsonl.")
@click.option("--resume", metavar="DIR", help="Continue the run in this directory exactly where its checkpoint left off.")
@click.pass_context
def train_lm(ctx: click.Context, **options) -> None:
    """Train a character- or word-level language model (truncated BPTT over parallel streams).

    With no --data it learns Python source code from the standard library that ships with Python.
    """
    from rnnkit.tasks.lm import train_language_model

    explicit = explicit_options(ctx)
    data_config, model_options, train_config = _lm_configs(options, explicit)
    checkpoint = None
    if options["resume"]:
        run_path, checkpoint = open_for_resume(options, "lm", "train lm")
        data_config, model_options, train_config = _resumed_lm_configs(
            checkpoint.meta["configs"], data_config, model_options, train_config, explicit
        )
    else:
        run_path = new_run_path(options, "lm")

    report = run_training(partial(train_language_model, data_config, model_options, train_config, checkpoint=checkpoint),
                          options, run_path, new_run=checkpoint is None)
    if report is None:  # not rank 0
        return
    _print_report(report, options["as_json"], data_config.level)
    if report["stop_reason"] == "interrupted":
        click.echo(f"interrupted; continue with: rnnkit train lm --resume {run_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


@cli.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--prime", default="", help="Text the sample starts from (default: the model picks the first token).")
@click.option("--length", type=Positive, default=500, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=PositiveFloat, default=1.0, show_default=True,
              help="Sharpen (<1) or flatten (>1) the next-token distribution; must be > 0.")
@click.option("--top-k", type=Positive, help="Sample only among the K most likely tokens.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Sample only from the smallest set of tokens holding probability P.")
@click.option("--greedy", is_flag=True, help="Always take the most likely token (no sampling).")
@click.option("--seed", type=int, help="Seed for a reproducible sample.")
@checkpoint_option()
def generate(run_dir: str, prime: str, length: int, temperature: float, top_k: int | None, top_p: float | None,
             greedy: bool, seed: int | None, which: str) -> None:
    """Write text from a trained language model in DIR to stdout, piece by piece as it is sampled."""
    from rnnkit.generate import sample
    from rnnkit.tasks.lm import load_trained

    model, vocab, _ = load_trained(run_dir, which)
    pieces = sample(model, vocab, prime=prime, length=length, temperature=temperature,
                    top_k=top_k, top_p=top_p, greedy=greedy, seed=seed)
    # The sampler (having checked its arguments) feeds the prime through without yielding it; show it.
    sys.stdout.write(prime)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@cli.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--data", metavar="FILE",
              help="Held-out data in the run's own format: text (lm), CSV (classify, forecast), CoNLL(-U) (tag).")
@click.option("--source", metavar="FILE", help="Translation: source sentences, one per line.")
@click.option("--target", metavar="FILE", help="Translation: reference translations, line by line with --source.")
@click.option("--batch-size", type=Positive, help="Language models: parallel streams. Default: the run's.")
@click.option("--seq-len", type=Positive, help="Language models: tokens per window. Default: the run's.")
@checkpoint_option()
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object on stdout.")
def evaluate(run_dir: str, which: str, **options) -> None:
    """Score the trained model in DIR on held-out data with its task's metrics.

    Language models: loss (nats/token), perplexity, bits per character. Classifiers: accuracy and macro F1.
    Taggers: accuracy, and entity span F1 for BIO tags. Forecasters: MAE, RMSE, MASE beside the naive baselines.
    Translators: BLEU and chrF (sacrebleu). Captioners: exact match and token accuracy (default: the held-out digits).
    """
    checkpoint = RunDirectory.open(run_dir).load(which)
    task = checkpoint.meta.get("task")
    if task == "lm":
        _evaluate_language_model(run_dir, which, options)
    else:
        task_module(task, run_dir).evaluate(run_dir, checkpoint, options)


@cli.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--input", "input_path", metavar="FILE",
              help="Classify, tag: texts to label, one per line (tag: tokens separated by spaces). Default: stdin.")
@click.option("--data", metavar="CSV", help="Forecast: the series (same columns as training) to forecast from.")
@click.option("--output", metavar="PATH", help="Forecast: the forecast CSV to write (a PNG plot is written beside it).")
@checkpoint_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input line instead of text.")
def predict(run_dir: str, which: str, **options) -> None:
    """Apply the trained model in DIR: labels with probabilities, tags per token, or a forecast with its plot."""
    checkpoint = RunDirectory.open(run_dir).load(which)
    task = checkpoint.meta.get("task")
    if task == "lm":
        raise InputError(f"{run_dir} holds a language model; sample it with `rnnkit generate {run_dir}`")
    task_module(task, run_dir).predict(run_dir, checkpoint, options)


def _evaluate_language_model(run_dir: str, which: str, options: dict) -> None:
    from rnnkit.data.text import read_text
    from rnnkit.tasks.lm import evaluate_text, load_trained

    if options["data"] is None:
        raise InputError(f"{run_dir} holds a language model: give the text to score with --data FILE")
    model, vocab, checkpoint = load_trained(run_dir, which)
    saved = checkpoint.meta["configs"]["data"]
    data = options["data"]
    metrics = evaluate_text(model, vocab, read_text(data), options["batch_size"] or saved["batch_size"],
                            options["seq_len"] or saved["seq_len"])
    if options["as_json"]:
        click.echo(json.dumps(metrics))
        return
    line = f"loss {metrics['loss']:.4f} nats/token  perplexity {metrics['perplexity']:.2f}"
    if "bits_per_char" in metrics:
        line += f"  bits/char {metrics['bits_per_char']:.4f}"
    click.echo(f"{line}  ({metrics['tokens']:,} tokens of {data})")


# ------------------------------------------------------------------------------------------- helpers


def _lm_configs(options: dict, explicit: set[str]):
    """The data config, model options and training config that the flags describe."""
    from rnnkit.tasks.lm import LMDataConfig

    data_values = {f.name: options[f.name] for f in fields(LMDataConfig)}
    data_values["data"], data_values["valid_data"] = absolute(data_values["data"]), absolute(data_values["valid_data"])
    data_config = LMDataConfig(**data_values)
    model_options = {field: options[option] for option, field in MODEL_FIELDS.items()}
    if model_options["embedding_dim"] is None:
        # Characters: a small learned embedding learns much faster than one-hot input (1.45 against 1.81
        # nats/char after 60 s on the default corpus). Words: one-hot over thousands of words is out of the question.
        model_options["embedding_dim"] = DEFAULT_CHAR_EMBEDDING if data_config.level == "char" else options["hidden"]
    return data_config, model_options, train_config_from(options, explicit)



def _resumed_lm_configs(saved: dict, data_config, model_options: dict, train_config: TrainConfig, explicit: set[str]):
    """The run's saved configs, with the changes a resumed run allows (InputError for any other)."""
    from rnnkit.tasks.lm import LMDataConfig

    option_of = {field: option for option, field in MODEL_FIELDS.items()}
    # The model's vocab_size comes from the vocabulary again.
    saved_model = {field: value for field, value in saved["model"].items() if field != "vocab_size"}
    return (
        LMDataConfig(**resumed(saved["data"], asdict(data_config), {}, explicit, CHANGEABLE_ON_RESUME, "data and batching")),
        resumed(saved_model, model_options, option_of, explicit, CHANGEABLE_ON_RESUME, "model shape"),
        TrainConfig(**resumed(saved["train"], asdict(train_config), {}, explicit, CHANGEABLE_ON_RESUME, "training settings")),
    )








def _print_report(report: dict, as_json: bool, level: str) -> None:
    if as_json:
        click.echo(json.dumps(report))
        return
    unit = "nats/char" if level == "char" else "nats/word"
    lines = [f"stopped by {report['stop_reason']} after {report['steps']:,} steps "
             f"({report['elapsed_seconds']:.0f}s, {report['tokens_per_second']:,.0f} tokens/s)"]
    if "valid_loss" in report:
        line = f"validation: loss {report['valid_loss']:.4f} {unit}, perplexity {report['valid_perplexity']:.2f}"
        if "valid_bits_per_char" in report:
            line += f", {report['valid_bits_per_char']:.4f} bits/char"
        lines.append(line)
    if "run_dir" in report:
        lines.append(f"run saved in {report['run_dir']}; sample it with: rnnkit generate {report['run_dir']}")
    click.echo("\n".join(lines))
