"""Keep-alive HTTP/1.1 connections to model servers, for the gateway's proxy.

Why not aiohttp's client, which this replaced: per proxied request it cost ~80 µs of CPU
(request/response objects, URL parsing, timers, tracing hooks), 35–44 % of the gateway's
time in bench/control.py's profile, for upstreams that are always our own model servers on
loopback. Here a request is one ``write`` of bytes the gateway already has, and the answer
is parsed by httptools (llhttp, the parser uvicorn uses); nothing is parsed by hand.

Responses are read whole (bounded) before they are relayed: model servers answer with one
JSON or binary body, never an endless stream.

A connection goes back to the pool only at a clean message boundary: its one response read
to the end, the upstream willing to keep it open, and not a byte more received. Anything
else (an interim answer mistaken for the final one, bytes nobody asked for, a cancelled or
timed-out exchange) would hand one caller's response to the next caller on that connection.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

from modelport.identity.clock import SYSTEM_CLOCK, Clock

# Model servers (uvicorn) close idle keep-alive connections after 5 s; never reuse one that
# has been idle nearly that long.
IDLE_LIMIT_S = 4.0
MAX_IDLE_PER_ADDRESS = 256
# Interim (1xx) answers tolerated before the final one: a few 103 Early Hints at most in
# practice; an upstream that sends them without end is broken (or hostile).
MAX_INTERIM = 16


class UpstreamError(Exception):
    """The upstream failed mid-exchange (closed, sent garbage, too large, timed out)."""


class BadTarget(UpstreamError):
    """The request itself cannot be forwarded (a client error, not the upstream's)."""


class Response:
    """A whole upstream response."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One TCP connection; one request at a time."""

    def __init__(self, max_body: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.max_body = max_body
        self.closed = False
        # True only between a fully read keep-alive response and the next send().
        self.reusable = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._interim = 0
        self._skipping = False
        self.received = False
        self.head = False

    # ---- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they behave as one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: the upstream is out of step with us (an extra response,
            # stray bytes while idle). Whatever it is, it must not answer the next request.
            self.close()
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(UpstreamError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamError("connection closed by the upstream"))

    # ---- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            # A further message in the bytes that completed the last one: see data_received.
            self._fail(UpstreamError("unsolicited response"))
        self._size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # Header bytes count against the same bound as the body: memory stays bounded.
        self._size += len(name) + len(value)
        if self._size > self.max_body:
            self._fail(UpstreamError("response too large"))
            return
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._begin_interim(status)
        elif self.head:
            # A HEAD response announces a body it does not send; the parser would wait for
            # it. The answer is complete here, and the connection is not reused.
            self._complete(keep=False)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._fail(UpstreamError("response too large"))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._skipping:
            self._skipping = False  # the final response follows on this connection
            return
        self._complete(keep=self._parser.should_keep_alive())

    def _begin_interim(self, status: int) -> None:
        """RFC 9110 §15.2: a 1xx answer is interim, the final response follows it. A client
        must accept them unasked (100 Continue, 103 Early Hints...) and not relay them as
        the answer. 101 would switch protocols, which we never ask for (no Upgrade header
        is forwarded): the connection is unusable."""
        if status == 101:
            self._fail(UpstreamError("the upstream switched protocols unasked"))
            return
        self._interim += 1
        if self._interim > MAX_INTERIM:
            self._fail(UpstreamError("too many interim (1xx) responses"))
            return
        self._headers.clear()  # an interim answer's headers are not the final answer's
        self._skipping = True

    def _complete(self, keep: bool) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None:
            return
        response = Response(self._parser.get_status_code(), self._headers, b"".join(self._chunks))
        self._headers, self._chunks, self._size = [], [], 0
        if keep:
            self.reusable = True
        else:
            self.close()
        if not waiter.done():
            waiter.set_result(response)

    # ---- use ------------------------------------------------------------------------------

    def send(self, data: bytes, head: bool = False) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.reusable = False
        self.received = False
        self.head = head
        self._interim = 0
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if not self.closed:
            self.close()


class ConnectionPool:
    """Idle keep-alive connections per (host, port)."""

    def __init__(
        self, *, timeout_s: float = 300.0, max_body: int = 256 << 20, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.timeout_s = timeout_s
        self.max_body = max_body
        self._clock = clock
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}

    async def request(self, host: str, port: int, data: bytes, head: bool = False) -> Response:
        """Send one serialized request and read the whole response.

        Raises ConnectionRefusedError (nothing was sent: safe to retry elsewhere) or
        UpstreamError. A kept-alive connection the upstream closed just before our request
        arrived is replaced by a new one once, as the request never reached the server.
        """
        key = (host, port)
        conn = self._take(key)
        reused = conn is not None
        if conn is None:
            conn = await self._connect(host, port)
        try:
            response = await self._exchange(conn, data, head)
        except UpstreamError:
            if not (reused and not conn.received):
                raise
            conn = await self._connect(host, port)
            response = await self._exchange(conn, data, head)
        # Pooled only at a clean message boundary (module docstring); else never reused.
        if conn.reusable and not conn.closed:
            conn.idle_since = self._clock.monotonic()
            idle = self._idle.setdefault(key, deque())
            if len(idle) < MAX_IDLE_PER_ADDRESS:
                idle.append(conn)
                return response
        conn.close()
        return response

    async def _exchange(self, conn: _Connection, data: bytes, head: bool) -> Response:
        try:
            return await asyncio.wait_for(conn.send(data, head), self.timeout_s)
        except TimeoutError:
            conn.close()
            raise UpstreamError("the upstream did not answer in time") from None
        except asyncio.CancelledError:
            conn.close()  # the response may still arrive; this connection is unusable
            raise

    def _take(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = self._clock.monotonic()
        while idle:
            conn = idle.pop()  # most recently used first: the likeliest to still be open
            if not conn.closed and now - conn.idle_since < IDLE_LIMIT_S:
                return conn
            conn.close()
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Connection(self.max_body), host, port)
        return conn

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
