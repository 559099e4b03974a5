"""Tokens from an external OpenID Connect issuer (a company's Dex or Keycloak), verified
with the issuer's published keys, found through its discovery document."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry

from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.tokens import VERIFY_ALGS, InvalidToken

log = logging.getLogger("modelport.gateway")

# Refetch the JWKS at most this often when a token names a key we do not have (rotation).
MIN_REFRESH_S = 30.0
MAX_AGE_S = 3600.0


@dataclass
class TrustedIssuer:
    """One external issuer and the audience (client id) its tokens must carry."""

    issuer: str
    audience: str
    _keys: KeySet | None = None
    _fetched_at: float = 0.0
    _jwks_uri: str = ""
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)

    def discover(self) -> None:
        """Read the discovery document and the JWKS (raises on failure)."""
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        doc = self._http.get(url).raise_for_status().json()
        if doc.get("issuer", "").rstrip("/") != self.issuer.rstrip("/"):
            raise ValueError(f"{url} names issuer {doc.get('issuer')!r}, not {self.issuer!r}")
        self._jwks_uri = doc["jwks_uri"]
        self._refresh()

    def _refresh(self) -> None:
        data = self._http.get(self._jwks_uri).raise_for_status().json()
        self._keys = KeySet.import_key_set(data)
        self._fetched_at = self.clock.time()

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this issuer signed for our audience; InvalidToken otherwise."""
        if self._keys is None or self.clock.time() - self._fetched_at > MAX_AGE_S:
            self._safe_refresh()
        try:
            decoded = self._decode(token)
        except InvalidToken:
            # Perhaps the issuer rotated its keys since we fetched them.
            if self.clock.time() - self._fetched_at < MIN_REFRESH_S:
                raise
            self._safe_refresh()
            decoded = self._decode(token)
        registry = JWTClaimsRegistry(
            now=int(self.clock.time()),
            leeway=30,
            iss={"essential": True, "value": self.issuer.rstrip("/")},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
        )
        try:
            registry.validate(decoded)
        except JoseError as exc:
            raise InvalidToken(f"token rejected: {exc.error}") from None
        return decoded

    def _decode(self, token: str) -> dict[str, Any]:
        if self._keys is None:
            raise InvalidToken("the issuer's keys are unavailable")
        try:
            return jwt.decode(token, self._keys, algorithms=VERIFY_ALGS).claims
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"token rejected: {type(exc).__name__}") from None

    def _safe_refresh(self) -> None:
        try:
            if not self._jwks_uri:
                self.discover()
            else:
                self._refresh()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("cannot refresh keys of %s: %s", self.issuer, type(exc).__name__)


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read before verification only to pick the verifier."""
    try:
        claims = orjson.loads(extract_compact(token.encode()).payload)
    except Exception:  # any malformed token simply has no usable issuer
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss.rstrip("/") if isinstance(iss, str) else None
