"""A follower's router applies containerConcurrency and the payload logger as the leader's
does (control/follower_routing.py, follower_limits.py): against real replica stand-ins and a
real payload sink over loopback sockets, with the revision's spec read from a real store."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from modelport.control.follower_limits import EndpointLimiter
from modelport.control.follower_routing import (
    DemandReport,
    EndpointBook,
    FollowerRouter,
    PublishedRevision,
    PublishedService,
)
from modelport.control.store import Store
from modelport.gateway.payload_logger import PayloadLogger
from modelport.gateway.proxy import Upstream

KEY = (b"x-modelport-replica-key", b"k")


class Replica:
    """Answers each request once the test lets it, counting how many it holds at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self.gate = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await asyncio.wait_for(self.gate.wait(), 20)
        finally:
            self.active -= 1
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"echo": ' + body + b"}"})


class Sink:
    """A payload logger's destination: records each CloudEvent's headers and body."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = (await receive()).get("body", b"")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.events.append((headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _isvc(**predictor: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {
            "predictor": {
                **predictor,
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m"},
            }
        },
    }


def _router(tmp_path: Path, document: dict[str, Any], address: str, **kw: Any) -> FollowerRouter:
    store = Store.open(f"sqlite:///{tmp_path}/control.db")
    store.add_revision("default", "iris", "k", document, 0)
    book = EndpointBook(store.engine)  # filled by hand: the leader's publication
    rev = PublishedRevision(1, 100, 30.0, [(address, KEY)])
    book.services[("default", "iris")] = PublishedService({1: rev})
    return FollowerRouter(book, DemandReport(store.engine, "follower"), store, **kw)


async def _call(router: FollowerRouter, body: bytes) -> httpx.Response:
    """One request through the router, as the gateway would send it (an ASGI app here)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await router.forward("default", "iris", scope, receive, send, [], upstream)

    upstream = Upstream("http://127.0.0.1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as c:
        return await c.post(
            "/v1/models/iris:predict", content=body, headers={"content-type": "application/json"}
        )


async def _until(condition: Any) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition never held")


def test_container_concurrency_queues_requests_past_the_replicas_limit(tmp_path: Path):
    async def scenario() -> None:
        replica = Replica()
        async with serving(replica) as at:
            router = _router(tmp_path, _isvc(containerConcurrency=1), at)
            calls = [asyncio.create_task(_call(router, b"%d" % n)) for n in range(3)]
            await _until(lambda: replica.active == 1)
            await asyncio.sleep(0.3)  # the others had every chance to reach it: they wait
            assert replica.active == 1
            replica.gate.set()
            answers = await asyncio.gather(*calls)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert replica.most == 1

    asyncio.run(scenario())


def test_past_the_queue_a_request_gets_knatives_503(tmp_path: Path):
    async def scenario() -> None:
        replica = Replica()
        async with serving(replica) as at:
            limiter = EndpointLimiter(depth_per_slot=1)  # one in flight, one waiting
            router = _router(tmp_path, _isvc(containerConcurrency=1), at, limiter=limiter)
            calls = [asyncio.create_task(_call(router, b"1")) for _ in range(2)]
            await _until(lambda: replica.active == 1 and limiter.in_flight(("default", "iris", 1)))
            refused = await _call(router, b"1")
            replica.gate.set()
            answers = await asyncio.gather(*calls)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert "pending request queue full" in refused.json()["error"]
        assert [a.status_code for a in answers] == [200, 200]

    asyncio.run(scenario())


def test_the_payload_logger_sees_the_request_and_the_answer(tmp_path: Path):
    async def scenario() -> None:
        replica, sink = Replica(), Sink()
        replica.gate.set()
        async with serving(replica) as at, serving(sink) as sink_at:
            logger = PayloadLogger()
            await logger.start()
            try:
                spec = _isvc(logger={"mode": "all", "url": f"http://{sink_at}/"})
                router = _router(tmp_path, spec, at, logger=logger)
                answer = await _call(router, b'{"instances": [[1]]}')
                await _until(lambda: len(sink.events) == 2)
            finally:
                await logger.close()
        assert answer.status_code == 200
        kinds = {h["ce-type"]: (h, body) for h, body in sink.events}
        request, response = (
            kinds["org.kubeflow.serving.inference.request"],
            kinds["org.kubeflow.serving.inference.response"],
        )
        assert request[1] == b'{"instances": [[1]]}'
        assert response[1] == b'{"echo": {"instances": [[1]]}}'
        assert request[0]["ce-id"] == response[0]["ce-id"]
        assert request[0]["ce-inferenceservicename"] == "iris"
        assert request[0]["ce-endpoint"] == "iris-predictor-00001"

    asyncio.run(scenario())


def test_without_a_limit_requests_go_straight_to_the_replica(tmp_path: Path):
    async def scenario() -> None:
        replica = Replica()
        async with serving(replica) as at:
            router = _router(tmp_path, _isvc(), at)
            calls = [asyncio.create_task(_call(router, b"1")) for _ in range(3)]
            await _until(lambda: replica.active == 3)
            replica.gate.set()
            answers = await asyncio.gather(*calls)
        assert [a.status_code for a in answers] == [200] * 3

    asyncio.run(scenario())


class Named:
    """A replica stand-in that answers with its name and the key it was sent."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        key = dict(scope["headers"]).get(KEY[0], b"").decode()
        body = b'{"by": "%s", "key": "%s"}' % (self.name.encode(), key.encode())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def test_explain_calls_go_to_the_published_explainer(tmp_path: Path):
    """Through the real publication: the leader's rows, read back by a follower's book."""
    from modelport.control.endpoints import create_tables, publish

    async def scenario() -> None:
        async with serving(Named("predictor")) as p_at, serving(Named("explainer")) as e_at:
            router = _router(tmp_path, _isvc(), p_at)
            create_tables(router.book.engine)
            row = ("default", "iris", 1, 100, p_at, KEY[0].decode(), "pk", 30.0, e_at, "ek")
            publish(router.book.engine, [row], "leader")
            assert router.book.read()

            async def ask(path: str) -> dict[str, str]:
                async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
                    if scope["type"] == "http":
                        await router.forward("default", "iris", scope, receive, send, [], up)

                up = Upstream("http://127.0.0.1")
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                    answer = await c.post(path, content=b"{}")
                assert answer.status_code == 200, answer.text
                return answer.json()  # type: ignore[no-any-return]

            assert await ask("/v1/models/iris:explain") == {"by": "explainer", "key": "ek"}
            assert await ask("/v1/models/iris:predict") == {"by": "predictor", "key": "pk"}
            assert await ask("/v2/models/iris/explain") == {"by": "predictor", "key": "pk"}

    asyncio.run(scenario())
