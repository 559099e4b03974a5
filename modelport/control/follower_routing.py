"""The gateway's Router on an instance that does not lead: it routes to the leader's
replicas as the leader published them (``endpoints.py``), and reports its demand so that the
leader's autoscaler counts it and wakes a revision scaled to zero.

Replicas listen where the leader's backend placed them (loopback with the process backend,
so the instances must then share a host; a node's address with Ray) and each requires its
key, which the published row carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from modelport.control.concurrency import SlotUnavailable
from modelport.control.endpoints import (
    ServingDemand,
    ServingEndpoint,
    ServingGeneration,
    db_now,
)
from modelport.control.follower_limits import EndpointLimiter, RevisionSpecs, concurrency_limit
from modelport.control.routing import (
    ATTEMPTS,
    CONFINED,
    DEFAULT_TIMEOUT_S,
    EXPLAIN_PATH,
    _error,
    _Exchange,
    _LoggingTap,
)
from modelport.control.spec.objects import InferenceService
from modelport.control.store import ISVC, Store
from modelport.gateway.connections import BadTarget, UpstreamError
from modelport.gateway.payload_logger import PayloadLogger
from modelport.gateway.proxy import Receive, Scope, Send, Upstream, relay

log = logging.getLogger("modelport.controller.endpoints")

READ_EVERY_S = 0.2
REPORT_EVERY_S = 0.5

Key = tuple[str, str, int]


@dataclass
class PublishedRevision:
    number: int
    percent: int
    timeout_s: float
    endpoints: list[tuple[str, tuple[bytes, bytes]]] = field(default_factory=list)
    # Entry address -> the same unit's explainer and its key.
    explainers: dict[str, tuple[str, tuple[bytes, bytes]]] = field(default_factory=dict)
    _next: int = 0

    def pick(self, refused: set[str]) -> tuple[str, tuple[bytes, bytes]] | None:
        """Round robin over the replicas that have not refused us since the last read."""
        usable = [e for e in self.endpoints if e[0] not in refused]
        if not usable:
            return None
        self._next = (self._next + 1) % len(usable)
        return usable[self._next]


@dataclass
class PublishedService:
    revisions: dict[int, PublishedRevision] = field(default_factory=dict)

    def pick(self) -> PublishedRevision | None:
        """A revision by the traffic split, as ServiceState.pick does on the leader."""
        if len(self.revisions) == 1:  # all traffic, whatever its percent says (0 or 100)
            return next(iter(self.revisions.values()))
        split = [r for r in self.revisions.values() if r.percent > 0]
        if not split:
            return None
        roll = random.random() * 100
        for rev in split:
            roll -= rev.percent
            if roll < 0:
                return rev
        return split[-1]


class EndpointBook:
    """The published endpoints, re-read whenever their generation moves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.generation = -1
        self.services: dict[tuple[str, str], PublishedService] = {}
        # Addresses that refused a connection: skipped until the next publication.
        self.refused: set[str] = set()
        self.changed = asyncio.Event()

    def read(self) -> bool:
        """Re-read if the leader published since; whether it had."""
        with self.engine.connect() as conn:
            generation = conn.execute(
                select(ServingGeneration.generation).where(ServingGeneration.name == "endpoints")
            ).scalar()
            if generation is None or generation == self.generation:
                return False
            rows = conn.execute(select(ServingEndpoint.__table__)).all()
        services: dict[tuple[str, str], PublishedService] = {}
        for row in rows:
            svc = services.setdefault((row.namespace, row.service), PublishedService())
            rev = svc.revisions.setdefault(
                row.revision, PublishedRevision(row.revision, row.percent, row.timeout_s)
            )
            if row.address:
                key = (row.key_name.encode(), row.key_value.encode())
                rev.endpoints.append((row.address, key))
                if row.explainer_address:
                    explainer_key = (row.key_name.encode(), row.explainer_key.encode())
                    rev.explainers[row.address] = (row.explainer_address, explainer_key)
        self.services, self.generation = services, generation
        self.refused = set()
        return True

    async def run(self) -> None:
        while True:
            try:
                if await asyncio.to_thread(self.read):
                    self.changed.set()
                    self.changed = asyncio.Event()
            except Exception as exc:  # the database may be away for a moment: retried
                log.warning("reading published endpoints failed: %s", type(exc).__name__)
            await asyncio.sleep(READ_EVERY_S)


