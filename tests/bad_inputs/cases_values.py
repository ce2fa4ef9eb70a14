"""Issue 26's values and outputs: float settings that are finite but absurd (each refused naming its flag, never
as "training diverged: lower --lr" or a traceback), sampling settings at the edge of floating point, CSV files
whose quotes swallow rows, a forecasting target that never changes; and outputs that are not plain new files:
an empty path, two outputs of one command that are the same file (however spelt, or through a link), a loop
of links, a link that leads into a run's own files. (Pipes, sockets and devices, which this harness cannot
snapshot, are in tests/test_output_paths.py.)"""

import os

from . import damage as d
from .cases import _BENCH, _GRADIENTS, _MEMORY, case, train


def link(name: str, target: str):
    """A symbolic link ``name`` in the case folder pointing at ``target`` (relative to it, or absolute)."""
    def setup(ws):
        os.symlink(target, ws.path(name))
    return setup


def link_into(name: str, run: str, relative: str):
    """A symbolic link ``name`` in the case folder pointing at ``relative`` inside the case's copy of ``run``."""
    def setup(ws):
        os.symlink(ws[run] / relative, ws.path(name))
    return setup


def constant_column(name: str, column: int, value: str):
    """Every data row of the CSV input ``name`` given ``value`` in (0-based) ``column``."""
    def edit(text):
        lines = text.splitlines()
        rows = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            cells[column] = value
            rows.append(",".join(cells))
        return "\n".join(rows) + "\n"
    return d.edit_input(name, edit)


def quote_opened(name: str, line: int, closed_on: int | None = None):
    """In the CSV input ``name``, a quote opening (1-based) ``line``; closed at the end of ``closed_on``."""
    def edit(text):
        lines = text.splitlines()
        lines[line - 1] = '"' + lines[line - 1]
        if closed_on is not None:
            first, rest = lines[closed_on - 1].split(",", 1)
            lines[closed_on - 1] = first + '",' + rest
        return "\n".join(lines) + "\n"
    return d.edit_input(name, edit)


# ------------------------------------------------------------------------------------------- float settings

for task in ("lm", "classify", "tag", "forecast", "translate", "music"):
    for value in ("1e308", "-1e308", "101"):
        case(f"values-train-{task}--forget-bias={value}", train(task, f"--forget-bias {value}"), "--forget-bias",
             absent=["--lr"])
for flag, value in [("--init-range", "1e308"), ("--init-range", "1e39"), ("--weight-decay", "1e308"),
                    ("--weight-decay", "1e6")]:
    case(f"values-train-lm{flag}={value}", train("lm", f"{flag} {value}"), flag, absent=["--lr"])
case("values-train-classify--weight-decay=1e308", train("classify", "--weight-decay 1e308"), "--weight-decay")
case("values-diagnose-gradients--forget-bias-list-1e308", f"{_GRADIENTS} --forget-bias 0,1e308", "--forget-bias")
case("values-diagnose-memory--forget-bias=1e308", f"{_MEMORY} --cells lstm --forget-bias 1e308", "--forget-bias")
case("values-diagnose-gradients--recurrent-scale=1e308", f"{_GRADIENTS} --recurrent-scale 1e308",
     "--recurrent-scale")
case("values-bench--forget-bias=1e308", f"{_BENCH} --cells lstm --forget-bias 1e308", "--forget-bias")
case("values-train-translate--length-penalty=1e308", train("translate", "--length-penalty 1e308"), "--length-penalty")
case("values-translate--length-penalty=1e308", "translate {translate} --input {src} --length-penalty 1e308",
     "--length-penalty")
for value in ("1e-300", "0.5", "1e308", "5e-324"):
    case(f"values-generate-music--bpm={value}", f"generate {{music}} --steps 4 --midi {{tmp}}/x.mid --bpm {value}",
         "--bpm")

# ------------------------------------------------------------------------------------------- CSV quoting

case("values-train-classify-quote-never-closed", train("classify"), "reviews.csv:3", "quote",
     setup=quote_opened("csv", 3))
case("values-train-classify-quote-swallows-rows", train("classify"), "reviews.csv:3", "quote",
     setup=quote_opened("csv", 3, closed_on=6))
case("values-evaluate-classify-quote-never-closed", "evaluate {classify} --data {csv}", "reviews.csv:4", "quote",
     setup=quote_opened("csv", 4))
case("values-train-forecast-quote-never-closed", train("forecast"), "monthly.csv:7", "quote",
     setup=quote_opened("series", 7))
case("values-train-forecast-quote-swallows-rows", train("forecast"), "monthly.csv:7", "quote",
     setup=quote_opened("series", 7, closed_on=9))
case("values-predict-forecast-quote-never-closed", "predict {forecast} --data {series} --output {tmp}/f.csv",
     "monthly.csv:50", "quote", setup=quote_opened("series", 50))

# ------------------------------------------------------------------------------------------- forecasting target

case("values-train-forecast-constant-target", train("forecast"), "'value'", "same value",
     setup=constant_column("series", 1, "3.5"))
case("values-evaluate-forecast-constant-target", "evaluate {forecast} --data {series}", "'value'", "same value",
     setup=constant_column("series", 1, "0"))

# ------------------------------------------------------------------------------------------- outputs

for name, command, flag in [
    ("explain", "explain {lm} --text {text} --out ''", "--out"),
    ("diagnose-gradients", f"{_GRADIENTS} --out ''", "--out"),
    ("bench", f"{_BENCH} --out ''", "--out"),
    ("train-lm", train("lm", "--out ''"), "--out"),
    ("predict-forecast", "predict {forecast} --data {series} --output ''", "--output"),
    ("translate", "translate {translate} --input {src} --output ' '", "--output"),
    ("generate-music--midi", "generate {music} --steps 4 --midi ''", "--midi"),
    ("generate-music--plot", "generate {music} --steps 4 --plot ''", "--plot"),
]:
    case(f"values-{name}-output-path-empty", command, flag, "empty")

case("values-generate-music--midi-and--wav-same-path", "generate {music} --steps 4 --midi {tmp}/x --wav {tmp}/x",
     "--midi", "--wav", "same")
case("values-generate-music--midi-and--plot-same-file", "generate {music} --steps 4 --midi {tmp}/a.mid "
     "--plot {tmp}/sub/../a.mid", "--midi", "--plot", "same", setup=d.mkdir("sub"))
case("values-generate-music--wav-a-link-to--midi", "generate {music} --steps 4 --midi {tmp}/song.mid "
     "--wav {tmp}/song.wav", "--midi", "--wav", "same",
     setup=[d.write("song.mid", b"the user's MIDI"), link("song.wav", "song.mid")])
case("values-predict-forecast-output-a-link-to-its-plot", "predict {forecast} --data {series} --output {tmp}/f.csv",
     "--output", "same", setup=[d.write("f.png", b"an earlier plot"), link("f.csv", "f.png")])
case("values-explain-out-a-loop-of-links", "explain {lm} --text {text} --out {tmp}/a.html", "--out", "loop",
     setup=[link("a.html", "b.html"), link("b.html", "a.html")])
case("values-explain-out-a-link-into-the-run", "explain {lm} --text {text} --out {tmp}/page.html", "run directory",
     setup=link_into("page.html", "lm", "latest.json"))
case("values-translate-output-a-link-to-the-input", "translate {translate} --input {src} --output {tmp}/out.txt",
     "input", setup=link("out.txt", "train.de"))
