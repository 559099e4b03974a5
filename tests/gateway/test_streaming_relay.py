"""gateway/streaming.py against a real upstream socket on 127.0.0.1: every event of a chunked
SSE answer reaches the client in order, the events one upstream read brought go out as one
send (not one per token), the payload logger's tap sees the start, and an upstream that
stops answering ends the body instead of hanging the client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from modelport.gateway.streaming import open_stream, relay_stream

EVENTS = [f'data: {{"n": {i}}}\n\n'.encode() for i in range(40)]
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
REQUEST = b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"


def chunked(events: list[bytes], *, last: bool) -> bytes:
    """Each event as one chunk of the chunked encoding, as a model server frames them."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return body + (b"0\r\n\r\n" if last else b"")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def relay_from(handler: Handler, timeout: float = 5.0) -> tuple[list[dict[str, Any]], bytes]:
    """Serve ``handler`` on 127.0.0.1, relay its answer; the ASGI messages sent to the
    client and what the tap saw."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sent: list[dict[str, Any]] = []
    tapped: list[bytes] = []

    class Tap:
        def response(self, status: int, body: bytes) -> None:
            tapped.append(body)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        response = await open_stream("127.0.0.1", port, REQUEST, timeout, 64 * 1024)
        await relay_stream(response, response.headers, send, None, Tap())
    finally:
        server.close()
        await server.wait_closed()
    return sent, tapped[0]


def bodies(sent: list[dict[str, Any]]) -> list[bytes]:
    return [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]


def test_events_of_one_read_go_out_together_and_in_order() -> None:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + chunked(EVENTS, last=True))  # one write: a few KiB
        await writer.drain()
        writer.close()

    sent, tapped = asyncio.run(relay_from(upstream))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert b"".join(bodies(sent)) == b"".join(EVENTS)
    # One send per token would be 40; the events of a read are joined.
    assert len(bodies(sent)) < len(EVENTS)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert tapped == b"".join(EVENTS)


def test_events_written_apart_are_each_relayed() -> None:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD)
        for event in EVENTS[:3]:
            writer.write(chunked([event], last=False))
            await writer.drain()
            await asyncio.sleep(0.05)  # separate reads on the gateway's side
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    sent, _ = asyncio.run(relay_from(upstream))
    assert b"".join(bodies(sent)) == b"".join(EVENTS[:3])
    assert sent[-1]["more_body"] is False


def test_an_upstream_that_stops_answering_ends_the_body() -> None:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + chunked(EVENTS[:2], last=False))
        await writer.drain()
        await reader.read()  # never finishes: waits until the relay's timeout closes it

    sent, _ = asyncio.run(relay_from(upstream, timeout=0.5))
    assert b"".join(bodies(sent)) == b"".join(EVENTS[:2])
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
