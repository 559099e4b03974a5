"""Lockout after repeated wrong passwords, alike for login names with and without an account.

Accounts count their failures in the users table, shared by every process on the database
(users.py). Login names with no account count theirs here, in memory, by the same rule: the
same limit and lock time, the count starting again at the lock, and a failure that ends
while locked not counted. So "Too many failed logins" (429) comes after the same number of
guesses whether or not the account exists, and never tells which (issue 9, finding 6).

Memory is bounded: names are kept as SHA-256 digests, at most ``max_names`` of them, the
least recently failed going first. Flooding that many names (one password check each, from
many addresses past the per-address throttle) could end a name's lock early; the account
lockout of real users, in the database, is not affected.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from cachetools import LRUCache

MAX_NAMES = 65536


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``max_failures`` wrong passwords in a row the account is locked for a while."""

    max_failures: int = 5
    lock_seconds: float = 300.0


@dataclass
class _Count:
    failures: int = 0
    locked_until: float = 0.0


class NameLockout:
    """Failure counts and locks of login names that have no account."""

    def __init__(self, policy: LockoutPolicy, max_names: int = MAX_NAMES) -> None:
        self.policy = policy
        self._counts: LRUCache[bytes, _Count] = LRUCache(maxsize=max_names)
        # Password checks run on several hashing threads at once.
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> bytes:
        return hashlib.sha256(name.encode(errors="surrogatepass")).digest()

    def locked(self, name: str, now: float) -> bool:
        """Whether ``name`` is locked now."""
        with self._lock:
            count = self._counts.get(self._key(name))
            return count is not None and count.locked_until > now

    def failed(self, name: str, now: float) -> None:
        """Count one failed login of ``name`` (ignored while it is locked, as for accounts)."""
        with self._lock:
            key = self._key(name)
            count = self._counts.get(key) or _Count()
            if count.locked_until > now:
                return
            count.failures += 1
            if count.failures >= self.policy.max_failures:
                count.failures, count.locked_until = 0, now + self.policy.lock_seconds
            self._counts[key] = count
