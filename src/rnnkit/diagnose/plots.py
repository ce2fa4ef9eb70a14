"""PNG figures of the diagnostics (matplotlib, Agg: no display needed, no global backend switched).

Each function takes the numbers as plain Python data (what ``--json`` prints), draws one figure and
writes it atomically (a temporary file, then ``os.replace``): an existing PNG is replaced whole or not at all.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np

from rnnkit.errors import InputError
from rnnkit.extras import require
from rnnkit.files import write_output
from rnnkit.nn import cell_names, get_cell

COLOURS = ("tab:red", "tab:orange", "tab:blue", "tab:green", "tab:purple", "tab:olive", "tab:brown", "tab:pink",
           "tab:cyan", "tab:gray")


def cell_title(cell: str) -> str:
    """How a plot names a cell: its own ``title`` (the registry name for a cell without one, or an unknown name)."""
    try:
        return get_cell(cell).title or cell
    except ValueError:
        return cell


def cell_colour(cell: str) -> str:
    """One colour per registered cell, in registration order (aliases share their cell's)."""
    try:
        return COLOURS[cell_names().index(get_cell(cell).name) % len(COLOURS)]
    except ValueError:
        return COLOURS[-1]

BIAS_STYLES = ("-", "--", "-.", ":")  # one per forget bias of a cell, in the order given


def check_png_path(path: str | Path) -> Path:
    """The output path, after checking that a PNG can be written there (InputError otherwise; MissingExtra without
    matplotlib, before the work whose plot it is)."""
    require("matplotlib.figure", "viz")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--out {path} is a directory; give a file name such as {path / 'plot.png'}")
    if not path.parent.is_dir():
        raise InputError(f"--out {path}: directory {path.parent} does not exist; create it or choose another path")
    return path


def _new_figure(**options):
    """A matplotlib Figure (matplotlib is the ``viz`` extra: one line naming it when it is missing)."""
    return require("matplotlib.figure", "viz").Figure(**options)


def _figure(columns: int, width: float, title: bool = True, wspace: float = 0.28):
    """A row of ``columns`` panels with fixed margins: a layout engine would draw the figure twice, doubling the
    time to write it."""
    figure = _new_figure(figsize=(width * columns + 0.9, 4.2))
    figure.subplots_adjust(left=0.9 / (width * columns + 0.9), right=0.985, bottom=0.15, top=0.84 if title else 0.9,
                           wspace=wspace)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = check_png_path(path)
    require("matplotlib.backends.backend_agg", "viz").FigureCanvasAgg(figure)
    hide_empty_panels(figure)
    keep_legends_inside(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_output(path, buffer.getvalue())
    return path


def _has_data(ax) -> bool:
    """Whether a panel shows anything: a line with a point it can draw (finite; positive on a log axis), a bar of
    some height, or an image."""
    log_y = ax.get_yscale() == "log"
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if np.any(np.isfinite(y) & ((y > 0) if log_y else True)):
            return True
    return bool(ax.images) or any(getattr(patch, "get_height", lambda: 0)() for patch in ax.patches)


def hide_empty_panels(figure) -> None:
    """Hide the panels with nothing to draw (e.g. every value masked on a log axis), instead of showing an empty
    frame with a legend of lines that are not there; a figure with no panel left keeps them (and says nothing)."""
    panels = [ax for ax in figure.axes if ax.get_visible()]
    empty = [ax for ax in panels if not _has_data(ax)]
    if len(empty) < len(panels):
        for ax in empty:
            ax.set_visible(False)


def keep_legends_inside(figure, tries: int = 6) -> None:
    """Move every legend inside the figure's edges: a legend placed beside its axes (``bbox_to_anchor``) that
    runs past the right edge narrows the axes by the overflow; one that runs past the top or bottom gets more
    columns and a smaller font. Measured on the Agg renderer the figure is saved with."""
    for _ in range(tries):
        renderer = figure.canvas.get_renderer()
        box = figure.bbox
        over = []
        for legend in [*(ax.get_legend() for ax in figure.axes if ax.get_visible()), *figure.legends]:
            if legend is None:
                continue
            extent = legend.get_window_extent(renderer)
            right, tall = extent.x1 - box.x1, extent.height > box.height - 4 or extent.y0 < box.y0
            if right > 0.5 or extent.x0 < box.x0 or tall:
                over.append((legend, right, tall))
        if not over:
            return
        for legend, right, tall in over:
            if tall and legend.axes is not None:
                _relay(legend, legend._ncols + 1, max(5.0, legend.get_texts()[0].get_fontsize() - 0.5))
            if right > 0.5:
                shift = (right + 6) / box.width  # the overflow and a small gap, as a fraction of the width
                params = figure.subplotpars
                figure.subplots_adjust(right=max(params.left + 0.2, params.right - shift))


def _relay(legend, columns: int, fontsize: float) -> None:
    """Draw ``legend`` again in its place with ``columns`` columns and ``fontsize`` (a legend's columns are set
    when it is made)."""
    ax, title = legend.axes, legend.get_title().get_text()
    anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())  # in axes fractions: moves with ax
    ax.legend(legend.legend_handles, [text.get_text() for text in legend.get_texts()], loc=legend._loc,
              bbox_to_anchor=anchor, bbox_transform=ax.transAxes, ncols=columns, fontsize=fontsize,
              title=title or None, title_fontsize=fontsize)


def _positive(values: list[float]) -> list[float]:
    """Zeros (underflow, or no dependence at all) cannot be drawn on a log scale: leave gaps there."""
    return [v if v > 0 else float("nan") for v in values]


def curve_label(cell: str, forget_bias: float = 0.0) -> str:
    """``"LSTM, forget bias +3"``: a curve of the gradient plot in words."""
    name = cell_title(cell)
    return f"{name}, forget bias {forget_bias:+g}" if forget_bias else name


def gradient_caption(loss: str, trained: bool = False) -> str:
    """What the gradient curves mean, in one sentence."""
    what = "the loss at the last step" if loss == "last" else "the loss summed over all steps"
    trained_words = " (black: the trained model on real text)" if trained else ""
    return (f"Each curve{trained_words} is ‖∂L/∂h_t‖, how much {what} still depends on the state at step t: where "
            "a curve falls by orders of magnitude towards t = 1, the gradient vanishes on its way back and the "
            "network cannot learn from inputs that far back.")


def plot_gradient_flow(curves: dict[str, dict], path: str | Path, title: str, caption: str = "",
                       run: dict | None = None) -> Path:
    """All curves on one log-scale axis: ‖∂L/∂h_t‖ against t, one line per fresh cell (and forget bias), the
    trained model's layers in black; the caption under the axis.

    Args:
        curves: ``{key: {"cell": str, "forget_bias": float, "label": str, "norms": [[per step] per layer]}}``.
        run: the trained model's ``{"label": str, "norms": [[per step] per layer]}``, or None.
        title: the figure's title (what was measured, on what). caption: one sentence under the axis.
    """
    figure = _new_figure(figsize=(10, 5.4))
    figure.subplots_adjust(left=0.08, right=0.7, bottom=0.2, top=0.88)
    ax = figure.subplots()
    styles: dict[str, int] = {}
    for key, curve in curves.items():
        cell = curve.get("cell", key)
        style = BIAS_STYLES[styles.setdefault(cell, 0) % len(BIAS_STYLES)]
        styles[cell] += 1
        norms = curve["norms"][-1]  # fresh layers have one layer
        ratio = curve.get("ratio")
        ax.plot(range(1, len(norms) + 1), _positive(norms), linestyle=style, color=cell_colour(cell),
                label=curve.get("label", key) + _ratio_words(ratio))
    if run is not None:
        layers = len(run["norms"])
        for index, norms in enumerate(run["norms"]):
            top = index == layers - 1
            which = "top layer" if top else f"layer {index}"
            label = (f"{run['label']}, {which}" if layers > 1 else run["label"]) + _ratio_words(run["ratios"][index])
            ax.plot(range(1, len(norms) + 1), _positive(norms), color="black" if top else "0.55",
                    linewidth=2.0 if top else 1.0, label=label)
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("step t")
    ax.set_ylabel("‖∂L/∂h_t‖")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="in brackets: ‖∂L/∂h_T‖ / ‖∂L/∂h_1‖", title_fontsize=7)
    figure.suptitle(textwrap.fill(title, 130), fontsize=9)
    if caption:
        figure.text(0.08, 0.02, textwrap.fill(caption, 150), fontsize=7.5, va="bottom", ha="left")
    return _save(figure, path)


