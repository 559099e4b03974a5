"""containerConcurrency, enforced in the gateway: a replica is sent at most that many requests
at once; the others wait in arrival order and take each slot as it frees.

This is Knative's queue-proxy breaker, moved in front of the replicas (knative/serving
``pkg/queue/breaker.go``, built by ``cmd/queue/main.go`` ``buildBreaker``):
- 0 means no limit, and no breaker at all;
- the queue holds ``10 * containerConcurrency`` waiting requests per replica ("to allow the
  autoscaler time to react"); one more is answered 503 "pending request queue full";
- a request whose deadline passes while it waits is answered 503 too
  (``pkg/queue/handler.go``: ``context.DeadlineExceeded`` and ``ErrRequestQueueFull``).

Here one queue serves a revision's replicas, as Knative's activator does when it sits in the
path: a waiting request takes the first slot to free on any ready replica. Waiting requests
stay counted in the revision's in-flight figure (``RevisionState.begin`` comes before the
wait), so they are demand the autoscaler scales up for, as in queue-proxy, whose request
statistics count a request before it waits at the breaker.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from modelport.control.revisions import RevisionState, Unit

# cmd/queue/main.go: queueDepth := 10 * env.ContainerConcurrency.
QUEUE_DEPTH_PER_SLOT = 10
# How often a waiting request looks for replicas that became ready meanwhile (scale-up):
# the controller does not tell the gateway, it only sets an event the activator clears.
RECHECK_S = 0.25


class SlotUnavailable(Exception):
    """A request got no replica slot; the message says why (the 503's body)."""


class QueueFull(SlotUnavailable):
    """More requests wait than the queue holds."""


class WaitTimedOut(SlotUnavailable):
    """The request's deadline passed while it waited for a slot."""


def unit_limit(revision: RevisionState) -> int:
    """Requests a unit may take at once: the lowest containerConcurrency set on its parts
    (a transformer passes each request on to its predictor); 0 when neither sets one."""
    parts = [revision.isvc.predictor, revision.isvc.transformer]
    limits = [p.container_concurrency for p in parts if p is not None and p.container_concurrency]
    return min(limits, default=0)


class RevisionSlots:
    """One revision's requests in flight per unit and its queue of waiting requests."""

    def __init__(self, limit: int, queue_depth_per_slot: int = QUEUE_DEPTH_PER_SLOT) -> None:
        if limit < 1:
            raise ValueError(f"a concurrency limit is at least 1, was {limit}")
        self.limit = limit
        self.queue_depth_per_slot = queue_depth_per_slot
        # id(unit) -> (unit, requests): the unit is held while counted, so its id stays its own.
        self._busy: dict[int, tuple[Unit, int]] = {}
        self._waiting: deque[asyncio.Future[Unit]] = deque()

    @property
    def in_flight(self) -> int:
        return sum(count for _, count in self._busy.values())

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def idle(self) -> bool:
        return not self._busy and not self._waiting

    def requests_on(self, unit: Unit) -> int:
        entry = self._busy.get(id(unit))
        return entry[1] if entry is not None else 0

    async def acquire(
        self, units: Callable[[], list[Unit]], deadline: float, wake: Callable[[], None]
    ) -> Unit:
        """A unit with a free slot, taken; waits in line for one until ``deadline``
        (monotonic). ``units`` gives the ready units; ``wake`` asks the controller to look
        (a request waits with no replica ready). Raises QueueFull or WaitTimedOut."""
        ready = units()
        if not self._waiting:
            unit = self._free(ready)
            if unit is not None:
                self._take(unit)
                return unit
        depth = self.queue_depth_per_slot * self.limit * max(1, len(ready))
        if len(self._waiting) >= depth:
            raise QueueFull(
                f"pending request queue full ({len(self._waiting)} requests wait for "
                f"{len(ready)} replica(s) at containerConcurrency {self.limit})"
            )
        turn: asyncio.Future[Unit] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        # A replica ready since the last release serves those ahead first (FIFO).
        self.dispatch(ready)
        try:
            return await self._wait(turn, units, deadline, wake)
        except BaseException:
            self._leave(turn, units())
            raise

    async def _wait(
        self,
        turn: asyncio.Future[Unit],
        units: Callable[[], list[Unit]],
        deadline: float,
        wake: Callable[[], None],
    ) -> Unit:
        started = time.monotonic()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimedOut(
                    f"no replica slot freed within {time.monotonic() - started:.1f} s "
                    f"(containerConcurrency {self.limit})"
                )
            # asyncio.wait neither cancels the turn when it times out (the request keeps its
            # place) nor loses a cancellation that comes as the turn is served (wait_for can).
            await asyncio.wait((turn,), timeout=min(remaining, RECHECK_S))
            if turn.done():
                return turn.result()
            ready = units()
            if not ready:
                wake()
            self.dispatch(ready)

    def _leave(self, turn: asyncio.Future[Unit], ready: list[Unit]) -> None:
        """Take a request that gives up (timeout, cancel) out of the queue; a slot it was
        handed as it gave up goes to the next in line."""
        if turn.done() and not turn.cancelled():
            self.release(turn.result(), ready)
            return
        turn.cancel()
        try:
            self._waiting.remove(turn)
        except ValueError:
            pass

    def release(self, unit: Unit, ready: list[Unit]) -> None:
        """A request on ``unit`` finished (or failed): its slot goes to the next in line."""
        self._put_back(unit)
        self.dispatch(ready)

    def dispatch(self, ready: list[Unit]) -> None:
        """Hand free slots of ``ready`` units to waiting requests, first come first served."""
        while self._waiting:
            unit = self._free(ready)
            if unit is None:
                return
            turn = self._waiting.popleft()
            if turn.done():
                continue
            self._take(unit)
            turn.set_result(unit)

    def _put_back(self, unit: Unit) -> None:
        key = id(unit)
        held, count = self._busy[key]
        if count <= 1:
            del self._busy[key]
        else:
            self._busy[key] = (held, count - 1)

    def _take(self, unit: Unit) -> None:
        self._busy[id(unit)] = (unit, self.requests_on(unit) + 1)

    def _free(self, ready: list[Unit]) -> Unit | None:
        """The least busy ready unit under the limit (the first of equals), or None."""
        best: Unit | None = None
        lowest = self.limit
        for unit in ready:
            count = self.requests_on(unit)
            if count < lowest:
                best, lowest = unit, count
        return best


class ConcurrencyLimiter:
    """The gateway's slots for every revision with a containerConcurrency; a revision's
    bookkeeping exists only while it has requests in flight or waiting."""

    def __init__(self, queue_depth_per_slot: int = QUEUE_DEPTH_PER_SLOT) -> None:
        self.queue_depth_per_slot = queue_depth_per_slot
        # id(revision) -> (revision, slots); the revision is held, so its id stays its own.
        self._revisions: dict[int, tuple[RevisionState, RevisionSlots]] = {}

    def slots(self, revision: RevisionState) -> RevisionSlots | None:
        """The revision's slots while it has requests in flight or waiting."""
        entry = self._revisions.get(id(revision))
        return entry[1] if entry is not None else None

    async def acquire(
        self, revision: RevisionState, limit: int, deadline: float, wake: Callable[[], None]
    ) -> Unit:
        """A ready unit of ``revision`` with a free slot (see RevisionSlots.acquire)."""
        key = id(revision)
        entry = self._revisions.get(key)
        if entry is None:
            entry = self._revisions[key] = (
                revision,
                RevisionSlots(limit, self.queue_depth_per_slot),
            )
        slots = entry[1]
        try:
            return await slots.acquire(revision.ready_units, deadline, wake)
        finally:
            self._forget_if_idle(revision, slots)

    def release(self, revision: RevisionState, unit: Unit) -> None:
        """Give back the slot ``acquire`` handed out, on every path the request ends by."""
        entry = self._revisions.get(id(revision))
        if entry is None:
            raise RuntimeError(f"no slot of revision {revision.name} is held")
        slots = entry[1]
        slots.release(unit, revision.ready_units())
        self._forget_if_idle(revision, slots)

    def _forget_if_idle(self, revision: RevisionState, slots: RevisionSlots) -> None:
        if slots.idle:
            self._revisions.pop(id(revision), None)
