"""The reconcile loop: from applied InferenceServices to running model servers.

Every tick (and at once after a change) the controller compares what users applied with
what runs: it makes a new revision when a spec changes in a way that needs new processes
(``InferenceService.revision_key``), fetches the revision's model, starts or stops replicas
as traffic and the autoscaler ask, restarts crashed ones with backoff, splits traffic for
canaries, and writes nothing but revisions to the store — status is derived from this
in-memory picture on demand.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelport.control.autoscaler import Autoscaler
from modelport.control.backends import Backend
from modelport.control.backends.isolation import Isolation
from modelport.control.backends.process import ZygoteBackend
from modelport.control.revisions import RevisionState, ServiceState, Unit
from modelport.control.scaling_policy import ScalingPolicy
from modelport.control.serving_runtimes import BUILTIN_RUNTIMES, ServingRuntime, resolve_runtime
from modelport.control.spec import (
    Component,
    InferenceService,
    SpecError,
    parse_document,
)
from modelport.control.storage import Storage, StorageError
from modelport.control.store import CLUSTER_RUNTIME, ISVC, RUNTIME, Revision, Store
from modelport.control.units import LaunchFailed, UnitLauncher, stop_unit

log = logging.getLogger("modelport.controller")

TICK_S = 1.0
READY_TIMEOUT_S = 300.0
# A replica that crashes before it was ever ready this many times fails its revision.
MAX_START_FAILURES = 3
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
# A replica that crashes after running this long starts the backoff over (as kubelet does).
STABLE_UPTIME_S = 60.0
REPROBE_TIMEOUT_S = 30.0
MAX_STARTS_PER_PASS = 4
INITIAL_SCALE = "autoscaling.knative.dev/initial-scale"
INITIAL_SCALE_OLD = "autoscaling.knative.dev/initialScale"


@dataclass
class ControllerConfig:
    data_dir: Path
    domain: str = "example.com"
    # Knative's scale-to-zero-grace-period; lower in tests.
    scale_to_zero_grace_s: float = 30.0
    ready_timeout_s: float = READY_TIMEOUT_S
    # Bounds on what specs can ask of this machine, whatever their min/maxReplicas say.
    max_replicas_total: int = 256
    max_replicas_per_revision: int = 32
    # One tenant must not take the whole machine's share (replicas across its services).
    max_replicas_per_namespace: int = 32
    # How replicas are confined; None runs them unconfined (tests of the controller alone).
    isolation: Isolation | None = None


class Controller:
    """Reconciles the store's InferenceServices into processes; the gateway routes with it."""

    def __init__(
        self,
        store: Store,
        storage: Storage,
        config: ControllerConfig,
        backend: Backend | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.config = config
        self.backend: Backend = backend or ZygoteBackend()
        self.launcher = UnitLauncher(
            self.backend, config.data_dir, config.ready_timeout_s, config.isolation
        )
        self.services: dict[tuple[str, str], ServiceState] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._runtimes: list[ServingRuntime] = list(BUILTIN_RUNTIMES)
        self._runtimes_stamp: object = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.backend.open()
        await self.reconcile()
        self._task = asyncio.create_task(self._loop(), name="controller")

    async def stop(self) -> None:
        """Stop every replica (the next start re-creates them from the store)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        for task in list(self._tasks):
            task.cancel()
        stops = [
            r.stop()
            for svc in self.services.values()
            for rev in svc.revisions.values()
            for u in rev.units
            for r in u.replicas
        ]
        await asyncio.gather(*stops, return_exceptions=True)
        await self.backend.close()

    def wake(self) -> None:
        """Reconcile now instead of at the next tick (after apply/delete)."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:  # one bad service must not stop the controller
                log.exception("reconcile failed")

    # ---- routing (used by the gateway) --------------------------------------------------

    def lookup(self, namespace: str, name: str) -> ServiceState | None:
        return self.services.get((namespace, name))

    async def activate(self, revision: RevisionState, timeout: float) -> Unit | None:
        """Wait for a ready unit of ``revision``, scaling it from zero if needed (activator)."""
        deadline = time.monotonic() + timeout
        while True:
            unit = revision.pick()
            if unit is not None:
                return unit
            if revision.state == "failed" or self._stopping:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            revision.ready_event.clear()
            self.wake()
            try:
                await asyncio.wait_for(revision.ready_event.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass

    # ---- reconcile ----------------------------------------------------------------------

    async def reconcile(self) -> None:
        # Generations only, off the event loop; documents are read just for what changed.
        versions = await asyncio.to_thread(self.store.versions, ISVC)
        runtimes = await self._current_runtimes()
        for key, (generation, created_at) in versions.items():
            svc = self.services.get(key)
            if svc is not None and svc.created_at and svc.created_at != created_at:
                # Deleted and applied again between two passes: a new service, not an update.
                await self._remove(self.services.pop(key))
                svc = None
            if svc is None:
                svc = self.services[key] = ServiceState(*key)
            svc.created_at = created_at
            if svc.generation != generation:
                row = await asyncio.to_thread(self.store.get, ISVC, *key)
                if row is None:  # deleted meanwhile; the next pass removes it
                    continue
                svc.generation = row.generation
                try:
                    svc.isvc = parse_document(row.document, row.namespace)
                    svc.key = svc.isvc.revision_key()
                    svc.error = ""
                except SpecError as exc:
                    svc.isvc = None
                    svc.error = str(exc)
            if svc.isvc is not None:
                await self._reconcile_service(svc, runtimes)
            svc.observed_generation = svc.generation  # its revision or its error is known now
        for key in [k for k in self.services if k not in versions]:
            await self._remove(self.services.pop(key))

    async def _current_runtimes(self) -> list[ServingRuntime]:
        """User runtimes (parsed again only when one changed) before the built-in ones."""
        stamp = await asyncio.to_thread(
            lambda: (self.store.versions(RUNTIME), self.store.versions(CLUSTER_RUNTIME))
        )
        if stamp != self._runtimes_stamp:
            self._runtimes = await asyncio.to_thread(self.runtimes)
            self._runtimes_stamp = stamp
        return self._runtimes

    def runtimes(self) -> list[ServingRuntime]:
        """Every runtime a service may use: applied ones first, then the built-in ones."""
        found: list[ServingRuntime] = []
        for kind in (RUNTIME, CLUSTER_RUNTIME):
            for row in self.store.list(kind):
                try:
                    runtime = parse_document(row.document, row.namespace or "default")
                except SpecError:
                    continue
                if isinstance(runtime, ServingRuntime):
                    found.append(runtime)
        return found + list(BUILTIN_RUNTIMES)

    async def _reconcile_service(self, svc: ServiceState, runtimes: list[ServingRuntime]) -> None:
        isvc = svc.isvc
        assert isvc is not None
        try:
            formats = self._server_formats(isvc, runtimes)
        except SpecError as exc:
            svc.error = str(exc)
            return
        try:
            policy = self._policy(isvc.predictor, isvc)
        except ValueError as exc:
            svc.error = f"metadata.annotations: {exc}"
            return
        svc.error = ""
        self._load_revisions(svc)
        key = svc.key
        live = [r for r in svc.revisions.values() if not r.row.retired]
        latest = max(live, key=lambda r: r.row.number, default=None)
        if latest is None or latest.row.key != key:
            baseline = self._rolled_out(svc)
            row = await asyncio.to_thread(
                self.store.add_revision,
                svc.namespace,
                svc.name,
                key,
                isvc.document,
                baseline.row.number if baseline else 0,
            )
            latest = self._track(svc, row, isvc)
            log.info("%s/%s: new revision %s", svc.namespace, svc.name, latest.name)
        for rev in svc.revisions.values():
            # Live changes of scaling fields apply to every revision without a new one.
            rev.autoscaler.set_policy(policy)
        self._route(svc, latest, isvc)
        for rev in list(svc.revisions.values()):
            await self._scale(svc, rev, formats, latest=rev is latest)
        # Revisions out of the traffic split and without replicas are finished.
        routed = {n for n, _ in svc.traffic}
        for rev in list(svc.revisions.values()):
            if rev.row.number not in routed and rev is not latest and not rev.units:
                if not rev.row.retired:
                    rev.row.retired = 1
                    await asyncio.to_thread(self.store.update_revision, rev.row.id, retired=1)

    def _server_formats(
        self, isvc: InferenceService, runtimes: list[ServingRuntime]
    ) -> tuple[ServingRuntime, ServingRuntime | None]:
        predictor = resolve_runtime(isvc.namespace, isvc.predictor, runtimes)
        transformer = None
        if isvc.transformer is not None:
            transformer = resolve_runtime(
                isvc.namespace, isvc.transformer, runtimes, path="spec.transformer"
            )
        return predictor, transformer

    def _load_revisions(self, svc: ServiceState) -> None:
        """Pick up revisions from the store after a restart of the platform."""
        if svc.revisions:
            return
        for row in self.store.revisions(svc.namespace, svc.name):
            if row.retired and not row.promoted:
                continue  # promoted ones stay known: canaryTrafficPercent can route back
            try:
                isvc = parse_document(row.document, svc.namespace)
            except SpecError:
                continue
            self._track(svc, row, isvc)

    def _track(self, svc: ServiceState, row: Revision, isvc: InferenceService) -> RevisionState:
        try:
            policy = self._policy(isvc.predictor, isvc)
        except ValueError:
            policy = ScalingPolicy()  # the service's current spec decides; see reconcile
        rev = RevisionState(row, isvc, Autoscaler(policy))
        svc.revisions[row.number] = rev
        return rev

    def _policy(self, component: Component, isvc: InferenceService) -> ScalingPolicy:
        """The autoscaling policy; cpu/memory metrics (KServe's HPA class) scale on
        concurrency here, which ``apply`` reports."""
        metric = component.scale_metric if component.scale_metric == "rps" else "concurrency"
        policy = ScalingPolicy.from_spec(
            metric,
            component.scale_target,
            component.container_concurrency,
            component.min_replicas,
            component.max_replicas,
            isvc.annotations,
        )
        policy.scale_to_zero_grace_s = self.config.scale_to_zero_grace_s
        return policy

    def _rolled_out(self, svc: ServiceState) -> RevisionState | None:
        """The revision that carries all traffic when no canary runs: the newest promoted."""
        promoted = [r for r in svc.revisions.values() if r.row.state == "ready" and r.row.promoted]
        return max(promoted, key=lambda r: r.row.number, default=None)

    def _route(self, svc: ServiceState, latest: RevisionState, isvc: InferenceService) -> None:
        """Apply KServe's rollout rules (ServiceState.desired_traffic); a ready latest
        revision that takes all the traffic is rolled out (promoted)."""
        svc.traffic = svc.desired_traffic(latest, isvc.predictor.canary_traffic_percent)
        rolled_out = latest.row.state == "ready" and svc.traffic == [(latest.row.number, 100)]
        if rolled_out and not latest.row.promoted:
            latest.row.promoted = 1
            self.store.update_revision(latest.row.id, promoted=1)
        for number, _ in svc.traffic:
            routed = svc.revisions[number]
            if routed.row.retired:  # rolled back to (canaryTrafficPercent: 0)
                routed.row.retired = 0
                self.store.update_revision(routed.row.id, retired=0)

    # ---- replicas -----------------------------------------------------------------------

    async def _scale(
        self,
        svc: ServiceState,
        rev: RevisionState,
        formats: tuple[ServingRuntime, ServingRuntime | None],
        *,
        latest: bool,
    ) -> None:
        now = time.monotonic()
        self._reap(svc, rev, now)
        percent = next((p for n, p in svc.traffic if n == rev.row.number), None)
        current = len(rev.units) + rev.starting
        if rev.row.state == "pending" and _initial_scale(rev.isvc) == 0 and not rev.inflight:
            # Knative's initial-scale 0 (with min-scale 0): the revision is ready without a
            # replica once its model is in place; the first request starts one.
            if await self._ensure_fetched(svc, rev):
                self._set_state(rev, "ready", "")
                self.wake()
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
                want = max(want, _initial_scale(rev.isvc))
            elif rev.inflight:
                want = max(want, 1)  # a request waits at the activator
        want = min(want, self.config.max_replicas_per_revision)
        if want > current and now >= rev.backoff_until:
            if not await self._ensure_fetched(svc, rev):
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
                self._background(stop_unit(unit))

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
                    self._background(self._reprobe(svc, rev, unit))
                continue
            rev.units.remove(unit)
            rev.slots.discard(unit.slot)
            self._background(stop_unit(unit))
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
        self.wake()

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

    async def _ensure_fetched(self, svc: ServiceState, rev: RevisionState) -> bool:
        if rev.predictor_path is not None:
            return True
        if rev.fetching:
            return False
        rev.fetching = True
        self._background(self._fetch(svc, rev))
        return False

    async def _fetch(self, svc: ServiceState, rev: RevisionState) -> None:
        uris = [rev.isvc.predictor.storage_uri]
        if rev.isvc.transformer is not None:
            uris.append(rev.isvc.transformer.storage_uri)
        try:
            paths = []
            for uri in uris:
                assert uri is not None
                # Each namespace has its own part of the cache and its own volumes.
                fetched = await asyncio.to_thread(
                    self.storage.fetch, uri, _progress(rev, uri), namespace=svc.namespace
                )
                paths.append(fetched)
            if self.config.isolation is not None:
                readable = self.config.isolation.readable
                paths = [await asyncio.to_thread(readable, svc.namespace, p) for p in paths]
            rev.predictor_path = paths[0]
            rev.transformer_path = paths[1] if len(paths) > 1 else None
            rev.message = ""
        except StorageError as exc:
            if rev.row.state == "pending":
                self._set_state(rev, "failed", str(exc))
            else:
                # A revision that served before fails no more for an outage: retry later.
                rev.message = str(exc)
                self._failed_start(svc, rev, time.monotonic(), counted=False)
        finally:
            rev.fetching = False
            self.wake()

    def _spawn(
        self,
        svc: ServiceState,
        rev: RevisionState,
        formats: tuple[ServingRuntime, ServingRuntime | None],
    ) -> None:
        rev.starting += 1
        self._background(self._start_unit(svc, rev, formats, rev.take_slot()))

    async def _start_unit(
        self,
        svc: ServiceState,
        rev: RevisionState,
        formats: tuple[ServingRuntime, ServingRuntime | None],
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
            self.wake()
            return
        finally:
            rev.starting -= 1
        if self._stopping or rev.row.retired:
            rev.slots.discard(slot)
            await stop_unit(unit)
            return
        unit.ready_at = time.monotonic()
        rev.units.append(unit)
        rev.message = ""
        if rev.row.state != "ready":
            self._set_state(rev, "ready", "")
        rev.ready_event.set()
        self.wake()

    def _set_state(self, rev: RevisionState, state: str, message: str) -> None:
        rev.changed_at = time.time()
        rev.row.state = state
        rev.row.message = message[:2000]
        rev.message = message
        self.store.update_revision(rev.row.id, state=state, message=message[:2000])
        if state == "failed":
            rev.ready_event.set()  # wake the activator's waiters: they get a 503

    async def _remove(self, svc: ServiceState) -> None:
        stops = []
        for rev in svc.revisions.values():
            rev.row.retired = 1
            stops += [stop_unit(unit) for unit in rev.units]
            rev.units.clear()
            rev.ready_event.set()
        svc.traffic = []
        logs = self.config.data_dir / "logs" / svc.namespace / svc.name

        async def finish() -> None:
            await asyncio.gather(*stops, return_exceptions=True)
            # Gone with the service, as a pod's logs go with the pod (unless it was applied
            # again meanwhile and writes there already).
            if (svc.namespace, svc.name) not in self.services:
                await asyncio.to_thread(shutil.rmtree, logs, True)
                run = self.config.data_dir / "run" / svc.namespace / svc.name
                await asyncio.to_thread(shutil.rmtree, run, True)

        self._background(finish())

    def _background(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _progress(rev: RevisionState, uri: str) -> Callable[[int, int | None], None]:
    """Show a download's progress in the revision's status message (``describe``)."""

    def show(done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}" + (f" of {total / 1e6:.1f}" if total else "")
        rev.message = f"downloading {uri}: {size} MB"

    return show


def _initial_scale(isvc: InferenceService) -> int:
    """autoscaling.knative.dev/initial-scale; 0 counts only when minReplicas is 0 too."""
    raw = isvc.annotations.get(INITIAL_SCALE) or isvc.annotations.get(INITIAL_SCALE_OLD)
    try:
        value = int(raw) if raw is not None else 1
    except ValueError:
        return 1
    return 0 if value == 0 and isvc.predictor.min_replicas == 0 else max(value, 1)
