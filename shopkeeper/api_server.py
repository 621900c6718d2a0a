"""Serve an ASGI app with uvicorn in a background thread (the demo and the tests).

Production runs ``shopkeeper serve`` (uvicorn in the foreground, one worker per core);
this is for a process that does other work while the API answers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_in_background"]


class _Server(uvicorn.Server):
    """A uvicorn server that says when it has started."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextlib.contextmanager
def serve_in_background(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 60
) -> Iterator[str]:
    """Serve ``app`` until the block ends; yield its base URL (``port=0``: any free one).

    Raises:
        TimeoutError: The server did not start in ``start_timeout`` seconds.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="api", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(start_timeout):
            raise TimeoutError("the API server did not start")
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
