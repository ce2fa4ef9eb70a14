"""PNG figures of the diagnostics (matplotlib, Agg: no display needed, no global backend switched).

Each function takes the numbers as plain Python data (what ``--json`` prints), draws one figure and
writes it atomically (a temporary file, then ``os.replace``): an existing PNG is replaced whole or not at all.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rnnkit.errors import InputError
from rnnkit.train.checkpoint import write_atomic

CELL_NAMES = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}


def check_png_path(path: str | Path) -> Path:
    """The output path, after checking that a PNG can be written there (InputError otherwise)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--out {path} is a directory; give a file name such as {path / 'plot.png'}")
    if not path.parent.is_dir():
        raise InputError(f"--out {path}: directory {path.parent} does not exist; create it or choose another path")
    return path


def _figure(columns: int, width: float, title: bool = True, wspace: float = 0.28) -> Figure:
    """A row of ``columns`` panels with fixed margins: a layout engine would draw the figure twice, doubling the
    time to write it."""
    figure = Figure(figsize=(width * columns + 0.9, 4.2))
    figure.subplots_adjust(left=0.9 / (width * columns + 0.9), right=0.985, bottom=0.15, top=0.84 if title else 0.9,
                           wspace=wspace)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = check_png_path(path)
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())
    return path


def _positive(values: list[float]) -> list[float]:
    """Zeros (underflow, or no dependence at all) cannot be drawn on a log scale: leave gaps there."""
    return [v if v > 0 else float("nan") for v in values]


def plot_gradient_flow(panels: dict[str, dict], path: str | Path, title: str) -> Path:
    """One log-scale panel per cell type: ‖∂L/∂h_t‖ against t, unclipped (solid) and clipped (dashed).

    Args:
        panels: ``{cell: {"norms": [[per step] per layer], "clipped_norms": [[...] per layer], "ratio": float,
            "clip_scale": float}}``; the key names the cell (rnn, lstm, gru).
        title: the figure's title (what was measured, on what).
    """
    figure = _figure(len(panels), width=4.2, wspace=0.08)
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (cell, panel) in zip(axes, panels.items()):
        layers = len(panel["norms"])
        for index, (norms, clipped) in enumerate(zip(panel["norms"], panel["clipped_norms"])):
            steps = range(1, len(norms) + 1)
            which = f"layer {index + 1} " if layers > 1 else ""
            line, = ax.plot(steps, _positive(norms), label=f"{which}no clipping")
            if panel["clip_scale"] < 1:
                ax.plot(steps, _positive(clipped), linestyle="--", color=line.get_color(),
                        label=f"{which}clipped (×{panel['clip_scale']:.2g})")
        ratio = panel["ratio"]
        ax.set_title(f"{CELL_NAMES.get(cell, cell)}: ‖∂L/∂h_T‖/‖∂L/∂h_1‖ = " + (f"{ratio:.1e}" if ratio is not None else "n/a"),
                     fontsize=9)
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("step t")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("‖∂L/∂h_t‖")
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


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
        axes[0].plot(steps, _positive(values["jacobian"]), label=CELL_NAMES.get(cell, cell))
        axes[1].plot(steps, _positive(values["replacement"]), label=CELL_NAMES.get(cell, cell))
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
                labels.append(f"{CELL_NAMES.get(cell, cell)}\n{gate}")
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
                    label=CELL_NAMES.get(cell, cell))
        lengths = sorted(baselines[task])
        ax.plot(lengths, [baselines[task][t] for t in lengths], linestyle="--", color="gray", label="baseline")
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(f"test {task_rows[0]['metric_name']}")
        ax.set_title(f"{task} problem" if task == "adding" else f"{task} task", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _save(figure, path)
