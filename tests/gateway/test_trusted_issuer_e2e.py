"""A second modelport identity provider acting as an external (company) issuer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwk, jwt

from tests.helpers.kubeflow import USER_HASH, USER_PASSWORD
from tests.helpers.login import Login
from tests.helpers.servers import CliServer, CliServers

PARTNER_CONFIG = f"""
staticPasswords:
- email: partner@corp.example
  hash: "{USER_HASH}"
  username: partner
  userID: "p-1"
  groups: [corp]
staticClients:
- id: partner-app
  secret: partner-secret
  redirectURIs: ["http://127.0.0.1/cb"]
- id: other-app
  secret: other-secret
  redirectURIs: ["http://127.0.0.1/cb"]
"""
INFER = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[6.8, 2.8, 4.8, 1.4]]}
    ]
}


@pytest.fixture(scope="module")
def external(cli_servers: CliServers) -> CliServer:
    return cli_servers.identity(PARTNER_CONFIG)


class PlainIssuer:
    """A bare OIDC issuer on a real socket (discovery + JWKS) whose tokens the test signs
    with any claims, e.g. the email_verified a company IdP may leave out or set false."""

    def __init__(self) -> None:
        self.key = jwk.RSAKey.generate_key(2048, private=True, auto_kid=True)
        keys = {"keys": [self.key.as_dict(private=False)]}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                docs = {
                    "/.well-known/openid-configuration": {
                        "issuer": outer.issuer,
                        "jwks_uri": f"{outer.issuer}/keys",
                    },
                    "/keys": keys,
                }
                body = json.dumps(docs.get(self.path, {})).encode()
                self.send_response(200 if self.path in docs else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, **claims: Any) -> str:
        base = {"iss": self.issuer, "aud": "corp-gw", "sub": "u1", "exp": int(time.time()) + 600}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, {**base, **claims}, self.key)


@pytest.fixture(scope="module")
def plain_issuer() -> Iterator[PlainIssuer]:
    issuer = PlainIssuer()
    yield issuer
    issuer.server.shutdown()


@pytest.fixture(scope="module")
def trusting_gateway(cli_servers: CliServers, external, upstream, plain_issuer) -> CliServer:
    return cli_servers.gateway(
        None,
        "--trust-issuer",
        f"{external.issuer}=partner-app",
        "--trust-issuer",
        f"{plain_issuer.issuer}=corp-gw",
        upstream=upstream.url,
    )


def _token(login: Login, idp: CliServer, client: str, secret: str) -> str:
    return login.id_token(
        idp, user="partner@corp.example", password=USER_PASSWORD, client=client, secret=secret
    )


def test_external_issuer_tokens_are_accepted_for_their_audience(
    trusting_gateway, external, login: Login
):
    good = _token(login, external, "partner-app", "partner-secret")
    r = httpx.post(
        f"{trusting_gateway.url}/v2/models/sklearn-iris/infer",
        json=INFER,
        headers={"Authorization": f"Bearer {good}"},
    )
    assert r.status_code == 200, r.text
    wrong_aud = _token(login, external, "other-app", "other-secret")
    r = httpx.post(
        f"{trusting_gateway.url}/v2/models/sklearn-iris/infer",
        json=INFER,
        headers={"Authorization": f"Bearer {wrong_aud}"},
    )
    assert r.status_code == 401


def test_untrusted_issuer_is_refused(trusting_gateway, cli_servers: CliServers):
    from joserfc import jwk, jwt

    # A real provider that the gateway does not trust, and a token claiming to come from it.
    stranger = cli_servers.identity(None)
    try:
        key = jwk.RSAKey.generate_key(2048, private=True, auto_kid=True)
        forged = jwt.encode(
            {"alg": "RS256", "kid": key.kid},
            {
                "iss": stranger.issuer,
                "aud": "partner-app",
                "sub": "x",
                "email": "x@example.com",
                "exp": 4102444800,
            },
            key,
        )
        r = httpx.post(
            f"{trusting_gateway.url}/v2/models/sklearn-iris/infer",
            json=INFER,
            headers={"Authorization": f"Bearer {forged}"},
        )
        assert r.status_code == 401
    finally:
        stranger.stop()


@pytest.mark.parametrize(
    ("verified", "status"),
    [(True, 200), (None, 401), (False, 401), ("true", 401), (1, 401)],
)
def test_external_tokens_need_a_verified_email(
    trusting_gateway, plain_issuer: PlainIssuer, verified: object, status: int
) -> None:
    claims: dict[str, Any] = {"email": "someone@corp.example"}
    if verified is not None:
        claims["email_verified"] = verified
    r = httpx.post(
        f"{trusting_gateway.url}/v2/models/sklearn-iris/infer",
        json=INFER,
        headers={"Authorization": f"Bearer {plain_issuer.token(**claims)}"},
    )
    assert r.status_code == status, r.text
    if status == 401:
        assert "email_verified" in r.json()["error"]
