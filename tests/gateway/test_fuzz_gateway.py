"""Hypothesis against the real gateway app: paths, Host and headers as a client may send them.

The app is the one ``modelport up`` serves (provider, sessions, authorizer on SQLite, a
router), driven with ASGI scopes exactly as uvicorn builds them; the router forwards through
the real ``Upstream`` over a socket to a server that answers with the request it received.
For every request: no exception and no 5xx; anything routed goes to the namespace its
path (read the widest way any proxy may read it) or Host names, and only where the caller
may go; the identity headers upstream are the gateway's alone; ``/authz`` allows only what
it can place in a namespace the caller may use.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from modelport.gateway.app import Gateway
from modelport.gateway.proxy import Receive, Scope, Send, Upstream
from modelport.gateway.server import build_gateway
from modelport.identity.dex_config import parse_dex_config
from tests.helpers.kubeflow import DEX_CONFIG, USER_EMAIL

# ---- a raw upstream that answers with the request head it received -----------------------


class EchoUpstream:
    """Answers every request with its head (request line and headers) as the body."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length: *(\d+)", head)
                size = int(length.group(1)) if length else 0
                while len(buffer) < size:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[size:]
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(head), head))


@dataclass
class Recorder:
    """The gateway's router for ``modelport up``, minus the control plane: it notes where a
    request went and forwards it to the echo upstream."""

    echo_url: str
    routed: list[tuple[str, str, list[tuple[bytes, bytes]]]] = field(default_factory=list)

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        upstream: Upstream,
    ) -> None:
        self.routed.append((namespace, name, extra))
        await upstream.forward(scope, receive, send, extra, self.echo_url)


@dataclass
class World:
    gateway: Gateway = field(repr=False)
    recorder: Recorder = field(repr=False)
    loop: asyncio.AbstractEventLoop = field(repr=False)
    credentials: dict[str, list[tuple[bytes, bytes]]] = field(repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("World(...)")  # a failing example must not print the tokens


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import yaml

    echo = EchoUpstream()
    data: Path = tmp_path_factory.mktemp("fuzz")
    gateway = build_gateway(
        data,
        "http://gw.test/dex",
        "http://127.0.0.1:9",
        parse_dex_config(yaml.safe_load(DEX_CONFIG)),
    )
    recorder = Recorder(echo.url)
    gateway.router = recorder
    gateway.authorizer.create_namespace("ns-a", USER_EMAIL)  # the caller's own
    gateway.authorizer.create_namespace("ns-b", "second@example.com")  # someone else's
    user = gateway.provider.directory.get_user(USER_EMAIL)
    assert user is not None
    _, id_token, _ = gateway.provider.tokens.issue(
        user, "kubeflow-oidc-authservice", ["openid", "email", "groups"]
    )
    _, third_party, _ = gateway.provider.tokens.issue(user, "approving-app", ["openid", "email"])
    api_token = gateway.authorizer.create_token(USER_EMAIL, "ns-a", "view")
    credentials = {
        "none": [],
        "user": [(b"authorization", f"Bearer {id_token}".encode())],
        "api token": [(b"authorization", f"Bearer {api_token}".encode())],
        "third party": [(b"authorization", f"Bearer {third_party}".encode())],
        "garbage": [(b"authorization", b"Bearer eyJ.e30.x")],
        "basic": [(b"authorization", b"Basic dTpw")],
        "cookie": [(b"cookie", b"authservice_session=forged; oidc_state_csrf=x")],
    }
    loop = asyncio.new_event_loop()
    yield World(gateway, recorder, loop, credentials)
    loop.run_until_complete(gateway.upstream.close())
    loop.close()
    echo.sock.close()


# ---- what a client may send --------------------------------------------------------------

PIECES = [
    "/", "//", ".", "..", "/./", "/../", "%2e", "%2E%2e", "%2f", "%2F", "%5c", "%5C", "\\",
    ";", ";x=1", "serving", "SERVING", "Serving", "%73erving", "%2573erving", "servin%67",
    "ns-a", "ns-b", "ns-c", "NS-A", "n%73-a", "m", "v2", "models", "infer", "health", "ready",
    "live", "dex", "keys", "authz", "healthz", "api", "%00", "%0d%0a", "%09", "%25", "%", "~",
    ":predict", "%20", "@", "http:", "?", "?x=/serving/ns-b/m/", "&", "=",
]  # fmt: skip
VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
PATHS = st.lists(st.sampled_from(PIECES) | st.text(VISIBLE, max_size=3), max_size=12).map(
    lambda parts: "/" + "".join(parts)
)
SERVING = st.builds(
    lambda ns, name, rest: f"/serving/{ns}/{name}{rest}",
    st.sampled_from(["ns-a"] * 6 + ["ns-b", "ns-c", "NS-A", "n%73-a", ""]),
    st.sampled_from(["m"] * 4 + ["M", "m%2f..", ""]),
    PATHS,
)
TARGETS = st.one_of(PATHS, SERVING, SERVING, st.builds(lambda p: "/authz" + p, PATHS | SERVING))
HOSTS = st.one_of(
    st.builds(
        lambda name, ns, suffix, dot, port: f"{name}.{ns}{suffix}{dot}{port}",
        st.sampled_from(["m", "m-predictor", "m-predictor-default", "-predictor", "M", "a.m"]),
        st.sampled_from(["ns-a"] * 4 + ["ns-b", "ns-c", "NS-A", ""]),
        st.sampled_from([".example.com", ".svc", ".svc.cluster.local", ".example.org", ""]),
        st.sampled_from(["", "."]),
        st.sampled_from(["", ":80", ":8000", ":x", ":"]),
    ),
    st.sampled_from(["", "127.0.0.1:8000", "[::1]:8000", "gw.test"]),
    st.sampled_from(["", "127.0.0.1:8000", "[::1]:8000", "gw.test"]),
    st.text(VISIBLE, max_size=24),
)
SPOOFED = st.lists(
    st.tuples(
        st.sampled_from(["kubeflow-userid", "kubeflow-groups", "x-original-uri", "accept"]),
        st.sampled_from(["admin@example.com", "admins", "/serving/ns-b/m/", "*/*", ""]),
    ),
    max_size=3,
)
REQUESTS = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
        "target": TARGETS,
        "host": HOSTS,
        "credentials": st.sampled_from(
            ["user"] * 6 + ["api token"] * 3 + ["none", "third party", "garbage", "basic", "cookie"]
        ),
        "spoofed": SPOOFED,
        "original": st.one_of(st.none(), st.none(), TARGETS, st.text(max_size=20)),
    }
)


