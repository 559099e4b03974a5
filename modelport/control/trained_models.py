"""TrainedModels: models loaded into a running InferenceService's model servers.

KServe's TrainedModel controller (pkg/controller/v1alpha1/trainedmodel/controller.go) writes
the model into its parent's model config, and the agent beside each predictor pod pulls it
into the server's model folder and calls the model repository extension's
``/v2/repository/models/NAME/load`` (``unload`` when it is deleted). Here the platform plays
the agent: it fetches the model once (the namespace's part of the cache), copies it into each
ready predictor replica's private folder (the one place a confined replica may read besides
its own model), and loads it there with ``{"parameters": {"path": ...}}``. Replicas that
start later, restarted ones and those of a new revision get it on the next look (every
second, or at once on an apply); deleting the TrainedModel unloads it everywhere.

Readiness and its reasons follow KServe's conditions (trained_model_status.go): the parent
must exist and be ready (``InferenceServiceReady``, reason ``InferenceServiceNotReady``), and
the memory of its TrainedModels must fit its predictor's ``resources.limits.memory``
(``MemoryResourceAvailable``, IsMemoryResourceAvailable) when it sets one. modelport also
says when the framework is not the one the parent's model server reads, or when the name is
the parent's own model's: KServe leaves both to fail in the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from modelport.control.backends.process import Replica
from modelport.control.placement import PlacementError, place_copy, remove_copy
from modelport.control.revisions import RevisionState, ServiceState, Unit
from modelport.control.spec import SpecError, parse_document
from modelport.control.spec.trained_model import TM, TrainedModel
from modelport.control.storage import ModelLease, StorageError
from modelport.control.units import replica_part

if TYPE_CHECKING:
    from modelport.control.controller import Controller

log = logging.getLogger("modelport.trained_models")

TICK_S = 1.0
LOAD_TIMEOUT_S = 120.0  # a large model takes a while to read
# A failed fetch or load is tried again after this long, not on every look.
RETRY_S = 15.0
UNLOAD_TIMEOUT_S = 10.0
FOLDER = "trained-models"
Key = tuple[str, str]


@dataclass
class _Placed:
    """A TrainedModel loaded into one replica: which generation, and the copy it reads
    (under ``private``, the replica's private folder)."""

    replica: Replica
    generation: int
    copy: Path | None = None
    private: Path | None = None

    async def remove_copy(self) -> None:
        if self.copy is not None and self.private is not None:
            await asyncio.to_thread(remove_copy, self.copy, self.private, FOLDER)


@dataclass
class TrainedModelState:
    """What the platform knows of one TrainedModel while it runs (status comes from it)."""

    generation: int
    created_at: float
    tm: TrainedModel | None = None
    invalid: str = ""  # the stored document no longer reads (older rules)
    lease: ModelLease | None = None
    path: Path | None = None
    fetching: bool = False
    fetch_error: str = ""
    loaded: dict[str, _Placed] = field(default_factory=dict)  # by replica key
    load_error: str = ""
    retry_at: float = 0.0  # monotonic time before which a failed fetch or load waits
    attempt: int = 0  # which storage URI a fetch under way is for
    forgotten: bool = False  # deleted: a fetch finishing now lets its model go
    # (condition type, reason, message) of the first thing in the way, None when Ready.
    blocked: tuple[str, str, str] | None = ("Ready", "Pending", "Not looked at yet.")
    parent_protocol: str = "v1"
    changed_at: float = field(default_factory=time.time)

    def block(self, condition: str, reason: str, message: str) -> None:
        if self.blocked != (condition, reason, message):
            self.blocked = (condition, reason, message)
            self.changed_at = time.time()

    def unblock(self) -> None:
        if self.blocked is not None:
            self.blocked = None
            self.changed_at = time.time()


class TrainedModels:
    """Keeps every applied TrainedModel loaded in the ready replicas of its parent."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.states: dict[Key, TrainedModelState] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        controller.store.on_commit(self._on_commit)

    def _on_commit(self) -> None:
        # Called in the committing thread: hand the wake-up to the loop.
        loop = self._task.get_loop() if self._task is not None else None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=LOAD_TIMEOUT_S)
        self._task = asyncio.create_task(self._loop(), name="trained-models")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for state in self.states.values():
            if state.lease is not None:
                state.lease.release()
        if self._client is not None:
            await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:  # the next look tries again
                log.exception("reconciling TrainedModels failed")

    # ---- reconcile -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        store = self.controller.store
        versions = await asyncio.to_thread(store.versions, TM)
        for key in [k for k in self.states if k not in versions]:
            await self._forget(self.states.pop(key))
        for key, (generation, created_at) in versions.items():
            state = self.states.get(key)
            if state is None or state.generation != generation:
                row = await asyncio.to_thread(store.get, TM, *key)
                if row is None:
                    continue
                state = await self._read(state, row.document, key, generation, created_at)
                self.states[key] = state
        for key in sorted(self.states, key=lambda k: (self.states[k].created_at, k)):
            await self._reconcile_one(key, self.states[key])

    async def _read(
        self,
        old: TrainedModelState | None,
        document: dict[str, object],
        key: Key,
        generation: int,
        created_at: float,
    ) -> TrainedModelState:
        """The state for a new generation: the same object when there was one (a fetch
        under way reports into it), its model kept when the storage URI did not change."""
        state = old or TrainedModelState(generation=generation, created_at=created_at)
        previous = state.tm
        state.generation, state.created_at = generation, created_at
        state.tm, state.invalid = None, ""
        try:
            parsed = parse_document(document, key[0])
        except SpecError as exc:
            state.invalid = str(exc)
            parsed = None
        if isinstance(parsed, TrainedModel):
            state.tm = parsed
        if previous is None or state.tm is None or previous.storage_uri != state.tm.storage_uri:
            # Another model: fetched anew (replicas load it as their generation differs).
            if state.lease is not None:
                state.lease.release()
            state.lease, state.path, state.fetch_error = None, None, ""
            state.attempt += 1  # a fetch still under way is for the old URI
        state.load_error, state.retry_at = "", 0.0
        return state

    async def _reconcile_one(self, key: Key, state: TrainedModelState) -> None:
        tm = state.tm
        if tm is None:
            state.block("Ready", "InvalidSpec", state.invalid or "not a TrainedModel")
            await self._unload_all(key, state)
            return
        svc = self.controller.lookup(tm.namespace, tm.inference_service)
        units = _ready_units(svc)
        why = self._refusal(key, tm, svc, units)
        if why is not None:
            state.block(*why)
            await self._unload_all(key, state)
            return
        assert svc is not None and svc.isvc is not None
        state.parent_protocol = svc.isvc.predictor.protocol_version
        if state.path is None:
            self._fetch(state, tm)
            if state.fetch_error:
                state.block("Ready", "ModelFetchFailed", state.fetch_error)
            else:
                state.block("Ready", "Fetching", f"Fetching {tm.storage_uri}.")
            return
        live = {u.predictor.key for _, u in units}
        for gone in [k for k in state.loaded if k not in live]:
            await self._unload(tm.name, state.loaded.pop(gone))
        if time.monotonic() >= state.retry_at:
            state.load_error = ""
            await asyncio.gather(*(self._load_into(state, tm, svc, r, u) for r, u in units))
        if state.load_error:
            state.block("Ready", "ModelLoadFailed", state.load_error)
        elif all(u.predictor.key in state.loaded for _, u in units):
            state.unblock()

    def _refusal(
        self,
        key: Key,
        tm: TrainedModel,
        svc: ServiceState | None,
        units: list[tuple[RevisionState, Unit]],
    ) -> tuple[str, str, str] | None:
        """Why ``tm`` cannot be loaded now, as (condition, reason, message)."""
        parent, namespace = tm.inference_service, tm.namespace
        if svc is None or svc.isvc is None:
            # KServe deletes a TrainedModel whose parent is gone; modelport keeps it and says so.
            return (
                "InferenceServiceReady",
                "InferenceServiceNotFound",
                f'Inference Service "{parent}" is not found in namespace "{namespace}". '
                f'Trained Model "{tm.name}" cannot deploy',
            )
        if self.controller.backend.places_replicas:
            return (
                "Ready",
                "NotSupported",
                "TrainedModels are loaded by the process backend only, not on a cluster",
            )
        if tm.name == parent:
            return (
                "Ready",
                "ModelNameConflict",
                f'"{tm.name}" is the name of the parent\'s own model; give the TrainedModel '
                "another name",
            )
        fmt = svc.isvc.predictor.model_format
        if fmt != tm.framework:
            return (
                "Ready",
                "FrameworkMismatch",
                f'framework "{tm.framework}" is not the one Inference Service "{parent}" '
                f'serves ("{fmt}"): its model server cannot load it',
            )
        limit = svc.isvc.predictor.memory_limit
        if limit is not None and self._memory_wanted(key, tm) > limit:
            return (
                "MemoryResourceAvailable",
                "MemoryResourceNotAvailable",
                "Inference Service does not have enough memory resources for Trained Model",
            )
        if not units:
            return (
                "InferenceServiceReady",
                "InferenceServiceNotReady",
                "Inference Service needs to be ready before Trained Model can be ready",
            )
        return None

    def _memory_wanted(self, key: Key, tm: TrainedModel) -> int:
        """The memory of the parent's TrainedModels applied before this one, and its own
        (TotalRequestedMemory over the ones allocated first)."""
        mine = self.states[key]
        total = 0
        for other_key, other in self.states.items():
            o = other.tm
            if o is None or o.namespace != tm.namespace:
                continue
            if o.inference_service == tm.inference_service and (other.created_at, other_key) <= (
                mine.created_at,
                key,
            ):
                total += o.memory
        return total

    # ---- fetching, loading, unloading -----------------------------------------------------

    def _fetch(self, state: TrainedModelState, tm: TrainedModel) -> None:
        if state.fetching or time.monotonic() < state.retry_at:
            return
        state.fetching = True
        attempt = state.attempt

        async def fetch() -> None:
            lease = None
            try:
                lease = await asyncio.to_thread(
                    self.controller.storage.checkout, tm.storage_uri, namespace=tm.namespace
                )
                path = lease.path
                isolation = self.controller.config.isolation
                if isolation is not None:
                    path = await asyncio.to_thread(isolation.readable, tm.namespace, path)
                if attempt == state.attempt and not state.forgotten:
                    state.lease, state.path, state.fetch_error = lease, path, ""
                    lease = None
            except StorageError as exc:
                state.fetch_error = str(exc)
                state.retry_at = time.monotonic() + RETRY_S
            finally:
                if lease is not None:  # deleted or changed meanwhile
                    lease.release()
                state.fetching = False
                self._wake.set()

        asyncio.get_running_loop().create_task(fetch())

    async def _load_into(
        self,
        state: TrainedModelState,
        tm: TrainedModel,
        svc: ServiceState,
        rev: RevisionState,
        unit: Unit,
    ) -> None:
        replica = unit.predictor
        placed = state.loaded.get(replica.key)
        if placed is not None and placed.generation == state.generation:
            return
        assert state.path is not None
        path, private = state.path, None
        isolation = self.controller.config.isolation
        if isolation is not None and isolation.enabled:
            # A confined replica reads its own model and its private folder only.
            part = replica_part("predictor", rev.row.number, unit.slot)
            private = isolation.data_dir / "run" / svc.namespace / svc.name / part
            gid = isolation.uids.uid(svc.namespace) if isolation.uids is not None else None
            prefix = f"{tm.name}-{state.generation}"
            try:
                path = await asyncio.to_thread(place_copy, state.path, private, FOLDER, prefix, gid)
            except PlacementError as exc:
                state.load_error = str(exc)
                state.retry_at = time.monotonic() + RETRY_S
                return
        fresh = _Placed(replica, state.generation, path if private else None, private)
        answer = await self._call(replica, tm.name, "load", {"parameters": {"path": str(path)}})
        if answer is None:
            log.info("%s/%s: loaded into %s from %s", tm.namespace, tm.name, replica.address, path)
            state.loaded[replica.key] = fresh
            if placed is not None:
                await placed.remove_copy()
        else:
            state.load_error = answer
            state.retry_at = time.monotonic() + RETRY_S
            await fresh.remove_copy()

    async def _call(
        self, replica: Replica, name: str, verb: str, body: dict[str, object] | None = None
    ) -> str | None:
        """POST the repository extension's load or unload to one replica; None when it
        succeeded, else why not in words."""
        assert self._client is not None
        url = f"http://{replica.address}/v2/repository/models/{name}/{verb}"
        try:
            timeout = LOAD_TIMEOUT_S if verb == "load" else UNLOAD_TIMEOUT_S
            response = await self._client.post(
                url, json=body, headers=[replica.key_header], timeout=timeout
            )
        except httpx.HTTPError as exc:
            return f"the model server did not answer the {verb}: {type(exc).__name__}"
        if response.status_code == 200:
            return None
        try:
            detail = str(response.json().get("error", ""))[:300]
        except ValueError:
            detail = ""
        return f"the model server answered the {verb} with {response.status_code}: {detail}"

    async def _unload(self, name: str, placed: _Placed) -> None:
        if placed.replica.returncode is None:
            await self._call(placed.replica, name, "unload")
        await placed.remove_copy()

    async def _unload_all(self, key: Key, state: TrainedModelState) -> None:
        placed, state.loaded = list(state.loaded.values()), {}
        await asyncio.gather(*(self._unload(key[1], p) for p in placed))

    async def _forget(self, state: TrainedModelState) -> None:
        """A deleted TrainedModel: unloaded from every replica, its model let go."""
        state.forgotten = True
        if state.tm is not None:
            await self._unload_all((state.tm.namespace, state.tm.name), state)
        if state.lease is not None:
            state.lease.release()


def _ready_units(svc: ServiceState | None) -> list[tuple[RevisionState, Unit]]:
    """The ready units of every revision of ``svc`` (a canary's too: it serves the parent)."""
    if svc is None:
        return []
    return [(rev, u) for rev in svc.revisions.values() for u in rev.ready_units()]
