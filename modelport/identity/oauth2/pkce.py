"""Proof Key for Code Exchange (RFC 7636): challenges, verifiers and their check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

S256 = "S256"
PLAIN = "plain"
METHODS = (S256, PLAIN)
# RFC 7636 §4.1: a verifier is 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-._~".
# A "plain" challenge is the verifier itself, an S256 one is 43 characters of base64url.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256(verifier: str) -> str:
    """The S256 challenge of a verifier: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_verifier() -> str:
    """A fresh verifier with 384 bits of randomness (64 characters, RFC 7636 §4.1)."""
    return secrets.token_urlsafe(48)


def well_formed_challenge(challenge: str) -> bool:
    """Whether a challenge has the shape RFC 7636 §4.2 allows (either method)."""
    return _VERIFIER.fullmatch(challenge) is not None


def verifier_matches(method: str, challenge: str, verifier: str) -> bool:
    """RFC 7636 §4.6: the verifier transformed by ``method`` equals the challenge."""
    computed = s256(verifier) if method == S256 else verifier
    return hmac.compare_digest(computed.encode(), challenge.encode())
