"""Headers the gateway alone may set: never taken from a client on the way up (replica key,
identity, Expect), never taken from model code on the way down (the gateway's own cookies —
issue 9, finding 9b: session fixation on the shared origin). Real sockets on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelport.gateway.proxy import Upstream
from modelport.gateway.sessions import COOKIE, STATE_COOKIE
from modelport.protocol.replica_key import REPLICA_KEY_HEADER


async def _one_answer_server(answer: bytes, seen: list[bytes]) -> tuple[asyncio.Server, int]:
    """Records each request head and answers it with ``answer``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _forward(
    answer: bytes, headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> tuple[list[bytes], dict[str, Any], bytes]:
    """One request through Upstream.forward; (request heads seen upstream, start, body)."""
    seen: list[bytes] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        server, port = await _one_answer_server(answer, seen)
        up = Upstream(f"http://127.0.0.1:{port}")
        scope = {
            "method": "POST",
            "path": "/v2/models/m/infer",
            "raw_path": b"/v2/models/m/infer",
            "query_string": b"",
            "headers": headers,
        }
        await up.forward(scope, receive, send, extra)
        await up.close()
        server.close()

    asyncio.run(main())
    return seen, sent[0], sent[1]["body"]


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_client_copies_of_gateway_headers_never_reach_the_replica():
    client = [
        (b"content-type", b"application/json"),
        (REPLICA_KEY_HEADER, b"client-chosen"),
        (REPLICA_KEY_HEADER, b"another"),
        (b"kubeflow-userid", b"spoofed@example.com"),
        (b"kubeflow_userid", b"spoofed-underscore@example.com"),  # CGI reads it the same
        (b"kubeflow_groups", b"spoofed-admins"),
        (b"x_request_id", b"underscores elsewhere pass"),
        (b"expect", b"100-continue"),
        (b"x-request-id", b"kept"),
    ]
    extra = [(REPLICA_KEY_HEADER, b"the-real-key"), (b"kubeflow-userid", b"me@example.com")]
    seen, start, body = _forward(OK, client, extra)
    assert start["status"] == 200 and body == b"ok"
    lines = seen[0].lower().split(b"\r\n")
    assert [line for line in lines if line.startswith(REPLICA_KEY_HEADER + b":")] == [
        REPLICA_KEY_HEADER + b": the-real-key"
    ]
    assert b"kubeflow-userid: me@example.com" in lines
    assert b"client-chosen" not in seen[0] and b"spoofed" not in seen[0]
    assert not any(line.startswith(b"expect:") for line in lines)
    assert b"x-request-id: kept" in lines
    assert b"x_request_id: underscores elsewhere pass" in lines


OWN = [
    f"{COOKIE}=attacker-session; Path=/; Max-Age=86400",
    f"{STATE_COOKIE}=attacker-binding; Path=/",
    f"{STATE_COOKIE}_0123abcd=x; Path=/",  # one state cookie per pending login
    f"  {COOKIE} =spaced; Path=/",
    f"{COOKIE.upper()}=shouting",
    f"{COOKIE}",  # no "=": browsers keep a nameless cookie sent back as a bare name
    f"{COOKIE}=; Max-Age=0",  # logging the visitor out is not the model's call either
]
FOREIGN = [
    "theme=dark; Path=/",
    f"{COOKIE}_hint=1",  # another name, merely alike
    f"my{COOKIE}=1",
    "lang=en; Path=/; Comment=authservice_session",
]


@pytest.mark.parametrize("set_cookie", OWN)
def test_upstream_cannot_set_the_gateways_cookies(set_cookie: str):
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nset-cookie: theme=dark\r\n"
        b"set-cookie: " + set_cookie.encode() + b"\r\n\r\nok"
    )
    _, start, body = _forward(answer, [], [])
    assert body == b"ok"
    cookies = [v for k, v in start["headers"] if k == b"set-cookie"]
    assert cookies == [b"theme=dark"]


def test_upstream_cookies_of_other_names_pass():
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
        + b"".join(b"set-cookie: " + c.encode() + b"\r\n" for c in FOREIGN)
        + b"\r\nok"
    )
    _, start, _ = _forward(answer, [], [])
    cookies = [v.decode() for k, v in start["headers"] if k == b"set-cookie"]
    assert cookies == FOREIGN


def test_the_replica_key_is_not_relayed_back_to_the_client():
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n" + REPLICA_KEY_HEADER + b": k\r\n\r\nok"
    _, start, _ = _forward(answer, [], [(REPLICA_KEY_HEADER, b"k")])
    assert all(k != REPLICA_KEY_HEADER for k, _ in start["headers"])
