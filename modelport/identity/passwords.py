"""Password hashing: bcrypt (what Dex's ``staticPasswords`` use) and argon2id (our default).

Verification accepts either kind, so a Dex config's bcrypt hashes work as they are, and a
stored bcrypt hash is upgraded to argon2id after the next successful login.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import bcrypt
from argon2 import Parameters, PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_argon2 = PasswordHasher()
# bcrypt only looks at the first 72 bytes; longer passwords are refused rather than cut.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8
# Below the event loop's priority (nice 0): a burst of logins takes the CPU that signed-in
# requests leave over, not the other way round.
HASH_THREAD_NICENESS = 5

T = TypeVar("T")


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


# Parameters' fields in order (Parameters itself is unhashable, and profiles are counted).
Argon2Fields = tuple[Type, int, int, int, int, int, int]


@dataclass(frozen=True)
class HashProfile:
    """What checking a stored hash costs: bcrypt's cost, or argon2's parameters (None for
    this module's defaults, also used for stored values of neither kind)."""

    algorithm: str
    bcrypt_cost: int | None = None
    argon2: Argon2Fields | None = None


DEFAULT_PROFILE = HashProfile("argon2")


def hash_profile(stored: str) -> HashProfile:
    """The algorithm and cost of a stored hash."""
    if is_bcrypt(stored):
        cost = stored[4:6]
        # bcrypt allows costs 4..31 ($2y$12$...): anything else cannot be checked anyway.
        if cost.isdigit() and 4 <= int(cost) <= 31:
            return HashProfile("bcrypt", bcrypt_cost=int(cost))
        return DEFAULT_PROFILE
    try:
        p = extract_parameters(stored)
    except (InvalidHashError, ValueError):
        return DEFAULT_PROFILE
    fields = (p.type, p.version, p.salt_len, p.hash_len, p.time_cost, p.memory_cost, p.parallelism)
    return HashProfile("argon2", argon2=fields)


def hash_like(profile: HashProfile, password: str) -> str:
    """A hash of ``password`` that costs as much to check as stored hashes of ``profile``."""
    if profile.bcrypt_cost is not None:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=profile.bcrypt_cost)).decode()
    if profile.argon2 is not None:
        return PasswordHasher.from_parameters(Parameters(*profile.argon2)).hash(password)
    return hash_password(password)


def needs_rehash(stored: str) -> bool:
    """Whether a verified hash should be replaced by a fresh argon2id hash."""
    if is_bcrypt(stored):
        return True
    try:
        return _argon2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _lower_priority() -> None:
    # Linux: PRIO_PROCESS with a thread id sets that one thread's niceness.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)
    except (AttributeError, OSError):
        pass


class HashPool:
    """Password checks on at most ``workers`` threads, in order of arrival.

    bcrypt and argon2 release the GIL, so one thread per core keeps every core busy; more
    threads would only slow every login down together (and keep their database work in
    flight), where a queue answers the first comers at full speed. A job waiting its turn
    holds no thread, and is dropped if its caller gives up.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or available_cores()
        self._executor = ThreadPoolExecutor(
            self.workers, thread_name_prefix="password-hash", initializer=_lower_priority
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a hashing thread, once the jobs that came before it have started."""
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def close(self) -> None:
        """Stop the threads once the queued jobs are done."""
        self._executor.shutdown(wait=False)
