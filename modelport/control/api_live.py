"""Live data of one service for the web UI, each authorized as the API's ``logs`` route
(the view role in the service's namespace):

- a live tail of its replica logs over server-sent events (the Logs tab):
  ``GET /api/v1/namespaces/NS/inferenceservices/NAME/logs/stream?component=predictor``;
- its metrics over time (the Metrics tab; metrics_history.py says what and how):
  ``GET /api/v1/namespaces/NS/inferenceservices/NAME/metrics``;
- its events (the Status & events tab): ``GET …/NAME/events``.

The stream starts with the last lines of each log file of the revisions that take traffic,
then follows them (and files of replicas started since) as they grow, as ``tail -F`` would.
The caller's view role is checked again every few seconds, so a revoked contributor's tail
stops (``end`` event). Each response lasts STREAM_S at most; EventSource then reconnects with
the offsets it was sent (Last-Event-ID) and the tail goes on without repeating itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelport.access.authz import VIEW
from modelport.control.backends.process import tail
from modelport.control.metrics_history import INTERVAL_S, MetricsHistory
from modelport.control.operations import ApiContext, Control, ControlError
from modelport.control.store import ISVC

POLL_S = 0.5
RECHECK_S = 5.0
# uvicorn waits for open responses before it stops: a stream lasts this long, then the
# browser reconnects and goes on where it was.
STREAM_S = 30.0
RETRY_MS = 1000
FIRST_LINES = 100
# Read at most this much of one file per poll: a replica printing fast cannot make one
# stream hold megabytes in memory.
CHUNK = 64 << 10


def log_files(ctx: ApiContext, namespace: str, name: str, component: str) -> list[Path]:
    """NAME-COMPONENT-REVISION-SLOT.log of the revisions that take traffic (as the API's
    ``logs`` route picks them), or every one when none does."""
    base = ctx.controller.config.data_dir / "logs" / namespace / name
    files = sorted(base.glob(f"{name}-{component}-*.log")) if base.is_dir() else []
    svc = ctx.controller.lookup(namespace, name)
    if svc is not None and svc.traffic:
        current = {f"-{component}-{n:05d}-" for n, _ in svc.traffic}
        chosen = [f for f in files if any(c in f.name for c in current)]
        return chosen or files
    return files


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Follower:
    """Where each followed file was read up to."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}

    def start(self, path: Path) -> list[str]:
        """The file's last lines; from now on it is followed from its end."""
        try:
            self.offsets[path] = path.stat().st_size
        except FileNotFoundError:
            self.offsets[path] = 0
        return tail(path, FIRST_LINES)

    def new_lines(self, path: Path) -> list[str]:
        offset = self.offsets.get(path, 0)
        try:
            with path.open("rb") as f:
                size = f.seek(0, 2)
                if size < offset:  # truncated or replaced: start again
                    offset = 0
                f.seek(offset)
                data = f.read(CHUNK)
        except FileNotFoundError:
            return []
        self.offsets[path] = offset + len(data)
        data = self.partial.pop(path, b"") + data
        lines = data.split(b"\n")
        if lines[-1]:
            self.partial[path] = lines[-1]  # an unfinished line waits for its end
        return [line.decode("utf-8", "replace") for line in lines[:-1]]


def _offsets(last_event_id: str) -> dict[str, int]:
    """File name -> offset from a Last-Event-ID this stream sent (anything else: none)."""
    found: dict[str, int] = {}
    for part in last_event_id.split(",")[:64]:
        name, _, offset = part.rpartition(":")
        if name.endswith(".log") and "/" not in name and offset.isdigit():
            found[name] = int(offset)
    return found


class LogStream:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.control = Control(ctx)

    async def stream(self, request: Request) -> Response:
        """
        summary: Follow the service's replica logs (server-sent events).
        parameters:
          - {name: component, in: query, schema: {type: string, enum: [predictor, transformer]}}
        responses:
          200: {description: "text/event-stream: line events {file, line}; offsets events
            whose id resumes a reconnect (Last-Event-ID); end when the caller lost access"}
          404: {description: no such InferenceService}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        identity = self.control.identity(request.scope)
        self.control.find(identity, ISVC, namespace, name, VIEW)
        component = request.query_params.get("component", "predictor")
        if component not in ("predictor", "transformer"):
            raise ControlError("component must be predictor or transformer.")

        resumed = _offsets(request.headers.get("last-event-id", ""))

        async def events() -> AsyncIterator[bytes]:
            follower = _Follower()
            loop = asyncio.get_running_loop()
            started = checked = loop.time()
            yield f"retry: {RETRY_MS}\n\n".encode()
            while loop.time() - started < STREAM_S:
                sent = False
                for path in log_files(self.ctx, namespace, name, component):
                    if path in follower.offsets:
                        lines = follower.new_lines(path)
                    elif path.name in resumed:  # a reconnect: on from where it was
                        follower.offsets[path] = resumed[path.name]
                        lines = follower.new_lines(path)
                    else:
                        lines = follower.start(path)
                    for line in lines:
                        yield _event("line", {"file": path.stem, "line": line})
                        sent = True
                if sent:
                    # EventSource sends this back as Last-Event-ID when it reconnects.
                    where = ",".join(f"{p.name}:{n}" for p, n in follower.offsets.items())
                    yield f"id: {where}\nevent: offsets\ndata: {{}}\n\n".encode()
                await asyncio.sleep(POLL_S)
                if await request.is_disconnected():
                    return
                if loop.time() - checked > RECHECK_S:
                    checked = loop.time()
                    try:
                        self.control.find(identity, ISVC, namespace, name, VIEW)
                    except ControlError as exc:
                        yield _event("end", {"reason": str(exc)})
                        return
            # The response ends here and the browser's EventSource reconnects (RETRY_MS
            # later) with the offsets: short streams never hold the platform's shutdown.

        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


class Metrics:
    def __init__(self, ctx: ApiContext) -> None:
        self.control = Control(ctx)
        self.history = MetricsHistory(ctx.controller)

    async def metrics(self, request: Request) -> Response:
        """
        summary: The service's request rate, latency, errors, replicas and in-flight requests
          over the last minutes (sampled while someone asks, every interval_s seconds).
        responses:
          200: {description: "interval_s, samples: [{t, rps, errors_per_s, p50_ms, p99_ms,
            replicas, inflight}]"}
          404: {description: no such InferenceService}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        self.control.find(self.control.identity(request.scope), ISVC, namespace, name, VIEW)
        samples = self.history.watch((namespace, name))
        body = {"interval_s": INTERVAL_S, "samples": samples}
        return Response(orjson.dumps(body), media_type="application/json")

    async def events(self, request: Request) -> Response:
        """
        summary: What happened to the service - revisions created, ready or failed, replica
          crashes and storage errors, scaling (seen while someone watches) - newest first.
        responses:
          200: {description: "items: [{t, reason, message, warning}]"}
          404: {description: no such InferenceService}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        self.control.find(self.control.identity(request.scope), ISVC, namespace, name, VIEW)
        items = self.history.service_events((namespace, name))
        return Response(orjson.dumps({"items": items}), media_type="application/json")


def live_routes(ctx: ApiContext) -> list[Route]:
    service = "/v1/namespaces/{namespace}/inferenceservices/{name}"
    metrics = Metrics(ctx)
    return [
        Route(service + "/logs/stream", LogStream(ctx).stream, methods=["GET"]),
        Route(service + "/metrics", metrics.metrics, methods=["GET"]),
        Route(service + "/events", metrics.events, methods=["GET"]),
    ]
