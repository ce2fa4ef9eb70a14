"""Trained runs over HTTP: ``rnnkit serve RUN [RUN...]``, a FastAPI application on uvicorn (the extra
``rnnkit[serve]``).

    app.py            create_app(runs, runtime=..., limits=...): the endpoints, the pages, the run of each request
    runtime.py        the Runtime protocol the server calls, and which endpoint serves which task
    torch_runtime.py  a trained run on PyTorch           onnx_runtime.py  a file of `rnnkit export` on ONNX Runtime
    onnx_models.py, onnx_decoders.py  an exported file's graphs standing in for the model behind the task's code
    workers.py        the worker threads and the bounded queue in front of them (503 when full, 504 past the timeout)
    streaming.py      /generate's tokens as server-sent events
    schemas.py        the request bodies          errors.py  every refusal as {"error": "one line"}
    limits.py         Limits: max input, max tokens, timeout, concurrency, queue
    static/           the playground (/) and the API page (/docs): no CDN, they work offline

Example::

    from rnnkit.serve import Limits, create_app, serve

    serve(create_app(["runs/shakespeare"], limits=Limits(max_tokens=500)), port=8000)   # http://127.0.0.1:8000/
"""

from rnnkit.extras import require

require("fastapi", "serve")
require("uvicorn", "serve")

from .app import create_app  # noqa: E402  (after the check that names the extra)
from .limits import Limits  # noqa: E402
from .runtime import ENDPOINTS, RUNTIMES, Runtime  # noqa: E402
from .server import serve  # noqa: E402

__all__ = ["create_app", "serve", "Limits", "Runtime", "ENDPOINTS", "RUNTIMES"]
