"""A revision's replicas: how many it wants, starting and stopping them, replacing the ones
that crash or stop answering, with backoff, and within the platform's replica quotas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelport.control.fetching import ModelFetcher
from modelport.control.revisions import RevisionState, ServiceState, Unit
from modelport.control.rollout import initial_scale
from modelport.control.schedule import Background, ServiceKey
from modelport.control.serving_runtimes import ServingRuntime
from modelport.control.storage import Storage
from modelport.control.store import Store
from modelport.control.units import LaunchFailed, UnitLauncher, stop_unit

if TYPE_CHECKING:
    from modelport.control.controller import ControllerConfig

log = logging.getLogger("modelport.controller")

# A replica that crashes before it was ever ready this many times fails its revision.
MAX_START_FAILURES = 3
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
# A replica that crashes after running this long starts the backoff over (as kubelet does).
STABLE_UPTIME_S = 60.0
REPROBE_TIMEOUT_S = 30.0
MAX_STARTS_PER_PASS = 4

Formats = tuple[ServingRuntime, ServingRuntime | None]


class RevisionScaler:
    """Keeps each revision at the replica count its traffic and autoscaler ask for."""

    def __init__(
        self,
        store: Store,
        storage: Storage,
        config: ControllerConfig,
        launcher: UnitLauncher,
        services: dict[ServiceKey, ServiceState],
        poke: Callable[[ServiceState], None],
    ) -> None:
        self.store = store
        self.config = config
        self.launcher = launcher
        self.services = services
        self._poke = poke
        self.background = Background()
        self.fetcher = ModelFetcher(
            storage, config.isolation, self.background, self.fetch_failed, poke
        )
        self.stopping = False

    async def scale(
        self,
        svc: ServiceState,
        rev: RevisionState,
        formats: Formats,
        *,
        latest: bool,
    ) -> None:
        now = time.monotonic()
        self._reap(svc, rev, now)
        percent = next((p for n, p in svc.traffic if n == rev.row.number), None)
        current = len(rev.units) + rev.starting
        if rev.row.state == "pending" and initial_scale(rev.isvc) == 0 and not rev.inflight:
            # Knative's initial-scale 0 (with min-scale 0): the revision is ready without a
            # replica once its model is in place; the first request starts one.
            if self.fetcher.in_place(svc, rev):
                self._set_state(rev, "ready", "")
                self._poke(svc)
            return
        if rev.row.state == "failed":
            want = 0
        elif percent is None:
            # Out of the split: only a new revision still proving itself keeps a replica.
            want = 1 if latest and rev.row.state == "pending" else 0
        else:
            rev.autoscaler.record(now, rev.observe(now))
            want = rev.autoscaler.desired(now, len(rev.ready_units()))
            if rev.row.state == "pending":
                # A new revision starts its initial scale (1 by default) to prove it works.
                want = max(want, initial_scale(rev.isvc))
            elif rev.inflight:
                want = max(want, 1)  # a request waits at the activator
        want = min(want, self.config.max_replicas_per_revision)
        rev.shortfall = want > current
        if want > current and now >= rev.backoff_until:
            if not self.fetcher.in_place(svc, rev):
                return
            quota = self.config.max_replicas_per_namespace
            tenant_room = quota - self._replica_count(svc.namespace)
            room = min(self.config.max_replicas_total - self._replica_count(), tenant_room)
            if room <= 0 and not rev.units and not rev.starting:
                rev.message = "no replica can start: " + (
                    f"namespace {svc.namespace} is at its quota of {quota} replicas"
                    if tenant_room <= 0
                    else f"the platform runs its limit of {self.config.max_replicas_total}"
                )
            # A bounded number of starts per pass: a huge minReplicas must not fork-bomb.
            for _ in range(max(0, min(want - current, room, MAX_STARTS_PER_PASS))):
                self._spawn(svc, rev, formats)
        elif want < len(rev.units):
            surplus = rev.units[want:]
            del rev.units[want:]
            for unit in surplus:
                rev.slots.discard(unit.slot)
                self.background.run(stop_unit(unit))

    def _replica_count(self, namespace: str | None = None) -> int:
        """Replicas running or starting, on the whole platform or in one namespace."""
        return sum(
            len(r.units) + r.starting
            for (ns, _), svc in self.services.items()
            if namespace is None or ns == namespace
            for r in svc.revisions.values()
        )

    def _reap(self, svc: ServiceState, rev: RevisionState, now: float) -> None:
        """Drop units whose processes exited (backing off before starting again), and
        re-check live ones the gateway found refusing connections."""
        for unit in list(rev.units):
            dead = [r for r in unit.replicas if r.returncode is not None]
            if not dead:
                if not unit.entry.ready and not unit.probing:
                    unit.probing = True
                    self.background.run(self._reprobe(svc, rev, unit))
                continue
            rev.units.remove(unit)
            rev.slots.discard(unit.slot)
            self.background.run(stop_unit(unit))
            lines = [line for line in dead[0].last_lines(3) if line.strip()]
            rev.message = f"replica exited with code {dead[0].returncode}" + (
                f": {lines[-1].strip()}" if lines else ""
            )
            if unit.ready_at and now - unit.ready_at >= STABLE_UPTIME_S:
                rev.failures = 0  # it ran fine for a while: start the backoff over
            self._failed_start(svc, rev, now, counted=not unit.ready_at)

    async def _reprobe(self, svc: ServiceState, rev: RevisionState, unit: Unit) -> None:
        """A replica that refused a connection is usually a worker being respawned by its
        supervisor: ready again within a second or two. If not, replace it."""
        ok = all(await asyncio.gather(*(r.wait_ready(REPROBE_TIMEOUT_S) for r in unit.replicas)))
        unit.probing = False
        if ok:
            rev.ready_event.set()
        elif unit in rev.units:
            rev.units.remove(unit)
            rev.slots.discard(unit.slot)
            rev.message = "replica stopped answering; replaced"
            await stop_unit(unit)
        self._poke(svc)

    def _failed_start(
        self, svc: ServiceState, rev: RevisionState, now: float, *, counted: bool
    ) -> None:
        rev.failures += 1
        delay = min(BACKOFF_BASE_S * 2 ** (rev.failures - 1), BACKOFF_MAX_S)
        rev.backoff_until = now + delay
        log.warning(
            "%s/%s %s: %s (retry in %.0f s)", svc.namespace, svc.name, rev.name, rev.message, delay
        )
        if counted and rev.row.state == "pending" and rev.failures >= MAX_START_FAILURES:
            self._set_state(rev, "failed", rev.message)

    def _spawn(
        self,
        svc: ServiceState,
        rev: RevisionState,
        formats: Formats,
    ) -> None:
        rev.starting += 1
        task = self.background.run(self._start_unit(svc, rev, formats, rev.take_slot()))
        rev.start_tasks.add(task)
        task.add_done_callback(rev.start_tasks.discard)

    async def _start_unit(
        self,
        svc: ServiceState,
        rev: RevisionState,
        formats: Formats,
        slot: int,
    ) -> None:
        try:
            unit = await self.launcher.launch(svc.namespace, svc.name, rev, formats, slot)
        except asyncio.CancelledError:
            rev.slots.discard(slot)
            raise
        except LaunchFailed as exc:
            rev.slots.discard(slot)
            rev.message = str(exc)
            self._failed_start(svc, rev, time.monotonic(), counted=True)
            self._poke(svc)
            return
        finally:
            rev.starting -= 1
        if self.stopping or rev.row.retired:
            rev.slots.discard(slot)
            await stop_unit(unit)
            return
        unit.ready_at = time.monotonic()
        rev.units.append(unit)
        rev.message = ""
        if rev.row.state != "ready":
            self._set_state(rev, "ready", "")
        rev.ready_event.set()
        self._poke(svc)

    def fetch_failed(self, svc: ServiceState, rev: RevisionState, message: str) -> None:
        if rev.row.state == "pending":
            self._set_state(rev, "failed", message)
        else:
            # A revision that served before fails no more for an outage: retry later.
            rev.message = message
            self._failed_start(svc, rev, time.monotonic(), counted=False)

    def _set_state(self, rev: RevisionState, state: str, message: str) -> None:
        rev.changed_at = time.time()
        rev.row.state = state
        rev.row.message = message[:2000]
        rev.message = message
        self.store.update_revision(rev.row.id, state=state, message=message[:2000])
        if state == "failed":
            rev.ready_event.set()  # wake the activator's waiters: they get a 503
