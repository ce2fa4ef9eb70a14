r"""The hidden-unit page: one self-contained HTML file (inline CSS, script and data; no server, no network).

The page shows the text with each position's background coloured by the chosen unit's activation on a
diverging scale (blue −1, white 0, red +1; h_t is used as is, since tanh keeps it in [−1, 1], and c_t is
divided by the unit's largest |c_t| over the text); pickers over layer, state (h / c) and unit recolour
it in place; hovering a position shows the unit's value and the model's top-5 next-token predictions;
a panel lists, per feature that varies over the text, the best-matching units with their correlation (a
click selects one). Selecting a span of the text with the mouse ranks the units most on inside it and off
outside it, and marks the other places where that set of units fires (LSTMVis's select and match).
Positions the model could not read (characters outside its vocabulary) are greyed.

When the page can run the model (``model.js`` computes every operation of its cell's step; see
:mod:`rnnkit.viz.live_model`), the page carries the weights and runs the model itself: it computes the
activations of the shown text when it opens, a "Type" tab colours whatever the user types or pastes and
shows the next-token distribution at the caret, a "generate" control samples from the model, and
``window.rnnkitModel`` offers ``vocab``, ``run(text)`` and ``sample(prime, length, temperature, seed)``.
Otherwise the page holds the activations computed here (the static page). A "Gradient" tab, when given, plots
‖∂L/∂h_t‖ over the text.

The data sits in ``<script type="application/json" id="rnnkit-data">``, written by :func:`page_data`::

    {"title": str, "level": "char" | "word", "cell": str, "layers": K, "hidden": H, "states": ["hidden", "cell"],
     "text": str, "spans": [[start, end], ...] (P, in UTF-16 code units), "ids": [token id or -1, ...] (P),
     "notFed": [position, ...], "unknown": [position, ...],
     "features": {name: description} (the ranked ones), "constant": [description, ...] (the others),
     "ranking": {name: [{"layer", "state", "unit", "correlation"}, ...]}, "selected": {"layer", "state", "unit"},
     "model": {...} (live_model.browser_model) | null, "static": str | null (why the page cannot run the model),
     "activations": {"LAYER/STATE": {"scale": [s_0, ..., s_{H-1}], "q": BASE64}} (static pages only),
     "top": {"symbols": [str, ...], "ids": [[j, ...] | null, ...] (P), "probs": [[p, ...] | null, ...] (P)} (static only),
     "gradient": {"positions": [p, ...], "norms": [[‖∂L/∂h_t‖ per position] per layer], "target": str,
                  "caption": str} | null,
     "read": {"characters": N, "positions": P} | null}

A long text is shown in part: ``text`` and every per-position array hold the **window**, the first characters
of the text (``rnnkit explain --page-chars``, 5,000 by default), while ``ranking`` was computed over all of the
text read, whose size ``read`` gives (null when the page shows all of it). A page that runs the model colours
its window in the browser, and a page of a million characters would neither load nor colour in reasonable
time: the window keeps the page as quick as it is for a short text, whatever was read.

A static page stores activations as signed bytes to keep it small (h and c of a 2 × 256 LSTM over 5,000
characters: 5.1 MB of bytes, 6.8 MB in base64): ``q`` is the base64 of an int8 array laid out unit by unit,
(H, P), with activation ≈ q / 127 · s_unit (s = 1 for h, or max |h| if larger; s = max |c| for c), a
resolution of 1/127 of the unit's range, finer than a colour can show. Probabilities are rounded to 3
digits; ``top.ids`` index into ``top.symbols``, the symbols that occur among the predictions. A live page
holds the weights instead (4.7 MB for that LSTM with a 64-wide embedding), and no activations.

Escaping: the text is put into the page only through the JSON (inserted with ``textContent``, never as
HTML), and the JSON has ``<``, ``>`` and ``&`` written as ``\u003c`` etc., so no text (``</script>``
included) can end the script element early; the title is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from ..files import write_output
from .activations import Activations
from .features import FEATURES
from .units import UnitMatch

QUANTUM = 127


def page_data(activations: Activations, ranking: dict[str, list[UnitMatch]], selected: dict, title: str, *,
              model: dict | None = None, static_reason: str | None = None, gradient: dict | None = None,
              constant: tuple[str, ...] | list[str] = (), read: dict | None = None) -> dict:
    """The JSON object the page reads (format in the module docstring); ``model`` is
    :func:`~rnnkit.viz.live_model.browser_model`'s object, or None for a static page; ``read``:
    ``{"characters", "positions"}`` of the whole text when the page shows only its first part (the window)."""
    a = activations
    fed = a.fed
    data = {
        "title": title,
        "level": a.level,
        "cell": a.cell,
        "layers": a.num_layers,
        "hidden": a.hidden_size,
        "states": a.state_names,
        "text": a.text,
        "spans": utf16_offsets(a.text)[a.spans].tolist(),  # (P, 2)
        "ids": a.ids.tolist(),
        "notFed": np.flatnonzero(~fed).tolist(),
        "unknown": np.flatnonzero(a.unknown).tolist(),
        "features": {name: FEATURES.get(name, name) for name in ranking},
        "constant": [FEATURES.get(name, name) for name in constant],
        "ranking": {name: [m.to_dict() for m in matches] for name, matches in ranking.items()},
        "selected": selected,
        "model": model,
        "static": None if model is not None else static_reason,
        "gradient": gradient,
        "read": read,
    }
    if model is None:
        data.update(_static_activations(a))
    return data


def _static_activations(a: Activations) -> dict:
    """The activations and top predictions computed in Python, for a page that cannot run the model."""
    fed = a.fed
    encoded = {}
    for (layer, state), values in a.states.items():
        values = np.where(fed[:, None], values, 0.0)  # (P, H) no NaN
        largest = np.abs(values).max(axis=0) if len(values) else np.zeros(values.shape[1])  # (H,)
        scale = np.maximum(largest, 1.0) if state in ("hidden", "tanh_cell") else np.where(largest > 0, largest, 1.0)  # (H,)
        q = np.rint(values / scale * QUANTUM).clip(-QUANTUM, QUANTUM).astype(np.int8)  # (P, H)
        encoded[f"{layer}/{state}"] = {
            "scale": [float(f"{s:.4g}") for s in scale],
            "q": base64.b64encode(np.ascontiguousarray(q.T).tobytes()).decode("ascii"),  # (H, P) unit-major
        }
    used = sorted(set(a.top_ids[fed].ravel().tolist()) - {-1})
    local = {token: i for i, token in enumerate(used)}
    ids = [[local[t] for t in row] if ok else None for row, ok in zip(a.top_ids.tolist(), fed.tolist())]
    probs = [[round(p, 3) for p in row] if ok else None for row, ok in zip(a.top_probs.tolist(), fed.tolist())]
    return {"activations": encoded, "top": {"symbols": [a.symbols[t] for t in used], "ids": ids, "probs": probs}}


def utf16_offsets(text: str) -> np.ndarray:
    """(len(text) + 1,) int64: the offset in UTF-16 code units of each offset in code points. JavaScript
    strings count UTF-16 units, in which a character beyond U+FFFF (an emoji, say) takes two: the page's
    slices of the text must be given in them."""
    units = np.fromiter((1 + (ord(char) > 0xFFFF) for char in text), dtype=np.int64, count=len(text))  # (T,)
    return np.concatenate([[0], np.cumsum(units)])  # (T + 1,)


def script_json(data: dict) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and the JavaScript
    line separators U+2028/U+2029 escaped (they can only occur inside JSON strings, where the escapes
    mean the same characters)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _resource(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_page(data: dict) -> str:
    """The whole HTML document for ``data``."""
    title = html.escape(data["title"])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rnnkit explain: {title}</title>
<link rel="icon" href="data:,">
<style>
{_resource("page.css")}</style>
</head>
<body>
<header>
  <h1>Inside the network: <span class="run">{title}</span></h1>
  <p id="model"></p>
  <div id="picker">
    <label>layer <select id="layer"></select></label>
    <label>state <select id="state"></select></label>
    <label>unit <button id="prev" type="button" title="previous unit">&#9664;</button><input id="unit" type="number" min="0" step="1"><button id="next" type="button" title="next unit">&#9654;</button></label>
    <span id="legend"><span class="swatch neg"></span><span id="low"></span> <span class="bar"></span> <span id="high"></span><span class="swatch pos"></span></span>
  </div>
  <nav id="tabs">
    <button type="button" data-tab="text" class="current">Text</button>
    <button type="button" data-tab="live" hidden>Type &amp; generate</button>
    <button type="button" data-tab="gradient" hidden>Gradient through time</button>
  </nav>
</header>
<main>
  <div id="panes">
    <section id="tab-text" class="pane">
      <p class="hint">Select a stretch of the text with the mouse to find the units that fire inside it.</p>
      <pre id="text"></pre>
    </section>
    <section id="tab-live" class="pane" hidden>
      <div id="generate-controls">
        <label>length <input id="gen-length" type="number" min="0" step="1" value="200"></label>
        <label>temperature <input id="gen-temperature" type="number" min="0.05" step="0.05" value="0.8"></label>
        <label>seed <input id="gen-seed" type="number" step="1" value="0"></label>
        <button id="generate" type="button">generate</button>
        <span id="live-status" class="hint"></span>
      </div>
      <div id="editor"><pre id="live-colour" aria-hidden="true"></pre><textarea id="live-input" spellcheck="false" autocomplete="off" placeholder="Type or paste text: the model reads it as you type."></textarea></div>
      <div id="live-next"><h3 id="live-next-title">next token</h3><table id="live-next-table"></table></div>
    </section>
    <section id="tab-gradient" class="pane" hidden>
      <p id="gradient-caption"></p>
      <svg id="gradient-chart" xmlns="http://www.w3.org/2000/svg" width="900" height="300"></svg>
      <p class="hint">The text coloured by ‖∂L/∂h_t‖ of the top layer (log scale: white small, purple large).</p>
      <pre id="gradient-text"></pre>
    </section>
  </div>
  <aside id="side">
    <section id="matches" hidden>
      <h2>Units for your selection</h2>
      <p class="hint" id="matches-summary"></p>
      <label class="hint">match with the top <input id="match-count" type="number" min="1" max="50" step="1" value="5"> units</label>
      <div id="matches-list"></div>
      <button id="clear-selection" type="button">clear</button>
    </section>
    <section id="ranking"><h2>Units that follow a feature</h2><p class="hint">Pearson correlation over the text; click a unit to show it.</p></section>
  </aside>
</main>
<div id="tip" hidden></div>
<script type="application/json" id="rnnkit-data">{script_json(data)}</script>
<script>
{_resource("model.js")}</script>
<script>
{_resource("page.js")}</script>
</body>
</html>
"""


