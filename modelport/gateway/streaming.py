"""Relaying a response as it arrives: the OpenAI routes' server-sent events (``stream:
true``) must reach the client token by token through the gateway, not after the last one.

The pooled connections (connections.py) read a response whole; a streamed exchange gets a
connection of its own, parsed by httptools as they are, and closed at the end. The client
pulls: the next upstream read happens after the previous piece was handed to the ASGI
server (whose ``send`` waits while the client's socket is full), so a slow reader slows the
model server instead of filling the gateway's memory. A client that disconnects closes the
upstream connection, which the model server sees as its own client leaving (it stops
generating).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import httptools

from modelport.gateway.connections import Response, UpstreamError

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
READ_SIZE = 64 * 1024
# The payload logger sees this much of a streamed answer (a stream has no bound of its own).
TAP_LIMIT = 64 * 1024


class _Tap(Protocol):
    def response(self, status: int, body: bytes) -> None: ...


class _Message:
    """httptools callbacks: headers, body pieces, the end."""

    def __init__(self, max_header: int) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.pieces: deque[bytes] = deque()
        self.header_size = 0
        self.max_header = max_header
        self.headers_done = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_size += len(name) + len(value)
        if self.header_size > self.max_header:
            raise UpstreamError("response headers too large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(bytes(body))

    def on_message_complete(self) -> None:
        self.complete = True


class StreamedResponse(Response):
    """A response whose body is read while it is relayed (``body`` stays empty)."""

    __slots__ = ("_reader", "_writer", "_message", "_parser", "_timeout")

    def __init__(
        self,
        status: int,
        message: _Message,
        parser: httptools.HttpResponseParser,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
    ) -> None:
        super().__init__(status, message.headers, b"")
        self._message = message
        self._parser = parser
        self._reader = reader
        self._writer = writer
        self._timeout = timeout

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as the upstream sends it."""
        message = self._message
        while True:
            if message.pieces:
                yield _drain(message.pieces)
            if message.complete:
                return
            data = await _read(self._reader, self._timeout)
            if not data:
                raise UpstreamError("connection closed by the upstream mid-response")
            _feed(self._parser, data)

    def close(self) -> None:
        self._writer.close()


async def open_stream(
    host: str, port: int, data: bytes, timeout: float, max_header: int
) -> StreamedResponse:
    """Send one serialized request on a new connection and read up to the headers."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(data)
        message = _Message(max_header)
        parser = httptools.HttpResponseParser(message)
        while not message.headers_done:
            chunk = await _read(reader, timeout)
            if not chunk:
                raise UpstreamError("connection closed by the upstream")
            _feed(parser, chunk)
        status = parser.get_status_code()
        if status < 200:
            # We forward no Expect or Upgrade header: an interim answer here is a broken peer.
            raise UpstreamError(f"unexpected interim response {status}")
        return StreamedResponse(status, message, parser, reader, writer, timeout)
    except BaseException:
        writer.close()
        raise


async def relay_stream(
    response: StreamedResponse,
    headers: list[tuple[bytes, bytes]],
    send: Send,
    receive: Receive | None,
    tap: _Tap | None,
) -> None:
    """Send the response to the client as it arrives; stop when the client leaves, also
    while the upstream is between two pieces."""
    seen: list[bytes] = []
    pump = asyncio.ensure_future(_pump(response, headers, send, seen))
    gone = asyncio.ensure_future(_client_gone(receive))
    try:
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        pump.cancel()
        response.close()  # the model server sees its client leave and stops
        try:
            await pump
        except (asyncio.CancelledError, OSError):
            pass
        if tap is not None:
            tap.response(response.status, b"".join(seen))


async def _pump(
    response: StreamedResponse, headers: list[tuple[bytes, bytes]], send: Send, seen: list[bytes]
) -> None:
    size = 0
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    try:
        async for piece in response.pieces():
            if size < TAP_LIMIT:
                seen.append(piece[: TAP_LIMIT - size])
                size += len(seen[-1])
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    except UpstreamError:
        pass  # the headers went out already: ending the body early is all there is to say
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _client_gone(receive: Receive | None) -> None:
    if receive is None:
        await asyncio.Event().wait()  # not known: wait for ever (cancelled at the end)
        return
    while (await receive())["type"] != "http.disconnect":
        pass


def _drain(pieces: deque[bytes]) -> bytes:
    """Everything read so far, as one piece. httptools calls ``on_body`` once per chunk of
    the chunked encoding and a model server sends each SSE event as a chunk, so one read
    often holds many events: sending them one by one cost a send (and a write to the
    client's socket) per token, which made the relay slower than the model server. Nothing
    is held back: what one read brought goes out at once, as before."""
    if len(pieces) == 1:
        return pieces.popleft()
    joined = b"".join(pieces)
    pieces.clear()
    return joined


async def _read(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps every read in a task.
        async with asyncio.timeout(timeout):
            return await reader.read(READ_SIZE)
    except TimeoutError:
        raise UpstreamError("the upstream did not answer in time") from None


def _feed(parser: httptools.HttpResponseParser, data: bytes) -> None:
    try:
        parser.feed_data(data)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
        raise UpstreamError(f"malformed response: {exc}") from None
