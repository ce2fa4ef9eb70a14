"""``rnnkit explain DIR --text FILE``: what the hidden units of a language model do, as one HTML page.

    rnnkit explain DIR --text FILE [--layer N] [--state hidden|cell] [--unit N] [--max-chars N] [--top N]
                   [--checkpoint auto|best|latest] [--out PAGE.html] [--json]

Runs the character- or word-level language model of run directory DIR over the text, ranks every unit
of every layer against interpretable features of the text (inside a string literal, inside brackets and
their depth, indentation, position in the line; see :mod:`rnnkit.viz.features`) and writes a
self-contained page (default ``DIR/explain.html``) that colours the text by any unit and shows the
model's top-5 next-token predictions on hover. Prints the best units per feature; ``--json`` prints the
ranking as one JSON object instead::

    {"in_string": [{"layer": 1, "state": "cell", "unit": 17, "correlation": 0.83}, ...], "in_brackets": [...], ...}

Layers count from 0 (as in PyTorch's ``weight_ih_l0``). The unit shown first is ``--layer/--state/--unit``;
what is not given comes from the best-ranked unit that fits what is.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from rnnkit.cli_options import Positive, checkpoint_option
from rnnkit.errors import InputError

DEFAULT_MAX_CHARS = 5000
PAGE_NAME = "explain.html"


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--text", "text_path", metavar="FILE", required=True, help="The text the model reads (UTF-8).")
@click.option("--layer", type=click.IntRange(min=0), help="Layer shown first, from 0. Default: the best-ranked unit's.")
@click.option("--state", type=click.Choice(["hidden", "cell"]),
              help="State shown first: hidden h_t, or the LSTM's cell c_t. Default: the best-ranked unit's.")
@click.option("--unit", type=click.IntRange(min=0), help="Unit shown first, from 0. Default: the best-ranked unit.")
@click.option("--max-chars", type=Positive, default=DEFAULT_MAX_CHARS, show_default=True,
              help="Read only the first N characters of the text (the page holds every unit at every position).")
@click.option("--top", type=Positive, default=5, show_default=True, help="Units listed per feature.")
@checkpoint_option()
@click.option("--out", metavar="PAGE.html", help=f"The page to write. Default: DIR/{PAGE_NAME}.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as one JSON object on stdout.")
def command(run_dir: str, text_path: str, layer: int | None, state: str | None, unit: int | None, max_chars: int,
            top: int, which: str, out: str | None, as_json: bool) -> None:
    """Colour a text by the hidden units of the language model in DIR, and find the units that follow
    string literals, comments, brackets, indentation and the position in the line."""
    from rnnkit.tasks.lm import load_trained
    from rnnkit.viz import FEATURES, collect_activations, rank_units, text_features, write_page

    model, vocab, _ = load_trained(run_dir, which)
    _check_selection(model.config, run_dir, layer, state, unit)
    page = _page_path(out, run_dir)
    text = _read(text_path)
    if len(text) > max_chars:
        _note(f"{text_path} has {len(text):,} characters; reading the first {max_chars:,} (--max-chars)")
        text = text[:max_chars]

    activations = collect_activations(model, vocab, text)
    _report_unknown(activations, text_path)
    features = text_features(text, activations.last_read)
    ranking = rank_units(activations.states, features, top=top, mask=activations.fed)
    selected = _selected(ranking, layer, state, unit)
    write_page(page, activations, ranking, selected, title=str(run_dir))

    if as_json:
        click.echo(json.dumps({name: [m.to_dict() for m in matches] for name, matches in ranking.items()}))
        return
    config = model.config
    click.echo(f"page: {page} ({len(text):,} characters; {config.cell.upper()}, {config.num_layers} layers of "
               f"{config.hidden_size} units; showing layer {selected['layer']} {selected['state']} unit {selected['unit']})")
    width = max(len(description) for description in FEATURES.values())
    for name, matches in ranking.items():
        units = ", ".join(f"layer {m.layer} {m.state} {m.unit} ({m.correlation:+.2f})" for m in matches)
        click.echo(f"{FEATURES[name]:<{width}}  {units or 'constant over this text'}")


def _check_selection(config, run_dir: str, layer: int | None, state: str | None, unit: int | None) -> None:
    """One line for a layer, state or unit that the model does not have."""
    if layer is not None and layer >= config.num_layers:
        raise InputError(f"--layer {layer} is out of range: the model in {run_dir} has {config.num_layers} "
                         f"layer(s), numbered 0 to {config.num_layers - 1}")
    if unit is not None and unit >= config.hidden_size:
        raise InputError(f"--unit {unit} is out of range: the layers of the model in {run_dir} have "
                         f"{config.hidden_size} units, numbered 0 to {config.hidden_size - 1}")
    if state == "cell" and config.cell != "lstm":
        raise InputError(f"--state cell: the model in {run_dir} is a {config.cell.upper()}, which has no cell "
                         "state; use --state hidden")


def _page_path(out: str | None, run_dir: str) -> Path:
    page = Path(out) if out else Path(run_dir) / PAGE_NAME
    if page.is_dir():
        raise InputError(f"--out {page} is a directory; give the path of the HTML file to write")
    if not page.parent.is_dir():
        raise InputError(f"--out {page}: directory {page.parent} does not exist; create it or choose another --out")
    return page


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
