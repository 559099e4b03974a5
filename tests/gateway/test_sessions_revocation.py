"""Gateway sessions and Bearer JWTs end with their user (issue 9, finding 9).

An ``authservice_session`` cookie and an ID token kept working after ``modelport users
delete`` or a password change.
"""

from __future__ import annotations

from tests.conftest import wait_for
from tests.helpers.kubeflow import AS_AUTHSERVICE
from tests.helpers.login import Login, raw_client
from tests.helpers.servers import CliServer

EMAIL = "gw-leaver@example.com"
PREDICT = "/v1/models/echo:predict"
# The gateway caches a positive authentication this long (gateway/authn.py CACHE_TTL_S),
# so a revocation made by another process (the CLI) shows within it.
CACHE_S = 2.5


def admitted(gw: CliServer, cookie: str, token: str) -> tuple[bool, bool]:
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


def test_password_change_and_deletion_end_sessions_and_tokens(
    echo_gateway: CliServer, login: Login
):
    gw = echo_gateway

    def log_in(password: str) -> tuple[str, str]:
        cookie = login.session(gw, PREDICT, user=EMAIL, password=password)
        return cookie, login.id_token(gw, user=EMAIL, password=password, **AS_AUTHSERVICE)

    gw.cli("users", "add", EMAIL, "--password-stdin", stdin="first-password\n")
    cookie, token = log_in("first-password")
    assert admitted(gw, cookie, token) == (True, True)
    gw.cli("users", "passwd", EMAIL, "--password-stdin", stdin="second-password\n")
    assert wait_for(lambda: admitted(gw, cookie, token) == (False, False), timeout=CACHE_S)
    # A token's iat has whole seconds, so one issued in the change's own second is refused
    # too (tests/identity/test_revocation.py): log in again until the next second's is taken.
    fresh: list[tuple[str, str]] = []

    def logged_in_again() -> bool:
        fresh.append(log_in("second-password"))
        return admitted(gw, *fresh[-1]) == (True, True)

    assert wait_for(logged_in_again, timeout=5)
    cookie, token = fresh[-1]
    gw.cli("users", "delete", EMAIL)
    assert wait_for(lambda: admitted(gw, cookie, token) == (False, False), timeout=CACHE_S)
