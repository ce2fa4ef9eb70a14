"""``rnnkit serve``: trained runs over HTTP, with a playground page (the extra ``rnnkit[serve]``).

    rnnkit serve RUN [RUN...] [--port 8000] [--host 127.0.0.1] [--runtime torch|onnx] [--checkpoint auto]
                 [--max-input 10000] [--max-tokens 1000] [--timeout 30] [--max-concurrent 4] [--queue 16]
                 [--threads N]

Each RUN is a run directory (``--runtime torch``) or a file of ``rnnkit export --format onnx`` (``--runtime
onnx``), served at the endpoint of its task (/generate, /classify, /tag, /translate, /forecast, /music,
/caption); ``NAME=RUN`` names it (the ``model`` field of a request picks it when several runs serve one
endpoint). The playground is at ``/``, the API at ``/docs``; :mod:`rnnkit.serve` documents the endpoints.
"""

from pathlib import Path

import click

from rnnkit.cli.options import Positive, PositiveFloat


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN [RUN...]")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; the default is this machine only (0.0.0.0: every interface).")
@click.option("--runtime", type=click.Choice(("torch", "onnx")), default="torch", show_default=True,
              help="torch: run directories on PyTorch; onnx: files of `rnnkit export --format onnx` on ONNX Runtime.")
@click.option("--checkpoint", type=click.Choice(("auto", "best", "latest")), default="auto", show_default=True,
              help="Which checkpoint of a run directory: the best when it has one (auto), the best, or the latest.")
@click.option("--max-input", type=Positive, default=10_000, show_default=True,
              help="The most characters of text (or steps of a series) in one request; more is refused with 413.")
@click.option("--max-tokens", type=Positive, default=1_000, show_default=True,
              help="The most tokens one /generate may ask for (steps of /music).")
@click.option("--timeout", type=PositiveFloat, default=30.0, show_default=True, metavar="SECONDS",
              help="Seconds from a request's arrival to its answer, its wait in the queue included; then 504.")
@click.option("--max-concurrent", type=Positive, default=4, show_default=True,
              help="Model calls at once, one worker thread each.")
@click.option("--queue", type=click.IntRange(min=0), default=16, show_default=True,
              help="Requests that may wait for a worker; one more is refused with 503 and Retry-After.")
@click.option("--threads", type=Positive,
              help="torch's intra-op threads. Default: the CPU cores divided among the workers (at least 1).")
def command(runs, port, host, runtime, checkpoint, max_input, max_tokens, timeout, max_concurrent, queue, threads):
    """Serve trained runs over HTTP: JSON endpoints per task, a playground page at /, the API at /docs."""
    from rnnkit.serve import Limits, create_app, serve

    limits = Limits(max_input=max_input, max_tokens=max_tokens, timeout=timeout, max_concurrent=max_concurrent,
                    queue=queue, threads=threads)
    app = create_app(_named(runs), runtime=runtime, limits=limits, checkpoint=checkpoint)
    for model in app.state.runtimes.values():
        click.echo(f"serving {model.source} ({model.task}, {model.kind})", err=True)
    click.echo(f"playground: http://{host}:{port}/   API: http://{host}:{port}/docs", err=True)
    serve(app, host=host, port=port)


def _named(runs: tuple[str, ...]) -> dict[str, str] | list[str]:
    """``NAME=RUN`` arguments as a mapping (a RUN without a name is named by create_app after its directory)."""
    if not any("=" in run for run in runs):
        return list(runs)
    named = {}
    for run in runs:
        name, _, path = run.rpartition("=")
        key = name or Path(path).name
        if key in named:
            raise click.UsageError(f"two runs are named {key!r}; give each its own NAME=RUN")
        named[key] = path
    return named
