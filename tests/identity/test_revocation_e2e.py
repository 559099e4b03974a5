"""Tokens end with their user: `users passwd` and `users delete` revoke what was issued.

Issue 9, finding 9: refresh tokens and JWTs kept working after the user was deleted or
changed password.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import wait_for
from tests.helpers.kubeflow import AUTHSERVICE_ID, AUTHSERVICE_SECRET
from tests.helpers.login import Login
from tests.helpers.servers import CliServer

EMAIL = "leaver@example.com"
CLI = "modelport-cli"
SCOPE = "openid email offline_access"


def works(idp: CliServer, tokens: dict[str, Any]) -> dict[str, bool]:
    """Which of the tokens the provider still honours."""
    seen = {}
    for kind in ("access_token", "id_token"):
        r = httpx.get(f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {tokens[kind]}"})
        seen[kind] = r.status_code == 200
    r = httpx.post(
        f"{idp.issuer}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": CLI,
        },
    )
    seen["refresh_token"] = r.status_code == 200
    return seen


ALL = {"access_token": True, "id_token": True, "refresh_token": True}
NONE = {"access_token": False, "id_token": False, "refresh_token": False}


def test_password_change_then_deletion_revoke_tokens(idp: CliServer, login: Login):
    idp.cli("users", "add", EMAIL, "--password-stdin", stdin="first-password\n")
    before = login.tokens(idp, user=EMAIL, password="first-password", scope=SCOPE)
    assert works(idp, login.tokens(idp, user=EMAIL, password="first-password", scope=SCOPE)) == ALL
    idp.cli("users", "passwd", EMAIL, "--password-stdin", stdin="second-password\n")
    assert works(idp, before) == NONE
    # iat has whole seconds: the change's own second is refused too (test_revocation.py
    # moves a clock over it), so log in again until the next second's tokens are taken.
    fresh: list[dict[str, Any]] = []

    def logged_in_again() -> bool:
        fresh.append(login.tokens(idp, user=EMAIL, password="second-password", scope=SCOPE))
        return works(idp, fresh[-1]) == ALL

    assert wait_for(logged_in_again, timeout=5)
    after = fresh[-1]
    idp.cli("users", "delete", EMAIL)
    assert works(idp, after) == NONE
    # a new user with the same email is someone else: the old tokens stay dead
    idp.cli("users", "add", EMAIL, "--password-stdin", stdin="third-password\n")
    assert works(idp, after) == NONE


def test_service_account_tokens_are_not_users_tokens(idp: CliServer):
    r = httpx.post(
        f"{idp.issuer}/token",
        data={"grant_type": "client_credentials"},
        auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
    )
    token = r.json()["access_token"]
    info = httpx.get(f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert info.status_code == 200
