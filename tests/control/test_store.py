"""The control-plane store on a real SQLite file."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from modelport.control.store import ISVC, RUNTIME, Store
from tests.pgserver import start_pg_server


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield server.url
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The same store on a SQLite file and on a real PostgreSQL server (own schema each)."""
    if request.param == "sqlite":
        return Store.open(f"sqlite:///{tmp_path}/control.db")
    url = request.getfixturevalue("pg_url")
    database = "t_" + uuid.uuid4().hex[:12]
    admin = Store.open(url).engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    return Store.open(url.rsplit("/", 1)[0] + "/" + database)


def _doc(uri: str) -> dict:
    return {"kind": "InferenceService", "spec": {"predictor": {"model": {"storageUri": uri}}}}


def test_apply_reports_created_configured_unchanged(store: Store):
    assert store.apply(ISVC, "ns", "a", _doc("/m1"), by="u@x").action == "created"
    assert store.apply(ISVC, "ns", "a", _doc("/m1")).action == "unchanged"
    assert store.get(ISVC, "ns", "a").generation == 1
    assert store.apply(ISVC, "ns", "a", _doc("/m2")).action == "configured"
    row = store.get(ISVC, "ns", "a")
    assert row.generation == 2
    assert row.document == _doc("/m2")
    assert row.applied_by == "u@x"


def test_kinds_and_namespaces_are_separate(store: Store):
    store.apply(ISVC, "ns1", "a", _doc("/m"))
    store.apply(ISVC, "ns2", "a", _doc("/m"))
    store.apply(RUNTIME, "ns1", "a", {"kind": "ServingRuntime"})
    assert [(r.namespace, r.name) for r in store.list(ISVC)] == [("ns1", "a"), ("ns2", "a")]
    assert [r.name for r in store.list(ISVC, "ns2")] == ["a"]
    assert [r.kind for r in store.list(RUNTIME)] == [RUNTIME]


def test_revisions_number_up_and_go_with_their_service(store: Store):
    store.apply(ISVC, "ns", "a", _doc("/m"))
    first = store.add_revision("ns", "a", "k1", _doc("/m"), previous=0)
    second = store.add_revision("ns", "a", "k2", _doc("/m2"), previous=first.number)
    other = store.add_revision("ns", "b", "k1", _doc("/m"), previous=0)
    assert (first.number, second.number, other.number) == (1, 2, 1)
    store.update_revision(first.id, state="ready", promoted=1)
    assert [(r.number, r.state, r.promoted) for r in store.revisions("ns", "a")] == [
        (1, "ready", 1),
        (2, "pending", 0),
    ]
    assert store.delete(ISVC, "ns", "a")
    assert store.revisions("ns", "a") == []
    assert [r.service for r in store.all_revisions()] == ["b"]
    assert not store.delete(ISVC, "ns", "a")


def test_state_survives_reopening_and_file_is_private(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/control.db"
    store = Store.open(url)
    store.apply(ISVC, "ns", "a", _doc("/m"))
    store.add_revision("ns", "a", "k", _doc("/m"), previous=0)
    store.engine.dispose()
    again = Store.open(url)
    assert again.get(ISVC, "ns", "a").document == _doc("/m")
    assert len(again.revisions("ns", "a")) == 1
    mode = stat.S_IMODE((tmp_path / "control.db").stat().st_mode)
    assert mode == 0o600
