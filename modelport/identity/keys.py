"""Signing keys: generation, rotation and the published JWKS (all JOSE work is joserfc's).

Like Dex, the provider signs with one current key per algorithm and rotates it on a fixed
period (Dex: 6 h). A rotated key stops signing but stays in the JWKS until every token it
signed has expired, so relying parties that cached the JWKS keep verifying.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, KeySet, KeySetSerialization, RSAKey
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.db import SigningKey

SUPPORTED_ALGS = ("RS256", "ES256")
# PostgreSQL advisory lock id held while one instance makes signing keys (any fixed number
# no other part of modelport uses; the leader lease uses its own).
KEY_MAKING_LOCK = 0x6D70_6B65

Key = RSAKey | ECKey


def generate(alg: str) -> Key:
    """A fresh private key for the algorithm, with a thumbprint ``kid``."""
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True, auto_kid=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True, auto_kid=True)
    raise ValueError(f"Unsupported signing algorithm {alg}; choose one of {SUPPORTED_ALGS}.")


@dataclass(frozen=True)
class RotationPolicy:
    """How long a key signs, and how long it must stay published afterwards."""

    rotate_every_s: float = 6 * 3600
    # The longest lifetime of anything the key signs (ID tokens by default: 24 h).
    token_lifetime_s: float = 24 * 3600


class KeyRing:
    """The provider's keys in the database, one current signing key per algorithm."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        algs: tuple[str, ...] = ("RS256",),
        policy: RotationPolicy | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for alg in algs:
            if alg not in SUPPORTED_ALGS:
                raise ValueError(f"Unsupported signing algorithm {alg}.")
        self._sessions = sessions
        self.algs = algs
        self.policy = policy or RotationPolicy()
        self.clock = clock
        self._cache: tuple[float, dict[str, Key], KeySetSerialization] | None = None
        self._next_rotation = 0.0
        # Importing an RSA private key checks it (~35 ms of CPU): each key is imported once.
        self._imported: dict[str, Key] = {}
        # One thread re-reads the keys; the others that find the cache stale wait for it.
        self._refresh = threading.Lock()
        # When a token failed to verify, the keys were last re-read on its account (below).
        self._forced_at = float("-inf")

    def signing_key(self, alg: str | None = None, now: float | None = None) -> Key:
        """The current key for ``alg`` (the first configured by default), rotating if due."""
        alg = alg or self.algs[0]
        now = self.clock.time() if now is None else now
        current, _ = self._state(now)
        key = current.get(alg)
        if key is None:
            raise ValueError(f"No signing key for {alg}.")
        return key

    def jwks(self, now: float | None = None) -> KeySetSerialization:
        """The public keys relying parties may verify with: ``{"keys": [...]}``."""
        _, published = self._state(self.clock.time() if now is None else now)
        return published

    def seconds_until_rotation(self, now: float | None = None) -> float:
        """How long the current signing keys stay current (for JWKS cache headers)."""
        now = self.clock.time() if now is None else now
        self._state(now)
        return max(0.0, self._next_rotation - now)

    def key_set(self, now: float | None = None) -> KeySet:
        """The published keys as a joserfc KeySet, for verifying our own tokens."""
        return KeySet.import_key_set(self.jwks(now))

    def rotate(self, now: float | None = None) -> None:
        """Retire every current key now and make new ones (e.g. after a suspected leak)."""
        now = self.clock.time() if now is None else now
        with self._sessions.begin() as db:
            for row in db.scalars(select(SigningKey).where(SigningKey.signs_until > now)):
                row.signs_until = now
                row.expires_at = now + self.policy.token_lifetime_s
        self._cache = None

    def reread(self, now: float | None = None) -> bool:
        """Re-read the keys now, at most once a second; whether they were re-read.

        Another instance on the same database may have made or rotated a key this process
        has not read yet (it re-reads every minute): a token signed with it would fail to
        verify here until then. A failed verification calls this and tries once more; the
        once-a-second bound keeps a flood of bad tokens from becoming a flood of queries.
        """
        now = self.clock.time() if now is None else now
        with self._refresh:
            if self.clock.monotonic() - self._forced_at < 1.0:
                return False
            self._forced_at = self.clock.monotonic()
            self._reload(now)
        return True

    def _state(self, now: float) -> tuple[dict[str, Key], KeySetSerialization]:
        cached = self._cache
        if cached is not None and now < cached[0]:
            return cached[1], cached[2]
        with self._refresh:
            cached = self._cache
            if cached is not None and now < cached[0]:
                return cached[1], cached[2]
            return self._reload(now)

    def _reload(self, now: float) -> tuple[dict[str, Key], KeySetSerialization]:
        with self._sessions.begin() as db:
            rows = list(db.scalars(select(SigningKey).order_by(SigningKey.created_at)))
            if any(r.expires_at <= now for r in rows):
                db.execute(delete(SigningKey).where(SigningKey.expires_at <= now))
                rows = [r for r in rows if r.expires_at > now]
            current: dict[str, Key] = {}
            for row in rows:
                if row.signs_until > now:
                    current[row.alg] = self._key(row)
            if any(alg not in current for alg in self.algs):
                rows, current = self._after_others(db, now, rows, current)
            for alg in self.algs:
                if alg not in current:
                    key = generate(alg)
                    row = SigningKey(
                        kid=key.kid,
                        alg=alg,
                        private_jwk=key.as_dict(private=True),
                        created_at=now,
                        signs_until=now + self.policy.rotate_every_s,
                        expires_at=now + self.policy.rotate_every_s + self.policy.token_lifetime_s,
                    )
                    db.add(row)
                    rows.append(row)
                    self._imported[row.kid] = current[alg] = key
            published: KeySetSerialization = {
                "keys": [
                    {**self._key(r).as_dict(private=False), "use": "sig", "alg": r.alg}
                    for r in rows
                ]
            }
            self._next_rotation = min(r.signs_until for r in rows if r.signs_until > now)
            next_change = min(
                [r.signs_until for r in rows if r.signs_until > now] + [r.expires_at for r in rows]
            )
        # Re-read at the next rotation or expiry, and at least every minute so that several
        # processes sharing the database converge on the same keys.
        self._cache = (min(next_change, now + 60), current, published)
        self._imported = {r.kid: self._imported[r.kid] for r in rows if r.kid in self._imported}
        return current, published

    def _after_others(
        self, db: Session, now: float, rows: list[SigningKey], current: dict[str, Key]
    ) -> tuple[list[SigningKey], dict[str, Key]]:
        """On PostgreSQL, wait for any other instance making keys, and read what it made.

        Instances sharing a database that start together would each make a key, and each
        sign with its own until their next re-read. A transaction-scoped advisory lock
        lets one make it; the others, let in after its commit, find it current and use it.
        SQLite serves one instance, whose writers already take turns (identity/db.py).
        """
        if db.get_bind().dialect.name != "postgresql":
            return rows, current
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": KEY_MAKING_LOCK})
        rows = list(db.scalars(select(SigningKey).order_by(SigningKey.created_at)))
        rows = [r for r in rows if r.expires_at > now]
        current = {r.alg: self._key(r) for r in rows if r.signs_until > now}
        return rows, current

    def _key(self, row: SigningKey) -> Key:
        key = self._imported.get(row.kid)
        if key is None:
            key = self._imported[row.kid] = _import(row.private_jwk)
        return key


def _import(data: dict[str, Any]) -> Key:
    if data.get("kty") == "EC":
        return ECKey.import_key(data)
    return RSAKey.import_key(data)
