"""``rnnkit doctor``: what rnnkit runs on here, for a bug report or a slow run.

    rnnkit doctor [--json]

Prints rnnkit's, torch's and Python's versions, the CPU (its model name and ATen's CPU capability) and torch's
threads, every engine with its summary and the cells it runs here, and the native engine: built for which
instruction set, with which kernels, from which library, or why it is not available and how to fix that.
``--json`` prints the same as one JSON object (rnnkit's version and :func:`rnnkit.doctor.environment`).
"""

import click

from rnnkit import __version__
from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import auto_engine_words


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def command(as_json: bool) -> None:
    """Versions, CPU, threads and the engines this machine runs (the native engine: built or why not)."""
    from rnnkit.doctor import environment

    facts = {"rnnkit": __version__, **environment()}  # the package's version: only the command line imports rnnkit
    if as_json:
        click.echo(to_json(facts))
        return
    click.echo(f"rnnkit {facts['rnnkit']}, torch {facts['torch']}, Python {facts['python']}, {facts['platform']}")
    click.echo(f"CPU: {facts['cpu'] or 'unknown'}; ATen's CPU capability {facts['cpu_capability']}; "
               f"torch threads {facts['threads']}")
    click.echo("engines:")
    width = max(len(engine["name"]) for engine in facts["engines"])
    for engine in facts["engines"]:
        state = f"runs {', '.join(engine['cells'])}" if engine["available"] else f"runs no cell here: {engine['reason']}"
        click.echo(f"  {engine['name']:<{width}}  {engine['summary']}\n  {'':<{width}}  {state}")
    click.echo(f"  {'auto':<{width}}  {auto_engine_words()}")
    click.echo(f"native engine: {_native_words(facts['native'])}")


def _native_words(native: dict) -> str:
    if native["available"]:
        return f"built for {native['isa']}, kernels {', '.join(native['kernels'])}; library {native['library']}"
    return f"not available: {native['reason']}"
