"""The OpenID Connect provider over real sockets: Dex's browser flow, token grants, attacks."""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers.kubeflow import AUTHSERVICE_ID, AUTHSERVICE_SECRET, USER_EMAIL, USER_PASSWORD
from tests.helpers.login import Login, password_grant
from tests.helpers.provider import SCOPES, auth_params, login_code, pkce_pair, provider_client
from tests.helpers.servers import CliServer


def test_discovery_and_keys(idp: CliServer):
    with provider_client(idp) as c:
        doc = c.get("/dex/.well-known/openid-configuration").json()
        assert doc["issuer"] == idp.issuer
        for key, path in [
            ("authorization_endpoint", "/auth"),
            ("token_endpoint", "/token"),
            ("jwks_uri", "/keys"),
            ("userinfo_endpoint", "/userinfo"),
        ]:
            assert doc[key] == idp.issuer + path
        assert doc["code_challenge_methods_supported"] == ["S256", "plain"]
        assert "password" in doc["grant_types_supported"]
        keys = c.get("/dex/keys")
        assert keys.headers["cache-control"].startswith("max-age=")
        (key,) = keys.json()["keys"]
        assert key["kty"] == "RSA" and key["use"] == "sig" and "d" not in key


def test_five_step_flow_gives_code_then_tokens(idp: CliServer):
    final = login_code(idp, auth_params())
    assert final.status_code == 303
    location = urlsplit(final.headers["location"])
    assert location.path == "/login/oidc"
    query = parse_qs(location.query)
    assert query["state"] == ["st-1"]
    code = query["code"][0]
    with provider_client(idp) as c:
        r = c.post(
            "/dex/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": "/login/oidc"},
            auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
        )
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
        assert r.headers["cache-control"] == "no-store"
        info = c.get("/dex/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 200
        assert info.json()["email"] == USER_EMAIL
        assert info.json()["groups"] == ["team-a"]
        # the code is single-use
        again = c.post(
            "/dex/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": "/login/oidc"},
            auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_newer_dex_login_url_serves_the_same_form(idp: CliServer):
    with provider_client(idp) as c:
        req = c.get("/dex/auth", params=auth_params()).headers["location"].split("req=")[1]
        url = f"/dex/auth/local/login?back=&state={req}"
        assert 'name="password"' in c.get(url).text
        r = c.post(url, data={"login": USER_EMAIL, "password": USER_PASSWORD})
        assert r.status_code == 303
        final = c.get(r.headers["location"])
        assert final.status_code == 303 and "code=" in final.headers["location"]


def test_requests_style_client_following_redirects(idp: CliServer):
    # What the Kubeflow Pipelines login snippet does: follow redirects, POST the form it finds.
    with httpx.Client(base_url=idp.url, follow_redirects=True, timeout=30) as c:
        r = c.get(
            "/dex/auth", params={**auth_params(), "redirect_uri": "http://127.0.0.1/callback"}
        )
        assert "/dex/auth/local" in str(r.url)
        action = re.search(r'action="([^"]+)"', r.text).group(1).replace("&amp;", "&")
        with pytest.raises(httpx.ConnectError):
            # the final hop goes to the (absent) callback server with the code
            c.post(action, data={"login": USER_EMAIL, "password": USER_PASSWORD})


def test_wrong_password_rerenders_and_lockout(idp: CliServer):
    with provider_client(idp) as c:
        login_url = c.get("/dex/auth", params=auth_params()).headers["location"]
        r = c.post(login_url, data={"login": "second@example.com", "password": "nope"})
        assert r.status_code == 200
        assert "Invalid Email Address and password." in r.text
        assert 'value="second@example.com"' in r.text
        for _ in range(5):
            r = c.post(login_url, data={"login": "second@example.com", "password": "nope"})
        assert r.status_code == 429
        # locked even with the right password
        r = c.post(login_url, data={"login": "second@example.com", "password": USER_PASSWORD})
        assert r.status_code == 429


def test_password_grant(idp: CliServer):
    ok = password_grant(idp, scope="openid email")
    assert ok.status_code == 200, ok.text
    assert "refresh_token" not in ok.json()
    bad = password_grant(idp, password="wrong", scope="openid")
    assert bad.status_code == 401 and bad.json()["error"] == "access_denied"
    noscope = password_grant(idp, scope="email")
    assert noscope.status_code == 400 and "openid" in noscope.json()["error_description"]
    badclient = password_grant(idp, scope="openid", client=AUTHSERVICE_ID, secret="wrong-secret")
    assert badclient.status_code == 401 and badclient.json()["error"] == "invalid_client"
    with provider_client(idp) as c:
        weird = c.post("/dex/token", data={"grant_type": "magic", "client_id": "modelport-cli"})
        assert weird.status_code == 400 and weird.json()["error"] == "unsupported_grant_type"


def test_refresh_rotation_and_reuse_detection(idp: CliServer, login: Login):
    first = login.tokens(idp, scope=SCOPES)["refresh_token"]
    with provider_client(idp) as c:
        r = c.post(
            "/dex/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first,
                "client_id": "modelport-cli",
            },
        )
        assert r.status_code == 200, r.text
        second = r.json()["refresh_token"]
        assert second != first
        # the old one comes back: reuse detected, and the whole family is revoked
        reuse = c.post(
            "/dex/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first,
                "client_id": "modelport-cli",
            },
        )
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        after = c.post(
            "/dex/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": second,
                "client_id": "modelport-cli",
            },
        )
        assert after.status_code == 400
        wrong_client = c.post(
            "/dex/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "x" * 40,
                "client_id": "modelport-cli",
            },
        )
        assert wrong_client.status_code == 400


