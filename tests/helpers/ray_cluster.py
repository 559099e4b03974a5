"""A real two-node Ray cluster on this machine for the Ray backend's tests: a head and a
second node, each ``ray start --block`` in a process group of its own with a private temp
folder, so a test stops exactly what it started (SIGKILL to the groups; never ``ray stop``,
which would stop every Ray process on the machine). Replicas on both nodes listen on
127.0.0.1 (MODELPORT_RAY_NODE_ADDRESS)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelport.control.backends.ray_host import NODE_ADDRESS_ENV, NODE_DIR_ENV

RAY = str(Path(sys.executable).parent / "ray")


@dataclass
class RayCluster:
    address: str
    folder: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            proc.wait(30)
        # Replicas and actors run in process groups of their own: find them by the
        # cluster's private folder in their environment, and stop them too.
        _kill_by_environment(f"{NODE_DIR_ENV}={self.folder / 'nodes'}")
        shutil.rmtree(self.folder, ignore_errors=True)

    def actors(self) -> list[dict[str, object]]:
        """``ray list actors`` as a user would run it (needs the dashboard)."""
        out = subprocess.run(
            [RAY, "list", "actors", "--format", "json", "--detail", "--limit", "1000"],
            env={**os.environ, "RAY_ADDRESS": self.address},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        # With no actor at all, Ray prints a note instead of an empty list.
        text = out.stdout.strip()
        actors: list[dict[str, object]] = json.loads(text) if text.startswith("[") else []
        return actors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cluster(cpus_per_node: int = 2, timeout_s: float = 90.0) -> RayCluster:
    """A head with resource ``node_a`` and label zone=a, and a second node with ``node_b``
    and zone=b; returns once both are registered."""
    # Short: Unix socket paths under it must stay below 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="mpray-", dir="/tmp"))
    port = _free_port()
    cluster = RayCluster(f"127.0.0.1:{port}", folder)
    env = {
        **os.environ,
        NODE_ADDRESS_ENV: "127.0.0.1",
        NODE_DIR_ENV: str(folder / "nodes"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    common = ["--block", "--num-cpus", str(cpus_per_node), "--disable-usage-stats"]
    head = [
        RAY, "start", "--head", "--port", str(port), "--temp-dir", str(folder / "ray"),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(_free_port()),
        "--resources", '{"node_a": 1}', "--labels", "zone=a", *common,
    ]  # fmt: skip
    second = [
        RAY, "start", "--address", cluster.address, "--resources", '{"node_b": 1}',
        "--labels", "zone=b", *common,
    ]  # fmt: skip
    try:
        for command in (head, second):
            log = (folder / f"{len(cluster.procs)}.log").open("wb")
            cluster.procs.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
            _wait_nodes(cluster, len(cluster.procs), timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_nodes(cluster: RayCluster, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    probe = (
        "import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', "
        "log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    )
    while time.monotonic() < deadline:
        for proc in cluster.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited: see {cluster.folder}")
        out = subprocess.run(
            [sys.executable, "-c", probe, cluster.address],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip().isdigit() and int(out.stdout) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the Ray cluster did not come up: see {cluster.folder}")


def _kill_by_environment(marker: str) -> None:
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
