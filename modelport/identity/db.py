"""Identity state in SQL (SQLite by default, any SQLAlchemy URL works): users, OAuth clients
and signing keys. Short-lived protocol state (auth requests, codes, refresh tokens, device
codes) lives in its own tables beside these, added by the modules that use them.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, inspect, text
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.schema import CreateColumn

from modelport.db import make_engine as _make_engine


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run by ``Session.execute`` matched.

    Such statements return a CursorResult, which the Session's signature types as a plain
    Result; SQLAlchemy's docs answer this with a cast.
    """
    return cast(CursorResult[Any], result).rowcount


class Base(DeclarativeBase):
    """Declarative base of every identity table."""


class User(Base):
    """A person who logs in with a password (Dex's ``staticPasswords`` or ``modelport users``)."""

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    username: Mapped[str] = mapped_column(String(256))
    password_hash: Mapped[str] = mapped_column(Text)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # "config" users come from a Dex-style file and are kept in step with it on every start.
    source: Mapped[str] = mapped_column(String(16), default="cli")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    # Tokens and sessions issued before this are revoked (password changed): revocation.py.
    tokens_valid_after: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class Client(Base):
    """An OAuth 2.0 client (Dex's ``staticClients``)."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    # SHA-256 of the secret: client secrets are long random strings, not passwords.
    secret_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted_peers: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(16), default="config")


class SigningKey(Base):
    """A JWS signing key; kept for verification after rotation until its tokens expire."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    # After this the key no longer signs; after expires_at it is no longer published.
    signs_until: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the identity tables (see ``modelport.db.make_engine``)."""
    engine = _make_engine(url, Base.metadata)
    add_missing_columns(engine)
    return engine


def add_missing_columns(engine: Engine) -> None:
    """Add columns defined since a database was made (``create_all`` skips existing tables).

    Every column added after the first release has a ``server_default``, so the rows already
    there get a value. Processes starting together may race to add the same column: the
    loser finds it present and carries on.
    """
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = CreateColumn(column).compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}'))
            except DatabaseError:
                columns = inspect(engine).get_columns(table.name)
                if column.name not in {c["name"] for c in columns}:
                    raise


# One per SQLite database (engine): see Sessions.
_write_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


class Sessions(sessionmaker[Session]):
    """Sessions that keep loaded objects usable after commit; with SQLite, ``begin()``
    transactions (every write) take turns within the process.

    SQLite lets one writer in at a time anyway, but a writer that finds the database locked
    sleeps in its busy handler and retries with growing pauses (up to 100 ms each), so in a
    burst of writes (a login storm creating auth requests) unlucky threads lose round after
    round for a second or more. Waiting on a lock here instead hands the database to the
    next writer the moment the last one commits.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self._write_lock: threading.RLock | None = None
        if engine.dialect.name == "sqlite":
            with _write_locks_guard:
                self._write_lock = _write_locks.setdefault(engine, threading.RLock())

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in a transaction that commits at the end (or rolls back on error)."""
        if self._write_lock is None:
            with super().begin() as session:
                yield session
            return
        with self._write_lock, super().begin() as session:
            yield session


def session_factory(engine: Engine) -> Sessions:
    """Sessions that keep loaded objects usable after commit (see Sessions)."""
    return Sessions(engine)


class AuthRequest(Base):
    """An authorization request between /dex/auth and the code redirect (Dex: AuthRequest)."""

    __tablename__ = "auth_requests"
    # Counting and trimming a client's pending requests (identity/pending.py).
    __table_args__ = (Index("ix_auth_requests_client_expiry", "client_id", "expires_at"),)

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(256))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str] = mapped_column(String(128), default="")
    code_challenge_method: Mapped[str] = mapped_column(String(8), default="")
    force_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Binds the approval step to the login that completed this request (Dex ≥ 2.35's hmac).
    hmac_key: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class AuthCode(Base):
    """A single-use authorization code (stored by its SHA-256)."""

    __tablename__ = "auth_codes"

    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(256))
    redirect_uri: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    nonce: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str] = mapped_column(String(128), default="")
    code_challenge_method: Mapped[str] = mapped_column(String(8), default="")
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class RefreshToken(Base):
    """A refresh token; rotation marks the old one used, and reuse revokes the whole family."""

    __tablename__ = "refresh_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(256))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    nonce: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    family_created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float] = mapped_column(Float)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class DeviceCode(Base):
    """A pending device authorization (RFC 8628): polled by the device, approved in a browser."""

    __tablename__ = "device_codes"
    __table_args__ = (Index("ix_device_codes_client_expiry", "client_id", "expires_at"),)

    device_code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    client_id: Mapped[str] = mapped_column(String(256))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    interval_s: Mapped[int] = mapped_column(Integer, default=5)
    last_poll_at: Mapped[float] = mapped_column(Float, default=0.0)
    # The PKCE verifier (RFC 7636) of the device's own authorization request: it never
    # leaves the provider, so only a code issued for that request can approve this device.
    code_verifier: Mapped[str] = mapped_column(String(128), default="", server_default="")
