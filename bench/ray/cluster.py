"""A two-node Ray cluster on this machine for the Ray benchmark, started with the `ray` of
the Ray Serve venv (bench/.venvs/rayserve) so that one cluster runs modelport's replicas
and the Ray Serve deployment alike. As tests/helpers/ray_cluster.py: each node is
`ray start --block` in a session of its own with a private temp folder; replicas listen on
127.0.0.1; everything is stopped by session and by the private folder in its environment,
never with `ray stop` (which would stop every Ray process on the machine)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lib import procs
from bench.lib.procs import HOST, log
from bench.lib.servers import modelport_env

# Read by modelport/control/backends/ray_host.py on each node (see docs/ray.md).
NODE_ADDRESS_ENV = "MODELPORT_RAY_NODE_ADDRESS"
NODE_DIR_ENV = "MODELPORT_RAY_NODE_DIR"


@dataclass
class Cluster:
    """A head and a second node; `address` is the head's GCS, `dashboard` its HTTP port."""

    ray_bin: Path
    address: str
    dashboard: int
    folder: Path
    cpus_per_node: int
    started_s: float = 0.0
    nodes: list[Any] = field(default_factory=list)

    @property
    def marker(self) -> bytes:
        """The environment entry every process of this cluster carries, and no other."""
        return f"{NODE_DIR_ENV}={self.folder / 'nodes'}".encode()

    def dashboard_json(self, path: str, timeout: float = 10.0) -> Any:
        """GET a dashboard API path (Ray's state and Serve APIs) as JSON."""
        status, _, data = procs.http_req(self.dashboard, "GET", path, timeout=timeout)
        if status != 200:
            raise RuntimeError(f"Ray dashboard GET {path}: HTTP {status}: {data[:200]!r}")
        return json.loads(data)

    def stop(self) -> None:
        """Kill both nodes' sessions, then every process left with this cluster's marker
        in its environment (actors and replicas start sessions of their own)."""
        for proc in self.nodes:
            procs.kill_tree(proc, grace=3.0)
        _kill_by_environment(self.marker)
        shutil.rmtree(self.folder, ignore_errors=True)


def _kill_by_environment(marker: bytes) -> None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def start(ray_bin: Path, work: Path, cpus_per_node: int, timeout_s: float = 120.0) -> Cluster:
    """Start the head, then the second node; return once the dashboard lists both alive."""
    # Short: Unix socket paths under it must stay below 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="mpbray-", dir="/tmp"))
    gcs, dash = procs.free_ports(2)
    cluster = Cluster(ray_bin, f"{HOST}:{gcs}", dash, folder, cpus_per_node)
    env = {
        **modelport_env(),  # workers import this checkout's modelport
        NODE_ADDRESS_ENV: HOST,
        NODE_DIR_ENV: str(folder / "nodes"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    common = ["--block", "--num-cpus", str(cpus_per_node), "--disable-usage-stats"]
    head = [
        str(ray_bin), "start", "--head", "--port", str(gcs),
        "--temp-dir", str(folder / "ray"), "--dashboard-host", HOST,
        "--dashboard-port", str(dash), "--labels", "zone=a", *common,
    ]  # fmt: skip
    second = [
        str(ray_bin), "start", "--address", cluster.address, "--labels", "zone=b", *common,
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        for i, cmd in enumerate((head, second)):
            log(f"ray node {i}: starting: {' '.join(cmd)}")
            log_path = work / "logs" / f"ray-node-{i}.log"
            proc = procs.spawn(cmd, log_path, work / "cwd" / "ray", env)
            cluster.nodes.append(proc)
            _wait_nodes(cluster, i + 1, t0 + timeout_s)
    except BaseException:
        cluster.stop()
        raise
    cluster.started_s = round(time.monotonic() - t0, 1)
    log(f"ray cluster {cluster.address} up in {cluster.started_s} s")
    return cluster


def alive_nodes(cluster: Cluster) -> list[dict[str, Any]]:
    """The nodes Ray's state API lists as alive."""
    data = cluster.dashboard_json("/api/v0/nodes?limit=100")
    rows = data.get("data", {}).get("result", {}).get("result", [])
    return [n for n in rows if n.get("state") == "ALIVE"]


def _wait_nodes(cluster: Cluster, count: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        for i, proc in enumerate(cluster.nodes):
            if proc.poll() is not None:
                raise RuntimeError(f"ray node {i} exited (code {proc.returncode}); see its log "
                                   "in the work dir's logs/")  # fmt: skip
        try:
            if len(alive_nodes(cluster)) >= count:
                return
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Ray cluster did not get {count} node(s) up")
