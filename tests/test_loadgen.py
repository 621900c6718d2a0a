"""The open-loop load generator against a real uvicorn + Starlette server in a thread.

No assertion here depends on how fast anything is: every request must be accounted for,
bodies must arrive whole both ways, and errors must land in the right place.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from benchmarks._loadgen import (
    LoadResult,
    ProtocolError,
    Request,
    _Connection,
    open_loop,
    run_open_loop,
)

# One chunk larger than a socket read, so a chunk can arrive in pieces.
CHUNKS = (b"a" * 10, b"b" * 300_000, b"c" * 3)
RATE, DURATION = 200.0, 1.0


class _App:
    """Four routes, and a count of the POST bytes that arrived intact."""

    def __init__(self) -> None:
        self.posted_bytes = 0
        self.app = Starlette(
            routes=[
                Route("/item/{n:int}", self.item),
                Route("/echo", self.echo, methods=["POST"]),
                Route("/stream", self.stream),
                Route("/fail", self.fail),
                Route("/hang", self.hang),
            ]
        )

    async def item(self, request: HttpRequest) -> Response:
        return JSONResponse({"id": request.path_params["n"], "name": "widget"})

    async def echo(self, request: HttpRequest) -> Response:
        body = await request.body()
        payload = json.loads(body)
        if payload["pad"] != "x" * payload["size"]:
            return JSONResponse({"error": "mangled body"}, status_code=400)
        self.posted_bytes += len(body)
        return Response(body, media_type="application/json")

    async def stream(self, request: HttpRequest) -> Response:
        async def chunks() -> Any:
            for chunk in CHUNKS:
                yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def fail(self, request: HttpRequest) -> Response:
        return JSONResponse({"error": "boom"}, status_code=500)

    async def hang(self, request: HttpRequest) -> Response:
        await request.body()
        await request.receive()  # returns only once the client hangs up
        return Response(status_code=204)


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:  # set on failure too, so the fixture fails fast instead of waiting
            self.ready.set()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[_App, int]]:
    """The app served on an ephemeral port of 127.0.0.1."""
    app = _App()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app.app, lifespan="off", ws="none", log_level="warning", access_log=False
    )
    srv = _Server(config)
    thread = threading.Thread(target=asyncio.run, args=(srv.serve(sockets=[sock]),))
    thread.start()
    try:
        assert srv.ready.wait(timeout=30)
        assert srv.started
        yield app, sock.getsockname()[1]
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive()


def _mix(sent: list[Request]) -> Iterator[Request]:
    """Round-robin over the four routes; POST bodies of varying size, recorded in ``sent``."""
    i = 0
    while True:
        size = (i * 7919) % 20_000
        body = json.dumps({"i": i, "size": size, "pad": "x" * size}).encode()
        for request in (
            Request("GET", f"/item/{i}", None, "item"),
            Request("POST", "/echo", body, "echo"),
            Request("GET", "/stream", None, "stream"),
            Request("GET", "/fail", None, "fail"),
        ):
            sent.append(request)
            yield request
        i += 1


@pytest.mark.parametrize(("loop", "warmup"), [("asyncio", 0.0), ("uvloop", 0.25)])
def test_every_request_is_accounted_for(server: tuple[_App, int], loop: str, warmup: float) -> None:
    app, port = server
    posted_before = app.posted_bytes
    sent: list[Request] = []
    options: dict[str, Any] = {"rate": RATE, "duration": DURATION, "warmup": warmup}
    result: LoadResult
    if loop == "uvloop":
        result = open_loop("127.0.0.1", port, _mix(sent), **options)
    else:
        result = asyncio.run(run_open_loop("127.0.0.1", port, _mix(sent), **options))

    total = round(RATE * (warmup + DURATION))
    assert len(sent) == total
    measured = sent[round(RATE * warmup) :]
    summary = result.summary()
    assert sum(summary[r]["requests"] + summary[r]["errors"] for r in result.routes) == round(
        RATE * DURATION
    )
    for route in ("item", "echo", "stream", "fail"):
        count = sum(r.route == route for r in measured)
        assert summary[route]["requests"] + summary[route]["errors"] == count

    for route in ("item", "echo", "stream"):
        assert result.routes[route].errors == {}, route
        stats = summary[route]
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"]
        assert stats["achieved_rate"] == stats["requests"] / DURATION
    # 500s are read through (the connection stays usable) and counted as errors only.
    assert summary["fail"]["requests"] == 0
    assert result.routes["fail"].errors == {"status 500": summary["fail"]["errors"]}

    # The server checked every POST body; the client got each one echoed back in full.
    assert app.posted_bytes - posted_before == sum(len(r.body or b"") for r in sent)
    echoed = sum(len(r.body or b"") for r in measured if r.route == "echo")
    assert result.routes["echo"].response_bytes == echoed
    assert result.routes["stream"].response_bytes == summary["stream"]["requests"] * len(
        b"".join(CHUNKS)
    )

    generator = summary["_generator"]
    assert len(result.send_lag) == round(RATE * DURATION)
    assert generator["send_lag_p50_ms"] <= generator["send_lag_max_ms"]
    assert 1 <= generator["peak_connections"] <= 512


def test_timeouts_and_a_full_pool_are_errors_not_hangs(server: tuple[_App, int]) -> None:
    _, port = server
    hang = Request("GET", "/hang", None, "hang")
    # 4 connections at most: arrivals queue for a slot, and keep arriving while timed-out
    # connections are replaced, which must not push the pool past its bound.
    result = open_loop(
        "127.0.0.1",
        port,
        itertools.repeat(hang),
        rate=200,
        duration=0.4,
        connections=2,
        max_connections=4,
        timeout=0.2,
    )
    assert result.routes["hang"].errors == {"timeout": 80}
    assert result.routes["hang"].latencies == []
    assert result.peak_connections == 4
    assert result.pool_waits > 0


def test_a_short_request_source_ends_the_run(server: tuple[_App, int]) -> None:
    _, port = server
    requests = [Request("GET", "/item/1", None, "item")] * 3
    result = open_loop("127.0.0.1", port, requests, rate=100, duration=1.0, connections=1)
    assert result.summary()["item"]["requests"] == 3


def test_refused_connections_raise_before_any_send() -> None:
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            open_loop("127.0.0.1", port, [Request("GET", "/")], rate=10, duration=0.1)


class _Wire(asyncio.Transport):
    """A transport that only remembers what was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        self.written += data

    def close(self) -> None:
        pass


