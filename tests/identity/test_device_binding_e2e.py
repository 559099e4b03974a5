"""The device flow's callback approves a device only with a code of its own request.

Issue 9, finding 2: ``/dex/device/callback`` used to accept any code of the same client, so a
stolen code (and no PKCE verifier) gave the thief a device login with the scopes the device
asked for, refresh token included.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.helpers.kubeflow import USER_EMAIL, USER_PASSWORD
from tests.helpers.provider import login_code, pkce_pair, provider_client
from tests.helpers.servers import CliServer

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLI = "modelport-cli"


def start_device(c: httpx.Client, scope: str) -> dict[str, str]:
    r = c.post("/dex/device/code", data={"client_id": CLI, "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()


def poll(c: httpx.Client, device: dict[str, str]) -> httpx.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": CLI}
    return c.post("/dex/token", data=data)


def auth_url_of(c: httpx.Client, device: dict[str, str]) -> str:
    """Where /device/auth/verify_code sends the person's browser."""
    r = c.post("/dex/device/auth/verify_code", data={"user_code": device["user_code"]})
    assert r.status_code == 302, r.text
    return r.headers["location"]


def code_from(idp: CliServer, url: str) -> httpx.Response:
    """Log in at an /auth URL; return the provider's redirect carrying the code."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return login_code(idp, query)


def victim_code(idp: CliServer) -> str:
    """A code the victim got in an ordinary CLI login (PKCE with the victim's verifier)."""
    _, challenge = pkce_pair()
    final = login_code(
        idp,
        {
            "client_id": CLI,
            "redirect_uri": "http://127.0.0.1:8765/callback",
            "response_type": "code",
            "scope": "openid email",
            "state": "victim",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    return parse_qs(urlsplit(final.headers["location"]).query)["code"][0]


def test_a_stolen_code_of_the_same_client_approves_no_device(idp: CliServer):
    stolen = victim_code(idp)
    with provider_client(idp) as c:
        device = start_device(c, "openid email groups offline_access")
        r = c.get("/dex/device/callback", params={"code": stolen, "state": device["user_code"]})
        assert r.status_code == 400
        assert "Login Successful" not in r.text
        pending = poll(c, device)
        assert pending.status_code == 401, pending.text
        assert pending.json()["error"] == "authorization_pending"


def test_a_code_with_the_devices_challenge_but_another_redirect_is_refused(idp: CliServer):
    with provider_client(idp) as c:
        device = start_device(c, "openid email")
        params = parse_qs(urlsplit(auth_url_of(c, device)).query)
    # Someone who saw the device's challenge uses it in a login to a redirect of their own.
    elsewhere = {k: v[0] for k, v in params.items()}
    elsewhere["redirect_uri"] = "http://127.0.0.1:8765/callback"
    final = login_code(idp, elsewhere)
    code = parse_qs(urlsplit(final.headers["location"]).query)["code"][0]
    with provider_client(idp) as c:
        r = c.get("/dex/device/callback", params={"code": code, "state": device["user_code"]})
        assert r.status_code == 400
        assert poll(c, device).status_code == 401


def test_scopes_beyond_the_devices_request_are_refused(idp: CliServer):
    with provider_client(idp) as c:
        device = start_device(c, "openid email")
        url = urlsplit(auth_url_of(c, device))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    query["scope"] = "openid email groups offline_access"
    done = code_from(idp, f"{url.path}?{urlencode(query)}")
    callback = urlsplit(done.headers["location"])
    assert callback.path == "/dex/device/callback"
    with provider_client(idp) as c:
        r = c.get(callback.path, params=parse_qs(callback.query))
        assert r.status_code == 400
        assert poll(c, device).status_code == 401


def test_a_device_is_approved_once_with_its_own_request(idp: CliServer):
    with provider_client(idp) as c:
        device = start_device(c, "openid email")
        url = auth_url_of(c, device)
        query = parse_qs(urlsplit(url).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["state"] == [device["user_code"]]  # Dex's binding of the browser hop
        assert query["redirect_uri"] == ["/dex/device/callback"]
    first = urlsplit(code_from(idp, url).headers["location"])
    # A second login through the same URL (a reload, or someone else) gets its own code.
    second = urlsplit(code_from(idp, url).headers["location"])
    with provider_client(idp) as c:
        ok = c.get(first.path, params=parse_qs(first.query))
        assert ok.status_code == 200 and "Login Successful" in ok.text
        again = c.get(second.path, params=parse_qs(second.query))
        assert again.status_code == 400
        replay = c.get(first.path, params=parse_qs(first.query))
        assert replay.status_code == 400
        tokens = poll(c, device)
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        assert "refresh_token" not in body  # the device did not ask for offline_access
        info = c.get("/dex/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert info.json()["email"] == USER_EMAIL
        assert "groups" not in info.json()


@pytest.mark.parametrize("bad", ["", "not-a-code"])
def test_callback_without_a_valid_code(idp: CliServer, bad: str):
    with provider_client(idp) as c:
        device = start_device(c, "openid")
        r = c.get("/dex/device/callback", params={"code": bad, "state": device["user_code"]})
        assert r.status_code == 400
        assert USER_PASSWORD not in r.text
