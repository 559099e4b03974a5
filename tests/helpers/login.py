"""Logging in as scripts do: the password grant at ``/dex/token``, and the gateway's browser
flow (Kubeflow's documented curl steps) that ends with the ``authservice_session`` cookie.

Everything takes a server with a ``url`` whose provider serves at ``/dex`` (a gateway, a
provider, the platform), or that URL itself.
"""

from __future__ import annotations

import re
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

import httpx

from tests.helpers.kubeflow import CLI_CLIENT_ID, USER_EMAIL, USER_PASSWORD

SESSION_COOKIE = "authservice_session"


class Served(Protocol):
    """Anything listening at ``url`` with the identity provider at ``/dex``."""

    @property
    def url(self) -> str: ...


def _url(server: Served | str) -> str:
    return server if isinstance(server, str) else server.url


def raw_client(server: Served | str) -> httpx.Client:
    """Like curl: no redirects followed, and no cookie is ever kept."""
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.Client(base_url=_url(server), follow_redirects=False, timeout=30, cookies=jar)


def password_grant(
    server: Served | str,
    *,
    user: str = USER_EMAIL,
    password: str = USER_PASSWORD,
    scope: str = "openid email groups",
    client: str = CLI_CLIENT_ID,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """The password grant as ``client`` (a confidential one when ``secret`` is given), with
    ``extra`` form fields, answered whatever the answer."""
    data = {"grant_type": "password", "username": user, "password": password, "scope": scope}
    data |= extra or {}
    return httpx.post(
        f"{_url(server)}/dex/token",
        data=data if secret is not None else {**data, "client_id": client},
        auth=(client, secret) if secret is not None else None,
        headers=headers,
        timeout=30,
    )


def follow_login(
    c: httpx.Client, auth_href: str, *, user: str = USER_EMAIL, password: str = USER_PASSWORD
) -> httpx.Response:
    """From the gateway's redirect to ``/dex/auth`` to its callback's answer: the login
    form, the password, the approval and the callback, each hop checked."""
    login = c.get(auth_href)
    assert login.status_code == 302, login.text
    req = re.search(r"req=([\w-]+)", login.headers["location"])
    assert req is not None, login.headers["location"]
    posted = c.post(
        f"/dex/auth/local?req={req.group(1)}", data={"login": user, "password": password}
    )
    assert posted.status_code == 303, posted.text
    approved = c.get(posted.headers["location"])
    assert approved.status_code == 303, approved.text
    callback = approved.headers["location"]
    assert callback.startswith("/login/oidc?code="), callback
    return c.get(callback)


def five_step_login(
    server: Served | str,
    target: str = "/v2/models/sklearn-iris",
    *,
    user: str = USER_EMAIL,
    password: str = USER_PASSWORD,
) -> tuple[str, httpx.Response]:
    """The documented manual flow; returns the session cookie value and the final response."""
    with raw_client(server) as c:
        first = c.get(target)  # curl's default Accept: */*
        assert first.status_code == 302, first.text
        auth_href = first.headers["location"]
        assert auth_href.startswith("/dex/auth?client_id=kubeflow-oidc-authservice")
        assert "redirect_uri=%2Flogin%2Foidc" in auth_href and "response_type=code" in auth_href
        final = follow_login(c, auth_href, user=user, password=password)
        assert final.status_code == 302, final.text
        assert final.headers["location"] == target
        return session_of(final), final


def session_of(response: httpx.Response) -> str:
    """The ``authservice_session`` value a response sets."""
    prefix = f"{SESSION_COOKIE}="
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(prefix))
    return cookie.split(";")[0].removeprefix(prefix)


class Login:
    """The ``login`` fixture: tokens and sessions of a user (Kubeflow's example user unless
    told otherwise), each request checked to have worked."""

    def tokens(self, server: Served | str, **options: Any) -> dict[str, Any]:
        """The token response of the password grant (``password_grant``'s options)."""
        r = password_grant(server, **options)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def id_token(self, server: Served | str, **options: Any) -> str:
        """An ID token from the password grant (``tokens``' options)."""
        return str(self.tokens(server, **options)["id_token"])

    def bearer(self, server: Served | str, **options: Any) -> dict[str, str]:
        """An Authorization header carrying ``id_token``."""
        return {"Authorization": f"Bearer {self.id_token(server, **options)}"}

    def session(
        self,
        server: Served | str,
        target: str = "/v2/models/sklearn-iris",
        *,
        user: str = USER_EMAIL,
        password: str = USER_PASSWORD,
    ) -> str:
        """An ``authservice_session`` cookie value from the five-step curl flow."""
        return five_step_login(server, target, user=user, password=password)[0]
