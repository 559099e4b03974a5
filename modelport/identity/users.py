"""User and client records: creation, password changes, login checks with lockout, and
keeping Dex-config users and clients in step with their file."""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.db import Client, User, rowcount
from modelport.identity.dex_config import DexConfig
from modelport.identity.lockout import LockoutPolicy, NameLockout
from modelport.identity.passwords import (
    DEFAULT_PROFILE,
    HashPool,
    HashProfile,
    check_strength,
    hash_like,
    hash_password,
    hash_profile,
    needs_rehash,
    verify_password,
)
from modelport.identity.revocation import cut_off, end_grants

__all__ = ["Directory", "LockoutPolicy", "UserError", "normalize_email", "secret_digest"]

# How often the kind of hash users have is looked at again, and on how many of them.
DUMMY_RECHECK_S = 60.0
DUMMY_SAMPLE = 1000


class UserError(ValueError):
    """A user operation that cannot be done (duplicate email, unknown user, ...)."""


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively, as Dex's password DB does."""
    return email.strip().lower()


def secret_digest(secret: str) -> str:
    """How client secrets are stored (they are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Directory:
    """Users and clients in the identity database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lockout: LockoutPolicy | None = None,
        *,
        hashing: HashPool | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sessions = sessions
        self.clock = clock
        self.lockout = lockout or LockoutPolicy()
        self.hashing = hashing or HashPool()
        self.names = NameLockout(self.lockout)
        self._dummy: tuple[HashProfile | None, str] = (None, "")
        self._dummy_recheck_at = 0.0
        self._dummy_lock = threading.Lock()

    # ---- users ---------------------------------------------------------------------------

    def add_user(
        self,
        email: str,
        password: str,
        *,
        username: str = "",
        groups: list[str] | None = None,
        admin: bool = False,
    ) -> User:
        """Create a user with a new argon2id password hash."""
        check_strength(password)
        email = normalize_email(email)
        if "@" not in email:
            raise UserError(f"{email!r} is not an email address.")
        # Hashed before the transaction: writes take turns, and this is ~100 ms of CPU.
        password_hash = hash_password(password)
        with self._sessions.begin() as db:
            if db.scalar(select(User).where(User.email == email)) is not None:
                raise UserError(f"A user with email {email} already exists.")
            user = User(
                user_id=str(uuid.uuid4()),
                email=email,
                username=username or email.split("@")[0],
                password_hash=password_hash,
                groups=list(groups or []),
                admin=admin,
                source="cli",
                created_at=self.clock.time(),
            )
            db.add(user)
        self._users_changed()
        return user

    def get_user(self, email: str) -> User | None:
        """The user with this email, or None."""
        with self._sessions() as db:
            return db.scalar(select(User).where(User.email == normalize_email(email)))

    def get_user_by_id(self, user_id: str) -> User | None:
        """The user with this ID, or None."""
        with self._sessions() as db:
            return db.get(User, user_id)

    def list_users(self) -> list[User]:
        """Every user, by email."""
        with self._sessions() as db:
            return list(db.scalars(select(User).order_by(User.email)))

    def set_password(self, email: str, password: str) -> None:
        """Replace a user's password (and lift any lockout); what the user was granted
        before, refresh tokens, JWTs and gateway sessions, stops working."""
        check_strength(password)
        password_hash = hash_password(password)
        with self._sessions.begin() as db:
            user = self._require(db, email)
            user.password_hash = password_hash
            user.failed_logins = 0
            user.locked_until = 0.0
            cut_off(db, user, self.clock.time())
        self._users_changed()

    def sign_out_everywhere(self, email: str) -> None:
        """End every session, refresh token and JWT the user holds now (the web UI's "sign
        out everywhere"); logging in again works a second later (revocation.py)."""
        with self._sessions.begin() as db:
            cut_off(db, self._require(db, email), self.clock.time())

    def delete_user(self, email: str) -> None:
        """Remove a user, with their refresh tokens (their JWTs and sessions stop working)."""
        with self._sessions.begin() as db:
            user = self._require(db, email)
            end_grants(db, user.user_id, deleted=True)
            db.delete(user)
        self._users_changed()

    def authenticate(self, email: str, password: str, now: float | None = None) -> User | None:
        """The user if the password is right and the account is not locked, else None.

        Blocking (bcrypt: ~240 ms of CPU); servers call ``login``. No database connection
        is held while the password is checked: the hash and lock are read, the connection
        returned, and the outcome written in a second short transaction. A failure is
        counted with one UPDATE (never lost to a concurrent one); a right password is
        accepted only if the account is still unlocked when that is written, so one checked
        alongside the guesses that locked the account is refused too.
        """
        email = normalize_email(email)
        found = self._login_record(email)
        now = self.clock.time() if now is None else now
        if found is None or found[3] > now:
            # Unknown or locked: cost as much as a real check, so timing tells neither, and
            # count an unknown name's failures as an account's (lockout.py).
            verify_password(self.dummy_hash(), password)
            if found is None:
                self.names.failed(email, now)
            return None
        user_id, stored, source, _ = found
        if not verify_password(stored, password):
            self._record_failure(user_id, now)
            return None
        upgraded = hash_password(password) if needs_rehash(stored) and source != "config" else None
        return self._record_success(user_id, stored, upgraded, now)

    async def login(self, email: str, password: str) -> User | None:
        """``authenticate`` on the hashing pool: bounded, in order of arrival, off the loop."""
        return await self.hashing.run(self.authenticate, email, password)

    def _login_record(self, email: str) -> tuple[str, str, str, float] | None:
        """(user_id, stored hash, source, locked until) of the account, or None."""
        with self._sessions() as db:
            row = db.execute(
                select(User.user_id, User.password_hash, User.source, User.locked_until).where(
                    User.email == email
                )
            ).one_or_none()
        if row is None:
            return None
        return row.user_id, row.password_hash, row.source, row.locked_until

    def dummy_hash(self) -> str:
        """A hash of a random password, of the algorithm and cost most stored hashes use.

        Checking a login name without an account (or a locked one) against it costs what a
        real check costs: with Kubeflow's bcrypt (cost 12) users, a default argon2id dummy
        answered unknown names in half the time. Blocking (one hash) when the kind changes.
        """
        with self._dummy_lock:
            if self.clock.monotonic() < self._dummy_recheck_at:
                return self._dummy[1]
            with self._sessions() as db:
                stored = db.scalars(select(User.password_hash).limit(DUMMY_SAMPLE)).all()
            common = Counter(hash_profile(h) for h in stored).most_common(1)
            profile = common[0][0] if common else DEFAULT_PROFILE
            if profile != self._dummy[0]:
                self._dummy = (profile, hash_like(profile, uuid.uuid4().hex))
            self._dummy_recheck_at = self.clock.monotonic() + DUMMY_RECHECK_S
            return self._dummy[1]

    def _users_changed(self) -> None:
        self._dummy_recheck_at = 0.0

    def _record_failure(self, user_id: str, now: float) -> None:
        with self._sessions.begin() as db:
            # The first UPDATE takes the write lock, so the second sees every failure
            # counted before it. A failure that ends while already locked is not counted.
            unlocked = User.user_id == user_id, User.locked_until <= now
            db.execute(
                update(User)
                .where(*unlocked)
                .values(failed_logins=User.failed_logins + 1)
                .execution_options(synchronize_session=False)
            )
            db.execute(
                update(User)
                .where(*unlocked, User.failed_logins >= self.lockout.max_failures)
                .values(failed_logins=0, locked_until=now + self.lockout.lock_seconds)
                .execution_options(synchronize_session=False)
            )

    def _record_success(
        self, user_id: str, stored: str, upgraded: str | None, now: float
    ) -> User | None:
        with self._sessions.begin() as db:
            accepted = rowcount(
                db.execute(
                    update(User)
                    .where(User.user_id == user_id, User.locked_until <= now)
                    .values(failed_logins=0)
                    .execution_options(synchronize_session=False)
                )
            )
            if not accepted:  # locked (or deleted) while the password was being checked
                return None
            if upgraded is not None:
                # Only over the hash just verified: never undo a password change made meanwhile.
                db.execute(
                    update(User)
                    .where(User.user_id == user_id, User.password_hash == stored)
                    .values(password_hash=upgraded)
                    .execution_options(synchronize_session=False)
                )
            return db.get(User, user_id)

    def is_locked(self, email: str, now: float | None = None) -> bool:
        """Whether the login name is locked after repeated failures (account or not)."""
        now = self.clock.time() if now is None else now
        user = self.get_user(email)
        if user is None:
            return self.names.locked(normalize_email(email), now)
        return user.locked_until > now

    @staticmethod
    def _require(db: Session, email: str) -> User:
        user = db.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise UserError(f"No user with email {normalize_email(email)}.")
        return user

    # ---- clients -------------------------------------------------------------------------

    def get_client(self, client_id: str) -> Client | None:
        """The OAuth client with this ID, or None."""
        with self._sessions() as db:
            return db.get(Client, client_id)

    def upsert_client(
        self,
        client_id: str,
        *,
        secret: str | None,
        redirect_uris: list[str],
        name: str = "",
        public: bool = False,
        trusted_peers: list[str] | None = None,
        source: str = "config",
    ) -> Client:
        """Create or update a client."""
        with self._sessions.begin() as db:
            client = db.get(Client, client_id) or Client(client_id=client_id)
            client.secret_sha256 = secret_digest(secret) if secret else None
            client.redirect_uris = list(redirect_uris)
            client.name = name
            client.public = public
            client.trusted_peers = list(trusted_peers or [])
            client.source = source
            db.add(client)
        return client

    @staticmethod
    def client_secret_ok(client: Client, secret: str | None) -> bool:
        """Constant-time check of a presented client secret."""
        if client.secret_sha256 is None or secret is None:
            return False
        return hmac.compare_digest(client.secret_sha256, secret_digest(secret))

    # ---- Dex configuration ---------------------------------------------------------------

    def sync_config(self, config: DexConfig) -> None:
        """Make config users and clients match the file: added, updated, or removed."""
        with self._sessions.begin() as db:
            wanted = {normalize_email(p.email): p for p in config.static_passwords}
            for stale in list(db.scalars(select(User).where(User.source == "config"))):
                if stale.email not in wanted:
                    end_grants(db, stale.user_id, deleted=True)
                    db.delete(stale)
            db.flush()
            for email, entry in wanted.items():
                user = db.scalar(select(User).where(User.email == email))
                if user is not None and user.source != "config":
                    raise UserError(
                        f"staticPasswords: {email} already exists as a user made with the CLI."
                    )
                if user is None:
                    user = User(
                        user_id=entry.user_id or str(uuid.uuid4()),
                        email=email,
                        created_at=self.clock.time(),
                        source="config",
                    )
                    db.add(user)
                elif user.password_hash != entry.hash:
                    cut_off(db, user, self.clock.time())  # the file changed the password
                user.username = entry.username or email.split("@")[0]
                user.password_hash = entry.hash
                user.groups = list(entry.groups)
                user.admin = entry.admin
            wanted_clients = {c.id for c in config.static_clients}
            for client in db.scalars(select(Client).where(Client.source == "config")):
                if client.client_id not in wanted_clients:
                    db.delete(client)
        for c in config.static_clients:
            self.upsert_client(
                c.id,
                secret=c.secret,
                redirect_uris=c.redirect_uris,
                name=c.name,
                public=c.public,
                trusted_peers=c.trusted_peers,
            )
        self._users_changed()