def test_pkce_for_public_clients(idp: CliServer):
    redirect = "http://127.0.0.1:8765/callback"
    base = {
        "client_id": "modelport-cli",
        "redirect_uri": redirect,
        "response_type": "code",
        "scope": "openid email",
        "state": "s",
    }
    with provider_client(idp) as c:
        r = c.get("/dex/auth", params=base)
        assert r.status_code == 303 and "error=invalid_request" in r.headers["location"]
        r = c.get(
            "/dex/auth", params={**base, "code_challenge": "abc", "code_challenge_method": "plain"}
        )
        assert "error=invalid_request" in r.headers["location"]  # no downgrade to plain
    verifier, challenge = pkce_pair()
    final = login_code(idp, {**base, "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(final.headers["location"]).query)["code"][0]
    with provider_client(idp) as c:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": "modelport-cli",
        }
        wrong = c.post("/dex/token", data={**data, "code_verifier": "x" * 50})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    final = login_code(idp, {**base, "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(final.headers["location"]).query)["code"][0]
    with provider_client(idp) as c:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": "modelport-cli",
        }
        assert c.post("/dex/token", data={**data, "code_verifier": verifier}).status_code == 200


def test_no_open_redirects_and_bad_requests(idp: CliServer):
    with provider_client(idp) as c:
        r = c.get("/dex/auth", params=auth_params(redirect_uri="https://evil.example/steal"))
        assert r.status_code == 400 and "location" not in r.headers
        assert "Unregistered redirect_uri" in r.text
        r = c.get("/dex/auth", params=auth_params(client_id="nobody"))
        assert r.status_code == 404
        r = c.get("/dex/auth", params=auth_params(scope="profile"))
        assert r.status_code == 303 and "error=invalid_scope" in r.headers["location"]
        assert c.get("/dex/auth/local?req=not-a-request").status_code == 400
        # approval without the right hmac
        login_url = c.get("/dex/auth", params=auth_params()).headers["location"]
        r = c.post(login_url, data={"login": USER_EMAIL, "password": USER_PASSWORD})
        tampered = re.sub(r"hmac=[0-9a-f]+", "hmac=" + "0" * 64, r.headers["location"])
        assert c.get(tampered).status_code == 401


def test_userinfo_needs_a_valid_token(idp: CliServer):
    with provider_client(idp) as c:
        r = c.get("/dex/userinfo")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = c.get("/dex/userinfo", headers={"Authorization": "Bearer abc.def.ghi"})
        assert r.status_code == 403


def test_third_party_relying_party_authlib(idp: CliServer):
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey, jwt

    meta = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    redirect = "http://127.0.0.1/callback"
    rp = OAuth2Client(
        AUTHSERVICE_ID,
        AUTHSERVICE_SECRET,
        scope=SCOPES,
        redirect_uri=redirect,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n-42"
    )
    params = dict(parse_qs(urlsplit(url).query, keep_blank_values=True))
    final = login_code(idp, {k: v[0] for k, v in params.items()})
    callback = "http://127.0.0.1" + final.headers["location"].removeprefix("http://127.0.0.1")
    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    keys = JsonWebKey.import_key_set(httpx.get(meta["jwks_uri"]).json())
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_options={
            "iss": {"essential": True, "value": meta["issuer"]},
            "aud": {"essential": True, "value": AUTHSERVICE_ID},
            "nonce": {"essential": True, "value": "n-42"},
        },
    )
    claims.validate()
    assert claims["email"] == USER_EMAIL
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    info = rp.get(meta["userinfo_endpoint"]).json()
    assert info["email"] == USER_EMAIL


def test_device_flow(idp: CliServer):
    with provider_client(idp) as c:
        start = c.post(
            "/dex/device/code", data={"client_id": "modelport-cli", "scope": "openid email"}
        )
        assert start.status_code == 200
        doc = start.json()
        assert re.fullmatch(
            r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", doc["user_code"]
        )
        assert doc["verification_uri"] == f"{idp.issuer}/device"
        poll = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": doc["device_code"],
            "client_id": "modelport-cli",
        }
        pending = c.post("/dex/token", data=poll)
        assert pending.status_code == 401 and pending.json()["error"] == "authorization_pending"
        too_fast = c.post("/dex/token", data=poll)
        assert too_fast.status_code == 400 and too_fast.json()["error"] == "slow_down"
        # the person, in a browser
        page = c.get(
            urlsplit(doc["verification_uri_complete"]).path, params={"user_code": doc["user_code"]}
        )
        assert doc["user_code"] in page.text
        bad = c.post("/dex/device/auth/verify_code", data={"user_code": "BBBB-BBBB"})
        assert bad.status_code == 400 and "Invalid or Expired User Code" in bad.text
        to_auth = c.post(
            "/dex/device/auth/verify_code", data={"user_code": doc["user_code"].lower()}
        )
        assert to_auth.status_code == 302 and to_auth.headers["location"].startswith("/dex/auth?")
        login_url = c.get(to_auth.headers["location"]).headers["location"]
        approved = c.post(login_url, data={"login": USER_EMAIL, "password": USER_PASSWORD})
        done = c.get(c.get(approved.headers["location"]).headers["location"])
        assert done.status_code == 200 and "Login Successful" in done.text
        # Approved: answered at once, however soon after the last poll (the interval and
        # expiry are tested with a moved clock in test_device_polling.py).
        tokens = c.post("/dex/token", data=poll)
        assert tokens.status_code == 200, tokens.text
        assert "id_token" in tokens.json()
        # single use
        assert c.post("/dex/token", data=poll).status_code == 400


