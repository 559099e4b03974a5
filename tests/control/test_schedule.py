"""The controller looks at a service when something about it changes, and on every tick only
while it needs one: idle services scaled to zero cost nothing between changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelport.control.autoscaler import Autoscaler
from modelport.control.revisions import RevisionState, ServiceState
from modelport.control.scaling_policy import ScalingPolicy
from modelport.control.schedule import ReconcileSchedule, needs_tick
from modelport.control.spec import parse_service
from modelport.control.store import ISVC, Revision
from tests.control.rig import Rig, isvc, run

IDLE = {"autoscaling.knative.dev/initial-scale": "0"}


def idle_service(rig: Rig, name: str) -> dict[str, Any]:
    """A service that is ready without a replica (initial-scale 0 with minReplicas 0)."""
    doc = isvc(rig.models["v1"], minReplicas=0)
    doc["metadata"] = {"name": name, "namespace": "default", "annotations": IDLE}
    return doc


async def settle_idle(rig: Rig, names: list[str]) -> None:
    for name in names:
        rig.store.apply(ISVC, "default", name, idle_service(rig, name))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not all(_ready(rig, name) for name in names):
        assert loop.time() < deadline, "services did not become ready"
        await rig.controller.reconcile()
        await asyncio.sleep(0.01)
    # Becoming ready pokes each service once more (its traffic moves to the new revision).
    for _ in range(3):
        if not await rig.controller.step():
            return
    raise AssertionError("services kept being looked at after they settled")


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _ready(rig: Rig, name: str) -> bool:
    svc = rig.controller.lookup("default", name)
    return svc is not None and any(r.state == "ready" for r in svc.revisions.values())


def test_idle_services_are_not_looked_at_between_changes(tmp_path: Path) -> None:
    run(tmp_path, _idle_services_are_not_looked_at_between_changes)


async def _idle_services_are_not_looked_at_between_changes(rig: Rig) -> None:
    names = [f"svc-{i}" for i in range(40)]
    await settle_idle(rig, names)
    assert rig.controller.schedule.busy_count == 0
    assert await rig.controller.step() == set()
    assert not rig.backend.started  # nothing runs: every one is scaled to zero


def test_a_request_wakes_only_its_own_service(tmp_path: Path) -> None:
    run(tmp_path, _a_request_wakes_only_its_own_service)


async def _a_request_wakes_only_its_own_service(rig: Rig) -> None:
    await settle_idle(rig, [f"svc-{i}" for i in range(20)])
    svc = rig.controller.lookup("default", "svc-7")
    assert svc is not None
    revision = svc.pick()
    assert revision is not None
    revision.begin()  # what the gateway does before it asks the activator
    waiting = asyncio.create_task(rig.controller.activate(revision, timeout=10))
    await asyncio.sleep(0)  # the activator pokes the service
    assert await rig.controller.step() == {("default", "svc-7")}
    await eventually(lambda: len(rig.backend.started) == 1)  # a cold start, this one only
    rig.backend.answer(rig.models["v1"], True)
    assert await waiting is not None
    revision.end()
    # While it has a replica it is looked at every tick (its load feeds the autoscaler).
    assert ("default", "svc-7") in await rig.controller.step()
    assert rig.controller.schedule.busy_count == 1


def test_apply_here_is_seen_at_once_and_other_writers_at_resync(tmp_path: Path) -> None:
    run(tmp_path, _apply_here_is_seen_at_once_and_other_writers_at_resync)


async def _apply_here_is_seen_at_once_and_other_writers_at_resync(rig: Rig) -> None:
    await settle_idle(rig, ["a"])
    # Written to the store without telling the controller (as another instance would).
    rig.store.apply(ISVC, "default", "b", idle_service(rig, "b"))
    assert await rig.controller.step() == set()
    assert rig.controller.lookup("default", "b") is None
    rig.controller.schedule.resync_s = 0.0  # the periodic read comes due
    assert ("default", "b") in await rig.controller.step()
    assert rig.controller.lookup("default", "b") is not None

    rig.controller.schedule.resync_s = 3600.0
    await rig.controller.step()
    rig.store.delete(ISVC, "default", "a")
    rig.controller.wake()  # what the API does after an apply or delete
    await rig.controller.step()
    assert rig.controller.lookup("default", "a") is None


def test_a_revision_needs_ticks_while_it_has_work() -> None:
    doc = isvc(Path("/m"), minReplicas=0)
    row = Revision(namespace="default", service="iris", number=1, key="k", document=doc)
    row.state, row.retired = "ready", 0
    rev = RevisionState(row, parse_service(doc), Autoscaler(ScalingPolicy(min_replicas=0)))
    svc = ServiceState("default", "iris", revisions={1: rev})
    assert not needs_tick(svc)  # ready, scaled to zero, nothing in flight
    for field, value in (("inflight", 1), ("starting", 1), ("fetching", True)):
        setattr(rev, field, value)
        assert needs_tick(svc), field
        setattr(rev, field, type(value)())
    rev.shortfall = True  # wanted a replica it could not start yet (backoff, quota)
    assert needs_tick(svc)
    row.state = "failed"  # a failed revision wants none
    assert not needs_tick(svc)
    row.state, rev.shortfall = "pending", False  # a new revision proving itself
    assert needs_tick(svc)


def test_schedule_takes_poked_and_busy_services_and_times_the_store_reads() -> None:
    async def main() -> None:
        schedule = ReconcileSchedule(resync_s=10.0)
        assert schedule.sync_due(100.0)  # the first pass reads the store
        assert not schedule.sync_due(105.0)
        assert schedule.sync_due(110.0)
        schedule.request_sync()
        assert schedule.wakeup.is_set()
        assert schedule.sync_due(111.0)

        schedule.poke(("ns", "a"))
        schedule.settle(("ns", "b"), busy=True)
        assert schedule.take_due() == {("ns", "a"), ("ns", "b")}
        assert schedule.take_due() == {("ns", "b")}  # a poke is taken once, busy stays
        schedule.settle(("ns", "b"), busy=False)
        assert schedule.take_due() == set()
        schedule.settle(("ns", "c"), busy=True)
        schedule.forget(("ns", "c"))
        assert schedule.take_due() == set()

    asyncio.run(main())
