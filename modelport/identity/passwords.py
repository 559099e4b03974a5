"""Password hashing: bcrypt (what Dex's ``staticPasswords`` use) and argon2id (our default).

Verification accepts either kind, so a Dex config's bcrypt hashes work as they are, and a
stored bcrypt hash is upgraded to argon2id after the next successful login.
"""

from __future__ import annotations

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_argon2 = PasswordHasher()
# bcrypt only looks at the first 72 bytes; longer passwords are refused rather than cut.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8


class WeakPassword(ValueError):
    """The password does not meet the minimum requirements."""


def check_strength(password: str) -> None:
    """Raise WeakPassword for passwords too short or too long to hash safely."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"Passwords need at least {MIN_PASSWORD_CHARS} characters.")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise WeakPassword(f"Passwords may be at most {MAX_PASSWORD_BYTES} bytes long.")


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _argon2.hash(password)


def is_bcrypt(stored: str) -> bool:
    """Whether a stored hash is bcrypt ($2a$/$2b$/$2y$)."""
    return stored.startswith(("$2a$", "$2b$", "$2y$"))


def verify_password(stored: str, password: str) -> bool:
    """True when the password matches the stored bcrypt or argon2 hash."""
    if not stored:
        return False
    if is_bcrypt(stored):
        data = password.encode()
        if len(data) > MAX_PASSWORD_BYTES:
            return False
        try:
            return bcrypt.checkpw(data, stored.encode())
        except ValueError:
            return False
    try:
        return _argon2.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a verified hash should be replaced by a fresh argon2id hash."""
    if is_bcrypt(stored):
        return True
    try:
        return _argon2.check_needs_rehash(stored)
    except InvalidHashError:
        return True
