"""Routing to InferenceService revisions: traffic split, and the activator that holds
requests while a revision scales up from zero (Knative's activator, in process).

The gateway calls this through its Router protocol (gateway/app.py) and knows nothing of
the control plane; the control plane uses the gateway's upstream connections."""

from __future__ import annotations

import uuid

import orjson

from modelport.control.controller import Controller
from modelport.control.revisions import RevisionState
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


class ServiceRouter:
    """The gateway's :class:`~modelport.gateway.app.Router` for ``modelport up``."""

    def __init__(self, controller: Controller, logger: PayloadLogger | None = None) -> None:
        self.controller = controller
        self.logger = logger or PayloadLogger()

    def _tap(
        self, namespace: str, name: str, revision: RevisionState, scope: Scope
    ) -> _LoggingTap | None:
        spec = revision.isvc.predictor.logger
        if spec is None or not spec.url:
            return None
        headers = {k.lower(): v for k, v in scope["headers"]}
        request_id = headers.get(b"ce-id", b"").decode("latin-1") or str(uuid.uuid4())
        fields = {
            "request_id": request_id,
            "content_type": headers.get(b"content-type", b"").decode("latin-1"),
            "inference_service": name,
            "namespace": namespace,
            "component": "predictor",
            "endpoint": revision.name,
            "source": f"http://modelport/{namespace}/{revision.name}",
        }
        return _LoggingTap(self.logger, spec.mode, spec.url, fields)

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
        revision.begin()
        try:
            body = await upstream.read_body(receive)
            timeout = revision.isvc.predictor.timeout_s or DEFAULT_TIMEOUT_S
            tap = self._tap(namespace, name, revision, scope)
            if tap is not None:
                tap.request(body)
            # A replica that just died refuses connections until the controller reaps it;
            # such a request never reached it, so another replica (or a fresh one) may take it.
            for _attempt in range(ATTEMPTS):
                unit = revision.pick() or await self.controller.activate(revision, timeout)
                if unit is None:
                    break
                try:
                    # The replica answers only requests carrying its key.
                    headers = [*identity_headers, unit.entry.key_header]
                    response = await upstream.open(
                        scope, body, headers, f"http://{unit.entry.address}"
                    )
                except BadTarget as exc:
                    await _error(send, 400, f"{exc}.")
                    return
                except ConnectionRefusedError:
                    unit.entry.ready = False
                    self.controller.wake()
                    continue
                except (OSError, UpstreamError) as exc:
                    await _error(send, 502, f"Model server failed: {exc}.")
                    return
                await relay(response, send, tap, CONFINED)
                return
            why = revision.message or "no replica became ready in time"
            await _error(send, 503, f"InferenceService {name} is not ready: {why}", retry=True)
        finally:
            revision.end()


class _LoggingTap:
    """Hands an exchange to the payload logger as KServe's agent does: the request always,
    the response only if it was a 200, both with the request's id and Content-Type."""

    def __init__(self, logger: PayloadLogger, mode: str, url: str, fields: dict[str, str]):
        self.logger = logger
        self.mode = mode
        self.url = url
        self.fields = fields

    def request(self, body: bytes) -> None:
        if wants(self.mode, "request"):
            self.logger.log(url=self.url, kind="request", body=body, **self.fields)

    def response(self, status: int, body: bytes) -> None:
        if status == 200 and wants(self.mode, "response"):
            self.logger.log(url=self.url, kind="response", body=body, **self.fields)


async def _error(send: Send, status: int, message: str, retry: bool = False) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if retry:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
