"""Who is calling: a session cookie, a Bearer token of our provider or of a trusted external
issuer, or an API token. Good answers are cached briefly, so the request path does no
database work or signature check per request."""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

from modelport.access.authz import TOKEN_PREFIX, Authorizer
from modelport.access.caller import Identity
from modelport.gateway.claims import external_identity, local_identity
from modelport.gateway.exchange import cookies, request_headers
from modelport.gateway.proxy import Scope
from modelport.gateway.sessions import COOKIE, SessionStore
from modelport.gateway.trusted import TrustedIssuer, unverified_issuer
from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.provider import Provider
from modelport.identity.tokens import InvalidToken

CACHE_TTL_S = 2.0
CACHE_MAX_ENTRIES = 16384
MAX_TOKEN_BYTES = 16384


class DecisionCache:
    """Positive decisions for CACHE_TTL_S. A revocation made by another process (the CLI)
    takes effect within that time, a new grant at once, a logout here at once (clear)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        # key -> (monotonic expiry, value); a plain dict, because this lookup runs on every
        # request and cachetools' TTLCache costs several µs per get in pure Python.
        self._entries: dict[Hashable, tuple[float, Decision]] = {}

    def get(self, key: Hashable) -> Decision | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < self._clock.monotonic():
            return None
        return hit[1]

    def put(self, key: Hashable, value: Decision) -> None:
        if len(self._entries) >= CACHE_MAX_ENTRIES:
            self._entries.clear()  # bounded memory; everything is re-derivable
        self._entries[key] = (self._clock.monotonic() + CACHE_TTL_S, value)

    def clear(self) -> None:
        self._entries.clear()


class Authentication(NamedTuple):
    """The caller, or None with why the presented credentials are bad ("" for none given)."""

    identity: Identity | None
    bad_credentials: str = ""


# What the cache holds: who a request authenticated as, or True for an admission granted.
Decision = Authentication | bool


class Authenticator:
    """Turns a request's credentials into an Identity."""

    def __init__(
        self,
        provider: Provider,
        sessions: SessionStore,
        authorizer: Authorizer,
        *,
        audiences: list[str],
        trusted: list[TrustedIssuer],
        cache: DecisionCache,
    ) -> None:
        self.provider = provider
        self.sessions = sessions
        self.authorizer = authorizer
        self.audiences = audiences
        self.trusted = trusted
        self.cache = cache

    def authenticate(self, scope: Scope) -> Authentication:
        headers = request_headers(scope)
        # Keyed on the raw headers, so a cache hit parses no cookie and verifies no token.
        key = ("authn", headers.get("authorization", ""), headers.get("cookie", ""))
        cached = self.cache.get(key)
        if isinstance(cached, Authentication):
            return cached
        result = self._uncached(headers)
        if result.identity is not None:
            self.cache.put(key, result)
        return result

    def _uncached(self, headers: dict[str, str]) -> Authentication:
        auth = headers.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return Authentication(
                    None, "Unsupported Authorization header; use 'Bearer <token>'."
                )
            return self._bearer(token.strip())
        session = cookies(headers).get(COOKIE)
        if session:
            identity = self.sessions.lookup(session)
            if identity is not None:
                return Authentication(identity)
        return Authentication(None)

    def _bearer(self, token: str) -> Authentication:
        if len(token) > MAX_TOKEN_BYTES:
            return Authentication(None, "Bearer token too large.")
        if token.startswith(TOKEN_PREFIX):
            grant = self.authorizer.verify_token(token)
            if grant is None:
                return Authentication(None, "Invalid, expired or revoked API token.")
            return Authentication(Identity(grant.owner, (), grant.namespace, grant.role))
        issuer = unverified_issuer(token)
        external = next((t for t in self.trusted if t.issuer.rstrip("/") == issuer), None)
        try:
            if external is not None:
                found = external_identity(external.verify(token))
            else:
                found = local_identity(
                    self.provider.tokens.verify(token),
                    audiences=self.audiences,
                    is_client=lambda c: self.provider.directory.get_client(c) is not None,
                )
        except InvalidToken:
            return Authentication(None, "Invalid bearer token.")
        return Authentication(None, found) if isinstance(found, str) else Authentication(found)
