"""The gateway ASGI app: identity provider at /dex, login callback, logout, and everything
else authenticated (cookie or Bearer token) and forwarded upstream with identity headers.

Unauthenticated requests get 302 to the login flow — also for curl's ``Accept: */*`` — unless
they ask for JSON (``Accept: application/json`` without ``text/html``) or carry an invalid
``Authorization`` header: those get 401 JSON with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlencode

import httpx
import orjson

from modelport.gateway.addressing import address
from modelport.gateway.authz import EDIT, TOKEN_PREFIX, VIEW, Authorizer
from modelport.gateway.claims import external_identity, local_identity
from modelport.gateway.paths import skips_auth
from modelport.gateway.proxy import BodyTooLarge, Receive, Scope, Send, Upstream
from modelport.gateway.redirects import return_path
from modelport.gateway.sessions import (
    COOKIE,
    LOGIN_TTL_S,
    SESSION_MAX_AGE_S,
    STATE_COOKIE,
    Identity,
    SessionStore,
    state_cookie,
)
from modelport.gateway.trusted import TrustedIssuer, unverified_issuer
from modelport.identity.provider import CLI_CLIENT_ID, Provider
from modelport.identity.tokens import InvalidToken

log = logging.getLogger("modelport.gateway")

GATEWAY_CLIENT_ID = "kubeflow-oidc-authservice"  # oidc-authservice's client in Kubeflow's Dex
CALLBACK_PATHS = ("/login/oidc", "/authservice/oidc/callback")
LOGOUT_PATHS = ("/authservice/logout", "/logout")
LOGIN_SCOPES = "openid profile email groups"
CACHE_TTL_S = 2.0
CACHE_MAX_ENTRIES = 16384
CHECK_PATH = "/authz"
IDENTITY_KEY = "modelport.identity"
_HEADERS_KEY = "modelport.headers"
NOT_PLACED = (
    b'{"error": "Cannot tell which namespace this request is for: address the model as '
    b'/serving/NAMESPACE/NAME/... or with Host: NAME.NAMESPACE.DOMAIN or an Istio authority."}'
)
NOT_ADDRESSED = (
    b'{"error": "No InferenceService addressed: use Host: NAME.NAMESPACE.DOMAIN or the path '
    b'prefix /serving/NAMESPACE/NAME/."}'
)


class Router(Protocol):
    """Sends a request to one of an InferenceService's replicas (the control plane)."""

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        upstream: Upstream,
    ) -> None: ...


