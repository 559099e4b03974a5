"""Namespaces and who may do what in them (Kubeflow Profiles' model), plus API tokens.

Each namespace has one owner and contributors with a role: ``view`` (read, infer) or
``edit`` (also deploy, delete, load, unload). Owners can edit; admins can do anything. API
tokens act for their creator in one namespace with one role, until they expire or are
revoked; only a SHA-256 of their secret part is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Boolean, Float, String, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from modelport.access.tables import Base
from modelport.identity.clock import SYSTEM_CLOCK, Clock

VIEW = "view"
EDIT = "edit"
ROLES = (VIEW, EDIT)
TOKEN_PREFIX = "mpt_"


class AuthzError(ValueError):
    """A namespace or token operation that cannot be done; the message says why."""


class Namespace(Base):
    """A namespace and its owner."""

    __tablename__ = "namespaces"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[float] = mapped_column(Float)


class Contributor(Base):
    """A user's role in a namespace."""

    __tablename__ = "namespace_contributors"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))


class ApiToken(Base):
    """A machine credential scoped to one namespace and role."""

    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str] = mapped_column(String(320))
    description: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)  # 0 = no expiry
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    by_admin: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class TokenGrant:
    """What a valid API token allows."""

    token_id: str
    owner: str
    namespace: str
    role: str


