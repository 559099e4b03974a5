"""The payload logger against a real HTTP sink on loopback (an aiohttp server on a free port)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp import web

from modelport.gateway import payload_logger
from modelport.gateway.payload_logger import PayloadLogger, rfc3339_nano, wants
from modelport.identity.clock import ManualClock

WAIT_S = 30.0  # generous: only reached when something is broken
RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    url: str
    events: list[Received] = field(default_factory=list)
    status: int = 200
    hold: asyncio.Event | None = None
    arrived: int = 0

    async def wait_for(self, n: int) -> list[Received]:
        await asyncio.wait_for(_until(lambda: len(self.events) >= n), WAIT_S)
        return self.events

    def by_type(self) -> dict[str, Received]:
        return {e.headers["Ce-Type"]: e for e in self.events}


@asynccontextmanager
async def sink() -> AsyncIterator[Sink]:
    app = web.Application()
    state = Sink(url="")

    async def receive(request: web.Request) -> web.Response:
        state.arrived += 1
        if state.hold is not None:
            await state.hold.wait()
        state.events.append(
            Received(request.path, request.method, dict(request.headers), await request.read())
        )
        return web.Response(status=state.status)

    app.router.add_route("*", "/{tail:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/events"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        await runner.cleanup()


def event(url: str, kind: str = "request", **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "url": url,
        "kind": kind,
        "request_id": "4b2e9f0c-1111-2222-3333-444455556666",
        "body": b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}',
        "content_type": "application/json",
        "inference_service": "sklearn-iris",
        "namespace": "kubeflow-user",
        "component": "predictor",
        "endpoint": "default",
        "source": "sklearn-iris-predictor-00001-deployment-abc",
    }
    fields.update(overrides)
    return fields


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def parse_time(text: str) -> float:
    assert RFC3339_NANO.fullmatch(text), text
    whole, _, rest = text[:-1].partition(".")
    base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + rest) if rest else 0.0)


def test_request_and_response_events_carry_kserves_headers_and_the_exact_body() -> None:
    async def main() -> None:
        async with sink() as s:
            logger = PayloadLogger()
            await logger.start()
            before = time.time()
            request_body = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
            response_body = b'{"predictions": [1]}\n\x00\xff'  # bytes go through untouched
            assert logger.log(**event(s.url, "request", body=request_body))
            assert logger.log(**event(s.url, "response", body=response_body))
            await s.wait_for(2)
            after = time.time()
            await logger.close()

            got = s.by_type()
            req = got["org.kubeflow.serving.inference.request"]
            res = got["org.kubeflow.serving.inference.response"]
            for e, body in ((req, request_body), (res, response_body)):
                assert (e.method, e.path, e.body) == ("POST", "/events", body)
                h = e.headers
                assert h["Ce-Specversion"] == "1.0"
                assert h["Ce-Id"] == "4b2e9f0c-1111-2222-3333-444455556666"
                assert h["Ce-Source"] == "sklearn-iris-predictor-00001-deployment-abc"
                assert h["Ce-Inferenceservicename"] == "sklearn-iris"
                assert h["Ce-Namespace"] == "kubeflow-user"
                assert h["Ce-Component"] == "predictor"
                assert h["Ce-Endpoint"] == "default"
                assert h["Ce-Metadata"] == "{}"
                assert h["Content-Type"] == "application/json"
                assert "Ce-Annotations" not in h
                occurred = parse_time(h["Ce-Time"])
                assert before - 1 <= occurred <= after + 1
                assert parse_time(h["Ce-Recordedtime"]) >= occurred - 1e-6
            assert req.headers["Ce-Id"] == res.headers["Ce-Id"]
            assert (logger.sent, logger.failed, logger.dropped) == (2, 0, 0)

    run(main)


def test_metadata_and_annotations_are_json_headers() -> None:
    async def main() -> None:
        async with sink() as s:
            logger = PayloadLogger()
            await logger.start()
            logger.log(
                **event(s.url),
                metadata={"X-Request-Id": ["r1"], "Authorization-Scope": ["a", "b"]},
                annotations={"team": "fraud<&>"},
            )
            (e,) = await s.wait_for(1)
            await logger.close()
            assert e.headers["Ce-Metadata"] == (
                '{"Authorization-Scope":["a","b"],"X-Request-Id":["r1"]}'
            )
            assert e.headers["Ce-Annotations"] == '{"team":"fraud\\u003c\\u0026\\u003e"}'
            assert json.loads(e.headers["Ce-Annotations"]) == {"team": "fraud<&>"}

    run(main)


def test_without_a_content_type_none_is_sent() -> None:
    async def main() -> None:
        async with sink() as s:
            logger = PayloadLogger()
            await logger.start()
            logger.log(**event(s.url, content_type=""))
            (e,) = await s.wait_for(1)
            await logger.close()
            assert "Content-Type" not in e.headers

    run(main)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("all", {"request", "response"}), ("request", {"request"}), ("response", {"response"})],
)
def test_mode_filters_what_reaches_the_sink(mode: str, expected: set[str]) -> None:
    async def main() -> None:
        async with sink() as s:
            logger = PayloadLogger()
            await logger.start()
            for kind in ("request", "response"):
                if wants(mode, kind):
                    logger.log(**event(s.url, kind))
            await logger.close()  # sends everything queued before returning
            assert {e.headers["Ce-Type"].rsplit(".", 1)[1] for e in s.events} == expected
            assert logger.sent == len(expected)

    run(main)


def test_wants_rejects_unknown_modes_and_kinds() -> None:
    assert wants("all", "response") and not wants("request", "response")
    with pytest.raises(ValueError, match="mode"):
        wants("both", "request")
    with pytest.raises(ValueError, match="kind"):
        wants("all", "explain")
    with pytest.raises(ValueError, match="kind"):
        PayloadLogger().log(**event("http://127.0.0.1:9/", kind="explain"))


def test_a_full_queue_drops_instead_of_blocking() -> None:
    async def main() -> None:
        async with sink() as s:
            logger = PayloadLogger(queue_size=2, workers=1)
            # Not started yet: nothing drains the queue, and log() must still return.
            assert logger.log(**event(s.url, request_id="a"))
            assert logger.log(**event(s.url, request_id="b"))
            assert not logger.log(**event(s.url, request_id="c"))
            assert logger.dropped == 1
            await logger.start()
            await s.wait_for(2)
            await logger.close()
            assert [e.headers["Ce-Id"] for e in s.events] == ["a", "b"]
            assert (logger.sent, logger.dropped) == (2, 1)

    run(main)


def test_a_stuck_sink_fills_the_queue_and_log_keeps_returning() -> None:
    async def main() -> None:
        async with sink() as s:
            s.hold = asyncio.Event()
            logger = PayloadLogger(queue_size=3, workers=1, timeout_s=60)
            await logger.start()
            assert logger.log(**event(s.url, request_id="first"))
            # Let the worker take the first event and get stuck on the sink.
            await asyncio.wait_for(_until(lambda: s.arrived == 1), WAIT_S)
            accepted = [logger.log(**event(s.url, request_id=str(i))) for i in range(10)]
            assert accepted == [True] * 3 + [False] * 7
            assert logger.dropped == 7
            s.hold.set()
            await s.wait_for(4)
            await logger.close()
            assert logger.sent == 4

    run(main)


def test_an_unreachable_sink_is_counted_as_failed_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: connections are refused.
    url = f"http://127.0.0.1:{port}/events"

    async def main() -> None:
        logger = PayloadLogger(timeout_s=10, clock=clock)
        await logger.start()
        for i in range(3):
            assert logger.log(**event(url, request_id=str(i)))
        await asyncio.wait_for(_until(lambda: logger.failed == 3), WAIT_S)
        clock.advance(payload_logger.WARN_INTERVAL_S)
        assert logger.log(**event(url, request_id="3"))
        await asyncio.wait_for(_until(lambda: logger.failed == 4), WAIT_S)
        await logger.close()
        assert (logger.sent, logger.failed, logger.dropped) == (0, 4, 0)

    with caplog.at_level(logging.WARNING, logger=payload_logger.__name__):
        run(main)
    warnings = [r.getMessage() for r in caplog.records if r.name == payload_logger.__name__]
    # rate-limited: one warning for the first three failures, the next one after the interval
    assert len(warnings) == 2
    assert str(port) in warnings[0] and "more since" not in warnings[0]
    assert "(and 2 more since the last warning)" in warnings[1]


def test_a_sink_answering_an_error_status_is_counted_as_failed() -> None:
    async def main() -> None:
        async with sink() as s:
            s.status = 500
            logger = PayloadLogger()
            await logger.start()
            logger.log(**event(s.url))
            await s.wait_for(1)
            await logger.close()
            assert (logger.sent, logger.failed) == (0, 1)

    run(main)


def test_after_close_events_are_dropped() -> None:
    async def main() -> None:
        logger = PayloadLogger()
        await logger.start()
        await logger.close()
        assert not logger.log(**event("http://127.0.0.1:9/"))
        assert logger.dropped == 1

    run(main)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
    ],
)
def test_times_are_formatted_as_go_rfc3339_nano(ns: int, text: str) -> None:
    assert rfc3339_nano(ns) == text


async def _until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition()`` holds; callers bound it with ``asyncio.wait_for``.

    The logger posts from its own task and says nothing when an event is out, so the test
    looks again every 10 ms rather than waiting a fixed time.
    """
    while not condition():
        await asyncio.sleep(0.01)