def write_page(path: str | Path, activations: Activations, ranking: dict[str, list[UnitMatch]],
               selected: dict | None = None, title: str = "", *, model: dict | None = None,
               static_reason: str | None = None, gradient: dict | None = None,
               constant: tuple[str, ...] | list[str] = (), read: dict | None = None) -> Path:
    """Write the page for ``activations`` and ``ranking`` (from :func:`rnnkit.viz.rank_units`) to ``path``
    atomically (an existing file is replaced only by a complete page) and return the path.

    Args:
        selected: the unit shown first, ``{"layer": int, "state": "hidden" | "cell", "unit": int}``;
            default: layer 0, hidden, unit 0.
        title: what the page is about (e.g. the run directory), shown in its heading.
        model: :func:`~rnnkit.viz.live_model.browser_model`'s object: the page runs the model (typing,
            sampling); None writes the static page, which holds the activations.
        static_reason: for a static page, why it cannot run the model (one line on the page).
        gradient: ``{"positions", "norms", "target", "caption"}`` for the gradient tab (module docstring), or None.
        constant: the names of the features left out of ``ranking`` because they are constant over the text.
        read: ``{"characters": N, "positions": P}`` of the whole text read, when ``activations`` hold only its
            first part (the window :func:`~rnnkit.viz.streaming.stream_text` keeps) and ``ranking`` covers all.
    """
    path = Path(path)
    selected = selected or {"layer": 0, "state": "hidden", "unit": 0}
    data = page_data(activations, ranking, selected, title, model=model, static_reason=static_reason,
                     gradient=gradient, constant=constant, read=read)
    write_output(path, render_page(data).encode("utf-8"))
    return path
