"""Signing keys: one current key per algorithm, rotation, and the published JWKS."""

from __future__ import annotations

import pytest
from joserfc import jwt

from modelport.identity.db import make_engine, session_factory
from modelport.identity.keys import KeyRing, RotationPolicy


@pytest.fixture
def sessions(tmp_path):
    return session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))


def test_keys_persist_and_sign(sessions):
    ring = KeyRing(sessions, ("RS256", "ES256"))
    rs = ring.signing_key("RS256", now=1000)
    es = ring.signing_key("ES256", now=1000)
    assert {k["kid"] for k in ring.jwks(now=1000)["keys"]} == {rs.kid, es.kid}
    assert all("d" not in k for k in ring.jwks(now=1000)["keys"])  # public parts only
    # a second process sharing the database sees the same keys
    again = KeyRing(sessions, ("RS256", "ES256"))
    assert again.signing_key("RS256", now=1001).kid == rs.kid
    token = jwt.encode({"alg": "ES256", "kid": es.kid}, {"sub": "u"}, es)
    assert jwt.decode(token, again.key_set(now=1001), algorithms=["ES256"]).claims == {"sub": "u"}


def test_rotation_keeps_old_key_published_until_its_tokens_expire(sessions):
    policy = RotationPolicy(rotate_every_s=100, token_lifetime_s=50)
    ring = KeyRing(sessions, ("RS256",), policy)
    first = ring.signing_key(now=0)
    second = ring.signing_key(now=120)
    assert second.kid != first.kid
    kids = {k["kid"] for k in KeyRing(sessions, ("RS256",), policy).jwks(now=120)["keys"]}
    assert kids == {first.kid, second.kid}
    kids = {k["kid"] for k in KeyRing(sessions, ("RS256",), policy).jwks(now=151)["keys"]}
    assert kids == {second.kid}


def test_forced_rotation(sessions):
    ring = KeyRing(sessions, ("RS256",))
    old = ring.signing_key()
    ring.rotate()
    assert ring.signing_key().kid != old.kid
    assert old.kid in {k["kid"] for k in ring.jwks()["keys"]}


def test_database_file_is_private(tmp_path):
    make_engine(f"sqlite:///{tmp_path}/private.db")
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0


def test_unknown_algorithm_is_refused(sessions):
    with pytest.raises(ValueError):
        KeyRing(sessions, ("HS256",))
