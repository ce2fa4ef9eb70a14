r"""The work of ``rnnkit explain``: read a text with a run's language model, rank its units against features of
the text, and write the page, in memory bounded whatever the length of the text.

:func:`explain` reads at most ``max_chars`` characters of the file (the rest is never read into memory), checks
that what it will hold fits this machine before holding it (:data:`~rnnkit.viz.streaming.BYTES_PER_CHAR` a
character, plus the window's states), and streams the text through the model
(:func:`~rnnkit.viz.streaming.stream_text`): the ranking covers every character read, the page shows the first
``page_chars`` of them (at most :data:`MAX_PAGE_CHARS`: a page runs the model in the browser over what it
shows). The page's gradient tab follows the prediction of the window's last token back through at most
:data:`GRADIENT_POSITIONS` positions, starting from the state the model had there (the norms it shows are
exactly those of the whole window's).

    result = explain("runs/main", "big.txt", max_chars=1_000_000, page_chars=5000, out="page.html",
                     progress=lambda description, total: bar.update)
    result["ranking"]["in_quotes"][0]   # {"layer": 1, "state": "cell", "unit": 17, "correlation": 0.83}

With ``json=True`` the result also holds the final hidden state of every layer (``hidden``) and the next-token
probabilities after the whole text, labelled by token, the most likely first (``next``); without ``out`` no
page is written then.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rnnkit.checks import check_fits_in_memory, format_bytes
from rnnkit.data.catalog import missing_file_hint
from rnnkit.data.reading import decode_text
from rnnkit.errors import InputError
from rnnkit.train.outputs import check_output

DEFAULT_MAX_CHARS = 5000
DEFAULT_PAGE_CHARS = 5000
MAX_PAGE_CHARS = 100_000  # the page runs the model over what it shows, in the browser: 100,000 characters take minutes
GRADIENT_POSITIONS = 5000  # the gradient tab's steps back: each keeps a float64 step of every layer for the backward
PAGE_NAME = "explain.html"
UTF8_MAX_BYTES = 4  # a character is at most 4 bytes of UTF-8 (a CRLF, 2 bytes, becomes 1 character)

Progress = Callable[[str, int], Callable[[int], None]]  # (what, total) -> advance(n); see explain()


def explain(run_dir: str, text_path: str, *, layer: int | None = None, state: str | None = None,
            unit: int | None = None, max_chars: int = DEFAULT_MAX_CHARS, page_chars: int = DEFAULT_PAGE_CHARS,
            top: int = 5, which: str = "auto", engine: str = "auto", out: str | None = None, json: bool = False,
            note: Callable[[str], None] = lambda line: None, progress: Progress | None = None) -> dict:
    """Explain the language model of ``run_dir`` on the first ``max_chars`` characters of ``text_path`` (see the
    module docstring); ``note(line)`` for what the user should know (a cut text, characters outside the
    vocabulary, a static page), ``progress(what, total)`` returns the function advanced as tokens are read.

    Returns ``{"page": path | None, "ranking": {feature: [UnitMatch.to_dict(), ...]}, "constant": [feature, ...],
    "selected": {"layer", "state", "unit"}, "characters": N, "positions": P, "shown": P_w, "model": {cell,
    num_layers, hidden_size}}`` and, with ``json``, ``"hidden"`` and ``"next"``.
    """
    from rnnkit.models.recurrent import use_engine
    from rnnkit.tasks.lm import from_run
    from rnnkit.viz import write_page
    from rnnkit.viz.live_model import browser_model, final_outputs, labelled_next, unsupported_reason
    from rnnkit.viz.streaming import stream_text

    model, vocab, _ = from_run(run_dir, which)  # first, so that a wrong DIR is named as such
    use_engine(model, engine)
    check_page_chars(page_chars)
    page = None
    if out is not None or not json:
        page = check_output(out or Path(run_dir) / PAGE_NAME, "--out", inputs=[text_path], example=PAGE_NAME)
    check_selection(model, run_dir, layer, state, unit)
    text, cut = read_prefix(text_path, max_chars, _memory_check(model, page_chars))
    if cut:
        note(f"{text_path} is longer than {max_chars:,} characters ({format_bytes(cut)}); reading the first "
             f"{max_chars:,} (--max-chars)")

    explained = stream_text(model, vocab, text, window_chars=page_chars, ranked=top,
                            progress=(lambda total: progress("reading", total)) if progress else None)
    report_unknown(explained, vocab.level, text, text_path, note)
    selected = selected_unit(explained.ranking, layer, state, unit)
    result = {"page": None, "ranking": {name: [m.to_dict() for m in matches]
                                        for name, matches in explained.ranking.items()},
              "constant": explained.constant, "selected": selected, "characters": len(text),
              "positions": explained.positions, "shown": len(explained.window.ids),
              "model": {"cell": model.config.cell, "num_layers": model.config.num_layers,
                        "hidden_size": model.config.hidden_size}}
    if page is not None:
        reason = unsupported_reason(model)
        if reason is not None:
            note(f"the page cannot run this model in the browser ({reason}); it is the static page: no typing or "
                 "sampling")
        window = explained.window
        read = None if len(window.text) == len(text) else {"characters": len(text), "positions": explained.positions}
        if read is not None:
            note(f"the page shows the first {len(window.text):,} of the {len(text):,} characters read (--page-chars); "
                 "the units are ranked over all of them")
        write_page(page, window, explained.ranking, selected, title=str(run_dir),
                   model=browser_model(model, vocab) if reason is None else None, static_reason=reason,
                   gradient=gradient_tab(model, window), constant=explained.constant, read=read)
        result["page"] = str(page)
    if json:
        fed = explained.fed
        outputs = final_outputs(model, vocab, text, progress("final state", fed) if progress else None)
        result.update(hidden=outputs["hidden"], next=labelled_next(outputs["next"], list(vocab.symbols)))
    return result


def check_page_chars(page_chars: int) -> None:
    """InputError unless ``page_chars`` is a whole number from 1 to :data:`MAX_PAGE_CHARS`."""
    if isinstance(page_chars, bool) or not isinstance(page_chars, int) or not 1 <= page_chars <= MAX_PAGE_CHARS:
        raise InputError(f"--page-chars must be a whole number from 1 to {MAX_PAGE_CHARS:,} (the page runs the model "
                         f"over what it shows, in the browser), got {page_chars!r}; the ranking covers all of "
                         "--max-chars whatever the page shows")


def _memory_check(model, page_chars: int) -> Callable[[int], None]:
    """The check of :func:`read_prefix`: InputError when explaining ``characters`` characters cannot fit in this
    machine's memory (the text's own arrays, and the states of the page's window)."""
    from rnnkit.viz.streaming import memory_bound

    config = model.config

    def check(characters: int) -> None:
        check_fits_in_memory(memory_bound(characters, page_chars, config.num_layers, config.hidden_size),
                             f"explaining {characters:,} characters", "give a smaller --max-chars")
    return check


