"""``modelport up --backend ray`` on a real two-node Ray cluster on this machine: deploy with
two replicas, inference through the gateway, the replicas as live actors (``ray list
actors``), a killed model server replaced, a restarted platform adopting the same actors,
scale to zero and back, and an unschedulable GPU replica explained in status."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready
from tests.helpers.ray_cluster import RAY, RayCluster, start_cluster

pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(600)
VERSICOLOR = [6.8, 2.8, 4.8, 1.4]
WAITING = ("ALIVE", "PENDING_CREATION", "DEPENDENCIES_UNREADY", "RESTARTING")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-platform")


def _up(work: Path, cluster: RayCluster) -> PlatformProcess:
    return start_platform(
        work / "data", work / "config", args=("--backend", "ray", "--ray-address", cluster.address)
    )


@pytest.fixture(scope="module")
def platform(work: Path, cluster: RayCluster) -> Iterator[PlatformProcess]:
    running = _up(work, cluster)
    yield running
    running.stop()


def _apply(platform: PlatformProcess, tmp_path: Path, text: str) -> None:
    f = tmp_path / f"doc-{time.monotonic_ns()}.yaml"
    f.write_text(text)
    platform.cli("apply", "-f", str(f))


def _predict(platform: PlatformProcess, name: str) -> dict[str, object]:
    with platform.client() as c:
        r = c.post(
            f"/serving/default/{name}/v1/models/{name}:predict", json={"instances": [VERSICOLOR]}
        )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _live(
    cluster: RayCluster, prefix: str, states: tuple[str, ...] = ("ALIVE",)
) -> dict[str, dict[str, object]]:
    """The service's replica actors in one of ``states`` (alive by default), by name."""
    return {
        str(a["name"]): a
        for a in cluster.actors()
        if str(a.get("name", "")).startswith(prefix) and a["state"] in states
    }


def _server_pid(actor: dict[str, object]) -> int:
    """The model server an actor started: its child process."""
    pid = int(str(actor["pid"]))
    children = [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]
    assert len(children) == 1, children
    return children[0]


def test_two_replicas_on_ray_serve_through_the_gateway(
    platform: PlatformProcess, cluster: RayCluster, iris_dir: Path, tmp_path: Path
):
    _apply(platform, tmp_path, isvc_yaml("iris", str(iris_dir), minReplicas=2))
    wait_ready(platform, "iris", timeout=180)
    for _ in range(10):
        assert _predict(platform, "iris") == {"predictions": [1]}
    assert wait_for(lambda: len(_live(cluster, "default/iris/")) == 2, timeout=60)
    actors = _live(cluster, "default/iris/")
    assert sorted(actors) == ["default/iris/predictor-00001-0", "default/iris/predictor-00001-1"]
    # Ray's view of where they run: its node ids (two nodes of 2 CPUs, one CPU each).
    assert all(a["node_id"] for a in actors.values())


def test_a_killed_model_server_is_replaced(
    platform: PlatformProcess, cluster: RayCluster, iris_dir: Path
):
    before = _live(cluster, "default/iris/")
    victim = before["default/iris/predictor-00001-0"]
    os.kill(_server_pid(victim), signal.SIGKILL)
    # The other replica answers meanwhile.
    assert _predict(platform, "iris") == {"predictions": [1]}

    def replaced() -> bool:
        now = _live(cluster, "default/iris/")
        return (
            len(now) == 2
            and now["default/iris/predictor-00001-0"]["actor_id"] != victim["actor_id"]
        )

    assert wait_for(replaced, timeout=120)
    wait_ready(platform, "iris", timeout=120)
    assert _predict(platform, "iris") == {"predictions": [1]}


def test_a_restarted_platform_adopts_the_running_actors(
    platform: PlatformProcess, cluster: RayCluster, work: Path
):
    before = _live(cluster, "default/iris/")
    pids = {name: _server_pid(a) for name, a in before.items()}
    platform.stop()
    assert platform.proc.returncode == 0
    assert "leaving replicas running" in platform.log()
    # Still running with no platform at all.
    assert {n: a["actor_id"] for n, a in _live(cluster, "default/iris/").items()} == {
        n: a["actor_id"] for n, a in before.items()
    }
    second = _up(work, cluster)
    try:
        wait_ready(second, "iris", timeout=120)
        assert _predict(second, "iris") == {"predictions": [1]}
        after = _live(cluster, "default/iris/")
        assert {n: a["actor_id"] for n, a in after.items()} == {
            n: a["actor_id"] for n, a in before.items()
        }
        assert {name: _server_pid(a) for name, a in after.items()} == pids
    finally:
        second.stop()


def test_scale_to_zero_and_back(work: Path, cluster: RayCluster, iris_dir: Path, tmp_path: Path):
    platform = _up(work, cluster)
    try:
        _apply(platform, tmp_path, isvc_yaml("sleepy", str(iris_dir), minReplicas=0))
        wait_ready(platform, "sleepy", timeout=180)
        assert _predict(platform, "sleepy") == {"predictions": [1]}
        assert wait_for(lambda: not _live(cluster, "default/sleepy/"), timeout=120)
        assert _predict(platform, "sleepy") == {"predictions": [1]}  # a cold start on Ray
        assert len(_live(cluster, "default/sleepy/")) == 1
    finally:
        platform.stop()


def test_an_unschedulable_gpu_replica_is_reported(
    work: Path, cluster: RayCluster, iris_dir: Path, tmp_path: Path
):
    platform = _up(work, cluster)
    try:
        text = isvc_yaml("needs-gpu", str(iris_dir)).replace(
            "      storageUri:", "      resources: {limits: {nvidia.com/gpu: 1}}\n      storageUri:"
        )
        _apply(platform, tmp_path, text)

        def waiting() -> bool:
            with platform.client() as c:
                item = c.get("/api/v1/namespaces/default/inferenceservices/needs-gpu").json()
            ready = [x for x in item["status"].get("conditions", []) if x["type"] == "Ready"]
            message = ready[0].get("message", "") if ready else ""
            return "waiting for 1 CPU, 1 GPU on the Ray cluster" in message

        assert wait_for(waiting, timeout=60)
        assert list(_live(cluster, "default/needs-gpu/", ("PENDING_CREATION",))) == [
            "default/needs-gpu/predictor-00001-0"
        ]
        assert ready_status(platform, "needs-gpu") == "Unknown"
        # An autoscaling cluster would add a node: the replica's bundle is asked for.
        assert wait_for(lambda: "'GPU': 1.0" in _requested(cluster), timeout=60)
        platform.cli("delete", "isvc", "needs-gpu")
        assert wait_for(lambda: not _live(cluster, "default/needs-gpu/", WAITING), timeout=60)
        assert wait_for(lambda: "'GPU': 1.0" not in _requested(cluster), timeout=60)
    finally:
        platform.stop()


def _requested(cluster: RayCluster) -> str:
    """The "From request_resources" part of `ray status --verbose`."""
    out = subprocess.run(
        [RAY, "status", "--verbose"],
        env={**os.environ, "RAY_ADDRESS": cluster.address},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return out.split("From request_resources:", 1)[-1].split("Pending Demands:", 1)[0]


def ready_status(platform: PlatformProcess, name: str) -> str:
    with platform.client() as c:
        item = c.get(f"/api/v1/namespaces/default/inferenceservices/{name}").json()
    return next(x["status"] for x in item["status"]["conditions"] if x["type"] == "Ready")
