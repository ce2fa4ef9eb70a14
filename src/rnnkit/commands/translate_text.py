"""``rnnkit translate DIR``: translate sentences with a trained translation run.

    rnnkit translate DIR [--input FILE] [--output FILE] [--beam N] [--length-penalty A] [--checkpoint auto|best|latest] [--json]

Reads source sentences, one per line, from --input (``.gz`` allowed) or stdin, and writes one translation
per line to stdout or --output (written atomically: an existing file is replaced only by a complete one).
An empty input line gives an empty output line, so line i of the output always translates line i of the
input. Sentences longer than the run's --max-length are truncated and unknown tokens read as <unk>; both
are counted on stderr.
"""

import click

from rnnkit.cli_options import Positive, checkpoint_option
from rnnkit.train import RunDirectory


@click.command()
@click.argument("run_dir", metavar="DIR")
@click.option("--input", "input_path", metavar="FILE", help="Source sentences, one per line. Default: stdin.")
@click.option("--output", metavar="FILE", help="Write the translations here (atomically). Default: stdout.")
@click.option("--beam", type=Positive, help="Beam size; 1 = greedy search. Default: the run's (--beam of training).")
@click.option("--length-penalty", type=click.FloatRange(min=0),
              help="GNMT length normalisation alpha (0: none). Default: the run's.")
@checkpoint_option(best="the highest validation BLEU")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: {source, translation}.")
def command(run_dir: str, input_path: str | None, output: str | None, beam: int | None,
            length_penalty: float | None, which: str, as_json: bool) -> None:
    """Translate sentences (one per line, from --input or stdin) with the translation run in DIR."""
    from dataclasses import replace

    from rnnkit.commands.translate import translate_to_output
    from rnnkit.tasks.translate import TRAIN_COMMAND, from_checkpoint

    translator = from_checkpoint(RunDirectory.open(run_dir).load(which), run_dir, TRAIN_COMMAND)
    decode = translator.decode
    if beam is not None:
        decode = replace(decode, beam_size=beam)
    if length_penalty is not None:
        decode = replace(decode, length_penalty=length_penalty)
    translate_to_output(translator, decode, input_path, output, as_json)
