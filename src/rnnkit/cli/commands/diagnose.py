"""``rnnkit diagnose``: gradient flow through time and the memory of the first input.

    rnnkit diagnose gradients [--run DIR] [--length 200] [--loss last|sum] [--clip 1] [--hidden 128]
                              [--cells rnn,lstm,gru] [--forget-bias 0,1,3] [--seed 0] [--recurrent-scale 1]
                              [--text FILE] [--out PNG] [--json]
    rnnkit diagnose memory    [DIR] [--length 100] [--hidden 128] [--cells ...] [--seed 0] [--text FILE] [--out PNG] [--json]

``gradients`` tells the seeds' story on one log-scale axis: ‖∂L/∂h_t‖ for every step t of one long sequence
through fresh one-layer ``rnnkit.nn`` layers of equal hidden size with their default (PyTorch's)
initialisation: the tanh RNN, the LSTM with forget-gate bias 0 (PyTorch's init, which fades almost as fast)
and +1/+3 (the remedy: the cell-state path then keeps the gradient), and the GRU, on a random N(0, 1)
sequence of ``--hidden`` features; the seed fixes layers and data. With ``--run DIR`` (the --out of
``rnnkit train lm``; also accepted as the first argument) the trained model's own curve joins them, on the
first tokens of --text (default: the run's own training text).

``memory`` measures fresh layers, or with DIR only the run's model. Everything is computed in float64, so
that gradients 10⁻⁶⁰ below the last step's do not underflow.
"""

import copy
import math

import click
import torch

from rnnkit.checks import TRAINING_COPIES, check_fits_in_memory
from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import Finite, FiniteFloat, Positive, PositiveFloat, Seed, checkpoint_option, explicit_options
from rnnkit.cli.outputs import check_output
from rnnkit.errors import InputError

FRESH_ONLY = ("hidden", "cells", "forget_bias", "recurrent_scale")
RUN_ONLY = ("text", "which")
INIT_WORDS = "PyTorch's default init"
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
    return list(dict.fromkeys(numbers))


