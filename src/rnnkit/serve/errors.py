"""How the server refuses: every failure is a JSON body ``{"error": "<one line>"}`` with a 4xx or 5xx status,
never a traceback (:func:`install`).

    400  a value the task refuses (InputError: the task's own message), a model that cannot answer this endpoint
    404  an unknown path or model            405  a method the path does not take
    413  input longer than max_input         422  a body that is not JSON, or not the endpoint's fields
    503  every worker busy, the queue full (Retry-After: seconds)
    504  the answer was not ready within the request timeout
    500  a bug in rnnkit: the log has the traceback, the client one line
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rnnkit.errors import InputError

from .workers import Busy, TimedOut

log = logging.getLogger("rnnkit.serve")


class Refusal(Exception):
    """A request the server refuses with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install(app: FastAPI, retry_after: int, timeout: float, endpoints: list[str]) -> None:
    """Answer every exception with one JSON line (see the module's docstring); ``endpoints`` are the paths this
    server serves, named when a path is unknown."""

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError):
        return error(400, " ".join(str(exc).split()))

    @app.exception_handler(Refusal)
    async def refusal(request: Request, exc: Refusal):
        return error(exc.status, exc.message)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        return error(503, f"the server is busy (every worker running and the queue full); retry after {retry_after} s",
                     {"Retry-After": str(retry_after)})

    @app.exception_handler(TimedOut)
    async def timed_out(request: Request, exc: TimedOut):
        return error(504, timeout_message(timeout))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error(422, validation_message(exc.errors(), request.url.path))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return error(404, f"no endpoint {request.url.path}; this server answers {', '.join(endpoints)} "
                              "(the API: /docs)")
        if exc.status_code == 405:
            return error(405, f"{request.method} is not how {request.url.path} is called; the API: /docs",
                         {"Allow": exc.headers.get("Allow", "")} if exc.headers else None)
        return error(exc.status_code, " ".join(str(exc.detail).split()))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        log.exception("a bug in rnnkit answering %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}) answering {request.url.path}; the server's log "
                          "has the details")


def timeout_message(timeout: float) -> str:
    return f"no answer within the request timeout of {timeout:g} s; ask for less, or raise the server's timeout"


def validation_message(errors: list[dict], path: str) -> str:
    """The first of pydantic's ``errors`` as one line naming the field (and how many more there are)."""
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    kind = first.get("type", "")
    if kind == "json_invalid":
        message = f"the body is not valid JSON ({first.get('ctx', {}).get('error', first['msg'])}); send a JSON object"
    elif kind == "model_attributes_type" or (kind.endswith("_type") and not where):
        message = f"the body must be a JSON object of the fields of {path}; the API: /docs"
    elif kind == "extra_forbidden":
        message = f"{where} is not a field of {path}; its fields: /docs"
    elif kind == "missing":
        message = f"give the field {where}" if where else f"give a JSON body with the fields of {path}"
    else:
        message = f"{where}: {first['msg']}" if where else first["msg"]
    more = len(errors) - 1
    return " ".join(message.split()) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
