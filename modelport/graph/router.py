"""The gateway's router for InferenceGraphs: a request addressed to a graph is run here, in
the gateway process, and each service step goes through the platform's own routing (the
router it wraps) as the caller, authorized as the caller; requests for anything else pass
straight to the wrapped router.

KServe runs a router pod per graph that calls each step's URL over the network with only the
headers its config map names (cmd/router/main.go ``callService``); here a step is an
in-process call of the InferenceService router, so it costs no extra hop and carries the
caller's identity headers, trace context, and the headers the graph's annotation names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from modelport.access.caller import Identity
from modelport.graph.executor import Answer, Execution, GraphFailure
from modelport.graph.headers import HeaderFilter
from modelport.graph.model import Graph, Step

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]
# Set in the scope by the gateway's admission of a graph request (control/graphs.py).
IDENTITY_KEY = "modelport.graph.identity"
# A step's answer is read whole before the next step runs; past this it is refused. An
# Ensemble holds all its steps' answers at once, so they also share a budget per request.
MAX_STEP_RESPONSE = 64 << 20
MAX_RESPONSES_PER_REQUEST = 128 << 20
# What one request's steps may be sent in all: the body goes to every step (an Ensemble of
# 32 steps would hold 32 copies of a 60 MB body at once).
MAX_SENT_PER_REQUEST = 128 << 20
# Bytes held by all graph requests at once (sent to and read from steps); past it a graph
# request gets 503 rather than taking the gateway's memory.
MAX_BYTES_IN_FLIGHT = 512 << 20
JSON = b"application/json"


class ServiceRouter(Protocol):
    """Sends a request to an InferenceService (control/routing.py's ServiceRouter)."""

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity_headers: list[Header],
        upstream: Any,
    ) -> None: ...


class GraphSite(Protocol):
    """What the router needs of the platform: graphs, where services answer, and who may
    call them."""

    def graph(self, namespace: str, name: str) -> Graph | None: ...

    def predict_path(self, namespace: str, service: str) -> str:
        """The path a ``serviceName`` step posts to (KServe's predictor endpoint)."""
        ...

    def resolve_url(self, url: str) -> tuple[str, str, str] | str:
        """(namespace, name, path) a ``serviceUrl`` addresses on this platform, or why not."""
        ...

    def refusal(self, identity: Identity, namespace: str, scope: Scope) -> str | None:
        """Why ``identity`` may not send this request into ``namespace`` (the gateway's
        own check); None if it may."""
        ...


class GraphRouter:
    """The gateway's Router: graphs here, everything else to ``inner``."""

    def __init__(self, inner: ServiceRouter, site: GraphSite) -> None:
        self.inner = inner
        self.site = site
        self.in_flight = 0  # bytes held by graph requests now (their budgets)

    def __getattr__(self, name: str) -> Any:
        # Whatever else the platform asks of its router (its payload logger) is the inner one's.
        return getattr(self.inner, name)

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity_headers: list[Header],
        upstream: Any,
    ) -> None:
        graph = self.site.graph(namespace, name)
        if graph is None:
            await self.inner.forward(
                namespace, name, scope, receive, send, identity_headers, upstream
            )
            return
        body: bytes = await upstream.read_body(receive)
        steps = _Steps(self, graph, scope, identity_headers, upstream)
        try:
            run = Execution(graph, steps.call).run(body)
            answer = await (asyncio.wait_for(run, graph.timeout_s) if graph.timeout_s else run)
        except GraphFailure as failure:
            await _reply(send, failure.status, failure.body(), JSON)
            return
        except TimeoutError:
            cause = f"the graph did not answer within its timeout of {graph.timeout_s:g} s"
            await _reply(send, 504, GraphFailure(504, cause).body(), JSON)
            return
        finally:
            steps.budget.release()
        # graphHandler: JSON answers are labelled so; anything else goes as text.
        content_type = JSON if _is_json(answer.body) else b"text/plain; charset=utf-8"
        await _reply(send, answer.status, answer.body, content_type)


