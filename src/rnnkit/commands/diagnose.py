"""``rnnkit diagnose``: gradient flow through time and the memory of the first input.

    rnnkit diagnose gradients [DIR] [--length 200] [--loss last|sum] [--clip 1] [--hidden 128] [--cells rnn,lstm,gru]
                              [--seed 0] [--forget-bias 0] [--recurrent-scale 1] [--text FILE] [--out PNG] [--json]
    rnnkit diagnose memory    [DIR] [--length 100] [--hidden 128] [--cells ...] [--seed 0] [--text FILE] [--out PNG] [--json]

Without DIR both measure fresh one-layer ``rnnkit.nn`` layers of equal hidden size, with PyTorch's default
initialisation (changed only by --forget-bias and --recurrent-scale), on a random N(0, 1) sequence of
``--hidden`` features; the seed fixes layers and data. With DIR (the --out of ``rnnkit train lm``) they
measure that language model on the first tokens of --text (default: the run's own training text).
Everything is computed in float64, so that gradients 10⁻⁶⁰ below the last step's do not underflow.
"""

import copy
import json
import math

import click
import torch
import torch.nn.functional as F

from rnnkit.cli_options import Positive, PositiveFloat, checkpoint_option, explicit_options
from rnnkit.commands.bench import CELLS, CommaList
from rnnkit.errors import InputError

FRESH_ONLY = ("hidden", "cells", "forget_bias", "recurrent_scale")
RUN_ONLY = ("text", "which")
INIT_WORDS = "PyTorch's default init"


