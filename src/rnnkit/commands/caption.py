"""rnnkit train caption: being written in this session (placeholder so that the command group imports)."""

import click

from rnnkit.errors import InputError


@click.command()
def train_command() -> None:
    """Not built yet."""
    raise InputError("rnnkit train caption is not built yet")


def evaluate(run_dir, checkpoint, options) -> None:
    raise InputError("rnnkit evaluate is not built for caption runs yet")


def predict(run_dir, checkpoint, options) -> None:
    raise InputError("rnnkit predict is not built for caption runs yet")
