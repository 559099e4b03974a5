"""The status a real Controller's picture gives while a spec change rolls out.

The controller runs its own reconcile passes against a SQLite store; replicas come from a
fake backend whose readiness each test releases, so every step of a rollout (new revision
pending, ready, failed) can be looked at without timing luck. The rules checked are
Knative's and KServe's (see modelport/control/status.py): Ready is not True until the
latest created revision is ready, and observedGeneration names the spec the status shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from modelport.control.backends.process import ReplicaSpec
from modelport.control.controller import Controller, ControllerConfig
from modelport.control.revisions import ServiceState
from modelport.control.status import build_status
from modelport.control.storage import Storage
from modelport.control.store import ISVC, Store


class FakeReplica:
    """A replica whose readiness the test decides."""

    def __init__(self, spec: ReplicaSpec) -> None:
        self.spec = spec
        self.ready = False
        self.returncode: int | None = None
        self.key = "k"
        self.address = "127.0.0.1:1"
        self.answer = asyncio.get_running_loop().create_future()

    async def wait_ready(self, timeout: float) -> bool:
        ok = await self.answer
        self.ready = ok
        if not ok:
            self.returncode = 1
        return bool(ok)

    async def stop(self) -> None:
        if self.returncode is None:
            self.returncode = -15

    def last_lines(self, count: int) -> list[str]:
        return [] if self.ready else ["RuntimeError: weights are corrupt"]


class FakeBackend:
    """Starts FakeReplicas and remembers them by model path."""

    name = "fake"

    def __init__(self) -> None:
        self.started: list[FakeReplica] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def start(self, spec: ReplicaSpec) -> FakeReplica:
        replica = FakeReplica(spec)
        self.started.append(replica)
        return replica

    def answer(self, model: Path, ok: bool) -> int:
        """Let every waiting replica of ``model`` become ready (or exit); how many."""
        waiting = [r for r in self.started if r.spec.model_path == model and not r.answer.done()]
        for r in waiting:
            r.answer.set_result(ok)
        return len(waiting)


def isvc(model: Path, runtime: str | None = None, **predictor: Any) -> dict[str, Any]:
    fields = {"runtime": runtime} if runtime else {}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {
            "predictor": {
                **predictor,
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": str(model), **fields},
            }
        },
    }


class Rig:
    """A controller, its store and backend, and the status the control API would serve."""

    def __init__(self, tmp: Path) -> None:
        self.store = Store.open(f"sqlite:///{tmp / 'control.db'}")
        self.backend = FakeBackend()
        storage = Storage(tmp / "cache", tmp / "volumes")
        config = ControllerConfig(data_dir=tmp / "data")
        backend: Any = self.backend  # a Backend whose replicas are FakeReplicas
        self.controller = Controller(self.store, storage, config, backend)
        self.models: dict[str, Path] = {}
        for name in ("v1", "v2", "v3"):
            self.models[name] = tmp / name
            self.models[name].mkdir()
            (self.models[name] / "model.joblib").write_bytes(b"fake")

    def apply(self, doc: dict[str, Any]) -> int:
        self.store.apply(ISVC, "default", "iris", doc)
        row = self.store.get(ISVC, "default", "iris")
        assert row is not None
        return row.generation

    @property
    def svc(self) -> ServiceState | None:
        return self.controller.lookup("default", "iris")

    def status(self) -> dict[str, Any]:
        return build_status(self.svc, "iris", "default", "example.com", "http://gw")

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        """Run reconcile passes (as the controller's loop would) until ``check`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            if loop.time() > deadline:
                raise AssertionError(f"timed out; status: {self.status()}")
            await self.controller.reconcile()
            await asyncio.sleep(0.01)

    async def rolled_out(self, model: str) -> None:
        """Release the replicas of ``model`` as they start, until they take traffic."""
        await self.until(lambda: self.backend.answer(self.models[model], True) > 0)
        await self.until(lambda: ready(self.status()) == "True")


def ready(status: dict[str, Any]) -> str:
    return condition(status, "Ready")["status"]


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def predictor(status: dict[str, Any]) -> dict[str, Any]:
    return status["components"]["predictor"]


def run(tmp_path: Path, scenario: Callable[[Rig], Awaitable[None]]) -> None:
    """Run one scenario on a fresh rig in its own event loop (the controller needs one)."""

    async def main() -> None:
        rig = Rig(tmp_path)
        try:
            await scenario(rig)
        finally:
            await rig.controller.stop()

    asyncio.run(main())


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