@dataclass
class GatewayConfig:
    """How the gateway registers itself with the provider and treats requests."""

    client_id: str = GATEWAY_CLIENT_ID
    client_secret: str = ""
    callback: str = "/login/oidc"
    max_body: int = 64 << 20
    secure_cookies: bool = False
    # Host-based routing: NAME.NAMESPACE.<domain> (KServe/Knative style).
    domain: str = "example.com"
    # Only for measuring the cost of authentication: forward everything, identify no one.
    auth_disabled: bool = False
    # The caller's token and session cookie stay at the gateway: upstream code (a model
    # someone else deployed) learns who called from kubeflow-userid, and cannot replay the
    # caller's credentials. Turn on only for upstreams that check tokens themselves.
    forward_credentials: bool = False
    # Our provider's tokens are accepted only for these clients (claims.py says why).
    audiences: list[str] = field(default_factory=lambda: [GATEWAY_CLIENT_ID, CLI_CLIENT_ID])
    # Peers whose X-Forwarded-For names the client (server.uvicorn_config); none by default.
    trusted_proxies: list[str] = field(default_factory=list)
    # External issuers whose tokens are accepted too (issuer URL -> required audience).
    trusted: list[TrustedIssuer] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Gateway:
    """ASGI callable; ``identity_app`` serves /dex in the same process."""

    def __init__(
        self,
        provider: Provider,
        identity_app: Any,
        sessions: SessionStore,
        upstream: Upstream,
        config: GatewayConfig,
        authorizer: Authorizer,
        router: Router | None = None,
        api_app: Any = None,
    ) -> None:
        self.provider = provider
        # With a router (``modelport up``) requests go to InferenceService revisions; without
        # one (``modelport gateway``) everything goes to the one upstream.
        self.router = router
        # Authenticated applications by path prefix (the control API at /api, the
        # Kubernetes-style API, the web UI); each checks namespace roles itself.
        self.mounts: dict[str, Any] = {}
        # The page a signed-in browser gets at "/" when no service is addressed.
        self.home: Any = None
        if api_app is not None:
            self.mounts["/api"] = api_app
        self.authorizer = authorizer
        self.identity_app = identity_app
        self.sessions = sessions
        self.upstream = upstream
        self.config = config
        # Decisions are cached briefly so the request path does no database work per request.
        # Only positive answers are cached: a revocation made by another process (the CLI)
        # takes effect within CACHE_TTL_S, a new grant at once, a logout here at once.
        # key -> (monotonic expiry, value); a plain dict, because this lookup runs on every
        # request and cachetools' TTLCache costs several µs per get in pure Python.
        self._cache: dict[Any, tuple[float, Any]] = {}
        # Code exchange goes to the in-process provider, without a network hop.
        self._token_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=identity_app), base_url="http://identity"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.identity_app(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        raw_path: bytes = scope.get("raw_path") or path.encode()
        if path.startswith("/dex") and skips_auth(raw_path, path):
            await self.identity_app(scope, receive, send)
            return
        if path in CALLBACK_PATHS:
            await self._callback(scope, send)
            return
        if path in LOGOUT_PATHS and scope["method"] == "POST":
            await self._logout(scope, send)
            return
        if path == "/healthz":
            await _reply(send, 200, b'{"status": "ok"}')
            return
        if path == CHECK_PATH or path.startswith(CHECK_PATH + "/"):
            await self._check(scope, send)
            return
        try:
            if self.config.auth_disabled or skips_auth(raw_path, path):
                # With a router, anonymous health checks are the platform's own: they must not
                # wake a scaled-to-zero service or reveal which services exist.
                routed = (None, None, scope) if self.router else self._namespace_route(scope)
                if isinstance(routed, bytes):
                    await _reply(send, 400, routed)
                    return
                await self._forward(routed, receive, send, [])
                return
            identity, bad_credentials = self._authenticate(scope)
            if identity is None:
                await self._challenge(scope, send, bad_credentials)
                return
            mounted = self._mounted(path)
            if mounted is not None:
                prefix, app = mounted
                rest = path[len(prefix) :] or "/"
                inner = {**scope, "path": rest, "raw_path": rest.encode(), IDENTITY_KEY: identity}
                await app(inner, receive, send)
                return
            admitted = self._admit(identity, self._namespace_route(scope))
            if isinstance(admitted[0], int):
                await _reply(send, *admitted)  # type: ignore[arg-type]
                return
            routed, extra = admitted  # type: ignore[assignment]
            if not self.config.forward_credentials:
                routed = (routed[0], routed[1], _without_credentials(routed[2]))
            await self._forward(routed, receive, send, extra)
        except BodyTooLarge:
            await _reply(send, 413, b'{"error": "Request body too large."}')

    def _mounted(self, path: str) -> tuple[str, Any] | None:
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, app
        return None

    async def _forward(
        self,
        routed: tuple[str | None, str | None, Scope],
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        namespace, name, scope = routed
        if self.router is None:
            await self.upstream.forward(scope, receive, send, extra)
            return
        if namespace is None or name is None:
            if scope["path"] == "/" and self.home is not None and _wants_page(scope):
                await self.home(scope, receive, send)
                return
            if scope["path"].startswith("/v2/health/"):
                await _reply(send, 200, b'{"live": true}')  # the platform itself
                return
            await _reply(send, 404, NOT_ADDRESSED.replace(b"DOMAIN", self.config.domain.encode()))
            return
        await self.router.forward(namespace, name, scope, receive, send, extra, self.upstream)

    # ---- credentials ---------------------------------------------------------------------

    def _authenticate(self, scope: Scope) -> tuple[Identity | None, str]:
        """(identity, why the presented credentials are bad) for a request."""
        headers = _headers(scope)
        # Keyed on the raw headers, so a cache hit parses no cookie and verifies no token.
        key = (headers.get("authorization", ""), headers.get("cookie", ""))
        cached = self._cached(("authn", key))
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        result = self._authenticate_uncached(headers)
        if result[0] is not None:
            self._remember(("authn", key), result)
        return result

    def _authenticate_uncached(self, headers: dict[str, str]) -> tuple[Identity | None, str]:
        auth = headers.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None, "Unsupported Authorization header; use 'Bearer <token>'."
            return self._bearer(token.strip())
        cookie = _cookies(headers).get(COOKIE)
        if cookie:
            identity = self.sessions.lookup(cookie)
            if identity is not None:
                return identity, ""
        return None, ""

    def _bearer(self, token: str) -> tuple[Identity | None, str]:
        if len(token) > 16384:
            return None, "Bearer token too large."
        if token.startswith(TOKEN_PREFIX):
            grant = self.authorizer.verify_token(token)
            if grant is None:
                return None, "Invalid, expired or revoked API token."
            return Identity(grant.owner, (), grant.namespace, grant.role), ""
        issuer = unverified_issuer(token)
        external = next((t for t in self.config.trusted if t.issuer.rstrip("/") == issuer), None)
        try:
            if external is not None:
                found = external_identity(external.verify(token))
            else:
                found = local_identity(
                    self.provider.tokens.verify(token),
                    audiences=self.config.audiences,
                    is_client=lambda c: self.provider.directory.get_client(c) is not None,
                )
        except InvalidToken:
            return None, "Invalid bearer token."
        return (None, found) if isinstance(found, str) else (found, "")

    # ---- external check (Envoy ext_authz, nginx auth_request) ------------------------------

    async def _check(self, scope: Scope, send: Send) -> None:
        """Decide for a proxy in front of us; 200 + identity headers means allowed.

        Envoy's HTTP ext_authz sends the original request with ``/authz`` prepended to its
        path; nginx's ``auth_request`` sends a subrequest carrying ``X-Original-URI`` and
        ``X-Original-Method``. nginx understands only 2xx/401/403, so browsers are sent to
        the login page (302) only in Envoy's case.
        """
        headers = _headers(scope)
        original = headers.get("x-original-uri")
        if original is not None:
            target, _, query = original.partition("?")
            raw = target.encode("latin-1")
            method = headers.get("x-original-method", "GET").upper()
            browser_redirect = False
        else:
            raw = scope.get("raw_path") or scope["path"].encode()
            # "/authz" is literal in what Envoy sends; any other spelling names nothing.
            raw = (raw[len(CHECK_PATH) :] or b"/") if raw.startswith(CHECK_PATH.encode()) else b""
            query = scope.get("query_string", b"").decode("latin-1")
            method = scope["method"]
            browser_redirect = True
        path = unquote(raw.decode("latin-1"))  # as uvicorn decodes the paths it serves
        inner = {**scope, "path": path, "raw_path": raw, "method": method}
        inner["query_string"] = query.encode("latin-1")
        # The proxy routes by the same path and Host: decide on the namespace they name.
        routed = self._namespace_route(inner) if raw else NOT_PLACED
        placed = not isinstance(routed, bytes) and routed[0] is not None
        if not placed and skips_auth(raw, path):
            await _reply(send, 200, b"")
            return
        identity, bad_credentials = self._authenticate(inner)
        if identity is None:
            if browser_redirect and not bad_credentials:
                await self._challenge(inner, send, bad_credentials)
            else:
                body = orjson.dumps({"error": bad_credentials or "Authentication required."})
                await _reply(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        if not placed:
            # The proxy forwards what we allow to a backend we cannot name: deny.
            why = routed if isinstance(routed, bytes) else NOT_PLACED
            await _reply(send, 403, why.replace(b"DOMAIN", self.config.domain.encode()))
            return
        admitted = self._admit(identity, routed)  # type: ignore[arg-type]
        if isinstance(admitted[0], int):
            await _reply(send, *admitted)  # type: ignore[arg-type]
            return
        await _reply(send, 200, b"", admitted[1])  # type: ignore[arg-type]

    # ---- namespaces and authorization -----------------------------------------------------

    def _admit(
        self, identity: Identity, routed: tuple[str | None, str | None, Scope] | bytes
    ) -> tuple[tuple[str | None, str | None, Scope], list[tuple[bytes, bytes]]] | tuple[int, bytes]:
        """Where the request goes and the identity headers it carries, or (status, body)
        when its address is refused (400) or it is not allowed (403)."""
        if isinstance(routed, bytes):
            return 400, routed
        denied = self._authorize(identity, routed[0], routed[2])
        if denied:
            return 403, orjson.dumps({"error": denied})
        extra = [(b"kubeflow-userid", identity.email.encode())]
        if identity.groups:
            extra.append((b"kubeflow-groups", ",".join(identity.groups).encode()))
        return routed, extra

    def _namespace_route(self, scope: Scope) -> tuple[str | None, str | None, Scope] | bytes:
        """(namespace, name, scope to forward) from /serving/NS/NAME/... or the Host (see
        addressing.py); an error body when the request's address is refused."""
        raw_path = scope.get("raw_path") or scope["path"].encode()
        host = _headers(scope).get("host", "")
        found = address(raw_path, scope["path"], host, self.config.domain)
        if isinstance(found, str):
            return orjson.dumps({"error": found})
        if found.raw_path is not raw_path:
            scope = {**scope, "path": found.path, "raw_path": found.raw_path}
        return found.namespace, found.name, scope

    def _authorize(self, identity: Identity, namespace: str | None, scope: Scope) -> str | None:
        """None when the request may go on, else why not."""
        needed = _needed_role(scope)
        if identity.token_namespace is not None:
            if namespace is None:
                return (
                    f"This API token works only in namespace {identity.token_namespace}: "
                    f"address the model as /serving/{identity.token_namespace}/NAME/... or with "
                    f"Host: NAME.{identity.token_namespace}.{self.config.domain}."
                )
            if namespace != identity.token_namespace:
                return f"This API token works only in namespace {identity.token_namespace}."
            if needed == EDIT and identity.token_role != EDIT:
                return "This API token has the view role; this request needs edit."
            return None
        if namespace is None:
            return None
        key = ("authz", identity.email, namespace, needed)
        if self._cached(key) is not None:
            return None
        user = self.provider.directory.get_user(identity.email)
        verdict = self.authorizer.check(
            identity.email, namespace, needed, admin=bool(user and user.admin)
        )
        if verdict is None:  # only grants are cached: a new grant works at once
            self._remember(key, True)
        return verdict

    async def _challenge(self, scope: Scope, send: Send, bad_credentials: str) -> None:
        headers = _headers(scope)
        # A browser's subresource (favicon, image, fetch) is not a page to log in from: it
        # gets 401 and starts no login. curl sends no Sec-Fetch headers and keeps its 302.
        subresource = headers.get("sec-fetch-mode", "navigate") != "navigate"
        if bad_credentials or subresource or _wants_json(headers.get("accept", "")):
            body = orjson.dumps({"error": bad_credentials or "Authentication required."})
            await _reply(send, 401, body, [(b"www-authenticate", b"Bearer")])
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
        cookie = _cookie_header(state_cookie(state), binding, LOGIN_TTL_S, self._secure(scope))
        body = f'<a href="{location}">Found</a>.\n'.replace("&", "&amp;").encode()
        await _reply(
            send,
            302,
            body,
            [(b"location", location.encode()), (b"set-cookie", cookie)],
            content_type=b"text/html; charset=utf-8",
        )

    # ---- login callback and logout -------------------------------------------------------

    async def _callback(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        headers = _headers(scope)
        if "error" in query:
            await _reply(send, 401, orjson.dumps({"error": f"Login failed: {query['error'][0]}"}))
            return
        code = (query.get("code") or [""])[0]
        state = (query.get("state") or [""])[0]
        binding = _cookies(headers).get(state_cookie(state))
        # A browser sent here from another site without our state cookie is a login-CSRF
        # attempt; scripts (no Sec-Fetch headers) may complete without the cookie.
        if binding is None and headers.get("sec-fetch-site") == "cross-site":
            await _reply(send, 403, b'{"error": "Login state is not bound to this browser."}')
            return
        return_to = self.sessions.finish_login(state, binding)
        if return_to is None or not code:
            await _reply(send, 400, b'{"error": "Invalid or expired login state."}')
            return
        identity = await self._exchange(code)
        if identity is None:
            await _reply(send, 401, b'{"error": "The login code was not accepted."}')
            return
        value = self.sessions.create(identity)
        return_to = return_path(return_to)  # again: rows may predate the check
        secure = self._secure(scope)
        await _reply(
            send,
            302,
            b"",
            [
                (b"location", return_to.encode()),
                (b"set-cookie", _cookie_header(COOKIE, value, SESSION_MAX_AGE_S, secure)),
                (b"set-cookie", _cookie_header(state_cookie(state), "", 0, secure)),
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

    async def _logout(self, scope: Scope, send: Send) -> None:
        headers = _headers(scope)
        value = _cookies(headers).get(COOKIE)
        auth = headers.get("authorization", "")
        if not value and auth.lower().startswith("bearer "):
            value = auth[7:].strip()  # oidc-authservice accepts the session in the header
        ended = self.sessions.end(value) if value else False
        self._cache.clear()
        await _reply(
            send,
            201 if ended else 401,
            b'{"status": "logged out"}' if ended else b'{"error": "Not logged in."}',
            [(b"set-cookie", _cookie_header(COOKIE, "", 0, self._secure(scope)))],
        )

    def _cached(self, key: Any) -> Any:
        hit = self._cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _remember(self, key: Any, value: Any) -> None:
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()  # bounded memory; everything is re-derivable
        self._cache[key] = (time.monotonic() + CACHE_TTL_S, value)

    def _secure(self, scope: Scope) -> bool:
        """Cookies get Secure when the client reached us over https (directly or via a proxy)."""
        if self.config.secure_cookies or scope.get("scheme") == "https":
            return True
        return _headers(scope).get("x-forwarded-proto", "").lower() == "https"


_READ_SUFFIXES = ("/infer", ":predict", ":explain", "/ready")


def _needed_role(scope: Scope) -> str:
    """Reading and inference need view; anything else that changes state needs edit."""
    if scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return VIEW
    if scope["method"] == "POST" and scope["path"].endswith(_READ_SUFFIXES):
        return VIEW
    return EDIT


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers as a dict (lower-case names), built once per request."""
    cached = scope.get(_HEADERS_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out: dict[str, str] = {}
    for k, v in scope["headers"]:
        key = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        out[key] = f"{out[key]}; {value}" if key == "cookie" and key in out else value
    scope[_HEADERS_KEY] = out
    return out


# The session cookie, and every pending login's state cookie (STATE_COOKIE_<suffix>).
_CREDENTIAL_COOKIES = (COOKIE + "=", STATE_COOKIE)


def _without_credentials(scope: Scope) -> Scope:
    """The scope without the Authorization header and the gateway's own cookies."""
    headers = []
    changed = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            changed = True
            continue
        if name == b"cookie":
            pairs = value.decode("latin-1").split(";")
            kept = [p for p in pairs if not p.strip().startswith(_CREDENTIAL_COOKIES)]
            if len(kept) != len(pairs):
                changed = True
                if not kept:
                    continue
                value = ";".join(kept).strip().encode("latin-1")
        headers.append((name, value))
    return {**scope, "headers": headers} if changed else scope


def _wants_page(scope: Scope) -> bool:
    """A browser asking for a page: GET or HEAD with HTML acceptable."""
    accept = _headers(scope).get("accept", "")
    return scope["method"] in ("GET", "HEAD") and ("text/html" in accept or accept in ("", "*/*"))


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    """The Cookie header's pairs, read one by one (RFC 6265 §5.4 sends ``name=value; …``):
    http.cookies drops the whole header for one malformed pair, and a cookie that model
    code set on this origin could then sign a visitor out. The first of a name wins."""
    found: dict[str, str] = {}
    for pair in headers.get("cookie", "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip()
    return found


def _cookie_header(name: str, value: str, max_age: float, secure: bool) -> bytes:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={int(max_age)}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


def _wants_json(accept: str) -> bool:
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "application/json" in types and "text/html" not in types


async def _reply(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
