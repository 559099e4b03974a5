"""Secrets that every platform instance on one database must agree on, made once.

Two ``modelport up`` instances sharing a database each start with nothing in memory; a
secret one of them invents alone (the gateway's OAuth client secret, for one) would be
replaced by the other's at its start, and the first instance's logins would then fail.
So the first instance to ask stores a random value and every later one reads it back.
The database already holds the signing keys, so this adds nothing an attacker with the
database would not have anyway.
"""

from __future__ import annotations

import secrets

from sqlalchemy import String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class _Base(DeclarativeBase):
    """Declarative base of the shared-secret table."""


class PlatformSecret(_Base):
    """One named secret shared by the instances on this database."""

    __tablename__ = "platform_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def shared_secret(engine: Engine, name: str) -> str:
    """The secret called ``name``, created with 32 random bytes by whoever asks first.

    Two instances asking at once both try to insert; the primary key lets one in, the
    other's insert fails, and both then read the one stored value.
    """
    _Base.metadata.create_all(engine)
    try:
        with Session(engine) as db, db.begin():
            if db.get(PlatformSecret, name) is None:
                db.add(PlatformSecret(name=name, value=secrets.token_urlsafe(32)))
    except IntegrityError:
        pass  # another instance stored it between our read and our insert
    with Session(engine) as db:
        value = db.scalar(select(PlatformSecret.value).where(PlatformSecret.name == name))
    if value is None:  # only if the row was deleted in between: a broken database
        raise RuntimeError(f"shared secret {name} could not be stored")
    return value
