"""rnnkit translate: being written in this session (placeholder so that the command group imports)."""

import click


@click.command()
def command() -> None:
    """Not built yet."""
