"""``rnnkit export``: a trained run out of Python, as ONNX files or a torch.export program.

    rnnkit export RUN --format onnx --out model.onnx [--quantize int8 [--data FILE]] [--json]

A task whose model is several graphs writes FILE and siblings named by their role (``model.step.onnx``,
``model.decoder_step.onnx``); a tagger with a CRF also gets ``model.viterbi.py``; the command lists every file it
wrote. ``--quantize int8`` stores int8 weights and prints the change of the task's validation scores (float32 vs
int8, both run by onnxruntime) and of the file size. An existing FILE is replaced, as every rnnkit output is, and
only once every file was written. The work is :meth:`rnnkit.tasks.trained.TrainedRun.export`'s.
"""

import click

from rnnkit.cli.json_output import to_json
from rnnkit.cli.options import checkpoint_option


@click.command()
@click.argument("run", metavar="RUN")
@click.option("--format", "format", type=click.Choice(["onnx", "exported-program"]), default="onnx",
              show_default=True, help="ONNX files (onnxruntime, any language) or a torch.export program (.pt2).")
@click.option("--out", metavar="FILE", required=True, help="The file to write (siblings go beside it).")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Dynamic int8 weights (ONNX); reports the validation scores' change and the sizes.")
@click.option("--data", metavar="FILE", default=None,
              help="With --quantize: the validation data to compare on, where the run cannot find its own.")
@checkpoint_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def command(run: str, format: str, out: str, quantize: str | None, data: str | None, which: str,
            as_json: bool) -> None:
    """Export a trained run's model (every task) to ONNX or a torch.export program."""
    from rnnkit.tasks.exporting import format_report
    from rnnkit.tasks.trained import TrainedRun

    report = TrainedRun.open(run, which).export(format=format, out=out, quantize=quantize, data=data)
    click.echo(to_json(report) if as_json else format_report(report))
