"""The picture of a generated piece: its piano roll beside a real piece of the same length.

One PNG drawn by matplotlib's Agg canvas on its own Figure (no display, no pyplot state), written atomically. Time runs to the
right, one column per step; pitch runs up, one row per MIDI pitch of the model's range, with a line and a
note name at every C. Left: the generated roll, its prime in blue and the model's continuation in orange,
a dashed line where the continuation starts. Right (when given): the real piece in grey.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rnnkit.extras import require
from rnnkit.files import write_output

PRIME_COLOUR, CONTINUATION_COLOUR, REAL_COLOUR = "#3b6fb6", "#e07b24", "#555555"
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """MIDI pitch → scientific pitch notation: 60 → C4, 69 → A4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _draw(axes, roll: np.ndarray, low: int, colours: list[str], codes: np.ndarray, title: str) -> None:
    """Draw ``roll`` (T, P) with each sounding cell coloured by ``codes`` (T,): 1-based indices into ``colours``."""
    steps, pitches = roll.shape
    image = (roll.T > 0) * codes[None, :]  # (P, T): 0 silent, else the colour's code
    colour_map = require("matplotlib.colors", "viz").ListedColormap(["white", *colours])
    axes.imshow(image, origin="lower", aspect="auto", interpolation="nearest", cmap=colour_map,
                vmin=0, vmax=len(colours), extent=(-0.5, steps - 0.5, low - 0.5, low + pitches - 0.5))
    cs = [pitch for pitch in range(low, low + pitches) if pitch % 12 == 0]
    for pitch in cs:
        axes.axhline(pitch - 0.5, color="0.85", linewidth=0.6, zorder=0)
    axes.set_yticks(cs, [note_name(pitch) for pitch in cs])
    axes.set_xlabel("step")
    axes.set_title(title, fontsize=10)


def piano_roll_png(path: str | Path, roll: np.ndarray, low: int, prime_steps: int = 0,
                   reference: np.ndarray | None = None, reference_name: str | None = None,
                   title: str = "generated") -> Path:
    """Write the picture (see the module docstring) of ``roll`` (T, P), whose lowest row is MIDI pitch ``low``
    and whose first ``prime_steps`` steps are the prime, beside ``reference`` (T', P) when given."""
    panels = 2 if reference is not None else 1
    figure = require("matplotlib.figure", "viz").Figure(figsize=(6.5 * panels, 4.5), dpi=100, layout="constrained")
    require("matplotlib.backends.backend_agg", "viz").FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, sharey=True, squeeze=False)[0]
    steps = len(roll)
    codes = np.where(np.arange(steps) < prime_steps, 1, 2)  # (T,): 1 prime, 2 continuation
    shown = f"{title}: {prime_steps} prime steps (blue) + {steps - prime_steps} generated (orange)"
    _draw(axes[0], roll, low, [PRIME_COLOUR, CONTINUATION_COLOUR], codes, shown)
    if prime_steps:
        axes[0].axvline(prime_steps - 0.5, color="black", linestyle="--", linewidth=1)
    axes[0].set_ylabel("pitch")
    if reference is not None:
        _draw(axes[1], reference, low, [REAL_COLOUR], np.ones(len(reference), dtype=int),
              f"real: {reference_name or 'a piece of the data'} ({len(reference)} steps)")
        axes[1].set_xlim(axes[0].get_xlim())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    path = Path(path)
    write_output(path, buffer.getvalue())  # an existing file is replaced only by a complete new one
    return path