# ---- an independent reading of where a request points -----------------------------------


def naive_path_namespace(raw_path: bytes) -> str | None:
    """The namespace of /serving/NS/... under the widest reading (written apart from
    paths.widest_reading, so a slip in one is not repeated in the other)."""
    data = raw_path
    for _ in range(3):
        data = unquote_to_bytes(data)
    text = data.decode("latin-1").replace("\\", "/").lower()
    text = "/".join(segment.split(";")[0] for segment in text.split("/"))
    reading = posixpath.normpath("/" + text.lstrip("/"))
    parts = reading.split("/")
    return parts[2] if len(parts) > 3 and parts[1] == "serving" else None


_HOST = re.compile(r"^([^.]+)\.([^.]+)\.(?:example\.com|svc|svc\.cluster\.local)\.?(?::\d+)?$")


def naive_host_namespace(host: str) -> str | None:
    found = _HOST.match(host.lower())
    return found.group(2) if found else None


def named(raw_path: bytes, host: str) -> set[str]:
    return {ns for ns in (naive_path_namespace(raw_path), naive_host_namespace(host)) if ns}


# ---- the properties ----------------------------------------------------------------------


def _scope(world: World, request: dict[str, Any]) -> Scope:
    """The ASGI scope uvicorn builds for this request (raw path split at "?", decoded)."""
    raw_path, _, query = request["target"].encode("ascii").partition(b"?")
    headers = [(b"host", request["host"].encode("latin-1"))] if request["host"] else []
    headers += world.credentials[request["credentials"]]
    headers += [(k.encode(), v.encode()) for k, v in request["spoofed"]]
    if request["original"] is not None:
        headers.append((b"x-original-uri", request["original"].encode("utf-8")))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request["method"],
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


def _run(world: World, scope: Scope) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    world.loop.run_until_complete(world.gateway(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=REQUESTS)
def test_no_request_reaches_a_namespace_it_does_not_name(
    world: World, request: dict[str, Any]
) -> None:
    world.recorder.routed.clear()
    scope = _scope(world, request)
    status, headers, body = _run(world, scope)
    event(f"{status} {'routed' if world.recorder.routed else ''} {request['credentials']}")
    assert status < 500, (status, body)
    if not world.recorder.routed:
        if scope["path"] == "/authz" or scope["path"].startswith("/authz/"):
            _check_authz(request, scope, status, headers)
        return
    ((namespace, _name, extra),) = world.recorder.routed
    names = named(scope["raw_path"], request["host"])
    # Routed only where the path or Host points, and only when they agree.
    assert names == {namespace}, (namespace, names)
    # ... and only where this caller may go: user@example.com and its token have ns-a only.
    assert namespace == "ns-a" and request["credentials"] in ("user", "api token")
    assert status == 200
    if request["method"] == "HEAD":
        return  # no body to read the forwarded request from
    # The identity headers upstream are the gateway's, once each; credentials stay here.
    forwarded = [line.split(b":", 1) for line in body.split(b"\r\n")[1:]]
    names_sent = [name.strip().lower() for name, *_ in forwarded]
    assert names_sent.count(b"kubeflow-userid") == 1
    assert (b"kubeflow-userid", USER_EMAIL.encode()) in extra
    userid = next(v for n, v in forwarded if n.lower() == b"kubeflow-userid")
    assert userid.strip() == USER_EMAIL.encode()
    groups = [v.strip() for n, v in forwarded if n.lower() == b"kubeflow-groups"]
    assert groups in ([], [b"team-a"])
    assert b"authorization" not in names_sent
    assert b"authservice_session" not in body


def _check_authz(request: dict[str, Any], scope: Scope, status: int, headers: dict) -> None:
    """/authz allows with an identity only what it places in the caller's namespace."""
    if status != 200:
        return
    original = request["original"]
    if original is not None:
        raw = original.encode("utf-8").partition(b"?")[0]
    else:
        raw = (
            scope["raw_path"][len(b"/authz") :] if scope["raw_path"].startswith(b"/authz") else b""
        )
    names = named(raw, request["host"])
    event(f"authz 200 {'with' if b'kubeflow-userid' in headers else 'without'} identity")
    if b"kubeflow-userid" in headers:
        assert names == {"ns-a"}, (raw, request["host"], names)
        assert headers[b"kubeflow-userid"] == USER_EMAIL.encode()
    else:  # anonymous: the platform's own health and /dex only, never a service
        assert not names, (raw, request["host"], names)