def _common_options(length: int, out: str):
    """The flags both subcommands share."""
    decorators = [
        click.option("--length", type=click.IntRange(min=2), default=length, show_default=True,
                     help="Steps of the sequence (at least 2)."),
        click.option("--hidden", type=Positive, default=128, show_default=True,
                     help="Fresh layers: hidden size of every cell (and input size)."),
        click.option("--cells", callback=_cell_list, default=DEFAULT_CELLS, show_default=True, metavar="LIST",
                     help="Fresh layers: the cell types, comma-separated (any registered cell; rnn is the tanh RNN)."),
        click.option("--seed", type=Seed, default=0, show_default=True, help="Seed of the fresh layers and of the data."),
        click.option("--recurrent-scale", type=PositiveFloat, default=1.0, show_default=True,
                     help="Fresh layers: multiply W_hh by this (1: PyTorch's init; 5 makes the tanh RNN explode)."),
        click.option("--text", metavar="FILE", help="DIR / --run: the text whose first tokens are the sequence. "
                                                    "Default: the run's training text."),
        checkpoint_option(prefix="DIR / --run: "),
        click.option("--out", metavar="PNG", default=out, show_default=True, help="The plot to write."),
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
@_common_options(length=200, out="gradients.png")
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
    from rnnkit.diagnose.gradients import fresh_gradient_flow, language_model_gradient_flow
    from rnnkit.diagnose.plots import check_png_path, curve_label, gradient_caption, plot_gradient_flow
    from rnnkit.nn import get_cell

    if run_argument is not None and run_option is not None:
        raise InputError(f"the run is given twice (DIR {run_argument} and --run {run_option}); give it once, with --run")
    run_dir = run_option if run_option is not None else run_argument
    _check_run_flags(ctx, run_dir)
    check_output(out, "--out", inputs=[options["text"]], example="gradients.png")
    _check_fresh_memory(options, length)  # the fresh layers' curves are drawn with or without a run
    check_png_path(out)
    clip = clip or None
    hidden, seed = options["hidden"], options["seed"]
    curves = {}
    for cell in options["cells"]:
        biases = options["forget_bias"] if get_cell(cell).forget_gate is not None else [0.0]
        for bias in biases:
            flow = fresh_gradient_flow(cell, length=length, hidden_size=hidden, seed=seed, loss=loss,
                                       forget_bias=bias, recurrent_scale=options["recurrent_scale"])
            key = cell if bias == 0 else f"{cell}{bias:+g}"
            curves[key] = {"cell": cell, "forget_bias": bias, "label": curve_label(cell, bias),
                           **_flow_numbers(flow, clip, hidden, _fresh_parameters(cell, hidden))}
    report = {"source": "fresh", "init": _init_words(options), "hidden_size": hidden, "seed": seed}
    run = None
    if run_dir is not None:
        model, _, ids, where = _language_model_sequence(run_dir, options["which"], options["text"], length + 1)
        flow = language_model_gradient_flow(model, ids, loss=loss)
        config = model.config
        run = {"run_dir": run_dir, "text": where, "cell": config.cell, "layers": config.num_layers,
               "label": f"trained: {run_dir} ({config.cell}, {config.num_layers}×{config.hidden_size})",
               **_flow_numbers(flow, clip, config.hidden_size, sum(p.numel() for p in model.rnn.parameters()))}
        report.update({"source": "fresh and run", "run_dir": run_dir, "text": where})
    loss_words = "the loss at the last step" if loss == "last" else "the loss summed over all steps"
    title = f"gradient flow through {length} steps: {_fresh_words(options)}; L = {loss_words}"
    caption = gradient_caption(loss, trained=run is not None)
    plot = plot_gradient_flow(curves, out, title, caption, run=run)
    report.update({"length": length, "loss": loss, "clip": clip, "cells": curves, "run": run, "caption": caption,
                   "plot": str(plot)})
    if as_json:
        click.echo(to_json(report))
        return
    click.echo(f"{title}:")
    for key, numbers in [*curves.items(), *([("run", run)] if run else [])]:
        click.echo(f"  {numbers['label']} (H={numbers['hidden_size']}, {numbers['parameters']:,} parameters): "
                   f"‖∂L/∂h_T‖/‖∂L/∂h_1‖ = {_format(numbers['ratio'])}; "
                   f"‖∂L/∂θ‖ = {numbers['parameter_gradient_norm']:.3g} ({_clip_words(numbers, clip)})")
    click.echo(caption)
    click.echo(f"plot: {plot}")


def _clip_words(numbers: dict, clip: float | None) -> str:
    if clip is None:
        return "no clipping"
    if numbers["clip_scale"] < 1:
        return f"clipped to {clip:g}: ×{numbers['clip_scale']:.3g}, ratio unchanged"
    return f"below the clip {clip:g}: unchanged"


@command.command("memory")
@click.argument("run_dir", metavar="[DIR]", required=False)
@_common_options(length=100, out="memory.png")
@click.option("--forget-bias", type=Finite, default=0.0, show_default=True,
              help="Fresh cells with a forget gate: added to its bias (0: PyTorch's init; 1: Gers et al. 2000).")
@click.pass_context
def memory(ctx: click.Context, run_dir, length: int, out: str, as_json: bool, **options) -> None:
    """How much the first input x_1 still moves h_t after t steps: ‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ when x_1 is
    replaced, per cell type; for gated cells, how often each gate is saturated (< 0.1 or > 0.9)."""
    from rnnkit.diagnose.gradients import embed_tokens, fresh_layer
    from rnnkit.diagnose.plots import check_png_path, plot_memory

    _check_flags(ctx, run_dir)
    check_output(out, "--out", inputs=[options["text"]], example="memory.png")
    if run_dir is None:
        _check_fresh_memory(options, length)
    check_png_path(out)
    cells = {}
    if run_dir is None:
        hidden, seed = options["hidden"], options["seed"]
        for cell in options["cells"]:
            layer = fresh_layer(cell, hidden, hidden, seed=seed, forget_bias=options["forget_bias"],
                                recurrent_scale=options["recurrent_scale"])
            generator = torch.Generator().manual_seed(seed + 1)  # the same sequence for every cell
            x = torch.randn(length, hidden, generator=generator, dtype=torch.float64)  # (L, H_in)
            replacement = torch.randn(hidden, generator=generator, dtype=torch.float64)  # (H_in,)
            cells[cell] = _memory_numbers(layer, x, replacement, hidden)
        source = _fresh_words(options)
        report = {"source": "fresh", "init": _init_words(options), "hidden_size": hidden, "seed": options["seed"]}
    else:
        model, vocab, ids, where = _language_model_sequence(run_dir, options["which"], options["text"], length)
        model = copy.deepcopy(model).double()
        vocab_size = model.vocab_size
        if vocab_size < 2:
            raise InputError(f"{run_dir}'s model knows a single token; there is no other first input to put in its place")
        generator = torch.Generator().manual_seed(options["seed"])
        other = int(torch.randint(0, vocab_size - 1, (1,), generator=generator))
        other += other >= int(ids[0])  # any token but the first one
        with torch.no_grad():
            x = embed_tokens(model, ids)  # (L, H_in)
            replacement = embed_tokens(model, torch.tensor([other]))[0]  # (H_in,)
        config = model.config
        cells[config.cell] = _memory_numbers(model.rnn, x, replacement, config.hidden_size)
        replaced = f"{vocab.piece(int(ids[0]))!r} replaced by {vocab.piece(other)!r}"
        cells[config.cell]["replaced"] = replaced
        source = f"{run_dir} ({config.cell}, top layer of {config.num_layers}) on {where}, {replaced}"
        report = {"source": "run", "run_dir": run_dir, "text": where}
    title = f"memory of the first input over {length} steps: {source}"
    plot = plot_memory(cells, out, title)
    report.update({"length": length, "cells": cells, "plot": str(plot)})
    if as_json:
        click.echo(to_json(report))
        return
    click.echo(f"{title}:")
    steps = sorted({1, min(10, length), length})
    for cell, numbers in cells.items():
        jacobian = ", ".join(f"{numbers['jacobian'][t - 1]:.2g} (t={t})" for t in steps)
        change = ", ".join(f"{numbers['replacement'][t - 1]:.2g}" for t in steps)
        line = f"  {cell:<4} ‖∂h_t/∂x_1‖ {jacobian}; ‖h_t − h_t'‖ {change}"
        if numbers["gate_saturation"]:
            gates = ", ".join(f"{gate} {100 * f['below']:.1f}%/{100 * f['above']:.1f}%"
                              for gate, f in numbers["gate_saturation"].items())
            line += f"; gates < 0.1 / > 0.9: {gates}"
        click.echo(line)
    click.echo(f"plot: {plot}")


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


def _check_fresh_memory(options: dict, length: int) -> None:
    """One line, before anything is allocated, when the largest fresh layer (float64: its weights and their
    gradients, and a few vectors per step of the sequence) cannot fit in this machine's memory."""
    from rnnkit.diagnose.memory_tasks import parameter_count

    hidden = options["hidden"]
    parameters = max(parameter_count(cell, hidden, hidden, 0) for cell in options["cells"])
    needed = 8 * (TRAINING_COPIES * parameters + 16 * length * hidden)
    check_fits_in_memory(needed, f"a fresh layer of --hidden {hidden} ({parameters:,} parameters) over --length {length}",
                         "lower --hidden or --length")


def _fresh_words(options: dict) -> str:
    return f"fresh layers, H={options['hidden']}, {_init_words(options)}, seed {options['seed']}"


def _init_words(options: dict) -> str:
    words = [INIT_WORDS]
    biases = options["forget_bias"] if isinstance(options["forget_bias"], list) else [options["forget_bias"]]
    if any(biases):
        words.append("forget bias " + "/".join(f"{b:+g}" if b else "0" for b in biases))
    if options["recurrent_scale"] != 1:
        words.append(f"W_hh ×{options['recurrent_scale']:g}")
    return ", ".join(words)


def _fresh_parameters(cell: str, hidden: int) -> int:
    from rnnkit.diagnose.gradients import fresh_layer

    return sum(p.numel() for p in fresh_layer(cell, hidden, hidden, seed=0).parameters())  # input size = hidden size


def _finite(value: float) -> float | None:
    """JSON has no inf or nan: a ratio that is not a finite number (0 in the denominator) becomes null."""
    return value if math.isfinite(value) else None


def _format(value: float) -> str:
    return f"{value:.2e}" if math.isfinite(value) else f"{value} (‖∂L/∂h_1‖ underflowed to 0)"


def _flow_numbers(flow, clip: float | None, hidden_size: int, parameters: int) -> dict:
    layers = flow.hidden.shape[0]
    clipped = flow.clipped(clip)  # (num_layers, L)
    return {
        "hidden_size": hidden_size,
        "parameters": parameters,
        "ratio": _finite(flow.ratio()),
        "ratios": [_finite(flow.ratio(layer)) for layer in range(layers)],
        "norms": flow.hidden.tolist(),
        "cell_norms": None if flow.cell is None else flow.cell.tolist(),
        "parameter_gradient_norm": flow.parameter_norm,
        "clip_scale": flow.clip_scale(clip),
        "clipped_norms": clipped.tolist(),
        # measured on the clipped curve, to show that clipping leaves it as it was
        "clipped_ratio": _finite(float(clipped[-1, -1] / clipped[-1, 0])) if float(clipped[-1, 0]) > 0 else None,
    }


def _memory_numbers(layer, x: torch.Tensor, replacement: torch.Tensor, hidden_size: int) -> dict:
    from rnnkit.diagnose.memory import gate_saturation, input_influence

    influence = input_influence(layer, x, replacement)
    return {
        "hidden_size": hidden_size,
        "jacobian": influence.jacobian.tolist(),
        "replacement": influence.replacement.tolist(),
        "gate_saturation": gate_saturation(layer, x) or None,
    }


def _language_model_sequence(run_dir: str, which: str, text_path: str | None, tokens: int):
    """The run's model, its vocabulary, the first ``tokens`` token ids (T,) of the text, and where the text is."""
    from rnnkit.data.corpus import default_corpus
    from rnnkit.data.text import read_text
    from rnnkit.tasks.lm import from_run

    model, vocab, checkpoint = from_run(run_dir, which)
    if text_path is not None:
        text, where = read_text(text_path), text_path
    else:
        saved = checkpoint.meta["configs"]["data"].get("data")
        text, where = (read_text(saved), saved) if saved else (default_corpus()[0], "the built-in corpus")
    if vocab.level == "char":
        text = text[:tokens]
        unknown = vocab.unknown_symbols(text)
        if unknown:
            shown = ", ".join(repr(symbol) for symbol in unknown[:5])
            raise InputError(f"{where}: {len(unknown)} character(s) the model never saw ({shown}); "
                             "give a text written with the training alphabet")
    ids = vocab.encode(text)[:tokens]  # (T,)
    if len(ids) < tokens:
        raise InputError(f"{where} has only {len(ids)} {vocab.level} tokens; --length needs {tokens}: "
                         "give a longer --text or a smaller --length")
    return model, vocab, ids, where