def _common_options(length: int, out: str):
    """DIR and the flags both subcommands share."""
    decorators = [
        click.argument("run_dir", metavar="[DIR]", required=False),
        click.option("--length", type=click.IntRange(min=2), default=length, show_default=True,
                     help="Steps of the sequence (at least 2)."),
        click.option("--hidden", type=Positive, default=128, show_default=True,
                     help="Fresh layers: hidden size of every cell (and input size)."),
        click.option("--cells", type=CommaList(CELLS, "cell"), default="rnn,lstm,gru", show_default=True,
                     help="Fresh layers: the cell types, side by side."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fresh layers and of the data."),
        click.option("--forget-bias", type=float, default=0.0, show_default=True,
                     help="Fresh LSTM: added to the forget-gate bias (0: PyTorch's init; 1: Gers et al. 2000)."),
        click.option("--recurrent-scale", type=PositiveFloat, default=1.0, show_default=True,
                     help="Fresh layers: multiply W_hh by this (1: PyTorch's init; 5 makes the tanh RNN explode)."),
        click.option("--text", metavar="FILE", help="DIR: the text whose first tokens are the sequence. Default: the run's training text."),
        checkpoint_option(prefix="DIR: "),
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
@_common_options(length=200, out="gradients.png")
@click.option("--loss", type=click.Choice(["last", "sum"]), default="last", show_default=True,
              help="last: L is the loss at the last step (shows vanishing); sum: the loss summed over every step.")
@click.option("--clip", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Show what clipping the gradient's global norm to this does (0: no clipping).")
@click.pass_context
def gradients(ctx: click.Context, run_dir, length: int, loss: str, clip: float, out: str, as_json: bool, **options) -> None:
    """‖∂L/∂h_t‖ for every step t of one long sequence, for tanh RNN, LSTM and GRU side by side (log scale),
    with and without gradient clipping; prints ‖∂L/∂h_T‖ / ‖∂L/∂h_1‖ per cell."""
    from rnnkit.diagnose.gradients import fresh_gradient_flow, per_step_gradient_norms
    from rnnkit.diagnose.plots import check_png_path, plot_gradient_flow

    _check_flags(ctx, run_dir)
    check_png_path(out)
    clip = clip or None
    cells = {}
    if run_dir is None:
        for cell in options["cells"]:
            flow = fresh_gradient_flow(cell, length=length, hidden_size=options["hidden"], seed=options["seed"], loss=loss,
                                       forget_bias=options["forget_bias"], recurrent_scale=options["recurrent_scale"])
            cells[cell] = _flow_numbers(flow, clip, options["hidden"], _fresh_parameters(cell, options["hidden"]))
        source = _fresh_words(options)
        report = {"source": "fresh", "init": _init_words(options), "hidden_size": options["hidden"], "seed": options["seed"]}
    else:
        model, _, ids, where = _language_model_sequence(run_dir, options["which"], options["text"], length + 1)
        model = copy.deepcopy(model).double()
        targets = ids[1:]  # (L,) the next token after each input

        def loss_fn(t: int, h: torch.Tensor) -> torch.Tensor:  # h (1, H)
            return F.cross_entropy(model.decoder(h), targets[t : t + 1], reduction="sum")

        flow = per_step_gradient_norms(model.rnn, _embed(model, ids[:-1]).unsqueeze(0), loss_fn=loss_fn, loss=loss,
                                       parameters=model.parameters())
        config = model.config
        cells[config.cell] = _flow_numbers(flow, clip, config.hidden_size, sum(p.numel() for p in model.rnn.parameters()))
        source = f"{run_dir} ({config.cell}, {config.num_layers} layer(s) of {config.hidden_size}) on {where}"
        report = {"source": "run", "run_dir": run_dir, "text": where}
    loss_words = "the loss at the last step" if loss == "last" else "the loss summed over all steps"
    title = f"gradient flow through {length} steps: {source}; L = {loss_words}"
    plot = plot_gradient_flow(cells, out, title)
    report.update({"length": length, "loss": loss, "clip": clip, "cells": cells, "plot": str(plot)})
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{title}:")
    for cell, numbers in cells.items():
        clipped = ("no clipping" if clip is None else
                   f"clipped to {clip:g}: ×{numbers['clip_scale']:.3g}, ratio unchanged" if numbers["clip_scale"] < 1 else
                   f"below the clip {clip:g}: unchanged")
        click.echo(f"  {cell:<4} (H={numbers['hidden_size']}, {numbers['parameters']:,} parameters): "
                   f"‖∂L/∂h_T‖/‖∂L/∂h_1‖ = {_format(numbers['ratio'])}; "
                   f"‖∂L/∂θ‖ = {numbers['parameter_gradient_norm']:.3g} ({clipped})")
    click.echo(f"plot: {plot}")


@command.command("memory")
@_common_options(length=100, out="memory.png")
@click.pass_context
def memory(ctx: click.Context, run_dir, length: int, out: str, as_json: bool, **options) -> None:
    """How much the first input x_1 still moves h_t after t steps: ‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ when x_1 is
    replaced, per cell type; for gated cells, how often each gate is saturated (< 0.1 or > 0.9)."""
    from rnnkit.diagnose.gradients import fresh_layer
    from rnnkit.diagnose.plots import check_png_path, plot_memory

    _check_flags(ctx, run_dir)
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
            x = _embed(model, ids)  # (L, H_in)
            replacement = _embed(model, torch.tensor([other]))[0]  # (H_in,)
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
        click.echo(json.dumps(report))
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


def _fresh_words(options: dict) -> str:
    return f"fresh layers, H={options['hidden']}, {_init_words(options)}, seed {options['seed']}"


def _init_words(options: dict) -> str:
    words = [INIT_WORDS]
    if options["forget_bias"]:
        words.append(f"LSTM forget bias +{options['forget_bias']:g}")
    if options["recurrent_scale"] != 1:
        words.append(f"W_hh ×{options['recurrent_scale']:g}")
    return ", ".join(words)


def _fresh_parameters(cell: str, hidden: int) -> int:
    from rnnkit.diagnose.memory_tasks import GATE_BLOCKS

    return GATE_BLOCKS[cell] * (2 * hidden * hidden + 2 * hidden)  # input size = hidden size


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
    from rnnkit.tasks.lm import load_trained

    model, vocab, checkpoint = load_trained(run_dir, which)
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


def _embed(model, ids: torch.Tensor) -> torch.Tensor:
    """The recurrent layers' input for token ids (T,): the embedding, or one-hot vectors; (T, H_in) float64."""
    if model.embedding is not None:
        return model.embedding(ids).double()
    return F.one_hot(ids, model.vocab_size).double()
