"""Tokens end with their user: `users passwd` and `users delete` revoke what was issued.

Issue 9, finding 9: refresh tokens and JWTs kept working after the user was deleted or
changed password.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.identity.conftest import (
    AUTHSERVICE_ID,
    AUTHSERVICE_SECRET,
    DEX_CONFIG,
    IdentityServer,
    start_identity,
)

EMAIL = "leaver@example.com"
CLI = "modelport-cli"


def users_cli(data_dir: Path, *args: str, password: str | None = None) -> None:
    """`modelport users ...` against the running provider's database."""
    argv = [sys.executable, "-m", "modelport", "users", *args]
    argv += ["--data-dir", str(data_dir)]
    if password is not None:
        argv.append("--password-stdin")
    done = subprocess.run(
        argv, input=f"{password}\n" if password else None, text=True, capture_output=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IdentityServer, Path]]:
    work = tmp_path_factory.mktemp("revocation")
    (work / "dex.yaml").write_text(DEX_CONFIG)
    server = start_identity(work / "data", work / "dex.yaml")
    yield server, work / "data"
    server.proc.terminate()
    server.proc.wait(10)


def login(idp: IdentityServer, password: str) -> dict[str, str]:
    r = httpx.post(
        f"{idp.issuer}/token",
        data={
            "grant_type": "password",
            "username": EMAIL,
            "password": password,
            "scope": "openid email offline_access",
            "client_id": CLI,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()


def works(idp: IdentityServer, tokens: dict[str, str]) -> dict[str, bool]:
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


def test_password_change_then_deletion_revoke_tokens(served):
    idp, data_dir = served
    users_cli(data_dir, "add", EMAIL, password="first-password")
    before = login(idp, "first-password")
    assert works(idp, login(idp, "first-password")) == ALL
    users_cli(data_dir, "passwd", EMAIL, password="second-password")
    assert works(idp, before) == NONE
    time.sleep(1.1)  # iat has whole seconds: the change's own second is refused too
    after = login(idp, "second-password")
    assert works(idp, login(idp, "second-password")) == ALL
    users_cli(data_dir, "delete", EMAIL)
    assert works(idp, after) == NONE
    # a new user with the same email is someone else: the old tokens stay dead
    users_cli(data_dir, "add", EMAIL, password="third-password")
    assert works(idp, after) == NONE


def test_service_account_tokens_are_not_users_tokens(served):
    idp, _ = served
    r = httpx.post(
        f"{idp.issuer}/token",
        data={"grant_type": "client_credentials"},
        auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
    )
    token = r.json()["access_token"]
    info = httpx.get(f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert info.status_code == 200
