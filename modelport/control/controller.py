"""The reconcile loop: from applied InferenceServices to running model servers.

On change (an apply, a delete, a request for a service scaled to zero) and every tick for
the services that need it (``schedule``), the controller compares what users applied with
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
from dataclasses import dataclass
from pathlib import Path

from modelport.control.backends import Backend
from modelport.control.backends.isolation import Isolation
from modelport.control.backends.process import ZygoteBackend
from modelport.control.replicas import Formats, RevisionScaler
from modelport.control.revisions import RevisionState, ServiceState, Unit
from modelport.control.rollout import Rollout, rolled_out
from modelport.control.schedule import ReconcileSchedule, ServiceKey, needs_tick
from modelport.control.serving_runtimes import BUILTIN_RUNTIMES, ServingRuntime, resolve_runtime
from modelport.control.spec import InferenceService, SpecError, parse_document, parse_service
from modelport.control.storage import Storage
from modelport.control.store import CLUSTER_RUNTIME, ISVC, RUNTIME, Store
from modelport.control.trained_models import TrainedModels
from modelport.control.units import UnitLauncher, stop_unit

log = logging.getLogger("modelport.controller")

TICK_S = 1.0
# The store is read on every apply/delete made here; this often for writes made elsewhere.
RESYNC_S = 10.0
READY_TIMEOUT_S = 300.0


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
        self.rollout = Rollout(store, config.scale_to_zero_grace_s)
        self.schedule = ReconcileSchedule(RESYNC_S)
        self.services: dict[ServiceKey, ServiceState] = {}
        self.scaler = RevisionScaler(
            store, storage, config, self.launcher, self.services, self._poke
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._runtimes: list[ServingRuntime] = list(BUILTIN_RUNTIMES)
        self._runtimes_stamp: object = None
        self.trained_models = TrainedModels(self)

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.backend.open()
        await self.reconcile()
        self._task = asyncio.create_task(self._loop(), name="controller")
        self.trained_models.start()

    async def stop(self) -> None:
        """Stop every replica (the next start re-creates them from the store), unless the
        backend keeps them for the next start to adopt."""
        self._stopping = self.scaler.stopping = True
        await self.trained_models.stop()
        if self._task is not None:
            self._task.cancel()
        self.scaler.background.cancel()
        stops = [
            r.stop()
            for svc in self.services.values()
            for rev in svc.revisions.values()
            for u in rev.units
            for r in u.replicas
            if not getattr(self.backend, "keeps_replicas", False)
        ]
        await asyncio.gather(*stops, return_exceptions=True)
        await self.backend.close()

    def wake(self) -> None:
        """Read the store and reconcile now instead of at the next tick (after apply/delete)."""
        self.schedule.request_sync()

    def poke(self, namespace: str, name: str) -> None:
        """Look at one service now (a replica refused a connection, a request waits)."""
        self.schedule.poke((namespace, name))

    def _poke(self, svc: ServiceState) -> None:
        self.poke(svc.namespace, svc.name)

    async def _loop(self) -> None:
        wakeup = self.schedule.wakeup
        while not self._stopping:
            try:
                await asyncio.wait_for(wakeup.wait(), TICK_S)
            except TimeoutError:
                pass
            wakeup.clear()
            try:
                await self.step()
            except Exception:  # one bad service must not stop the controller
                log.exception("reconcile failed")

    # ---- routing (used by the gateway) --------------------------------------------------

    def lookup(self, namespace: str, name: str) -> ServiceState | None:
        return self.services.get((namespace, name))

    async def activate(self, revision: RevisionState, timeout: float) -> Unit | None:
        """Wait for a ready unit of ``revision``, scaling it from zero if needed (activator)."""
        deadline = time.monotonic() + timeout
        key = (revision.row.namespace, revision.row.service)
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
            self.schedule.poke(key)
            try:
                await asyncio.wait_for(revision.ready_event.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass

    # ---- reconcile ----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Read the store and look at every service now."""
        self.schedule.request_sync()
        await self.step(everything=True)

    async def step(self, *, everything: bool = False) -> set[ServiceKey]:
        """One pass of the loop: the store read if due, then the services due (or all);
        answers the services it looked at."""
        due = self.schedule.take_due()
        if self.schedule.sync_due(time.monotonic()):
            due |= await self._sync()
            if await self._runtimes_changed():  # every service may resolve differently now
                due = set(self.services)
        if everything:
            due = set(self.services)
        for key in due:
            svc = self.services.get(key)
            if svc is None:
                self.schedule.forget(key)
                continue
            if svc.isvc is not None:
                await self._reconcile_service(svc, self._runtimes)
            svc.observed_generation = svc.generation  # its revision or its error is known now
            self.schedule.settle(key, svc.isvc is not None and needs_tick(svc))
        return due

    async def _sync(self) -> set[ServiceKey]:
        """Bring the picture in step with the store: the services that changed."""
        # Generations only, off the event loop; documents are read just for what changed.
        versions = await asyncio.to_thread(self.store.versions, ISVC)
        changed: set[ServiceKey] = set()
        for key, (generation, created_at) in versions.items():
            svc = self.services.get(key)
            if svc is not None and svc.created_at and svc.created_at != created_at:
                # Deleted and applied again between two reads: a new service, not an update.
                await self._remove(self.services.pop(key))
                svc = None
            if svc is None:
                svc = self.services[key] = ServiceState(*key)
                changed.add(key)
            svc.created_at = created_at
            if svc.generation != generation:
                changed.add(key)
                await self._read_spec(svc)
        for key in [k for k in self.services if k not in versions]:
            await self._remove(self.services.pop(key))
            self.schedule.forget(key)
        return changed

    async def _read_spec(self, svc: ServiceState) -> None:
        row = await asyncio.to_thread(self.store.get, ISVC, svc.namespace, svc.name)
        if row is None:  # deleted meanwhile; the next read removes it
            return
        svc.generation = row.generation
        try:
            svc.isvc = parse_service(row.document, row.namespace)
            svc.key = svc.isvc.revision_key()
            svc.error = ""
        except SpecError as exc:
            svc.isvc = None
            svc.error = str(exc)

    async def _runtimes_changed(self) -> bool:
        """Read the user runtimes again (they go before the built-in ones) if one changed."""
        stamp = await asyncio.to_thread(
            lambda: (self.store.versions(RUNTIME), self.store.versions(CLUSTER_RUNTIME))
        )
        if stamp == self._runtimes_stamp:
            return False
        self._runtimes = await asyncio.to_thread(self.runtimes)
        self._runtimes_stamp = stamp
        return True

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
            policy = self.rollout.policy(isvc.predictor, isvc)
        except ValueError as exc:
            svc.error = f"metadata.annotations: {exc}"
            return
        svc.error = ""
        self.rollout.load(svc)
        latest = await self._latest_revision(svc, isvc)
        for rev in svc.revisions.values():
            # Live changes of scaling fields apply to every revision without a new one.
            rev.autoscaler.set_policy(policy)
        self.rollout.route(svc, latest, isvc)
        for rev in list(svc.revisions.values()):
            await self.scaler.scale(svc, rev, formats, latest=rev is latest)
        # Revisions out of the traffic split and without replicas are finished.
        routed = {n for n, _ in svc.traffic}
        for rev in list(svc.revisions.values()):
            if rev.row.number not in routed and rev is not latest and not rev.units:
                rev.cancel_starts()
                if not rev.row.retired:
                    rev.row.retired = 1
                    await asyncio.to_thread(self.store.update_revision, rev.row.id, retired=1)
                if not rev.starting and not rev.fetching:
                    rev.release_models()  # nothing can start from them any more

    async def _latest_revision(self, svc: ServiceState, isvc: InferenceService) -> RevisionState:
        """The newest live revision, made first if the spec changed what runs."""
        live = [r for r in svc.revisions.values() if not r.row.retired]
        latest = max(live, key=lambda r: r.row.number, default=None)
        if latest is not None and latest.row.key == svc.key:
            return latest
        baseline = rolled_out(svc)
        row = await asyncio.to_thread(
            self.store.add_revision,
            svc.namespace,
            svc.name,
            svc.key,
            isvc.document,
            baseline.row.number if baseline else 0,
        )
        latest = self.rollout.track(svc, row, isvc)
        log.info("%s/%s: new revision %s", svc.namespace, svc.name, latest.name)
        return latest

    def _server_formats(self, isvc: InferenceService, runtimes: list[ServingRuntime]) -> Formats:
        predictor = resolve_runtime(isvc.namespace, isvc.predictor, runtimes)
        transformer = None
        if isvc.transformer is not None:
            transformer = resolve_runtime(
                isvc.namespace, isvc.transformer, runtimes, path="spec.transformer"
            )
        return predictor, transformer

    async def _remove(self, svc: ServiceState) -> None:
        stops = []
        for rev in svc.revisions.values():
            rev.row.retired = 1
            rev.cancel_starts()
            stops += [stop_unit(unit) for unit in rev.units]
            rev.units.clear()
            rev.ready_event.set()
        svc.traffic = []
        logs = self.config.data_dir / "logs" / svc.namespace / svc.name

        async def finish() -> None:
            await asyncio.gather(*stops, return_exceptions=True)
            for rev in svc.revisions.values():
                rev.release_models()  # its replicas are gone: the cache may prune them
            # Gone with the service, as a pod's logs go with the pod (unless it was applied
            # again meanwhile and writes there already).
            if (svc.namespace, svc.name) not in self.services:
                await asyncio.to_thread(shutil.rmtree, logs, True)
                run = self.config.data_dir / "run" / svc.namespace / svc.name
                await asyncio.to_thread(shutil.rmtree, run, True)

        self.scaler.background.run(finish())
