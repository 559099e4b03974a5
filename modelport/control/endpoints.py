"""The leader's ready replicas, published in the shared database for the other instances'
gateways, and those gateways' demand, published back for the leader's autoscaler.

Only the leader runs replicas, and only its controller knows them (in memory). So that a
follower's gateway can route too, the leader writes what the gateway needs into
``serving_endpoints`` whenever it changes: per service, each revision in the traffic split
with its percent, and each ready replica's address and key. The key is as secret as the
replica itself; the database is the platform's own, as are the signing keys in it.

Followers read it again whenever the generation number in ``serving_generation`` moves.
Each follower reports, per revision, the requests it has in flight and how many arrived
(``serving_demand``); the leader mirrors those into the revision's load figures, which is
what the autoscaler samples and what wakes a revision scaled to zero.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, cast, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from modelport.control.controller import Controller
from modelport.control.revisions import RevisionState
from modelport.control.store import Resource

log = logging.getLogger("modelport.controller.endpoints")

PUBLISH_EVERY_S = 0.2
# A follower's demand report older than this (on the database's clock) no longer counts:
# that follower stopped or lost the database.
DEMAND_FRESH_S = 3.0


class _Base(DeclarativeBase):
    """Declarative base of the published endpoint and demand tables."""


class ServingEndpoint(_Base):
    """A revision in a service's traffic split, with one of its ready replicas (or none:
    ``address`` empty, the revision is scaled to zero or still starting)."""

    __tablename__ = "serving_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(253))
    revision: Mapped[int] = mapped_column(Integer)
    percent: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(300), default="")
    key_name: Mapped[str] = mapped_column(String(64), default="")
    key_value: Mapped[str] = mapped_column(String(256), default="")
    timeout_s: Mapped[float] = mapped_column(Float, default=0.0)
    # The unit's explainer (V1 :explain goes there), when the service has one.
    explainer_address: Mapped[str] = mapped_column(String(300), default="")
    explainer_key: Mapped[str] = mapped_column(String(256), default="")


class ServingGeneration(_Base):
    """Bumped by every publication, so followers re-read only on change."""

    __tablename__ = "serving_generation"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    publisher: Mapped[str] = mapped_column(String(128), default="")


class ServingDemand(_Base):
    """A follower's load on one revision: in flight now, and arrivals so far (a counter)."""

    __tablename__ = "serving_demand"

    instance: Mapped[str] = mapped_column(String(128), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    service: Mapped[str] = mapped_column(String(253), primary_key=True)
    # 0: the follower knows no revision of the service yet (the leader picks one).
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    inflight: Mapped[float] = mapped_column(Float, default=0.0)
    arrivals: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[float] = mapped_column(Float, default=0.0)


Row = tuple[str, str, int, int, str, str, str, float, str, str]
DemandKey = tuple[str, str, int]


def create_tables(engine: Engine) -> None:
    _Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(pg_insert(ServingGeneration).values(name="endpoints").on_conflict_do_nothing())


def db_now() -> ColumnElement[float]:
    """The database's clock in epoch seconds (clock_timestamp(): not the transaction's)."""
    return cast(func.extract("epoch", func.clock_timestamp()), Float)


def snapshot(controller: Controller) -> list[Row]:
    """What the gateways need of the controller's picture, in a stable order."""
    rows: list[Row] = []
    for svc in controller.services.values():
        for number, percent in svc.traffic:
            rev = svc.revision(number)
            if rev is None:
                continue
            timeout = float(rev.isvc.predictor.timeout_s or 0.0)
            ready = rev.ready_units()
            if not ready:
                rows.append((svc.namespace, svc.name, number, percent, "", "", "", timeout, "", ""))
            for unit in ready:
                name, value = unit.entry.key_header
                explainer = unit.explainer
                rows.append(
                    (
                        *(svc.namespace, svc.name, number, percent),
                        *(unit.entry.address, name.decode(), value.decode(), timeout),
                        explainer.address if explainer is not None else "",
                        explainer.key_header[1].decode() if explainer is not None else "",
                    )
                )
    rows.sort()
    return rows


LATER_COLUMNS = ("key_value", "timeout_s", "explainer_address", "explainer_key")


def publish(engine: Engine, rows: list[Row], publisher: str) -> None:
    """Replace every published endpoint with ``rows`` in one transaction."""
    columns = ("namespace", "service", "revision", "percent", "address", "key_name")
    with engine.begin() as conn:
        conn.execute(delete(ServingEndpoint))
        if rows:
            values = [dict(zip((*columns, *LATER_COLUMNS), row, strict=True)) for row in rows]
            conn.execute(insert(ServingEndpoint), values)
        conn.execute(
            update(ServingGeneration)
            .where(ServingGeneration.name == "endpoints")
            .values(generation=ServingGeneration.generation + 1, publisher=publisher)
        )


def read_demand(engine: Engine) -> dict[tuple[str, DemandKey], tuple[float, int]]:
    """Fresh demand reports: (instance, (namespace, service, revision)) → (inflight, arrivals)."""
    d = ServingDemand
    with engine.connect() as conn:
        found = conn.execute(
            select(d.instance, d.namespace, d.service, d.revision, d.inflight, d.arrivals).where(
                d.reported_at >= db_now() - DEMAND_FRESH_S
            )
        ).all()
    return {(i, (ns, s, r)): (inflight, arrivals) for i, ns, s, r, inflight, arrivals in found}


def store_stamp(engine: Engine) -> tuple[int, float]:
    """How many objects are applied and when the newest change was: moves on every apply
    and delete."""
    with engine.connect() as conn:
        count, newest = conn.execute(
            select(func.count(Resource.id), func.max(Resource.updated_at))
        ).one()
    return int(count), float(newest or 0.0)


@dataclass
class _Held:
    """Requests the leader counts on a revision on followers' behalf."""

    revision: RevisionState
    inflight: int = 0


class Publisher:
    """On the leader: publishes the controller's ready replicas when they change, and
    mirrors the followers' demand into the revisions' load figures."""

    def __init__(self, engine: Engine, controller: Callable[[], Controller], holder: str):
        self.engine = engine
        self.controller = controller
        self.holder = holder
        self._published: list[Row] | None = None
        self._held: dict[DemandKey, _Held] = {}
        self._arrivals_seen: dict[tuple[str, DemandKey], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._store_stamp: tuple[int, float] | None = None

    def start(self) -> None:
        self._published = None  # a new leader always publishes: the old rows are stale
        self._task = asyncio.create_task(self._run(), name="endpoint-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
        self._release_all()

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception as exc:  # the database may be away for a moment: retried
                log.warning("publishing endpoints failed: %s", type(exc).__name__)
            await asyncio.sleep(PUBLISH_EVERY_S)

    async def step(self) -> None:
        """Publish if the picture changed; mirror the followers' demand; read the store
        now if another instance wrote to it."""
        rows = snapshot(self.controller())
        if rows != self._published:
            await asyncio.to_thread(publish, self.engine, rows, self.holder)
            self._published = rows
        demand = await asyncio.to_thread(read_demand, self.engine)
        self.mirror(demand)
        # An apply or delete through a follower wakes only the follower's idle controller;
        # the leader would see it at its next full read (10 s). A count and the newest
        # change of the applied objects tell it sooner, for one small query.
        stamp = await asyncio.to_thread(store_stamp, self.engine)
        if self._store_stamp is not None and stamp != self._store_stamp:
            self.controller().wake()
        self._store_stamp = stamp

    def mirror(self, demand: dict[tuple[str, DemandKey], tuple[float, int]]) -> None:
        """Count followers' in-flight requests on the revisions they are for, as if they
        had come through this gateway, so that the autoscaler sees them (and a revision
        scaled to zero starts for them); add their arrivals for the rps metric."""
        controller = self.controller()
        totals: dict[DemandKey, float] = {}
        for (instance, key), (inflight, arrivals) in demand.items():
            totals[key] = totals.get(key, 0.0) + inflight
            rev = self._revision(controller, key)
            seen = self._arrivals_seen.get((instance, key))
            self._arrivals_seen[(instance, key)] = arrivals
            if rev is not None and seen is not None and arrivals > seen:
                rev.arrivals += arrivals - seen
        for key in set(self._held) | set(totals):
            self._hold(controller, key, math.ceil(totals.get(key, 0.0)))

    def _revision(self, controller: Controller, key: DemandKey) -> RevisionState | None:
        namespace, service, number = key
        svc = controller.lookup(namespace, service)
        if svc is None:
            controller.wake()  # applied through another instance: read the store now
            return None
        if number == 0:
            number = svc.traffic[0][0] if svc.traffic else max(svc.revisions, default=0)
        return svc.revision(number)

    def _hold(self, controller: Controller, key: DemandKey, want: int) -> None:
        held = self._held.get(key)
        rev = self._revision(controller, key) if want else None
        if held is not None and (rev is None or held.revision is not rev):
            _release(held)  # the revision went away or was replaced
            del self._held[key]
            held = None
        if rev is None:
            return
        if held is None:
            held = self._held[key] = _Held(rev)
        while held.inflight < want:
            rev.begin()
            rev.arrivals -= 1  # begin() counts an arrival; followers report their own
            held.inflight += 1
        while held.inflight > want:
            rev.end()
            held.inflight -= 1
        if want and not rev.ready_units():
            controller.poke(key[0], key[1])  # requests wait on a follower for a replica
        if not held.inflight:
            self._held.pop(key, None)

    def _release_all(self) -> None:
        for held in self._held.values():
            _release(held)
        self._held.clear()
        self._arrivals_seen.clear()


def _release(held: _Held) -> None:
    while held.inflight > 0:
        held.revision.end()
        held.inflight -= 1
