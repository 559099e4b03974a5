"""Issue 9, finding 1: ``Expect: 100-continue`` and other interim (1xx) answers, and bytes the
gateway did not ask for, must never desynchronise a pooled upstream connection — the next
caller on it would get someone else's answer. Real sockets on loopback throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn

from modelport.gateway.connections import MAX_INTERIM, ConnectionPool, UpstreamError
from modelport.gateway.proxy import Upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _server(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, length


def _answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nx-final: 1\r\n\r\n%s" % (len(body), body)


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/v1/models/m:predict",
        "raw_path": b"/v1/models/m:predict",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
    }


EXPECT = (b"expect", b"100-continue")


def _like_uvicorn(seen: list[bytes], connections: list[int]) -> Handler:
    """Answers 100 Continue when (and only when) the request asks for it, before reading the
    body, as uvicorn does; then echoes the body."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head, length = await _read_head(reader)
                seen.append(head)
                if b"\r\nexpect: 100-continue" in head.lower():
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                    # A pause as on a real network, so the interim answer usually arrives in
                    # a read of its own; the test holds however the bytes are split.
                    await asyncio.sleep(0.02)
                writer.write(_answer(await reader.readexactly(length)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handler


def test_expect_is_not_forwarded_and_callers_get_their_own_answers():
    """The reproduction: A asks with Expect, B follows on the same pooled connection."""
    seen: list[bytes] = []
    connections: list[int] = []

    async def main() -> list[tuple[int, bytes]]:
        server, port = await _server(_like_uvicorn(seen, connections))
        up = Upstream(f"http://127.0.0.1:{port}")
        out = []
        for body in (b'{"a": 1}', b'{"b": 2}', b'{"c": 3}'):
            r = await up.open(_scope(EXPECT), body, [])
            out.append((r.status, r.body))
        await up.close()
        server.close()
        return out

    assert asyncio.run(main()) == [(200, b'{"a": 1}'), (200, b'{"b": 2}'), (200, b'{"c": 3}')]
    assert all(b"expect" not in head.lower() for head in seen)
    assert len(connections) == 1  # still one kept-alive connection


def test_forward_relays_the_final_answer_not_the_interim_one():
    """As the caller sees it, through Upstream.forward (ASGI in, ASGI out)."""
    seen: list[bytes] = []

    async def main() -> list[dict[str, Any]]:
        server, port = await _server(_like_uvicorn(seen, []))
        up = Upstream(f"http://127.0.0.1:{port}")
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        for body in (b"A", b"B"):
            messages = iter([{"type": "http.request", "body": body, "more_body": False}])

            async def receive(messages: Any = messages) -> dict[str, Any]:
                return next(messages)  # type: ignore[no-any-return]

            await up.forward(_scope(EXPECT), receive, send, [])
        await up.close()
        server.close()
        return sent

    sent = asyncio.run(main())
    starts = [m for m in sent if m["type"] == "http.response.start"]
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert [m["status"] for m in starts] == [200, 200]
    assert bodies == [b"A", b"B"]
    for start in starts:  # one final answer's headers, not duplicated
        assert [k for k, _ in start["headers"]].count(b"content-length") == 1


def test_a_real_uvicorn_upstream_with_expect():
    """uvicorn writes its 100 Continue when the app first reads the body: a model server
    does exactly this when the gateway forwards the client's Expect."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def main() -> list[tuple[int, bytes]]:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn has no event for it: poll (pytest's timeout bounds)
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        up = Upstream(f"http://127.0.0.1:{port}")
        out = []
        for body in (b"first", b"second", b"third"):
            r = await up.open(_scope(EXPECT), body, [])
            out.append((r.status, r.body))
        await up.close()
        server.should_exit = True
        await serving
        return out

    assert asyncio.run(main()) == [(200, b"first"), (200, b"second"), (200, b"third")]


INTERIM = [
    pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n"], False, id="100-same-write"),
    pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n"], True, id="100-separate-write"),
    pytest.param([b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"], True, id="103"),
    pytest.param(
        [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 102 Processing\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n",
            b"HTTP/1.1 199 Unknown\r\nx-interim: 1\r\n\r\n",
        ],
        False,
        id="several",
    ),
]


@pytest.mark.parametrize(("interim", "pause"), INTERIM)
def test_interim_answers_are_skipped_even_unasked(interim: list[bytes], pause: bool):
    """RFC 9110 §15.2: a client must parse 1xx answers it did not expect."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head, length = await _read_head(reader)
                body = await reader.readexactly(length)
                for answer in interim:
                    writer.write(answer)
                    if pause:
                        # Each interim answer in a read of its own, as from a slow server;
                        # without the pause they share one read: both ways are tested.
                        await writer.drain()
                        await asyncio.sleep(0.02)
                writer.write(_answer(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> list[tuple[int, bytes, list[tuple[bytes, bytes]]]]:
        server, port = await _server(handler)
        up = Upstream(f"http://127.0.0.1:{port}")
        out = []
        for body in (b"A", b"B", b"C"):
            r = await up.open(_scope(), body, [])
            out.append((r.status, r.body, r.headers))
        await up.close()
        server.close()
        return out

    results = asyncio.run(main())
    assert [(s, b) for s, b, _ in results] == [(200, b"A"), (200, b"B"), (200, b"C")]
    for _, _, headers in results:
        assert headers == [(b"content-length", b"1"), (b"x-final", b"1")]
    assert len(connections) == 1


def _pool_exchange(answer: bytes, timeout_s: float = 30) -> None:
    """One request to an upstream that writes ``answer``; must fail fast with UpstreamError."""

    done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(answer)
        await writer.drain()
        await done.wait()  # nothing more, and the connection stays open
        writer.close()

    async def main() -> None:
        server, port = await _server(handler)
        pool = ConnectionPool(timeout_s=timeout_s)
        try:
            with pytest.raises(UpstreamError):
                request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
                await asyncio.wait_for(pool.request("127.0.0.1", port, request), 3)
            assert not pool._idle.get(("127.0.0.1", port))
        finally:
            done.set()
            pool.close()
            server.close()

    asyncio.run(main())


def test_unasked_switching_protocols_is_an_error():
    # No Upgrade header is ever forwarded, so a 101 leaves the connection in another protocol.
    _pool_exchange(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n")


def test_endless_interim_answers_are_an_error():
    _pool_exchange(b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_INTERIM + 1) + _answer(b"late"))


def _sequence(handler: Handler, pause: float = 0.0) -> tuple[list[tuple[int, bytes]], int]:
    """Three requests in turn through one Upstream; their answers and the connection count."""
    counted: list[int] = []

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted.append(1)
        await handler(reader, writer)

    async def main() -> list[tuple[int, bytes]]:
        server, port = await _server(counting)
        up = Upstream(f"http://127.0.0.1:{port}")
        out = []
        for body in (b"A", b"B", b"C"):
            r = await up.open(_scope(), body, [])
            headers = [k for k, _ in r.headers]
            assert headers.count(b"content-length") == 1, r.headers
            out.append((r.status, r.body))
            # Idle for ``pause``: bytes an upstream sends meanwhile arrive while the
            # connection sits in the pool, where only the pool itself could tell they came.
            await asyncio.sleep(pause)
        await up.close()
        server.close()
        return out

    return asyncio.run(main()), len(counted)


def test_a_connection_that_answered_twice_is_not_reused():
    """An extra response in the same write as the real one must not answer the next caller."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, length = await _read_head(reader)
                body = await reader.readexactly(length)
                writer.write(_answer(body) + _answer(b"smuggled"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    answers, connections = _sequence(handler)
    assert answers == [(200, b"A"), (200, b"B"), (200, b"C")]
    assert connections == 3  # each doubtful connection was dropped


def test_bytes_arriving_on_an_idle_connection_close_it():
    """Stray bytes while the connection sits in the pool: the next caller gets a new one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, length = await _read_head(reader)
                body = await reader.readexactly(length)
                writer.write(_answer(body))
                await writer.drain()
                await asyncio.sleep(0.02)  # after the answer was read: a separate arrival
                writer.write(_answer(b"stray"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    answers, connections = _sequence(handler, pause=0.1)
    assert answers == [(200, b"A"), (200, b"B"), (200, b"C")]
    assert connections == 3


def test_a_cancelled_exchange_never_returns_its_connection():
    """The caller went away mid-exchange: the late answer must not reach the next caller."""

    gave_up, answered_late = asyncio.Event(), asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, length = await _read_head(reader)
                body = await reader.readexactly(length)
                if body != b"slow":
                    writer.write(_answer(body))
                    await writer.drain()
                    continue
                await gave_up.wait()
                try:
                    writer.write(_answer(body))
                    await writer.drain()
                finally:  # written, or refused by a connection the caller closed
                    answered_late.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> tuple[int, bytes]:
        server, port = await _server(handler)
        up = Upstream(f"http://127.0.0.1:{port}")
        await up.open(_scope(), b"warm", [])  # one pooled connection
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(up.open(_scope(), b"slow", []), 0.05)
        gave_up.set()
        await answered_late.wait()  # the slow answer arrives after the caller went away
        r = await up.open(_scope(), b"next", [])
        await up.close()
        server.close()
        return r.status, r.body

    assert asyncio.run(main()) == (200, b"next")
