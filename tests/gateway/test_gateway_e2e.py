"""The gateway over real sockets: Kubeflow's login flows, Bearer tokens, and attacks."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from modelport.gateway.sessions import state_cookie
from tests.conftest import wait_for
from tests.helpers.kubeflow import (
    AS_AUTHSERVICE,
    AUTHSERVICE_SECRET,
    USER_EMAIL,
    USER_PASSWORD,
)
from tests.helpers.login import Login, five_step_login, password_grant, raw_client
from tests.helpers.servers import CliServer

INFER = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[6.8, 2.8, 4.8, 1.4]]}
    ]
}


def test_five_step_curl_flow_then_infer_again_and_again(gateway: CliServer):
    value, final = five_step_login(gateway)
    cookie = next(
        h for h in final.headers.get_list("set-cookie") if h.startswith("authservice_session=")
    )
    for attribute in ("Path=/", "Max-Age=86400", "HttpOnly", "SameSite=Lax"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http here
    with raw_client(gateway) as c:
        headers = {"Cookie": f"authservice_session={value}"}
        meta = c.get("/v2/models/sklearn-iris", headers=headers)
        assert meta.status_code == 200 and meta.json()["name"] == "sklearn-iris"
        for _ in range(5):  # the session can be used again and again
            r = c.post("/v2/models/sklearn-iris/infer", json=INFER, headers=headers)
            assert r.status_code == 200
            assert r.json()["outputs"][0]["data"] == [1]


def test_requests_style_login_snippet(gateway: CliServer):
    # The Kubeflow Pipelines SDK snippet: follow redirects, POST the form found on the page.
    with httpx.Client(base_url=gateway.url, follow_redirects=True, timeout=30) as s:
        page = s.get("/v2/models/sklearn-iris")
        assert "/dex/auth/local" in str(page.url)
        landed = s.post(str(page.url), data={"login": USER_EMAIL, "password": USER_PASSWORD})
        assert landed.status_code == 200
        assert str(landed.url).endswith("/v2/models/sklearn-iris")
        assert s.cookies.get("authservice_session")
        assert s.post("/v2/models/sklearn-iris/infer", json=INFER).status_code == 200


def test_bearer_token_access(gateway: CliServer, login: Login):
    token = login.id_token(gateway, **AS_AUTHSERVICE)
    with raw_client(gateway) as c:
        r = c.post(
            "/v2/models/sklearn-iris/infer",
            json=INFER,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200
        bad = c.post(
            "/v2/models/sklearn-iris/infer",
            json=INFER,
            headers={"Authorization": f"Bearer {token[:-6]}AAAAAA"},
        )
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        basic = c.get("/v2/models/sklearn-iris", headers={"Authorization": "Basic dTpw"})
        assert basic.status_code == 401
        noemail = login.id_token(gateway, **AS_AUTHSERVICE, scope="openid")
        r = c.get("/v2/models/sklearn-iris", headers={"Authorization": f"Bearer {noemail}"})
        assert r.status_code == 401 and "email" in r.json()["error"]


def test_api_clients_get_401_json_browsers_get_302(gateway: CliServer):
    with raw_client(gateway) as c:
        r = c.get("/v2/models/sklearn-iris", headers={"Accept": "application/json"})
        assert (
            r.status_code == 401 and r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
        )
        r = c.get("/v2/models/sklearn-iris", headers={"Accept": "text/html,application/json"})
        assert r.status_code == 302
        r = c.get("/v2/models/sklearn-iris", headers={"Accept": "*/*"})
        assert r.status_code == 302


def test_health_and_dex_skip_auth(gateway: CliServer):
    with raw_client(gateway) as c:
        assert c.get("/v2/health/ready").status_code == 200
        assert c.get("/healthz").status_code == 200
        assert c.get("/dex/.well-known/openid-configuration").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/dex/../v2/models/sklearn-iris",
        "/dex/%2e%2e/v2/models/sklearn-iris",
        "/dex%2f..%2fv2/models/sklearn-iris",
        "/v2/health/ready/../../models/sklearn-iris",
        "/v2/health/live;x=/../../models/sklearn-iris",
        "//v2/health/ready",
        "/v2/health/ready/",
        "/V2/health/ready",
        "/DEX/keys",
        "/dex/./../v2/models/sklearn-iris",
        "/v2/health/%72eady",
    ],
)
def test_path_tricks_never_bypass_auth(gateway: CliServer, path: str):
    # Send the path exactly as written (no client-side normalisation).
    with raw_client(gateway) as c:
        request = c.build_request("GET", gateway.url + "/")
        request.url = request.url.copy_with(raw_path=path.encode())
        r = c.send(request)
    assert r.status_code in (302, 401, 404), (path, r.status_code, r.text[:200])
    if r.status_code == 404:
        assert "sklearn-iris" not in r.text or "error" in r.text


def test_client_identity_headers_are_replaced(echo_gateway: CliServer, login: Login):
    token = login.id_token(echo_gateway, **AS_AUTHSERVICE)
    with raw_client(echo_gateway) as c:
        r = c.post(
            "/v1/models/echo:predict",
            json={"instances": [1]},
            headers={
                "Authorization": f"Bearer {token}",
                "kubeflow-userid": "admin@example.com",
                "Kubeflow-Groups": "admins",
            },
        )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [USER_EMAIL, "team-a", None, None]


def test_credentials_stay_at_the_gateway(echo_gateway: CliServer, login: Login):
    """Upstream code sees who called, never the caller's token or session to replay."""
    token = login.id_token(echo_gateway, **AS_AUTHSERVICE)
    with raw_client(echo_gateway) as c:
        r = c.post(
            "/v1/models/echo:predict",
            json={"instances": [1]},
            headers={
                "Authorization": f"Bearer {token}",
                "Cookie": "theme=dark; authservice_session=abc; oidc_state_csrf=x; lang=en",
            },
        )
    assert r.status_code == 200, r.text
    userid, _, authorization, cookie = r.json()["predictions"]
    assert userid == USER_EMAIL
    assert authorization is None
    assert cookie == "theme=dark; lang=en"


