"""The status a real Controller's picture gives while a spec change rolls out.

The controller runs its own reconcile passes against a SQLite store; replicas come from a
fake backend whose readiness each test releases, so every step of a rollout (new revision
pending, ready, failed) can be looked at without timing luck. The rules checked are
Knative's and KServe's (see modelport/control/status.py): Ready is not True until the
latest created revision is ready, and observedGeneration names the spec the status shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.control.rig import Rig, condition, isvc, predictor, ready, run


def test_spec_change_is_not_ready_until_its_revision_is(tmp_path: Path) -> None:
    run(tmp_path, _spec_change_is_not_ready_until_its_revision_is)


async def _spec_change_is_not_ready_until_its_revision_is(rig: Rig) -> None:
    assert rig.apply(isvc(rig.models["v1"])) == 1
    await rig.until(lambda: rig.svc is not None and bool(rig.svc.revisions))
    first = rig.status()
    assert ready(first) == "Unknown" and first["observedGeneration"] == 1
    assert condition(first, "Ready")["reason"] == "RevisionMissing"
    await rig.rolled_out("v1")

    assert rig.apply(isvc(rig.models["v2"])) == 2
    await rig.controller.reconcile()
    during = rig.status()
    # Knative: the Configuration's latest created revision is not ready, so the Service
    # (and KServe's PredictorReady and Ready) is Unknown, for the new generation.
    assert during["observedGeneration"] == 2
    assert ready(during) == "Unknown"
    assert condition(during, "Ready")["reason"] == "Deploying"
    assert "iris-predictor-00002" in condition(during, "PredictorReady")["message"]
    assert predictor(during)["latestCreatedRevision"] == "iris-predictor-00002"
    assert predictor(during)["latestReadyRevision"] == "iris-predictor-00001"
    assert predictor(during)["latestRolledoutRevision"] == "iris-predictor-00001"
    # The old revision keeps the traffic: it is still the latest *ready* one.
    assert predictor(during)["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert during["modelStatus"]["transitionStatus"] == "InProgress"

    await rig.rolled_out("v2")
    after = rig.status()
    assert after["observedGeneration"] == 2
    assert predictor(after)["latestReadyRevision"] == "iris-predictor-00002"
    assert predictor(after)["latestRolledoutRevision"] == "iris-predictor-00002"
    assert predictor(after)["previousRolledoutRevision"] == "iris-predictor-00001"
    assert predictor(after)["traffic"] == [
        {"revisionName": "iris-predictor-00002", "percent": 100, "latestRevision": True}
    ]
    assert after["modelStatus"]["transitionStatus"] == "UpToDate"


def test_status_mid_reconcile_keeps_the_old_observed_generation(tmp_path: Path) -> None:
    """While the controller has read a new spec but not yet made its revision, the status
    shows the old picture: it must not claim the new generation (Ready True for it)."""
    run(tmp_path, _status_mid_reconcile_keeps_the_old_observed_generation)


async def _status_mid_reconcile_keeps_the_old_observed_generation(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"]))
    await rig.rolled_out("v1")
    seen: list[dict[str, Any]] = []
    add_revision = rig.store.add_revision

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(rig.status())  # what a GET answers while this runs in its thread
        return add_revision(*args, **kwargs)

    rig.store.add_revision = spying  # type: ignore[method-assign]
    rig.apply(isvc(rig.models["v2"]))
    await rig.controller.reconcile()
    assert seen, "the controller made no revision"
    assert seen[0]["observedGeneration"] == 1
    assert ready(seen[0]) == "True"
    assert rig.status()["observedGeneration"] == 2 and ready(rig.status()) == "Unknown"


def test_failed_new_revision_is_ready_false_while_old_serves(tmp_path: Path) -> None:
    run(tmp_path, _failed_new_revision_is_ready_false_while_old_serves)


async def _failed_new_revision_is_ready_false_while_old_serves(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"]))
    await rig.rolled_out("v1")
    assert rig.apply(isvc(rig.models["v2"])) == 2
    # Each start of the new revision's replica exits before it is ready; after
    # MAX_START_FAILURES (with backoff) the revision has failed.

    def failed() -> bool:
        rig.backend.answer(rig.models["v2"], False)
        return ready(rig.status()) == "False"

    await rig.until(failed, timeout=20)
    status = rig.status()
    ready_cond = condition(status, "Ready")
    assert status["observedGeneration"] == 2
    assert ready_cond["reason"] == "RevisionFailed"
    assert ready_cond["message"].startswith('Revision "iris-predictor-00002" failed with message:')
    assert "weights are corrupt" in ready_cond["message"]
    assert condition(status, "PredictorReady")["status"] == "False"
    assert condition(status, "IngressReady")["status"] == "True"
    assert predictor(status)["latestCreatedRevision"] == "iris-predictor-00002"
    assert predictor(status)["latestReadyRevision"] == "iris-predictor-00001"
    assert predictor(status)["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    assert status["modelStatus"]["lastFailureInfo"]["modelRevisionName"] == "iris-predictor-00002"
    # The old revision still has its ready replica and takes the requests.
    svc = rig.svc
    assert svc is not None and svc.pick() is svc.revisions[1]
    assert svc.revisions[1].ready_units()


def test_unusable_spec_change_is_ready_false_for_its_generation(tmp_path: Path) -> None:
    run(tmp_path, _unusable_spec_change_is_ready_false_for_its_generation)


async def _unusable_spec_change_is_ready_false_for_its_generation(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"]))
    await rig.rolled_out("v1")
    assert rig.apply(isvc(rig.models["v2"], runtime="no-such-runtime")) == 2
    await rig.controller.reconcile()
    status = rig.status()
    assert status["observedGeneration"] == 2
    assert ready(status) == "False"
    assert condition(status, "Ready")["reason"] == "InvalidSpec"
    assert "no-such-runtime" in condition(status, "Ready")["message"]
    assert status["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert predictor(status)["traffic"][0]["revisionName"] == "iris-predictor-00001"


def test_canary_and_rollback_fill_kserve_printer_columns(tmp_path: Path) -> None:
    """`kubectl get isvc` reads PREV/PREVROLLEDOUTREVISION from traffic[tag=prev] and
    LATEST/LATESTREADYREVISION from traffic[latestRevision=true] (KServe's printcolumns)."""
    run(tmp_path, _canary_and_rollback_fill_kserve_printer_columns)


async def _canary_and_rollback_fill_kserve_printer_columns(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"]))
    await rig.rolled_out("v1")
    rig.apply(isvc(rig.models["v2"], canaryTrafficPercent=20))
    await rig.rolled_out("v2")
    canary = rig.status()
    assert predictor(canary)["traffic"] == [
        {"revisionName": "iris-predictor-00002", "percent": 20, "latestRevision": True},
        {
            "revisionName": "iris-predictor-00001",
            "percent": 80,
            "tag": "prev",
            "latestRevision": False,
        },
    ]
    assert predictor(canary)["latestRolledoutRevision"] == "iris-predictor-00001"
    assert "previousRolledoutRevision" not in predictor(canary)

    rig.apply(isvc(rig.models["v2"]))  # promote: same revision, all traffic
    await rig.until(lambda: predictor(rig.status())["traffic"][0]["percent"] == 100)
    promoted = rig.status()
    assert ready(promoted) == "True" and promoted["observedGeneration"] == 3
    assert predictor(promoted)["latestRolledoutRevision"] == "iris-predictor-00002"
    assert predictor(promoted)["previousRolledoutRevision"] == "iris-predictor-00001"

    rig.apply(isvc(rig.models["v2"], canaryTrafficPercent=0))  # KServe's rollback
    await rig.controller.reconcile()
    back = rig.status()
    assert ready(back) == "True" and back["observedGeneration"] == 4
    assert predictor(back)["traffic"] == [
        {"revisionName": "iris-predictor-00002", "percent": 0, "latestRevision": True},
        {
            "revisionName": "iris-predictor-00001",
            "percent": 100,
            "tag": "prev",
            "latestRevision": False,
        },
    ]
    assert predictor(back)["latestRolledoutRevision"] == "iris-predictor-00001"


def test_spec_that_cannot_run_is_ready_false_from_the_start(tmp_path: Path) -> None:
    run(tmp_path, _spec_that_cannot_run_is_ready_false_from_the_start)


async def _spec_that_cannot_run_is_ready_false_from_the_start(rig: Rig) -> None:
    rig.apply(isvc(rig.models["v1"], runtime="no-such-runtime"))
    await rig.controller.reconcile()
    status = rig.status()
    # Decided for generation 1, not pending: kubectl wait stops waiting for it.
    assert status["observedGeneration"] == 1
    assert ready(status) == "False" and condition(status, "Ready")["reason"] == "InvalidSpec"
    assert condition(status, "PredictorReady")["status"] == "False"
    assert rig.backend.started == []
