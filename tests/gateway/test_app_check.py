"""``/authz`` (Envoy ext_authz, nginx auth_request) places every request in a namespace the
way the proxies in front of it route, and denies what it cannot place (issue 9, finding 3)."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.kubeflow import AS_AUTHSERVICE, DEX_CONFIG, USER_EMAIL
from tests.helpers.login import Login, raw_client
from tests.helpers.servers import CliServer, CliServers

INFER = "/v2/models/m/infer"


@pytest.fixture(scope="module")
def checker(cli_servers: CliServers) -> CliServer:
    gw = cli_servers.gateway(DEX_CONFIG)  # /authz never forwards: no upstream
    # user@example.com owns "mine" and has no role in "fenced".
    gw.cli("namespaces", "create", "mine", "--owner", USER_EMAIL)
    gw.cli("namespaces", "create", "fenced", "--owner", "second@example.com")
    return gw


@pytest.fixture(scope="module")
def bearer(checker: CliServer, login: Login) -> dict[str, str]:
    return login.bearer(checker, **AS_AUTHSERVICE)


def _nginx(gw: CliServer, uri: str, headers: dict[str, str]) -> httpx.Response:
    with raw_client(gw) as c:
        return c.get(
            "/authz", headers={"X-Original-URI": uri, "X-Original-Method": "POST", **headers}
        )


def send_exactly(
    gw: CliServer, method: str, target: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """The request target byte for byte (httpx would remove dot segments)."""
    url = urlsplit(gw.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.request(method, target, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _envoy(gw: CliServer, raw_path: str, headers: dict[str, str]) -> httpx.Response:
    status, found, body = send_exactly(gw, "POST", raw_path, headers)
    return httpx.Response(status, headers=found, content=body)


@pytest.mark.parametrize(
    "uri",
    [
        f"/%73erving/fenced/m{INFER}",
        f"//serving/fenced/m{INFER}",
        f"/./serving/fenced/m{INFER}",
        f"/x/../serving/fenced/m{INFER}",
        f"/%2573erving/fenced/m{INFER}",
        f"/serving;p/fenced/m{INFER}",
        f"/SERVING/fenced/m{INFER}",
        f"\\serving\\fenced\\m{INFER}",
        f"/serving/fenced/m{INFER}",
        INFER,  # names no namespace: the proxy's backend is unknown
        "/",
    ],
)
def test_outsider_is_denied_every_spelling(
    checker: CliServer, bearer: dict[str, str], uri: str
) -> None:
    r = _nginx(checker, uri, bearer)
    assert r.status_code == 403, (uri, r.status_code, r.text)
    assert "kubeflow-userid" not in r.headers
    if uri.startswith("/"):  # Envoy prepends /authz to the path it received
        r = _envoy(checker, "/authz" + uri, bearer)
        assert r.status_code == 403, (uri, r.status_code, r.text)


@pytest.mark.parametrize(
    "host",
    [
        "m.fenced.svc.cluster.local",
        "m-predictor.fenced.svc.cluster.local",
        "m-predictor-default.fenced.svc.cluster.local:80",
        "m.fenced.svc:8080",
        "M.FENCED.example.com.",
        "m.fenced.example.com:443",
    ],
)
def test_istio_and_knative_authorities_are_placed(
    checker: CliServer, bearer: dict[str, str], host: str
) -> None:
    assert _nginx(checker, INFER, {**bearer, "Host": host}).status_code == 403
    mine = host.lower().replace("fenced", "mine")
    r = _nginx(checker, INFER, {**bearer, "Host": mine})
    assert r.status_code == 200 and r.headers["kubeflow-userid"] == USER_EMAIL


def test_own_namespace_is_allowed_and_disagreement_denied(
    checker: CliServer, bearer: dict[str, str]
) -> None:
    r = _nginx(checker, f"/serving/mine/m{INFER}?x=1", bearer)
    assert r.status_code == 200 and r.headers["kubeflow-userid"] == USER_EMAIL
    r = _envoy(checker, f"/authz/serving/mine/m{INFER}", bearer)
    assert r.status_code == 200 and r.headers["kubeflow-userid"] == USER_EMAIL
    # The gateway routes by the path, an Istio front by the Host: both must be allowed.
    fenced_host = {**bearer, "Host": "m-predictor.fenced.svc.cluster.local"}
    assert _nginx(checker, f"/serving/mine/m{INFER}", fenced_host).status_code == 403


def test_anonymous_checks(checker: CliServer) -> None:
    # Health of the platform itself needs no credentials ...
    assert _nginx(checker, "/v2/health/ready", {}).status_code == 200
    # ... a model's health (the Host names it) does, and a refused spelling is never skipped.
    r = _nginx(checker, "/v2/health/ready", {"Host": "m.fenced.svc.cluster.local"})
    assert r.status_code == 401
    assert _nginx(checker, "//serving/fenced/m/v2/health/ready", {}).status_code == 401
    assert _envoy(checker, f"/%61uthz/serving/mine/m{INFER}", {}).status_code in (302, 401)


def test_the_gateway_refuses_what_authz_refuses(checker: CliServer, bearer: dict[str, str]) -> None:
    """Its own routing uses the same placement: no spelling reaches another namespace."""
    for raw in (f"//serving/fenced/m{INFER}", f"/./serving/fenced/m{INFER}", "/SERVING/x/m/"):
        status, _, body = send_exactly(checker, "GET", raw, bearer)
        assert status == 400, (raw, status, body)
    with raw_client(checker) as c:
        r = c.get(
            f"/serving/mine/m{INFER}",
            headers={**bearer, "Host": "m.fenced.example.com"},
        )
    assert r.status_code == 400 and "different namespaces" in r.json()["error"]
