"""``rnnkit explain DIR --text FILE``: what the hidden units of a language model do, as one HTML page.

    rnnkit explain DIR --text FILE [--layer N] [--state hidden|cell] [--unit N] [--max-chars N] [--top N]
                   [--checkpoint auto|best|latest] [--engine auto] [--out PAGE.html] [--json]

Runs the character- or word-level language model of run directory DIR over the text, ranks every unit
of every layer against interpretable features of the text that vary over it (code: inside a string literal
or a comment, brackets and their depth, indentation; prose: inside quotes, position in the word, line
length, a speaker's speech; both: position in the line; see :mod:`rnnkit.viz.features`), measures how far
back the model's last prediction reaches (‖∂L/∂h_t‖ over the text) and writes a self-contained page
(default ``DIR/explain.html``; see :mod:`rnnkit.viz.html_page`). The page runs the model itself: it colours
the text by any unit, shows the top-5 next tokens on hover, ranks the units by example for a selected span,
colours text the user types and samples from the model, with no server and no network; each layer's step is
its cell's own equations, traced (:mod:`rnnkit.viz.step_program`), so any registered cell runs there (a model
the page cannot run, bidirectional say, gets the static page, said in one line).

Prints the best units per feature; ``--json`` prints one JSON object instead, with the ranking and, for the
whole text, the final hidden state of every layer and the next-token probabilities in vocabulary order, as
the page's ``rnnkitModel.run(text)`` returns them::

    {"page": "DIR/explain.html", "ranking": {"in_string": [{"layer": 1, "state": "cell", "unit": 17,
     "correlation": 0.83}, ...], ...}, "constant": ["after_speaker", ...], "hidden": [[...H], ...K], "next": [...V]}

``--engine`` runs the model's layers on any engine (one that cannot run its cell or options is refused in one
line): the states are traced on it where it keeps the gates, else on the explicit engine, and the gradient and
the final outputs run on it.

Layers count from 0 (as in PyTorch's ``weight_ih_l0``). The unit shown first is ``--layer/--state/--unit``;
what is not given comes from the best-ranked unit that fits what is.
"""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import Positive, checkpoint_option, engine_option
from rnnkit.data.catalog import resolve
from rnnkit.errors import InputError
from rnnkit.train.outputs import check_output

DEFAULT_MAX_CHARS = 5000
PAGE_NAME = "explain.html"


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--text", "text_path", metavar="FILE", required=True, help="The text the model reads (UTF-8).")
@click.option("--layer", type=click.IntRange(min=0), help="Layer shown first, from 0. Default: the best-ranked unit's.")
@click.option("--state", type=click.Choice(["hidden", "cell"]),
              help="State shown first: hidden h_t, or the cell state c_t (LSTM). Default: the best-ranked unit's.")
@click.option("--unit", type=click.IntRange(min=0), help="Unit shown first, from 0. Default: the best-ranked unit.")
@click.option("--max-chars", type=Positive, default=DEFAULT_MAX_CHARS, show_default=True,
              help="Read only the first N characters of the text.")
@click.option("--top", type=Positive, default=5, show_default=True, help="Units listed per feature.")
@checkpoint_option()
@engine_option("The model's layers run on it: the states are traced on it where it keeps the gates, else on "
               "explicit; ‖∂L/∂h_t‖ and the final outputs run on it.")
@click.option("--out", metavar="PAGE.html", help=f"The page to write. Default: DIR/{PAGE_NAME}.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout: the ranking, and the final hidden states and next-token "
                   "probabilities after the whole text.")
def command(run_dir: str, text_path: str, layer: int | None, state: str | None, unit: int | None, max_chars: int,
            top: int, which: str, engine: str, out: str | None, as_json: bool) -> None:
    """Colour a text by the hidden units of the language model in DIR, find the units that follow features of
    code and prose, and write a page that runs the model: type your own text, sample, select a span."""
    from rnnkit.models.recurrent import use_engine
    from rnnkit.tasks.lm import from_run
    from rnnkit.viz import FEATURES, collect_activations, rank_units, text_features, varying, write_page
    from rnnkit.viz.live_model import browser_model, final_outputs, unsupported_reason

    model, vocab, _ = from_run(run_dir, which)  # first, so that a wrong DIR is named as such
    use_engine(model, engine)
    text_path = resolve(text_path, "test")  # a dataset's name (--text ptb): its downloaded test file
    page = check_output(out or Path(run_dir) / PAGE_NAME, "--out", inputs=[text_path], example=PAGE_NAME)
    _check_selection(model, run_dir, layer, state, unit)
    text = _read(text_path)
    if len(text) > max_chars:
        _note(f"{text_path} has {len(text):,} characters; reading the first {max_chars:,} (--max-chars)")
        text = text[:max_chars]

    activations = collect_activations(model, vocab, text)
    _report_unknown(activations, text_path)
    features, constant = varying(text_features(text, activations.last_read), activations.fed)
    ranking = rank_units(activations.states, features, top=top, mask=activations.fed)
    selected = _selected(ranking, layer, state, unit)
    reason = unsupported_reason(model)
    if reason is not None:
        _note(f"the page cannot run this model in the browser ({reason}); it is the static page: no typing or sampling")
    write_page(page, activations, ranking, selected, title=str(run_dir),
               model=browser_model(model, vocab) if reason is None else None, static_reason=reason,
               gradient=_gradient(model, vocab, activations), constant=constant)

    if as_json:
        click.echo(to_json({"page": str(page),
                               "ranking": {name: [m.to_dict() for m in matches] for name, matches in ranking.items()},
                               "constant": constant, **final_outputs(model, vocab, text)}))
        return
    config = model.config
    click.echo(f"page: {page} ({len(text):,} characters; {config.cell.upper()}, {config.num_layers} layers of "
               f"{config.hidden_size} units; showing layer {selected['layer']} {selected['state']} unit {selected['unit']})")
    width = max(len(FEATURES[name]) for name in FEATURES)
    for name, matches in ranking.items():
        units = ", ".join(f"layer {m.layer} {m.state} {m.unit} ({m.correlation:+.2f})" for m in matches)
        click.echo(f"{FEATURES[name]:<{width}}  {units or 'no unit varies over this text'}")
    if constant:
        click.echo(f"not ranked, constant over this text: {', '.join(FEATURES[name] for name in constant)}")


