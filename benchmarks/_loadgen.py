"""Open-loop HTTP/1.1 load generator for the serving-latency benchmark.

A closed-loop client (N workers, each sending its next request when the last one returns)
slows down exactly when the server does, so it never measures the queue it failed to
build: *coordinated omission*. Here arrivals are open loop instead: request ``i`` is due
at ``t0 + i / rate`` whatever happened before, and its latency runs from that *intended*
send time to the last byte of the response. If the server (or this generator) falls
behind, the wait is part of the latency, as it would be for a real caller.

The client is a minimal keep-alive HTTP/1.1 over ``asyncio`` protocols, not httpx or
aiohttp: on a 2-core machine shared with the server under test, their per-request CPU
would make the generator the bottleneck. The send lag (how late each request actually
went out) is reported, so a reader can tell when that happened anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

import numpy as np

_CHUNKED = -2
_UNTIL_CLOSE = -1
_MAX_HEAD = 65_536
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
P = ParamSpec("P")
T = TypeVar("T")


class Request(NamedTuple):
    """One request to send; ``route`` labels it for grouping results."""

    method: str
    path: str
    body: bytes | None = None
    route: str = "default"


class ProtocolError(Exception):
    """The server's response is not valid HTTP/1.1 as far as this client reads it."""


class _Outcome(NamedTuple):
    status: int  # 0 when no response came back
    nbytes: int
    latency: float  # from the intended send time (the real one if earlier); or the timeout
    lag: float | None  # write time - intended time; None if never written
    kind: str  # why it failed without a status


