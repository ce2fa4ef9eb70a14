"""``/generate`` streamed as server-sent events: each token as it is drawn.

The events (each ``data`` is one line of JSON, so a newline inside the text cannot break the stream)::

    event: token          data: {"text": " the"}               one per generated token
    event: done           data: {"model": ..., "prime": ..., "text": ...}   the whole answer, as /generate's JSON
    event: error          data: {"error": "..."}               the generation stopped (the request timeout)

A request that fails before its first token (a bad option, a prime the vocabulary cannot read, a full queue)
is answered as any other request: a JSON error with its status, not a stream. A client that goes away stops
the generation at its next token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

from fastapi.responses import StreamingResponse

from rnnkit.errors import InputError

from .errors import timeout_message
from .runtime import Runtime
from .workers import Cancel, TimedOut, Workers

log = logging.getLogger("rnnkit.serve")


def event(name: str, data: dict) -> str:
    """One server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream_generation(workers: Workers, runtime: Runtime, name: str, options: dict[str, Any],
                            deadline: float) -> StreamingResponse:
    """Start ``runtime.generate(options)`` in a worker and answer with its tokens as events (see the module's
    docstring); raises what the request fails with before its first token."""
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[str] = asyncio.Queue()
    cancel = Cancel()

    def piece(text: str) -> None:  # in the worker thread
        cancel.check()
        loop.call_soon_threadsafe(tokens.put_nowait, text)

    await workers.acquire(deadline)
    call = asyncio.ensure_future(workers.start(runtime.generate, options, piece, deadline=deadline, cancel=cancel))
    first = await _next(tokens, call)
    if first is None and call.exception() is not None:
        raise call.exception()
    events = _events(first, tokens, call, cancel, name, workers.limits.timeout)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _next(tokens: asyncio.Queue, call: asyncio.Future) -> str | None:
    """The next token, or None once the call has ended and every token it made has been taken."""
    if not tokens.empty():
        return tokens.get_nowait()
    if call.done():
        return None
    getter = asyncio.ensure_future(tokens.get())
    done, _ = await asyncio.wait({getter, call}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    # The worker queued its last tokens before the call's end was signalled, so they are already here.
    return tokens.get_nowait() if not tokens.empty() else None


async def _events(first: str | None, tokens: asyncio.Queue, call: asyncio.Future, cancel: Cancel, name: str,
                  timeout: float) -> AsyncIterator[str]:
    try:
        text = first
        while text is not None:
            yield event("token", {"text": text})
            text = await _next(tokens, call)
        failure = call.exception()
        if failure is None:
            yield event("done", {"model": name, **call.result()})
        else:
            yield event("error", {"error": _message(failure, timeout)})
    finally:
        if not call.done():  # the client went away: stop the generation at its next token
            cancel.set()
            call.cancel()
        call.add_done_callback(_retrieve)


def _message(failure: BaseException, timeout: float) -> str:
    if isinstance(failure, TimedOut):
        return timeout_message(timeout)
    if isinstance(failure, InputError):
        return " ".join(str(failure).split())
    log.error("a bug in rnnkit while streaming /generate", exc_info=failure)
    return f"internal error ({type(failure).__name__}); the server's log has the details"


def _retrieve(call: asyncio.Future) -> None:
    if not call.cancelled():
        call.exception()
