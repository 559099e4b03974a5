"""InferenceService status through a spec change, on a real `modelport up`.

As on KServe (Knative serverless mode), after an update ``Ready`` is not True for the new
generation until the latest created revision is ready, ``observedGeneration`` names the
generation the status describes, and a revision that fails makes ``Ready`` False with its
reason while the previous revision keeps serving. What `kubectl wait --for=condition=Ready`
(Ready True and status.observedGeneration >= metadata.generation) and
`KServeClient.wait_isvc_ready(..., expected_generation=N)` (Ready True and
observedGeneration >= N) decide is checked on every status read during the rollout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for
from tests.e2e.conftest import PlatformProcess, isvc_yaml, wait_ready

SETOSA = [5.1, 3.5, 1.4, 0.2]  # class 0 for the iris model
LOAD_S = 10  # how long the second revision's model takes to load

SLOW_START = f"""
import time

from modelport import Model


class SlowStart(Model):
    def load(self):
        time.sleep({LOAD_S})
        self.ready = True

    def predict(self, payload, headers=None):
        return {{"predictions": [7 for _ in payload["instances"]]}}
"""

BROKEN = """
from modelport import Model


class Broken(Model):
    def load(self):
        raise RuntimeError("weights are corrupt")

    def predict(self, payload, headers=None):
        return {"predictions": [9]}
