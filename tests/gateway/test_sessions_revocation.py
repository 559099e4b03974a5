"""Gateway sessions and Bearer JWTs end with their user (issue 9, finding 9).

An ``authservice_session`` cookie and an ID token kept working after ``modelport users
delete`` or a password change.
"""

from __future__ import annotations

import re
import time

import httpx

from tests.gateway.conftest import GatewayProcess
from tests.gateway.test_gateway_e2e import raw_client
from tests.identity.conftest import AUTHSERVICE_ID, AUTHSERVICE_SECRET
from tests.identity.test_revocation_e2e import users_cli

EMAIL = "gw-leaver@example.com"
PREDICT = "/v1/models/echo:predict"
# The gateway caches a positive authentication this long (gateway/app.py CACHE_TTL_S).
CACHE_S = 2.5


def session_cookie(gw: GatewayProcess, password: str) -> str:
    """The documented curl flow through the gateway; returns authservice_session."""
    with raw_client(gw) as c:
        auth_href = c.get(PREDICT).headers["location"]
        req_url = c.get(auth_href).headers["location"]
        req = re.search(r"req=([\w-]+)", req_url).group(1)
        posted = c.post(f"/dex/auth/local?req={req}", data={"login": EMAIL, "password": password})
        assert posted.status_code == 303, posted.text
        callback = c.get(posted.headers["location"]).headers["location"]
        final = c.get(callback)
        assert final.status_code == 302, final.text
        session = next(
            h for h in final.headers.get_list("set-cookie") if h.startswith("authservice_session=")
        )
        return session.split(";")[0].split("=", 1)[1]


def id_token(gw: GatewayProcess, password: str) -> str:
    r = httpx.post(
        f"{gw.url}/dex/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": password,
            "scope": "openid email groups",
        },
        auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
    )
    assert r.status_code == 200, r.text
    return r.json()["id_token"]


def admitted(gw: GatewayProcess, cookie: str, token: str) -> tuple[bool, bool]:
    """(cookie admitted, Bearer token admitted) for a predict call."""
    seen = []
    with raw_client(gw) as c:
        for headers in (
            {"Cookie": f"authservice_session={cookie}"},
            {"Authorization": f"Bearer {token}"},
        ):
            r = c.post(
                PREDICT,
                json={"instances": [1]},
                headers={**headers, "Accept": "application/json"},
            )
            assert r.status_code in (200, 401), r.text
            if r.status_code == 200:
                assert r.json()["predictions"][0] == EMAIL
            seen.append(r.status_code == 200)
    return seen[0], seen[1]


def test_password_change_and_deletion_end_sessions_and_tokens(echo_gateway: GatewayProcess):
    gw = echo_gateway
    users_cli(gw.data_dir, "add", EMAIL, password="first-password")
    cookie, token = session_cookie(gw, "first-password"), id_token(gw, "first-password")
    assert admitted(gw, cookie, token) == (True, True)
    users_cli(gw.data_dir, "passwd", EMAIL, password="second-password")
    time.sleep(CACHE_S)
    assert admitted(gw, cookie, token) == (False, False)
    cookie, token = session_cookie(gw, "second-password"), id_token(gw, "second-password")
    assert admitted(gw, cookie, token) == (True, True)
    users_cli(gw.data_dir, "delete", EMAIL)
    time.sleep(CACHE_S)
    assert admitted(gw, cookie, token) == (False, False)
