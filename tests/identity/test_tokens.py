"""Dex-shaped tokens: sub encoding, claims per scope, hashes, and verification failures."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwk, jwt

from modelport.identity.db import User, make_engine, session_factory
from modelport.identity.keys import KeyRing
from modelport.identity.tokens import (
    InvalidToken,
    TokenIssuer,
    decode_subject,
    encode_subject,
    half_hash,
)

ISSUER = "http://127.0.0.1:5556/dex"


@pytest.fixture
def issuer(tmp_path):
    ring = KeyRing(session_factory(make_engine(f"sqlite:///{tmp_path}/id.db")), ("RS256", "ES256"))
    return TokenIssuer(ISSUER, ring)


@pytest.fixture
def user():
    return User(
        user_id="15841185641784",
        email="user@example.com",
        username="user",
        password_hash="",
        groups=["team-a"],
        admin=False,
    )


def test_sub_matches_dex_encoding():
    # Value Dex produces for userID 15841185641784 of the "local" connector.
    assert encode_subject("15841185641784") == "Cg4xNTg0MTE4NTY0MTc4NBIFbG9jYWw"
    assert decode_subject("Cg4xNTg0MTE4NTY0MTc4NBIFbG9jYWw") == ("15841185641784", "local")
    with pytest.raises(ValueError):
        decode_subject("!!not base64!!")


def test_claims_follow_scopes(issuer, user):
    access, id_token, expires_in = issuer.issue(
        user, "app", ["openid", "email", "groups", "profile"], nonce="n-1", code="the-code"
    )
    claims = issuer.verify(id_token, audience="app")
    assert claims["iss"] == ISSUER and claims["aud"] == "app" and claims["nonce"] == "n-1"
    assert claims["email"] == "user@example.com" and claims["email_verified"] is True
    assert claims["groups"] == ["team-a"] and claims["name"] == "user"
    assert claims["at_hash"] == half_hash(access) and claims["c_hash"] == half_hash("the-code")
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert expires_in == 3600
    bare = issuer.verify(issuer.issue(user, "app", ["openid"])[1])
    assert "email" not in bare and "groups" not in bare and "name" not in bare


def _tamper(token: str, **changes) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    new = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{new}.{sig}"


def test_hostile_tokens_are_rejected(issuer, user):
    _, good, _ = issuer.issue(user, "app", ["openid", "email"])
    claims = issuer.verify(good)
    public = issuer.keys.jwks()["keys"][0]
    attacks = {
        "tampered payload": _tamper(good, email="admin@example.com"),
        "tampered signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "alg none": base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
        + "."
        + good.split(".")[1]
        + ".",
        "garbage": "not.a.jwt",
        "empty": "",
    }
    # HS256 signed with the RSA public key's bytes as the HMAC secret
    hmac_key = jwk.OctKey.import_key(json.dumps(public).encode())
    attacks["hs256 with public key"] = jwt.encode(
        {"alg": "HS256", "kid": public["kid"]}, claims, hmac_key
    )
    # signed by a key that is not ours, with our kid
    stranger = jwk.RSAKey.generate_key(2048, private=True)
    attacks["unknown key"] = jwt.encode({"alg": "RS256", "kid": public["kid"]}, claims, stranger)
    attacks["unknown kid"] = jwt.encode({"alg": "RS256", "kid": "nope"}, claims, stranger)
    for name, token in attacks.items():
        with pytest.raises(InvalidToken) as err:
            issuer.verify(token)
        # errors never echo the token
        assert not token or token not in str(err.value), name


def test_expiry_issuer_and_audience_are_checked(issuer, user):
    _, token, _ = issuer.issue(user, "app", ["openid"], now=time.time() - 2 * 24 * 3600)
    with pytest.raises(InvalidToken):
        issuer.verify(token)
    _, token, _ = issuer.issue(user, "app", ["openid"])
    with pytest.raises(InvalidToken):
        issuer.verify(token, audience="other-app")
    other = TokenIssuer("http://elsewhere/dex", issuer.keys)
    with pytest.raises(InvalidToken):
        other.verify(token)
    future = issuer.sign({**issuer.verify(token), "nbf": int(time.time()) + 3600})
    with pytest.raises(InvalidToken):
        issuer.verify(future)


def test_es256_tokens(tmp_path, user):
    ring = KeyRing(session_factory(make_engine(f"sqlite:///{tmp_path}/e.db")), ("ES256",))
    es = TokenIssuer(ISSUER, ring, alg="ES256")
    _, token, _ = es.issue(user, "app", ["openid"])
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "ES256"
    assert es.verify(token)["aud"] == "app"
