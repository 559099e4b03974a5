"""When the controller looks at a service: on change, and on a timer only while it needs one.

An idle service — no replicas, none starting, nothing in flight, nothing to fetch or retry —
costs nothing between changes: a request for it, an apply or a delete wakes it. Services with
replicas are looked at every tick, since their load feeds the autoscaler and their processes
may exit. The store is read again on every apply or delete made through this platform, and
every ``resync_s`` for writes this process did not see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from modelport.control.revisions import RevisionState, ServiceState

ServiceKey = tuple[str, str]


class ReconcileSchedule:
    """The services due on the next pass, and whether the store must be read first."""

    def __init__(self, resync_s: float) -> None:
        self.resync_s = resync_s
        self._dirty: set[ServiceKey] = set()
        self._busy: set[ServiceKey] = set()
        self._sync_requested = True
        self._last_sync = float("-inf")
        self.wakeup = asyncio.Event()

    def request_sync(self) -> None:
        """Read the store on the next pass (something was applied or deleted)."""
        self._sync_requested = True
        self.wakeup.set()

    def poke(self, key: ServiceKey) -> None:
        """Look at one service on the next pass, which starts now."""
        self._dirty.add(key)
        self.wakeup.set()

    def sync_due(self, now: float) -> bool:
        """Whether this pass reads the store; resets the request and the timer if so."""
        if not self._sync_requested and now - self._last_sync < self.resync_s:
            return False
        self._sync_requested = False
        self._last_sync = now
        return True

    def take_due(self) -> set[ServiceKey]:
        """The services to look at in this pass: those changed or poked, and the busy ones."""
        due = self._dirty | self._busy
        self._dirty = set()
        return due

    def settle(self, key: ServiceKey, busy: bool) -> None:
        """Record after a service's pass whether it needs the next tick too."""
        if busy:
            self._busy.add(key)
        else:
            self._busy.discard(key)

    def forget(self, key: ServiceKey) -> None:
        self._dirty.discard(key)
        self._busy.discard(key)

    @property
    def busy_count(self) -> int:
        return len(self._busy)


def needs_tick(svc: ServiceState) -> bool:
    """Whether anything about the service changes with time alone."""
    return any(_revision_needs_tick(rev) for rev in svc.revisions.values())


def _revision_needs_tick(rev: RevisionState) -> bool:
    if rev.units or rev.starting or rev.inflight or rev.fetching:
        return True  # load to sample, processes to watch, a request or download under way
    if rev.row.state == "pending" and not rev.row.retired:
        return True  # proving itself, possibly between retries
    # Wanted replicas it could not start yet: a backoff or a quota may let it later.
    return rev.shortfall and rev.row.state != "failed" and not rev.row.retired


class Background:
    """Tasks the controller starts and does not await, cancelled together on stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
