"""ID and access tokens as Dex issues them (claims, ``sub`` encoding, hashes), signed and
verified with joserfc.

Dex encodes ``sub`` as base64url (no padding) of the protobuf message
``IDTokenSubject { string user_id = 1; string conn_id = 2; }`` (dex server/internal/types.proto);
users of the local password database have the connector id ``local``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.db import User
from modelport.identity.keys import KeyRing

LOCAL_CONNECTOR = "local"
# Algorithms we accept on tokens we verify; "none" and HMAC are never among them.
VERIFY_ALGS = ["RS256", "ES256"]


def _subject_message() -> Any:
    proto = descriptor_pb2.FileDescriptorProto(
        name="modelport/dex_subject.proto", package="modelport.dex", syntax="proto3"
    )
    msg = proto.message_type.add(name="IDTokenSubject")
    for number, name in ((1, "user_id"), (2, "conn_id")):
        msg.field.add(
            name=name,
            number=number,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("modelport.dex.IDTokenSubject")
    )


_IDTokenSubject = _subject_message()


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_subject(user_id: str, connector: str = LOCAL_CONNECTOR) -> str:
    """Dex's ``sub`` for a user of a connector."""
    return b64url(_IDTokenSubject(user_id=user_id, conn_id=connector).SerializeToString())


def decode_subject(sub: str) -> tuple[str, str]:
    """(user_id, connector) from a Dex ``sub``; ValueError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(sub + "=" * (-len(sub) % 4))
        msg = _IDTokenSubject.FromString(raw)
    except Exception as exc:  # protobuf and base64 raise several unrelated types
        raise ValueError(f"not a Dex subject: {sub!r}") from exc
    return msg.user_id, msg.conn_id


def half_hash(value: str) -> str:
    """OIDC ``at_hash``/``c_hash``: left half of SHA-256 of the ASCII value, base64url."""
    digest = hashlib.sha256(value.encode()).digest()
    return b64url(digest[: len(digest) // 2])


class InvalidToken(ValueError):
    """A token failed verification; the message says why (never includes the token)."""


class Revocations(Protocol):
    """Knows whether a validly signed, unexpired token was revoked since (revocation.py)."""

    def revoked(self, claims: dict[str, Any]) -> bool: ...


@dataclass
class TokenIssuer:
    """Mints Dex-shaped tokens for users and verifies tokens it (or a peer) signed."""

    issuer: str
    keys: KeyRing
    id_token_ttl_s: float = 24 * 3600
    access_token_ttl_s: float = 3600
    alg: str = "RS256"
    revocations: Revocations | None = None
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)

    def claims(
        self,
        user: User,
        audience: str | list[str],
        scopes: Iterable[str],
        *,
        ttl_s: float,
        now: float | None = None,
        nonce: str = "",
    ) -> dict[str, Any]:
        """The claim set Dex puts in its tokens for these scopes."""
        now = int(self.clock.time() if now is None else now)
        scopes = set(scopes)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": encode_subject(user.user_id),
            "aud": audience,
            "exp": now + int(ttl_s),
            "iat": now,
        }
        if isinstance(audience, list) and len(audience) > 1:
            claims["azp"] = audience[0]
        if nonce:
            claims["nonce"] = nonce
        if "email" in scopes:
            claims["email"] = user.email
            claims["email_verified"] = True
        if "groups" in scopes and user.groups:
            claims["groups"] = list(user.groups)
        if "profile" in scopes:
            claims["name"] = user.username
            claims["preferred_username"] = user.username
        return claims

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of the claims with the current signing key."""
        key = self.keys.signing_key(self.alg)
        return jwt.encode({"alg": self.alg, "kid": key.kid, "typ": "JWT"}, claims, key)

    def issue(
        self,
        user: User,
        client_id: str,
        scopes: Iterable[str],
        *,
        nonce: str = "",
        code: str | None = None,
        audience: list[str] | None = None,
        now: float | None = None,
    ) -> tuple[str, str, int]:
        """(access_token, id_token, expires_in) for a user and client."""
        scopes = list(scopes)
        aud: str | list[str] = audience if audience and len(audience) > 1 else client_id
        access = self.sign(
            self.claims(user, aud, scopes, ttl_s=self.access_token_ttl_s, now=now, nonce=nonce)
        )
        id_claims = self.claims(user, aud, scopes, ttl_s=self.id_token_ttl_s, now=now, nonce=nonce)
        id_claims["at_hash"] = half_hash(access)
        if code is not None:
            id_claims["c_hash"] = half_hash(code)
        return access, self.sign(id_claims), int(self.access_token_ttl_s)

    def _unknown_key(self, token: str, now: float | None) -> bool:
        """Whether the token names a key id that is not among the keys we have read."""
        try:
            kid = jws.extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError, TypeError):
            return False
        published = self.keys.jwks(now)["keys"]
        return isinstance(kid, str) and all(k.get("kid") != kid for k in published)

    def verify(
        self, token: str, *, audience: str | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """The claims of a token signed by one of our published keys, not expired and not
        revoked (its user deleted, or its password changed since); InvalidToken otherwise."""
        try:
            decoded = jwt.decode(token, self.keys.key_set(now), algorithms=VERIFY_ALGS)
        except (JoseError, ValueError, TypeError) as exc:
            # Perhaps signed with a key another instance on this database made since our
            # last read of the keys: read them again (rate-limited) and try once more.
            if not self._unknown_key(token, now) or not self.keys.reread(now):
                raise InvalidToken(f"token rejected: {type(exc).__name__}") from None
            try:
                decoded = jwt.decode(token, self.keys.key_set(now), algorithms=VERIFY_ALGS)
            except (JoseError, ValueError, TypeError) as again:
                raise InvalidToken(f"token rejected: {type(again).__name__}") from None
        options: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "value": self.issuer},
            "exp": {"essential": True},
        }
        if audience:
            options["aud"] = {"essential": True, "value": audience}
        registry = JWTClaimsRegistry(
            now=int(self.clock.time() if now is None else now), leeway=30, **options
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(f"token rejected: {exc.error}") from None
        if self.revocations is not None and self.revocations.revoked(decoded.claims):
            raise InvalidToken("token rejected: revoked")
        return decoded.claims
