"""``rnnkit diagnose``: gradient flow through time and the memory of the first input.

    rnnkit diagnose gradients [--run DIR] [--length 200] [--loss last|sum] [--clip 1] [--hidden 128]
                              [--cells rnn,lstm,gru] [--forget-bias 0,1,3] [--seed 0] [--recurrent-scale 1]
                              [--engine auto] [--text FILE] [--out PNG] [--json]
    rnnkit diagnose memory    [DIR] [--length 100] [--hidden 128] [--cells ...] [--seed 0] [--engine auto]
                              [--text FILE] [--out PNG] [--json]

``gradients`` tells the seeds' story on one log-scale axis: ‖∂L/∂h_t‖ for every step t of one long sequence
through fresh one-layer ``rnnkit.nn`` layers of equal hidden size with their default (PyTorch's)
initialisation: the tanh RNN, the LSTM with forget-gate bias 0 (PyTorch's init, which fades almost as fast)
and +1/+3 (the remedy: the cell-state path then keeps the gradient), and the GRU, on a random N(0, 1)
sequence of ``--hidden`` features; the seed fixes layers and data. With ``--run DIR`` (the --out of
``rnnkit train lm``; also accepted as the first argument) the trained model's own curve joins them, on the
first tokens of --text (default: the run's own training text).

``memory`` measures fresh layers, or with DIR only the run's model. Everything is computed in float64, so
that gradients 10⁻⁶⁰ below the last step's do not underflow. ``--engine`` runs the fresh layers and the run's
model on any engine (one it cannot run is refused in one line, before anything is computed); ``memory``'s
‖∂h_t/∂x_1‖ needs forward-mode autodiff, which only PyTorch's kernels and the reference equations have, so
its two measures run on the fused engine with ``--engine fused`` and on the reference one otherwise.
"""

import math

import click

from rnnkit.checks import FORGET_BIAS_LIMIT
from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import (
    FiniteFloat,
    ForgetBias,
    OutputPath,
    Positive,
    Seed,
    checkpoint_option,
    engine_option,
    explicit_options,
)
from rnnkit.errors import InputError
from rnnkit.train.outputs import check_output

# W_hh times 5 already makes the tanh RNN explode; past 100 every state saturates at the first step.
MAX_RECURRENT_SCALE = 100.0
FRESH_ONLY = ("hidden", "cells", "forget_bias", "recurrent_scale")
RUN_ONLY = ("text", "which")
DEFAULT_CELLS = "rnn,lstm,gru"


