"""The ORM base of the platform's access tables: namespaces, contributors and API tokens
(``access.authz``) and the gateway's login sessions, kept in one database."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of the access and session tables."""
