"""A fresh, empty database on a test PostgreSQL server (tests/pgserver.py), so tests that
share one server never see each other's rows."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text


def fresh_database(server_url: str) -> str:
    """The URL of a new database on the server ``server_url`` points at."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name
