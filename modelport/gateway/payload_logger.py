"""KServe's payload logger: inference requests and responses sent to a sink as CloudEvents.

Follows kserve/kserve at aaac4e2 (2026-08), pkg/logger/: handler.go decides what is logged,
worker.go builds and sends the event, types.go holds the fields. Each event is a CloudEvents 1.0
event in HTTP binary mode (cloudevents/sdk-go v2 as KServe uses it): a POST whose body is the
payload byte for byte and whose headers carry the attributes, spelled as sdk-go's
``protocol/http/headers.go`` writes them::

    Ce-Specversion: 1.0
    Ce-Id: <request id>                   same for a request and its response
    Ce-Type: org.kubeflow.serving.inference.request | org.kubeflow.serving.inference.response
    Ce-Source: <source>                   KServe's agent passes the pod name
    Ce-Time: <occurrence time>            UTC RFC 3339 with nanoseconds (types.FormatTime)
    Ce-Recordedtime: <send time>
    Ce-Inferenceservicename, Ce-Namespace, Ce-Component, Ce-Endpoint
    Ce-Metadata: <JSON of allow-listed request headers>   "{}" when none
    Ce-Annotations: <JSON>                only when there are some
    Content-Type: <the request's Content-Type>

What the caller (the proxy) does, as handler.go does: the id is the request's ``Ce-Id`` header,
else a new UUID; the response is logged only when the model answered 200, and with the
*request's* Content-Type (KServe's choice, kept for sinks that rely on it).

Where KServe differs, on purpose: its queue (100 entries) blocks the request when full; here a
full queue drops the event and counts it, so logging never slows inference. KServe's HTTP
client has no timeout; here each POST has one. Failures are never retried, as in KServe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from modelport.identity.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

# worker.go: CEInferenceRequest / CEInferenceResponse.
CE_TYPES = {
    "request": "org.kubeflow.serving.inference.request",
    "response": "org.kubeflow.serving.inference.response",
}
# LoggerType in pkg/apis/serving/v1beta1/inference_service.go.
MODES = ("all", "request", "response")
# At most one warning per this many seconds about undelivered events.
WARN_INTERVAL_S = 30.0


def wants(mode: str, kind: str) -> bool:
    """Whether logger mode ``all|request|response`` logs an event of kind ``request|response``."""
    if mode not in MODES:
        raise ValueError(f"logger mode {mode!r} is not one of {', '.join(MODES)}")
    if kind not in CE_TYPES:
        raise ValueError(f"payload kind {kind!r} is not 'request' or 'response'")
    return mode == "all" or mode == kind


@dataclass(frozen=True, slots=True)
class _Event:
    url: str
    kind: str
    request_id: str
    body: bytes
    content_type: str
    inference_service: str
    namespace: str
    component: str
    endpoint: str
    source: str
    time_ns: int
    metadata: str
    annotations: str | None


class PayloadLogger:
    """Sends payload events from a bounded queue with a few async workers."""

    def __init__(
        self,
        *,
        queue_size: int = 10000,
        workers: int = 4,
        timeout_s: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if queue_size < 1 or workers < 1 or not timeout_s > 0:
            raise ValueError("queue_size and workers must be >= 1 and timeout_s > 0")
        self._queue: asyncio.Queue[_Event] = asyncio.Queue(queue_size)
        self._workers = workers
        self._timeout_s = timeout_s
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._clock = clock
        self._next_warning = -math.inf
        self._unreported = 0
        self.dropped = 0
        self.failed = 0
        self.sent = 0

    def log(
        self,
        *,
        url: str,
        kind: str,
        request_id: str,
        body: bytes,
        content_type: str,
        inference_service: str,
        namespace: str,
        component: str,
        endpoint: str,
        source: str,
        metadata: Mapping[str, Sequence[str]] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> bool:
        """Queue one event without waiting; False (and a count in ``dropped``) if it cannot be.

        Call from the event loop's thread. ``metadata`` is the allow-listed request headers
        (KServe's ``--metadata-headers``), ``annotations`` KServe's ``--metadata-annotations``.
        """
        if kind not in CE_TYPES:
            raise ValueError(f"payload kind {kind!r} is not 'request' or 'response'")
        if self._closed:
            self.dropped += 1
            return False
        event = _Event(
            url,
            kind,
            request_id,
            body,
            content_type,
            inference_service,
            namespace,
            component,
            endpoint,
            source,
            time.time_ns(),
            _go_json({k: list(v) for k, v in metadata.items()} if metadata else {}),
            _go_json(dict(annotations)) if annotations else None,
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self._warn(f"queue full ({self._queue.maxsize} events), event dropped")
            return False
        return True

    async def start(self) -> None:
        """Open the HTTP client and start the workers; events queued before are sent then."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            connector=aiohttp.TCPConnector(limit=self._workers),
        )
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def close(self) -> None:
        """Stop taking events, send what is queued for up to ``timeout_s``, drop the rest."""
        self._closed = True
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self._timeout_s)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._send(event)
            finally:
                self._queue.task_done()

    async def _send(self, event: _Event) -> None:
        session = self._session
        if session is None:  # close() ran; nothing to send with
            self.dropped += 1
            return
        headers = _headers(event)
        try:
            async with session.post(
                event.url,
                data=event.body,
                headers=headers,
                # Without a Content-Type of its own the event goes without one (as sdk-go
                # sends it), not with aiohttp's application/octet-stream.
                skip_auto_headers=() if event.content_type else ("Content-Type",),
            ) as response:
                await response.read()
                ok = 200 <= response.status < 300
        except asyncio.CancelledError:
            self.failed += 1
            raise
        except Exception as exc:  # any transport problem is the sink's, never the request's
            self.failed += 1
            self._warn(f"{type(exc).__name__} posting to {event.url}: {exc}")
            return
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            self._warn(f"HTTP {response.status} from {event.url}")

    def _warn(self, reason: str) -> None:
        now = self._clock.monotonic()
        if now < self._next_warning:
            self._unreported += 1
            return
        more = f" (and {self._unreported} more since the last warning)" if self._unreported else ""
        log.warning("payload logger: %s%s", reason, more)
        self._unreported = 0
        self._next_warning = now + WARN_INTERVAL_S


def _headers(event: _Event) -> dict[str, str]:
    """worker.go sendHttpCloudEvent, in sdk-go's binary-mode header spelling."""
    headers = {
        "Ce-Specversion": "1.0",
        "Ce-Id": event.request_id,
        "Ce-Type": CE_TYPES[event.kind],
        "Ce-Source": event.source,
        "Ce-Time": rfc3339_nano(event.time_ns),
        "Ce-Recordedtime": rfc3339_nano(time.time_ns()),
        "Ce-Inferenceservicename": event.inference_service,
        "Ce-Namespace": event.namespace,
        "Ce-Component": event.component,
        "Ce-Endpoint": event.endpoint,
        "Ce-Metadata": event.metadata,
    }
    if event.annotations is not None:
        headers["Ce-Annotations"] = event.annotations
    if event.content_type:
        headers["Content-Type"] = event.content_type
    return headers


def rfc3339_nano(ns: int) -> str:
    """Go's ``t.UTC().Format(time.RFC3339Nano)``: trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def _go_json(value: object) -> str:
    """Go's json.Marshal of a map: sorted keys, no spaces, <, > and & escaped; non-ASCII is
    escaped too (Go leaves it raw), as a header value must stay ASCII."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