@dataclass(slots=True)
class RouteStats:
    """Results of one route: latencies (seconds) of 2xx responses, errors by kind."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    response_bytes: int = 0


@dataclass(slots=True)
class LoadResult:
    """Everything measured after the warm-up, per route and for the generator itself."""

    rate: float
    duration: float
    routes: dict[str, RouteStats] = field(default_factory=dict)
    send_lag: list[float] = field(default_factory=list)
    peak_connections: int = 0
    pool_waits: int = 0
    cpu_seconds: float = 0.0

    def add(self, route: str, outcome: _Outcome) -> None:
        """Count one request under ``route``."""
        stats = self.routes.setdefault(route, RouteStats())
        if outcome.lag is not None:
            self.send_lag.append(outcome.lag)
        stats.response_bytes += outcome.nbytes
        if 200 <= outcome.status < 300:
            stats.latencies.append(outcome.latency)
        else:
            stats.errors[outcome.kind or f"status {outcome.status}"] += 1

    def summary(self) -> dict[str, dict[str, float]]:
        """Per route percentiles (of 2xx responses) and error counts, plus ``_generator``.

        ``_generator`` holds the send lag percentiles (write time minus intended time;
        slightly negative when a millisecond timer woke early), the peak number of
        connections, how often every allowed connection was busy (requests then queue in
        the client) and the process CPU share: if the lag grows well past a millisecond,
        the generator was the bottleneck.
        """
        out: dict[str, dict[str, float]] = {}
        for route, stats in sorted(self.routes.items()):
            p50, p95, p99, top = _quantiles_ms(stats.latencies, (50, 95, 99, 100))
            out[route] = {
                "requests": len(stats.latencies),
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
                "max_ms": top,
                "errors": sum(stats.errors.values()),
                "achieved_rate": len(stats.latencies) / self.duration,
            }
        lag50, lag99, lag_max = _quantiles_ms(self.send_lag, (50, 99, 100))
        out["_generator"] = {
            "offered_rate": self.rate,
            "send_lag_p50_ms": lag50,
            "send_lag_p99_ms": lag99,
            "send_lag_max_ms": lag_max,
            "peak_connections": self.peak_connections,
            "pool_waits": self.pool_waits,
            "cpu_share": self.cpu_seconds / self.duration,
        }
        return out


def _quantiles_ms(seconds: list[float], qs: tuple[int, ...]) -> list[float]:
    """Percentiles in milliseconds; NaN when there is nothing to rank."""
    if not seconds:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(seconds) * 1e3, qs)]


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reusable = True
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, int, float]] | None = None
        self._status = 0
        self._remaining = 0
        self._nbytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, data: bytes) -> asyncio.Future[tuple[int, int, float]]:
        """Write a request; the future gives (status, body bytes, perf_counter at the end)."""
        self._waiter = asyncio.get_running_loop().create_future()
        self._status, self._nbytes = 0, 0
        cast(asyncio.Transport, self.transport).write(data)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is None or self._waiter.done():
            return
        try:
            done = self._parse()
        except (ValueError, IndexError) as exc:
            self.reusable = False
            self._waiter.set_exception(ProtocolError(str(exc)))
            return
        if done:
            self._finish()

    def eof_received(self) -> None:
        self.reusable = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            if self._status and self._remaining == _UNTIL_CLOSE:
                self._nbytes = len(self._buf)
                self._finish()
            else:
                self._waiter.set_exception(ConnectionError("connection lost mid-response"))
        if not self.lost.done():
            self.lost.set_result(None)

    def _finish(self) -> None:
        cast(asyncio.Future[tuple[int, int, float]], self._waiter).set_result(
            (self._status, self._nbytes, time.perf_counter())
        )

    def _parse(self) -> bool:
        """Consume what has arrived; True once the whole response is in."""
        buf = self._buf
        while not self._status:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ValueError("response head too long")
                return False
            status_line, *lines = buf[:end].decode("latin-1").split("\r\n")
            version, code, *_ = status_line.split(" ", 2)
            del buf[: end + 4]
            if int(code) < 200:  # an interim 1xx: the real response follows
                continue
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip().lower()
            self._status = int(code)
            self.reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "")
            if self._status in (204, 304):
                self._remaining = 0
            elif "chunked" in headers.get("transfer-encoding", ""):
                self._remaining = _CHUNKED
            elif "content-length" in headers:
                self._remaining = int(headers["content-length"])
            else:  # the body ends when the server closes
                self._remaining, self.reusable = _UNTIL_CLOSE, False
        if self._remaining == _CHUNKED:
            return self._parse_chunked()
        if self._remaining == _UNTIL_CLOSE:
            return False
        take = min(len(buf), self._remaining)
        del buf[:take]  # deleting a bytearray's head is O(1) amortised
        self._nbytes += take
        self._remaining -= take
        return self._remaining == 0

    def _parse_chunked(self) -> bool:
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return False
            size = int(buf[:eol].split(b";", 1)[0], 16)
            if size < 0:
                raise ValueError("negative chunk size")
            if size == 0:  # the last chunk, then optional trailers and an empty line
                end = buf.find(b"\r\n\r\n", eol)
                if end < 0:
                    return False
                del buf[: end + 4]
                return True
            start = eol + 2
            if len(buf) < start + size + 2:
                return False
            if buf[start + size : start + size + 2] != b"\r\n":
                raise ValueError("chunk data not followed by CRLF")
            del buf[: start + size + 2]
            self._nbytes += size


class _Pool:
    """Idle connections, opened on demand up to ``limit`` so sends are never held back."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self._host, self._port, self._limit = host, port, limit
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._all: list[_Connection] = []
        self.open = self.peak = self.waits = 0

    async def connect(self) -> _Connection:
        self.open += 1
        return await self._open()

    async def _open(self) -> _Connection:
        """Open a connection whose slot is already counted in ``open``."""
        self.peak = max(self.peak, self.open)
        try:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(_Connection, self._host, self._port)
        except BaseException:
            self._free_slot()
            raise
        self._all.append(conn)
        return conn

    async def acquire(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            self.release(conn, reuse=False)
        if self.open < self._limit:
            return await self.connect()
        self.waits += 1
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            got = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over as we were cancelled
                if (got := waiter.result()) is None:
                    self._free_slot()
                else:
                    self._handoff(got)
            raise
        return got if got is not None else await self._open()

    def release(self, conn: _Connection, *, reuse: bool) -> None:
        if reuse and conn.reusable:
            self._handoff(conn)
        else:
            conn.close()
            self._free_slot()

    def _handoff(self, conn: _Connection) -> None:
        if (waiter := self._next_waiter()) is not None:
            waiter.set_result(conn)
        else:
            self._idle.append(conn)

    def _free_slot(self) -> None:
        # A waiter takes the slot still counted, so a newcomer cannot take it too.
        if (waiter := self._next_waiter()) is not None:
            waiter.set_result(None)
        else:
            self.open -= 1

    def _next_waiter(self) -> asyncio.Future[_Connection | None] | None:
        while self._waiters:
            if not (waiter := self._waiters.popleft()).done():
                return waiter
        return None

    async def close(self) -> None:
        for conn in self._all:
            conn.close()
        await asyncio.gather(*(conn.lost for conn in self._all))


def _encode(request: Request, host: str) -> bytes:
    body = b"" if request.body is None and request.method in _BODY_METHODS else request.body
    head = f"{request.method} {request.path} HTTP/1.1\r\nHost: {host}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


async def _exchange(pool: _Pool, data: bytes, due: float, timeout: float) -> _Outcome:
    """One request on a pooled connection, timed out ``timeout`` after its intended time."""
    loop = asyncio.get_running_loop()
    conn, reuse, lag = None, False, None
    try:
        # From the intended time, like the latency: a late start eats into the budget.
        async with asyncio.timeout_at(loop.time() + due + timeout - time.perf_counter()):
            conn = await pool.acquire()
            sent = time.perf_counter()
            lag = sent - due
            status, nbytes, end = await conn.send(data)
        reuse = True
        # Sent early (by less than a timer tick), it is timed from when it really went out.
        return _Outcome(status, nbytes, end - min(due, sent), lag, "")
    except TimeoutError:
        return _Outcome(0, 0, timeout, lag, "timeout")
    except (OSError, ProtocolError) as exc:
        return _Outcome(0, 0, 0.0, lag, type(exc).__name__)
    finally:
        if conn is not None:
            pool.release(conn, reuse=reuse)


async def run_open_loop(
    host: str,
    port: int,
    requests: Iterable[Request],
    *,
    rate: float,
    duration: float,
    warmup: float = 0.0,
    connections: int = 64,
    max_connections: int = 512,
    timeout: float = 2.0,
) -> LoadResult:
    """Send ``round(rate * (warmup + duration))`` requests at a constant arrival rate.

    Args:
        host: Server address.
        port: Server port.
        requests: Drawn from in order, one per arrival; the run ends early if exhausted.
        rate: Arrivals per second.
        duration: Seconds measured, after the warm-up.
        warmup: Seconds at the same rate first, whose results are discarded.
        connections: Connections opened before the first send.
        max_connections: Upper bound when every open connection is busy.
        timeout: Seconds from a request's intended send time to give up on it.

    Returns:
        Latencies from intended send time to the end of the body, and errors (non-2xx,
        connection, protocol, timeout), by route; the send lag of each request.

    Raises:
        ValueError: ``rate`` or ``duration`` is not positive.
        OSError: The first ``connections`` connections could not be opened.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    loop = asyncio.get_running_loop()
    pool = _Pool(host, port, max(connections, max_connections))
    result = LoadResult(rate=rate, duration=duration)
    address = f"{host}:{port}"

    async def one(request: Request, due: float, record: bool) -> None:
        outcome = await _exchange(pool, _encode(request, address), due, timeout)
        if record:
            result.add(request.route, outcome)

    tasks: set[asyncio.Task[None]] = set()
    try:
        # All attempts settle before any failure is raised, so none leaks past the close.
        opened = await asyncio.gather(
            *(pool.connect() for _ in range(connections)), return_exceptions=True
        )
        for conn in opened:
            if isinstance(conn, BaseException):
                raise conn
            pool.release(conn, reuse=True)
        warm, total = round(warmup * rate), round((warmup + duration) * rate)
        source = iter(requests)
        t0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(total):
            due = t0 + i / rate  # not accumulated: no drift
            # Not a loop: spinning on a sub-millisecond remainder would take a core from the
            # server. A coarse timer may wake a little early; see _exchange.
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            if i == warm:
                cpu0 = time.process_time()
            if (request := next(source, None)) is None:
                break
            task = loop.create_task(one(request, due, i >= warm))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        result.cpu_seconds = time.process_time() - cpu0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.close()
    result.peak_connections, result.pool_waits = pool.peak, pool.waits
    return result


def _in_fresh_loop(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is optional
            factory = None
        else:
            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(fn(*args, **kwargs))

    run.__doc__ = f":func:`{fn.__name__}` in a fresh event loop (uvloop's if installed)."
    return run


open_loop = _in_fresh_loop(run_open_loop)