class DemandReport:
    """This gateway's load per revision, reported for the leader's autoscaler."""

    def __init__(self, engine: Engine, instance: str) -> None:
        self.engine = engine
        self.instance = instance
        self.inflight: dict[Key, int] = {}
        self.arrivals: dict[Key, int] = {}
        self._area: dict[Key, float] = {}
        self._since: dict[Key, float] = {}
        self._window = time.monotonic()
        self._said: dict[Key, tuple[float, int]] = {}  # the last report of each revision
        self.nudge = asyncio.Event()

    def begin(self, key: Key) -> None:
        self._account(key)
        self.inflight[key] = self.inflight.get(key, 0) + 1
        self.arrivals[key] = self.arrivals.get(key, 0) + 1

    def end(self, key: Key) -> None:
        self._account(key)
        self.inflight[key] -= 1

    def _account(self, key: Key) -> None:
        now = time.monotonic()
        since = self._since.get(key, now)
        self._area[key] = self._area.get(key, 0.0) + self.inflight.get(key, 0) * (now - since)
        self._since[key] = now

    def take(self) -> list[dict[str, object]]:
        """Rows for the window since the last call: average concurrency (at least what is
        in flight now, as RevisionState.observe counts it) and the arrivals counter."""
        now = time.monotonic()
        elapsed = max(now - self._window, 1e-3)
        self._window = now
        rows = []
        for key in list(self.inflight):
            self._account(key)
            average = max(self._area.pop(key, 0.0) / elapsed, float(self.inflight[key]))
            # Idle since its last report (which said so): nothing to say. Its row goes
            # stale; the arrivals counter carries on, so the leader misses none later.
            if not average and self._said.get(key) == (0.0, self.arrivals[key]):
                continue
            self._said[key] = (average, self.arrivals[key])
            namespace, service, revision = key
            rows.append(
                {
                    "instance": self.instance,
                    "namespace": namespace,
                    "service": service,
                    "revision": revision,
                    "inflight": average,
                    "arrivals": self.arrivals[key],
                }
            )
        return rows

    def write(self, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        statement = pg_insert(ServingDemand).values(
            [{**row, "reported_at": db_now()} for row in rows]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["instance", "namespace", "service", "revision"],
            set_={
                "inflight": statement.excluded.inflight,
                "arrivals": statement.excluded.arrivals,
                "reported_at": statement.excluded.reported_at,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def forget(self) -> None:
        """Withdraw this instance's reports (it leads now, or stops)."""
        with self.engine.begin() as conn:
            conn.execute(delete(ServingDemand).where(ServingDemand.instance == self.instance))

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.nudge.wait(), REPORT_EVERY_S)
            self.nudge.clear()
            try:
                await asyncio.to_thread(self.write, self.take())
            except Exception as exc:  # the database may be away for a moment: retried
                log.warning("reporting demand failed: %s", type(exc).__name__)


class FollowerRouter:
    """The gateway's :class:`~modelport.gateway.app.Router` while another instance leads:
    the leader's router's behaviour (activator wait, containerConcurrency queue, payload
    logger) over the published replicas."""

    def __init__(
        self,
        book: EndpointBook,
        demand: DemandReport,
        store: Store,
        *,
        logger: PayloadLogger | None = None,
        limiter: EndpointLimiter | None = None,
    ) -> None:
        self.book = book
        self.demand = demand
        self.store = store
        self.logger = logger or PayloadLogger()
        self.limiter = limiter or EndpointLimiter()
        self.specs = RevisionSpecs(store)

    async def forward(
        self,
        namespace: str,
        name: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity_headers: list[tuple[bytes, bytes]],
        upstream: Upstream,
    ) -> None:
        svc = self.book.services.get((namespace, name))
        if svc is None and await asyncio.to_thread(self.store.get, ISVC, namespace, name) is None:
            await _error(send, 404, f"InferenceService {name} not found in namespace {namespace}.")
            return
        picked = svc.pick() if svc is not None else None
        key = (namespace, name, picked.number if picked is not None else 0)
        self.demand.begin(key)
        try:
            body = await upstream.read_body(receive)
            timeout = (picked.timeout_s if picked is not None else 0) or DEFAULT_TIMEOUT_S
            deadline = time.monotonic() + timeout
            await self._send(key, scope, body, send, identity_headers, upstream, deadline)
        finally:
            self.demand.end(key)

    async def _send(
        self,
        key: Key,
        scope: Scope,
        body: bytes,
        send: Send,
        identity_headers: list[tuple[bytes, bytes]],
        upstream: Upstream,
        deadline: float,
    ) -> None:
        name = key[1]
        tap: _LoggingTap | None = None
        for _attempt in range(ATTEMPTS):
            endpoint = await self._endpoint(key, deadline)
            if endpoint is None:
                break
            number, address, replica_key = endpoint
            revision = (key[0], name, number)
            spec = await self.specs.get(revision)
            if tap is None:
                tap = self._tap(revision, spec, scope)
                if tap is not None:
                    tap.request(body)
            limit = concurrency_limit(spec)
            if limit:
                try:
                    address = await self.limiter.acquire(
                        revision, limit, self._ready(revision), deadline, self.demand.nudge.set
                    )
                except SlotUnavailable as exc:
                    await _error(send, 503, f"InferenceService {name}: {exc}.", retry=True)
                    return
                replica_key = self._key_of(revision, address) or replica_key
            target, target_key = self._explainer(revision, address, scope) or (address, replica_key)
            try:
                response = await upstream.open(
                    scope, body, [*identity_headers, target_key], f"http://{target}"
                )
            except BadTarget as exc:
                await _error(send, 400, f"{exc}.")
                return
            except ConnectionRefusedError:
                self.book.refused.add(address)  # gone; the leader will publish anew
                self.demand.nudge.set()
                continue
            except (OSError, UpstreamError) as exc:
                await _error(send, 502, f"Model server failed: {exc}.")
                return
            finally:
                if limit:
                    self.limiter.release(revision, address, self._ready(revision)())
            await relay(response, send, tap, CONFINED)
            return
        why = "no replica became ready in time"
        await _error(send, 503, f"InferenceService {name} is not ready: {why}", retry=True)

    def _tap(
        self, revision: Key, spec: InferenceService | None, scope: Scope
    ) -> _LoggingTap | None:
        """The payload logger's view of this exchange, as the leader's router makes it."""
        logger_spec = spec.predictor.logger if spec is not None else None
        if logger_spec is None or not logger_spec.url:
            return None
        namespace, name, number = revision
        headers = {k.lower(): v for k, v in scope["headers"]}
        exchange = _Exchange(
            request_id=headers.get(b"ce-id", b"").decode("latin-1") or str(uuid.uuid4()),
            content_type=headers.get(b"content-type", b"").decode("latin-1"),
            inference_service=name,
            namespace=namespace,
            endpoint=f"{name}-predictor-{number:05d}",  # RevisionState.name
        )
        return _LoggingTap(self.logger, logger_spec.mode, logger_spec.url, exchange)

    def _revision(self, revision: Key) -> PublishedRevision | None:
        svc = self.book.services.get((revision[0], revision[1]))
        return svc.revisions.get(revision[2]) if svc is not None else None

    def _ready(self, revision: Key) -> Callable[[], list[str]]:
        def ready() -> list[str]:
            rev = self._revision(revision)
            if rev is None:
                return []
            return [a for a, _ in rev.endpoints if a not in self.book.refused]

        return ready

    def _explainer(
        self, revision: Key, address: str, scope: Scope
    ) -> tuple[str, tuple[bytes, bytes]] | None:
        """The unit's explainer for a V1 :explain call, as the leader's router sends it."""
        rev = self._revision(revision)
        if rev is None or not EXPLAIN_PATH.fullmatch(scope["path"]):
            return None
        return rev.explainers.get(address)

    def _key_of(self, revision: Key, address: str) -> tuple[bytes, bytes] | None:
        rev = self._revision(revision)
        found = [k for a, k in rev.endpoints if a == address] if rev is not None else []
        return found[0] if found else None

    async def _endpoint(
        self, key: Key, deadline: float
    ) -> tuple[int, str, tuple[bytes, bytes]] | None:
        """A ready replica of the revision (its number, address and key), waiting (as the
        activator does) while the leader starts one for the demand this request adds."""
        namespace, name, number = key
        while True:
            svc = self.book.services.get((namespace, name))
            rev = None
            if svc is not None:
                rev = svc.revisions.get(number) if number else svc.pick()
            found = rev.pick(self.book.refused) if rev is not None else None
            if rev is not None and found is not None:
                return rev.number, *found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.demand.nudge.set()
            changed = self.book.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 1.0))
