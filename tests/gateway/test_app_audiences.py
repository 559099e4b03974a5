"""Bearer tokens of /dex are accepted only for the gateway's own clients (issue 9, finding 7).

A third-party app registered in the Dex config receives its users' tokens; it must not be
able to replay them at the gateway as those users.
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.kubeflow import (
    AUTHSERVICE_ID,
    AUTHSERVICE_SECRET,
    USER_EMAIL,
    USER_HASH,
)
from tests.helpers.login import Login, raw_client
from tests.helpers.servers import CliServer, CliServers

CONFIG = f"""
staticPasswords:
- email: {USER_EMAIL}
  hash: "{USER_HASH}"
  username: user
  userID: "1"
staticClients:
- id: {AUTHSERVICE_ID}
  secret: {AUTHSERVICE_SECRET}
  redirectURIs: ["/login/oidc", "/authservice/oidc/callback"]
  trustedPeers: [peer-app]
- id: third-party-app
  secret: third-party-secret
  redirectURIs: ["http://127.0.0.1/cb"]
- id: peer-app
  secret: peer-secret
  redirectURIs: ["http://127.0.0.1/cb"]
- id: modelport-cli
  public: true
"""
CROSS_CLIENT = f"audience:server:client_id:{AUTHSERVICE_ID}"
SERVING = "/serving/own/m/v2/models/m/infer"


def _start(cli_servers: CliServers, *extra: str) -> CliServer:
    gw = cli_servers.gateway(CONFIG, *extra)
    gw.cli("namespaces", "create", "own", "--owner", USER_EMAIL)
    gw.cli("namespaces", "create", "robots", "--owner", "admin@example.com")
    gw.cli("namespaces", "add-contributor", "robots", "client:third-party-app")
    return gw


@pytest.fixture(scope="module")
def gw(cli_servers: CliServers) -> CliServer:
    return _start(cli_servers)


def _user_tokens(
    login: Login, gw: CliServer, client: str, secret: str | None, scope: str
) -> list[str]:
    """(access token, ID token) of user@example.com issued to ``client``."""
    body = login.tokens(gw, client=client, secret=secret, scope=scope)
    return [body["access_token"], body["id_token"]]


def _check(gw: CliServer, token: str, uri: str = SERVING) -> httpx.Response:
    with raw_client(gw) as c:
        return c.get("/authz", headers={"X-Original-URI": uri, "Authorization": f"Bearer {token}"})


def test_a_third_party_apps_user_tokens_are_refused(gw: CliServer, login: Login) -> None:
    for token in _user_tokens(login, gw, "third-party-app", "third-party-secret", "openid email"):
        r = _check(gw, token)
        assert r.status_code == 401, r.text
        assert "another application" in r.json()["error"]
    # ... also without the email scope (once taken for a service account's token)
    for token in _user_tokens(login, gw, "third-party-app", "third-party-secret", "openid"):
        assert _check(gw, token).status_code == 401


def test_the_gateways_own_clients_are_accepted(gw: CliServer, login: Login) -> None:
    scope = "openid email groups"
    for token in [
        *_user_tokens(login, gw, AUTHSERVICE_ID, AUTHSERVICE_SECRET, scope),
        *_user_tokens(login, gw, "modelport-cli", None, scope),  # what `modelport login` holds
        # Dex's cross-client trust: the gateway's client lists peer-app in trustedPeers.
        *_user_tokens(login, gw, "peer-app", "peer-secret", f"{scope} {CROSS_CLIENT}"),
    ]:
        r = _check(gw, token)
        assert r.status_code == 200 and r.headers["kubeflow-userid"] == USER_EMAIL, r.text


def test_a_service_account_speaks_only_for_its_client(gw: CliServer) -> None:
    r = httpx.post(
        f"{gw.url}/dex/token",
        data={"grant_type": "client_credentials"},
        auth=("third-party-app", "third-party-secret"),
    )
    token = r.json()["access_token"]
    ok = _check(gw, token, "/serving/robots/m/v2/models/m/infer")
    assert ok.status_code == 200 and ok.headers["kubeflow-userid"] == "client:third-party-app"
    assert _check(gw, token).status_code == 403  # never as a user of namespace "own"


def test_the_accepted_clients_are_configurable(cli_servers: CliServers, login: Login) -> None:
    gateway = _start(cli_servers, "--accept-audience", "third-party-app")
    try:
        scope = "openid email"
        (token, _) = _user_tokens(login, gateway, "third-party-app", "third-party-secret", scope)
        assert _check(gateway, token).status_code == 200
        (token, _) = _user_tokens(login, gateway, AUTHSERVICE_ID, AUTHSERVICE_SECRET, scope)
        assert _check(gateway, token).status_code == 401
    finally:
        gateway.stop()