def test_responses_split_at_every_byte_are_parsed() -> None:
    # uvicorn writes each chunk whole; here every boundary falls mid-token instead.
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: y\r\n\r\n"
    )
    cases = [
        (chunked, (200, 31)),
        (b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nabc", (201, 3)),
        (b"HTTP/1.1 204 No Content\r\n\r\n", (204, 0)),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", (503, 0)),
    ]

    async def exchange() -> None:
        conn = _Connection()
        wire = _Wire()
        conn.connection_made(wire)
        for response, expected in cases:
            waiting = conn.send(b"GET / HTTP/1.1\r\n\r\n")
            for i in range(len(response)):
                assert not waiting.done()
                conn.data_received(response[i : i + 1])
            assert waiting.result()[:2] == expected
            assert conn.reusable
        # No length and no chunking: the body runs to the end of the connection.
        waiting = conn.send(b"GET / HTTP/1.1\r\n\r\n")
        conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
        assert not waiting.done()
        conn.connection_lost(None)
        assert waiting.result()[:2] == (200, 11)
        assert not conn.reusable
        assert wire.written.count(b"GET / HTTP/1.1") == len(cases) + 1

    asyncio.run(exchange())


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"garbage\r\n\r\n",
    ],
)
def test_malformed_responses_are_protocol_errors(response: bytes) -> None:
    async def exchange() -> None:
        conn = _Connection()
        conn.connection_made(_Wire())
        waiting = conn.send(b"GET / HTTP/1.1\r\n\r\n")
        conn.data_received(response)
        with pytest.raises(ProtocolError):
            waiting.result()
        assert not conn.reusable

    asyncio.run(exchange())


def test_a_connection_lost_mid_body_is_an_error() -> None:
    async def exchange() -> None:
        conn = _Connection()
        conn.connection_made(_Wire())
        waiting = conn.send(b"GET / HTTP/1.1\r\n\r\n")
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        conn.connection_lost(None)
        with pytest.raises(ConnectionError):
            waiting.result()

    asyncio.run(exchange())
