"""containerConcurrency's slots in the gateway: FIFO hand-over, release on every path, the
queue bound (Knative's queue-proxy breaker: 10 waiting per slot, then 503)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import SimpleNamespace

import pytest

from modelport.control.backends.process import Replica
from modelport.control.concurrency import (
    ConcurrencyLimiter,
    QueueFull,
    RevisionSlots,
    WaitTimedOut,
    unit_limit,
)
from modelport.control.revisions import Unit
from modelport.control.spec import parse_documents


def run(scenario: Callable[[], Coroutine[None, None, None]]) -> Callable[[], None]:
    """A test that runs ``scenario`` on a fresh event loop."""

    @functools.wraps(scenario)
    def test() -> None:
        asyncio.run(scenario())

    return test


def make_unit(port: int) -> Unit:
    # A replica whose process runs (returncode None) and that answered its readiness probe.
    replica = Replica(SimpleNamespace(returncode=None), port, Path("x.log"), "m", "key")  # type: ignore[arg-type]
    replica.ready = True
    return Unit(replica)


def never_wake() -> None:
    raise AssertionError("the controller was woken although a replica is ready")


def later(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@run
async def test_takes_free_slots_then_queues_in_arrival_order() -> None:
    units = [make_unit(1)]
    slots = RevisionSlots(1)
    first = await slots.acquire(lambda: units, later(), never_wake)
    assert first is units[0] and slots.in_flight == 1
    order: list[int] = []

    async def waiter(n: int) -> None:
        unit = await slots.acquire(lambda: units, later(), never_wake)
        order.append(n)
        await asyncio.sleep(0.01)
        slots.release(unit, units)

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await settle()
    assert slots.waiting == 5 and order == []
    slots.release(first, units)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert slots.idle


@run
async def test_spreads_over_units_and_never_exceeds_the_limit_on_any() -> None:
    units = [make_unit(1), make_unit(2)]
    slots = RevisionSlots(2)
    taken = [await slots.acquire(lambda: units, later(), never_wake) for _ in range(4)]
    assert [slots.requests_on(u) for u in units] == [2, 2]
    assert {id(u) for u in taken} == {id(u) for u in units}
    fifth = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    await settle()
    assert not fifth.done()
    slots.release(units[1], units)
    assert await fifth is units[1]
    assert [slots.requests_on(u) for u in units] == [2, 2]


@run
async def test_queue_beyond_ten_per_slot_is_refused_with_knatives_message() -> None:
    units = [make_unit(1)]
    slots = RevisionSlots(1)
    await slots.acquire(lambda: units, later(), never_wake)
    waiting = [
        asyncio.create_task(slots.acquire(lambda: units, later(), never_wake)) for _ in range(10)
    ]
    await settle()
    assert slots.waiting == 10
    with pytest.raises(QueueFull, match="pending request queue full"):
        await slots.acquire(lambda: units, later(), never_wake)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert slots.waiting == 0


@run
async def test_the_queue_bound_grows_with_ready_replicas() -> None:
    units = [make_unit(1), make_unit(2)]
    slots = RevisionSlots(1, queue_depth_per_slot=2)
    for _ in range(2):
        await slots.acquire(lambda: units, later(), never_wake)
    waiting = [
        asyncio.create_task(slots.acquire(lambda: units, later(), never_wake)) for _ in range(4)
    ]
    await settle()
    assert slots.waiting == 4
    with pytest.raises(QueueFull):
        await slots.acquire(lambda: units, later(), never_wake)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


@run
async def test_a_wait_past_the_deadline_times_out_and_leaves_the_queue() -> None:
    units = [make_unit(1)]
    slots = RevisionSlots(1)
    held = await slots.acquire(lambda: units, later(), never_wake)
    with pytest.raises(WaitTimedOut, match="containerConcurrency 1"):
        await slots.acquire(lambda: units, time.monotonic() + 0.05, never_wake)
    assert slots.waiting == 0
    slots.release(held, units)
    assert slots.idle


@run
async def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    units = [make_unit(1)]
    slots = RevisionSlots(1)
    held = await slots.acquire(lambda: units, later(), never_wake)
    gone = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    next_one = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    await settle()
    gone.cancel()  # the client went away while waiting
    await asyncio.gather(gone, return_exceptions=True)
    assert slots.waiting == 1
    slots.release(held, units)
    assert await next_one is units[0]
    assert slots.in_flight == 1


@run
async def test_a_slot_handed_over_as_the_waiter_is_cancelled_goes_on() -> None:
    units = [make_unit(1)]
    slots = RevisionSlots(1)
    held = await slots.acquire(lambda: units, later(), never_wake)
    unlucky = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    patient = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    await settle()
    # Release hands the slot to `unlucky` and its cancel lands before it runs again.
    slots.release(held, units)
    unlucky.cancel()
    await asyncio.gather(unlucky, return_exceptions=True)
    assert await patient is units[0]
    assert slots.in_flight == 1 and slots.waiting == 0


@run
async def test_a_new_arrival_hands_a_newly_ready_replica_to_the_first_in_line() -> None:
    units = [make_unit(1)]
    slots = RevisionSlots(1)
    await slots.acquire(lambda: units, later(), never_wake)
    first = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    await settle()
    units.append(make_unit(2))  # scaled up
    second = asyncio.create_task(slots.acquire(lambda: units, later(), never_wake))
    await settle()
    assert first.done() and first.result() is units[1]
    assert not second.done()
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)


@run
async def test_a_waiter_takes_a_replica_that_becomes_ready_and_wakes_the_controller() -> None:
    units: list[Unit] = []
    wakes: list[float] = []
    slots = RevisionSlots(1)
    waiter = asyncio.create_task(
        slots.acquire(lambda: units, later(), lambda: wakes.append(time.monotonic()))
    )
    await asyncio.sleep(0.3)
    assert wakes, "a request waiting with no replica ready must wake the controller"
    units.append(make_unit(1))  # scaled up: the controller made a replica ready
    assert await asyncio.wait_for(waiter, 2) is units[0]


@run
async def test_limiter_forgets_idle_revisions_and_refuses_a_release_it_did_not_hand_out() -> None:
    revision = SimpleNamespace(ready_units=lambda: units, name="r-predictor-00001")
    units = [make_unit(1)]
    limiter = ConcurrencyLimiter()
    unit = await limiter.acquire(revision, 1, later(), never_wake)  # type: ignore[arg-type]
    assert limiter.slots(revision) is not None  # type: ignore[arg-type]
    limiter.release(revision, unit)  # type: ignore[arg-type]
    assert limiter.slots(revision) is None  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no slot"):
        limiter.release(revision, unit)  # type: ignore[arg-type]


def _isvc(predictor: str, transformer: str = "") -> str:
    doc = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata:\n  name: m\nspec:\n  predictor:\n"
        f"{predictor}"
        "    model:\n      modelFormat: {name: sklearn}\n      storageUri: /tmp/m\n"
    )
    if transformer:
        doc += (
            f"  transformer:\n{transformer}    containers:\n      - name: t\n        image: x\n"
            "        env:\n          - {name: STORAGE_URI, value: /tmp/t.py}\n"
        )
    return doc


@pytest.mark.parametrize(
    ("predictor", "transformer", "expected"),
    [
        ("", "", 0),
        ("    containerConcurrency: 0\n", "", 0),
        ("    containerConcurrency: 3\n", "", 3),
        ("    containerConcurrency: 3\n", "    containerConcurrency: 2\n", 2),
        ("", "    containerConcurrency: 4\n", 4),
    ],
)
def test_unit_limit_is_the_lowest_set_limit(
    predictor: str, transformer: str, expected: int
) -> None:
    [isvc] = parse_documents(_isvc(predictor, transformer))
    assert unit_limit(SimpleNamespace(isvc=isvc)) == expected  # type: ignore[arg-type]
