"""A standby relays the control plane to the leader (control/leader_forward.py): over real
sockets to a real server standing in for the leader, found through the lease and the
published address in a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from modelport.control.leader_forward import (
    MARKER,
    NO_LEADER,
    NO_LONGER_LEADING,
    LeaderForward,
    LeaderLocator,
    marker_value,
)
from modelport.control.leadership import Lease, forget_address, leader_address, publish_address
from modelport.gateway.proxy import Upstream
from tests.helpers.pgdatabase import fresh_database
from tests.pgserver import start_pg_server

SECRET = "the instances' shared client secret"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield server.url
    server.stop()


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_database(pg_url))
    yield engine
    engine.dispose()


class Leader:
    """What the leader's gateway would answer: it records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release_second_event = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append({**scope, "body": body})
        if scope["path"].endswith("/events"):
            await self._events(send)
            return
        answer = b'{"from": "leader"}'
        headers = [(b"content-type", b"application/json"), (b"x-leader", b"yes")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _events(self, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        # The second event only after the client has read the first: a relay that buffered
        # the stream would never deliver it.
        await asyncio.wait_for(self.release_second_event.wait(), 20)
        await send({"type": "http.response.body", "body": b"data: two\n\n"})


async def local_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The standby's own (idle) application."""
    marker = [v for k, v in scope["headers"] if k == MARKER]
    body = b'{"from": "local", "marker": %d}' % len(marker)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    sock = _socket()
    # As the platform runs it without --trusted-proxy: X-Forwarded-For is not heeded.
    config = uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _standby(engine: Engine, leading: list[bool]) -> Any:
    forward = LeaderForward(
        lambda: leading[0],
        LeaderLocator(engine, "standby 1", ttl_s=0.0),
        SECRET,
        Upstream("http://127.0.0.1"),
    )
    return forward.wrap(local_app, "/api", frozenset({"/about-this-instance"}))


def _mounted(app: Any) -> Any:
    """As the gateway mounts it at /api: the app sees the path without the prefix."""

    async def gateway(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            rest = scope["path"].removeprefix("/api") or "/"
            scope = {**scope, "path": rest, "raw_path": rest.encode()}
        await app(scope, receive, send)

    return gateway


def _lead(engine: Engine, address: str) -> Lease:
    lease = Lease(engine, "leader 1")
    assert lease.try_hold()
    publish_address(engine, "leader 1", address)
    return lease


def test_the_leaders_address_is_read_only_while_its_lease_holds(engine: Engine):
    lease = Lease(engine, "leader 1")
    publish_address(engine, "leader 1", "10.0.0.1:8000")
    assert leader_address(engine) is None  # published, but the lease is nobody's yet
    assert lease.try_hold()
    assert leader_address(engine) == ("leader 1", "10.0.0.1:8000")
    publish_address(engine, "leader 1", "10.0.0.1:9000")  # a restart on another port
    assert leader_address(engine) == ("leader 1", "10.0.0.1:9000")
    lease.release()
    assert leader_address(engine) is None
    assert lease.try_hold()
    forget_address(engine, "leader 1")
    assert leader_address(engine) is None


def test_a_standby_relays_the_request_as_sent_and_the_answer_as_received(engine: Engine):
    async def scenario() -> None:
        leader = Leader()
        async with serving(leader) as leader_at, serving(_mounted(_standby(engine, [False]))) as at:
            _lead(engine, leader_at)
            async with httpx.AsyncClient(base_url=f"http://{at}") as client:
                r = await client.post(
                    "/api/v1/apply?namespace=team%20a&dry=1",
                    content=b"kind: InferenceService",
                    headers={
                        "Authorization": "Bearer the-callers-token",
                        "Cookie": "authservice_session=s",
                        "Host": "models.example.com",
                        "kubeflow-userid": "forged@example.com",
                        "X-Forwarded-For": "203.0.113.9",
                        MARKER.decode(): "forged",
                    },
                )
        assert (r.status_code, r.json(), r.headers["x-leader"]) == (201, {"from": "leader"}, "yes")
        (seen,) = leader.seen  # sent once
        headers = dict(seen["headers"])
        assert (seen["method"], seen["path"]) == ("POST", "/api/v1/apply")
        assert seen["query_string"] == b"namespace=team%20a&dry=1"
        assert seen["body"] == b"kind: InferenceService"
        assert headers[b"authorization"] == b"Bearer the-callers-token"
        assert headers[b"cookie"] == b"authservice_session=s"
        assert headers[b"host"] == b"models.example.com"
        assert b"kubeflow-userid" not in headers  # the gateway alone sets identity headers
        # As a proxy: the peer the standby heard from, and the scheme the client used.
        assert headers[b"x-forwarded-for"] == b"203.0.113.9, 127.0.0.1"
        assert headers[b"x-forwarded-proto"] == b"http"
        markers = [v for k, v in seen["headers"] if k == MARKER]
        assert markers == [marker_value(SECRET)]  # the client's copy is gone, ours is there

    asyncio.run(scenario())


def test_an_event_stream_passes_through_piece_by_piece(engine: Engine):
    async def scenario() -> None:
        leader = Leader()
        async with serving(leader) as leader_at, serving(_mounted(_standby(engine, [False]))) as at:
            _lead(engine, leader_at)
            async with (
                httpx.AsyncClient(base_url=f"http://{at}", timeout=30) as client,
                client.stream("GET", "/api/v1/events") as r,
            ):
                lines = r.aiter_lines()
                assert await anext(lines) == "data: one"
                leader.release_second_event.set()
                rest = [line async for line in lines if line]
        assert rest == ["data: two"]

    asyncio.run(scenario())


def test_without_a_leader_a_standby_says_so_in_json(engine: Engine):
    async def scenario() -> None:
        async with serving(_mounted(_standby(engine, [False]))) as at:
            Lease(engine, "leader 1")  # the lease exists; nobody holds it
            async with httpx.AsyncClient(base_url=f"http://{at}") as client:
                r = await client.get("/api/v1/namespaces")
                here = await client.get("/api/about-this-instance")
        assert r.status_code == 503 and r.json() == {"error": NO_LEADER}
        assert r.headers["retry-after"] and r.headers["content-type"] == "application/json"
        assert here.json() == {"from": "local", "marker": 0}  # says something of itself

    asyncio.run(scenario())


def test_a_leader_that_does_not_answer_gives_503_not_a_hang(engine: Engine):
    async def scenario() -> None:
        gone = _socket()
        address = f"127.0.0.1:{gone.getsockname()[1]}"
        gone.close()  # nothing listens there now: refused
        async with serving(_mounted(_standby(engine, [False]))) as at:
            _lead(engine, address)
            async with httpx.AsyncClient(base_url=f"http://{at}") as client:
                r = await client.delete("/api/v1/namespaces/default/inferenceservices/x")
        assert r.status_code == 503 and "did not answer" in r.json()["error"]

    asyncio.run(scenario())


def test_the_leader_serves_locally_and_never_passes_a_marker_on(engine: Engine):
    async def scenario() -> None:
        leading = [True]
        async with serving(_mounted(_standby(engine, leading))) as at:
            async with httpx.AsyncClient(base_url=f"http://{at}") as client:
                genuine = {MARKER.decode(): marker_value(SECRET).decode()}
                r = await client.get("/api/v1/namespaces", headers=genuine)
                assert r.json() == {"from": "local", "marker": 0}
                forged = {MARKER.decode(): "x" * 64}
                r = await client.get("/api/v1/namespaces", headers=forged)
                assert r.json() == {"from": "local", "marker": 0}
                # Forwarded here by a standby, but this instance no longer leads: it says
                # so rather than passing the request on again (or answering from its idle
                # controller).
                leading[0] = False
                r = await client.get("/api/v1/namespaces", headers=genuine)
                assert r.status_code == 503 and r.json() == {"error": NO_LONGER_LEADING}

    asyncio.run(scenario())


def test_a_standby_whose_own_lease_is_found_serves_locally(engine: Engine):
    async def scenario() -> None:
        lease = Lease(engine, "standby 1")
        assert lease.try_hold()
        publish_address(engine, "standby 1", "127.0.0.1:1")
        async with serving(_mounted(_standby(engine, [False]))) as at:
            async with httpx.AsyncClient(base_url=f"http://{at}") as client:
                r = await client.get("/api/v1/namespaces")
        assert r.json() == {"from": "local", "marker": 0}

    asyncio.run(scenario())


def test_a_leader_lost_mid_request_is_not_reported_as_safe_to_repeat(engine: Engine):
    async def scenario() -> None:
        got: list[bytes] = []

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.append(await reader.read(65536))  # the request arrived; no answer comes
            writer.close()

        leader = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = leader.sockets[0].getsockname()[1]
        try:
            async with serving(_mounted(_standby(engine, [False]))) as at:
                _lead(engine, f"127.0.0.1:{port}")
                async with httpx.AsyncClient(base_url=f"http://{at}") as client:
                    r = await client.post("/api/v1/apply", content=b"kind: InferenceService")
        finally:
            leader.close()
        assert len(got) == 1 and got[0].startswith(b"POST /api/v1/apply ")
        assert r.status_code == 502 and "may or may not have been carried out" in r.text
        assert "retry-after" not in r.headers

    asyncio.run(scenario())
