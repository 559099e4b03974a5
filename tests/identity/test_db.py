"""The identity database: SQLite writes take turns in the process; indexes reach old files."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from modelport.identity.db import AuthRequest, DeviceCode, User, make_engine, session_factory


def test_sqlite_write_transactions_take_turns_and_reads_do_not_wait(tmp_path):
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with sessions.begin():
            order.append("first in")
            inside.set()
            assert release.wait(10)
            order.append("first out")

    def second() -> None:
        with sessions.begin():
            order.append("second in")

    with ThreadPoolExecutor(2) as threads:
        a = threads.submit(first)
        assert inside.wait(10)
        b = threads.submit(second)
        with sessions() as db:  # a read meanwhile
            assert db.scalar(select(User)) is None
        assert not b.done()
        release.set()
        a.result(10), b.result(10)
    assert order == ["first in", "first out", "second in"]


def test_a_burst_of_writers_all_get_through(tmp_path):
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))

    def insert(i: int) -> None:
        with sessions.begin() as db:
            db.add(
                AuthRequest(
                    request_id=str(i), client_id="c", redirect_uri="/", hmac_key="k", expires_at=0
                )
            )

    with ThreadPoolExecutor(32) as threads:
        list(threads.map(insert, range(500)))
    with sessions() as db:
        assert len(db.scalars(select(AuthRequest)).all()) == 500


def test_indexes_are_added_to_an_existing_database(tmp_path):
    path = tmp_path / "id.db"
    make_engine(f"sqlite:///{path}").dispose()
    con = sqlite3.connect(path)
    con.execute("DROP INDEX ix_auth_requests_expires_at")
    con.commit()
    make_engine(f"sqlite:///{path}").dispose()
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    con.close()
    assert "ix_auth_requests_expires_at" in names


def test_columns_are_added_to_an_existing_database(tmp_path):
    # A database made before device requests kept their PKCE verifier.
    path = tmp_path / "id.db"
    make_engine(f"sqlite:///{path}").dispose()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE device_codes DROP COLUMN code_verifier")
    con.execute(
        "INSERT INTO device_codes (device_code_sha256, user_code, client_id, scopes, expires_at,"
        " interval_s, last_poll_at) VALUES ('d', 'BBBB-CCCC', 'c', '[]', 0, 5, 0)"
    )
    con.commit()
    sessions = session_factory(make_engine(f"sqlite:///{path}"))
    with sessions() as db:
        row = db.get(DeviceCode, "d")
    con.close()
    assert row is not None and row.code_verifier == ""
