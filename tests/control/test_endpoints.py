"""The leader's published endpoints and the followers' demand reports, on a real
PostgreSQL server: what one instance writes, another reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.engine import Engine

from modelport.control.endpoints import ServingDemand, create_tables, publish, read_demand
from modelport.control.follower_routing import DemandReport, EndpointBook
from tests.helpers.pgdatabase import fresh_database
from tests.pgserver import start_pg_server

KEY = "x-modelport-replica-key"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield server.url
    server.stop()


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_database(pg_url))
    create_tables(engine)
    create_tables(engine)  # a second instance starting: nothing changes
    yield engine
    engine.dispose()


def test_a_follower_reads_what_the_leader_published_only_when_it_changes(engine: Engine):
    book = EndpointBook(engine)
    assert book.read() and book.services == {}
    assert not book.read()
    publish(
        engine,
        [
            ("default", "iris", 2, 80, "127.0.0.1:5001", KEY, "k1", 0.0, "", ""),
            ("default", "iris", 2, 80, "127.0.0.1:5002", KEY, "k2", 0.0, "", ""),
            ("default", "iris", 1, 20, "", "", "", 30.0, "", ""),
        ],
        "leader",
    )
    assert book.read()
    svc = book.services[("default", "iris")]
    assert set(svc.revisions) == {1, 2}
    assert svc.revisions[1].endpoints == [] and svc.revisions[1].timeout_s == 30.0
    picks = {svc.revisions[2].pick(set()) for _ in range(4)}
    assert picks == {
        ("127.0.0.1:5001", (KEY.encode(), b"k1")),
        ("127.0.0.1:5002", (KEY.encode(), b"k2")),
    }
    assert svc.revisions[2].pick({"127.0.0.1:5001", "127.0.0.1:5002"}) is None
    book.refused.add("127.0.0.1:5001")
    publish(engine, [], "new leader")  # a new leader starts with nothing ready
    assert book.read() and book.services == {} and book.refused == set()


def test_demand_reports_are_summed_per_instance_and_go_stale(engine: Engine):
    key = ("default", "iris", 2)
    first, second = DemandReport(engine, "f1"), DemandReport(engine, "f2")
    first.begin(key)
    first.begin(key)
    first.end(key)
    second.begin(key)
    first.write(first.take())
    second.write(second.take())
    demand = read_demand(engine)
    assert demand[("f1", key)][0] >= 1.0 and demand[("f1", key)][1] == 2
    assert demand[("f2", key)][1] == 1
    second.end(key)
    second.write(second.take())  # the counter of arrivals stays; in flight drops
    assert read_demand(engine)[("f2", key)][1] == 1
    second.take()  # reported busy until the window ended
    assert second.take() == []  # idle, and said so: no more rows to write
    with engine.begin() as conn:  # f1 stopped reporting long ago
        conn.execute(
            update(ServingDemand)
            .where(ServingDemand.instance == "f1")
            .values(reported_at=ServingDemand.reported_at - 60)
        )
    assert set(read_demand(engine)) == {("f2", key)}
    second.forget()
    assert read_demand(engine) == {}


def test_a_lone_revision_takes_all_traffic_and_a_split_is_followed(engine: Engine):
    book = EndpointBook(engine)
    publish(engine, [("ns", "one", 1, 0, "127.0.0.1:5001", KEY, "k", 0.0, "", "")], "leader")
    assert book.read()
    lone = book.services[("ns", "one")].pick()
    assert lone is not None and lone.number == 1  # as ServiceState.pick on the leader
    publish(
        engine,
        [
            ("ns", "two", 1, 100, "127.0.0.1:5001", KEY, "k", 0.0, "", ""),
            ("ns", "two", 2, 0, "127.0.0.1:5002", KEY, "k", 0.0, "", ""),
        ],
        "leader",
    )
    assert book.read()
    picks = {book.services[("ns", "two")].pick().number for _ in range(50)}  # type: ignore[union-attr]
    assert picks == {1}