def _gradient(model, vocab, activations) -> dict | None:
    """The page's gradient tab: ‖∂L/∂h_t‖ of every layer at every position the model read, L the cross-entropy
    of its prediction of the last token read; None when the text has fewer than 2 tokens."""
    import numpy as np
    import torch

    from rnnkit.diagnose.gradients import language_model_gradient_flow

    positions = np.flatnonzero(activations.fed)  # (T,)
    if len(positions) < 2:
        return None
    flow = language_model_gradient_flow(model, torch.from_numpy(activations.ids[positions]), loss="last")
    start, end = activations.spans[positions[-1]]
    target = activations.text[start:end].replace("\n", "\u23ce")
    what = "character" if activations.level == "char" else "word"
    return {
        "positions": positions[:-1].tolist(),  # the state after reading each token but the last
        "norms": [[float(f"{v:.4g}") for v in layer] for layer in flow.hidden.tolist()],
        "target": target,
        "caption": f"‖∂L/∂h_t‖ measures how much the model's prediction of the last {what} of the text (“{target}”) "
                   "still depends on its state after reading position t, so where the curve has fallen by orders of "
                   "magnitude the text that far back no longer moves that prediction.",
    }


def _check_selection(model, run_dir: str, layer: int | None, state: str | None, unit: int | None) -> None:
    """One line for a layer, state or unit that the model does not have."""
    from rnnkit.viz import recorded_states

    config = model.config
    if layer is not None and layer >= config.num_layers:
        raise InputError(f"--layer {layer} is out of range: the model in {run_dir} has {config.num_layers} "
                         f"layer(s), numbered 0 to {config.num_layers - 1}")
    if unit is not None and unit >= config.hidden_size:
        raise InputError(f"--unit {unit} is out of range: the layers of the model in {run_dir} have "
                         f"{config.hidden_size} units, numbered 0 to {config.hidden_size - 1}")
    if state is not None and state not in recorded_states(model):
        raise InputError(f"--state {state}: the model in {run_dir} is a {config.cell.upper()}, which has no {state} "
                         "state; use --state hidden")


def _read(path: str) -> str:
    """The text of ``path``; an empty or blank file is refused here, in words that fit this command."""
    from rnnkit.data.text import read_text

    file = Path(path)
    if file.is_file() and not file.read_bytes().strip():
        raise InputError(f"{path} is empty; give a text for the model to read")
    return read_text(path)


def _report_unknown(activations, text_path: str) -> None:
    """A note on stderr for tokens outside the vocabulary; InputError if the model can read none of them."""
    if not activations.fed.any():
        raise InputError(f"none of the characters of {text_path} is in the model's vocabulary; "
                         "give a text written in the alphabet the model was trained on")
    count = int(activations.unknown.sum())
    if not count:
        return
    starts = activations.spans[activations.unknown, 0]
    ends = activations.spans[activations.unknown, 1]
    examples = ", ".join(repr(s) for s in dict.fromkeys(activations.text[a:b] for a, b in zip(starts, ends)))
    examples = examples if len(examples) <= 60 else examples[:57] + "..."
    if activations.level == "char":
        _note(f"{count:,} characters of {text_path} are outside the model's vocabulary ({examples}); "
              "the page shows them greyed, the model skips them")
    else:
        _note(f"{count:,} words of {text_path} are outside the model's vocabulary ({examples}); "
              "the model reads them as <unk>, the page underlines them")


def _selected(ranking: dict, layer: int | None, state: str | None, unit: int | None) -> dict:
    """The unit shown first: the given fields, the rest from the best-ranked unit that fits them."""
    fits = [m for matches in ranking.values() for m in matches
            if (layer is None or m.layer == layer) and (state is None or m.state == state)
            and (unit is None or m.unit == unit)]
    best = max(fits, key=lambda m: abs(m.correlation), default=None)
    return {
        "layer": layer if layer is not None else (best.layer if best else 0),
        "state": state if state is not None else (best.state if best else "hidden"),
        "unit": unit if unit is not None else (best.unit if best else 0),
    }


def _note(line: str) -> None:
    click.echo(f"note: {line}", err=True)
