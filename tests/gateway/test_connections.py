"""The gateway's upstream connections, against small real servers on loopback sockets."""

from __future__ import annotations

import asyncio

import pytest

from modelport.gateway.connections import IDLE_LIMIT_S, ConnectionPool, UpstreamError
from modelport.gateway.proxy import Upstream
from modelport.identity.clock import ManualClock


async def _server(handler):  # noqa: ANN001, ANN202
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def _scope(method: str = "POST", path: bytes = b"/v1/models/m:predict") -> dict:
    return {
        "method": method,
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"a=1",
        "headers": [
            (b"content-type", b"application/json"),
            (b"host", b"client.example"),
            (b"connection", b"keep-alive"),
            (b"kubeflow-userid", b"spoofed@example.com"),
        ],
    }


def _keep_alive(seen: list[bytes], connections: list[int]):  # noqa: ANN202
    """A handler answering every request on a connection "ok", as long as it stays open;
    it records each request and each connection."""

    async def handler(reader, writer):  # noqa: ANN001
        connections.append(1)
        try:
            while True:
                seen.append(await _read_request(reader))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: 1\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handler


def test_request_bytes_and_keep_alive_reuse():
    seen: list[bytes] = []
    counted: list[int] = []

    async def main() -> list:
        server, port = await _server(_keep_alive(seen, counted))
        up = Upstream(f"http://127.0.0.1:{port}")
        out = []
        for _ in range(3):
            r = await up.open(_scope(), b"{}", [(b"kubeflow-userid", b"evil\r\nx-injected: 1")])
            out.append((r.status, r.body, r.headers))
        await up.close()
        server.close()
        return out

    results = asyncio.run(main())
    assert [(s, b) for s, b, _ in results] == [(200, b"ok")] * 3
    assert (b"x-a", b"1") in results[0][2]
    assert len(counted) == 1  # one kept-alive connection for all three
    first = seen[0]
    assert first.startswith(b"POST /v1/models/m:predict?a=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"spoofed" not in first and b"client.example" not in first
    assert b"connection:" not in first.lower()
    # A CR/LF in a claim never splits a header.
    assert b"\r\nx-injected" not in first
    assert b"kubeflow-userid: evilx-injected: 1\r\n" in first
    assert first.endswith(b"content-length: 2\r\n\r\n{}")


def test_a_connection_idle_past_the_limit_is_not_reused():
    """Upstreams close idle keep-alive connections after a while (uvicorn: 5 s); one idle
    for IDLE_LIMIT_S is dropped rather than risked."""
    clock = ManualClock()
    connections: list[int] = []

    async def main() -> list[int]:
        server, port = await _server(_keep_alive([], connections))
        up = Upstream(f"http://127.0.0.1:{port}", clock=clock)
        seen = []
        for idle in (0.0, IDLE_LIMIT_S - 0.1, IDLE_LIMIT_S):
            clock.advance(idle)
            await up.open(_scope(), b"", [])
            seen.append(len(connections))
        await up.close()
        server.close()
        return seen

    # reused after 3.9 s idle, a new connection after 4 s
    assert asyncio.run(main()) == [1, 1, 2]


def test_closed_idle_connection_is_replaced():
    """The upstream closes after each answer without saying so; the next request must
    still succeed on a new connection."""

    closed = asyncio.Event()

    async def handler(reader, writer):  # noqa: ANN001
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    async def main() -> list[int]:
        server, port = await _server(handler)
        up = Upstream(f"http://127.0.0.1:{port}")
        statuses = []
        for _ in range(3):
            statuses.append((await up.open(_scope(), b"", [])).status)
            await closed.wait()  # the pooled connection is closed at the other end
            closed.clear()
        server.close()
        return statuses

    assert asyncio.run(main()) == [200, 200, 200]


def test_head_response_does_not_wait_for_a_body():
    done = asyncio.Event()

    async def handler(reader, writer):  # noqa: ANN001
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        await writer.drain()
        await done.wait()  # never the 1000 bytes: a HEAD answer has no body
        writer.close()

    async def main():  # noqa: ANN202
        server, port = await _server(handler)
        up = Upstream(f"http://127.0.0.1:{port}", timeout_s=3)
        r = await asyncio.wait_for(up.open(_scope("HEAD"), b"", []), 2)
        done.set()
        server.close()
        return r

    r = asyncio.run(main())
    assert r.status == 200 and r.body == b""


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",  # then closed
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n" + b"x" * 70000,
    ],
)
def test_broken_upstream_answers_are_errors(answer: bytes):
    async def handler(reader, writer):  # noqa: ANN001
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def main() -> None:
        server, port = await _server(handler)
        pool = ConnectionPool(timeout_s=5, max_body=65536)
        try:
            with pytest.raises(UpstreamError):
                await pool.request("127.0.0.1", port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        finally:
            server.close()

    asyncio.run(main())


def test_refused_connection_is_reported_as_such():
    async def main() -> None:
        server, port = await _server(lambda r, w: None)
        server.close()
        await server.wait_closed()
        up = Upstream(f"http://127.0.0.1:{port}")
        with pytest.raises(ConnectionRefusedError):
            await up.open(_scope(), b"", [])

    asyncio.run(main())


def test_silent_upstream_times_out():
    done = asyncio.Event()

    async def handler(reader, writer):  # noqa: ANN001
        await done.wait()  # says nothing, and keeps the connection open

    async def main() -> None:
        server, port = await _server(handler)
        up = Upstream(f"http://127.0.0.1:{port}", timeout_s=0.5)
        try:
            with pytest.raises(UpstreamError, match="in time"):
                await up.open(_scope(), b"", [])
        finally:
            done.set()
            server.close()

    asyncio.run(main())


def test_unforwardable_target_is_the_clients_error():
    from modelport.gateway.connections import BadTarget

    async def main() -> None:
        up = Upstream("http://127.0.0.1:9")
        with pytest.raises(BadTarget):
            await up.open(_scope(path=b"/v1/models/a b:predict"), b"", [])

    asyncio.run(main())
