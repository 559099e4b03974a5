"""resourceVersions and the watch history of one stored kind.

The store keeps documents and generations; an object's status comes from the controller's
memory. Kubernetes clients need more: a ``metadata.resourceVersion`` that changes whenever
anything they can read changes (status included: ``kubectl wait`` and ``get -w`` act on
status events), updates refused when made from a stale one (409), and watches that resume
from a resourceVersion without missing events (API conventions, "Concurrency Control and
Consistency"; "Efficient detection of changes").

:class:`ObjectCache` renders every object of its kind, compares each to what it rendered
before, and hands out a new resourceVersion (from one sequence for the whole API) to each
object that changed, recording an ADDED, MODIFIED or DELETED event. Reads, writes and
watches all go through it, so they agree. resourceVersions are opaque to clients; ours
start from the clock in milliseconds, so they keep growing across restarts of the platform,
and a watch resumed from one older than the history kept here gets 410 Expired, on which
clients list again, as they do with kube-apiserver.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from modelport.control.store import Resource, Store
from modelport.kube.errors import expired

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Render = Callable[[Resource], dict[str, Any]]
HISTORY = 4096
# Above this many changed objects, one query for all beats one per object.
BULK_LOAD = 16


@dataclass
class Entry:
    """One object as last rendered, with the resourceVersion it got."""

    row: Resource
    obj: dict[str, Any]
    digest: bytes
    rv: int


@dataclass(frozen=True)
class Event:
    """A watch event: ADDED, MODIFIED or DELETED, the object at that resourceVersion and,
    for MODIFIED, the object before (a watch with a selector needs both)."""

    rv: int
    type: str
    obj: dict[str, Any]
    before: dict[str, Any] | None = None


class Versions:
    """The API's one resourceVersion sequence: milliseconds since the epoch at the start,
    then at least one more than the last."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.value = int(clock() * 1000)

    def next(self) -> int:
        self.value = max(self.value + 1, int(self._clock() * 1000))
        return self.value


def object_uid(kind: str, namespace: str, name: str, created_at: float) -> str:
    """A uid stable for an object's life and new when it is deleted and created again."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"modelport:{kind}/{namespace}/{name}/{created_at!r}")
    )


class ObjectCache:
    """The rendered objects of one kind, their resourceVersions and recent events."""

    def __init__(
        self,
        store: Store,
        kind: str,
        render: Render,
        versions: Versions,
        *,
        extras: Callable[[], list[Resource]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.kind = kind
        self.render = render
        self.versions = versions
        self.extras = extras
        self._clock = clock
        self._entries: dict[Key, Entry] = {}
        self._history: deque[Event] = deque()
        self._floor = 0  # events after this resourceVersion are all in the history
        self._primed = False
        self._synced = float("-inf")
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # ---- reading ------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Entry | None:
        return self._entries.get((namespace, name))

    def entries(self, namespace: str | None = None) -> list[Entry]:
        """Objects in one namespace (or all), by namespace and name."""
        keys = sorted(k for k in self._entries if namespace is None or k[0] == namespace)
        return [self._entries[k] for k in keys]

    def events_after(self, rv: int) -> list[Event]:
        """Events newer than ``rv``; 410 Expired if some of them are no longer kept."""
        if rv < self._floor:
            raise expired(rv, self._floor)
        return [e for e in self._history if e.rv > rv]

    async def next_events(self, after: int, poll_s: float) -> list[Event]:
        """Wait for events newer than ``after``: changes made through this API arrive at
        once, others (another API, the controller's status) within ``poll_s``."""
        while True:
            await self.sync(max_age_s=poll_s / 2)
            events = self.events_after(after)
            if events:
                return events
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), poll_s)
            except TimeoutError:
                pass

    # ---- syncing ------------------------------------------------------------------------

    async def sync(self, *, max_age_s: float = 0.0) -> None:
        """Render again what changed; ``max_age_s`` > 0 skips it if one ran that recently."""
        if max_age_s and self._clock() - self._synced < max_age_s:
            return
        async with self._lock:
            if max_age_s and self._clock() - self._synced < max_age_s:
                return
            started = self._clock()
            stamps = await asyncio.to_thread(self.store.versions, self.kind)
            stale = [
                key
                for key, (generation, created) in stamps.items()
                if key not in self._entries
                or (self._entries[key].row.generation, self._entries[key].row.created_at)
                != (generation, created)
            ]
            loaded = await asyncio.to_thread(self._load, stale) if stale else {}
            rows: dict[Key, Resource] = {}
            for key in stamps:
                row = loaded.get(key) or (self._entries[key].row if key in self._entries else None)
                if row is not None:
                    rows[key] = row
            for row in self.extras() if self.extras else []:
                rows.setdefault((row.namespace, row.name), row)
            self._update(rows)
            self._synced = started

    def _load(self, keys: list[Key]) -> dict[Key, Resource]:
        if len(keys) > BULK_LOAD:
            wanted = set(keys)
            rows = self.store.list(self.kind)
            return {(r.namespace, r.name): r for r in rows if (r.namespace, r.name) in wanted}
        found = {}
        for namespace, name in keys:
            row = self.store.get(self.kind, namespace, name)
            if row is not None:
                found[(namespace, name)] = row
        return found

    def _update(self, rows: dict[Key, Resource]) -> None:
        record = self._primed
        for key, row in rows.items():
            obj = self.render(row)
            metadata = obj.setdefault("metadata", {})
            metadata["uid"] = object_uid(self.kind, row.namespace, row.name, row.created_at)
            metadata.pop("resourceVersion", None)
            digest = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
            entry = self._entries.get(key)
            if entry is not None and entry.digest == digest:
                entry.row = row
                continue
            if entry is not None and entry.row.created_at != row.created_at and record:
                # Deleted and created again between two looks: watchers see both.
                self._record("DELETED", entry.obj)
                entry = None
            rv = self.versions.next()
            metadata["resourceVersion"] = str(rv)
            self._entries[key] = Entry(row, obj, digest, rv)
            if record:
                before = entry.obj if entry is not None else None
                self._record("ADDED" if entry is None else "MODIFIED", obj, rv, before)
        for key in [k for k in self._entries if k not in rows]:
            gone = self._entries.pop(key)
            if record:
                self._record("DELETED", gone.obj)
        if not self._primed:
            self._primed = True
            self._floor = self.versions.value

    def _record(
        self,
        kind: str,
        obj: dict[str, Any],
        rv: int | None = None,
        before: dict[str, Any] | None = None,
    ) -> None:
        if rv is None:
            # A deletion is a change of its own: the last state, at a new resourceVersion.
            rv = self.versions.next()
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}
        self._history.append(Event(rv, kind, obj, before))
        while len(self._history) > HISTORY:
            self._floor = self._history.popleft().rv
        self._changed.set()
        self._changed = asyncio.Event()
