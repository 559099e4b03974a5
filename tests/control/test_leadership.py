"""The leader lease on a real PostgreSQL server: one holder at a time, takeover once the
holder stops renewing, and a holder that cannot renew stops leading before anyone else
may take over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from modelport.control.leadership import Elector, Lease
from tests.conftest import wait_for
from tests.helpers.pgdatabase import fresh_database
from tests.pgserver import start_pg_server

TTL = 1.0
RENEW = 0.1


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield server.url
    server.stop()


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_database(pg_url))
    yield engine
    engine.dispose()


class Unreachable(Lease):
    """A lease whose database stops answering when told: calls hang, then fail."""

    cut = False

    def try_hold(self, ttl_s: float = TTL) -> bool:
        if self.cut:
            time.sleep(2 * TTL)
            raise ConnectionError("database unreachable")
        return super().try_hold(ttl_s)


def test_one_holder_until_it_stops_renewing(engine: Engine):
    a, b = Lease(engine, "a"), Lease(engine, "b")
    assert a.try_hold(TTL) and not b.try_hold(TTL)
    assert a.current_holder() == "a" and a.try_hold(TTL)
    assert wait_for(lambda: b.try_hold(TTL), timeout=20)
    assert b.current_holder() == "b"
    assert not a.try_hold(TTL)


def test_a_released_lease_is_taken_at_once(engine: Engine):
    a, b = Lease(engine, "a"), Lease(engine, "b")
    assert a.try_hold(60)
    assert not b.try_hold(60)
    a.release()
    assert b.try_hold(60) and b.current_holder() == "b"


def test_a_second_lease_row_is_never_made(engine: Engine):
    Lease(engine, "a").try_hold(TTL)
    Lease(engine, "b")  # made after the row exists: inserts nothing, changes nothing
    assert Lease(engine, "c").current_holder() == "a"


async def _watch(
    electors: list[Elector], lease: Lease, until: callable, timeout: float
) -> list[tuple[str, ...]]:
    """Sample who believes it leads, with the lease's holder column read at that moment
    (the loop is blocked while it is read, so no elector changes its mind meanwhile)."""
    samples: list[tuple[str, ...]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until():
        leading = tuple(e.holder for e in electors if e.leading)
        holder = lease.current_holder()
        samples.append((*leading, "|", holder or ""))
        assert len(leading) <= 1, f"two leaders at once: {leading}"
        if leading:
            assert holder == leading[0], f"{leading[0]} leads, the lease names {holder}"
        await asyncio.sleep(0.02)
    return samples


def test_takeover_after_the_leader_dies_without_two_leaders(engine: Engine):
    async def scenario() -> None:
        a = Elector(Lease(engine, "a"), ttl_s=TTL, renew_every_s=RENEW)
        b = Elector(Lease(engine, "b"), ttl_s=TTL, renew_every_s=RENEW)
        observer = Lease(engine, "observer")
        await a.attempt()
        a.start()
        b.start()
        await _watch([a, b], observer, lambda: False, timeout=2.0)
        assert a.leading and not b.leading
        # "SIGKILL": a's renewals stop and it never gives the lease up.
        assert a._task is not None
        a._task.cancel()
        a.leading = False
        samples = await _watch([a, b], observer, lambda: b.leading, timeout=20)
        assert b.leading, samples[-5:]
        await _watch([a, b], observer, lambda: False, timeout=1.0)
        await b.stop()
        assert observer.current_holder() is None  # b gave it up on its way out

    asyncio.run(scenario())


def test_a_leader_that_cannot_renew_stands_down_before_it_can_be_replaced(engine: Engine):
    async def scenario() -> None:
        cut = Unreachable(engine, "a")
        a = Elector(cut, ttl_s=TTL, renew_every_s=RENEW)
        b = Elector(Lease(engine, "b"), ttl_s=TTL, renew_every_s=RENEW)
        observer = Lease(engine, "observer")
        await a.attempt()
        a.start()
        b.start()
        await _watch([a, b], observer, lambda: False, timeout=1.0)
        assert a.leading
        cut.cut = True  # its database connection hangs: a's process is alive but cut off
        await _watch([a, b], observer, lambda: b.leading, timeout=20)
        assert b.leading and not a.leading
        assert a.changed.is_set()
        for e in (a, b):
            assert e._task is not None
            e._task.cancel()

    asyncio.run(scenario())
