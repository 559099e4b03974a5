"""The Ray backend on a real two-node Ray cluster on this machine: replicas as named actors
placed by resources, a model server's death noticed, adoption by a new backend (a restarted
platform), an unschedulable replica explained, and a tenant's model kept away from Ray."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelport.control.backends import landlock
from modelport.control.backends.confine import Confinement
from modelport.control.backends.process import Placement, ReplicaSpec
from modelport.control.backends.ray import RayBackend
from modelport.control.backends.ray_host import prune
from modelport.control.backends.ray_models import pack
from modelport.control.backends.ray_replica import RayReplica, actor_resources, describe_needs
from tests.helpers.ray_cluster import RayCluster, start_cluster

ray = pytest.importorskip("ray")
MODELS = Path(__file__).parent.parent / "e2e" / "models"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop()


def _spec(tmp_path: Path, model: Path, fmt: str, replica_id: str, **kw: object) -> ReplicaSpec:
    name = model.stem if fmt == "custom" else "iris"
    return ReplicaSpec(
        name, model, fmt, tmp_path / "logs" / f"{replica_id.replace('/', '_')}.log",
        replica_id=replica_id, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def _infer(replica: RayReplica, name: str = "iris") -> object:
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"http://{replica.address}/v1/models/{name}:predict",
            json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
            headers={"modelport-replica-key": replica.key},
        )
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def test_resources_become_actor_options():
    assert actor_resources(Placement()) == {"num_cpus": 1}
    assert actor_resources(Placement(cpus=0.5, memory_bytes=2**30, gpus=2)) == {
        "num_cpus": 0.5,
        "memory": 2**30,
        "num_gpus": 2,
    }
    assert describe_needs(Placement(gpus=1)) == "1 CPU, 1 GPU"
    labelled = Placement(labels=(("zone", "b"),))
    assert actor_resources(labelled) == {"num_cpus": 1, "label_selector": {"zone": "b"}}
    assert describe_needs(labelled) == "1 CPU on a node labelled zone=b"


def test_replicas_are_actors_spread_over_nodes_and_a_dead_server_is_noticed(
    cluster: RayCluster, tmp_path: Path, iris_dir: Path
):
    async def main() -> None:
        backend = RayBackend(cluster.address)
        await backend.open()
        try:
            # Each node has 2 CPUs: two replicas of 2 CPUs cannot share one.
            replicas = [
                await backend.start(
                    _spec(
                        tmp_path, iris_dir, "sklearn", f"t1/iris/p-{i}", placement=Placement(cpus=2)
                    )
                )
                for i in range(2)
            ]
            assert all([await r.wait_ready(120) for r in replicas]), [
                r.last_lines(10) for r in replicas
            ]
            ray_replicas = [r for r in replicas if isinstance(r, RayReplica)]
            assert [await _infer(r) for r in ray_replicas] == [[1], [1]]
            assert len({r.node for r in ray_replicas}) == 2
            # The model went through Ray's object store into the nodes' model cache (both
            # nodes share one folder on this machine: one copy).
            (shipped,) = {m["key"] for r in ray_replicas for m in r.request["ship"]}
            cached = cluster.folder / "nodes" / "models" / shipped
            assert (cached / iris_dir.name / "model.joblib").is_file()
            actors = {
                a["name"]: a for a in cluster.actors() if a.get("ray_namespace") == "modelport"
            }
            for r in ray_replicas:
                assert actors[r.name]["state"] == "ALIVE"
                assert actors[r.name]["actor_id"] == r.actor_id
            # The model server dies: the replica reports the exit, its log says so.
            victim = ray_replicas[0]
            os.killpg(victim.proc.pid, signal.SIGKILL)
            assert await asyncio.wait_for(victim.proc.wait(), 30) == -signal.SIGKILL
            for r in ray_replicas:
                await r.stop()
            assert "--- starting" in victim.log_file.read_text()
            left = [a for a in cluster.actors() if a["name"] in {r.name for r in ray_replicas}]
            assert all(a["state"] == "DEAD" for a in left), left
        finally:
            await backend.close()

    asyncio.run(main())


def test_a_dead_actor_is_noticed_and_takes_its_server_along(
    cluster: RayCluster, tmp_path: Path, iris_dir: Path
):
    async def main() -> None:
        backend = RayBackend(cluster.address)
        await backend.open()
        try:
            replica = await backend.start(_spec(tmp_path, iris_dir, "sklearn", "t7/iris/p-0"))
            assert isinstance(replica, RayReplica)
            assert await replica.wait_ready(120), replica.last_lines(10)
            (actor,) = [a for a in cluster.actors() if a["name"] == replica.name]
            assert actor["state"] == "ALIVE"
            os.kill(int(str(actor["pid"])), signal.SIGKILL)  # as when its node is lost
            code = await asyncio.wait_for(replica.proc.wait(), 60)
            assert code == -1
            assert "the replica's Ray actor died" in replica.log_file.read_text()
            for _ in range(100):  # the server gets its parent-death signal
                if not os.path.exists(f"/proc/{replica.proc.pid}"):
                    break
                await asyncio.sleep(0.1)
            assert not os.path.exists(f"/proc/{replica.proc.pid}")
            await replica.stop()
        finally:
            await backend.close()

    asyncio.run(main())


def test_node_selector_places_replicas_on_labelled_nodes(
    cluster: RayCluster, tmp_path: Path, iris_dir: Path
):
    async def main() -> None:
        backend = RayBackend(cluster.address)
        await backend.open()
        try:
            nodes = {}
            for zone in ("a", "b", "b"):
                replica = await backend.start(
                    _spec(tmp_path, iris_dir, "sklearn", f"t6/iris/p-{len(nodes)}-{zone}",
                          placement=Placement(cpus=0.5, labels=(("zone", zone),)))
                )  # fmt: skip
                assert isinstance(replica, RayReplica)
                assert await replica.wait_ready(120), replica.last_lines(10)
                nodes[replica.name] = (zone, replica.node)
                await replica.stop()
            by_zone = {zone: {node for z, node in nodes.values() if z == zone} for zone in "ab"}
            assert len(by_zone["a"]) == len(by_zone["b"]) == 1
            assert by_zone["a"] != by_zone["b"]
        finally:
            await backend.close()

    asyncio.run(main())


def test_a_new_backend_adopts_running_replicas(cluster: RayCluster, tmp_path: Path, iris_dir: Path):
    async def first() -> tuple[str, int, str, str]:
        # A model under a shared folder is used in place, not copied.
        backend = RayBackend(cluster.address, shared_dirs=(iris_dir.parent,))
        await backend.open()
        try:
            replica = await backend.start(_spec(tmp_path, iris_dir, "sklearn", "t2/iris/p-0"))
            assert isinstance(replica, RayReplica)
            assert await replica.wait_ready(120), replica.last_lines(10)
            assert not replica.adopted and replica.request["ship"] == []
            return replica.actor_id, replica.proc.pid, replica.key, replica.address
        finally:
            await backend.close()  # the actor keeps running

    async def second(before: tuple[str, int, str, str]) -> None:
        backend = RayBackend(cluster.address, shared_dirs=(iris_dir.parent,), adopt_window_s=0.5)
        await backend.open()
        try:
            # Another key: a new platform's spec; the running server keeps its own.
            replica = await backend.start(_spec(tmp_path, iris_dir, "sklearn", "t2/iris/p-0"))
            assert isinstance(replica, RayReplica)
            assert await replica.wait_ready(60)
            assert replica.adopted
            assert (replica.actor_id, replica.proc.pid, replica.key, replica.address) == before
            assert await _infer(replica) == [1]
            await replica.stop()
        finally:
            await backend.close()

    asyncio.run(second(asyncio.run(first())))


def test_a_backend_opens_again_after_closing(cluster: RayCluster, tmp_path: Path, iris_dir: Path):
    """A platform that stands down and later leads again opens the same backend again."""

    async def main() -> None:
        backend = RayBackend(cluster.address)
        for turn in range(2):
            await backend.open()
            try:
                replica = await backend.start(_spec(tmp_path, iris_dir, "sklearn", "t8/iris/p-0"))
                assert isinstance(replica, RayReplica)
                assert await replica.wait_ready(120), replica.last_lines(10)
                assert replica.adopted == (turn == 1)
                assert await _infer(replica) == [1]
                if turn == 1:
                    await replica.stop()
            finally:
                await backend.close()

    asyncio.run(main())


def test_unclaimed_actors_are_stopped_after_the_adoption_window(
    cluster: RayCluster, tmp_path: Path, iris_dir: Path
):
    async def main() -> None:
        backend = RayBackend(cluster.address)
        await backend.open()
        replica = await backend.start(_spec(tmp_path, iris_dir, "sklearn", "t3/gone/p-0"))
        assert await replica.wait_ready(120)
        await backend.close()
        later = RayBackend(cluster.address, adopt_window_s=0.2)
        await later.open()
        try:
            for _ in range(100):
                await asyncio.sleep(0.2)
                names = {a["name"]: a["state"] for a in cluster.actors()}
                if names.get("t3/gone/p-0") == "DEAD":
                    break
            assert names.get("t3/gone/p-0") == "DEAD"
        finally:
            await later.close()

    asyncio.run(main())


def test_an_unschedulable_replica_says_what_it_waits_for(
    cluster: RayCluster, tmp_path: Path, iris_dir: Path
):
    async def main() -> None:
        backend = RayBackend(cluster.address)
        await backend.open()
        try:
            replica = await backend.start(
                _spec(tmp_path, iris_dir, "sklearn", "t4/gpu/p-0", placement=Placement(gpus=1))
            )
            notes: list[str] = []
            replica.on_wait = notes.append
            waiting = asyncio.create_task(replica.wait_ready(5))
            for _ in range(150):
                if notes:
                    break
                await asyncio.sleep(0.1)
            assert notes and notes[-1] == "waiting for 1 CPU, 1 GPU on the Ray cluster"
            assert not waiting.done()  # pending is not a failure: it waits for a node
            waiting.cancel()
            await replica.stop()
        finally:
            await backend.close()

    asyncio.run(main())


@pytest.mark.skipif(landlock.abi_version() < 4, reason="needs Landlock ABI ≥ 4")
def test_a_tenants_model_cannot_reach_the_ray_cluster(cluster: RayCluster, tmp_path: Path):
    model = tmp_path / "ray_intruder.py"
    model.write_bytes((MODELS / "ray_intruder.py").read_bytes())
    private = tmp_path / "run"
    private.mkdir()
    temp = cluster.folder / "ray"
    spec = _spec(
        tmp_path,
        model,
        "custom",
        "t5/intruder/p-0",
        env={
            "TARGET_GCS_PORT": cluster.address.rsplit(":", 1)[1],
            "TARGET_RAY_TEMP": str(temp),
            "TARGET_RAYLET_SOCKET": str(temp / "session_latest" / "sockets" / "raylet"),
        },
        confinement=Confinement(model_paths=(str(model),), private_dir=str(private), port=0),
    )

    async def main() -> dict[str, str]:
        backend = RayBackend(cluster.address)
        await backend.open()
        try:
            replica = await backend.start(spec)
            assert isinstance(replica, RayReplica)
            assert await replica.wait_ready(120), replica.last_lines(20)
            (found,) = await _infer(replica, "ray_intruder")  # type: ignore[misc]
            await replica.stop()
            return found  # type: ignore[no-any-return]
        finally:
            await backend.close()

    found = asyncio.run(main())
    assert found["gcs port"].startswith("denied: PermissionError"), found
    # Landlock keeps /tmp unreadable; beneath it, an empty folder covers Ray's.
    assert found["ray temp folder"].startswith("denied: PermissionError"), found
    # connect() on a Unix socket is no Landlock right on this kernel: only the cover stops it.
    assert found["raylet socket"].startswith("denied: FileNotFoundError"), found
    assert (temp / "session_latest" / "sockets" / "raylet").is_socket()
    assert found["ray.init auto"].startswith("denied"), found


def test_a_nodes_model_cache_keeps_the_recently_used_within_its_limit(tmp_path: Path):
    models = tmp_path / "models"
    for i, name in enumerate(["old", "middle", "new"]):
        copy = models / name
        copy.mkdir(parents=True)
        (copy / "model.bin").write_bytes(b"x" * 1000)
        os.utime(copy, (1000 + i, 1000 + i))
    # The oldest goes first; the one being used now stays even when it is the oldest.
    assert prune(models, keep=models / "new", limit_bytes=2500) == [models / "old"]
    assert prune(models, keep=models / "middle", limit_bytes=1000) == [models / "new"]
    assert sorted(p.name for p in models.iterdir()) == ["middle"]


def test_model_names_cannot_be_made_to_collide(tmp_path: Path):
    """Two different models whose files' names and bytes, run together, read the same
    (found in review: one namespace could ship its files under another's model name)."""
    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    (first / "a.py").write_bytes(b"x = 1\n")
    (first / "b.py").write_bytes(b"y = 2\n")
    (second / "a.py").write_bytes(b"x = 1\n" + b"model/b.py\0" + b"y = 2\n")
    assert pack(first)[1] != pack(second)[1]
    # A copy made elsewhere, at another time, has the same name.
    copy = tmp_path / "c" / "model"
    shutil.copytree(first, copy)
    os.utime(copy / "a.py", (1, 1))
    assert pack(copy)[1] == pack(first)[1]
    # A link is part of the content.
    (copy / "link").symlink_to("a.py")
    assert pack(copy)[1] != pack(first)[1]