"""


def custom_yaml(name: str, path: Path) -> str:
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        "spec:\n  predictor:\n    model:\n"
        f"      modelFormat: {{name: custom}}\n      storageUri: {path}\n"
    )


def apply(platform: PlatformProcess, tmp_path: Path, text: str) -> None:
    f = tmp_path / f"isvc-{time.monotonic_ns()}.yaml"
    f.write_text(text)
    platform.cli("apply", "-f", str(f))


def model_file(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.py").write_text(source)
    return folder


def get(c: httpx.Client, name: str) -> dict[str, Any]:
    r = c.get(f"/api/v1/namespaces/default/inferenceservices/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def ready(item: dict[str, Any]) -> dict[str, Any]:
    return next(x for x in item["status"]["conditions"] if x["type"] == "Ready")


def waiters_done(item: dict[str, Any], expected_generation: int) -> bool:
    """Whether kubectl wait (Ready True, observedGeneration >= metadata.generation) and
    KServeClient.wait_isvc_ready (Ready True, observedGeneration >= expected) would stop."""
    observed = item["status"].get("observedGeneration", 0)
    return ready(item)["status"] == "True" and observed >= max(
        item["metadata"]["generation"], expected_generation
    )


def predictor(item: dict[str, Any]) -> dict[str, Any]:
    return item["status"]["components"]["predictor"]


def predict(c: httpx.Client, name: str) -> int:
    r = c.post(f"/serving/default/{name}/v1/models/{name}:predict", json={"instances": [SETOSA]})
    assert r.status_code == 200, r.text
    return int(r.json()["predictions"][0])


def ready_column(platform: PlatformProcess, name: str) -> str:
    table = platform.cli("get", "isvc", name).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "URL", "READY"], table
    return table[1].split()[2]


def test_update_is_ready_only_once_the_new_revision_is(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
):
    apply(platform, tmp_path, isvc_yaml("rollout", str(iris_dir)))
    first = wait_ready(platform, "rollout")
    assert first["metadata"]["generation"] == 1
    assert first["status"]["observedGeneration"] == 1
    assert predictor(first)["latestCreatedRevision"] == "rollout-predictor-00001"
    assert predictor(first)["latestReadyRevision"] == "rollout-predictor-00001"
    assert predictor(first)["latestRolledoutRevision"] == "rollout-predictor-00001"

    apply(platform, tmp_path, custom_yaml("rollout", model_file(tmp_path, "v2", SLOW_START)))
    seen: list[dict[str, Any]] = []
    with platform.client() as c:

        def deploying() -> bool:
            # Right after the apply, and for the whole load of the new model, nothing that
            # waits for Ready on generation 2 may stop: the new revision is not ready.
            seen.append(get(c, "rollout"))
            assert not waiters_done(seen[-1], 2), seen[-1]["status"]
            return seen[-1]["status"].get("observedGeneration") == 2

        def settled() -> bool:
            seen.append(get(c, "rollout"))
            return waiters_done(seen[-1], 2)

        assert wait_for(deploying, 30), seen[-1]["status"]
        during = seen[-1]
        assert during["metadata"]["generation"] == 2
        assert ready(during)["status"] == "Unknown"
        assert 'Revision "rollout-predictor-00002" is not yet ready.' in ready(during)["message"]
        assert predictor(during)["latestCreatedRevision"] == "rollout-predictor-00002"
        assert predictor(during)["latestReadyRevision"] == "rollout-predictor-00001"
        assert predictor(during)["traffic"] == [
            {"revisionName": "rollout-predictor-00001", "percent": 100, "latestRevision": True}
        ]
        assert predict(c, "rollout") == 0  # the old revision serves meanwhile
        assert ready_column(platform, "rollout") == "Unknown"
        described = platform.cli("describe", "isvc", "rollout").stdout
        assert "Deploying" in described and "rollout-predictor-00002" in described

        assert wait_for(settled, LOAD_S + 60), platform.log()[-3000:]
        done = seen[-1]
        for item in seen:
            if waiters_done(item, 2):
                # Whenever a waiter would stop, the status is about the new revision.
                assert predictor(item)["latestReadyRevision"] == "rollout-predictor-00002"
        assert done["status"]["observedGeneration"] == 2
        assert predictor(done)["latestCreatedRevision"] == "rollout-predictor-00002"
        assert predictor(done)["latestRolledoutRevision"] == "rollout-predictor-00002"
        assert predictor(done)["previousRolledoutRevision"] == "rollout-predictor-00001"
        assert predictor(done)["traffic"] == [
            {"revisionName": "rollout-predictor-00002", "percent": 100, "latestRevision": True}
        ]
        assert predict(c, "rollout") == 7
    assert ready_column(platform, "rollout") == "True"
    platform.cli("delete", "isvc", "rollout")


def test_failed_update_is_ready_false_while_the_old_revision_serves(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
):
    apply(platform, tmp_path, isvc_yaml("steadfast", str(iris_dir)))
    wait_ready(platform, "steadfast")
    apply(platform, tmp_path, custom_yaml("steadfast", model_file(tmp_path, "bad", BROKEN)))
    seen: list[dict[str, Any]] = []
    with platform.client() as c:

        def failed() -> bool:
            seen.append(get(c, "steadfast"))
            assert not waiters_done(seen[-1], 2), seen[-1]["status"]
            return ready(seen[-1])["status"] == "False"

        assert wait_for(failed, 90), platform.log()[-3000:]
        item = seen[-1]
        cond = ready(item)
        assert item["status"]["observedGeneration"] == item["metadata"]["generation"] == 2
        assert cond["reason"] == "RevisionFailed"
        assert cond["message"].startswith(
            'Revision "steadfast-predictor-00002" failed with message: '
        )
        assert "weights are corrupt" in cond["message"]
        assert predictor(item)["latestCreatedRevision"] == "steadfast-predictor-00002"
        assert predictor(item)["latestReadyRevision"] == "steadfast-predictor-00001"
        assert predictor(item)["traffic"] == [
            {"revisionName": "steadfast-predictor-00001", "percent": 100, "latestRevision": True}
        ]
        assert item["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
        assert {predict(c, "steadfast") for _ in range(5)} == {0}
    assert ready_column(platform, "steadfast") == "False"
    described = platform.cli("describe", "isvc", "steadfast").stdout
    assert "RevisionFailed" in described and "weights are corrupt" in described
    platform.cli("delete", "isvc", "steadfast")
