"""What a follower's gateway applies to a request as the leader's does: containerConcurrency
queueing and the payload logger (``routing.py`` on the leader).

Both need the revision's spec, which a follower reads from the store (``revisions``: each
revision's document, never changed once written), not from a controller.

**containerConcurrency here is this gateway's own view.** The follower counts the requests
it sends to each published replica and queues the rest, as Knative's queue-proxy breaker
does (``concurrency.py``: the same queue depth, 503 answers and deadline). It does not know
what the leader's gateway, or another follower, sends to the same replica at the same time,
so with N gateways a replica may get up to N times its limit at once; the replica's own
server still bounds what it runs. docs/high-availability.md says how the limits combine.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from modelport.control.concurrency import (
    QUEUE_DEPTH_PER_SLOT,
    RECHECK_S,
    QueueFull,
    WaitTimedOut,
)
from modelport.control.spec import SpecError, parse_service
from modelport.control.spec.objects import InferenceService
from modelport.control.store import Store

Key = tuple[str, str, int]


class RevisionSpecs:
    """Revisions' specs by (namespace, service, number), each read from the store once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._specs: dict[Key, InferenceService] = {}

    async def get(self, key: Key) -> InferenceService | None:
        found = self._specs.get(key)
        if found is not None or not key[2]:
            return found
        namespace, service, number = key
        rows = await asyncio.to_thread(self.store.revisions, namespace, service)
        for row in rows:
            if row.number == number:
                try:
                    found = parse_service(row.document, namespace)
                except SpecError:  # stored by an older version with other rules
                    return None
                if len(self._specs) > 4096:
                    self._specs.clear()
                self._specs[key] = found
        return found


def concurrency_limit(isvc: InferenceService | None) -> int:
    """The lowest containerConcurrency of the parts (as ``concurrency.unit_limit``)."""
    if isvc is None:
        return 0
    parts = [isvc.predictor, isvc.transformer]
    limits = [p.container_concurrency for p in parts if p is not None and p.container_concurrency]
    return min(limits, default=0)


class _Slots:
    """One revision's requests in flight per replica address, and those waiting in line."""

    def __init__(self, limit: int, depth_per_slot: int) -> None:
        self.limit = limit
        self.depth_per_slot = depth_per_slot
        self.busy: dict[str, int] = {}
        self.waiting: deque[asyncio.Future[str]] = deque()

    @property
    def idle(self) -> bool:
        return not self.busy and not self.waiting

    def free(self, ready: list[str]) -> str | None:
        """The least busy ready replica under the limit (the first of equals)."""
        best, lowest = None, self.limit
        for address in ready:
            count = self.busy.get(address, 0)
            if count < lowest:
                best, lowest = address, count
        return best

    def take(self, address: str) -> None:
        self.busy[address] = self.busy.get(address, 0) + 1

    def put_back(self, address: str) -> None:
        count = self.busy.get(address, 0)
        if count <= 1:
            self.busy.pop(address, None)
        else:
            self.busy[address] = count - 1

    def dispatch(self, ready: list[str]) -> None:
        """Free slots to waiting requests, first come first served."""
        while self.waiting:
            address = self.free(ready)
            if address is None:
                return
            turn = self.waiting.popleft()
            if turn.done():
                continue
            self.take(address)
            turn.set_result(address)


class EndpointLimiter:
    """containerConcurrency over the published replicas of each revision, for one gateway."""

    def __init__(self, depth_per_slot: int = QUEUE_DEPTH_PER_SLOT) -> None:
        self.depth_per_slot = depth_per_slot
        self._slots: dict[Key, _Slots] = {}

    def in_flight(self, key: Key) -> int:
        slots = self._slots.get(key)
        return sum(slots.busy.values()) if slots is not None else 0

    async def acquire(
        self,
        key: Key,
        limit: int,
        ready: Callable[[], list[str]],
        deadline: float,
        wake: Callable[[], None],
    ) -> str:
        """A replica address with a free slot, taken; raises QueueFull or WaitTimedOut."""
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = _Slots(limit, self.depth_per_slot)
        try:
            return await self._acquire(slots, ready, deadline, wake)
        finally:
            if slots.idle:
                self._slots.pop(key, None)

    async def _acquire(
        self,
        slots: _Slots,
        ready: Callable[[], list[str]],
        deadline: float,
        wake: Callable[[], None],
    ) -> str:
        now_ready = ready()
        if not slots.waiting:
            address = slots.free(now_ready)
            if address is not None:
                slots.take(address)
                return address
        depth = slots.depth_per_slot * slots.limit * max(1, len(now_ready))
        if len(slots.waiting) >= depth:
            raise QueueFull(
                f"pending request queue full ({len(slots.waiting)} requests wait for "
                f"{len(now_ready)} replica(s) at containerConcurrency {slots.limit})"
            )
        turn: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        slots.waiting.append(turn)
        slots.dispatch(now_ready)
        started = time.monotonic()
        try:
            while not turn.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimedOut(
                        f"no replica slot freed within {time.monotonic() - started:.1f} s "
                        f"(containerConcurrency {slots.limit})"
                    )
                # asyncio.wait keeps the turn on a timeout and loses no cancellation.
                await asyncio.wait((turn,), timeout=min(remaining, RECHECK_S))
                if not turn.done():
                    now_ready = ready()
                    if not now_ready:
                        wake()
                    slots.dispatch(now_ready)
            return turn.result()
        except BaseException:
            if turn.done() and not turn.cancelled():
                slots.put_back(turn.result())  # handed a slot as it gave up: pass it on
                slots.dispatch(ready())
            else:
                turn.cancel()
                if turn in slots.waiting:
                    slots.waiting.remove(turn)
            raise

    def release(self, key: Key, address: str, ready: list[str]) -> None:
        """Give back the slot ``acquire`` handed out."""
        slots = self._slots.get(key)
        if slots is None:
            raise RuntimeError(f"no slot of revision {key} is held")
        slots.put_back(address)
        slots.dispatch(ready)
        if slots.idle:
            self._slots.pop(key, None)
