"""``rnnkit data``: the datasets of the tutorials and benchmarks, by name.

    rnnkit data list [--json]                 name, task, size, licence, source, and whether it is downloaded
    rnnkit data get NAME [NAME ...] [--json]  download (resuming a .part), verify SHA-256, into $RNNKIT_DATA

The files go to ``$RNNKIT_DATA/NAME/`` (default ``~/.cache/rnnkit``); ``$RNNKIT_DATA_MIRROR`` replaces every
source by ``MIRROR/NAME/FILE``. Once there, a dataset's name stands for its file wherever a data path is given
(``rnnkit train lm --data ptb --valid-data ptb``). The work is in :mod:`rnnkit.data.catalog` and
:mod:`rnnkit.data.download`; this module parses and prints.
"""

import signal
import sys

import click

from rnnkit.cli.interrupts import Interrupted, exit_status, message
from rnnkit.cli.json_output import to_json
from rnnkit.data.catalog import DATASETS, data_home, dataset
from rnnkit.data.download import get as download, mirror


@click.group()
def command() -> None:
    """The datasets of the tutorials and benchmarks: list them, download them by name."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the data home and every dataset.")
def list_command(as_json: bool) -> None:
    """Every dataset: name, task, size, licence, source, and whether it is downloaded (present, partial, absent)."""
    rows = [{"name": d.name, "title": d.title, "task": d.task, "bytes": d.size, "licence": d.licence,
             "source": d.source, "state": d.state(), "redistributable": d.redistributable, "roles": dict(d.roles),
             "example": d.example, "note": d.note,
             "files": [{"name": f.name, "bytes": f.size, "sha256": f.sha256, "url": f.url} for f in d.files]}
            for d in DATASETS.values()]
    if as_json:
        click.echo(to_json({"data_home": str(data_home()), "mirror": mirror(), "datasets": rows}))
        return
    table = [("NAME", "TASK", "SIZE", "STATE", "LICENCE", "SOURCE")]
    table += [(r["name"], r["task"], _megabytes(r["bytes"]), r["state"], r["licence"], r["source"]) for r in rows]
    widths = [max(len(row[column]) for row in table) for column in range(5)]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5])
    click.echo(f"data home: {data_home()} (RNNKIT_DATA)" + (f"; mirror: {mirror()}" if mirror() else ""))


@command.command("get")
@click.argument("names", nargs=-1, required=True, metavar="NAME [NAME...]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per dataset instead of lines.")
def get_command(names: tuple[str, ...], as_json: bool) -> None:
    """Download datasets into the data home (RNNKIT_DATA), resuming an interrupted download and verifying each
    file's SHA-256; a file already there is checked, never replaced."""
    found = [dataset(name) for name in dict.fromkeys(names)]  # every name checked before any download
    progress = not as_json and sys.stderr.isatty()
    for each in found:
        log = None if as_json else (lambda line: click.echo(f"  {line}"))
        if not as_json:
            click.echo(f"{each.name}: {len(each.files)} file{'s' if len(each.files) > 1 else ''}, "
                       f"{_megabytes(each.size)} -> {each.folder}")
        try:
            results = download(each, progress=progress, log=log)
        except (Interrupted, KeyboardInterrupt) as interruption:  # SIGINT or SIGTERM (rnnkit.cli.interrupts)
            number = interruption.number if isinstance(interruption, Interrupted) else signal.SIGINT
            click.echo(f"error: {message(number)}; `rnnkit data get {each.name}` resumes the download", err=True)
            sys.exit(exit_status(number))
        if as_json:
            click.echo(to_json({"name": each.name, "folder": str(each.folder), "files": results}))


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"
