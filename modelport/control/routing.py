"""Routing to InferenceService revisions: traffic split, and the activator that holds
requests while a revision scales up from zero (Knative's activator, in process).

The gateway calls this through its Router protocol (gateway/app.py) and knows nothing of
the control plane; the control plane uses the gateway's upstream connections."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import orjson

from modelport.control.backends.process import Replica
from modelport.control.concurrency import ConcurrencyLimiter, SlotUnavailable, unit_limit
from modelport.control.controller import Controller
from modelport.control.revisions import RevisionState, Unit
from modelport.gateway.connections import BadTarget, UpstreamError
from modelport.gateway.payload_logger import PayloadLogger, wants
from modelport.gateway.proxy import Receive, Scope, Send, Upstream, relay

DEFAULT_TIMEOUT_S = 60.0
# Model code (anyone's) shares this origin with /api: a page it returns must not run
# scripts with a signed-in visitor's cookie, nor be sniffed into HTML.
CONFINED = (
    (b"content-security-policy", b"sandbox"),
    (b"x-content-type-options", b"nosniff"),
)
ATTEMPTS = 3
# KServe's ingress sends only V1 explain calls to the explainer (constants.ExplainPrefix,
# "^/v1/models/[\\w-]+:explain$"); V2 has no explain route upstream, so it stays on the entry.
EXPLAIN_PATH = re.compile(r"/v1/models/[\w-]+:explain")


def target_of(unit: Unit, path: str) -> Replica:
    """The replica of ``unit`` a request for ``path`` goes to: the explainer for
    ``:explain`` when the service has one, otherwise the transformer or the predictor."""
    if unit.explainer is not None and EXPLAIN_PATH.fullmatch(path):
        return unit.explainer
    return unit.entry


class ServiceRouter:
    """The gateway's :class:`~modelport.gateway.app.Router` for ``modelport up``."""

    def __init__(
        self,
        controller: Controller,
        logger: PayloadLogger | None = None,
        limiter: ConcurrencyLimiter | None = None,
    ) -> None:
        self.controller = controller
        self.logger = logger or PayloadLogger()
        # containerConcurrency: requests past a replica's limit wait here, not at the replica.
        self.limiter = limiter or ConcurrencyLimiter()

    def _tap(
        self, namespace: str, name: str, revision: RevisionState, scope: Scope
    ) -> _LoggingTap | None:
        spec = revision.isvc.predictor.logger
        if spec is None or not spec.url:
            return None
        headers = {k.lower(): v for k, v in scope["headers"]}
        request_id = headers.get(b"ce-id", b"").decode("latin-1") or str(uuid.uuid4())
        exchange = _Exchange(
            request_id=request_id,
            content_type=headers.get(b"content-type", b"").decode("latin-1"),
            inference_service=name,
            namespace=namespace,
            endpoint=revision.name,
        )
        return _LoggingTap(self.logger, spec.mode, spec.url, exchange)

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity_headers: list[tuple[bytes, bytes]],
        upstream: Upstream,
    ) -> None:
        svc = self.controller.lookup(namespace, name)
        if svc is None:
            await _error(send, 404, f"InferenceService {name} not found in namespace {namespace}.")
            return
        revision = svc.pick()
        if revision is None:
            why = svc.error or "it has no revision that can serve yet"
            await _error(send, 503, f"InferenceService {name} is not ready: {why}", retry=True)
            return
        # Counted from here, also while waiting for a replica or a slot: that is demand the
        # autoscaler must see (Knative's queue-proxy counts a request before its breaker).
        revision.begin()
        try:
            body = await upstream.read_body(receive)
            timeout = revision.isvc.predictor.timeout_s or DEFAULT_TIMEOUT_S
            deadline = time.monotonic() + timeout
            tap = self._tap(namespace, name, revision, scope)
            if tap is not None:
                tap.request(body)
            limit = unit_limit(revision)
            # A replica that just died refuses connections until the controller reaps it;
            # such a request never reached it, so another replica (or a fresh one) may take it.
            for _attempt in range(ATTEMPTS):
                try:
                    unit = await self._replica(revision, limit, deadline)
                except SlotUnavailable as exc:
                    await _error(send, 503, f"InferenceService {name}: {exc}.", retry=True)
                    return
                if unit is None:
                    break
                target = target_of(unit, scope["path"])
                try:
                    # The replica answers only requests carrying its key.
                    headers = [*identity_headers, target.key_header]
                    response = await upstream.open(scope, body, headers, f"http://{target.address}")
                except BadTarget as exc:
                    await _error(send, 400, f"{exc}.")
                    return
                except ConnectionRefusedError:
                    target.ready = False
                    self.controller.poke(namespace, name)
                    continue
                except (OSError, UpstreamError) as exc:
                    await _error(send, 502, f"Model server failed: {exc}.")
                    return
                finally:
                    if limit:
                        # The response is read whole: the replica is done with this request
                        # whatever happens next (a slow or vanished client holds no slot).
                        self.limiter.release(revision, unit)
                await relay(response, send, tap, CONFINED)
                return
            why = revision.message or "no replica became ready in time"
            await _error(send, 503, f"InferenceService {name} is not ready: {why}", retry=True)
        finally:
            revision.end()

    async def _replica(self, revision: RevisionState, limit: int, deadline: float) -> Unit | None:
        """A ready unit for one request, woken from zero by the activator if need be; with a
        containerConcurrency ``limit``, one with a free slot, taken (the caller releases it).
        None when no replica became ready in time; SlotUnavailable when no slot freed."""
        if not limit:
            unit = revision.pick()
            if unit is not None:
                return unit
            return await self.controller.activate(revision, deadline - time.monotonic())
        if not revision.ready_units():
            # From zero, requests wait at the activator as any would, then queue for slots.
            if await self.controller.activate(revision, deadline - time.monotonic()) is None:
                return None
        key = (revision.row.namespace, revision.row.service)
        return await self.limiter.acquire(
            revision, limit, deadline, lambda: self.controller.poke(*key)
        )


@dataclass(frozen=True)
class _Exchange:
    """What the payload logger records about one request besides its body."""

    request_id: str
    content_type: str
    inference_service: str
    namespace: str
    endpoint: str


class _LoggingTap:
    """Hands an exchange to the payload logger as KServe's agent does: the request always,
    the response only if it was a 200, both with the request's id and Content-Type."""

    def __init__(self, logger: PayloadLogger, mode: str, url: str, exchange: _Exchange):
        self.logger = logger
        self.mode = mode
        self.url = url
        self.exchange = exchange

    def request(self, body: bytes) -> None:
        if wants(self.mode, "request"):
            self._log("request", body)

    def response(self, status: int, body: bytes) -> None:
        if status == 200 and wants(self.mode, "response"):
            self._log("response", body)

    def _log(self, kind: str, body: bytes) -> None:
        e = self.exchange
        self.logger.log(
            url=self.url,
            kind=kind,
            body=body,
            request_id=e.request_id,
            content_type=e.content_type,
            inference_service=e.inference_service,
            namespace=e.namespace,
            component="predictor",
            endpoint=e.endpoint,
            source=f"http://modelport/{e.namespace}/{e.endpoint}",
        )


async def _error(send: Send, status: int, message: str, retry: bool = False) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if retry:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
