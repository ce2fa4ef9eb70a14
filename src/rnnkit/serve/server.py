"""Running the application: :func:`serve` (uvicorn, on 127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from rnnkit.errors import InputError

LOCAL = "127.0.0.1"


def serve(app: FastAPI, host: str = LOCAL, port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` on ``host:port`` until interrupted. The host is this machine only unless another is given
    (``0.0.0.0``: every interface, so anyone who can reach the machine can call the models)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(f"port must be a whole number from 0 to 65535, got {port!r}")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        server.run()
    except (OSError, SystemExit):  # uvicorn exits when it cannot bind: the port is taken, the host not this machine's
        raise InputError(f"cannot listen on {host}:{port} (the line above says why); choose another --port or "
                         "--host") from None