def _ratio_words(ratio: float | None) -> str:
    return f"  ({ratio:.1e})" if ratio is not None else "  (first step 0)"


def plot_memory(cells: dict[str, dict], path: str | Path, title: str) -> Path:
    """Two log-scale panels, one line per cell: ‖∂h_t/∂x_1‖ and ‖h_t − h_t'‖ against t; a third panel with
    gate saturation bars when some cell has gates.

    Args:
        cells: ``{cell: {"jacobian": [per step], "replacement": [per step], "gate_saturation": {gate:
            {"below": f, "above": f}}}}``.
    """
    gated = {cell: values["gate_saturation"] for cell, values in cells.items() if values.get("gate_saturation")}
    columns = 3 if gated else 2
    figure = _figure(columns, width=4.4)
    axes = figure.subplots(1, columns, squeeze=False)[0]
    for cell, values in cells.items():
        steps = range(1, len(values["jacobian"]) + 1)
        axes[0].plot(steps, _positive(values["jacobian"]), label=cell_title(cell))
        axes[1].plot(steps, _positive(values["replacement"]), label=cell_title(cell))
    for ax, label in zip(axes[:2], ("‖∂h_t/∂x_1‖", "‖h_t − h_t'‖, x_1 replaced")):
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("step t")
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    if gated:
        ax = axes[2]
        labels, below, above = [], [], []
        for cell, gates in gated.items():
            for gate, fractions in gates.items():
                labels.append(f"{cell_title(cell)}\n{gate}")
                below.append(fractions["below"])
                above.append(fractions["above"])
        positions = range(len(labels))
        ax.bar([p - 0.2 for p in positions], below, width=0.4, label="< 0.1")
        ax.bar([p + 0.2 for p in positions], above, width=0.4, label="> 0.9")
        ax.set_xticks(list(positions), labels, fontsize=7)
        ax.set_ylim(0, max(0.05, 1.15 * max(below + above)))  # small fractions stay visible
        ax.set_title("gate saturation: fraction of (step, unit)", fontsize=9)
        ax.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def plot_memory_tasks(rows: list[dict], baselines: dict[str, dict[int, float]], path: str | Path) -> Path:
    """One panel per task: the final test metric against the sequence length T, one line per cell, and the
    baseline (predicting without memory) dashed.

    Args:
        rows: dicts with ``task``, ``length``, ``cell``, ``metric``, ``metric_name``.
        baselines: ``{task: {T: baseline}}``.
    """
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    figure = _figure(len(tasks), width=4.6, title=False)
    axes = figure.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        task_rows = [row for row in rows if row["task"] == task]
        for cell in dict.fromkeys(row["cell"] for row in task_rows):
            points = sorted((row["length"], row["metric"]) for row in task_rows if row["cell"] == cell)
            ax.plot([p[0] for p in points], _positive([p[1] for p in points]), marker="o",
                    label=cell_title(cell))
        lengths = sorted(baselines[task])
        ax.plot(lengths, [baselines[task][t] for t in lengths], linestyle="--", color="gray", label="baseline")
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(f"test {task_rows[0]['metric_name']}")
        ax.set_title(f"{task} problem" if task == "adding" else f"{task} task", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _save(figure, path)
