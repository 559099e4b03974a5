"""Starts that wait (a replica no node has room for yet) end with their revision: deleting
the service, or a new revision taking over, stops the waiting replica instead of leaving it
to wait for ever."""

from __future__ import annotations

from pathlib import Path

from modelport.control.store import ISVC
from tests.control.rig import Rig, isvc, run


def test_deleting_a_service_stops_its_waiting_replica(tmp_path: Path) -> None:
    run(tmp_path, _deleting_a_service_stops_its_waiting_replica)


async def _deleting_a_service_stops_its_waiting_replica(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"]))
    await rig.until(lambda: len(rig.backend.started) == 1)
    waiting = rig.backend.started[0]
    assert waiting.returncode is None and not waiting.answer.done()
    rig.store.delete(ISVC, "default", "iris")
    rig.controller.wake()
    await rig.until(lambda: waiting.returncode is not None)
    assert waiting.returncode == -15  # stopped, not left waiting
    assert len(rig.backend.started) == 1


def test_a_new_revision_stops_the_old_ones_waiting_replica(tmp_path: Path) -> None:
    run(tmp_path, _a_new_revision_stops_the_old_ones_waiting_replica)


async def _a_new_revision_stops_the_old_ones_waiting_replica(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"]))
    await rig.until(lambda: len(rig.backend.started) == 1)
    stuck = rig.backend.started[0]
    rig.apply(isvc(rig.models["v2"]))
    await rig.rolled_out("v2")
    await rig.until(lambda: stuck.returncode is not None)
    assert stuck.returncode == -15
    assert rig.svc is not None
    first = next(r for r in rig.svc.revisions.values() if r.row.number == 1)
    assert first.starting == 0 and not first.start_tasks
