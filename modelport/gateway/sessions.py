"""Server-side login sessions behind the ``authservice_session`` cookie, and pending logins.

Only SHA-256 digests of cookie values and login states are stored, so a copy of the database
does not hand out sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import JSON, Float, String, Text, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from modelport.access.caller import Identity
from modelport.access.tables import Base
from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.db import User, rowcount
from modelport.identity.revocation import issued_too_early

COOKIE = "authservice_session"
STATE_COOKIE = "oidc_state_csrf"


def state_cookie(state: str) -> str:
    """The name of the cookie binding one pending login to the browser. One cookie per
    login, as oauth2-proxy names its CSRF cookies: a browser that starts a second login
    meanwhile (a favicon, another tab) must not overwrite the first one's binding."""
    return f"{STATE_COOKIE}_{_digest(state)[:16]}"


SESSION_MAX_AGE_S = 86400
LOGIN_TTL_S = 600
# Every request without credentials starts a pending login. Past this many the oldest go:
# refusing new ones instead would let a trickle of anonymous requests (10,000 per
# LOGIN_TTL_S) keep everyone from logging in, while dropping the oldest costs only a login
# left unfinished while 10,000 newer ones arrived, which the person simply starts again.
MAX_PENDING_LOGINS = 10_000
# Where to return after login is the URL first asked for; a longer one returns to "/"
# (browsers and proxies commonly stop at 2-8 KiB anyway).
MAX_RETURN_TO = 4096


class LoginSession(Base):
    """One browser or script that completed the login flow."""

    __tablename__ = "gateway_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class PendingLogin(Base):
    """A login the gateway started: its state, where to return, and the browser binding."""

    __tablename__ = "gateway_pending_logins"

    state_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    binding_sha256: Mapped[str] = mapped_column(String(64))
    return_to: Mapped[str] = mapped_column(Text)
    # Purges and the bound (oldest first) walk this index, not the table.
    expires_at: Mapped[float] = mapped_column(Float, index=True)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SessionStore:
    """Create, look up and end login sessions and pending logins."""

    def __init__(
        self, engine: Engine, *, max_pending: int = MAX_PENDING_LOGINS, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        Base.metadata.create_all(engine)
        # create_all skips tables that exist: indexes added since are created here.
        for name in (LoginSession.__tablename__, PendingLogin.__tablename__):
            for index in Base.metadata.tables[name].indexes:
                index.create(engine, checkfirst=True)
        self._sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        self.max_pending = max_pending
        self.clock = clock

    def create(self, identity: Identity, max_age_s: float = SESSION_MAX_AGE_S) -> str:
        """A new session; returns the cookie value (never stored as such)."""
        value = secrets.token_urlsafe(32)
        now = self.clock.time()
        with self._sessions.begin() as db:
            db.execute(delete(LoginSession).where(LoginSession.expires_at < now))
            db.add(
                LoginSession(
                    id_sha256=_digest(value),
                    email=identity.email,
                    groups=list(identity.groups),
                    created_at=now,
                    expires_at=now + max_age_s,
                )
            )
        return value

    def lookup(self, value: str) -> Identity | None:
        """The identity of a live session, or None.

        Sessions are of the provider's local users (the gateway logs in only through it): one
        whose user was deleted, or changed password after it began, is over (revocation.py).
        """
        if not value or len(value) > 256:
            return None
        with self._sessions() as db:
            found = db.execute(
                select(LoginSession, User.tokens_valid_after)
                .join(User, User.email == LoginSession.email, isouter=True)
                .where(LoginSession.id_sha256 == _digest(value))
            ).one_or_none()
        if found is None:
            return None
        row, valid_after = found
        if row.expires_at < self.clock.time() or valid_after is None:
            return None
        if issued_too_early(row.created_at, valid_after):
            return None
        return Identity(row.email, tuple(row.groups))

    def end(self, value: str) -> bool:
        """Log a session out; True if it existed."""
        with self._sessions.begin() as db:
            result = db.execute(
                delete(LoginSession).where(LoginSession.id_sha256 == _digest(value))
            )
        return bool(rowcount(result))

    def start_login(self, return_to: str) -> tuple[str, str]:
        """(state, browser binding) for a new login; the binding goes in a cookie."""
        state = secrets.token_urlsafe(24)
        binding = secrets.token_urlsafe(24)
        now = self.clock.time()
        with self._sessions.begin() as db:
            db.execute(delete(PendingLogin).where(PendingLogin.expires_at < now))
            db.add(
                PendingLogin(
                    state_sha256=_digest(state),
                    binding_sha256=_digest(binding),
                    return_to=return_to if len(return_to) <= MAX_RETURN_TO else "/",
                    expires_at=now + LOGIN_TTL_S,
                )
            )
            db.flush()
            excess = db.scalar(select(func.count()).select_from(PendingLogin)) or 0
            excess -= self.max_pending
            if excess > 0:
                oldest = select(PendingLogin.state_sha256).order_by(PendingLogin.expires_at)
                db.execute(
                    delete(PendingLogin)
                    .where(PendingLogin.state_sha256.in_(oldest.limit(excess).scalar_subquery()))
                    .execution_options(synchronize_session=False)
                )
        return state, binding

    def finish_login(self, state: str, binding: str | None) -> str | None:
        """Consume a pending login; returns where to send the client, or None if invalid.

        ``binding`` is the browser's state cookie: when present it must match (login CSRF).
        When absent the caller decided the request is not a cross-site browser navigation.
        """
        with self._sessions.begin() as db:
            row = db.get(PendingLogin, _digest(state)) if state else None
            if row is None:
                return None
            db.delete(row)
        if row.expires_at < self.clock.time():
            return None
        if binding is not None and not hmac.compare_digest(row.binding_sha256, _digest(binding)):
            return None
        return row.return_to
