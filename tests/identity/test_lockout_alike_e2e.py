"""Repeated wrong passwords are answered alike whether or not the account exists.

Issue 9, finding 6: after 6 bad logins a real account got 429 "Too many failed logins" while
an unknown email still got "Invalid…", which told accounts apart.
"""

from __future__ import annotations

from tests.helpers.kubeflow import AS_AUTHSERVICE
from tests.helpers.login import password_grant
from tests.helpers.provider import auth_params, provider_client
from tests.helpers.servers import CliServer


def _answers(idp: CliServer, login: str) -> list[tuple[int, str]]:
    seen = []
    with provider_client(idp) as c:
        login_url = c.get("/dex/auth", params=auth_params()).headers["location"]
        for _ in range(6):
            r = c.post(login_url, data={"login": login, "password": "wrong-password"})
            error = r.text.split('class="dex-error-box">')[-1].split("<")[0].strip()
            seen.append((r.status_code, error))
    grant = password_grant(
        idp, user=login, password="wrong-password", scope="openid", **AS_AUTHSERVICE
    )
    seen.append((grant.status_code, grant.json()["error_description"]))
    return seen


def test_lockout_does_not_tell_accounts_apart(idp: CliServer):
    real = _answers(idp, "second@example.com")
    unknown = _answers(idp, "nobody-here@example.com")
    assert real == unknown
    assert real[0] == (200, "Invalid Email Address and password.")
    assert real[5][0] == 429 and "Too many failed logins" in real[5][1]
    assert real[6] == (401, "Invalid username or password")
