"""Which of several ``modelport up`` instances on one database runs the controller.

Every instance serves the gateway, the APIs and the page; only the leader reconciles
(starts, scales and stops replicas). Leadership is a lease: one row naming its holder and
when it expires, renewed every second with a five-second lifetime.

Why a lease row and not a PostgreSQL session advisory lock: the lock belongs to a
connection, so it is released only when PostgreSQL notices the connection is gone. A
SIGKILLed leader's socket closes at once, but a leader whose host or network vanishes keeps
it until TCP keepalive gives up (minutes by default), and the lock tells the holder nothing
when it is lost. A lease bounds takeover by its lifetime however the leader dies, and the
holder knows when it last renewed. Both the expiry and the takeover compare times read from
the database's own clock inside one UPDATE, so the instances' clocks never meet.

Fencing is by timing: a leader that has not renewed for half the lease's lifetime stops
acting, measured from before it sent its last successful renewal, so it stops while its
lease is still valid and before anyone else may take it. (A process frozen longer than that,
e.g. stopped by a debugger, can act late; nothing here fences it at the replicas.)

SQLite serves one instance only: ``build_platform`` then runs the controller from the
start, without a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    Float,
    String,
    case,
    create_engine,
    delete,
    func,
    make_url,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

log = logging.getLogger("modelport.controller.leadership")

LEASE_TTL_S = 5.0
RENEW_EVERY_S = 1.0
# PostgreSQL advisory lock id held while an instance sets up shared rows at start (the
# first admin, the default namespace, the gateway's client): any number no other part of
# modelport uses.
STARTUP_LOCK = 0x6D70_7570
CONTROLLER = "controller"


class _Base(DeclarativeBase):
    """Declarative base of the lease table."""


class LeaderLease(_Base):
    """Who holds a lease and until when (seconds since the epoch, on the database's clock)."""

    __tablename__ = "leader_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128), default="")
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
    # When the current holder took it (database clock): a renewal keeps it.
    since: Mapped[float] = mapped_column(Float, default=0.0)


class InstanceAddress(_Base):
    """Where an instance listens, for the others to forward control-plane requests to it
    while it leads (``leader_forward.py``). A row outlives a SIGKILLed instance; only the
    row of the lease's current holder is ever read, so a stale one is never used."""

    __tablename__ = "platform_instances"

    holder: Mapped[str] = mapped_column(String(128), primary_key=True)
    # host:port of the instance's own listener (platform-private: never shown to clients).
    address: Mapped[str] = mapped_column(String(300), default="")


def shares_database(database_url: str | None) -> bool:
    """Whether several instances can share this database (only PostgreSQL here)."""
    return database_url is not None and make_url(database_url).get_backend_name() == "postgresql"


@contextlib.contextmanager
def startup_lock(database_url: str | None) -> Iterator[None]:
    """Instances starting at once on one PostgreSQL set up shared rows one after the other
    (a session advisory lock; released when this block ends or the connection drops)."""
    if not shares_database(database_url):
        yield
        return
    engine = create_engine(database_url or "")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def _db_now() -> Any:
    # clock_timestamp(), not now(): now() is the transaction's start time.
    return func.extract("epoch", func.clock_timestamp())


class Lease:
    """One named lease in PostgreSQL, taken and renewed by compare-and-set."""

    def __init__(self, engine: Engine, holder: str, *, name: str = CONTROLLER) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("A shared lease needs PostgreSQL; SQLite serves one instance.")
        self.engine = engine
        self.holder = holder
        self.name = name
        _Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(pg_insert(LeaderLease).values(name=name).on_conflict_do_nothing())

    def try_hold(self, ttl_s: float = LEASE_TTL_S) -> bool:
        """Renew the lease if we hold it, take it if it expired; whether we hold it now."""
        row = LeaderLease
        mine = row.holder == self.holder
        statement = (
            update(row)
            .where(row.name == self.name, or_(mine, row.expires_at < _db_now()))
            .values(
                holder=self.holder,
                expires_at=_db_now() + ttl_s,
                # Kept on renewal, set on takeover (SET reads the row's old values).
                since=case((mine, row.since), else_=_db_now()),
            )
        )
        with self.engine.begin() as conn:
            result = conn.execute(statement)
        return bool(_rowcount(result) == 1)

    def release(self) -> None:
        """Give the lease up now (a clean stop): another instance need not wait it out."""
        row = LeaderLease
        with self.engine.begin() as conn:
            conn.execute(
                update(row)
                .where(row.name == self.name, row.holder == self.holder)
                .values(expires_at=0.0)
            )

    def current_holder(self) -> str | None:
        """Who holds the lease now (None if nobody, or it expired)."""
        row = LeaderLease
        with self.engine.connect() as conn:
            found = conn.execute(
                select(row.holder).where(row.name == self.name, row.expires_at >= _db_now())
            ).scalar()
        return found or None


def publish_address(engine: Engine, holder: str, address: str) -> None:
    """Record where ``holder`` listens (replacing what it said before)."""
    statement = pg_insert(InstanceAddress).values(holder=holder, address=address)
    statement = statement.on_conflict_do_update(
        index_elements=["holder"], set_={"address": statement.excluded.address}
    )
    with engine.begin() as conn:
        conn.execute(statement)


def forget_address(engine: Engine, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(InstanceAddress).where(InstanceAddress.holder == holder))


def leader_address(engine: Engine, name: str = CONTROLLER) -> tuple[str, str] | None:
    """(holder, host:port) of the instance holding lease ``name`` now; None when nobody
    holds it (a takeover is under way) or its holder has not said where it listens."""
    lease, where = LeaderLease, InstanceAddress
    with engine.connect() as conn:
        found = conn.execute(
            select(lease.holder, where.address)
            .join(where, where.holder == lease.holder)
            .where(lease.name == name, lease.expires_at >= _db_now(), where.address != "")
        ).first()
    return (found[0], found[1]) if found is not None else None


def _rowcount(result: Any) -> int:
    # UPDATE returns a CursorResult; Connection.execute's signature types it as Result.
    return int(result.rowcount) if isinstance(result, CursorResult) else -1


class Elector:
    """Keeps trying to hold the lease; says when this instance leads and when it stops.

    ``leading`` changes only here; ``changed`` is set each time it does.
    """

    def __init__(
        self,
        lease: Lease,
        *,
        ttl_s: float = LEASE_TTL_S,
        renew_every_s: float = RENEW_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.monotonic = monotonic
        self.leading = False
        self.changed = asyncio.Event()
        self._renewed_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def role(self) -> str:
        return "leading" if self.leading else "standby"

    @property
    def holder(self) -> str:
        return self.lease.holder

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leader-elector")

    async def stop(self) -> None:
        """Stop trying; give the lease up if held so another instance takes over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        was_leading, self.leading = self.leading, False
        if was_leading:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(self.lease.release), 5)

    async def _run(self) -> None:
        while True:
            await self.attempt()
            await asyncio.sleep(self.renew_every_s)

    async def attempt(self) -> None:
        """One renewal (or takeover) attempt, bounded so that fencing is never late."""
        started = self.monotonic()
        # A leader waits no longer than its fencing deadline; a follower, one lifetime.
        fence_at = self._renewed_at + self.ttl_s / 2
        wait = max(fence_at - started, 0.05) if self.leading else self.ttl_s
        held: bool | None
        try:
            held = await asyncio.wait_for(asyncio.to_thread(self.lease.try_hold, self.ttl_s), wait)
        except TimeoutError:
            held = None
            log.warning("lease renewal took longer than %.1f s", wait)
        except Exception as exc:  # the database is unreachable: not fatal, retried
            held = None
            log.warning("lease renewal failed: %s", type(exc).__name__)
        if held:
            self._renewed_at = started
            self._set(True)
        elif held is False or self.monotonic() >= self._renewed_at + self.ttl_s / 2:
            self._set(False)

    def _set(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        log.info("%s (instance %s)", "leading" if leading else "standby", self.holder)
        self.changed.set()
