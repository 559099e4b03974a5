"""Live status over server-sent events: the details page's readiness and the list's rows
change without a reload. Each stream asks the control API (in process, as the visitor)
once a second and sends only what changed; it ends after STREAM_S and the browser's
EventSource reconnects, so no stream holds up the platform's shutdown or outlives a revoked
session for long."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelport.ui import summary
from modelport.ui.base import Ui, expect, service_path
from modelport.ui.render import SECURITY_HEADERS, segment

POLL_S = 1.0
LIST_POLL_S = 3.0
# uvicorn waits for open responses before it stops: a stream lasts this long, then the
# browser's EventSource reconnects RETRY_MS later.
STREAM_S = 30.0
# Tells EventSource how long to wait before reconnecting once a stream ends.
RETRY_MS = 2000


def event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _changes(
    request: Request, read: Callable[[], Awaitable[Any]], name: str, every_s: float = POLL_S
) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    last: Any = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_S
    while loop.time() < deadline and not await request.is_disconnected():
        state = await read()
        if state is None:
            yield event("gone", {})
            return
        if state != last:
            yield event(name, state)
            last = state
        await asyncio.sleep(every_s)


def _stream(chunks: AsyncIterator[bytes]) -> Response:
    headers = {**SECURITY_HEADERS, "x-accel-buffering": "no"}
    return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)


class LivePages:
    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def service(self, request: Request) -> Response:
        """``status`` events: {ready, reason, replicas} of one service."""
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        client = self.ui.client(request)
        expect(await client.get(service_path(namespace, name)))  # 403/404 before streaming

        async def read() -> dict[str, str] | None:
            reply = await client.get(service_path(namespace, name))
            if not reply.ok:
                return None
            doc = reply.json()
            ready = summary.readiness(doc)
            replicas = str((doc.get("status") or {}).get("replicas", 0))
            return {"ready": ready.status, "reason": ready.reason, "replicas": replicas}

        return _stream(_changes(request, read, "status"))

    async def listing(self, request: Request) -> Response:
        """``statuses`` events: {"NS/NAME": ready} of every service in the list."""
        namespace = request.query_params.get("namespace", "")
        path = f"/v1/namespaces/{segment(namespace)}/inferenceservices"
        client = self.ui.client(request)
        expect(await client.get(path if namespace else "/v1/inferenceservices"))

        async def read() -> dict[str, str] | None:
            reply = await client.get(path if namespace else "/v1/inferenceservices")
            if not reply.ok:
                return None
            return {
                f"{r.namespace}/{r.name}": r.ready.status
                for r in (summary.row(doc, {}) for doc in reply.json()["items"])
            }

        # A list costs the API more than one service: asked less often.
        return _stream(_changes(request, read, "statuses", LIST_POLL_S))
