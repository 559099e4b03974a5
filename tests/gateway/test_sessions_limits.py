"""Pending gateway logins: bounded in number (oldest go) and size, and purged when expired.

Issue 9, finding 5: every anonymous request creates a pending-login row.
"""

from __future__ import annotations

import sqlite3

import pytest

from modelport.gateway.sessions import LOGIN_TTL_S, SessionStore
from modelport.identity.db import make_engine


@pytest.fixture()
def store(tmp_path, clock) -> SessionStore:
    return SessionStore(make_engine(f"sqlite:///{tmp_path}/id.db"), max_pending=5, clock=clock)


def test_oldest_pending_logins_go_past_the_bound(store):
    started = [store.start_login(f"/v2/models/m{i}") for i in range(8)]
    for state, binding in started[:3]:
        assert store.finish_login(state, binding) is None
    for i, (state, binding) in enumerate(started[3:], start=3):
        assert store.finish_login(state, binding) == f"/v2/models/m{i}"


def test_a_very_long_return_path_returns_to_the_root(store):
    state, binding = store.start_login("/v2/models/m?" + "q" * 60_000)
    assert store.finish_login(state, binding) == "/"
    state, binding = store.start_login("/v2/models/m?q=1")
    assert store.finish_login(state, binding) == "/v2/models/m?q=1"


def test_expired_pending_logins_are_purged(store, clock, tmp_path):
    store.start_login("/old")
    clock.advance(LOGIN_TTL_S + 1)
    store.start_login("/new")
    con = sqlite3.connect(tmp_path / "id.db")
    rows = [r[0] for r in con.execute("SELECT return_to FROM gateway_pending_logins")]
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    con.close()
    assert rows == ["/new"]
    assert "ix_gateway_pending_logins_expires_at" in indexes