def test_session_fixation_and_unknown_cookies(gateway: CliServer):
    with raw_client(gateway) as c:
        forged = c.get(
            "/v2/models/sklearn-iris", headers={"Cookie": "authservice_session=chosen-by-attacker"}
        )
        assert forged.status_code == 302
    value, _ = five_step_login(gateway)
    assert value != "chosen-by-attacker"
    again, _ = five_step_login(gateway)
    assert again != value  # every login gets a fresh session


def test_login_csrf_and_state_checks(gateway: CliServer):
    with raw_client(gateway) as c:
        first = c.get("/v2/models/sklearn-iris")
        state = parse_qs(urlsplit(first.headers["location"]).query)["state"][0]
        # a cross-site navigation without our state cookie is refused
        r = c.get(f"/login/oidc?code=x&state={state}", headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        # the state's own cookie (one per pending login), holding another binding, is refused
        cookie = f"{state_cookie(state)}=other"
        r = c.get(f"/login/oidc?code=x&state={state}", headers={"Cookie": cookie})
        assert r.status_code == 400
        # unknown or missing state
        assert c.get("/login/oidc?code=x&state=nope").status_code == 400
        assert c.get("/login/oidc?code=x").status_code == 400


def test_logout_ends_the_session(gateway: CliServer):
    value, _ = five_step_login(gateway)
    headers = {"Cookie": f"authservice_session={value}"}
    with raw_client(gateway) as c:
        assert c.get("/v2/models/sklearn-iris", headers=headers).status_code == 200
        out = c.post("/authservice/logout", headers=headers)
        assert out.status_code == 201
        assert c.get("/v2/models/sklearn-iris", headers=headers).status_code == 302


def test_namespaces_and_api_tokens(gateway: CliServer, login: Login):
    gateway.cli("namespaces", "create", "team-a", "--owner", "second@example.com")
    gateway.cli("namespaces", "create", "team-b", "--owner", USER_EMAIL)
    user_token = login.id_token(gateway, **AS_AUTHSERVICE)
    bearer = {"Authorization": f"Bearer {user_token}"}
    with raw_client(gateway) as c:
        # user@example.com owns team-b, has no role in team-a
        ok = c.post(
            "/serving/team-b/sklearn-iris/v2/models/sklearn-iris/infer", json=INFER, headers=bearer
        )
        assert ok.status_code == 200, ok.text
        denied = c.post(
            "/serving/team-a/sklearn-iris/v2/models/sklearn-iris/infer", json=INFER, headers=bearer
        )
        assert (
            denied.status_code == 403 and "no access to namespace team-a" in denied.json()["error"]
        )
        # Host-based routing decides the namespace too
        denied = c.get(
            "/v2/models/sklearn-iris", headers={**bearer, "Host": "sklearn-iris.team-a.example.com"}
        )
        assert denied.status_code == 403
        gateway.cli("namespaces", "add-contributor", "team-a", USER_EMAIL, "--role", "view")
        ok = c.get(
            "/v2/models/sklearn-iris", headers={**bearer, "Host": "sklearn-iris.team-a.example.com"}
        )
        assert ok.status_code == 200
        # view cannot unload
        r = c.post(
            "/serving/team-a/sklearn-iris/v2/repository/models/sklearn-iris/unload", headers=bearer
        )
        assert r.status_code == 403 and "edit" in r.json()["error"]

        token = gateway.cli(
            "tokens",
            "create",
            "--namespace",
            "team-b",
            "--role",
            "view",
            "--owner",
            USER_EMAIL,
            "--ttl",
            "1h",
        )
        assert token.startswith("mpt_")
        machine = {"Authorization": f"Bearer {token}"}
        ok = c.post(
            "/serving/team-b/sklearn-iris/v2/models/sklearn-iris/infer", json=INFER, headers=machine
        )
        assert ok.status_code == 200
        other_ns = c.post(
            "/serving/team-a/sklearn-iris/v2/models/sklearn-iris/infer", json=INFER, headers=machine
        )
        assert other_ns.status_code == 403
        no_ns = c.post("/v2/models/sklearn-iris/infer", json=INFER, headers=machine)
        assert no_ns.status_code == 403 and "team-b" in no_ns.json()["error"]
        listed = gateway.cli("tokens", "list")
        assert token.split("_", 2)[2] not in listed  # secrets are never shown again
        gateway.cli("tokens", "revoke", token)

        def revoked() -> bool:
            r = c.post(
                "/serving/team-b/sklearn-iris/v2/models/sklearn-iris/infer",
                json=INFER,
                headers=machine,
            )
            return r.status_code == 401

        # positive decisions are cached for 2 s, so a revocation lands within that
        assert wait_for(revoked, timeout=10)


def test_external_check_endpoint_for_envoy_and_nginx(gateway: CliServer, login: Login):
    gateway.cli("namespaces", "create", "checked", "--owner", USER_EMAIL)
    token = login.id_token(gateway, **AS_AUTHSERVICE)
    with raw_client(gateway) as c:
        # nginx auth_request style
        r = c.get(
            "/authz",
            headers={
                "X-Original-URI": "/serving/checked/sklearn-iris/v2/models/sklearn-iris/infer",
                "X-Original-Method": "POST",
                "Authorization": f"Bearer {token}",
                "kubeflow-userid": "spoof@example.com",
            },
        )
        assert r.status_code == 200 and r.headers["kubeflow-userid"] == USER_EMAIL
        r = c.get("/authz", headers={"X-Original-URI": "/v2/models/sklearn-iris"})
        assert r.status_code == 401  # nginx only understands 2xx/401/403
        r = c.get("/authz", headers={"X-Original-URI": "/v2/health/ready"})
        assert r.status_code == 200 and "kubeflow-userid" not in r.headers
        # Envoy ext_authz style: original path appended, the service named by the Host
        r = c.post(
            "/authz/v2/models/sklearn-iris/infer",
            headers={"Authorization": f"Bearer {token}", "Host": "sklearn-iris.checked.svc"},
        )
        assert r.status_code == 200 and r.headers["kubeflow-userid"] == USER_EMAIL
        # a request that names no namespace goes to a backend /authz cannot name: denied
        r = c.post(
            "/authz/v2/models/sklearn-iris/infer", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 403
        r = c.get("/authz/v2/models/sklearn-iris")
        assert r.status_code == 302 and r.headers["location"].startswith("/dex/auth?")
        r = c.get("/authz/dex/../v2/models/sklearn-iris")
        assert r.status_code in (302, 401)


def test_secrets_never_reach_the_logs(gateway: CliServer, login: Login):
    # Runs last in this module: everything above went through this gateway process.
    five_step_login(gateway)
    login.id_token(gateway, **AS_AUTHSERVICE)
    password_grant(gateway, password="a-wrong-password-123", scope="openid", **AS_AUTHSERVICE)
    with raw_client(gateway) as c:
        c.get("/v2/models/sklearn-iris", headers={"Authorization": "Bearer eyJbroken.token.here"})
    log = "".join(gateway.output)
    for secret in (
        USER_PASSWORD,
        "a-wrong-password-123",
        AUTHSERVICE_SECRET,
        "eyJ",
        "mpt_",
        "authservice_session=",
    ):
        assert secret not in log, secret


def test_service_account_with_client_credentials(gateway: CliServer):
    gateway.cli("namespaces", "create", "svc", "--owner", USER_EMAIL)
    token = httpx.post(
        f"{gateway.url}/dex/token",
        data={"grant_type": "client_credentials"},
        auth=("approving-app", "approving-secret"),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with raw_client(gateway) as c:
        r = c.post(
            "/serving/svc/sklearn-iris/v2/models/sklearn-iris/infer", json=INFER, headers=headers
        )
        assert r.status_code == 403 and "client:approving-app" in r.json()["error"]
        gateway.cli(
            "namespaces",
            "add-contributor",
            "svc",
            "client:approving-app",
            "--role",
            "view",
        )
        r = c.post(
            "/serving/svc/sklearn-iris/v2/models/sklearn-iris/infer", json=INFER, headers=headers
        )
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example/x"])
def test_login_never_returns_to_another_host(gateway: CliServer, target: str):
    with raw_client(gateway) as c:
        request = c.build_request("GET", gateway.url + "/")
        request.url = request.url.copy_with(raw_path=target.encode())
        first = c.send(request)
        assert first.status_code == 302
        auth_href = first.headers["location"]
        req = re.search(r"req=([\w-]+)", c.get(auth_href).headers["location"]).group(1)
        posted = c.post(
            f"/dex/auth/local?req={req}", data={"login": USER_EMAIL, "password": USER_PASSWORD}
        )
        final = c.get(c.get(posted.headers["location"]).headers["location"])
        assert final.status_code == 302
        assert final.headers["location"] == "/"