def _cell_list(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    """A comma-separated list of registered cell names (or the alias rnn), in the order given, repeats dropped."""
    from rnnkit.nn import ALIASES, cell_names

    names = [name.strip() for name in value.split(",") if name.strip()]
    known = (*cell_names(), *ALIASES)
    for name in names:
        if name not in known:
            raise click.BadParameter(f"unknown cell {name!r}; choose from {', '.join(known)}", ctx, param)
    if not names:
        raise click.BadParameter("give at least one cell, e.g. rnn,lstm,gru", ctx, param)
    return list(dict.fromkeys(names))


def _number_list(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    """A comma-separated list of numbers, in the order given, repeats dropped."""
    try:
        numbers = [float(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers, e.g. 0,1,3", ctx, param) from None
    if not numbers or not all(math.isfinite(n) for n in numbers):
        raise click.BadParameter(f"{value!r}: give finite numbers, e.g. 0,1,3", ctx, param)
    if not all(-FORGET_BIAS_LIMIT <= n <= FORGET_BIAS_LIMIT for n in numbers):
        raise click.BadParameter(f"{value!r}: give numbers from {-FORGET_BIAS_LIMIT:g} to {FORGET_BIAS_LIMIT:g} "
                                 "(the forget gate σ(b) saturates long before), e.g. 0,1,3", ctx, param)
    return list(dict.fromkeys(numbers))


def _common_options(length: int, out: str, engine_note: str):
    """The flags both subcommands share."""
    decorators = [
        click.option("--length", type=click.IntRange(min=2), default=length, show_default=True,
                     help="Steps of the sequence (at least 2)."),
        click.option("--hidden", type=Positive, default=128, show_default=True,
                     help="Fresh layers: hidden size of every cell (and input size)."),
        click.option("--cells", callback=_cell_list, default=DEFAULT_CELLS, show_default=True, metavar="LIST",
                     help="Fresh layers: the cell types, comma-separated (any registered cell; rnn is the tanh RNN)."),
        click.option("--seed", type=Seed, default=0, show_default=True, help="Seed of the fresh layers and of the data."),
        click.option("--recurrent-scale", type=FiniteFloat(0, MAX_RECURRENT_SCALE, min_open=True), default=1.0,
                     show_default=True,
                     help="Fresh layers: multiply W_hh by this (1: PyTorch's init; 5 makes the tanh RNN explode)."),
        engine_option(engine_note),
        click.option("--text", metavar="FILE", help="DIR / --run: the text whose first tokens are the sequence. "
                                                    "Default: the run's training text."),
        checkpoint_option(prefix="DIR / --run: "),
        click.option("--out", type=OutputPath(out), metavar="PNG", default=out, show_default=True,
                     help="The plot to write."),
        click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object on stdout."),
    ]

    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


@click.group()
def command() -> None:
    """Look inside recurrent networks: gradient flow through time, memory of the first input."""


@command.command("gradients")
@click.argument("run_argument", metavar="[DIR]", required=False)
@click.option("--run", "run_option", metavar="DIR",
              help="A language-model run (the --out of `rnnkit train lm`): its own ‖∂L/∂h_t‖ over a real text joins the plot.")
@_common_options(length=200, out="gradients.png",
                 engine_note="It runs the fresh layers and DIR's model, one step per call (so that every h_t is "
                             "a node of the graph).")
@click.option("--forget-bias", callback=_number_list, default="0,1,3", show_default=True, metavar="LIST",
              help="Fresh cells with a forget gate (LSTM family): one curve per value added to its bias "
                   "(0: PyTorch's init; 1: Gers et al. 2000; 3 keeps the gradient over hundreds of steps).")
@click.option("--loss", type=click.Choice(["last", "sum"]), default="last", show_default=True,
              help="last: L is the loss at the last step (shows vanishing); sum: the loss summed over every step.")
@click.option("--clip", type=FiniteFloat(min=0), default=1.0, show_default=True,
              help="Say what clipping the gradient's global norm to this does (0: no clipping).")
@click.pass_context
def gradients(ctx: click.Context, run_argument, run_option, length: int, loss: str, clip: float, out: str,
              as_json: bool, **options) -> None:
    """‖∂L/∂h_t‖ for every step t of one long sequence on one log-scale axis: tanh RNN, LSTM with forget bias
    0, +1 and +3, GRU and, with --run, a trained language model; prints ‖∂L/∂h_T‖ / ‖∂L/∂h_1‖ per curve and
    what gradient clipping does to it."""
    from rnnkit.diagnose.plots import check_png_path
    from rnnkit.diagnose.report import gradient_report

    if run_argument is not None and run_option is not None:
        raise InputError(f"the run is given twice (DIR {run_argument} and --run {run_option}); give it once, with --run")
    run_dir = run_option if run_option is not None else run_argument
    _check_run_flags(ctx, run_dir)
    check_output(out, "--out", inputs=[options["text"]], example="gradients.png")
    fresh = _fresh_layers(options, options["forget_bias"])
    fresh.check_fits(length)  # the fresh layers' curves are drawn with or without a run
    fresh.check_engine()
    check_png_path(out)
    trained = (None if run_dir is None
               else _trained_text(run_dir, options["which"], options["text"], length + 1, options["engine"]))
    clip = clip or None
    report = gradient_report(fresh, length=length, loss=loss, clip=clip, out=out, trained=trained)
    if as_json:
        click.echo(to_json(report))
        return
    click.echo(f"{report['title']}:")
    run = report["run"]
    for numbers in [*report["cells"].values(), *([run] if run else [])]:
        click.echo(f"  {numbers['label']} (H={numbers['hidden_size']}, {numbers['parameters']:,} parameters): "
                   f"‖∂L/∂h_T‖/‖∂L/∂h_1‖ = {_format(numbers['ratio'])}; "
                   f"‖∂L/∂θ‖ = {numbers['parameter_gradient_norm']:.3g} ({_clip_words(numbers, clip)})")
    click.echo(report["caption"])
    click.echo(f"plot: {report['plot']}")


def _clip_words(numbers: dict, clip: float | None) -> str:
    if clip is None:
        return "no clipping"
    if numbers["clip_scale"] < 1:
        return f"clipped to {clip:g}: ×{numbers['clip_scale']:.3g}, ratio unchanged"
    return f"below the clip {clip:g}: unchanged"


def _format(ratio: float | None) -> str:
    """The ratio, or why there is none (the report holds null for a ratio that is not a finite number)."""
    return f"{ratio:.2e}" if ratio is not None else "not finite (‖∂L/∂h_1‖ underflowed to 0)"


@command.command("memory")
@click.argument("run_dir", metavar="[DIR]", required=False)
@_common_options(length=100, out="memory.png",
                 engine_note="It runs the fresh layers or DIR's model; ‖∂h_t/∂x_1‖ needs forward-mode autodiff, "
                             "which only PyTorch's kernels and the reference equations have, so both measures of "
                             "x_1's influence run on fused with --engine fused, else on reference; the gates are "
                             "traced on the engine where it keeps them, else on explicit.")
@click.option("--forget-bias", type=ForgetBias, default=0.0, show_default=True,
              help="Fresh cells with a forget gate: added to its bias (0: PyTorch's init; 1: Gers et al. 2000).")
@click.pass_context
def memory(ctx: click.Context, run_dir, length: int, out: str, as_json: bool, **options) -> None:
    """How much the first input x_1 still moves h_t after t steps: ‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ when x_1 is
    replaced, per cell type; for gated cells, how often each gate is saturated (< 0.1 or > 0.9)."""
    from rnnkit.diagnose.plots import check_png_path
    from rnnkit.diagnose.report import memory_report

    _check_flags(ctx, run_dir)
    check_output(out, "--out", inputs=[options["text"]], example="memory.png")
    fresh = _fresh_layers(options, [options["forget_bias"]]) if run_dir is None else None
    if fresh is not None:
        fresh.check_fits(length)
        fresh.check_engine()
    check_png_path(out)
    if fresh is not None:
        report = memory_report(length=length, out=out, fresh=fresh)
    else:
        trained = _trained_text(run_dir, options["which"], options["text"], length, options["engine"])
        report = memory_report(length=length, out=out, trained=trained, seed=options["seed"])
    if as_json:
        click.echo(to_json(report))
        return
    click.echo(f"{report['title']}:")
    steps = sorted({1, min(10, length), length})
    for cell, numbers in report["cells"].items():
        jacobian = ", ".join(f"{numbers['jacobian'][t - 1]:.2g} (t={t})" for t in steps)
        change = ", ".join(f"{numbers['replacement'][t - 1]:.2g}" for t in steps)
        line = f"  {cell:<4} ‖∂h_t/∂x_1‖ {jacobian}; ‖h_t − h_t'‖ {change}"
        if numbers["gate_saturation"]:
            gates = ", ".join(f"{gate} {100 * f['below']:.1f}%/{100 * f['above']:.1f}%"
                              for gate, f in numbers["gate_saturation"].items())
            line += f"; gates < 0.1 / > 0.9: {gates}"
        click.echo(line)
    click.echo(f"plot: {report['plot']}")


# ------------------------------------------------------------------------------------------- helpers


def _check_run_flags(ctx: click.Context, run_dir: str | None) -> None:
    """The run's flags make no sense without a run."""
    given = [name for name in RUN_ONLY if name in explicit_options(ctx)]
    if run_dir is None and given:
        flag = "--checkpoint" if given[0] == "which" else "--" + given[0]
        raise InputError(f"{flag} needs --run DIR, a language-model run (the --out of `rnnkit train lm`)")


def _check_flags(ctx: click.Context, run_dir: str | None) -> None:
    """Flags that describe fresh layers make no sense with DIR, and the run's flags none without it."""
    explicit = explicit_options(ctx)
    flag = lambda name: "--" + ("checkpoint" if name == "which" else name.replace("_", "-"))  # noqa: E731
    if run_dir is not None:
        given = [name for name in FRESH_ONLY if name in explicit]
        if given:
            raise InputError(f"{flag(given[0])} describes fresh layers, but DIR {run_dir} brings its own model; drop {flag(given[0])}")
    else:
        given = [name for name in RUN_ONLY if name in explicit]
        if given:
            raise InputError(f"{flag(given[0])} needs DIR, a language-model run (the --out of `rnnkit train lm`)")


def _fresh_layers(options: dict, forget_biases: list[float]):
    from rnnkit.diagnose.report import FreshLayers

    return FreshLayers(cells=options["cells"], hidden_size=options["hidden"], seed=options["seed"],
                       forget_biases=forget_biases, recurrent_scale=options["recurrent_scale"],
                       engine=options["engine"])


def _trained_text(run_dir: str, which: str, text_path: str | None, tokens: int, engine: str):
    """The run's language model, its layers on ``engine``, and the first ``tokens`` tokens of --text (default: the
    run's training text)."""
    from rnnkit.data.catalog import resolve
    from rnnkit.data.reading import read_text
    from rnnkit.diagnose.report import TrainedText, first_tokens
    from rnnkit.models.recurrent import use_engine
    from rnnkit.tasks.lm import from_run, training_text

    trained = from_run(run_dir, which)
    use_engine(trained.model, engine)
    text_path = resolve(text_path, "test")  # a dataset's name (--text ptb): its downloaded test file
    text, where = (read_text(text_path), text_path) if text_path is not None else training_text(trained)
    return TrainedText(run_dir, trained.model, trained.vocab, first_tokens(trained.vocab, text, where, tokens), where)
