"""What an anonymous caller can make the provider store is bounded (issue 9, finding 5).

``state``/``nonce`` of 60 KB used to be kept for 24 h with every ``/dex/auth`` request.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers.kubeflow import AS_AUTHSERVICE
from tests.helpers.login import password_grant
from tests.helpers.provider import auth_params, provider_client
from tests.helpers.servers import CliServer

BIG = "x" * 60_000


def refused(r: httpx.Response) -> dict[str, list[str]]:
    """The query of a Dex-style error redirect back to the client."""
    assert r.status_code == 303, r.text
    location = urlsplit(r.headers["location"])
    assert location.path == "/login/oidc"
    query = parse_qs(location.query)
    assert query["error"] == ["invalid_request"]
    return query


@pytest.mark.parametrize("name", ["state", "nonce", "scope", "code_challenge"])
def test_oversized_auth_parameters_are_refused_not_stored(idp: CliServer, name: str):
    with provider_client(idp) as c:
        value = "openid " * 8_000 if name == "scope" else BIG
        query = refused(c.get("/dex/auth", params=auth_params(**{name: value})))
        assert name in query["error_description"][0]
        assert len(c.get("/dex/auth", params=auth_params()).headers["location"]) < 100
        # the refused value is not echoed back either
        assert len(str(query)) < 1000
        if name != "state":
            assert query["state"] == ["st-1"]


def test_parameters_within_bounds_still_work(idp: CliServer):
    with provider_client(idp) as c:
        ok = c.get(
            "/dex/auth",
            params=auth_params(state="s" * 2048, nonce="n" * 1024, scope="openid openid email"),
        )
        assert ok.status_code == 302 and ok.headers["location"].startswith("/dex/auth/local?")
        refused(c.get("/dex/auth", params=auth_params(state="s" * 2049)))
        refused(c.get("/dex/auth", params=auth_params(nonce="é" * 513)))  # bytes, not chars


def test_pkce_parameters_are_checked_before_storing(idp: CliServer):
    with provider_client(idp) as c:
        # a method on its own is still checked (Dex), and never stored unchecked
        refused(c.get("/dex/auth", params=auth_params(code_challenge_method=BIG)))
        refused(c.get("/dex/auth", params=auth_params(code_challenge="short")))
        ok = c.get("/dex/auth", params=auth_params(code_challenge="a" * 43))
        assert ok.status_code == 302


def test_long_loopback_redirects_are_not_registered(idp: CliServer):
    with provider_client(idp) as c:
        r = c.get(
            "/dex/auth",
            params={
                **auth_params(),
                "client_id": "modelport-cli",
                "redirect_uri": "http://127.0.0.1:1/" + "p" * 5000,
            },
        )
        assert r.status_code == 400 and "location" not in r.headers


def test_device_and_token_requests_are_bounded_too(idp: CliServer):
    with provider_client(idp) as c:
        r = c.post("/dex/device/code", data={"client_id": "modelport-cli", "scope": BIG})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = password_grant(
        idp,
        user="nobody@example.com",
        password="irrelevant",
        scope="openid",
        extra={"nonce": BIG},
        **AS_AUTHSERVICE,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "nonce" in r.json()["error_description"]
