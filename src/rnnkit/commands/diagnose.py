"""rnnkit diagnose: being written in this session (placeholder so that the command group imports)."""

import click


@click.group()
def command() -> None:
    """Not built yet."""
