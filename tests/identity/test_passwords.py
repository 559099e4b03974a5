"""Password hashing: bcrypt hashes from Dex configs verify; new hashes are argon2id."""

from __future__ import annotations

import bcrypt
import pytest

from modelport.identity.passwords import (
    WeakPassword,
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_argon2_round_trip():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horsE")
    assert not needs_rehash(stored)


def test_dex_bcrypt_hash_verifies_and_asks_for_upgrade():
    # The hash Dex's example config ships for the password "password".
    dex_hash = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"
    assert verify_password(dex_hash, "password")
    assert not verify_password(dex_hash, "Password")
    assert needs_rehash(dex_hash)


def test_bcrypt_ignores_nothing_past_72_bytes():
    long = "a" * 80
    stored = bcrypt.hashpw(long[:72].encode(), bcrypt.gensalt(rounds=4)).decode()
    # bcrypt itself would accept the 80-byte password; we refuse it instead of truncating.
    assert not verify_password(stored, long)


@pytest.mark.parametrize("stored", ["", "plain-text", "$2b$garbage", "$argon2id$nonsense"])
def test_garbage_hashes_never_verify(stored):
    assert not verify_password(stored, "anything")


def test_strength_rules():
    check_strength("eight888")
    with pytest.raises(WeakPassword):
        check_strength("short")
    with pytest.raises(WeakPassword):
        check_strength("é" * 40)  # 80 bytes
