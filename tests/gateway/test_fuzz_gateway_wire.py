"""Hypothesis against a running ``modelport gateway``: request bytes as a client may send
them (any target bytes, Host, identity headers in any case and number) over a real socket,
to a real model server that echoes the identity headers it received.

For every request: an HTTP answer (never a dropped connection), never a 5xx, never a model
answer for a namespace the caller has no role in, and the identity the model sees is the
gateway's alone.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.gateway.test_fuzz_gateway import naive_host_namespace, naive_path_namespace
from tests.helpers.kubeflow import AS_AUTHSERVICE, USER_EMAIL
from tests.helpers.login import Login
from tests.helpers.servers import CliServer

PREDICT = "/v1/models/echo:predict"
BODY = b'{"instances": [1]}'
SEP = b"\r\n\r\n"


@pytest.fixture(scope="module")
def wire(echo_gateway: CliServer, login: Login) -> dict[str, Any]:
    echo_gateway.cli("namespaces", "create", "ns-a", "--owner", USER_EMAIL)
    echo_gateway.cli("namespaces", "create", "ns-b", "--owner", "second@example.com")
    url = urlsplit(echo_gateway.url)
    return {
        "address": (url.hostname, url.port),
        "token": login.id_token(echo_gateway, **AS_AUTHSERVICE),
    }


PREFIXES = [
    "", "/serving/ns-a/echo", "/serving/ns-b/echo", "/serving/ns-c/echo", "//serving/ns-b/echo",
    "/./serving/ns-b/echo", "/%73erving/ns-b/echo", "/serving/ns-a/echo/..", "/serving/NS-B/echo",
    "/serving/ns-a/echo/%2e%2e/%2e%2e/ns-b/echo", "/authz", "/dex", "/v2/health/ready/..",
]  # fmt: skip
JUNK = st.binary(max_size=6).map(lambda b: b.replace(b" ", b"%20"))
STRUCTURED = st.builds(
    lambda prefix, junk, tail: prefix.encode() + junk + tail,
    st.sampled_from(["", "/serving/ns-a/echo"] * 4 + PREFIXES),
    st.sampled_from([b""] * 8 + [b"/", b"%00", b"\\", b"/.", b"%", b"\xc3\xa9", b"\x80"]),
    st.sampled_from([PREDICT.encode()] * 3 + [PREDICT.encode() + b"?x=1", b""]),
)
TARGETS = st.one_of(STRUCTURED, STRUCTURED, STRUCTURED, st.builds(lambda junk: b"/" + junk, JUNK))
HOSTS = st.sampled_from(
    [b"127.0.0.1"] * 6
    + [
        b"echo.ns-a.svc:8080",
        b"echo.ns-a.example.com",
        b"echo.ns-b.example.com",
        b"echo-predictor.ns-b.svc.cluster.local:80",
        b"ECHO.NS-B.EXAMPLE.COM.",
        b"echo.ns-b.svc",
        b"",
        b"a.b.c.d.e",
        b"[::1]:1",
        b"\xff",
    ]
)
IDENTITY_NAMES = st.sampled_from(
    [
        b"kubeflow-userid",
        b"KUBEFLOW-USERID",
        b"Kubeflow-Userid",
        b"kubeflow-groups",
        b"KubeFlow-Groups",
    ]
)
SPOOFED = st.lists(
    st.tuples(IDENTITY_NAMES, st.sampled_from([b"admin@example.com", b"admins", b"", b" x "])),
    max_size=4,
)


def _exchange(address: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD"]),
    target=TARGETS,
    host=HOSTS,
    spoofed=SPOOFED,
    credentials=st.sampled_from(["bearer", "bearer", "bearer", "none"]),
)
def test_wire_requests(
    wire: dict[str, Any],
    method: bytes,
    target: bytes,
    host: bytes,
    spoofed: list[tuple[bytes, bytes]],
    credentials: str,
) -> None:
    headers = [(b"Host", host), (b"Content-Type", b"application/json"), *spoofed]
    if credentials == "bearer":
        headers.append((b"Authorization", b"Bearer " + wire["token"].encode()))
    head = b"".join(b"%s: %s\r\n" % pair for pair in headers)
    request = b"%s %s HTTP/1.1\r\n%sConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
        method,
        target,
        head,
        len(BODY),
        BODY,
    )
    answer = _exchange(wire["address"], request)
    status_line = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert status_line is not None, answer[:200]  # answered, not dropped
    status = int(status_line.group(1))
    event(f"status {status}")
    assert status < 500, answer[:500]
    body = answer.partition(b"\r\n\r\n")[2]
    if status != 200 or not body.startswith(b'{"predictions"'):
        return
    # The model answered: never in a namespace the caller has no role in ...
    raw_path = target.partition(b"?")[0]
    names = {naive_path_namespace(raw_path), naive_host_namespace(host.decode("latin-1"))}
    assert names <= {None, "ns-a"}, (target, host, names)
    # ... and it saw the gateway's identity headers only, and no credentials.
    userid, groups, authorization, cookie = orjson.loads(body)["predictions"]
    assert (userid, groups, authorization, cookie) == (USER_EMAIL, "team-a", None, None)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from([PREDICT, "/serving/ns-a/echo" + PREDICT]),
    host=st.sampled_from([b"127.0.0.1", b"echo.ns-a.example.com", b"echo.ns-a.svc:80"]),
    spoofed=SPOOFED.filter(bool),
)
def test_spoofed_identity_headers_never_reach_the_model(
    wire: dict[str, Any], target: str, host: bytes, spoofed: list[tuple[bytes, bytes]]
) -> None:
    head = b"".join(b"%s: %s\r\n" % pair for pair in spoofed)
    request = (
        b"POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s"
        b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
    ) % (target.encode(), host, wire["token"].encode(), head, len(BODY), BODY)
    answer = _exchange(wire["address"], request)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    predictions = orjson.loads(answer.partition(SEP)[2])["predictions"]
    assert predictions == [USER_EMAIL, "team-a", None, None]