def read_prefix(path: str, max_chars: int, check: Callable[[int], None] = lambda characters: None) -> tuple[str, int]:
    """(the first ``max_chars`` characters of the UTF-8 text file ``path``, the file's size in bytes when it holds
    more, else 0), reading at most 4 · ``max_chars`` bytes of it; ``check(characters)`` is called before the text
    is read with the most characters it can hold. InputError for a file that does not exist, is empty or blank,
    or is not UTF-8 text (as :func:`rnnkit.data.reading.read_text`)."""
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise InputError(f"--max-chars must be a whole number of at least 1, got {max_chars!r}")
    try:
        size = os.path.getsize(path)
        check(min(max_chars, size))
        with open(path, "rb") as file:
            data = file.read(UTF8_MAX_BYTES * max_chars + 1)  # one byte more: is there more than we read?
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path{missing_file_hint(path)}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give a text file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror}); check the path and its permissions") from None
    more = len(data) > UTF8_MAX_BYTES * max_chars
    data = data[: UTF8_MAX_BYTES * max_chars]
    if more:  # a character cut by the byte limit is left out (the text is cut to max_chars below anyway)
        data = data[: len(data) - _partial_tail(data)]
    if not data.strip():
        raise InputError(f"{path} is empty; give a text for the model to read")
    text = decode_text(data, path)
    if not text.strip():
        raise InputError(f"{path} is empty; give a text for the model to read")
    cut = more or len(text) > max_chars
    return text[:max_chars], (size if cut else 0)


