"""Two `modelport up --backend ray` instances on one PostgreSQL and one two-node Ray
cluster: the leader's replicas are Ray actors; when the leader is SIGKILLed the actors keep
serving, the other instance takes over and adopts them (same actors, same model servers,
nothing restarted), and every request made meanwhile is answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN, ADMIN_PASSWORD, isvc_yaml
from tests.e2e.test_two_instances_e2e import (
    TAKEOVER_BOUND_S,
    Instance,
    _infer,
    _ready,
    free_port,
    start_instance,
)
from tests.helpers.balancer import Balancer
from tests.helpers.pgdatabase import fresh_database
from tests.helpers.ray_cluster import RayCluster, start_cluster
from tests.pgserver import start_pg_server

pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield fresh_database(server.url)
    server.stop()


def _actors(cluster: RayCluster, prefix: str) -> dict[str, tuple[str, list[int]]]:
    """Alive replica actors by name: their id and the model server processes they run."""
    return {
        str(a["name"]): (str(a["actor_id"]), _children(int(str(a["pid"]))))
        for a in cluster.actors()
        if str(a.get("name", "")).startswith(prefix) and a["state"] == "ALIVE"
    }


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return sorted(int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split())


def test_the_standby_adopts_the_leaders_ray_replicas(
    cluster: RayCluster, pg_url: str, iris_dir: Path, tmp_path_factory: pytest.TempPathFactory
):
    ports = [free_port(), free_port()]
    balancer = Balancer([("127.0.0.1", port) for port in ports])
    extra = ("--backend", "ray", "--ray-address", cluster.address)
    started: list[Instance] = []
    try:
        for name, port in zip("ab", ports, strict=True):
            work = tmp_path_factory.mktemp(f"ray-{name}")
            started.append(start_instance(work, pg_url, port, balancer.url, extra))
        a, b = started
        assert a.health()["role"] == "leading" and b.health()["role"] == "standby"
        a.cli("login", "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
        bearer = {"Authorization": f"Bearer {a.cli('token').strip()}"}
        doc = tmp_path_factory.mktemp("docs") / "iris.yaml"
        doc.write_text(isvc_yaml("sklearn-iris", str(iris_dir), minReplicas=2))
        a.cli("apply", "-f", str(doc))
        assert wait_for(lambda: _ready(a, bearer, "sklearn-iris"), timeout=180), a.log()
        for instance in (a, b):  # b routes to the actors the leader published
            r = _infer(instance.url, bearer)
            assert r.status_code == 200 and r.json() == {"predictions": [0]}, r.text
        before = _actors(cluster, "default/sklearn-iris/")
        assert len(before) == 2 and all(len(servers) == 1 for _, servers in before.values())

        answers: list[int] = []
        done = threading.Event()

        def keep_asking() -> None:
            while not done.is_set():
                answers.append(_infer(b.url, bearer).status_code)
                time.sleep(0.1)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        killed_at = time.monotonic()
        a.kill()
        try:
            assert wait_for(lambda: b.health().get("role") == "leading", TAKEOVER_BOUND_S), b.log()
            took_over_s = time.monotonic() - killed_at
            assert wait_for(lambda: _ready(b, bearer, "sklearn-iris"), timeout=120), b.log()
            time.sleep(2)  # a few requests after the new leader is settled
        finally:
            done.set()
            asker.join(120)
        # Nothing restarted: the same actors (their model servers with them) serve.
        assert _actors(cluster, "default/sklearn-iris/") == before
        assert answers and set(answers) == {200}, answers
        print(f"takeover {took_over_s:.1f} s; {len(answers)} requests, all answered")
        r = _infer(b.url, bearer)
        assert r.status_code == 200 and r.json() == {"predictions": [0]}
        b.cli("login", "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
        b.cli("delete", "isvc", "sklearn-iris")
        assert wait_for(lambda: not _actors(cluster, "default/sklearn-iris/"), timeout=60)
    finally:
        for instance in started:
            instance.kill()
        balancer.close()
