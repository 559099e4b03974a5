"""The gateway ASGI app: one visible dispatch of every request, by path.

  /dex/...              the identity provider (in process)
  /login/oidc, ...      the login callback; POST /authservice/logout ends a session (login.py)
  /healthz              the gateway itself
  /authz                decisions for a proxy in front (check.py)
  health paths          anonymous, never routed to a service when a router is set
  everything else       authenticated (authn.py); then a mounted app by prefix (the control
                        API, the page's files) or, routed by path or Host and authorized
                        (admission.py), forwarded to a service with identity headers

Unauthenticated requests get 302 to the login flow — also for curl's ``Accept: */*`` — unless
they ask for JSON (``Accept: application/json`` without ``text/html``), carry an invalid
``Authorization`` header, or are a browser's subresource: those get 401 JSON with
``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from modelport.access.authz import Authorizer
from modelport.gateway.admission import Admission, Refused, Route, without_credentials
from modelport.gateway.authn import Authenticator, DecisionCache
from modelport.gateway.check import CHECK_PATH, ExternalCheck
from modelport.gateway.exchange import reply, wants_page
from modelport.gateway.login import LoginFlow
from modelport.gateway.paths import skips_auth
from modelport.gateway.proxy import BodyTooLarge, Receive, Scope, Send, Upstream
from modelport.gateway.sessions import SessionStore
from modelport.gateway.trusted import TrustedIssuer
from modelport.identity.provider import CLI_CLIENT_ID, Provider

GATEWAY_CLIENT_ID = "kubeflow-oidc-authservice"  # oidc-authservice's client in Kubeflow's Dex
CALLBACK_PATHS = ("/login/oidc", "/authservice/oidc/callback")
LOGOUT_PATHS = ("/authservice/logout", "/logout")
# Where mounted apps find the caller.
IDENTITY_KEY = "modelport.identity"
NOT_ADDRESSED = (
    b'{"error": "No InferenceService addressed: use Host: NAME.NAMESPACE.DOMAIN or the path '
    b'prefix /serving/NAMESPACE/NAME/."}'
)
Header = tuple[bytes, bytes]


class Router(Protocol):
    """Sends a request to one of an InferenceService's replicas (the control plane)."""

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity_headers: list[Header],
        upstream: Upstream,
    ) -> None: ...


@dataclass(frozen=True)
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
        # Authenticated applications by path prefix (the control API at /api, the page's
        # files); each checks namespace roles itself.
        self.mounts: dict[str, Any] = {}
        if api_app is not None:
            self.mounts["/api"] = api_app
        # The page a signed-in browser gets at "/" when no service is addressed.
        self.home: Any = None
        # More for /healthz to say (which platform instance leads, control/ha.py).
        self.health_details: Callable[[], dict[str, str]] | None = None
        self.authorizer = authorizer
        self.identity_app = identity_app
        self.sessions = sessions
        self.upstream = upstream
        self.config = config
        cache = DecisionCache(provider.clock)
        self.authn = Authenticator(
            provider,
            sessions,
            authorizer,
            audiences=config.audiences,
            trusted=config.trusted,
            cache=cache,
        )
        self.admission = Admission(provider, authorizer, config.domain, cache)
        self.login = LoginFlow(provider, identity_app, sessions, config, cache)
        self.check = ExternalCheck(self.authn, self.admission, self.login, config.domain)

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
        elif path in CALLBACK_PATHS:
            await self.login.callback(scope, send)
        elif path in LOGOUT_PATHS and scope["method"] == "POST":
            await self.login.logout(scope, send)
        elif path == "/healthz":
            body = b'{"status": "ok"}'
            if self.health_details is not None:
                body = orjson.dumps({"status": "ok", **self.health_details()})
            await reply(send, 200, body)
        elif path == CHECK_PATH or path.startswith(CHECK_PATH + "/"):
            await self.check(scope, send)
        else:
            try:
                await self._serve(scope, receive, send, path, raw_path)
            except BodyTooLarge:
                await reply(send, 413, b'{"error": "Request body too large."}')

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, path: str, raw_path: bytes
    ) -> None:
        """Everything but the gateway's own paths: authenticated, then mounted or routed."""
        if self.config.auth_disabled or skips_auth(raw_path, path):
            # With a router, anonymous health checks are the platform's own: they must not
            # wake a scaled-to-zero service or reveal which services exist.
            route = Route(None, None, scope) if self.router else self.admission.route(scope)
            if isinstance(route, Refused):
                await reply(send, route.status, route.body)
                return
            await self._forward(route, receive, send, [])
            return
        identity, bad_credentials = self.authn.authenticate(scope)
        if identity is None:
            await self.login.challenge(scope, send, bad_credentials)
            return
        mounted = self._mounted(path)
        if mounted is not None:
            prefix, app = mounted
            rest = path[len(prefix) :] or "/"
            inner = {**scope, "path": rest, "raw_path": rest.encode(), IDENTITY_KEY: identity}
            await app(inner, receive, send)
            return
        admitted = self.admission.admit(identity, self.admission.route(scope))
        if isinstance(admitted, Refused):
            await reply(send, admitted.status, admitted.body)
            return
        route = admitted.route
        if not self.config.forward_credentials:
            route = Route(route.namespace, route.name, without_credentials(route.scope))
        await self._forward(route, receive, send, admitted.identity_headers)

    def _mounted(self, path: str) -> tuple[str, Any] | None:
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, app
        return None

    async def _forward(
        self, route: Route, receive: Receive, send: Send, identity_headers: list[Header]
    ) -> None:
        scope = route.scope
        if self.router is None:
            await self.upstream.forward(scope, receive, send, identity_headers)
            return
        if route.namespace is None or route.name is None:
            if scope["path"] == "/" and self.home is not None and wants_page(scope):
                await self.home(scope, receive, send)
            elif scope["path"].startswith("/v2/health/"):
                await reply(send, 200, b'{"live": true}')  # the platform itself
            else:
                body = NOT_ADDRESSED.replace(b"DOMAIN", self.config.domain.encode())
                await reply(send, 404, body)
            return
        await self.router.forward(
            route.namespace, route.name, scope, receive, send, identity_headers, self.upstream
        )
