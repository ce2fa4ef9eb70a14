"""``rnnkit explain DIR --text FILE``: what the hidden units of a language model do, as one HTML page.

    rnnkit explain DIR --text FILE [--layer N] [--state hidden|cell] [--unit N] [--max-chars N] [--page-chars N]
                   [--top N] [--checkpoint auto|best|latest] [--engine auto] [--out PAGE.html] [--json]

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

Long texts stream (:mod:`rnnkit.tasks.explain_units`): memory stays bounded (a million characters through a 2 × 256
LSTM in well under 2 GB), the units are ranked over every character read (``--max-chars``), and the page shows
the first ``--page-chars`` of them (5,000 by default, at most 100,000: the page runs the model over what it
shows). On a terminal a progress bar shows the rate and the time left (not under ``--json``, nor when stderr
is not a terminal).

Prints the best units per feature; ``--json`` prints one JSON object instead, with the ranking and, for the
whole text, the final hidden state of every layer and the next-token probabilities labelled by token, the most
likely first (the page's ``rnnkitModel.run(text)`` gives the same numbers in vocabulary order); it writes the
page only when ``--out`` asks for one (``"page"`` is then its path, else null)::

    {"page": null, "ranking": {"in_string": [{"layer": 1, "state": "cell", "unit": 17, "correlation": 0.83}, ...],
     ...}, "constant": ["after_speaker", ...], "characters": 5000, "positions": 5000, "shown": 5000,
     "hidden": [[...H], ...K], "next": {"e": 0.21, " ": 0.13, ...}}

``--engine`` runs the model's layers on any engine (one that cannot run its cell or options is refused in one
line): the states are traced on it where it keeps the gates, else on the explicit engine, and the gradient and
the final outputs run on it.

Layers count from 0 (as in PyTorch's ``weight_ih_l0``). The unit shown first is ``--layer/--state/--unit``;
what is not given comes from the best-ranked unit that fits what is.
"""

from __future__ import annotations

import sys

import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import OutputPath, Positive, checkpoint_option, engine_option
from rnnkit.data.catalog import resolve
from rnnkit.tasks.explain_units import DEFAULT_MAX_CHARS, DEFAULT_PAGE_CHARS, MAX_PAGE_CHARS, PAGE_NAME


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--text", "text_path", metavar="FILE", required=True, help="The text the model reads (UTF-8).")
@click.option("--layer", type=click.IntRange(min=0), help="Layer shown first, from 0. Default: the best-ranked unit's.")
@click.option("--state", type=click.Choice(["hidden", "cell", "tanh_cell"]),
              help="State shown first: hidden h_t, the cell state c_t or tanh(c_t) (LSTM). Default: the "
                   "best-ranked unit's.")
@click.option("--unit", type=click.IntRange(min=0), help="Unit shown first, from 0. Default: the best-ranked unit.")
@click.option("--max-chars", type=Positive, default=DEFAULT_MAX_CHARS, show_default=True,
              help="Read only the first N characters of the text; the units are ranked over all of them.")
@click.option("--page-chars", type=Positive, default=DEFAULT_PAGE_CHARS, show_default=True,
              help=f"The page shows (and runs the model over) the first N characters read, at most {MAX_PAGE_CHARS:,}.")
@click.option("--top", type=Positive, default=5, show_default=True, help="Units listed per feature.")
@checkpoint_option()
@engine_option("The model's layers run on it: the states are traced on it where it keeps the gates, else on "
               "explicit; ‖∂L/∂h_t‖ and the final outputs run on it.")
@click.option("--out", type=OutputPath(PAGE_NAME), metavar="PAGE.html",
              help=f"The page to write. Default: DIR/{PAGE_NAME} (with --json: none).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout: the ranking, and the final hidden states and next-token "
                   "probabilities (by token) after the whole text. Writes a page only with --out.")
def command(run_dir: str, text_path: str, layer: int | None, state: str | None, unit: int | None, max_chars: int,
            page_chars: int, top: int, which: str, engine: str, out: str | None, as_json: bool) -> None:
    """Colour a text by the hidden units of the language model in DIR, find the units that follow features of
    code and prose, and write a page that runs the model: type your own text, sample, select a span."""
    from rnnkit.tasks.explain_units import explain
    from rnnkit.viz import FEATURES

    progress = _progress_bars() if not as_json and sys.stderr.isatty() else None
    text_path = resolve(text_path, "test")  # a dataset's name (--text ptb): its downloaded test file
    result = explain(run_dir, text_path, layer=layer, state=state, unit=unit, max_chars=max_chars,
                     page_chars=page_chars, top=top, which=which, engine=engine, out=out, json=as_json,
                     note=_note, progress=progress)
    if as_json:
        click.echo(to_json({key: result[key] for key in ("page", "ranking", "constant", "characters", "positions",
                                                          "shown", "hidden", "next")}))
        return
    model, selected = result["model"], result["selected"]
    click.echo(f"page: {result['page']} ({result['characters']:,} characters; {model['cell'].upper()}, "
               f"{model['num_layers']} layers of {model['hidden_size']} units; showing layer {selected['layer']} "
               f"{selected['state']} unit {selected['unit']})")
    width = max(len(FEATURES[name]) for name in FEATURES)
    for name, matches in result["ranking"].items():
        units = ", ".join(f"layer {m['layer']} {m['state']} {m['unit']} ({m['correlation']:+.2f})" for m in matches)
        click.echo(f"{FEATURES[name]:<{width}}  {units or 'no unit varies over this text'}")
    if result["constant"]:
        click.echo(f"not ranked, constant over this text: {', '.join(FEATURES[name] for name in result['constant'])}")


def _progress_bars():
    """``progress(what, total)`` for rnnkit.tasks.explain_units: a tqdm bar on stderr per phase, with the rate of
    tokens a second and the time left; each bar closes (and is cleared) when its phase has read all its tokens."""
    from tqdm import tqdm

    def start(what: str, total: int):
        bar = tqdm(total=total, desc=what, unit="tok", unit_scale=True, leave=False, dynamic_ncols=True,
                   file=sys.stderr, mininterval=0.5)

        def advance(count: int) -> None:
            bar.update(count)
            if bar.n >= bar.total:
                bar.close()
        return advance
    return start


def _note(line: str) -> None:
    click.echo(f"note: {line}", err=True)