def _partial_tail(data: bytes) -> int:
    """How many bytes at the end of ``data`` start a UTF-8 character that the data cuts off (0 to 3)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        decoder.decode(data[-UTF8_MAX_BYTES:], final=False)
    except UnicodeDecodeError:
        return 0  # not UTF-8 at all: decode_text names the byte
    return len(decoder.getstate()[0])


def check_selection(model, run_dir: str, layer: int | None, state: str | None, unit: int | None) -> None:
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


def report_unknown(explained, level: str, text: str, text_path: str, note: Callable[[str], None]) -> None:
    """A note for tokens outside the vocabulary; InputError if the model can read none of them."""
    if not explained.fed:
        raise InputError(f"none of the characters of {text_path} is in the model's vocabulary; "
                         "give a text written in the alphabet the model was trained on")
    count = int(explained.unknown.sum())
    if not count:
        return
    where = np.flatnonzero(explained.unknown)[:1000]  # enough distinct examples, whatever the text's length
    examples = ", ".join(repr(s) for s in dict.fromkeys(text[a:b] for a, b in explained.spans[where]))
    examples = examples if len(examples) <= 60 else examples[:57] + "..."
    if level == "char":
        note(f"{count:,} characters of {text_path} are outside the model's vocabulary ({examples}); "
             "the page shows them greyed, the model skips them")
    else:
        note(f"{count:,} words of {text_path} are outside the model's vocabulary ({examples}); "
             "the model reads them as <unk>, the page underlines them")


def selected_unit(ranking: dict, layer: int | None, state: str | None, unit: int | None) -> dict:
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


def gradient_tab(model, window) -> dict | None:
    """The page's gradient tab: ‖∂L/∂h_t‖ of every layer at the window's last :data:`GRADIENT_POSITIONS`
    positions the model read, L the cross-entropy of its prediction of the last token read, starting from the
    state the model had after the positions before (so each norm is the one over the whole window); None when
    the window has fewer than 2 tokens."""
    from rnnkit.diagnose.gradients import language_model_gradient_flow
    from rnnkit.viz.live_model import forward_state

    positions = np.flatnonzero(window.fed)  # (T,)
    if len(positions) < 2:
        return None
    first = max(0, len(positions) - GRADIENT_POSITIONS - 1)
    ids = torch.from_numpy(window.ids[positions])  # (T,)
    hx = forward_state(model, ids[:first])[0] if first else None
    flow = language_model_gradient_flow(model, ids[first:], loss="last", hx=hx)
    start, end = window.spans[positions[-1]]
    target = window.text[start:end].replace("\n", "\u23ce")
    what = "character" if window.level == "char" else "word"
    return {
        "positions": positions[first:-1].tolist(),  # the state after reading each token but the last
        "norms": [[float(f"{v:.4g}") for v in layer] for layer in flow.hidden.tolist()],
        "target": target,
        "caption": f"‖∂L/∂h_t‖ measures how much the model's prediction of the last {what} of the text (“{target}”) "
                   "still depends on its state after reading position t, so where the curve has fallen by orders of "
                   "magnitude the text that far back no longer moves that prediction.",
    }