class _Steps:
    """Calls the service steps of one graph request, as its caller."""

    def __init__(
        self,
        router: GraphRouter,
        graph: Graph,
        scope: Scope,
        identity_headers: list[Header],
        upstream: Any,
    ) -> None:
        self.router = router
        self.graph = graph
        self.scope = scope
        self.identity = scope.get(IDENTITY_KEY)
        self.identity_headers = identity_headers
        self.upstream = upstream
        passed = HeaderFilter(graph.propagate).select(scope.get("headers") or [])
        self.headers = [(b"content-type", JSON), *passed]
        self.budget = _Budget(router)

    async def call(self, step: Step, body: bytes) -> Answer:
        self.budget.send(len(body))
        site = self.router.site
        if step.service:
            namespace, name = self.graph.namespace, step.service
            path = site.predict_path(namespace, name)
        else:
            found = site.resolve_url(step.url)
            if isinstance(found, str):
                raise GraphFailure(500, found)
            namespace, name, path = found
        scope = self._scope(path)
        if not isinstance(self.identity, Identity):
            return _refused("The graph request carries no caller identity.")
        denied = site.refusal(self.identity, namespace, scope)
        if denied is not None:
            return _refused(denied)
        capture = _Capture(self.budget)
        forward = self.router.inner.forward(
            namespace, name, scope, _body_once(body), capture.send,
            self.identity_headers, self.upstream,
        )  # fmt: skip
        timeout = self.graph.step_timeout_s
        try:
            await (asyncio.wait_for(forward, timeout) if timeout else forward)
        except TimeoutError:
            label = step.name or name
            raise GraphFailure(
                500, f"step {label}: {name} did not answer within {timeout:g} s"
            ) from None
        return capture.answer(name)

    def _scope(self, path: str) -> Scope:
        raw_path, _, query = path.encode().partition(b"?")
        return {
            "type": "http",
            "asgi": self.scope.get("asgi", {"version": "3.0"}),
            "http_version": "1.1",
            "method": "POST",
            "scheme": self.scope.get("scheme", "http"),
            "path": raw_path.decode(),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": list(self.headers),
            "client": self.scope.get("client"),
            "server": self.scope.get("server"),
        }


class _Budget:
    """Bytes one graph request has sent to its steps and read from them, also counted in
    the router's total of all graph requests."""

    def __init__(self, router: GraphRouter) -> None:
        self.router = router
        self.sent = 0
        self.used = 0
        self.held = 0

    def send(self, size: int) -> None:
        self.sent += size
        if self.sent > MAX_SENT_PER_REQUEST:
            raise GraphFailure(
                413, f"the request body, sent to each step, comes to more than "
                f"{MAX_SENT_PER_REQUEST} bytes in all: send a smaller body or use fewer steps",
            )  # fmt: skip
        self._hold(size)

    def take(self, size: int) -> None:
        self.used += size
        if self.used > MAX_RESPONSES_PER_REQUEST:
            raise GraphFailure(
                500, f"the steps answered more than {MAX_RESPONSES_PER_REQUEST} bytes in all"
            )
        self._hold(size)

    def _hold(self, size: int) -> None:
        if self.router.in_flight + size > MAX_BYTES_IN_FLIGHT:
            raise GraphFailure(503, "the gateway holds too much graph traffic now: retry")
        self.router.in_flight += size
        self.held += size

    def release(self) -> None:
        self.router.in_flight -= self.held
        self.held = 0


class _Capture:
    """An ASGI ``send`` that keeps the response instead of sending it."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.status = 0
        self.chunks: list[bytes] = []
        self.size = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            self.budget.take(len(chunk))
            if self.size > MAX_STEP_RESPONSE:
                raise GraphFailure(500, f"a step answered more than {MAX_STEP_RESPONSE} bytes")
            self.chunks.append(chunk)

    def answer(self, name: str) -> Answer:
        if not self.status:
            raise GraphFailure(500, f"{name} gave no response")
        return Answer(self.status, b"".join(self.chunks))


def _body_once(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _refused(why: str) -> Answer:
    # As the gateway answers a caller without the role (gateway/admission.py).
    return Answer(403, orjson.dumps({"error": why}))


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


async def _reply(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    # Steps' answers are model code's output on the platform's origin: as for services
    # (control/routing.py), never a page that runs scripts, never sniffed into HTML.
    headers += [(b"content-security-policy", b"sandbox"), (b"x-content-type-options", b"nosniff")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
