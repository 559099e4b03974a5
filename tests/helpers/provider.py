"""Driving the identity provider as a relying party does: its authorization request, the
password login at ``/dex/auth/local`` and the redirect with a code, hop by hop."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

import httpx

from tests.helpers.kubeflow import AUTHSERVICE_ID, USER_EMAIL, USER_PASSWORD
from tests.helpers.servers import CliServer

SCOPES = "openid profile email groups offline_access"


def provider_client(idp: CliServer) -> httpx.Client:
    """A client of the provider's origin that follows no redirect."""
    return httpx.Client(base_url=idp.url, timeout=30, follow_redirects=False)


def auth_params(**extra: str) -> dict[str, str]:
    """oidc-authservice's authorization request, with ``extra`` fields added or replaced."""
    return {
        "client_id": AUTHSERVICE_ID,
        "redirect_uri": "/login/oidc",
        "response_type": "code",
        "scope": SCOPES,
        "state": "st-1",
        **extra,
    }


def login_code(
    idp: CliServer,
    params: dict[str, str],
    email: str = USER_EMAIL,
    password: str = USER_PASSWORD,
) -> httpx.Response:
    """Walk Dex's hops as a non-redirect-following client would; return the final redirect."""
    with provider_client(idp) as c:
        r = c.get("/dex/auth", params=params)
        assert r.status_code == 302, r.text
        login_url = r.headers["location"]
        assert re.fullmatch(r"/dex/auth/local\?req=[\w-]+", login_url)
        form = c.get(login_url)
        assert form.status_code == 200
        assert 'name="login"' in form.text and 'name="password"' in form.text
        r = c.post(login_url, data={"login": email, "password": password})
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith("/dex/approval?req=")
        return c.get(r.headers["location"])


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