def test_client_credentials_and_revocation(idp: CliServer, login: Login):
    with provider_client(idp) as c:
        r = c.post(
            "/dex/token",
            data={"grant_type": "client_credentials"},
            auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert "refresh_token" not in body and "id_token" not in body
        info = c.get(
            "/dex/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
        ).json()
        assert info["client_id"] == AUTHSERVICE_ID and "email" not in info
        public = c.post(
            "/dex/token", data={"grant_type": "client_credentials", "client_id": "modelport-cli"}
        )
        assert public.status_code == 400 and public.json()["error"] == "unauthorized_client"
        # RFC 7009: a revoked refresh token stops working
        refresh = login.tokens(idp, scope=SCOPES)["refresh_token"]
        assert (
            c.post(
                "/dex/token/revoke", data={"token": refresh, "client_id": "modelport-cli"}
            ).status_code
            == 200
        )
        again = c.post(
            "/dex/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": "modelport-cli",
            },
        )
        assert again.status_code == 400
        # unknown tokens are fine too (RFC 7009 §2.2), bad client credentials are not
        assert (
            c.post(
                "/dex/token/revoke", data={"token": "nope", "client_id": "modelport-cli"}
            ).status_code
            == 200
        )
        assert (
            c.post(
                "/dex/token/revoke", data={"token": "nope"}, auth=(AUTHSERVICE_ID, "bad")
            ).status_code
            == 401
        )