def valid_name(name: str) -> bool:
    """Kubernetes-style DNS label: lower-case letters, digits and '-', 1–63 characters."""
    return (
        0 < len(name) <= 63
        and name[0].isalnum()
        and name[-1].isalnum()
        and all(c.islower() or c.isdigit() or c == "-" for c in name)
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Authorizer:
    """Namespace membership, decisions, and API tokens, in the gateway's database."""

    def __init__(self, engine: Engine, *, clock: Clock = SYSTEM_CLOCK) -> None:
        Base.metadata.create_all(engine)
        self.clock = clock
        self._sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)

    # ---- namespaces ----------------------------------------------------------------------

    def create_namespace(self, name: str, owner: str) -> Namespace:
        """A new namespace owned by ``owner``."""
        if not valid_name(name):
            raise AuthzError(
                f"Invalid namespace name {name!r}: use lower-case letters, digits and '-'."
            )
        with self._sessions.begin() as db:
            if db.get(Namespace, name) is not None:
                raise AuthzError(f"Namespace {name} already exists.")
            ns = Namespace(name=name, owner=owner.lower(), created_at=self.clock.time())
            db.add(ns)
        return ns

    def get_namespace(self, name: str) -> Namespace | None:
        """The namespace, or None."""
        with self._sessions() as db:
            return db.get(Namespace, name)

    def list_namespaces(self) -> list[Namespace]:
        """All namespaces, by name."""
        with self._sessions() as db:
            return list(db.scalars(select(Namespace).order_by(Namespace.name)))

    def set_contributor(self, namespace: str, email: str, role: str) -> None:
        """Give ``email`` a role in the namespace (replacing any previous role)."""
        if role not in ROLES:
            raise AuthzError(f"Unknown role {role!r}; use view or edit.")
        with self._sessions.begin() as db:
            if db.get(Namespace, namespace) is None:
                raise AuthzError(f"Namespace {namespace} does not exist.")
            row = db.get(Contributor, (namespace, email.lower()))
            if row is None:
                db.add(Contributor(namespace=namespace, email=email.lower(), role=role))
            else:
                row.role = role

    def remove_contributor(self, namespace: str, email: str) -> None:
        """Take away a user's role in the namespace."""
        with self._sessions.begin() as db:
            row = db.get(Contributor, (namespace, email.lower()))
            if row is None:
                raise AuthzError(f"{email} is not a contributor of {namespace}.")
            db.delete(row)

    def contributors(self, namespace: str) -> list[tuple[str, str]]:
        """(email, role) of each contributor of the namespace (not its owner), by email."""
        with self._sessions() as db:
            query = select(Contributor.email, Contributor.role).where(
                Contributor.namespace == namespace
            )
            return [(email, role) for email, role in db.execute(query.order_by(Contributor.email))]

    def role_of(self, email: str, namespace: str) -> str | None:
        """``edit`` for owners, the contributor role, or None."""
        with self._sessions() as db:
            ns = db.get(Namespace, namespace)
            if ns is None:
                return None
            if ns.owner == email.lower():
                return EDIT
            row = db.get(Contributor, (namespace, email.lower()))
            return row.role if row else None

    def roles_of(self, email: str) -> dict[str, str]:
        """Every namespace where ``email`` has a role, with the role (owners: edit)."""
        email = email.lower()
        with self._sessions() as db:
            roles = {
                name: role
                for name, role in db.execute(
                    select(Contributor.namespace, Contributor.role).where(
                        Contributor.email == email
                    )
                )
            }
            for name in db.scalars(select(Namespace.name).where(Namespace.owner == email)):
                roles[name] = EDIT
        return roles

    def refusal(
        self, email: str, namespace: str, needed: str, *, admin: bool = False
    ) -> str | None:
        """Why ``email`` may not act with role ``needed`` in ``namespace`` (the 403's
        message); None when it may."""
        if admin:
            return None
        if self.get_namespace(namespace) is None:
            return f"Namespace {namespace} does not exist."
        role = self.role_of(email, namespace)
        if role is None:
            return f"{email} has no access to namespace {namespace}."
        if needed == EDIT and role != EDIT:
            return f"{email} can only view namespace {namespace}; this needs the edit role."
        return None

    # ---- API tokens ----------------------------------------------------------------------

    def create_token(
        self,
        owner: str,
        namespace: str,
        role: str,
        *,
        ttl_s: float = 0.0,
        description: str = "",
        admin: bool = False,
    ) -> str:
        """A new token; the full value is returned once and never stored."""
        if role not in ROLES:
            raise AuthzError(f"Unknown role {role!r}; use view or edit.")
        # A token can never grant more than its creator holds.
        problem = self.refusal(owner, namespace, role, admin=admin)
        if problem:
            raise AuthzError(problem)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self.clock.time()
        with self._sessions.begin() as db:
            db.add(
                ApiToken(
                    token_id=token_id,
                    secret_sha256=_digest(secret),
                    namespace=namespace,
                    role=role,
                    owner=owner.lower(),
                    description=description,
                    created_at=now,
                    expires_at=now + ttl_s if ttl_s else 0.0,
                    by_admin=admin,
                )
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}"

    def list_tokens(self, owner: str | None = None) -> list[ApiToken]:
        """Tokens (of one owner, or all), newest first."""
        with self._sessions() as db:
            query = select(ApiToken).order_by(ApiToken.created_at.desc())
            if owner is not None:
                query = query.where(ApiToken.owner == owner.lower())
            return list(db.scalars(query))

    def revoke_token(self, token_id: str, *, by: str | None = None) -> None:
        """Revoke a token (only its owner may, unless ``by`` is None: an admin)."""
        with self._sessions.begin() as db:
            row = db.get(ApiToken, token_id)
            if row is None or (by is not None and row.owner != by.lower()):
                raise AuthzError(f"No token {token_id}.")
            row.revoked = True

    def revoke_tokens_of(self, owner: str) -> int:
        """Revoke every token ``owner`` holds (their account is gone); how many were live."""
        with self._sessions.begin() as db:
            rows = db.scalars(
                select(ApiToken).where(ApiToken.owner == owner.lower(), ~ApiToken.revoked)
            ).all()
            for row in rows:
                row.revoked = True
            return len(rows)

    def verify_token(self, value: str) -> TokenGrant | None:
        """The grant of a valid, unexpired, unrevoked token, else None."""
        if not value.startswith(TOKEN_PREFIX) or len(value) > 200:
            return None
        token_id, _, secret = value[len(TOKEN_PREFIX) :].partition("_")
        if not token_id or not secret:
            return None
        with self._sessions() as db:
            row = db.get(ApiToken, token_id)
        if row is None or row.revoked:
            return None
        if row.expires_at and row.expires_at < self.clock.time():
            return None
        if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            return None
        # The creator may have lost access since; the token cannot outlive that.
        if row.by_admin:
            if self.get_namespace(row.namespace) is None:
                return None
        elif self.refusal(row.owner, row.namespace, row.role) is not None:
            return None
        return TokenGrant(row.token_id, row.owner, row.namespace, row.role)
