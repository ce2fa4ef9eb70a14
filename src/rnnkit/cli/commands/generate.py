"""``rnnkit generate DIR``: what the trained model in DIR writes: text from a language model, piece by piece as it
is sampled; music (MIDI, WAV, a piano roll) from a music model.

    rnnkit generate DIR [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P] [--greedy] [--seed N]
    rnnkit generate DIR --steps 64 --seed 0 [--prime-piece test:0 --prime-steps 8] --midi out.mid --wav out.wav

The command takes the flags of every task that generates; a flag the run's task does not take is one line
naming those it does (:func:`rnnkit.cli.task_command.apply`).
"""

import click

from rnnkit.cli.commands import task_command
from rnnkit.cli.options import FiniteFloat, Positive, PositiveFloat, Seed, checkpoint_option, music_generate_options
from rnnkit.cli.task_command import apply
from rnnkit.train import RunDirectory


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--prime", default="", help="Language models: text the sample starts from (default: the model picks "
                                           "the first token).")
@click.option("--length", type=Positive, default=500, show_default=True, help="Language models: tokens to generate.")
@click.option("--temperature", type=PositiveFloat, default=1.0, show_default=True,
              help="Sharpen (<1) or flatten (>1) the model's distribution; must be > 0.")
@click.option("--top-k", type=Positive, help="Language models: sample only among the K most likely tokens.")
@click.option("--top-p", type=FiniteFloat(0, 1, min_open=True),
              help="Language models: sample only from the smallest set of tokens holding probability P.")
@click.option("--greedy", is_flag=True, help="Language models: always take the most likely token (no sampling).")
@click.option("--seed", type=Seed, help="Seed for a reproducible sample.")
@music_generate_options
@checkpoint_option()
@click.pass_context
def command(ctx: click.Context, run_dir: str, which: str, **options) -> None:
    """Generate with the trained model in DIR: text from a language model (to stdout, as it is sampled), music
    from a music model (MIDI, WAV and a piano roll with --midi/--wav/--plot)."""
    checkpoint = RunDirectory.open(run_dir).load(which)
    command = task_command(checkpoint.meta.get("task"), run_dir)
    apply(ctx, command, command.generate, run_dir, checkpoint, {**options, "which": which})
