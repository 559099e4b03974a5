"""Revocation on password change and deletion: refresh tokens, grants in flight, JWT cutoffs."""

from __future__ import annotations

import bcrypt
import pytest
from sqlalchemy import select

from modelport.identity.clock import ManualClock
from modelport.identity.db import AuthCode, RefreshToken
from modelport.identity.dex_config import parse_dex_config
from modelport.identity.provider import Provider
from modelport.identity.revocation import issued_too_early
from modelport.identity.tokens import InvalidToken


def _grants(provider: Provider, clock: ManualClock, user_id: str) -> tuple[str, str]:
    """(refresh token, access token) of the user, and a code in flight, made 5 s ago."""
    refresh = provider.new_refresh_token("modelport-cli", user_id, ["openid"], "")
    with provider.sessions.begin() as db:
        db.add(
            AuthCode(
                code_sha256="c" * 64,
                client_id="modelport-cli",
                redirect_uri="/cb",
                user_id=user_id,
                expires_at=clock.time() + 60,
            )
        )
    user = provider.directory.get_user_by_id(user_id)
    access, _, _ = provider.tokens.issue(user, "modelport-cli", ["openid"])
    clock.advance(5)
    return refresh, access


def test_a_password_change_revokes_refresh_tokens_codes_and_jwts(provider, clock):
    user = provider.directory.add_user("a@example.com", "first-password")
    refresh, access = _grants(provider, clock, user.user_id)
    provider.tokens.verify(access)
    provider.directory.set_password("a@example.com", "second-password")
    with provider.sessions() as db:
        assert db.scalars(select(RefreshToken.revoked)).all() == [True]
        assert db.scalars(select(AuthCode)).all() == []
    with pytest.raises(InvalidToken, match="revoked"):
        provider.tokens.verify(access)
    # iat has whole seconds: a token of the change's own second is refused, the next one's not
    clock.advance(0.5)
    same_second, _, _ = provider.tokens.issue(user, "modelport-cli", ["openid"])
    with pytest.raises(InvalidToken, match="revoked"):
        provider.tokens.verify(same_second)
    clock.advance(1)
    later, _, _ = provider.tokens.issue(user, "modelport-cli", ["openid"])
    assert provider.tokens.verify(later)["sub"]


def test_deletion_removes_refresh_tokens_and_ends_jwts(provider, clock):
    user = provider.directory.add_user("a@example.com", "first-password")
    _, access = _grants(provider, clock, user.user_id)
    provider.directory.delete_user("a@example.com")
    with provider.sessions() as db:
        assert db.scalars(select(RefreshToken)).all() == []
    with pytest.raises(InvalidToken, match="revoked"):
        provider.tokens.verify(access)


def test_a_config_file_password_change_revokes_too(provider, clock):
    def config(password: bytes):
        hashed = bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()
        entry = {"email": "k@example.com", "hash": hashed, "userID": "k1"}
        return parse_dex_config({"staticPasswords": [entry]})

    first = config(b"first-password")
    provider.directory.sync_config(first)
    _, access = _grants(provider, clock, "k1")
    provider.directory.sync_config(first)  # the same file again: nothing is revoked
    provider.tokens.verify(access)
    provider.directory.sync_config(config(b"first-password"))  # a new hash: a new password
    with pytest.raises(InvalidToken, match="revoked"):
        provider.tokens.verify(access)


def test_whole_second_times_refuse_the_cutoffs_second():
    assert not issued_too_early(100, 0.0, whole_seconds=True)
    assert issued_too_early(100, 100.5, whole_seconds=True)
    assert not issued_too_early(101, 100.5, whole_seconds=True)
    assert issued_too_early(100.4, 100.5) and not issued_too_early(100.6, 100.5)
