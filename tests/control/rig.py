"""A real Controller against a SQLite store, with a fake backend whose replicas become ready
(or fail) when the test says, so every step of a rollout can be looked at without timing luck."""

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
    keeps_replicas = False
    places_replicas = False

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
