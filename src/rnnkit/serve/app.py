"""The HTTP server of trained runs: :func:`create_app`, a FastAPI (ASGI) application.

Each served run answers the endpoint of its task (:data:`~rnnkit.serve.runtime.ENDPOINTS`); only the endpoints
of the served tasks exist. Beside them:

    GET /            the playground: type a prime and watch the text stream, a sentence and see its class or tags
    GET /docs        the API, rendered from /openapi.json in the page itself (no CDN: it works offline)
    GET /models      the served runs (name, task, endpoint, what a client needs to call it) and the limits
    GET /health      {"status": "ok"} with the calls running and waiting, and those answered and refused

Several runs may serve one endpoint: a request names the one that answers in its ``model`` field (a run's name
is its directory's name, or the name given with ``create_app({"name": run})`` / ``rnnkit serve NAME=RUN``).

Example::

    import uvicorn
    from rnnkit.serve import Limits, create_app

    app = create_app(["runs/shakespeare", "runs/sentiment"], limits=Limits(max_concurrent=2, timeout=10))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from rnnkit.errors import InputError
from rnnkit.tasks.trained import TrainedRun

from . import errors
from .errors import Refusal
from .limits import Limits
from .runtime import ENDPOINTS, RUNTIMES, Runtime
from .schemas import CaptionBody, ClassifyBody, ForecastBody, GenerateBody, MusicBody, TagBody, TranslateBody
from .streaming import stream_generation
from .workers import Cancel, Workers

STATIC = Path(__file__).parent / "static"
# The pages load nothing from anywhere but this server: the playground works offline, and a browser says so.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:", "Cache-Control": "no-cache"}
DEFAULT_LENGTH = 200
BAD_STATUS = {400: {"description": "A value the task refuses: {\"error\": \"one line\"}"},
              404: {"description": "An unknown model"},
              413: {"description": "Input longer than the server's max_input"},
              422: {"description": "A body that is not JSON or not this endpoint's fields"},
              503: {"description": "Busy: every worker running and the queue full (see Retry-After)"},
              504: {"description": "No answer within the request timeout"}}


def create_app(runs: Sequence[TrainedRun | str | Path | Runtime] | Mapping[str, TrainedRun | str | Path | Runtime],
               *, runtime: str = "torch", limits: Limits | None = None, checkpoint: str = "auto") -> FastAPI:
    """The ASGI application serving ``runs`` (see the module's docstring).

    Args:
        runs: trained runs (:class:`~rnnkit.tasks.trained.TrainedRun`, or run directories) for ``runtime="torch"``;
            files of ``rnnkit export --format onnx`` for ``runtime="onnx"``; or runtimes already made. A mapping
            names them; else each is named after its directory (or file, without ``.onnx``).
        runtime: ``"torch"`` or ``"onnx"``: what runs the models.
        limits: the server's :class:`~rnnkit.serve.limits.Limits` (default: ``Limits()``).
        checkpoint: which checkpoint of a run directory: ``"auto"``, ``"best"`` or ``"latest"``.
    """
    limits = limits or Limits()
    served = load_runtimes(runs, runtime, checkpoint)
    workers = Workers(limits)
    endpoints = sorted({"/" + ENDPOINTS[model.task] for model in served.values()})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        threads = torch.get_num_threads()
        torch.set_num_threads(limits.torch_threads)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            workers.close()

    app = FastAPI(title="rnnkit serve", summary="Trained recurrent networks over HTTP: " + ", ".join(endpoints),
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.runtimes, app.state.workers, app.state.limits = served, workers, limits
    errors.install(app, limits.retry_after, limits.timeout, endpoints + ["/models", "/health", "/docs", "/"])
    app.add_middleware(BodyLimit, max_bytes=64 * limits.max_input + (1 << 20))
    _add_pages(app, served, workers, limits)
    _add_endpoints(app, served, workers, limits)
    return app


def load_runtimes(runs, runtime: str, checkpoint: str = "auto") -> dict[str, Runtime]:
    """Each run's runtime by name (see :func:`create_app`); InputError for no run, an unknown runtime or two runs
    of one name."""
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    named = list(runs.items()) if isinstance(runs, Mapping) else [(None, run) for run in runs]
    if not named:
        raise InputError("give at least one run to serve")
    served: dict[str, Runtime] = {}
    for name, run in named:
        model = _runtime(run, runtime, checkpoint)
        name = name or (Path(model.source).stem if runtime == "onnx" else Path(model.source).name)
        if name in served:
            raise InputError(f"two runs are named {name!r} ({served[name].source} and {model.source}); name them: "
                             f"rnnkit serve first={served[name].source} second={model.source}")
        served[name] = model
    return served


def _runtime(run, runtime: str, checkpoint: str) -> Runtime:
    if not isinstance(run, (TrainedRun, str, Path)):
        return run  # a runtime made by the caller
    if runtime == "onnx":
        from .onnx_runtime import OnnxRuntime

        if isinstance(run, TrainedRun):
            raise InputError(f"--runtime onnx serves files of `rnnkit export --format onnx`, not the run {run.path}; "
                             f"export it first: rnnkit export {run.path} --format onnx --out model.onnx")
        return OnnxRuntime(run)
    from .torch_runtime import TorchRuntime

    return TorchRuntime(run, checkpoint)


class BodyLimit:
    """ASGI middleware: a body announced longer than ``max_bytes`` is refused with 413 before it is read (so a
    huge upload never fills the server's memory); the exact limit, ``max_input``, is checked on what it holds."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.max_bytes:
                response = errors.error(413, f"the body is {length.decode('latin-1')} bytes, more than this server "
                                             f"reads ({self.max_bytes:,}); send less input per request")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _add_pages(app: FastAPI, served: dict[str, Runtime], workers: Workers, limits: Limits) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def playground():
        return FileResponse(STATIC / "playground.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC / "api.html", headers=PAGE_HEADERS)

    @app.get("/models", summary="The served runs and the limits")
    async def models() -> dict:
        return {"models": [{"name": name, "task": model.task, "endpoint": "/" + ENDPOINTS[model.task],
                            "runtime": model.kind, "source": model.source, **model.describe()}
                           for name, model in served.items()],
                "limits": limits.to_dict()}

    @app.get("/health", summary="Whether the server answers, and its load")
    async def health() -> dict:
        return {"status": "ok", "models": len(served), **workers.state()}


def _add_endpoints(app: FastAPI, served: dict[str, Runtime], workers: Workers, limits: Limits) -> None:
    """The endpoints of the served tasks, each picking its run and checking the limits before a worker runs it."""
    tasks = {model.task for model in served.values()}

    def pick(endpoint: str, name: str | None) -> tuple[str, Runtime]:
        serving = {key: model for key, model in served.items() if ENDPOINTS[model.task] == endpoint}
        if name is None:
            if len(serving) > 1:
                raise InputError(f"several runs answer /{endpoint} here ({', '.join(serving)}); name one in the "
                                 "field \"model\"")
            return next(iter(serving.items()))
        if name not in served:
            raise Refusal(404, f"no model {name!r} here; the models: {', '.join(served)} (GET /models)")
        if name not in serving:
            task = served[name].task
            raise InputError(f"model {name!r} is a {task} run, answered at /{ENDPOINTS[task]}, not /{endpoint}")
        return name, serving[name]

    def check_input(size: int, unit: str) -> None:
        if size > limits.max_input:
            raise Refusal(413, f"the input is {size:,} {unit}, more than this server's max_input of "
                               f"{limits.max_input:,}; send less per request")

    def given(items: list | None, what: str, fields: str) -> list:
        if items is None:
            raise InputError(f"give {fields}")
        if not items:
            raise InputError(f"give at least one {what}")
        return items

    async def call(function, *args) -> Any:
        return await workers.run(function, *args, deadline=workers.deadline(), cancel=Cancel())

    def predicting(endpoint: str, summary: str, body_type: type, items, size, unit: str = "characters",
                   options=lambda body: {}) -> None:
        """Adds POST /endpoint, answering a ``body_type`` body with the named run's predictions for its inputs:
        ``items(body)`` reads (and checks) the inputs, ``size(inputs)`` is what max_input bounds (in ``unit``), and
        ``options(body)`` the prediction's options."""
        async def answer(body) -> dict:
            name, model = pick(endpoint, body.model)
            inputs = items(body)
            check_input(size(inputs), unit)
            return {"model": name, "predictions": await call(model.predict, inputs, options(body))}

        # FastAPI reads the body's type from the annotation, and names the operation (in /openapi.json) after the
        # function: both as if each endpoint were written out on its own.
        answer.__annotations__ = {"body": body_type, "return": dict}
        answer.__name__ = answer.__qualname__ = endpoint
        app.post(f"/{endpoint}", summary=summary, responses=BAD_STATUS)(answer)

    texts = "either \"text\" (a string) or \"texts\" (a list of strings)"

    def images(body: CaptionBody) -> list:
        images = given(body.images, "image", "\"images\"")
        if any(not image or len({len(row) for row in image}) != 1 or not image[0] for image in images):
            raise InputError("give each image as rows of one length (height × width pixels in [0, 1])")
        return images

    if "classify" in tasks:
        predicting("classify", "The class of each text", ClassifyBody,
                   lambda body: given(body.items(), "text", texts), lambda texts: sum(map(len, texts)))
    if "tag" in tasks:
        predicting("tag", "The tag of each token of each sentence", TagBody,
                   lambda body: given(body.items(), "sentence", "either \"sentence\" or \"sentences\""),
                   lambda sentences: sum(len(token) for tokens in sentences for token in tokens))
    if "translate" in tasks:
        predicting("translate", "The translation of each sentence", TranslateBody,
                   lambda body: given(body.items(), "sentence", texts), lambda texts: sum(map(len, texts)),
                   options=lambda body: {key: value for key, value in (("beam", body.beam),
                                                                        ("length_penalty", body.length_penalty))
                                         if value is not None})
    if "caption" in tasks:
        predicting("caption", "The caption of each image", CaptionBody, images,
                   lambda images: sum(len(row) for image in images for row in image), "pixels")

    if "forecast" in tasks:
        @app.post("/forecast", summary="The values after the end of a series", responses=BAD_STATUS)
        async def forecast(body: ForecastBody) -> dict:
            name, model = pick("forecast", body.model)
            check_series(body, model.describe(), check_input)
            return {"model": name, **await call(model.forecast, body.series, body.dates)}

    if "lm" in tasks:
        @app.post("/generate", summary="Text from a language model, as JSON or streamed as server-sent events",
                  responses={**BAD_STATUS, 200: {"content": {"text/event-stream": {}}}})
        async def generate(body: GenerateBody, request: Request):
            name, model = pick("generate", body.model)
            check_input(len(body.prime), "characters")
            options = body.model_dump(exclude={"model", "stream"}, exclude_none=True)
            options["length"] = check_tokens(body.length, "length", limits.max_tokens)
            if body.stream or "text/event-stream" in request.headers.get("accept", ""):
                return await stream_generation(workers, model, name, options, workers.deadline())
            cancel = Cancel()
            result = await workers.run(model.generate, options, lambda text: cancel.check(),
                                       deadline=workers.deadline(), cancel=cancel)
            return {"model": name, **result}

    if "music" in tasks:
        @app.post("/music", summary="A piece from a music model: the pitches sounding at each step",
                  responses=BAD_STATUS)
        async def music(body: MusicBody) -> dict:
            name, model = pick("music", body.model)
            options = body.model_dump(exclude={"model"}, exclude_none=True)
            options["steps"] = check_tokens(body.steps, "steps", limits.max_tokens)
            return {"model": name, **await call(model.generate, options, lambda text: None)}


def check_tokens(asked: int | None, field: str, most: int) -> int:
    """What a generation asks for, within the server's max_tokens (default: the smaller of 200 and it)."""
    if asked is None:
        return min(DEFAULT_LENGTH, most)
    if asked > most:
        raise InputError(f"{field} {asked:,} is more than this server's max_tokens of {most:,}; ask for at most "
                         f"{most:,}")
    return asked


def check_series(body: ForecastBody, facts: dict, check_input) -> None:
    """A forecast request's series: exactly the run's columns, of one length (within max_input), with dates
    where the run has a date column."""
    names = [facts["target"], *facts["features"]]
    missing = [name for name in names if name not in body.series]
    if missing:
        raise InputError(f"series lacks the column(s) {', '.join(missing)}; this run reads {', '.join(names)}")
    unknown = [name for name in body.series if name not in names]
    if unknown:
        raise InputError(f"series has the column(s) {', '.join(unknown)}, which this run does not read; it reads "
                         f"{', '.join(names)}")
    lengths = {len(body.series[name]) for name in names}
    if len(lengths) > 1:
        raise InputError(f"the columns of series have different lengths ({', '.join(map(str, sorted(lengths)))}); "
                         "give one value per step in each")
    steps = lengths.pop()
    check_input(steps, "steps")
    if facts["date_column"] and body.dates is None:
        raise InputError(f"give \"dates\": this run was trained with the date column {facts['date_column']!r}")
    if not facts["date_column"] and body.dates is not None:
        raise InputError("this run was trained without a date column; leave out \"dates\"")
    if body.dates is not None and len(body.dates) != steps:
        raise InputError(f"dates has {len(body.dates)} entries and the series {steps} steps; give one date per step")
