"""Logging in through the provider, as Kubeflow's oidc-authservice does: unauthenticated
browsers are sent to ``/dex/auth`` (302), API clients and browser subresources get 401; the
callback at ``/login/oidc`` exchanges the code and sets ``authservice_session``; logout ends
the session.

Login CSRF is stopped by binding each pending login's ``state`` to a cookie of the browser
that started it, one cookie per login (sessions.state_cookie).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

import httpx
import orjson

from modelport.access.caller import Identity
from modelport.gateway.authn import DecisionCache
from modelport.gateway.exchange import (
    cookie_header,
    cookies,
    reply,
    request_headers,
    secure_request,
    wants_json,
)
from modelport.gateway.proxy import Scope, Send
from modelport.gateway.redirects import return_path
from modelport.gateway.sessions import (
    COOKIE,
    LOGIN_TTL_S,
    SESSION_MAX_AGE_S,
    SessionStore,
    state_cookie,
)
from modelport.identity.provider import Provider
from modelport.identity.tokens import InvalidToken

if TYPE_CHECKING:
    from modelport.gateway.app import GatewayConfig

log = logging.getLogger("modelport.gateway")

LOGIN_SCOPES = "openid profile email groups"


class LoginFlow:
    """The browser login, its callback and logout."""

    def __init__(
        self,
        provider: Provider,
        identity_app: object,
        sessions: SessionStore,
        config: GatewayConfig,
        cache: DecisionCache,
    ) -> None:
        self.provider = provider
        self.sessions = sessions
        self.config = config
        self.cache = cache
        # Code exchange goes to the in-process provider, without a network hop.
        self._token_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=identity_app),  # type: ignore[arg-type]
            base_url="http://identity",
        )

    def secure(self, scope: Scope) -> bool:
        return secure_request(scope, self.config.secure_cookies)

    async def challenge(self, scope: Scope, send: Send, bad_credentials: str) -> None:
        headers = request_headers(scope)
        # A browser's subresource (favicon, image, fetch) is not a page to log in from: it
        # gets 401 and starts no login. curl sends no Sec-Fetch headers and keeps its 302.
        subresource = headers.get("sec-fetch-mode", "navigate") != "navigate"
        if bad_credentials or subresource or wants_json(headers.get("accept", "")):
            body = orjson.dumps({"error": bad_credentials or "Authentication required."})
            await reply(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        # Back to the target as sent (still percent-encoded), never its decoded form.
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        state, binding = self.sessions.start_login(
            return_path(target + (f"?{query}" if query else ""))
        )
        params = urlencode(
            {
                "client_id": self.config.client_id,
                "redirect_uri": self.config.callback,
                "response_type": "code",
                "scope": LOGIN_SCOPES,
                "state": state,
            }
        )
        location = f"{self.provider.path}/auth?{params}"
        cookie = cookie_header(state_cookie(state), binding, LOGIN_TTL_S, self.secure(scope))
        body = f'<a href="{location}">Found</a>.\n'.replace("&", "&amp;").encode()
        await reply(
            send,
            302,
            body,
            [(b"location", location.encode()), (b"set-cookie", cookie)],
            content_type=b"text/html; charset=utf-8",
        )

    # ---- login callback and logout -------------------------------------------------------

    async def callback(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        headers = request_headers(scope)
        if "error" in query:
            await reply(send, 401, orjson.dumps({"error": f"Login failed: {query['error'][0]}"}))
            return
        code = (query.get("code") or [""])[0]
        state = (query.get("state") or [""])[0]
        binding = cookies(headers).get(state_cookie(state))
        # A browser sent here from another site without our state cookie is a login-CSRF
        # attempt; scripts (no Sec-Fetch headers) may complete without the cookie.
        if binding is None and headers.get("sec-fetch-site") == "cross-site":
            await reply(send, 403, b'{"error": "Login state is not bound to this browser."}')
            return
        return_to = self.sessions.finish_login(state, binding)
        if return_to is None or not code:
            await reply(send, 400, b'{"error": "Invalid or expired login state."}')
            return
        identity = await self._exchange(code)
        if identity is None:
            await reply(send, 401, b'{"error": "The login code was not accepted."}')
            return
        value = self.sessions.create(identity)
        return_to = return_path(return_to)  # again: rows may predate the check
        secure = self.secure(scope)
        await reply(
            send,
            302,
            b"",
            [
                (b"location", return_to.encode()),
                (b"set-cookie", cookie_header(COOKIE, value, SESSION_MAX_AGE_S, secure)),
                (b"set-cookie", cookie_header(state_cookie(state), "", 0, secure)),
            ],
        )

    async def _exchange(self, code: str) -> Identity | None:
        response = await self._token_client.post(
            f"{self.provider.path}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.callback,
            },
            auth=(self.config.client_id, self.config.client_secret),
        )
        if response.status_code != 200:
            log.warning("code exchange refused: %s", response.json().get("error"))
            return None
        try:
            claims = self.provider.tokens.verify(
                response.json()["id_token"], audience=self.config.client_id
            )
        except (InvalidToken, KeyError):
            return None
        return Identity(claims.get("email", ""), tuple(claims.get("groups") or ()))

    async def logout(self, scope: Scope, send: Send) -> None:
        headers = request_headers(scope)
        value = cookies(headers).get(COOKIE)
        auth = headers.get("authorization", "")
        if not value and auth.lower().startswith("bearer "):
            value = auth[7:].strip()  # oidc-authservice accepts the session in the header
        ended = self.sessions.end(value) if value else False
        self.cache.clear()
        await reply(
            send,
            201 if ended else 401,
            b'{"status": "logged out"}' if ended else b'{"error": "Not logged in."}',
            [(b"set-cookie", cookie_header(COOKIE, "", 0, self.secure(scope)))],
        )
