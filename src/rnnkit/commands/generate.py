"""``rnnkit generate DIR``: write text from a trained language model, piece by piece as it is sampled.

    rnnkit generate DIR [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P] [--greedy] [--seed N]
"""

import sys

import click

from rnnkit.cli_options import Positive, PositiveFloat, checkpoint_option


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--prime", default="", help="Text the sample starts from (default: the model picks the first token).")
@click.option("--length", type=Positive, default=500, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=PositiveFloat, default=1.0, show_default=True,
              help="Sharpen (<1) or flatten (>1) the next-token distribution; must be > 0.")
@click.option("--top-k", type=Positive, help="Sample only among the K most likely tokens.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Sample only from the smallest set of tokens holding probability P.")
@click.option("--greedy", is_flag=True, help="Always take the most likely token (no sampling).")
@click.option("--seed", type=int, help="Seed for a reproducible sample.")
@checkpoint_option()
def command(run_dir: str, prime: str, length: int, temperature: float, top_k: int | None, top_p: float | None,
            greedy: bool, seed: int | None, which: str) -> None:
    """Write text from a trained language model in DIR to stdout, piece by piece as it is sampled."""
    from rnnkit.generate import sample
    from rnnkit.tasks.lm import from_run

    model, vocab, _ = from_run(run_dir, which)
    pieces = sample(model, vocab, prime=prime, length=length, temperature=temperature,
                    top_k=top_k, top_p=top_p, greedy=greedy, seed=seed)
    # The sampler (having checked its arguments) feeds the prime through without yielding it; show it.
    sys.stdout.write(prime)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
