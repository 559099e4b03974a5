"""The graph router in the gateway: requests for graphs run here and everything else passes
through; each step goes to the wrapped router as the caller, only after the site's
authorization check, with trace and named headers and never the caller's credentials."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from modelport.access.caller import Identity
from modelport.graph import IDENTITY_KEY, Graph, GraphRouter, Node, Step
from modelport.graph import router as router_module
from modelport.graph.router import MAX_STEP_RESPONSE

ALICE = Identity("alice@example.com")
IDENTITY_HEADERS = [(b"kubeflow-userid", b"alice@example.com")]


class Services:
    """The wrapped router: records each call and answers as the named service would."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.delay = 0.0
        self.extra_bytes = 0
        self.answer: bytes | None = None

    async def forward(
        self, namespace: str, name: str, scope: Any, receive: Any, send: Any, ids: Any, up: Any
    ) -> None:
        body = (await receive())["body"]
        self.calls.append(
            {"ns": namespace, "name": name, "path": scope["path"], "headers": dict(scope["headers"]),
             "identity": ids, "body": body, "method": scope["method"]}
        )  # fmt: skip
        await asyncio.sleep(self.delay)
        answer = self.answer or orjson.dumps({"predictions": [name]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if self.extra_bytes:  # a long JSON answer, sent in 1 MiB pieces
            chunk = b"x" * (1 << 20)
            await send({"type": "http.response.body", "body": b'{"pad": "', "more_body": True})
            for _ in range(self.extra_bytes // len(chunk)):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            answer = b'"}'
        await send({"type": "http.response.body", "body": answer})


class Site:
    def __init__(self, graph: Graph) -> None:
        self.graphs = {(graph.namespace, graph.name): graph}
        self.refused: set[str] = set()
        self.checked: list[tuple[str, str, str]] = []

    def graph(self, namespace: str, name: str) -> Graph | None:
        return self.graphs.get((namespace, name))

    def predict_path(self, namespace: str, service: str) -> str:
        return f"/v1/models/{service}:predict"

    def resolve_url(self, url: str) -> tuple[str, str, str] | str:
        if url.startswith("http://other."):
            return "other", "svc", "/v2/models/svc/infer"
        return "nowhere"

    def refusal(self, identity: Identity, namespace: str, scope: dict[str, Any]) -> str | None:
        self.checked.append((identity.email, namespace, scope["path"]))
        return f"no access to namespace {namespace}" if namespace in self.refused else None


class Upstream:
    async def read_body(self, receive: Any) -> bytes:
        return bytes((await receive())["body"])


def call(
    router: GraphRouter, namespace: str, name: str, body: bytes, headers: list[Any] | None = None,
    identity: Identity | None = ALICE,
) -> tuple[int, dict[bytes, bytes], bytes]:  # fmt: skip
    sent: list[dict[str, Any]] = []
    scope: dict[str, Any] = {
        "type": "http", "method": "POST", "path": "/", "headers": headers or [],
    }  # fmt: skip
    if identity is not None:
        scope[IDENTITY_KEY] = identity

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(router.forward(namespace, name, scope, receive, send, IDENTITY_HEADERS, Upstream()))
    return (
        sent[0]["status"],
        dict(sent[0]["headers"]),
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


def setup(*steps: Step, **graph: Any) -> tuple[GraphRouter, Services, Site]:
    g = Graph("team-a", "g", {"root": Node("Sequence", steps)}, **graph)
    services, site = Services(), Site(g)
    return GraphRouter(services, site), services, site


def test_other_requests_pass_through() -> None:
    router, services, _ = setup(Step(service="a"))
    status, _, body = call(router, "team-a", "not-a-graph", b"{}")
    assert status == 200 and services.calls[0]["name"] == "not-a-graph"
    assert services.calls[0]["path"] == "/"  # the request as it came


def test_steps_are_called_as_the_caller_with_chosen_headers_only() -> None:
    router, services, site = setup(
        Step(service="a"), Step(url="http://other.svc/x"), propagate=("x-tenant", "x-team-*")
    )
    headers = [
        (b"traceparent", b"00-abc-def-01"),
        (b"x-b3-traceid", b"t1"),
        (b"X-Tenant", b"blue"),
        (b"x-team-name", b"ml"),
        (b"x-other", b"no"),
        (b"authorization", b"Bearer secret"),
        (b"cookie", b"authservice_session=s"),
    ]
    status, reply_headers, body = call(router, "team-a", "g", b'{"instances": [1]}', headers)
    assert status == 200 and reply_headers[b"content-type"] == b"application/json"
    first, second = services.calls
    assert (first["ns"], first["name"], first["path"]) == ("team-a", "a", "/v1/models/a:predict")
    assert (second["ns"], second["name"], second["path"]) == (
        "other",
        "svc",
        "/v2/models/svc/infer",
    )
    assert first["identity"] == IDENTITY_HEADERS and first["method"] == "POST"
    assert first["headers"] == {
        b"content-type": b"application/json",
        b"traceparent": b"00-abc-def-01",
        b"x-b3-traceid": b"t1",
        b"x-tenant": b"blue",
        b"x-team-name": b"ml",
    }
    assert site.checked == [
        ("alice@example.com", "team-a", "/v1/models/a:predict"),
        ("alice@example.com", "other", "/v2/models/svc/infer"),
    ]


def test_a_refused_step_answers_403_and_is_never_called() -> None:
    router, services, site = setup(
        Step(url="http://other.svc/x", dependency="Hard"), Step(service="a")
    )
    site.refused.add("other")
    status, _, body = call(router, "team-a", "g", b"{}")
    assert status == 403
    assert orjson.loads(body) == {"error": "no access to namespace other"}
    assert services.calls == []


def test_without_a_caller_identity_every_step_is_refused() -> None:
    router, services, _ = setup(Step(service="a"))
    status, _, _ = call(router, "team-a", "g", b"{}", identity=None)
    assert status == 403 and services.calls == []


def test_a_url_outside_the_platform_is_a_failure_not_a_fetch() -> None:
    router, services, _ = setup(Step(url="http://169.254.169.254/latest/meta-data"))
    status, _, body = call(router, "team-a", "g", b"{}")
    assert status == 500
    assert orjson.loads(body) == {"error": "Failed to process request", "cause": "nowhere"}
    assert services.calls == []


def test_step_and_graph_timeouts() -> None:
    router, services, _ = setup(Step(name="slow", service="a"), step_timeout_s=0.05)
    services.delay = 5
    status, _, body = call(router, "team-a", "g", b"{}")
    assert status == 500
    assert orjson.loads(body)["cause"] == "step slow: a did not answer within 0.05 s"
    router, services, _ = setup(Step(service="a"), timeout_s=0.05)
    services.delay = 5
    status, _, body = call(router, "team-a", "g", b"{}")
    assert status == 504
    assert "timeout of 0.05 s" in orjson.loads(body)["cause"]


def test_a_step_answer_past_the_limit_is_refused() -> None:
    router, services, _ = setup(Step(service="a"))
    services.extra_bytes = MAX_STEP_RESPONSE + (1 << 20)
    status, _, body = call(router, "team-a", "g", b"{}")
    assert status == 500 and b"more than" in body


def test_an_ensembles_answers_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "MAX_RESPONSES_PER_REQUEST", 3 << 20)
    steps = tuple(Step(name=f"s{i}", service="a") for i in range(3))
    g = Graph("team-a", "g", {"root": Node("Ensemble", steps)})
    services, site = Services(), Site(g)
    services.extra_bytes = 2 << 20  # each step within its own limit, over 3 MiB in all
    status, _, body = call(GraphRouter(services, site), "team-a", "g", b"{}")
    assert status == 500 and b"in all" in body


def test_a_non_json_answer_is_labelled_text() -> None:
    router, services, _ = setup(Step(service="a"))
    services.answer = b"plain words"
    status, headers, body = call(router, "team-a", "g", b"{}")
    assert (status, body) == (200, b"plain words")
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"content-security-policy"] == b"sandbox"
    assert headers[b"x-content-type-options"] == b"nosniff"


def test_the_body_sent_to_every_step_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: an Ensemble of 32 steps held 32 copies of a 60 MB body at once."""
    monkeypatch.setattr(router_module, "MAX_SENT_PER_REQUEST", 5 << 20)
    steps = tuple(Step(name=f"s{i}", service="a") for i in range(32))
    g = Graph("team-a", "g", {"root": Node("Sequence", steps)})
    services, site = Services(), Site(g)
    router = GraphRouter(services, site)
    body = orjson.dumps({"instances": [[1]], "pad": "x" * (2 << 20)})
    status, _, answer = call(router, "team-a", "g", body)
    assert status == 413 and b"fewer steps" in answer
    assert len(services.calls) == 2  # the third copy was never sent
    assert router.in_flight == 0  # what the request held is given back
    status, _, _ = call(router, "team-a", "g", b'{"instances": [[1]]}')
    assert status == 200 and router.in_flight == 0


def test_graph_requests_share_a_limit_on_what_the_gateway_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(router_module, "MAX_BYTES_IN_FLIGHT", 1 << 20)
    router, services, _ = setup(Step(service="a"))
    router.in_flight = (1 << 20) - 10  # other graph requests hold nearly all of it
    status, _, body = call(router, "team-a", "g", b'{"instances": [[1, 2, 3]]}')
    assert status == 503 and b"retry" in body and not services.calls
    assert router.in_flight == (1 << 20) - 10
