"""SQL engines for modelport's state (SQLite by default; any SQLAlchemy URL works)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, make_url
from sqlalchemy.engine import Engine


def make_engine(url: str, *metadata: MetaData) -> Engine:
    """An engine for ``url`` with ``metadata``'s tables (and indexes) created.

    A SQLite file is created with owner-only permissions: it holds password hashes and
    session ids.
    """
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)
        os.chmod(path, 0o600)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # Never make a thread wait for a connection: threadpool endpoints (anyio: 40
        # threads), the password-hashing threads and the event loop itself may all read at
        # once, and under WAL readers do not block each other. Eight stay open; the rest
        # are closed when returned.
        engine = create_engine(url, pool_size=8, max_overflow=56)
    else:
        engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    for tables in metadata:
        tables.create_all(engine)
        # create_all skips tables that exist, so indexes added since a database was made
        # are created here.
        for table in tables.sorted_tables:
            for index in table.indexes:
                index.create(engine, checkfirst=True)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the CLI, the gateway) go on while one writer commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints instead of every commit: the database stays
    # consistent after a crash, and bursts do not queue behind fsync.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
