"""The Ray Serve peer on the bench's cluster: deploy bench/peers/rayserve_iris.py with the
Ray Serve venv's interpreter, and read its replicas from the dashboard's Serve API."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.lib.procs import log
from bench.lib.results import BENCH
from bench.ray.cluster import Cluster

PEER = BENCH / "peers" / "rayserve_iris.py"
LOAD_APP, TUNED_APP, COLD_APP = "iris", "iris-tuned", "iris-cold"
TUNED_PREFIX, COLD_PREFIX = "/tuned", "/cold"


def deploy(
    python: Path,
    cluster: Cluster,
    http_port: int,
    model_file: Path,
    app: str,
    extra: list[str],
) -> dict[str, Any]:
    """Run the peer's driver (it returns once Serve reports the application running); what
    it deployed, as it printed it."""
    cmd = [*_driver(python, cluster, http_port), "--model", str(model_file), "--app", app, *extra]
    log(f"ray serve: deploying {app}: {' '.join(extra)}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"ray serve deploy {app}: {(proc.stderr or proc.stdout)[-1500:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["command"] = cmd
    out["deploy_s"] = round(time.monotonic() - t0, 2)
    return out


def _driver(python: Path, cluster: Cluster, http_port: int) -> list[str]:
    return [str(python), str(PEER), "--address", cluster.address, "--http-port", str(http_port)]


def delete(python: Path, cluster: Cluster, http_port: int, app: str) -> None:
    """Delete an application (its replicas give their CPUs back to the cluster)."""
    cmd = [*_driver(python, cluster, http_port), "--delete", app]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"ray serve delete {app}: {(proc.stderr or proc.stdout)[-1500:]}")


def running_replicas(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    """The application's replicas in state RUNNING, from `GET /api/serve/applications/`."""
    data = cluster.dashboard_json("/api/serve/applications/")
    found = (data.get("applications") or {}).get(app) or {}
    out = []
    for dep in (found.get("deployments") or {}).values():
        out += [r for r in dep.get("replicas") or [] if r.get("state") == "RUNNING"]
    return out


def wait_replicas(cluster: Cluster, app: str, count: int, timeout: float) -> float | None:
    """Seconds until the application has exactly `count` running replicas, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if len(running_replicas(cluster, app)) == count:
                return round(time.monotonic() - t0, 2)
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.5)
    return None


def placement(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    """Where the application's replicas run: node id (shortened) and actor pid."""
    return [
        {"node_id": str(r.get("node_id", ""))[:12], "pid": r.get("pid")}
        for r in running_replicas(cluster, app)
    ]
